//! Codes of the findings only the runtime can make (they are not lint rules: they depend on
//! the machine, the model and the current deployment, so `modelspec validate` never gives them).

/// The effective plan cannot run here: a problem of [`crate::plan::resolve`] (threads,
/// context against the model, backend against the CPU, maxWatts without RAPL, ...).
pub const CANNOT_RUN: &str = "plan-cannot-run";
/// A value exceeds a limit the ModelSpec declares (`batch.maxSequenceLengthTokens`,
/// `batch.maxBatchSize`, `resources.cpuCores`).
pub const EXCEEDS_SPEC: &str = "plan-exceeds-spec";
/// A value exceeds what this machine has (threads above its cores).
pub const EXCEEDS_MACHINE: &str = "plan-exceeds-machine";
/// A limit above the one the current plan sets (`limits.maxTokensPerRequest`,
/// `limits.maxWatts`): a candidate may lower the current limits, not raise them.
pub const EXCEEDS_CURRENT: &str = "plan-exceeds-current-limit";
/// The evaluation workload does not fit in the candidate's context.
pub const WORKLOAD_EXCEEDS_CONTEXT: &str = "workload-exceeds-context";
/// A warning of the effective plan or the quantizer (it does not stop anything).
pub const PLAN_WARNING: &str = "plan-warning";
/// A command-line flag of the running server overrides a field the candidate sets.
pub const OVERRIDDEN_BY_FLAG: &str = "plan-field-overridden-by-flag";
