//! `modelspec verify SPEC`: runs the model under the spec's declared conditions and reports,
//! for each declaration, whether it held, was violated or could not be checked.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use ms_server::guard::{API_KEYS_ENV, ApiKeys};
use ms_verify::{ApiKey, MAX_DURATION, Options, VerifyError};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(clap::Args)]
#[command(
    after_help = "Checks: artifact sha256 (MV0101), the model serves (MV0201), the declared \
maxSequenceLengthTokens is accepted and within the server's context (MV0301, MV0302), batches \
within maxBatchSize (MV0303), p95 latency and requests/s under a load of \
serving.maxConcurrency clients, every one of whose requests must complete (MV0401 to MV0403), \
peak memory, the machine's cores, CPU features and memory (MV0501 to MV0504), probe and metrics \
endpoints (MV0601 to MV0604), spans exported over OTLP when tracing is enabled (MV0605), energy \
cost per 1k tokens (MV0701), \
precision and artifact quantization (MV0801, MV0802). Each check prints the declared value, \
the measured value and how it was measured.\n\
Exit status: 0 every checkable declaration held, 1 a declaration was violated (or, with --strict, \
could not be checked), 2 usage or input error."
)]
pub struct Args {
    /// The ModelSpec file to verify.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// ExecutionPlan for the local server (over the spec's default plan).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Check the server running at this address instead of starting one (e.g.
    /// http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Seconds of load (latency, throughput, energy), at most 600.
    #[arg(long, value_name = "S", default_value = "20", value_parser = parse_seconds)]
    pub duration: Duration,
    /// Seconds requests still in flight when the load ends may run before they count as cut
    /// off [default: the duration, at least 30 and at most 120].
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub tail: Option<Duration>,
    /// Tokens generated per load request.
    #[arg(long, value_name = "N", default_value_t = ms_verify::DEFAULT_MAX_TOKENS)]
    pub max_tokens: u64,
    /// Electricity price for the cost check [default: 0.15].
    #[arg(long, value_name = "USD")]
    pub usd_per_kwh: Option<f64>,
    /// Listen here (e.g. 127.0.0.1:4318) for the spans of the server at --url, which must
    /// export OTLP/HTTP there, to check a declared observability.tracing.enabled (MV0605); a
    /// local server gets a receiver on a free loopback port without it.
    #[arg(long, value_name = "ADDR")]
    pub otlp_receiver: Option<std::net::SocketAddr>,
    /// With --url: the API key of a server started with `serve --api-key`, sent as
    /// `Authorization: Bearer KEY` on every request [env: MODELSPEC_API_KEY, else the first
    /// key of MODELSPEC_API_KEYS, the variable `serve` reads]. Never printed.
    /// OPENAI_API_KEY is not read: verify may be pointed at any server, which must not get
    /// another service's secret.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Declarations that could not be checked fail the run too.
    #[arg(long)]
    pub strict: bool,
    /// Also write the report to this file (same format).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(n > 0.0 && n <= MAX_DURATION.as_secs_f64()) {
        return Err(format!(
            "give between 0 and {} seconds",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(n))
}

/// The key of `--api-key`, else of `MODELSPEC_API_KEY`, else the first of `MODELSPEC_API_KEYS`
/// (so that the shell that starts `serve` can run `verify` too), when a server is given with
/// `--url` (the environment is ignored for the server verify starts, which has no keys).
fn api_key(args: &Args) -> Result<Option<ApiKey>, String> {
    let (key, source) = match &args.api_key {
        Some(k) => (k.clone(), "--api-key".to_string()),
        None if args.url.is_none() => return Ok(None),
        None => match std::env::var(ApiKey::ENV) {
            Ok(k) => (k, ApiKey::ENV.to_string()),
            Err(_) => match std::env::var(API_KEYS_ENV) {
                Ok(keys) => match ApiKeys::comma_separated(&keys).next() {
                    Some(first) => (first.to_string(), API_KEYS_ENV.to_string()),
                    None => return Err(format!("{API_KEYS_ENV}: no key in the list")),
                },
                Err(_) => return Ok(None),
            },
        },
    };
    ApiKey::new(&key)
        .map(Some)
        .map_err(|e| format!("{source}: {e}"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let api_key = match api_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let opts = Options {
        spec: args.spec.clone(),
        plan: args.plan.clone(),
        url: args.url.clone(),
        duration: args.duration,
        tail: args.tail,
        max_tokens: args.max_tokens,
        usd_per_kwh: args.usd_per_kwh,
        otlp_receiver: args.otlp_receiver,
        api_key,
    };
    let quiet = args.quiet;
    let mut log = |m: &str| {
        if !quiet {
            eprintln!("verify: {m}");
        }
    };
    let report = match ms_verify::verify(&opts, &mut log) {
        Ok(r) => r,
        Err(e @ (VerifyError::Spec { .. } | VerifyError::Plan { .. } | VerifyError::Usage(_))) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let text = match args.format {
        Format::Text => report.to_text(args.strict),
        Format::Json => report.to_json(),
        Format::Sarif => report.to_sarif(args.strict),
    };
    if let Some(path) = &args.output {
        ms_fetch::write_atomic(path, text.as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if report.passed(args.strict) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
