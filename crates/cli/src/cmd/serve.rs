//! `modelspec serve MODEL|SPEC [--plan PLAN] [--host 127.0.0.1] [--port 8080] [--api-key KEY]
//! [--allowed-host NAME]`: the OpenAI-compatible HTTP server of ms-server. The plan is checked
//! before binding; the model loads after (`/healthz/ready` answers 503 until it is in). Ctrl-C
//! stops cleanly. Keys come from `--api-key`, `--api-key-file` and `MODELSPEC_API_KEYS`
//! together, and are never printed. A `registry://` model is resolved, verified and hashed
//! before the port is taken (see `registry_model`), and every response names its version.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use ms_runtime::load::{LoadRequest, PlanSource, resolve_plan};
use ms_server::ServerConfig;
use ms_server::guard::{API_KEYS_ENV, AllowedHosts, ApiKeys};
use ms_spec::types::plan::PlanSpec;

#[derive(ClapArgs)]
pub struct Args {
    /// A GGUF file, a ModelSpec file (its serving section sets the port, probe paths,
    /// maxConcurrency and timeoutSeconds), a catalog name, an address, or a registry version:
    /// registry://MODEL, registry://MODEL@VERSION or registry://MODEL@POINTER (a prod version
    /// is verified against --policy before it is loaded; every response then names the
    /// version, its manifest digest and signer in x-modelspec-* headers).
    #[arg(default_value = "gemma3-270m")]
    pub model: String,
    /// Where a registry:// model comes from and the policy that verifies it.
    #[command(flatten)]
    pub from_registry: super::registry_model::RegistryModelArgs,
    /// An ExecutionPlan file (over a ModelSpec's default plan): scheduler policy, batch, queue,
    /// limits, threads, quantization, sampling defaults.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Address to listen on (an IP address; 0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port [default: the ModelSpec's serving.port, else 8080]; 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// Worker threads of the engine (over the plan's).
    #[arg(long, short = 't')]
    pub threads: Option<u64>,
    /// Allow more threads than cores (up to 4 per core); the plan's `oversubscribe: true`.
    #[arg(long)]
    pub oversubscribe: bool,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Export OpenTelemetry traces over OTLP/HTTP to this collector (a base URL; spans go to
    /// URL/v1/traces), turning tracing on even if the ModelSpec does not. Without it, tracing
    /// follows the spec's observability.tracing.enabled and the endpoint the standard
    /// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables (default http://127.0.0.1:4318).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// An API key clients must send as `Authorization: Bearer KEY` (repeatable; also
    /// MODELSPEC_API_KEYS, comma-separated). Probes and metrics stay open.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// A file of API keys, one per line (`#` comments and blank lines skipped).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A host name clients may address the server by, besides IP addresses and localhost
    /// (repeatable; '*' accepts any, which re-opens DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Seconds a client has to send a request's headers (the first from connecting) [default: 20].
    #[arg(long, value_name = "SECS")]
    pub header_timeout: Option<f64>,
    /// Seconds a client has to send a request's body after its headers; then 408 [default: 60].
    #[arg(long, value_name = "SECS")]
    pub body_timeout: Option<f64>,
    /// Seconds a keep-alive connection may stay idle [default: 75].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<f64>,
    /// Connections open at once; more get 503 [default: the open-file limit less 128].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
}

/// The keys of the flags, the file and the environment, together.
fn api_keys(args: &Args) -> Result<ApiKeys> {
    let mut keys = ApiKeys::new(&args.api_keys).map_err(|e| anyhow::anyhow!("--api-key: {e}"))?;
    if let Some(path) = &args.api_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --api-key-file {}", path.display()))?;
        let from_file = ApiKeys::new(ApiKeys::lines_of(&text))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if from_file.is_empty() {
            bail!("{}: no API key in the file", path.display());
        }
        keys.extend(from_file);
    }
    if let Ok(env) = std::env::var(API_KEYS_ENV) {
        let listed = ApiKeys::comma_separated(&env);
        keys.extend(ApiKeys::new(listed).map_err(|e| anyhow::anyhow!("{API_KEYS_ENV}: {e}"))?);
    }
    Ok(keys)
}

/// A positive number of seconds from a flag.
fn seconds(flag: &str, value: Option<f64>) -> Result<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => {
            bail!("--{flag} must be a number of seconds above 0 and at most 86400 (got {s})")
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    // A registry version is resolved, verified, fetched and hashed before the port is taken.
    let (model, from_registry) =
        match super::registry_model::model_to_load(&args.model, &args.from_registry)? {
            Ok(m) => m,
            Err(code) => return Ok(code),
        };
    let request = LoadRequest {
        model,
        plan: args.plan.clone().map(PlanSource::File),
        flags: PlanSpec {
            threads: args.threads,
            oversubscribe: args.oversubscribe.then_some(true),
            ..PlanSpec::default()
        },
    };
    // Every plan problem is reported before the port is taken.
    let resolved = resolve_plan(
        request.plan.as_ref(),
        Some(&request.model),
        request.flags.clone(),
        &mut super::plan::print_progress,
    )?;
    let mut config = ServerConfig::for_request(&request)?;
    if let Some(m) = &from_registry {
        config.model_id = m.model_id.clone();
        config.version_headers = Some(m.headers.clone());
    }
    config.host = args.host;
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(n) = args.max_body_bytes {
        config.limits.max_body_bytes = n;
    }
    if let Some(url) = &args.otlp_endpoint {
        // As when the spec enables tracing: its metadata.name, else the model id.
        let service = resolved
            .model
            .as_ref()
            .and_then(|m| m.spec.as_ref())
            .map_or_else(|| config.model_id.clone(), |s| s.name.clone());
        config.tracing = Some(ms_server::telemetry::TraceExport::from_env(
            Some(url),
            &service,
        ));
    }
    config.api_keys = api_keys(&args)?;
    config.allowed_hosts =
        AllowedHosts::new(&args.allowed_hosts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for warning in config.warnings() {
        eprintln!("{warning}");
    }
    let c = &mut config.connections;
    for (flag, value, slot) in [
        ("header-timeout", args.header_timeout, &mut c.header_read),
        ("body-timeout", args.body_timeout, &mut c.body_read),
        ("idle-timeout", args.idle_timeout, &mut c.idle),
    ] {
        if let Some(d) = seconds(flag, value)? {
            *slot = d;
        }
    }
    if let Some(n) = args.max_connections {
        if n == 0 {
            bail!("--max-connections must be at least 1");
        }
        c.max_connections = n;
    }
    let server = ms_server::start(config, request)?;
    let base = format!("http://{}", server.addr);
    eprintln!("modelspec serve: listening on {base} (OpenAI API at {base}/v1)");
    let keys = &server.config().api_keys;
    if keys.is_empty() {
        eprintln!("no API key: requests are not authenticated (--api-key to require one)");
    } else {
        eprintln!(
            "{} API key(s): /v1 requests need 'Authorization: Bearer KEY'",
            keys.len()
        );
    }
    eprintln!(
        "model: {} as {:?}, plan {} — loading...",
        args.model,
        server.config().model_id,
        resolved.plan.metadata.name
    );
    server
        .wait_ready(Duration::from_secs(24 * 3600))
        .with_context(|| format!("serving {}", args.model))?;
    // The file mapped is the file hashed: not replaced or written in between.
    if let Some(Err(e)) = from_registry.as_ref().map(|m| m.check_unchanged()) {
        server.shutdown();
        return Ok(super::connect::report(&e, false));
    }
    if let Some(info) = server.ready_info() {
        eprintln!(
            "ready in {:.1} s: {} (quantization {})",
            info.load_time.as_secs_f64(),
            info.loaded.display(),
            info.quantization
        );
        eprint!("{}", info.plan_text);
    }
    let c = server.config();
    eprintln!(
        "endpoints: {base}/v1/chat/completions, {base}/v1/completions, {base}/v1/models, {base}{}, {base}{}, {base}{}, {base}/v1/plan, {base}/openapi.json",
        c.live_path, c.ready_path, c.metrics_path
    );
    if let Some(t) = &c.tracing {
        eprintln!(
            "tracing: OpenTelemetry spans of service {:?} to {} (from {})",
            t.service_name, t.endpoint, t.endpoint_from
        );
    }
    eprintln!("Ctrl-C stops the server.");
    server
        .wait_for_ctrl_c()
        .context("waiting for Ctrl-C (signal handler)")?;
    eprintln!("stopping: running requests end now");
    server.shutdown();
    Ok(ExitCode::SUCCESS)
}
