//! What the server is told: address, paths, limits, the model's id. Defaults, then the
//! ModelSpec's `operations.serving` (port, probes, maxConcurrency, timeoutSeconds) and
//! `operations.observability.tracing`, then the
//! effective plan's limits (max tokens per request, context, scheduler batch and queue).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use ms_runtime::{LoadRequest, Loaded, ModelSpecInfo};
use ms_scheduler::{Config as SchedulerConfig, Policy};

use crate::ServerError;
use crate::guard::{AllowedHosts, ApiKeys};
use crate::telemetry::{self, TraceExport};
use crate::version_headers::VersionHeaders;

/// Request limits. `max_concurrency` 0 means "the plan's": its scheduler batch plus its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest `max_tokens` a request may ask for (the plan's `limits.maxTokensPerRequest` and
    /// the context length lower it once the model is loaded); larger ones get 400.
    pub max_tokens: usize,
    /// From submission to the last token, queue time included; then the request fails (504).
    pub timeout: Duration,
    /// Requests running or waiting at once; beyond it 429 with Retry-After.
    pub max_concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_tokens: 4096,
            timeout: Duration::from_secs(300),
            max_concurrency: 0,
        }
    }
}

/// Guards of each connection (see [`crate::connections`]); `modelspec serve` flags set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must arrive whole within it (the first one from the connection's start).
    pub header_read: Duration,
    /// A request body must arrive whole within it of its head; then 408.
    pub body_read: Duration,
    /// A connection with no request in flight is closed after it (keep-alive).
    pub idle: Duration,
    /// Connections open at once; beyond it new ones get 503 and are closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// Like a production server's: 20 s for a head, 60 s for a body, 75 s idle, and
    /// connections up to the open-file limit less [`RESERVED_FDS`].
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(20),
            body_read: Duration::from_secs(60),
            idle: Duration::from_secs(75),
            max_connections: default_max_connections(),
        }
    }
}

/// File descriptors kept for everything but client connections (the model file, the cache,
/// the listener, metrics readers, the runtime).
pub const RESERVED_FDS: u64 = 128;
/// Connections at most, whatever the open-file limit.
pub const MAX_CONNECTIONS_CEILING: u64 = 16_384;

/// The open-file limit (RLIMIT_NOFILE, soft) less [`RESERVED_FDS`], within 16 and
/// [`MAX_CONNECTIONS_CEILING`].
pub fn default_max_connections() -> usize {
    let nofile = open_file_limit().unwrap_or(1024);
    nofile
        .saturating_sub(RESERVED_FDS)
        .clamp(16, MAX_CONNECTIONS_CEILING) as usize
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into the struct we own; no other memory is touched.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    // rlim_t is u64 here but not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    let soft = lim.rlim_cur as u64;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(soft)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub host: IpAddr,
    /// 0 = any free port.
    pub port: u16,
    pub limits: Limits,
    pub connections: ConnectionLimits,
    pub live_path: String,
    pub ready_path: String,
    pub metrics_path: String,
    /// The `model` the API reports (`/v1/models`, every response).
    pub model_id: String,
    /// Where to export traces; `None` = tracing off (the ModelSpec's
    /// `observability.tracing.enabled` or `serve --otlp-endpoint` turn it on).
    pub tracing: Option<TraceExport>,
    /// Keys a request must present as `Authorization: Bearer KEY`; none = no authentication
    /// (see [`crate::guard`]).
    pub api_keys: ApiKeys,
    /// `Host` names accepted besides IP addresses and `localhost`.
    pub allowed_hosts: AllowedHosts,
    /// The registry version served (model version, manifest digest, signer), sent on every
    /// response; `None` for a model that is not from a registry.
    pub version_headers: Option<VersionHeaders>,
}

impl ServerConfig {
    /// Loopback, port 8080, default paths and limits.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            limits: Limits::default(),
            connections: ConnectionLimits::default(),
            live_path: "/healthz/live".into(),
            ready_path: "/healthz/ready".into(),
            metrics_path: "/metrics".into(),
            model_id: model_id.into(),
            tracing: None,
            api_keys: ApiKeys::default(),
            allowed_hosts: AllowedHosts::default(),
            version_headers: None,
        }
    }

    /// Defaults with what a ModelSpec's serving section and the loaded plan say.
    pub fn from_loaded(l: &Loaded) -> ServerConfig {
        let mut config = match &l.spec {
            Some(spec) => Self::from_spec(spec),
            None => Self::new(model_id_of(&l.request.model)),
        };
        config.limits.max_tokens = effective_max_tokens(&config.limits, l);
        config
    }

    /// Before anything is loaded: the defaults, and the ModelSpec's serving section when the
    /// model reference is a ModelSpec file (read only, nothing fetched).
    pub fn for_request(req: &LoadRequest) -> Result<ServerConfig, ServerError> {
        let spec = ms_runtime::load::read_spec_if_any(&req.model)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        match spec {
            Some(spec) => Ok(Self::from_spec(&spec)),
            None => Ok(Self::new(model_id_of(&req.model))),
        }
    }

    fn from_spec(spec: &ModelSpecInfo) -> ServerConfig {
        let id = if spec.model_id.is_empty() {
            spec.name.clone()
        } else {
            spec.model_id.clone()
        };
        let mut config = Self::new(id);
        let serving = &spec.serving;
        if let Some(port) = serving.port {
            config.port = port;
        }
        if let Some(p) = &serving.liveness_path {
            config.live_path = p.clone();
        }
        if let Some(p) = &serving.readiness_path {
            config.ready_path = p.clone();
        }
        if let Some(n) = serving.max_concurrency {
            config.limits.max_concurrency = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(t) = serving.timeout_seconds {
            config.limits.timeout = Duration::from_secs(t);
        }
        if telemetry::declared(spec) == Some(true) {
            config.tracing = Some(TraceExport::from_env(None, &spec.name));
        }
        config
    }

    /// What to tell the operator at start about this server's exposure (see [`crate::guard`]).
    pub fn warnings(&self) -> Vec<String> {
        crate::guard::warnings(self.host, &self.api_keys, &self.allowed_hosts)
    }

    /// Paths must be absolute, distinct (the two probes may share one) and not one of the API's own.
    pub(crate) fn check(&self) -> Result<(), ServerError> {
        let paths = [
            ("live", &self.live_path),
            ("ready", &self.ready_path),
            ("metrics", &self.metrics_path),
        ];
        for (i, (what, p)) in paths.iter().enumerate() {
            if !p.starts_with('/') || p.contains(['{', '}', '*', ' ']) || p.len() < 2 {
                return Err(ServerError::Config(format!(
                    "the {what} path {p:?} must start with '/' and name a fixed path (no '{{', '}}', '*' or spaces)"
                )));
            }
            if crate::openapi::ROUTES.iter().any(|(_, r)| r == p) {
                return Err(ServerError::Config(format!(
                    "the {what} path {p:?} is one of the API's own routes; choose another"
                )));
            }
            // One path for both probes is common in Kubernetes specs: it answers readiness.
            let same_probe = *what == "ready" && self.live_path == self.ready_path;
            if let Some((other, _)) = paths[..i].iter().find(|(_, q)| q == p)
                && !same_probe
            {
                return Err(ServerError::Config(format!(
                    "the {what} and {other} paths are both {p:?}; give them different paths"
                )));
            }
        }
        if let Some(h) = &self.version_headers {
            h.pairs()?;
        }
        let c = &self.connections;
        if c.header_read.is_zero() || c.body_read.is_zero() || c.idle.is_zero() {
            return Err(ServerError::Config(
                "the header-read, body-read and idle timeouts must be above 0".into(),
            ));
        }
        if c.max_connections == 0 {
            return Err(ServerError::Config(
                "the connection limit must be at least 1".into(),
            ));
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_tokens == 0 {
            return Err(ServerError::Config(
                "the body size and max tokens limits must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// Largest `max_tokens` a request may ask for under this plan: the server's limit, the plan's
/// `limits.maxTokensPerRequest` and the context length, whichever is lowest.
pub(crate) fn effective_max_tokens(limits: &Limits, l: &Loaded) -> usize {
    let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let mut max = limits.max_tokens;
    if let Some(m) = l.plan.spec.limits.max_tokens_per_request {
        max = max.min(as_usize(m));
    }
    max.min(context_length(l)).max(1)
}

/// The context the sessions get.
pub(crate) fn context_length(l: &Loaded) -> usize {
    l.model.info().context_length
}

/// The scheduler's batch, queue and policy under this plan; a concurrency limit (the spec's
/// `serving.maxConcurrency`) caps batch + queue: the batch up to the plan's, the queue the rest
/// (at most the plan's `limits.maxQueue`).
pub(crate) fn scheduler_config(l: &Loaded, limits: &Limits) -> SchedulerConfig {
    let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let spec = &l.plan.spec;
    let policy = spec
        .scheduler
        .policy
        .parse::<Policy>()
        .unwrap_or(Policy::Fifo);
    let mut max_batch = as_usize(spec.scheduler.max_batch).max(1);
    let mut max_queue = as_usize(spec.limits.max_queue);
    if limits.max_concurrency > 0 {
        max_batch = max_batch.min(limits.max_concurrency);
        max_queue = max_queue.min(limits.max_concurrency - max_batch);
    }
    SchedulerConfig {
        policy,
        max_batch,
        max_queue,
    }
}

/// How the API names a model given by reference: a catalog name as is, a file by its stem.
pub fn model_id_of(model: &str) -> String {
    let path = Path::new(model);
    if path.exists()
        && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
    {
        return stem.to_string();
    }
    model.to_string()
}
