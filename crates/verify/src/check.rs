//! The check model: one declaration of the spec, what was measured against it, and the verdict.

use serde::Serialize;

/// What became of one declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The measurement satisfies the declaration.
    Held,
    /// The measurement contradicts the declaration.
    Violated,
    /// Nothing could be measured; `reason` says why.
    NotChecked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::Violated => "violated",
            Verdict::NotChecked => "not-checked",
        }
    }

    /// The mark the text report puts in front of the check.
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Held => "✓",
            Verdict::Violated => "✗",
            Verdict::NotChecked => "?",
        }
    }
}

/// One kind of check, with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    /// What is checked, in a few words, for the text report.
    pub title: &'static str,
    pub summary: &'static str,
}

macro_rules! rules {
    ($($id:ident = $code:literal, $name:literal, $title:literal, $summary:literal;)*) => {
        $(pub const $id: Rule = Rule { code: $code, name: $name, title: $title, summary: $summary };)*
        /// Every check `modelspec verify` makes, in report order.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    ARTIFACT_DIGEST = "MV0101", "artifact-digest", "artifact sha256",
        "a declared artifact resolves and its sha256 equals the declared digest";
    SERVER_READY = "MV0201", "server-ready", "model loads and serves",
        "the model loads and the server answers requests";
    MAX_SEQUENCE_ACCEPTED = "MV0301", "max-sequence-accepted", "max sequence accepted",
        "a request of batch.maxSequenceLengthTokens tokens (prompt + 1 generated) is accepted in full";
    CONTEXT_LIMIT = "MV0302", "context-limit", "context limit",
        "the context the server runs with is at least batch.maxSequenceLengthTokens";
    BATCH_SIZE = "MV0303", "batch-size", "batch size",
        "the server never evaluates more requests together than batch.maxBatchSize (its plan's scheduler.maxBatch and the largest batch seen under load)";
    LATENCY_P95 = "MV0401", "latency-p95", "p95 latency",
        "the 95th percentile request latency under the spec's load is at most scaling.targetLatencyMsP95";
    THROUGHPUT = "MV0402", "throughput-rps", "throughput",
        "completed requests per second under the spec's load are at least scaling.targetRps";
    LOAD_COMPLETES = "MV0403", "load-completes", "requests completed",
        "every request of the spec's load (serving.maxConcurrency clients) completes: none fails or is cut off";
    MEMORY_PEAK = "MV0501", "memory-peak", "peak memory",
        "the server's peak resident memory is at most resources.memoryGb";
    CPU_CORES = "MV0502", "cpu-cores", "CPU cores",
        "the serving machine has at least resources.cpuCores logical cores (accelerator.count of a cpu accelerator when no cpuCores is declared)";
    CPU_FEATURES = "MV0503", "cpu-features", "CPU features",
        "the serving CPU has every instruction set feature runtime.accelerator.features declares";
    MACHINE_MEMORY = "MV0504", "machine-memory", "machine memory",
        "the serving machine has at least resources.memoryGb of memory";
    READINESS_PROBE = "MV0601", "readiness-probe", "readiness probe",
        "the readiness probe path answers 200 once the model is loaded";
    LIVENESS_PROBE = "MV0602", "liveness-probe", "liveness probe",
        "the liveness probe path answers 200";
    METRICS_ENDPOINT = "MV0603", "metrics-endpoint", "metrics endpoint",
        "Prometheus metrics are served when observability.metrics.enabled";
    METRICS_PORT = "MV0604", "metrics-port", "metrics port",
        "metrics are served on the declared observability.metrics.port";
    TRACING = "MV0605", "tracing-export", "traces exported",
        "spans arrive over OTLP/HTTP when observability.tracing.enabled (verify listens as the receiver)";
    COST_PER_1K = "MV0701", "cost-per-1k-tokens", "cost per 1k tokens",
        "the measured energy cost per 1000 tokens is at most governance.cost.targetCostPer1kTokensUsd";
    PRECISION = "MV0801", "precision", "precision",
        "the weights that ran have the declared identity.model.precision";
    ARTIFACT_QUANTIZATION = "MV0802", "artifact-quantization", "artifact quantization",
        "the weights artifact has the declared quantization";
}

pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}

/// One checked declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub code: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    /// JSON pointer of the declaration in the spec.
    pub pointer: String,
    /// 1-based line and column of the declaration in the spec file (0 when unknown).
    pub line: u32,
    pub column: u32,
    /// The declared value, as written (with its unit).
    pub declared: String,
    /// The measured value (with its unit); `None` when nothing was measured.
    pub measured: Option<String>,
    /// The declared and measured values as numbers, for tools (latency, rate, memory, cost,
    /// tokens), in `unit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_value: Option<f64>,
    /// How the value was measured (or how it would have been).
    pub method: String,
    pub verdict: Verdict,
    /// Why the check could not be made, or what the violation means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Check {
    pub fn new(rule: Rule, pointer: impl Into<String>, declared: impl Into<String>) -> Self {
        Check {
            code: rule.code,
            name: rule.name,
            title: rule.title,
            pointer: pointer.into(),
            line: 0,
            column: 0,
            declared: declared.into(),
            measured: None,
            unit: None,
            declared_value: None,
            measured_value: None,
            method: String::new(),
            verdict: Verdict::NotChecked,
            reason: None,
        }
    }

    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    pub fn measured(mut self, measured: impl Into<String>, verdict: Verdict) -> Self {
        self.measured = Some(measured.into());
        self.verdict = verdict;
        self
    }

    /// The numbers behind `declared` and `measured`.
    pub fn values(mut self, unit: &'static str, declared: f64, measured: Option<f64>) -> Self {
        self.unit = Some(unit);
        self.declared_value = Some(declared);
        self.measured_value = measured;
        self
    }

    pub fn not_checked(mut self, reason: impl Into<String>) -> Self {
        self.verdict = Verdict::NotChecked;
        self.reason = Some(reason.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

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

/// Held when `measured <= declared` (limits: latency, memory, cost).
pub fn at_most(measured: f64, declared: f64) -> Verdict {
    if measured <= declared {
        Verdict::Held
    } else {
        Verdict::Violated
    }
}

/// Held when `measured >= declared` (targets: throughput, context).
pub fn at_least(measured: f64, declared: f64) -> Verdict {
    if measured >= declared {
        Verdict::Held
    } else {
        Verdict::Violated
    }
}

/// Counts per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub held: usize,
    pub violated: usize,
    pub not_checked: usize,
}

impl Tally {
    pub fn of(checks: &[Check]) -> Self {
        let mut t = Tally::default();
        for c in checks {
            match c.verdict {
                Verdict::Held => t.held += 1,
                Verdict::Violated => t.violated += 1,
                Verdict::NotChecked => t.not_checked += 1,
            }
        }
        t
    }

    /// Whether the run passes: nothing violated and, when `strict`, nothing unchecked.
    pub fn passed(&self, strict: bool) -> bool {
        self.violated == 0 && (!strict || self.not_checked == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(r.code.starts_with("MV") && r.code.len() == 6, "{}", r.code);
            assert!(
                RULES[i + 1..]
                    .iter()
                    .all(|o| o.code != r.code && o.name != r.name)
            );
            assert_eq!(rule(r.code), Some(r));
        }
        assert_eq!(rule("MV9999"), None);
    }

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
    fn comparisons_and_tally() {
        assert_eq!(at_most(400.0, 400.0), Verdict::Held);
        assert_eq!(at_most(400.1, 400.0), Verdict::Violated);
        assert_eq!(at_least(20.0, 20.0), Verdict::Held);
        assert_eq!(at_least(19.9, 20.0), Verdict::Violated);
        let c = |v| Check::new(LATENCY_P95, "/x", "1 ms").measured("2 ms", v);
        let held = [c(Verdict::Held), Check::new(PRECISION, "/y", "q8_0")];
        let t = Tally::of(&held);
        assert_eq!((t.held, t.violated, t.not_checked), (1, 0, 1));
        assert!(t.passed(false));
        assert!(!t.passed(true));
        let t = Tally::of(&[c(Verdict::Held), c(Verdict::Violated)]);
        assert!(!t.passed(false));
    }
}
