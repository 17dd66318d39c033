//! What happens around a forward pass at run time, kept out of the engine: quantization at load
//! (requantized artifacts cached on disk), per-run metrics with energy, the machine
//! description, and the run report that records all of it.
//!
//! - [`requantize`]: the file-level quantization pipeline (`modelspec quantize`).
//! - [`quant_cache`]: `quantization: Q8_0 | Q6_K | Q4_K_M | source` at load: keys, builds
//!   (with [`requantize`]), stores, verifies and reuses requantized copies.
//! - [`energy`]: RAPL counters from powercap when readable, else an estimate from the
//!   process's CPU time whose parameters go into the report.
//! - [`metrics`]: the timings of one generation (TTFT, tok/s, inter-token percentiles).
//! - [`machine`]: CPU model, features, cores and memory.
//! - [`report`]: the run report (JSON) and the token digest.
//! - [`plan`]: the effective plan: plan files, a ModelSpec's default plan, flags and the
//!   engine's defaults and detections merged into every decision, each with its origin, and
//!   checked against the machine and the model before any work.
//! - [`plan_problem`]: a typed problem of a plan (code, JSON pointer, expected and found).
//! - [`codes`]: the runtime's finding codes (`MR....`) with their documentation.
//! - [`evaluate`](mod@evaluate): a candidate plan checked, loaded and measured beside the current one.
//! - [`watermark`]: watermark key files and the lookup of the key a plan names.
//! - [`load`](mod@load): a model reference and a plan (file or inline) to a loaded model: resolution,
//!   validation, requantization through the cache, the typed ModelSpec.

pub mod codes;
pub mod energy;
pub mod evaluate;
pub mod load;
pub mod machine;
pub mod metrics;
pub mod plan;
pub mod plan_problem;
pub mod quant_cache;
pub mod quantization;
pub mod report;
pub mod requantize;
pub mod watermark;

pub use energy::{Energy, EnergyMeter, EnergySource, EstimateModel, rapl_readable};
pub use evaluate::{
    EvaluateError, Evaluation, PlanMeasurement, Workload, evaluate, evaluate_until,
};
pub use load::{
    LoadError, LoadProgress, LoadRequest, Loaded, ModelSpecInfo, PlanFinding, PlanSource,
    PreparedArtifact, load, load_with_plan,
};
pub use machine::Machine;
pub use metrics::{Latencies, Metrics, percentile};
pub use plan::{EffectivePlan, PlanError, PlanProblem};
pub use quant_cache::{CacheStatus, Prepared, QuantCache, QuantCacheError, artifact_sha256};
pub use quantization::Quantization;
pub use report::{RunReport, token_digest};
