//! The server's shared state: the configuration, the model being served (once loaded) with its
//! scheduler, the run records and the metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use ms_engine::chat::ChatTemplate;
use ms_runtime::Loaded;
use ms_scheduler::{Engine, Scheduler};

use crate::config::{self, Limits, ServerConfig};
use crate::errors::ApiError;
use crate::metrics::ServerMetrics;
use crate::runs::{RUNS_KEPT, Runs};
use crate::telemetry::Telemetry;

/// A model under a plan, as requests see it. Replaced whole by `PUT /v1/plan`.
pub struct Serving {
    pub loaded: Loaded,
    pub template: ChatTemplate,
    /// Positions a session holds: prompt plus generated tokens must fit.
    pub context_length: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// What a request's `model` may say besides the server's model id.
    pub model_names: Vec<String>,
}

impl Serving {
    pub fn new(loaded: Loaded, limits: &Limits) -> Self {
        let meta = loaded.model.gguf().metadata();
        let source = meta.get_str_opt("tokenizer.chat_template").ok().flatten();
        let arch = loaded.model.info().architecture.name();
        let template = ChatTemplate::for_model(source, arch, &loaded.tokenizer);
        Self {
            context_length: config::context_length(&loaded),
            max_tokens: config::effective_max_tokens(limits, &loaded),
            model_names: crate::openai::models::names(&loaded),
            template,
            loaded,
        }
    }

    pub fn engine(&self) -> Engine {
        Engine {
            model: self.loaded.model.clone(),
            tokenizer: self.loaded.tokenizer.clone(),
            plan_name: self.plan_name().to_string(),
        }
    }

    pub fn plan_name(&self) -> &str {
        &self.loaded.plan.metadata.name
    }
}

pub enum Phase {
    Loading,
    Ready(Arc<Serving>),
    Failed(String),
}

pub struct AppState {
    pub config: ServerConfig,
    pub metrics: ServerMetrics,
    pub runs: Runs,
    phase: RwLock<Phase>,
    scheduler: OnceLock<Scheduler>,
    shutting_down: AtomicBool,
    /// One plan change (or evaluation) at a time; an evaluation's blocking work holds it
    /// until it has stopped.
    pub plan_lock: Arc<tokio::sync::Mutex<()>>,
    /// The trace exporter; off unless the config enables tracing.
    pub telemetry: Telemetry,
    /// Open, refused and timed-out connections (see [`crate::connections`]).
    pub connections: Arc<crate::connections::ConnectionStats>,
    /// The registry version's headers, added to every response (see
    /// [`crate::version_headers`]); empty when none are configured.
    pub version_headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Self {
        // Checked by `ServerConfig::check` before a server starts; a value that is not a
        // header value adds no header rather than a panic here.
        let version_headers = config
            .version_headers
            .as_ref()
            .and_then(|h| h.pairs().ok())
            .unwrap_or_default();
        Self {
            version_headers,
            config,
            metrics: ServerMetrics::new(),
            runs: Runs::new(RUNS_KEPT),
            phase: RwLock::new(Phase::Loading),
            scheduler: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            plan_lock: Arc::new(tokio::sync::Mutex::new(())),
            telemetry: Telemetry::default(),
            connections: Arc::default(),
        }
    }

    /// The model and its scheduler, or 503 while loading (or after a failed load).
    pub fn ready(&self) -> Result<(Arc<Serving>, &Scheduler), ApiError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        let phase = self.phase.read().unwrap_or_else(|e| e.into_inner());
        match (&*phase, self.scheduler.get()) {
            (Phase::Ready(s), Some(sched)) => {
                if let Err(why) = sched.health() {
                    sched.restart(s.engine());
                    if sched.health().is_err() {
                        return Err(ApiError::unavailable(format!(
                            "{why}; restarting, retry in a moment"
                        )));
                    }
                }
                Ok((s.clone(), sched))
            }
            (Phase::Failed(e), _) => Err(ApiError::unavailable(format!(
                "the model could not be loaded: {e}"
            ))),
            _ => Err(ApiError::unavailable(
                "the model is still loading; /healthz/ready answers 200 once it is in",
            )),
        }
    }

    /// Loading, ready or failed, for the health probes and `wait_ready`.
    pub fn phase(&self) -> PhaseView {
        let phase = self.phase.read().unwrap_or_else(|e| e.into_inner());
        match &*phase {
            Phase::Loading => PhaseView::Loading,
            Phase::Ready(s) => PhaseView::Ready(s.clone()),
            Phase::Failed(e) => PhaseView::Failed(e.clone()),
        }
    }

    pub fn scheduler(&self) -> Option<&Scheduler> {
        self.scheduler.get()
    }

    /// Why the batch loop is not running, when it stopped on its own (readiness is 503 then).
    pub fn scheduler_problem(&self) -> Option<String> {
        self.scheduler.get().and_then(|s| s.health().err())
    }

    /// Supervision: restarts a batch loop that stopped on its own, on the plan being served.
    pub fn supervise(&self) {
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let (Some(sched), PhaseView::Ready(serving)) = (self.scheduler.get(), self.phase()) else {
            return;
        };
        if sched.health().is_err() {
            sched.restart(serving.engine());
        }
    }

    /// The first load finished: start the scheduler on it.
    pub fn loaded(&self, serving: Serving, sched_config: ms_scheduler::Config) {
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let serving = Arc::new(serving);
        let scheduler = Scheduler::start(serving.engine(), sched_config);
        let _ = self.scheduler.set(scheduler);
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Ready(serving);
    }

    pub fn load_failed(&self, error: String) {
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Failed(error);
    }

    /// A new plan is loaded: new requests run on it, admitted ones finish on the old one.
    /// When its batch loop cannot start, the old plan keeps serving and the error says why.
    pub fn replace(
        &self,
        serving: Serving,
        sched_config: ms_scheduler::Config,
    ) -> Result<(), String> {
        let serving = Arc::new(serving);
        if let Some(s) = self.scheduler.get() {
            s.replace(serving.engine(), sched_config)?;
        }
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Ready(serving);
        Ok(())
    }

    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        if let Some(s) = self.scheduler.get() {
            s.shutdown();
        }
    }
}

#[derive(Clone)]
pub enum PhaseView {
    Loading,
    Ready(Arc<Serving>),
    Failed(String),
}
