//! What the server runs with against the declaration: batch size (the plan's
//! `scheduler.maxBatch` and the largest batch seen), CPU cores and CPU features.

use serde_json::Value;

use ms_server::metrics::BATCH_SIZE as METRIC_BATCH;

use crate::check::{self, Verdict, at_most};
use crate::checks::Ctx;
use crate::sampler::{Peaks, SAMPLE_MS};

/// MV0303, MV0502, MV0503.
pub fn check(ctx: &mut Ctx, peaks: &Peaks) {
    batch_size(ctx, peaks);
    cpu_cores(ctx);
    cpu_features(ctx);
}

fn batch_size(ctx: &mut Ctx, peaks: &Peaks) {
    let Some(c) = ctx.take(check::BATCH_SIZE) else {
        return;
    };
    let limit = ctx.spec.info.batch.max_batch_size.unwrap_or(0);
    let planned = ctx.plan_u64("/spec/scheduler/maxBatch");
    let seen = peaks.batch.map(|b| b as u64);
    let c = match (planned, seen) {
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
    };
    ctx.push(c);
}

fn cpu_cores(ctx: &mut Ctx) {
    let Some(c) = ctx.take(check::CPU_CORES) else {
        return;
    };
    let cores = ctx.spec.info.resources.cpu_cores.unwrap_or(0);
    let c = match ctx.plan_u64("/spec/threads") {
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
    };
    ctx.push(c);
}

fn cpu_features(ctx: &mut Ctx) {
    let Some(c) = ctx.take(check::CPU_FEATURES) else {
        return;
    };
    let have: Option<Vec<String>> = ctx
        .plan
        .as_ref()
        .and_then(|p| p.pointer("/status/cpuFeatures"))
        .and_then(Value::as_str)
        .map(|f| {
            f.split([',', ' '])
                .filter(|x| !x.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        });
    let c = match have {
        Some(have) => {
            let missing: Vec<&str> = ctx
                .spec
                .info
                .accelerator
                .features
                .iter()
                .filter(|f| !have.contains(&f.to_ascii_lowercase()))
                .map(String::as_str)
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
                c.reason(format!("the serving CPU lacks {}", missing.join(", ")))
            }
        }
        None => c.not_checked("the server does not report its CPU features (GET /v1/plan)"),
    };
    ctx.push(c);
}
