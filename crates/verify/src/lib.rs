//! `modelspec verify`: a ModelSpec's declarations against what the running model does.
//!
//! The model is served (in-process on 127.0.0.1 with ms-server, or an already running server
//! given by URL) and then checked in one way whichever it is: over HTTP. A load derived from
//! the spec runs for a bounded time; each declaration becomes a [`check::Check`] with a stable
//! code, the declared value, the measured value with its method, and a verdict: held,
//! violated, or not checked (with the reason). [`report`] renders text, JSON and SARIF.
//!
//! - [`artifacts`]: digests and quantization of the declared files (ms-fetch).
//! - [`client`]: the HTTP client (probes, metrics, streamed OpenAI-style completions).
//! - [`load`]: the load generator (a thread per client, closed loop) and its summary.
//! - [`prompt`]: prompt texts of a chosen token length.
//! - [`prom`]: reading Prometheus metrics.
//! - [`cost`]: cost per 1000 tokens from energy and an electricity price.
//! - [`run`]: the sequence of checks; [`checks`]: the checks, a module per group.
//! - [`sampler`]: the server's memory and batch gauges read during the load.

pub mod artifacts;
pub mod check;
pub mod checks;
pub mod client;
pub mod cost;
pub mod load;
pub mod local;
pub mod prom;
pub mod prompt;
pub mod report;
pub mod run;
pub mod sampler;
pub mod spec_file;

use std::path::PathBuf;
use std::time::Duration;

pub use check::{Check, Tally, Verdict};
pub use client::ApiKey;
pub use report::Report;
pub use run::verify;

/// The longest load `--duration` accepted, so a verification always ends.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// The load's length when none is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(20);
/// Tokens generated per load request when none is given.
pub const DEFAULT_MAX_TOKENS: u64 = 16;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: PathBuf,
    /// An ExecutionPlan file for the local server (not with `url`).
    pub plan: Option<PathBuf>,
    /// Check this running server instead of starting one.
    pub url: Option<String>,
    pub duration: Duration,
    /// How long requests in flight when the load ends may still run before they are cut off;
    /// [`load::tail`] of `duration` when `None`.
    pub tail: Option<Duration>,
    /// Tokens generated per load request.
    pub max_tokens: u64,
    /// Electricity price; [`cost::DEFAULT_USD_PER_KWH`] when `None`.
    pub usd_per_kwh: Option<f64>,
    /// With `url`: listen here for the server's OTLP spans (MV0605); a local server always
    /// gets a receiver on a free loopback port.
    pub otlp_receiver: Option<std::net::SocketAddr>,
    /// With `url`: sent as `Authorization: Bearer KEY` on every request (the server verify
    /// starts itself has no keys). Never rendered: its `Debug` is redacted.
    pub api_key: Option<client::ApiKey>,
}

impl Options {
    pub fn new(spec: impl Into<PathBuf>) -> Self {
        Options {
            spec: spec.into(),
            plan: None,
            url: None,
            duration: DEFAULT_DURATION,
            tail: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            usd_per_kwh: None,
            otlp_receiver: None,
            api_key: None,
        }
    }
}

/// Problems with the input that stop verification before any check (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{file} is not a valid ModelSpec:\n  {}", problems.join("\n  "))]
    Spec { file: String, problems: Vec<String> },
    #[error("--plan {file} is not a valid ExecutionPlan:\n  {}", problems.join("\n  "))]
    Plan { file: String, problems: Vec<String> },
    #[error("{0}")]
    Usage(String),
}
