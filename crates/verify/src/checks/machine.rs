//! What the server runs with and on, against the declaration: batch size (the plan's
//! `scheduler.maxBatch` and the largest batch seen), and the machine's cores, CPU features and
//! memory. A machine with less than the spec declares violates it.

use serde_json::Value;

use ms_server::metrics::BATCH_SIZE as METRIC_BATCH;

use ms_runtime::Machine;

use crate::check::{self, Verdict, at_least, at_most, num};
use crate::checks::{BYTES_PER_GB, Ctx};
use crate::sampler::{Peaks, SAMPLE_MS};

/// MV0303, MV0502, MV0503, MV0504.
pub fn check(ctx: &mut Ctx, peaks: &Peaks) {
    batch_size(ctx, peaks);
    cpu_cores(ctx);
    cpu_features(ctx);
    machine_memory(ctx);
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

/// The declared cores against the serving machine's logical cores (not the plan's threads: a
/// machine with fewer cores than declared does not give what the spec asks for, however many
/// threads run on it).
fn cpu_cores(ctx: &mut Ctx) {
    let Some(c) = ctx.take(check::CPU_CORES) else {
        return;
    };
    let info = &ctx.spec.info;
    let declared = info.resources.cpu_cores.unwrap_or(info.accelerator.count);
    let (cores, method) = match ctx.plan_u64("/status/cores") {
        Some(n) => (
            Some(n),
            "status.cores of the effective plan (GET /v1/plan): the logical cores of the serving machine",
        ),
        None if ctx.local => (
            Some(Machine::detect().logical_cores as u64),
            "the logical cores of this machine, which hosts the server",
        ),
        None => (None, ""),
    };
    let Some(cores) = cores else {
        ctx.push(c.not_checked("the server does not report its machine's cores (GET /v1/plan)"));
        return;
    };
    let threads = ctx
        .plan_u64("/spec/threads")
        .map(|t| format!(" (the plan runs {t} threads)"))
        .unwrap_or_default();
    let c = c
        .method(method)
        .measured(
            format!("{cores} logical cores{threads}"),
            at_least(cores as f64, declared as f64),
        )
        .values("cores", declared as f64, Some(cores as f64));
    ctx.push(if c.verdict == Verdict::Violated {
        c.reason(format!(
            "the serving machine has {cores} logical cores, fewer than the {declared} declared: serve it where {declared} cores are available, or declare what it needs"
        ))
    } else {
        c
    });
}

/// The declared memory against the serving machine's total memory: `status.memoryBytes` of
/// the plan the server reports, else (a local server without it) this machine's.
fn machine_memory(ctx: &mut Ctx) {
    let Some(c) = ctx.take(check::MACHINE_MEMORY) else {
        return;
    };
    let gb = ctx.spec.info.resources.memory_gb.unwrap_or(0.0);
    let declared = gb * BYTES_PER_GB;
    let (total, method) = match ctx.plan_u64("/status/memoryBytes") {
        Some(n) => (
            Some(n),
            "status.memoryBytes of the effective plan (GET /v1/plan): the serving machine's MemTotal (1 GiB = 2^30 bytes)",
        ),
        None if ctx.local => (
            ms_runtime::machine::total_memory(),
            "MemTotal of /proc/meminfo on this machine, which hosts the server (1 GiB = 2^30 bytes)",
        ),
        None => (None, ""),
    };
    let Some(total) = total else {
        ctx.push(c.not_checked(if ctx.local {
            "this machine's total memory is unknown (no MemTotal in /proc/meminfo)"
        } else {
            "the server does not report its machine's memory (status.memoryBytes of GET /v1/plan); run `modelspec verify` without --url on the serving machine to check it"
        }));
        return;
    };
    let c = c
        .method(method)
        .measured(
            format!("{} GiB", num(total as f64 / BYTES_PER_GB)),
            at_least(total as f64, declared),
        )
        .values("bytes", declared, Some(total as f64));
    ctx.push(if c.verdict == Verdict::Violated {
        c.reason(format!(
            "the serving machine has {} GiB of memory, less than the {} GiB declared",
            num(total as f64 / BYTES_PER_GB),
            num(gb)
        ))
    } else {
        c
    });
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
