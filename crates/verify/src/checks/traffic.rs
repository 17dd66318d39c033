//! The load and what it measures: prompt lengths (the model's tokenizer, or a calibration
//! against the server's counts), the profile derived from the spec, then p95 latency and
//! throughput under it.

use serde_json::{Value, json};

use crate::check::{self, Check, Verdict, at_least, at_most, num};
use crate::checks::Ctx;
use crate::load::{self, Profile, Summary};
use crate::prompt::{self, Counter};
use crate::report::EnergyRecord;

/// Prompt lengths of the load when the spec declares no maxSequenceLengthTokens.
const DEFAULT_PROMPT_CAP: usize = 256;

/// What the load run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub profile: Option<Profile>,
    pub summary: Option<Summary>,
    pub energy: Option<EnergyRecord>,
    /// Why no load ran, when none did.
    pub no_load: Option<String>,
}

impl Measured {
    pub fn why_no_load(&self) -> String {
        self.no_load
            .clone()
            .unwrap_or_else(|| "no load was run".to_string())
    }
}

/// The model's tokenizer when the weights are at hand, else a calibration against the
/// server's own prompt counts.
pub fn counter(ctx: &Ctx, model: &str, log: &mut dyn FnMut(&str)) -> Result<Counter, String> {
    if let Some(w) = ctx.weights
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
        let r = ctx.client.post_json("/v1/completions", &body)?;
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

/// The load the spec describes: `serving.maxConcurrency` clients, prompts up to the declared
/// sequence length within the server's context.
pub fn profile(ctx: &Ctx, counter: &Counter, ctx_limit: Option<usize>, model: &str) -> Profile {
    let info = &ctx.spec.info;
    let max_seq = info.batch.max_sequence_length_tokens;
    let declared_cap = max_seq.map_or(DEFAULT_PROMPT_CAP, |n| n as usize);
    let room = ctx_limit.unwrap_or(usize::MAX);
    let cap = declared_cap
        .min(room)
        .saturating_sub(ctx.opts.max_tokens as usize)
        .max(2);
    let prompts: Vec<_> = load::prompt_lengths(cap)
        .into_iter()
        .map(|n| counter.prompt(n))
        .collect();
    Profile {
        concurrency: info
            .serving
            .max_concurrency
            .map_or(1, |c| c as usize)
            .max(1),
        duration: ctx.opts.duration,
        tail: ctx
            .opts
            .tail
            .unwrap_or_else(|| load::tail(ctx.opts.duration)),
        max_tokens: ctx.opts.max_tokens,
        prompts,
        model: model.to_string(),
        description: format!(
            "prompts of 16, 32, 64, ... tokens up to {cap} (the {} minus the {} generated tokens{}), taken in turn; lengths {}",
            if max_seq.is_some() {
                "declared maxSequenceLengthTokens, within the server's context,"
            } else {
                "default cap (no maxSequenceLengthTokens declared)"
            },
            ctx.opts.max_tokens,
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
    }
}

/// MV0201 completed by the load: a server that answers but fails every request does not serve.
pub fn server_ready(ready: Check, summary: Option<&Summary>) -> Check {
    match summary {
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
    }
}

/// How a value of the load was measured: `what`, then the load itself.
fn load_method(s: &Summary, p: &Profile, what: &str) -> String {
    format!(
        "{what}; {} clients sending streamed greedy completions of {} tokens back to back for {:.0} s, then up to {:.0} s for those in flight ({} requests, {} failed, {} unfinished); {}",
        p.concurrency,
        p.max_tokens,
        p.duration.as_secs_f64(),
        p.tail.as_secs_f64(),
        s.requests,
        s.failed,
        s.unfinished,
        p.description
    )
}

/// MV0401, MV0402 and MV0403.
pub fn check(ctx: &mut Ctx, m: &Measured) {
    if let Some(c) = ctx.take(check::LOAD_COMPLETES) {
        ctx.push(match (&m.summary, &m.profile) {
            (Some(s), Some(p)) => completed(c, s, p),
            _ => c.not_checked(m.why_no_load()),
        });
    }
    if let Some(c) = ctx.take(check::LATENCY_P95) {
        let target = ctx.spec.info.scaling.target_latency_ms_p95.unwrap_or(0.0);
        ctx.push(match (&m.summary, &m.profile) {
            (Some(s), Some(p)) => latency(c, s, p, target),
            _ => c.not_checked(m.why_no_load()),
        });
    }
    if let Some(c) = ctx.take(check::THROUGHPUT) {
        let target = ctx.spec.info.scaling.target_rps.unwrap_or(0.0);
        ctx.push(match (&m.summary, &m.profile) {
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
            _ => c.not_checked(m.why_no_load()),
        });
    }
}

/// MV0403: a load whose requests fail or are cut off is not served, whatever its latency.
fn completed(c: Check, s: &Summary, p: &Profile) -> Check {
    if s.requests == 0 {
        return c.not_checked("the load sent no request");
    }
    let cut_off = s.unfinished;
    let failed = s.failed - cut_off;
    let c = c
        .method(load_method(
            s,
            p,
            "requests of the load whose stream ended complete, of all requests sent",
        ))
        .measured(
            format!(
                "{} of {} completed, {failed} failed, {cut_off} cut off",
                s.succeeded, s.requests
            ),
            if s.failed == 0 {
                Verdict::Held
            } else {
                Verdict::Violated
            },
        )
        .values("requests", s.requests as f64, Some(s.succeeded as f64));
    if s.failed == 0 {
        return c;
    }
    let mut why = format!(
        "{} of {} requests of {} concurrent clients did not complete",
        s.failed, s.requests, p.concurrency
    );
    if !s.errors.is_empty() {
        why.push_str(&format!(" ({})", s.errors.join("; ")));
    }
    if cut_off > 0 {
        why.push_str(&format!(
            "; {cut_off} timed out or were still running {:.0} s after the load ended: the server does not keep up with this load (more cores, a larger scheduler.maxBatch, shorter prompts or a lower serving.maxConcurrency)",
            p.tail.as_secs_f64()
        ));
    }
    c.reason(why)
}

fn latency(c: Check, s: &Summary, p: &Profile, target: f64) -> Check {
    let c = c.method(load_method(
        s,
        p,
        "nearest-rank p95 of the end-to-end latency (request sent to stream end) of the succeeded requests, and of the unfinished ones at the time they ran",
    ));
    match s.latency.p95_ms {
        Some(p95) if s.unfinished == 0 || p95 > target => {
            let bound = if s.unfinished > 0 { "≥ " } else { "" };
            let c = c
                .measured(
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
        None => c.not_checked(format!("no request succeeded: {}", s.errors.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn profile() -> Profile {
        Profile {
            concurrency: 4,
            duration: Duration::from_secs(1),
            tail: Duration::from_secs(30),
            max_tokens: 2,
            prompts: Vec::new(),
            model: "m".into(),
            description: "d".into(),
        }
    }

    #[test]
    fn a_load_completes_only_when_every_request_does() {
        let c = || Check::new(check::LOAD_COMPLETES, "/p", "every request");
        let all = Summary {
            requests: 10,
            succeeded: 10,
            ..Summary::default()
        };
        let held = completed(c(), &all, &profile());
        assert_eq!(held.verdict, Verdict::Held);
        assert_eq!(
            held.measured.as_deref(),
            Some("10 of 10 completed, 0 failed, 0 cut off")
        );
        // Refused (429) and cut-off requests both fail the check, counted apart.
        let some = Summary {
            requests: 10,
            succeeded: 6,
            failed: 4,
            unfinished: 1,
            errors: vec!["HTTP 429".into()],
            ..Summary::default()
        };
        let violated = completed(c(), &some, &profile());
        assert_eq!(violated.verdict, Verdict::Violated);
        assert_eq!(
            violated.measured.as_deref(),
            Some("6 of 10 completed, 3 failed, 1 cut off")
        );
        let why = violated.reason.unwrap();
        assert!(
            why.starts_with("4 of 10 requests of 4 concurrent clients did not complete (HTTP 429)"),
            "{why}"
        );
        assert!(
            why.contains("still running 30 s after the load ended"),
            "{why}"
        );
        let none = completed(c(), &Summary::default(), &profile());
        assert_eq!(none.verdict, Verdict::NotChecked);
    }
}
