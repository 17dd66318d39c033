//! Peak memory: the server's highest resident memory during the load against
//! `resources.memoryGb`.

use ms_server::metrics::RSS as METRIC_RSS;

use crate::check::{self, at_most, num};
use crate::checks::{BYTES_PER_GB, Ctx};
use crate::sampler::{Peaks, SAMPLE_MS};

/// MV0501.
pub fn check(ctx: &mut Ctx, peaks: &Peaks) {
    let Some(c) = ctx.take(check::MEMORY_PEAK) else {
        return;
    };
    let limit = ctx.spec.info.resources.memory_gb.unwrap_or(0.0) * BYTES_PER_GB;
    let peak = match peaks.rss {
        Some((bytes, n)) => Some((
            bytes,
            format!(
                "highest {METRIC_RSS} of {n} reads of GET /metrics every {SAMPLE_MS} ms during the load and the longest sequence (1 GiB = 2^30 bytes){}",
                if ctx.local {
                    "; the in-process server shares its process with the verifier (its tokenizer copy and load clients, a few tens of MB)"
                } else {
                    ""
                }
            ),
        )),
        None if ctx.local => vm_hwm().map(|b| {
            (
                b,
                "VmHWM (peak resident set) of this process, which hosts the server (/proc/self/status; the server exports no memory gauge)".to_string(),
            )
        }),
        None => None,
    };
    ctx.push(match peak {
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
