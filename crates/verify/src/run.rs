//! The sequence of checks. Everything after the artifacts goes over HTTP, whether the server
//! was started here or runs elsewhere: the order is probes, the plan's context, the load
//! (latency, throughput, energy), the longest declared sequence, then memory, the machine and
//! precision; the spans a declared tracing exports are counted once the server has stopped. The
//! checks themselves live in [`crate::checks`], a module per group.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::artifacts;
use crate::check::{self, Check, Verdict};
use crate::checks::tracing::Tracing;
use crate::checks::traffic::Measured;
use crate::checks::{self as groups, Ctx};
use crate::client::Client;
use crate::load;
use crate::report::{Report, Target};
use crate::sampler::Sampler;
use crate::spec_file::SpecFile;
use crate::{MAX_DURATION, Options, VerifyError, prom};

/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the local server may take to load the model.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

fn check_options(opts: &Options) -> Result<(), VerifyError> {
    let usage = |m: String| Err(VerifyError::Usage(m));
    if opts.duration.is_zero() || opts.duration > MAX_DURATION {
        return usage(format!(
            "--duration {}: give a number of seconds between 1 and {}",
            opts.duration.as_secs_f64(),
            MAX_DURATION.as_secs()
        ));
    }
    if let Some(t) = opts.tail
        && t > MAX_DURATION
    {
        return usage(format!(
            "--tail {}: give at most {} seconds",
            t.as_secs_f64(),
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
    if opts.api_key.is_some() && opts.url.is_none() {
        return usage("--api-key applies to a server given with --url; the server verify starts itself has no keys".into());
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
    let ready_decl = format!("model {} serves completions", spec.info.model_id);
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
                    for c in groups::declarations(&spec) {
                        checks.push(c.not_checked("the server did not start (see MV0201)"));
                    }
                    if let Some(t) = tracing {
                        checks.push(t.not_checked("the server did not start (see MV0201)"));
                    }
                    return Ok(report.finish(checks, &spec));
                }
            }
        }
    };
    let client = Client::new(&base, REQUEST_TIMEOUT).with_api_key(opts.api_key.as_ref());
    let local = matches!(served, Served::Local(_));
    let mut ctx = Ctx::new(&spec, opts, &client, local, weights.as_ref());
    run(&mut ctx, &mut report, ready, log);
    checks.extend(ctx.finish());
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

/// Every check that needs the server, in order; what the server reports and the load it ran
/// go into `report`.
fn run(ctx: &mut Ctx, report: &mut Report, ready: Check, log: &mut dyn FnMut(&str)) {
    // A server still loading its model answers 503: wait for it (a local one is ready).
    let waiting = Instant::now();
    let mut plan_reply = ctx.client.get("/v1/plan");
    if matches!(&plan_reply, Ok(r) if r.status == 503) {
        log("waiting for the server to load its model (GET /v1/plan answers 503)");
    }
    while matches!(&plan_reply, Ok(r) if r.status == 503) && waiting.elapsed() < READY_TIMEOUT {
        std::thread::sleep(Duration::from_millis(500));
        plan_reply = ctx.client.get("/v1/plan");
    }
    // What the server says it is and runs.
    let models = ctx.client.get("/v1/models");
    let model_id = models
        .as_ref()
        .ok()
        .and_then(|r| r.json())
        .and_then(|v| {
            v.pointer("/data/0/id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| ctx.spec.info.model_id.clone());
    report.served_model = models.as_ref().ok().and_then(|r| r.json());
    ctx.plan = plan_reply
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json());
    report.plan = ctx.plan.clone();
    let ready = match &models {
        Ok(r) if r.status == 200 => {
            if ctx.local {
                ready
            } else {
                ready.method(format!("GET {} answered 200", ctx.client.url("/v1/models")))
            }
        }
        Ok(r) if matches!(r.status, 401 | 403) => {
            // Every later request would be refused the same way: say why once, check what
            // is open (the probes), and leave the rest not checked rather than failed.
            let why = access_refused(r.status, &r.body, ctx.opts.api_key.is_some());
            ctx.push(
                ready
                    .measured(format!("HTTP {}", r.status), Verdict::Violated)
                    .reason(why),
            );
            groups::probes::check(ctx);
            ctx.abandon("the server refused access (see MV0201)");
            return;
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
            ctx.push(
                ready
                    .measured("no answer", Verdict::Violated)
                    .reason(why.clone()),
            );
            ctx.abandon("the server does not answer (see MV0201)");
            return;
        }
    };

    groups::probes::check(ctx);
    let context = groups::limits::context(ctx, report.served_model.as_ref());
    let ctx_limit = context.as_ref().map(|c| c.tokens as usize);

    // How prompt lengths are known, and the load they make.
    let counter = groups::traffic::counter(ctx, &model_id, log);
    let profile = counter
        .as_ref()
        .ok()
        .map(|counter| groups::traffic::profile(ctx, counter, ctx_limit, &model_id));

    // The load.
    let sampler = Sampler::start(ctx.client.clone());
    let before = metrics(ctx.client);
    let mut measured = Measured {
        profile,
        no_load: counter.as_ref().err().cloned(),
        ..Measured::default()
    };
    if let Some(profile) = &measured.profile {
        log(&format!(
            "load: {} clients for {:.0} s",
            profile.concurrency,
            profile.duration.as_secs_f64()
        ));
        let run = load::run(ctx.client, profile);
        let after = metrics(ctx.client);
        measured.summary = Some(load::Summary::of(&run));
        measured.energy = groups::energy::energy_of(before.as_deref(), after.as_deref(), run.wall);
    }
    report.profile = measured.profile.clone();
    report.load = measured.summary.clone();
    report.energy = measured.energy.clone();

    // The longest declared sequence, after the load so it does not disturb its timings.
    groups::limits::max_sequence(ctx, &counter, &model_id, ctx_limit, log);
    let peaks = sampler.stop();

    ctx.push(groups::traffic::server_ready(
        ready,
        measured.summary.as_ref(),
    ));
    groups::traffic::check(ctx, &measured);
    groups::memory::check(ctx, &peaks);
    groups::energy::check(ctx, &measured);
    groups::machine::check(ctx, &peaks);
    groups::precision::check(ctx);
}

/// Why the server answered `status` (401 or 403) to `GET /v1/models`, and what to do.
fn access_refused(status: u16, body: &str, key_given: bool) -> String {
    let said = crate::client::error_text(body);
    match (status, key_given) {
        (401, false) => format!(
            "the server requires an API key (HTTP 401: {said}): give it with --api-key KEY or the environment variable {}",
            crate::ApiKey::ENV
        ),
        (401, true) => format!(
            "the server refused the API key given (HTTP 401: {said}): give one of the keys it was started with (--api-key or {})",
            crate::ApiKey::ENV
        ),
        _ => format!("the server refused access (HTTP {status}): {said}"),
    }
}

fn metrics(client: &Client) -> Option<Vec<prom::Sample>> {
    client
        .get("/metrics")
        .ok()
        .filter(|r| r.status == 200)
        .map(|r| prom::parse(&r.body))
}
