//! The sequence of checks. Everything after the artifacts goes over HTTP, whether the server
//! was started here or runs elsewhere: the order is probes, the plan's context, the load
//! (latency, throughput, energy), the longest declared sequence, then memory and precision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::artifacts::{self, Weights};
use crate::check::{self, Check, Verdict, at_least, at_most};
use crate::client::{Client, Outcome};
use crate::load::{self, Profile};
use crate::prompt::{self, Counter};
use crate::report::{EnergyRecord, Report, Target};
use crate::spec_file::SpecFile;
use crate::tracing_check::Tracing;
use crate::{MAX_DURATION, Options, VerifyError, cost, prom};

/// Bytes per GB of `resources.memoryGb`: read as GiB, as Kubernetes' `Gi` limits are.
pub const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the local server may take to load the model.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// Prompt lengths of the load when the spec declares no maxSequenceLengthTokens.
const DEFAULT_PROMPT_CAP: usize = 256;
const METRIC_RSS: &str = "modelspec_process_resident_memory_bytes";
const METRIC_BATCH: &str = "modelspec_batch_size";
/// How often the gauges are read during the load.
const SAMPLE_MS: u64 = 100;
const METRIC_JOULES: &str = "modelspec_energy_joules_total";
const METRIC_PROMPT_TOKENS: &str = "modelspec_prompt_tokens_total";
const METRIC_GENERATED_TOKENS: &str = "modelspec_generated_tokens_total";

fn check_options(opts: &Options) -> Result<(), VerifyError> {
    let usage = |m: String| Err(VerifyError::Usage(m));
    if opts.duration.is_zero() || opts.duration > MAX_DURATION {
        return usage(format!(
            "--duration {}: give a number of seconds between 1 and {}",
            opts.duration.as_secs_f64(),
            MAX_DURATION.as_secs()
        ));
    }
    if opts.max_tokens == 0 {
        return usage("--max-tokens must be at least 1".into());
    }
    if let Some(p) = opts.usd_per_kwh
        && !(p.is_finite() && p >= 0.0)
    {
        return usage(format!(
            "--usd-per-kwh {p}: give a price of 0 or more, e.g. 0.15"
        ));
    }
    if let Some(url) = &opts.url {
        if opts.plan.is_some() {
            return usage("--plan applies to the server verify starts; with --url the server runs its own plan (PUT /v1/plan changes it)".into());
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return usage(format!(
                "--url {url}: give the server's address, e.g. http://127.0.0.1:8080"
            ));
        }
    }
    if let Some(p) = &opts.plan {
        if !p.is_file() {
            return usage(format!("--plan {}: no such file", p.display()));
        }
        // A broken plan is an input error, found before any work rather than as a server
        // that does not start.
        let name = p.display().to_string();
        let run = ms_spec::validate_inputs(std::slice::from_ref(&name), Default::default());
        let problems: Vec<String> = run
            .results
            .iter()
            .flat_map(|r| &r.diagnostics)
            .filter(|d| d.severity == ms_spec::Severity::Error)
            .map(|d| {
                format!(
                    "{}:{}:{}: [{}] {}",
                    d.file, d.line, d.column, d.code, d.message
                )
            })
            .collect();
        if !problems.is_empty() {
            return Err(VerifyError::Plan {
                file: name,
                problems,
            });
        }
    }
    if !opts.spec.is_file() {
        return usage(format!(
            "{}: no such file; give the path of a ModelSpec file",
            opts.spec.display()
        ));
    }
    Ok(())
}

/// The server under test.
enum Served {
    Local(crate::local::Local),
    Remote,
}

/// Verifies `opts.spec`; `log` hears what is being done (for a progress line on stderr).
pub fn verify(opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Report, VerifyError> {
    check_options(opts)?;
    let spec = SpecFile::load(&opts.spec)?;
    let mut checks = Vec::new();
    let (artifact_checks, weights) = artifacts::check(&spec, log);
    checks.extend(artifact_checks);

    let mut report = Report::new(&spec, Target::local());
    let ready_decl = format!(
        "model {} serves completions",
        spec.doc.spec.identity.model.id
    );
    let ready = Check::new(check::SERVER_READY, "/spec/identity/model/id", ready_decl);
    let remote = opts.url.is_some();
    let tracing = Tracing::start(&spec, remote, opts.otlp_receiver).map_err(VerifyError::Usage)?;
    let traces = tracing.as_ref().and_then(Tracing::endpoint);
    let (served, base, ready) = match &opts.url {
        Some(url) => {
            report.target = Target::remote(url);
            (Served::Remote, url.trim_end_matches('/').to_string(), ready)
        }
        None => {
            log("starting the server (loading the model)");
            match crate::local::start(&spec.path, opts.plan.as_deref(), READY_TIMEOUT, traces) {
                Ok((handle, took)) => {
                    let base = format!("http://{}", handle.addr());
                    report.target = Target::local_at(&base);
                    let ready = ready.method(format!(
                        "ms_server::start on 127.0.0.1:0, then wait_ready: ready after {:.1} s",
                        took.as_secs_f64()
                    ));
                    (Served::Local(handle), base, ready)
                }
                Err(e) => {
                    checks.push(
                        ready
                            .method("ms_server::start on 127.0.0.1:0, then wait_ready")
                            .measured("did not become ready", Verdict::Violated)
                            .reason(e.clone()),
                    );
                    not_checked_after_serving(
                        &spec,
                        &mut checks,
                        "the server did not start (see MV0201)",
                    );
                    if let Some(t) = tracing {
                        checks.push(t.not_checked("the server did not start (see MV0201)"));
                    }
                    return Ok(report.finish(checks, &spec));
                }
            }
        }
    };
    let client = Client::new(&base, REQUEST_TIMEOUT);
    let mut session = Session {
        spec: &spec,
        opts,
        client,
        checks,
        report,
        weights,
        local: matches!(served, Served::Local(_)),
    };
    session.run(ready, log);
    let Session {
        mut checks, report, ..
    } = session;
    if let Served::Local(handle) = served {
        log("stopping the server");
        handle.shutdown();
    }
    // After the stop: a local server flushes its last spans when it stops.
    if let Some(t) = tracing {
        log("counting the spans received");
        checks.push(t.finish(remote));
    }
    Ok(report.finish(checks, &spec))
}

/// Everything that needs a server, marked not checked with `why`.
fn not_checked_after_serving(spec: &SpecFile, checks: &mut Vec<Check>, why: &str) {
    let mut s = Session::declarations(spec);
    for c in s.drain(..) {
        checks.push(c.not_checked(why));
    }
}

struct Session<'a> {
    spec: &'a SpecFile,
    opts: &'a Options,
    client: Client,
    checks: Vec<Check>,
    report: Report,
    weights: Option<Weights>,
    local: bool,
}

/// The spec's declarations that need a running server, as unchecked checks.
struct Declared {
    max_seq: Option<u64>,
    max_batch: Option<u64>,
    cpu_cores: Option<u64>,
    features: Vec<String>,
    concurrency: Option<u64>,
    p95_ms: Option<f64>,
    rps: Option<f64>,
    memory_gb: Option<f64>,
    readiness: Option<String>,
    liveness: Option<String>,
    metrics_enabled: Option<bool>,
    metrics_port: Option<u64>,
    cost_per_1k: Option<f64>,
    precision: Option<String>,
    pricing: Option<String>,
}

fn declared(spec: &SpecFile) -> Declared {
    let s = &spec.doc.spec;
    let ops = s.operations.as_ref();
    let serving = ops.and_then(|o| o.serving.as_ref());
    let scaling = ops.and_then(|o| o.scaling.as_ref());
    let metrics = ops
        .and_then(|o| o.observability.as_ref())
        .and_then(|o| o.metrics.as_ref());
    let cost = s.governance.as_ref().and_then(|g| g.cost.as_ref());
    Declared {
        max_seq: s
            .runtime
            .batch
            .as_ref()
            .and_then(|b| b.max_sequence_length_tokens),
        max_batch: s.runtime.batch.as_ref().and_then(|b| b.max_batch_size),
        cpu_cores: s.runtime.resources.as_ref().and_then(|r| r.cpu_cores),
        features: s.runtime.accelerator.features.clone().unwrap_or_default(),
        concurrency: serving.and_then(|v| v.max_concurrency),
        p95_ms: scaling.and_then(|v| v.target_latency_ms_p95),
        rps: scaling.and_then(|v| v.target_rps),
        memory_gb: s.runtime.resources.as_ref().and_then(|r| r.memory_gb),
        readiness: serving
            .and_then(|v| v.readiness_probe.as_ref())
            .and_then(|p| p.path.clone()),
        liveness: serving
            .and_then(|v| v.liveness_probe.as_ref())
            .and_then(|p| p.path.clone()),
        metrics_enabled: metrics.and_then(|m| m.enabled),
        metrics_port: metrics.and_then(|m| m.port),
        cost_per_1k: cost.and_then(|c| c.target_cost_per1k_tokens_usd),
        precision: s.identity.model.precision.clone(),
        pricing: cost.and_then(|c| c.pricing_hints.as_ref()).map(|h| {
            [h.cloud_provider.as_deref(), h.instance_type.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        }),
    }
}

const P_MAX_SEQ: &str = "/spec/runtime/batch/maxSequenceLengthTokens";
const P_MAX_BATCH: &str = "/spec/runtime/batch/maxBatchSize";
const P_CPU_CORES: &str = "/spec/runtime/resources/cpuCores";
const P_FEATURES: &str = "/spec/runtime/accelerator/features";
const P_P95: &str = "/spec/operations/scaling/targetLatencyMsP95";
const P_RPS: &str = "/spec/operations/scaling/targetRps";
const P_MEMORY: &str = "/spec/runtime/resources/memoryGb";
const P_READY: &str = "/spec/operations/serving/readinessProbe/path";
const P_LIVE: &str = "/spec/operations/serving/livenessProbe/path";
const P_METRICS: &str = "/spec/operations/observability/metrics/enabled";
const P_METRICS_PORT: &str = "/spec/operations/observability/metrics/port";
const P_COST: &str = "/spec/governance/cost/targetCostPer1kTokensUsd";
const P_PRECISION: &str = "/spec/identity/model/precision";

/// A number as a person writes it: no trailing zeros; 1 decimal from 100 up, 2 from 1 up, 3
/// significant digits below 1 (costs are fractions of a cent).
pub fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let digits = if v.abs() >= 100.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        (-v.abs().log10()).ceil() as usize + 2
    };
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Session<'_> {
    /// The checks of every declaration that needs a server, not yet decided.
    fn declarations(spec: &SpecFile) -> Vec<Check> {
        let d = declared(spec);
        let mut v = Vec::new();
        if let Some(n) = d.max_seq {
            v.push(Check::new(
                check::MAX_SEQUENCE_ACCEPTED,
                P_MAX_SEQ,
                format!("{n} tokens"),
            ));
            v.push(Check::new(
                check::CONTEXT_LIMIT,
                P_MAX_SEQ,
                format!("≥ {n} tokens"),
            ));
        }
        if let Some(b) = d.max_batch {
            v.push(Check::new(
                check::BATCH_SIZE,
                P_MAX_BATCH,
                format!("≤ {b} requests per batch"),
            ));
        }
        if let Some(n) = d.cpu_cores {
            v.push(Check::new(
                check::CPU_CORES,
                P_CPU_CORES,
                format!("{n} cores"),
            ));
        }
        if !d.features.is_empty() {
            v.push(Check::new(
                check::CPU_FEATURES,
                P_FEATURES,
                d.features.join(", "),
            ));
        }
        if let Some(ms) = d.p95_ms {
            v.push(Check::new(
                check::LATENCY_P95,
                P_P95,
                format!("≤ {} ms", num(ms)),
            ));
        }
        if let Some(r) = d.rps {
            v.push(Check::new(
                check::THROUGHPUT,
                P_RPS,
                format!("≥ {} req/s", num(r)),
            ));
        }
        if let Some(gb) = d.memory_gb {
            v.push(Check::new(
                check::MEMORY_PEAK,
                P_MEMORY,
                format!("≤ {} GiB", num(gb)),
            ));
        }
        if let Some(p) = &d.readiness {
            v.push(Check::new(
                check::READINESS_PROBE,
                P_READY,
                format!("GET {p} → 200"),
            ));
        }
        if let Some(p) = &d.liveness {
            v.push(Check::new(
                check::LIVENESS_PROBE,
                P_LIVE,
                format!("GET {p} → 200"),
            ));
        }
        if d.metrics_enabled == Some(true) {
            v.push(Check::new(
                check::METRICS_ENDPOINT,
                P_METRICS,
                "metrics enabled",
            ));
            if let Some(port) = d.metrics_port {
                v.push(Check::new(
                    check::METRICS_PORT,
                    P_METRICS_PORT,
                    format!("port {port}"),
                ));
            }
        }
        if let Some(c) = d.cost_per_1k {
            v.push(Check::new(
                check::COST_PER_1K,
                P_COST,
                format!("≤ {} USD per 1k tokens", num(c)),
            ));
        }
        if let Some(p) = &d.precision {
            v.push(Check::new(check::PRECISION, P_PRECISION, p.clone()));
        }
        v
    }

    fn take(&mut self, pending: &mut Vec<Check>, code: &str) -> Option<Check> {
        let i = pending.iter().position(|c| c.code == code)?;
        Some(pending.remove(i))
    }

    fn run(&mut self, ready: Check, log: &mut dyn FnMut(&str)) {
        let d = declared(self.spec);
        let mut pending = Self::declarations(self.spec);

        // A server still loading its model answers 503: wait for it (a local one is ready).
        let waiting = Instant::now();
        let mut plan_reply = self.client.get("/v1/plan");
        if matches!(&plan_reply, Ok(r) if r.status == 503) {
            log("waiting for the server to load its model (GET /v1/plan answers 503)");
        }
        while matches!(&plan_reply, Ok(r) if r.status == 503) && waiting.elapsed() < READY_TIMEOUT {
            std::thread::sleep(Duration::from_millis(500));
            plan_reply = self.client.get("/v1/plan");
        }
        // What the server says it is and runs.
        let models = self.client.get("/v1/models");
        let model_id = models
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .and_then(|v| {
                v.pointer("/data/0/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.spec.doc.spec.identity.model.id.clone());
        self.report.served_model = models.as_ref().ok().and_then(|r| r.json());
        let plan = plan_reply
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json());
        self.report.plan = plan.clone();
        let ready = match &models {
            Ok(r) if r.status == 200 => {
                if self.local {
                    ready
                } else {
                    ready.method(format!(
                        "GET {} answered 200",
                        self.client.url("/v1/models")
                    ))
                }
            }
            Ok(r) => ready
                .measured(format!("HTTP {}", r.status), Verdict::Violated)
                .reason(format!(
                    "GET /v1/models answered {}: {}",
                    r.status,
                    crate::client::error_text(&r.body)
                )),
            Err(e) => {
                let why = format!("the server does not answer: {e}");
                self.checks.push(
                    ready
                        .measured("no answer", Verdict::Violated)
                        .reason(why.clone()),
                );
                for c in pending.drain(..) {
                    self.checks
                        .push(c.not_checked("the server does not answer (see MV0201)"));
                }
                return;
            }
        };

        // Probes and metrics.
        for (code, path) in [
            (check::READINESS_PROBE.code, d.readiness.clone()),
            (check::LIVENESS_PROBE.code, d.liveness.clone()),
        ] {
            if let (Some(c), Some(path)) = (self.take(&mut pending, code), path) {
                let c = c.method(format!("GET {}", self.client.url(&path)));
                self.checks.push(match self.client.get(&path) {
                    Ok(r) => c.measured(
                        format!("HTTP {}", r.status),
                        if r.status == 200 {
                            Verdict::Held
                        } else {
                            Verdict::Violated
                        },
                    ),
                    Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
                });
            }
        }
        if let Some(c) = self.take(&mut pending, check::METRICS_ENDPOINT.code) {
            let c = c.method(format!(
                "GET {} and look for modelspec_* samples",
                self.client.url("/metrics")
            ));
            self.checks.push(match self.client.get("/metrics") {
                Ok(r) if r.status == 200 => {
                    let n = prom::parse(&r.body)
                        .iter()
                        .filter(|s| s.name.starts_with("modelspec_"))
                        .count();
                    if n > 0 {
                        c.measured(format!("HTTP 200, {n} modelspec_* samples"), Verdict::Held)
                    } else {
                        c.measured("HTTP 200, no modelspec_* samples", Verdict::Violated)
                    }
                }
                Ok(r) => c.measured(format!("HTTP {}", r.status), Verdict::Violated),
                Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
            });
        }
        if let Some(c) = self.take(&mut pending, check::METRICS_PORT.code) {
            let port = d.metrics_port.unwrap_or(0);
            self.checks.push(if self.local {
                c.not_checked(format!(
                    "the local server listens on a free loopback port, so port {port} cannot be checked here; run `modelspec verify --url` against the deployment"
                ))
            } else {
                let url = with_port(self.client.base(), port)
                    .map(|b| format!("{b}/metrics"))
                    .unwrap_or_default();
                let c = c.method(format!("GET {url}"));
                match self.client.get_url(&url) {
                    Ok(r) if r.status == 200 => c.measured("HTTP 200", Verdict::Held),
                    Ok(r) => c.measured(format!("HTTP {}", r.status), Verdict::Violated),
                    Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
                }
            });
        }

        // The context the server runs with.
        let context = context_of(plan.as_ref(), self.report.served_model.as_ref());
        if let Some(c) = self.take(&mut pending, check::CONTEXT_LIMIT.code) {
            let n = d.max_seq.unwrap_or(0) as f64;
            self.checks.push(match &context {
                Some((ctx, trained, how)) => {
                    let mut c = c
                        .method(how.clone())
                        .measured(format!("{ctx} tokens"), at_least(*ctx as f64, n))
                        .values("tokens", n, Some(*ctx as f64));
                    if c.verdict == Verdict::Violated {
                        c = c.reason(match trained {
                            Some(t) if (*t as f64) >= n => format!(
                                "the model was trained for {t} tokens but the server runs with {ctx}: raise contextLength in the execution plan"
                            ),
                            Some(t) => format!(
                                "the model itself supports only {t} tokens; the declaration cannot hold with this model"
                            ),
                            None => format!("the server runs with a context of {ctx} tokens"),
                        });
                    }
                    c
                }
                None => c.not_checked(
                    "the server reports no context length (GET /v1/plan and /v1/models)",
                ),
            });
        }

        // How prompt lengths are known.
        let counter = self.counter(&model_id, log);
        let ctx_limit = context.as_ref().map(|(c, _, _)| *c as usize);
        let declared_cap = d.max_seq.map_or(DEFAULT_PROMPT_CAP, |n| n as usize);
        let room = ctx_limit.unwrap_or(usize::MAX);
        let cap = declared_cap
            .min(room)
            .saturating_sub(self.opts.max_tokens as usize)
            .max(2);
        let profile = match &counter {
            Ok(counter) => {
                let prompts: Vec<_> = load::prompt_lengths(cap)
                    .into_iter()
                    .map(|n| counter.prompt(n))
                    .collect();
                Some(Profile {
                    concurrency: d.concurrency.map_or(1, |c| c as usize).max(1),
                    duration: self.opts.duration,
                    max_tokens: self.opts.max_tokens,
                    prompts,
                    model: model_id.clone(),
                    description: format!(
                        "prompts of 16, 32, 64, ... tokens up to {cap} (the {} minus the {} generated tokens{}), taken in turn; lengths {}",
                        if d.max_seq.is_some() {
                            "declared maxSequenceLengthTokens, within the server's context,"
                        } else {
                            "default cap (no maxSequenceLengthTokens declared)"
                        },
                        self.opts.max_tokens,
                        if ctx_limit.is_some_and(|c| c < declared_cap) {
                            "; the server's context is shorter than declared"
                        } else {
                            ""
                        },
                        if counter.is_exact() {
                            "counted with the model's tokenizer"
                        } else {
                            "approximate: extrapolated from the server's usage.prompt_tokens"
                        }
                    ),
                })
            }
            Err(_) => None,
        };

        // The load.
        let sampler = Sampler::start(self.client.clone());
        let before = self.metrics();
        let (summary, energy) = match &profile {
            Some(profile) => {
                log(&format!(
                    "load: {} clients for {:.0} s",
                    profile.concurrency,
                    profile.duration.as_secs_f64()
                ));
                let run = load::run(&self.client, profile);
                let after = self.metrics();
                let summary = load::Summary::of(&run);
                let energy = energy_of(before.as_deref(), after.as_deref(), run.wall);
                (Some(summary), energy)
            }
            None => (None, None),
        };
        let no_load = counter.as_ref().err().cloned();
        self.report.profile = profile.clone();
        self.report.load = summary.clone();
        self.report.energy = energy.clone();

        // The longest declared sequence, after the load so it does not disturb its timings.
        if let Some(c) = self.take(&mut pending, check::MAX_SEQUENCE_ACCEPTED.code) {
            let n = d.max_seq.unwrap_or(1) as usize;
            self.checks.push(match &counter {
                Ok(counter) => {
                    log(&format!("sending a {n}-token sequence"));
                    self.max_sequence(c, counter, n, &model_id, ctx_limit)
                }
                Err(e) => c.not_checked(e.clone()),
            });
        }
        let peaks = sampler.stop();

        let ready = match &summary {
            Some(s) if s.requests > 0 && s.succeeded == 0 => ready
                .measured(
                    format!("0 of {} load requests succeeded", s.requests),
                    Verdict::Violated,
                )
                .reason(s.errors.join("; ")),
            Some(s) => ready.measured(
                format!(
                    "ready; {} of {} load requests succeeded",
                    s.succeeded, s.requests
                ),
                Verdict::Held,
            ),
            None => ready.measured("ready", Verdict::Held),
        };
        self.checks.push(ready);

        // Latency and throughput.
        let load_method = |s: &load::Summary, p: &Profile, what: &str| {
            format!(
                "{what}; {} clients sending streamed greedy completions of {} tokens back to back for {:.0} s, then up to {:.0} s for those in flight ({} requests, {} failed, {} unfinished); {}",
                p.concurrency,
                p.max_tokens,
                p.duration.as_secs_f64(),
                load::tail(p.duration).as_secs_f64(),
                s.requests,
                s.failed,
                s.unfinished,
                p.description
            )
        };
        let why_no_load = || {
            no_load
                .clone()
                .unwrap_or_else(|| "no load was run".to_string())
        };
        if let Some(c) = self.take(&mut pending, check::LATENCY_P95.code) {
            let target = d.p95_ms.unwrap_or(0.0);
            self.checks.push(match (&summary, &profile) {
                (Some(s), Some(p)) => {
                    let c = c.method(load_method(
                        s,
                        p,
                        "nearest-rank p95 of the end-to-end latency (request sent to stream end) of the succeeded requests, and of the unfinished ones at the time they ran",
                    ));
                    match s.latency.p95_ms {
                        Some(p95) if s.unfinished == 0 || p95 > target => {
                            let bound = if s.unfinished > 0 { "≥ " } else { "" };
                            let c = c.measured(
                                format!(
                                    "{bound}{} ms (p50 {bound}{} ms, TTFT p95 {} ms)",
                                    num(p95),
                                    num(s.latency.p50_ms.unwrap_or(0.0)),
                                    num(s.ttft.p95_ms.unwrap_or(0.0))
                                ),
                                at_most(p95, target),
                            )
                            .values("ms", target, Some(p95));
                            if s.unfinished > 0 {
                                c.reason(format!(
                                    "{} requests did not finish (timed out or still running when the load ended), so the percentiles are lower bounds",
                                    s.unfinished
                                ))
                            } else {
                                c
                            }
                        }
                        Some(p95) => c
                            .measured(format!("≥ {} ms", num(p95)), Verdict::NotChecked)
                            .reason(format!(
                                "{} requests did not finish (timed out or still running when the load ended): the p95 is only known to be at least {} ms",
                                s.unfinished,
                                num(p95)
                            )),
                        None => {
                            c.not_checked(format!("no request succeeded: {}", s.errors.join("; ")))
                        }
                    }
                }
                _ => c.not_checked(why_no_load()),
            });
        }
        if let Some(c) = self.take(&mut pending, check::THROUGHPUT.code) {
            let target = d.rps.unwrap_or(0.0);
            self.checks.push(match (&summary, &profile) {
                (Some(s), Some(p)) => c
                    .method(load_method(
                        s,
                        p,
                        "succeeded requests / wall time from the first request to the end of the last",
                    ))
                    .measured(
                        format!("{} req/s", num(s.requests_per_second)),
                        at_least(s.requests_per_second, target),
                    )
                    .values("req/s", target, Some(s.requests_per_second)),
                _ => c.not_checked(why_no_load()),
            });
        }

        // Memory.
        if let Some(c) = self.take(&mut pending, check::MEMORY_PEAK.code) {
            let limit = d.memory_gb.unwrap_or(0.0) * BYTES_PER_GB;
            let peak = match peaks.rss {
                Some((bytes, n)) => Some((
                    bytes,
                    format!(
                        "highest {METRIC_RSS} of {n} reads of GET /metrics every {SAMPLE_MS} ms during the load and the longest sequence (1 GiB = 2^30 bytes){}",
                        if self.local {
                            "; the in-process server shares its process with the verifier (its tokenizer copy and load clients, a few tens of MB)"
                        } else {
                            ""
                        }
                    ),
                )),
                None if self.local => vm_hwm().map(|b| {
                    (
                        b,
                        "VmHWM (peak resident set) of this process, which hosts the server (/proc/self/status; the server exports no memory gauge)".to_string(),
                    )
                }),
                None => None,
            };
            self.checks.push(match peak {
                Some((bytes, method)) => c
                    .method(method)
                    .measured(
                        format!("{} GiB", num(bytes / BYTES_PER_GB)),
                        at_most(bytes, limit),
                    )
                    .values("bytes", limit, Some(bytes)),
                None => c.not_checked(format!("the server exports no {METRIC_RSS} at /metrics")),
            });
        }

        // Cost.
        if let Some(c) = self.take(&mut pending, check::COST_PER_1K.code) {
            let target = d.cost_per_1k.unwrap_or(0.0);
            let (price, price_source) = match self.opts.usd_per_kwh {
                Some(p) => (p, "--usd-per-kwh".to_string()),
                None => (
                    cost::DEFAULT_USD_PER_KWH,
                    "modelspec's default (about the 2024 US commercial average; set --usd-per-kwh)"
                        .to_string(),
                ),
            };
            let hints = d
                .pricing
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| {
                    format!("; pricingHints ({h}) carry no price, instance rental not included")
                })
                .unwrap_or_default();
            self.checks.push(match &energy {
                Some(e) if e.tokens > 0.0 => {
                    let usd = cost::usd_per_1k_tokens(e.joules, e.tokens, price).unwrap_or(0.0);
                    c.method(format!(
                        "energy only: {} J ({}) over {} tokens (prompt + generated) of the load, at {} USD/kWh from {price_source}: J / 3.6e6 × USD/kWh / tokens × 1000{hints}{}",
                        num(e.joules),
                        e.source,
                        num(e.tokens),
                        num(price),
                        if self.local {
                            "; the in-process server's energy covers the whole process, the verifier's load clients included"
                        } else {
                            ""
                        }
                    ))
                    .measured(format!("{} USD per 1k tokens", num(usd)), at_most(usd, target))
                    .values("USD/1k tokens", target, Some(usd))
                }
                Some(_) => c.not_checked("no token was processed during the load"),
                None => c.not_checked(if summary.is_none() {
                    why_no_load()
                } else {
                    format!("the server exports no {METRIC_JOULES} with token counters at /metrics")
                }),
            });
        }

        // Batching, cores and CPU features: what the server runs with, against the declaration.
        let plan_u64 = |ptr: &str| {
            plan.as_ref()
                .and_then(|p| p.pointer(ptr))
                .and_then(Value::as_u64)
        };
        if let Some(c) = self.take(&mut pending, check::BATCH_SIZE.code) {
            let limit = d.max_batch.unwrap_or(0);
            let planned = plan_u64("/spec/scheduler/maxBatch");
            let seen = peaks.batch.map(|b| b as u64);
            self.checks.push(match (planned, seen) {
                (None, None) => c.not_checked(format!(
                    "the server reports neither its plan (GET /v1/plan) nor {METRIC_BATCH}"
                )),
                (planned, seen) => {
                    let worst = planned.unwrap_or(0).max(seen.unwrap_or(0));
                    let parts: Vec<String> = [
                        planned.map(|p| format!("the plan allows {p}")),
                        seen.map(|b| format!("largest batch seen {b}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let c = c
                        .method(format!(
                            "scheduler.maxBatch of the effective plan (GET /v1/plan) and the highest {METRIC_BATCH} of {} reads of /metrics every {SAMPLE_MS} ms during the load",
                            peaks.samples
                        ))
                        .measured(parts.join(", "), at_most(worst as f64, limit as f64))
                        .values("requests", limit as f64, Some(worst as f64));
                    if c.verdict == Verdict::Violated {
                        c.reason(format!(
                            "the server may evaluate {worst} requests together, more than the {limit} declared: lower scheduler.maxBatch in the execution plan"
                        ))
                    } else {
                        c
                    }
                }
            });
        }
        if let Some(c) = self.take(&mut pending, check::CPU_CORES.code) {
            let cores = d.cpu_cores.unwrap_or(0);
            self.checks.push(match plan_u64("/spec/threads") {
                Some(t) => {
                    let c = c
                        .method("threads of the effective plan (GET /v1/plan): the engine's worker threads, one per core")
                        .measured(format!("{t} threads"), at_most(t as f64, cores as f64))
                        .values("cores", cores as f64, Some(t as f64));
                    if c.verdict == Verdict::Violated {
                        c.reason(format!(
                            "{t} worker threads on {cores} cores oversubscribe them: set threads: {cores} in the execution plan"
                        ))
                    } else {
                        c
                    }
                }
                None => c.not_checked("the server does not report its plan (GET /v1/plan)"),
            });
        }
        if let Some(c) = self.take(&mut pending, check::CPU_FEATURES.code) {
            let have: Option<Vec<String>> = plan
                .as_ref()
                .and_then(|p| p.pointer("/status/cpuFeatures"))
                .and_then(Value::as_str)
                .map(|f| {
                    f.split([',', ' '])
                        .filter(|x| !x.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                });
            self.checks.push(match have {
                Some(have) => {
                    let missing: Vec<&String> = d
                        .features
                        .iter()
                        .filter(|f| !have.contains(&f.to_ascii_lowercase()))
                        .collect();
                    let c = c
                        .method("status.cpuFeatures of the effective plan (GET /v1/plan): what the serving CPU has")
                        .measured(
                            have.join(", "),
                            if missing.is_empty() {
                                Verdict::Held
                            } else {
                                Verdict::Violated
                            },
                        );
                    if missing.is_empty() {
                        c
                    } else {
                        c.reason(format!(
                            "the serving CPU lacks {}",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                }
                None => c.not_checked("the server does not report its CPU features (GET /v1/plan)"),
            });
        }

        // Precision.
        if let Some(c) = self.take(&mut pending, check::PRECISION.code) {
            let declared = d.precision.clone().unwrap_or_default();
            let planned = plan
                .as_ref()
                .and_then(|p| p.pointer("/spec/quantization"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let stored = self.weights.as_ref().and_then(|w| w.file_type.clone());
            let ran = match (planned.as_deref(), stored) {
                (Some("source"), Some(ft)) => Some((
                    ft,
                    "the effective plan (GET /v1/plan) runs the artifact as stored (quantization: source); general.file_type of the declared weights file".to_string(),
                )),
                (Some("source"), None) => None,
                (Some(q), _) => Some((
                    q.to_string(),
                    "quantization of the effective plan (GET /v1/plan): the weights are requantized to it at load".to_string(),
                )),
                (None, _) => None,
            };
            self.checks.push(match ran {
                Some((ran, method)) => {
                    let c = c.method(method);
                    match artifacts::precision_matches(&declared, &ran) {
                        Some(true) => c.measured(ran, Verdict::Held),
                        Some(false) => c.measured(ran.clone(), Verdict::Violated).reason(format!(
                            "the spec declares {declared} but {ran} weights ran"
                        )),
                        None => c.measured(ran, Verdict::NotChecked).reason(format!(
                            "{declared:?} is not a precision modelspec can compare (use a quantization name such as q4_k_m, q8_0, f16)"
                        )),
                    }
                }
                None => c.not_checked(if planned.is_none() {
                    "the server does not report its plan (GET /v1/plan)".to_string()
                } else {
                    "the plan runs the artifact as stored and its file type is unknown".to_string()
                }),
            });
        }
        // Anything left had no way to be checked.
        for c in pending {
            self.checks.push(c.not_checked("not measured"));
        }
    }

    fn metrics(&self) -> Option<Vec<prom::Sample>> {
        self.client
            .get("/metrics")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| prom::parse(&r.body))
    }

    /// The model's tokenizer when the weights are at hand, else a calibration against the
    /// server's own prompt counts.
    fn counter(&self, model: &str, log: &mut dyn FnMut(&str)) -> Result<Counter, String> {
        if let Some(w) = &self.weights
            && let Ok(file) = ms_gguf::GgufFile::open(&w.path)
            && let Ok(tok) = ms_engine::tokenizer::Tokenizer::from_gguf(&file)
        {
            return Ok(Counter::Exact(Box::new(tok)));
        }
        log("calibrating prompt lengths against the server");
        let mut points = Vec::new();
        for words in [8usize, 64] {
            let body = json!({
                "model": model,
                "prompt": prompt::text_of(words),
                "max_tokens": 1,
                "temperature": 0.0,
            });
            let r = self.client.post_json("/v1/completions", &body)?;
            let tokens = r
                .json()
                .and_then(|v| v.pointer("/usage/prompt_tokens").and_then(Value::as_u64))
                .ok_or_else(|| {
                    format!(
                        "prompt lengths cannot be set: the spec's weights are not at hand and POST /v1/completions answered {} without usage.prompt_tokens",
                        r.status
                    )
                })?;
            points.push((words, tokens));
        }
        Counter::calibrated(points[0], points[1])
            .ok_or_else(|| "the server's prompt token counts do not grow with the prompt".into())
    }

    fn max_sequence(
        &self,
        c: Check,
        counter: &Counter,
        n: usize,
        model: &str,
        ctx_limit: Option<usize>,
    ) -> Check {
        let prompt = counter.prompt(n.saturating_sub(1).max(1));
        let body = load::request_body(model, &prompt.text, 1);
        let o: Outcome = self.client.stream_completion(&body, None);
        let how = if counter.is_exact() {
            "counted with the model's tokenizer"
        } else {
            "approximate, from the server's counts"
        };
        let c = c.method(format!(
            "one streamed completion: a prompt of {} tokens ({how}) + 1 generated token",
            prompt.tokens
        ));
        let total = o.prompt_tokens.unwrap_or(prompt.tokens as u64) + 1;
        let c = c.values("tokens", n as f64, o.ok().then_some(total as f64));
        if o.ok() {
            if total >= n as u64 {
                c.measured(
                    format!(
                        "accepted: {total} tokens in {} ms",
                        num(o.latency.as_secs_f64() * 1e3)
                    ),
                    Verdict::Held,
                )
            } else {
                c.measured(format!("accepted as {total} tokens"), Verdict::Violated)
                    .reason(format!(
                        "the server counted {} prompt tokens where {} were sent: it truncates",
                        o.prompt_tokens.unwrap_or(0),
                        prompt.tokens
                    ))
            }
        } else {
            let limit = ctx_limit
                .map(|l| format!(" (the server's context is {l} tokens)"))
                .unwrap_or_default();
            c.measured("rejected", Verdict::Violated).reason(format!(
                "{}{limit}",
                o.error.unwrap_or_else(|| format!("HTTP {}", o.status))
            ))
        }
    }
}

/// The context length the server runs with, the model's trained one, and where they came from.
fn context_of(plan: Option<&Value>, models: Option<&Value>) -> Option<(u64, Option<u64>, String)> {
    if let Some(p) = plan
        && let Some(ctx) = p.pointer("/spec/contextLength").and_then(Value::as_u64)
    {
        let trained = p
            .pointer("/status/modelContextLength")
            .and_then(Value::as_u64);
        return Some((
            ctx,
            trained,
            format!(
                "spec.contextLength of the effective plan (GET /v1/plan){}",
                trained
                    .map(|t| format!("; the model was trained for {t}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let m = models?.pointer("/data/0")?;
    ["context_length", "max_model_len", "context_window"]
        .iter()
        .find_map(|k| {
            m.get(*k)
                .and_then(Value::as_u64)
                .map(|v| (v, None, format!("{k} of GET /v1/models")))
        })
}

/// `base` (`http://host:port`) with another port.
fn with_port(base: &str, port: u64) -> Option<String> {
    let (scheme, rest) = base.split_once("://")?;
    let host_port = rest.split('/').next()?;
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    };
    Some(format!("{scheme}://{host}:{port}"))
}

/// Energy and tokens between two scrapes of /metrics.
fn energy_of(
    before: Option<&[prom::Sample]>,
    after: Option<&[prom::Sample]>,
    wall: Duration,
) -> Option<EnergyRecord> {
    let (b, a) = (before?, after?);
    let delta = |name: &str| Some(prom::sum(a, name)? - prom::sum(b, name).unwrap_or(0.0));
    let joules = delta(METRIC_JOULES)?;
    let tokens = delta(METRIC_PROMPT_TOKENS)? + delta(METRIC_GENERATED_TOKENS)?;
    let labels = prom::labels(a, METRIC_JOULES).join(", ");
    Some(EnergyRecord {
        joules,
        tokens,
        seconds: wall.as_secs_f64(),
        source: if labels.is_empty() {
            format!("{METRIC_JOULES} increase")
        } else {
            format!("{METRIC_JOULES}{{{labels}}} increase")
        },
    })
}

/// Peak resident set of this process (`VmHWM` of /proc/self/status) in bytes.
fn vm_hwm() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// The highest values of the server's gauges while the sampler ran.
#[derive(Debug, Clone, Copy, Default)]
struct Peaks {
    /// Resident memory in bytes, and the number of samples that had it.
    rss: Option<(f64, usize)>,
    /// Requests in the running batch.
    batch: Option<f64>,
    samples: usize,
}

/// Samples the server's resident memory and batch size gauges in the background.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Peaks>,
}

impl Sampler {
    fn start(client: Client) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut peaks = Peaks::default();
            loop {
                if let Ok(r) = client.get("/metrics")
                    && r.status == 200
                {
                    let samples = prom::parse(&r.body);
                    peaks.samples += 1;
                    if let Some(v) = prom::sum(&samples, METRIC_RSS) {
                        let (max, n) = peaks.rss.unwrap_or((0.0, 0));
                        peaks.rss = Some((max.max(v), n + 1));
                    }
                    if let Some(b) = prom::sum(&samples, METRIC_BATCH) {
                        peaks.batch = Some(peaks.batch.unwrap_or(0.0).max(b));
                    }
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(SAMPLE_MS));
            }
            peaks
        });
        Sampler { stop, handle }
    }

    fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(num(400.0), "400");
        assert_eq!(num(12.3456), "12.35");
        assert_eq!(num(7742.866), "7742.9");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(0.002), "0.002");
        assert_eq!(num(0.0000153), "0.0000153");
        assert_eq!(num(0.0), "0");
    }

    #[test]
    fn ports_and_contexts() {
        assert_eq!(
            with_port("http://10.0.0.2:8080", 9090).as_deref(),
            Some("http://10.0.0.2:9090")
        );
        assert_eq!(
            with_port("https://example.com", 9090).as_deref(),
            Some("https://example.com:9090")
        );
        let plan =
            json!({"spec": {"contextLength": 4096}, "status": {"modelContextLength": 32768}});
        let (ctx, trained, _) = context_of(Some(&plan), None).expect("context");
        assert_eq!((ctx, trained), (4096, Some(32768)));
        let models = json!({"data": [{"id": "m", "context_length": 2048}]});
        let (ctx, trained, how) = context_of(None, Some(&models)).expect("context");
        assert_eq!((ctx, trained), (2048, None));
        assert!(how.contains("/v1/models"));
        assert!(context_of(None, Some(&json!({"data": []}))).is_none());
    }

    #[test]
    fn energy_is_the_increase_between_scrapes() {
        let b = prom::parse(
            "modelspec_energy_joules_total{source=\"estimated\"} 100\nmodelspec_prompt_tokens_total 50\nmodelspec_generated_tokens_total 10\n",
        );
        let a = prom::parse(
            "modelspec_energy_joules_total{source=\"estimated\"} 136\nmodelspec_prompt_tokens_total 130\nmodelspec_generated_tokens_total 30\n",
        );
        let e = energy_of(Some(&b), Some(&a), Duration::from_secs(2)).expect("energy");
        assert_eq!((e.joules, e.tokens), (36.0, 100.0));
        assert!(e.source.contains("source=\"estimated\""));
        assert!(energy_of(Some(&b), None, Duration::ZERO).is_none());
        let no_tokens = prom::parse("modelspec_energy_joules_total 1\n");
        assert!(energy_of(Some(&b), Some(&no_tokens), Duration::ZERO).is_none());
    }
}
