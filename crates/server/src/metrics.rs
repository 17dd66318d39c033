//! `/metrics`: Prometheus text. Each server has its own recorder (several servers can run in
//! one process, e.g. in tests), so every update runs inside `with_local_recorder`.
//!
//! Names (ms-verify relies on them): `modelspec_requests_total{status}` (completion requests by
//! HTTP status), `modelspec_queue_depth`, `modelspec_batch_size`,
//! `modelspec_time_to_first_token_seconds`, `modelspec_inter_token_latency_seconds` and
//! `modelspec_request_duration_seconds` (histograms), `modelspec_generated_tokens_total`,
//! `modelspec_prompt_tokens_total`, `modelspec_energy_joules_total`,
//! `modelspec_process_resident_memory_bytes`; plus the scheduler's request totals by outcome
//! (`modelspec_scheduler_requests_total{outcome}`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use ms_scheduler::Outcome;

use crate::state::AppState;

/// The prefix every name below starts with.
pub const PREFIX: &str = "modelspec_";
pub const REQUESTS: &str = "modelspec_requests_total";
pub const QUEUE_DEPTH: &str = "modelspec_queue_depth";
pub const BATCH_SIZE: &str = "modelspec_batch_size";
pub const TTFT: &str = "modelspec_time_to_first_token_seconds";
pub const INTER_TOKEN: &str = "modelspec_inter_token_latency_seconds";
pub const DURATION: &str = "modelspec_request_duration_seconds";
/// Every token sampled, the end-of-generation token included: the work done (what energy per
/// token divides by). A response's `usage.completion_tokens` leaves the end-of-generation token
/// out, as OpenAI counts, so this total exceeds the sum of `completion_tokens` by up to one per
/// request.
pub const GENERATED: &str = "modelspec_generated_tokens_total";
/// [`GENERATED`]'s help text: says how it differs from `usage.completion_tokens`.
const GENERATED_HELP: &str = "Tokens sampled, each request's end-of-generation token included (usage.completion_tokens leaves it out, so this exceeds their sum by up to one per request)";
pub const PROMPT: &str = "modelspec_prompt_tokens_total";
pub const ENERGY: &str = "modelspec_energy_joules_total";
pub const RSS: &str = "modelspec_process_resident_memory_bytes";
pub const SCHEDULER_REQUESTS: &str = "modelspec_scheduler_requests_total";
pub const EVALUATIONS: &str = "modelspec_plan_evaluations_total";
pub const EVALUATIONS_RUNNING: &str = "modelspec_plan_evaluations_running";
pub const BATCH_PANICS: &str = "modelspec_batch_loop_panics_total";
pub const CONNECTIONS_OPEN: &str = "modelspec_connections_open";
pub const CONNECTIONS_CLOSED: &str = "modelspec_connections_closed_total";

/// Seconds: from a fast token (1 ms) to a long request (5 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

pub struct ServerMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    pub fn new() -> Self {
        let mut builder = PrometheusBuilder::new();
        for name in [TTFT, INTER_TOKEN, DURATION] {
            // Only fails on empty buckets, which LATENCY_BUCKETS is not.
            builder =
                match builder.set_buckets_for_metric(Matcher::Full(name.into()), LATENCY_BUCKETS) {
                    Ok(b) => b,
                    Err(_) => PrometheusBuilder::new(),
                };
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Self { recorder, handle };
        m.with(|| {
            describe_counter!(REQUESTS, "Completion requests answered, by HTTP status");
            describe_gauge!(QUEUE_DEPTH, "Requests waiting for a batch slot");
            describe_gauge!(BATCH_SIZE, "Requests in the running batch");
            describe_histogram!(
                TTFT,
                "Submission to first token (queue and prompt included)"
            );
            describe_histogram!(INTER_TOKEN, "Time between consecutive generated tokens");
            describe_histogram!(DURATION, "Submission to the end of a completed request");
            describe_counter!(GENERATED, GENERATED_HELP);
            describe_counter!(PROMPT, "Prompt tokens evaluated");
            describe_gauge!(RSS, "Resident memory of the server process");
            describe_counter!(
                SCHEDULER_REQUESTS,
                "Requests by how they ended in the scheduler"
            );
            // Present from the first scrape, before any request.
            describe_counter!(
                EVALUATIONS,
                "Plan evaluations by how they ended (completed, cancelled, failed)"
            );
            describe_gauge!(
                EVALUATIONS_RUNNING,
                "Plan evaluations running (at most one: they hold the plan lock until they stop)"
            );
            describe_counter!(
                BATCH_PANICS,
                "Panics caught in the batch loop (each failed the requests of its step)"
            );
            describe_gauge!(CONNECTIONS_OPEN, "Client connections open");
            describe_counter!(
                CONNECTIONS_CLOSED,
                "Connections the server closed or refused, by reason (limit, header_timeout, idle_timeout)"
            );
            counter!(REQUESTS, "status" => "200").absolute(0);
            gauge!(EVALUATIONS_RUNNING).set(0.0);
        });
        m
    }

    fn with(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&self.recorder, f);
    }

    pub fn request(&self, status: u16) {
        self.with(|| counter!(REQUESTS, "status" => status.to_string()).increment(1));
    }

    /// A finished request's latencies.
    pub fn evaluation_started(&self) {
        self.with(|| gauge!(EVALUATIONS_RUNNING).increment(1.0));
    }

    /// `outcome`: completed, cancelled or failed.
    pub fn evaluation_ended(&self, outcome: &'static str) {
        self.with(|| {
            counter!(EVALUATIONS, "outcome" => outcome).increment(1);
            gauge!(EVALUATIONS_RUNNING).decrement(1.0);
        });
    }

    pub fn outcome(&self, o: &Outcome) {
        self.with(|| {
            histogram!(TTFT).record(o.ttft_ms / 1e3);
            histogram!(DURATION).record(o.total_ms / 1e3);
            let gaps = histogram!(INTER_TOKEN);
            for ms in &o.inter_token_ms {
                gaps.record(ms / 1e3);
            }
        });
    }

    /// The text for a scrape: the scheduler's state read now.
    pub fn render(&self, state: &AppState) -> String {
        let snapshot = state.scheduler().map(|s| s.snapshot());
        self.with(|| {
            if let Some(s) = &snapshot {
                gauge!(QUEUE_DEPTH).set(s.queue_depth as f64);
                gauge!(BATCH_SIZE).set(s.running as f64);
                counter!(GENERATED).absolute(s.generated_tokens_total);
                counter!(PROMPT).absolute(s.prompt_tokens_total);
                counter!(BATCH_PANICS).absolute(s.panics_total);
                for (outcome, n) in [
                    ("admitted", s.admitted_total),
                    ("completed", s.completed_total),
                    ("cancelled", s.cancelled_total),
                    ("rejected", s.rejected_total),
                    ("failed", s.failed_total),
                    ("timed_out", s.timed_out_total),
                ] {
                    counter!(SCHEDULER_REQUESTS, "outcome" => outcome).absolute(n);
                }
            } else {
                gauge!(QUEUE_DEPTH).set(0.0);
                gauge!(BATCH_SIZE).set(0.0);
                counter!(GENERATED).absolute(0);
                counter!(PROMPT).absolute(0);
            }
            if let Some(rss) = resident_memory_bytes() {
                gauge!(RSS).set(rss as f64);
            }
            let c = &state.connections;
            gauge!(CONNECTIONS_OPEN).set(c.open.load(Ordering::Relaxed) as f64);
            for (reason, n) in [
                ("limit", &c.refused),
                ("header_timeout", &c.header_timeouts),
                ("idle_timeout", &c.idle_timeouts),
            ] {
                counter!(CONNECTIONS_CLOSED, "reason" => reason)
                    .absolute(n.load(Ordering::Relaxed));
            }
        });
        let mut text = self.handle.render();
        // Joules are fractional: a counter of the exporter holds integers only.
        let joules = snapshot.map_or(0.0, |s| s.joules_total);
        text.push_str(&format!(
            "# HELP {ENERGY} Energy used by generation (RAPL when readable, else estimated)\n# TYPE {ENERGY} counter\n{ENERGY} {joules}\n"
        ));
        text
    }
}

/// From /proc/self/statm (resident pages times the page size); None off Linux.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

pub async fn scrape(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_help_sets_them_apart_from_completion_tokens() {
        let m = ServerMetrics::new();
        m.with(|| counter!(GENERATED).absolute(3));
        let text = m.handle.render();
        let help = text
            .lines()
            .find(|l| l.starts_with(&format!("# HELP {GENERATED} ")))
            .unwrap_or_else(|| panic!("no HELP line for {GENERATED} in\n{text}"));
        assert!(help.contains("end-of-generation"), "{help}");
        assert!(help.contains("usage.completion_tokens"), "{help}");
    }
}
