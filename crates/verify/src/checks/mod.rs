//! The checks that need a running server, one module per group, in the order [`crate::run`]
//! calls them. [`declarations`] turns the spec's declarations into pending checks; each group
//! takes the ones it owns from the [`Ctx`] and pushes them decided (held, violated, or not
//! checked with the reason). Whatever no group took is reported as not measured.
//!
//! - [`probes`]: readiness and liveness probes, the metrics endpoint and port.
//! - [`limits`]: the context the server runs with, the longest declared sequence.
//! - [`traffic`]: the load's profile, then latency and throughput under it.
//! - [`memory`]: peak resident memory.
//! - [`energy`]: energy cost per 1000 tokens.
//! - [`machine`]: batch size, CPU cores and features against the serving machine and plan.
//! - [`precision`]: the precision of the weights that ran.
//! - [`tracing`]: spans exported over OTLP (MV0605); its receiver starts before the server
//!   (which is pointed at it) and the check is decided after the server stops.

pub mod energy;
pub mod limits;
pub mod machine;
pub mod memory;
pub mod precision;
pub mod probes;
pub mod tracing;
pub mod traffic;

use serde_json::Value;

use crate::Options;
use crate::artifacts::Weights;
use crate::check::{self, Check, Rule, num};
use crate::client::Client;
use crate::spec_file::SpecFile;

/// Bytes per GB of `resources.memoryGb`: read as GiB, as Kubernetes' `Gi` limits are.
pub const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

const P_MAX_SEQ: &str = "/spec/runtime/batch/maxSequenceLengthTokens";
const P_MAX_BATCH: &str = "/spec/runtime/batch/maxBatchSize";
const P_CPU_CORES: &str = "/spec/runtime/resources/cpuCores";
const P_ACCELERATOR_COUNT: &str = "/spec/runtime/accelerator/count";
const P_CONCURRENCY: &str = "/spec/operations/serving/maxConcurrency";
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

/// What every group of checks works with.
pub struct Ctx<'a> {
    pub spec: &'a SpecFile,
    pub opts: &'a Options,
    pub client: &'a Client,
    /// The server runs in this process (verify started it).
    pub local: bool,
    /// The effective plan the server reports (GET /v1/plan).
    pub plan: Option<Value>,
    /// The spec's weights file, when resolved.
    pub weights: Option<&'a Weights>,
    pending: Vec<Check>,
    checks: Vec<Check>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        spec: &'a SpecFile,
        opts: &'a Options,
        client: &'a Client,
        local: bool,
        weights: Option<&'a Weights>,
    ) -> Self {
        Ctx {
            spec,
            opts,
            client,
            local,
            plan: None,
            weights,
            pending: declarations(spec),
            checks: Vec::new(),
        }
    }

    /// The pending check of `rule`, when the spec declares what it checks.
    pub fn take(&mut self, rule: Rule) -> Option<Check> {
        let i = self.pending.iter().position(|c| c.code == rule.code)?;
        Some(self.pending.remove(i))
    }

    pub fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// A number of the effective plan, by JSON pointer.
    pub fn plan_u64(&self, pointer: &str) -> Option<u64> {
        self.plan
            .as_ref()
            .and_then(|p| p.pointer(pointer))
            .and_then(Value::as_u64)
    }

    /// Every check still pending, not checked for `why`.
    pub fn abandon(&mut self, why: &str) {
        for c in std::mem::take(&mut self.pending) {
            self.checks.push(c.not_checked(why));
        }
    }

    /// The decided checks; anything left pending had no way to be checked.
    pub fn finish(mut self) -> Vec<Check> {
        self.abandon("not measured");
        self.checks
    }
}

/// The checks of every declaration that needs a server, not yet decided.
pub fn declarations(spec: &SpecFile) -> Vec<Check> {
    let d = &spec.info;
    // Every spec implies that its load is served: a run whose requests fail or are cut off
    // cannot pass.
    let clients = d.serving.max_concurrency.unwrap_or(1).max(1);
    let mut v = vec![Check::new(
        check::LOAD_COMPLETES,
        P_CONCURRENCY,
        format!("every request of {clients} concurrent clients completes"),
    )];
    if let Some(n) = d.batch.max_sequence_length_tokens {
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
    if let Some(b) = d.batch.max_batch_size {
        v.push(Check::new(
            check::BATCH_SIZE,
            P_MAX_BATCH,
            format!("≤ {b} requests per batch"),
        ));
    }
    if let Some(n) = d.resources.cpu_cores {
        v.push(Check::new(
            check::CPU_CORES,
            P_CPU_CORES,
            format!("{n} cores"),
        ));
    } else if d.accelerator.kind.eq_ignore_ascii_case("cpu") {
        let n = d.accelerator.count;
        v.push(Check::new(
            check::CPU_CORES,
            P_ACCELERATOR_COUNT,
            format!("{n} cores (accelerator count of a cpu accelerator)"),
        ));
    }
    if !d.accelerator.features.is_empty() {
        v.push(Check::new(
            check::CPU_FEATURES,
            P_FEATURES,
            d.accelerator.features.join(", "),
        ));
    }
    if let Some(ms) = d.scaling.target_latency_ms_p95 {
        v.push(Check::new(
            check::LATENCY_P95,
            P_P95,
            format!("≤ {} ms", num(ms)),
        ));
    }
    if let Some(r) = d.scaling.target_rps {
        v.push(Check::new(
            check::THROUGHPUT,
            P_RPS,
            format!("≥ {} req/s", num(r)),
        ));
    }
    if let Some(gb) = d.resources.memory_gb {
        v.push(Check::new(
            check::MEMORY_PEAK,
            P_MEMORY,
            format!("≤ {} GiB", num(gb)),
        ));
        v.push(Check::new(
            check::MACHINE_MEMORY,
            P_MEMORY,
            format!("≥ {} GiB on the machine", num(gb)),
        ));
    }
    if let Some(p) = &d.serving.readiness_path {
        v.push(Check::new(
            check::READINESS_PROBE,
            P_READY,
            format!("GET {p} → 200"),
        ));
    }
    if let Some(p) = &d.serving.liveness_path {
        v.push(Check::new(
            check::LIVENESS_PROBE,
            P_LIVE,
            format!("GET {p} → 200"),
        ));
    }
    if d.metrics.enabled == Some(true) {
        v.push(Check::new(
            check::METRICS_ENDPOINT,
            P_METRICS,
            "metrics enabled",
        ));
        if let Some(port) = d.metrics.port {
            v.push(Check::new(
                check::METRICS_PORT,
                P_METRICS_PORT,
                format!("port {port}"),
            ));
        }
    }
    if let Some(c) = d.cost.target_cost_per_1k_tokens_usd {
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
