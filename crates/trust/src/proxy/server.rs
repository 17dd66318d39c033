//! The signing proxy's reference server (`modelspec signer serve`): the protocol of
//! [`crate::proxy`] over axum on its own tokio runtime thread, in front of one or more `Signer`s.
//!
//! The bearer token is checked before the body is read, by comparing SHA-256 digests in constant
//! time (no early exit on the first differing byte, no length leak); bodies are read up to
//! [`ServeOptions::max_body_bytes`] and no further, within [`BODY_TIMEOUT`]; a request head must
//! arrive within [`HEADER_TIMEOUT`] (both adjustable in [`ServeOptions`]); at most [`MAX_CONNECTIONS`] connections are served at once
//! (more wait in the kernel's backlog), so slow or idle clients cannot pin the server. Signing
//! runs on tokio's blocking pool (PKCS#11 calls block). Without TLS the server listens on a
//! loopback address unless told otherwise, since the token would cross the network in clear text.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

use super::{ErrorBody, ErrorDetail, KeyInfo, KeyList, SignRequest, SignResponse};
use crate::codes::{MT0401, MT0402, MT0404, MT0405, MT0406, MT0407, MT0408};
use crate::error::{Result, TrustError};
use crate::signer::Signer;

/// The shortest token the server accepts: 32 characters (e.g. `openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_LEN: usize = 32;
/// The default body limit: 1 MiB (a DSSE envelope of a model of several thousand files).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// How long a client may take to send a request head, by default.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request body, by default.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How the server runs.
#[derive(Clone)]
pub struct ServeOptions {
    /// Default 127.0.0.1:7300 in the CLI; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The bearer token clients must send.
    pub token: String,
    pub max_body_bytes: usize,
    /// Listen on a non-loopback address without TLS (behind a TLS-terminating proxy).
    pub insecure: bool,
    /// One line per request on stderr (method, path, key id, status; never the token).
    pub log: bool,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl ServeOptions {
    /// `bind` and `token` with the defaults: [`DEFAULT_MAX_BODY`], loopback only, logging,
    /// [`HEADER_TIMEOUT`], [`BODY_TIMEOUT`].
    pub fn new(bind: SocketAddr, token: impl Into<String>) -> Self {
        Self {
            bind,
            token: token.into(),
            max_body_bytes: DEFAULT_MAX_BODY,
            insecure: false,
            log: true,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("bind", &self.bind)
            .field("token", &"<redacted>")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("insecure", &self.insecure)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .finish()
    }
}

/// A running server; dropping it stops it.
pub struct RunningProxy {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningProxy {
    /// Blocks until the server stops (it does not stop by itself: the process is killed).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Key {
    signer: Arc<dyn Signer>,
    info: KeyInfo,
}

struct AppState {
    keys: HashMap<String, Key>,
    /// In `GET /v1/keys` order (the order of the backends given).
    order: Vec<String>,
    token_digest: [u8; 32],
    max_body: usize,
    body_timeout: Duration,
    log: bool,
}

/// Checks the options, binds, and serves `signers` on a thread of its own.
pub fn start(options: ServeOptions, signers: Vec<Arc<dyn Signer>>) -> Result<RunningProxy> {
    if options.token.trim().len() < MIN_TOKEN_LEN {
        return Err(TrustError::new(
            MT0402,
            format!(
                "the bearer token is shorter than {MIN_TOKEN_LEN} characters: make one with \
                 `openssl rand -hex 32 > token` (the token's value is never printed)"
            ),
        ));
    }
    if !options.bind.ip().is_loopback() && !options.insecure {
        return Err(TrustError::new(
            MT0402,
            format!(
                "refusing to listen on {} without TLS: the bearer token would cross the network \
                 in clear text; bind 127.0.0.1, or pass --insecure behind a TLS-terminating proxy",
                options.bind.ip()
            ),
        ));
    }
    if signers.is_empty() {
        return Err(TrustError::new(MT0402, "no key backend to serve"));
    }
    let mut keys = HashMap::new();
    let mut order = Vec::new();
    for signer in signers {
        let pk = signer.public_key().clone();
        let id = pk.fingerprint();
        let info = KeyInfo {
            key_id: id.clone(),
            algorithm: pk.algorithm().as_str().to_string(),
            public_key: pk.to_pem(),
            development_only: signer.kind().development_only(),
        };
        if keys.insert(id.clone(), Key { signer, info }).is_some() {
            return Err(TrustError::new(
                MT0402,
                format!("two backends serve the same key {id}"),
            ));
        }
        order.push(id);
    }
    let state = Arc::new(AppState {
        keys,
        order,
        token_digest: Sha256::digest(options.token.trim().as_bytes()).into(),
        max_body: options.max_body_bytes,
        body_timeout: options.body_timeout,
        log: options.log,
    });
    let app = Router::new()
        .route("/v1/keys", get(list_keys))
        .route("/v1/sign", post(sign))
        .fallback(not_found)
        .with_state(state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TrustError::new(MT0402, format!("starting the server's runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.bind))
        .map_err(|e| TrustError::new(MT0402, format!("binding {}: {e}", options.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| TrustError::new(MT0402, format!("binding {}: {e}", options.bind)))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("signer-proxy".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, app, options.header_timeout, stop_rx));
        })
        .map_err(|e| TrustError::new(MT0402, format!("starting the server thread: {e}")))?;
    Ok(RunningProxy {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Serves connections until `stop` fires; connections still open then are dropped.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // Waiting for a permit first keeps extra connections in the kernel's backlog.
        let permit = tokio::select! {
            _ = &mut stop => break,
            p = Arc::clone(&permits).acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            _ = &mut stop => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or a reset before accept: pause rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let app = app.clone();
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let app = app.clone();
                async move {
                    Ok::<_, Infallible>(
                        app.oneshot(req.map(Body::new))
                            .await
                            .unwrap_or_else(|e| match e {}),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
    tasks.abort_all();
}

/// A refused request: what the answer says, and what the log line names.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `keyId=…` once known, for the log.
    what: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            what: String::new(),
        }
    }

    fn about(mut self, what: &str) -> Self {
        self.what = what.to_string();
        self
    }

    /// The answer in the protocol's error shape.
    fn response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header"),
            );
        }
        resp
    }
}

fn authorized(state: &AppState, headers: &HeaderMap) -> std::result::Result<(), Refusal> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(given) = given else {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            MT0404,
            "no `Authorization: Bearer` token; the signing proxy needs its token",
        ));
    };
    let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    if aws_lc_rs::constant_time::verify_slices_are_equal(&digest, &state.token_digest).is_err() {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            MT0404,
            "the bearer token is not this proxy's",
        ));
    }
    Ok(())
}

fn log(state: &AppState, line: impl FnOnce() -> String) {
    if state.log {
        eprintln!("modelspec signer serve: {}", line());
    }
}

async fn list_keys(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorized(&state, &headers) {
        log(&state, || "GET /v1/keys 401".into());
        return refusal.response();
    }
    log(&state, || "GET /v1/keys 200".into());
    let keys = state
        .order
        .iter()
        .map(|id| state.keys[id].info.clone())
        .collect();
    axum::Json(KeyList { keys }).into_response()
}

async fn not_found(req: Request<Body>) -> Response {
    Refusal::new(
        StatusCode::NOT_FOUND,
        MT0407,
        format!(
            "no route {} {}: the protocol has GET /v1/keys and POST /v1/sign",
            req.method(),
            req.uri().path()
        ),
    )
    .response()
}

async fn sign(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    match sign_inner(&state, req).await {
        Ok((answer, what)) => {
            log(&state, || format!("POST /v1/sign {what} 200"));
            axum::Json(answer).into_response()
        }
        Err(refusal) => {
            log(&state, || {
                let what = refusal.what.as_str();
                let sep = if what.is_empty() { "" } else { " " };
                format!("POST /v1/sign{sep}{what} {}", refusal.status.as_u16())
            });
            refusal.response()
        }
    }
}

async fn sign_inner(
    state: &AppState,
    req: Request<Body>,
) -> std::result::Result<(SignResponse, String), Refusal> {
    let (parts, body) = req.into_parts();
    authorized(state, &parts.headers)?;
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/json");
    if !is_json {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            MT0407,
            "the body must be JSON (content-type: application/json)",
        ));
    }
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            MT0406,
            format!(
                "the request body exceeds this proxy's limit of {} bytes (signer serve \
                 --max-body-bytes); ECDSA clients can send the SHA-256 digest instead",
                state.max_body
            ),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body as u64) {
        return Err(too_large());
    }
    let bytes = tokio::time::timeout(
        state.body_timeout,
        axum::body::to_bytes(body, state.max_body),
    )
    .await
    .map_err(|_| {
        Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            MT0407,
            format!(
                "the request body did not arrive within {:?}",
                state.body_timeout
            ),
        )
    })?
    .map_err(|_| too_large())?;
    let bad = |msg: String| Refusal::new(StatusCode::BAD_REQUEST, MT0407, msg);
    let request: SignRequest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the body is not a sign request: {e}")))?;
    // The key id is the client's text: quoted (no forged log lines) and cut short.
    let shown: String = request.key_id.chars().take(80).collect();
    let what = format!("keyId={shown:?}");
    let Some(key) = state.keys.get(&request.key_id) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            MT0405,
            format!(
                "this proxy has no key {:?}; GET /v1/keys lists its keys",
                request.key_id
            ),
        )
        .about(&what));
    };
    let decode = |field: &str, v: &str| {
        B64.decode(v)
            .map_err(|e| bad(format!("`{field}` is not standard base64: {e}")).about(&what))
    };
    let signer = Arc::clone(&key.signer);
    let job: Box<dyn FnOnce() -> Result<Vec<u8>> + Send> = match (&request.message, &request.digest)
    {
        (Some(m), None) => {
            let message = decode("message", m)?;
            Box::new(move || signer.sign(&message))
        }
        (None, Some(d)) => {
            let digest: [u8; 32] = decode("digest", d)?.try_into().map_err(|v: Vec<u8>| {
                bad(format!(
                    "`digest` must be the 32 bytes of a SHA-256; got {} bytes",
                    v.len()
                ))
                .about(&what)
            })?;
            Box::new(move || signer.sign_sha256_digest(&digest))
        }
        _ => {
            return Err(bad("give exactly one of `message` and `digest`".into()).about(&what));
        }
    };
    let signed = tokio::task::spawn_blocking(job).await.unwrap_or_else(|e| {
        Err(TrustError::new(
            MT0408,
            format!("the signing task failed: {e}"),
        ))
    });
    match signed {
        Ok(signature) => Ok((
            SignResponse {
                key_id: request.key_id.clone(),
                algorithm: key.info.algorithm.clone(),
                signature: B64.encode(signature),
            },
            what,
        )),
        Err(e) if e.code == MT0401 => {
            Err(Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, MT0401, e.message).about(&what))
        }
        Err(e) => {
            // The backend's message names the token and the PKCS#11 return value, never a PIN.
            eprintln!("modelspec signer serve: backend error for {what}: {e}");
            Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                MT0408,
                format!("the key's backend failed to sign ({})", e.code),
            )
            .about(&what))
        }
    }
}
