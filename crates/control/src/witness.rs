//! `modelspec audit witness`: a C2SP tlog-witness over HTTP. `POST /add-checkpoint` takes
//! `old <size>`, a consistency proof and a log's signed checkpoint; the witness checks the log
//! key's signature and that the checkpoint extends the last one it cosigned of that log, and
//! answers its tlog-cosignature line (409 with its size when `old` is not that size). What it
//! cosigned last, per log, is written to its state file (atomically, before it answers), so a
//! restart never lets it cosign a tree inconsistent with one it vouched for.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ms_registry::log::codes::WITNESS_FAILED;
use ms_registry::{ErrorKind, RegistryError};
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::note::Verifier;
use ms_tlog::witness::{AddCheckpoint, Witness, WitnessError};
use ms_trust::Signer;
use tokio::sync::watch;

use crate::Server;
use crate::config::Limits;

/// The largest add-checkpoint request (a note, a proof of at most 63 hashes).
const MAX_REQUEST: usize = 64 << 10;

/// What a witness serves with.
pub struct WitnessConfig {
    /// Its cosignature key name.
    pub name: String,
    /// Its key (Ed25519).
    pub signer: Arc<dyn Signer>,
    /// The logs it witnesses, by their note verifier keys (the key name is the origin).
    pub logs: Vec<Verifier>,
    /// The file of the last checkpoint cosigned per log.
    pub state: PathBuf,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Bind a non-loopback address without TLS.
    pub insecure: bool,
}

impl WitnessConfig {
    pub fn new(name: &str, signer: Arc<dyn Signer>, logs: Vec<Verifier>, state: PathBuf) -> Self {
        WitnessConfig {
            name: name.to_string(),
            signer,
            logs,
            state,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            insecure: false,
        }
    }
}

struct Shared {
    /// The witness and what its state file holds (origin -> checkpoint body), under one lock.
    witness: Mutex<(Witness, BTreeMap<String, String>)>,
    signer: Arc<dyn Signer>,
    state: PathBuf,
}

fn failed(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, WITNESS_FAILED, msg)
}

/// The state file: origin -> checkpoint body, as JSON.
fn load_state(path: &PathBuf) -> Result<BTreeMap<String, String>, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            failed(format!(
                "the witness state {} is damaged: {e}; move it aside only if you know why",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(failed(format!("cannot read {}: {e}", path.display()))),
    }
}

fn save_state(path: &PathBuf, state: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(d) = dir {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state).unwrap_or_default())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// Starts the witness; its verifier key (for `registry serve --witness`) is
/// [`witness_key`].
pub async fn serve_witness(config: WitnessConfig) -> Result<Server, RegistryError> {
    crate::listen::check_bind(config.host, false, config.insecure)?;
    let logs = config
        .logs
        .iter()
        .map(|v| (v.name().to_string(), v.clone()));
    let mut witness = Witness::new(&config.name, logs).map_err(|e| failed(e.to_string()))?;
    let kept = load_state(&config.state)?;
    for (origin, body) in &kept {
        let cp = Checkpoint::parse(body).map_err(|e| {
            failed(format!(
                "the witness state {} has a bad checkpoint of {origin}: {e}",
                config.state.display()
            ))
        })?;
        witness.restore(cp);
    }
    let shared = Arc::new(Shared {
        witness: Mutex::new((witness, kept)),
        signer: config.signer.clone(),
        state: config.state.clone(),
    });
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(shared);
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        RegistryError::new(
            ErrorKind::Unavailable,
            ms_registry::remote::codes::BIND_REFUSED,
            format!("cannot listen on {addr}: {e}"),
        )
    })?;
    let addr = listener.local_addr().map_err(|e| failed(e.to_string()))?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(crate::listen::accept_loop(
        listener,
        app,
        None,
        Limits::default(),
        stopped,
    ));
    Ok(Server {
        addr,
        https: false,
        stop,
        task: Some(task),
    })
}

/// The witness's C2SP verifier key (cosignature type) for `name` and `signer`.
pub fn witness_key(name: &str, signer: &dyn Signer) -> Result<String, RegistryError> {
    Verifier::cosignature(name, signer.public_key())
        .map(|v| v.to_string())
        .map_err(|e| failed(e.to_string()))
}

fn refuse(e: WitnessError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status == StatusCode::CONFLICT {
        "text/x.tlog.size"
    } else {
        "text/plain; charset=utf-8"
    };
    (status, [(header::CONTENT_TYPE, content_type)], e.body()).into_response()
}

async fn add_checkpoint(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(WitnessError::Malformed(format!(
                "the request is larger than {MAX_REQUEST} bytes"
            )));
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return refuse(WitnessError::Malformed("the request is not UTF-8".into()));
    };
    let request = match AddCheckpoint::parse(text) {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shared2 = shared.clone();
    // Signing may reach an HSM or a proxy, and the state file is fsynced: off the runtime.
    let outcome = tokio::task::spawn_blocking(move || {
        let mut guard = shared2.witness.lock().unwrap_or_else(|e| e.into_inner());
        let (w, kept) = &mut *guard;
        let (sig, cp) = w.add_checkpoint(&request, &*shared2.signer, now)?;
        kept.insert(cp.origin.clone(), cp.body());
        // Kept before answered. When keeping fails the witness still holds the new checkpoint
        // in memory (it only gets stricter) but gives no cosignature.
        save_state(&shared2.state, kept)
            .map_err(|e| WitnessError::Signer(format!("cannot keep the state: {e}")))?;
        Ok(sig.to_line())
    })
    .await;
    match outcome {
        Ok(Ok(line)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Ok(Err(e)) => refuse(e),
        Err(_) => refuse(WitnessError::Signer("the witness task failed".into())),
    }
}
