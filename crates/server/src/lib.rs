//! The HTTP server of `modelspec serve`: OpenAI-compatible inference, execution plans,
//! runs, health, Prometheus metrics and the OpenAPI document. It holds no business logic:
//! generation goes through ms-scheduler, loading and plan evaluation through ms-runtime.
//!
//! [`start`] binds, serves on its own tokio runtime (a background thread) and loads the model
//! on another thread: `/healthz/ready` is 503 until it is in. Modules: [`openai`] (completions,
//! chat, SSE, models), [`plans`], [`runs`], [`health`], [`metrics`], [`openapi`], [`errors`]
//! (OpenAI-style error objects), [`config`] (addresses, paths, limits, keys), [`guard`] (Host,
//! API key and Content-Type checks before any handler), [`state`], [`telemetry`]
//! (OpenTelemetry traces over OTLP/HTTP when enabled), [`connections`] (the accept loop:
//! connection limit, header/body/idle timeouts, JSON bodies on hyper's own errors),
//! [`version_headers`] (the registry version served, on every response). A
//! supervision task restarts the batch loop if it stops on its own.

pub mod config;
pub mod connections;
pub mod errors;
pub mod guard;
pub mod health;
pub mod metrics;
pub mod openai;
pub mod openapi;
pub mod plans;
pub mod runs;
pub mod state;
pub mod telemetry;
pub mod version_headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ms_runtime::LoadRequest;

pub use config::{ConnectionLimits, Limits, ServerConfig};
pub use ms_runtime::{Loaded, PlanSource};
pub use version_headers::VersionHeaders;

use crate::errors::ApiError;
use crate::state::{AppState, PhaseView, Serving};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("starting the server: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the model could not be loaded: {0}")]
    Load(String),
    #[error("the model is not loaded after {0:?}")]
    NotReady(Duration),
}

/// A running server. Dropping it (or [`ServerHandle::shutdown`]) stops it.
pub struct ServerHandle {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a ready server serves, for printing.
#[derive(Debug, Clone)]
pub struct ReadyInfo {
    pub model_id: String,
    /// The file loaded and its quantization.
    pub loaded: std::path::PathBuf,
    pub quantization: String,
    /// The effective plan in its text form (`modelspec plan show`).
    pub plan_text: String,
    pub plan_name: String,
    pub load_time: Duration,
}

impl ServerHandle {
    /// Waits until the model is loaded; fails at once when the load failed.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), ServerError> {
        let start = Instant::now();
        loop {
            match self.state.phase() {
                PhaseView::Ready(_) => return Ok(()),
                PhaseView::Failed(e) => return Err(ServerError::Load(e)),
                PhaseView::Loading if start.elapsed() >= timeout => {
                    return Err(ServerError::NotReady(timeout));
                }
                PhaseView::Loading => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The model and plan being served, once loaded.
    pub fn ready_info(&self) -> Option<ReadyInfo> {
        let PhaseView::Ready(s) = self.state.phase() else {
            return None;
        };
        Some(ReadyInfo {
            model_id: self.state.config.model_id.clone(),
            loaded: s.loaded.artifact.loaded.clone(),
            quantization: s.loaded.plan.spec.quantization.to_string(),
            plan_text: s.loaded.plan.to_text(),
            plan_name: s.plan_name().to_string(),
            load_time: s.loaded.load_time,
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    /// The scheduler, once the model is loaded (tests inject faults through it).
    #[doc(hidden)]
    pub fn scheduler(&self) -> Option<ms_scheduler::Scheduler> {
        self.state.scheduler().cloned()
    }

    /// Blocks until Ctrl-C (SIGINT) or, on Unix, SIGTERM (how container runtimes stop a
    /// process); the caller then shuts down.
    pub fn wait_for_ctrl_c(&self) -> std::io::Result<()> {
        self.runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let mut term = signal(SignalKind::terminate())?;
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r,
                    _ = term.recv() => Ok(()),
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await
        })
    }

    /// Stops accepting, ends running requests (streams end, waiting clients get 503) and
    /// returns once the server thread has finished.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.state.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.telemetry.shutdown();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// How long open connections get to finish after a shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Binds, starts serving on a background tokio runtime and returns once bound; the model is
/// loaded on another thread (`/healthz/ready` is 503 until it is in, see
/// [`ServerHandle::wait_ready`]).
pub fn start(config: ServerConfig, load: LoadRequest) -> Result<ServerHandle, ServerError> {
    config.check()?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(ServerError::Runtime)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ms-server")
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let handle = runtime.handle().clone();
    let telemetry = telemetry::Telemetry::start(config.tracing.as_ref())?;
    let mut state = AppState::new(config);
    state.telemetry = telemetry;
    let state = Arc::new(state);
    let app = router(state.clone());
    let limits = state.config.connections.clone();
    let supervised = state.clone();
    let stats = state.connections.clone();
    let extra_headers: Arc<str> = state
        .version_headers
        .iter()
        .map(|(k, v)| format!("{k}: {}\r\n", v.to_str().unwrap_or_default()))
        .collect::<String>()
        .into();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(ServerError::Runtime)?
    };
    let thread = std::thread::Builder::new()
        .name("ms-server-main".into())
        .spawn(move || {
            runtime.block_on(async move {
                let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    let _ = stop_rx.await;
                    let _ = stopping_tx.send(true);
                });
                tokio::spawn(supervise(supervised));
                connections::serve(
                    listener,
                    app,
                    limits,
                    stats,
                    stopping_rx,
                    SHUTDOWN_GRACE,
                    extra_headers,
                )
                .await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(ServerError::Runtime)?;
    let loader_state = state.clone();
    std::thread::Builder::new()
        .name("ms-server-load".into())
        .spawn(move || load_model(&loader_state, &load))
        .map_err(ServerError::Runtime)?;
    Ok(ServerHandle {
        addr,
        state,
        runtime: handle,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// How often supervision looks at the batch loop (requests and readiness probes look too).
const SUPERVISION_PERIOD: Duration = Duration::from_secs(1);

/// Restarts the batch loop whenever it stopped on its own.
async fn supervise(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(SUPERVISION_PERIOD);
    loop {
        tick.tick().await;
        state.supervise();
    }
}

fn load_model(state: &AppState, req: &LoadRequest) {
    match ms_runtime::load(req, &mut |_| {}) {
        Ok(loaded) => {
            let limits = &state.config.limits;
            let config = config::scheduler_config(&loaded, limits);
            state.loaded(Serving::new(loaded, limits), config);
        }
        Err(e) => state.load_failed(e.to_string()),
    }
}

fn router(state: Arc<AppState>) -> Router {
    let config = &state.config;
    let completions = Router::new()
        .route("/v1/completions", post(openai::completions::handle))
        .route("/v1/chat/completions", post(openai::chat::handle))
        .route_layer(middleware::from_fn_with_state(state.clone(), count_status))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            telemetry::trace_request,
        ));
    Router::new()
        .merge(completions)
        .route("/v1/models", get(openai::models::list))
        .route("/v1/models/{id}", get(openai::models::show))
        .route("/v1/plan", get(plans::show).put(plans::apply))
        .route("/v1/plans/evaluate", post(plans::evaluate))
        .route("/v1/runs/{id}", get(runs::show))
        .route("/openapi.json", get(openapi::serve))
        .route(&config.metrics_path, get(metrics::scrape))
        .merge(probes(config))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.limits.max_body_bytes))
        // Host, API key and Content-Type before any handler (unmatched routes included).
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        // Outermost: the guard's refusals carry the version too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            version_headers::add,
        ))
        .with_state(state)
}

/// The probe routes. A spec may give both probes one path (common in Kubernetes); that path
/// then answers readiness, the stricter of the two (503 until the model is loaded).
fn probes(config: &ServerConfig) -> Router<Arc<AppState>> {
    if config.live_path == config.ready_path {
        return Router::new().route(&config.ready_path, get(health::ready));
    }
    Router::new()
        .route(&config.live_path, get(health::live))
        .route(&config.ready_path, get(health::ready))
}

/// `modelspec_requests_total{status}` for the completion routes.
async fn count_status(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics.request(response.status().as_u16());
    response
}

async fn not_found(req: Request) -> Response {
    ApiError::not_found(format!(
        "no route {} {}; see /openapi.json for the routes",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}
