//! `kind: ExecutionPlan`: the execution decisions. Only the document shape lives
//! here; what the engine does with it belongs to the engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Metadata;
use super::v1::ApiVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PlanKind {
    ExecutionPlan,
}

/// An ExecutionPlan, `modelspec/v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "ExecutionPlan modelspec/v1")]
pub struct ExecutionPlan {
    pub api_version: ApiVersion,
    pub kind: PlanKind,
    pub metadata: Metadata,
    pub spec: PlanSpec,
}

/// Where the matrix products run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    CpuScalar,
    CpuSimd,
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Quantization {
    #[serde(rename = "source")]
    Source,
    #[serde(rename = "Q8_0")]
    Q8_0,
    #[serde(rename = "Q6_K")]
    Q6K,
    #[serde(rename = "Q4_K_M")]
    Q4KM,
}

/// How the server orders and batches requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Fifo,
    Latency,
    Throughput,
    Energy,
}

/// How strictly a run must reproduce. `strict`: the same input and plan give the same tokens
/// bit for bit, for any thread count and backend (every current backend does this).
/// `relaxed`: a backend may reorder float sums (e.g. a future GPU backend); tokens may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Determinism {
    Strict,
    Relaxed,
}

/// The execution decisions. Every field is optional here: the effective plan fills in what
/// is left out (the engine's defaults, the model's limits) and records where each value came
/// from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanSpec {
    /// `cpu-scalar` (reference kernels), `cpu-simd` (AVX2, same results), `cuda` (not built
    /// yet). Default: the fastest this machine runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// `source` runs the artifact as stored; the others requantize it at load (cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// Worker threads. Default: the machine's cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threads: Option<u64>,
    /// Allow more `threads` than the machine has cores (up to 4 per core). Without it a plan
    /// asking for more threads than cores is refused before anything is loaded. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversubscribe: Option<bool>,
    /// Context length in tokens. Default: the model's, at most 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub context_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Sampling defaults of every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// The sampler's RNG seed: the same seed gives the same text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub determinism: Option<Determinism>,
    /// A keyed green-list watermark on every generated token (Kirchenbauer et al. 2023).
    /// The plan names the key by id; the key itself comes from a key file or the environment,
    /// never from the plan. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
}

/// The watermark's key id and strength. `gamma` 0 or 1 and `delta` 0 make a watermark that
/// cannot be detected (MS0806).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Watermark {
    /// The key's id: `MODELSPEC_WATERMARK_KEY`, `MODELSPEC_WATERMARK_KEY_FILE` or
    /// `<key dir>/<keyId>.key` must hold a key with this id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub key_id: String,
    /// The green fraction of the vocabulary at each step. Default: 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub gamma: Option<f64>,
    /// The logit bias added to green tokens (before the temperature). Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub delta: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scheduler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Most requests evaluated together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_batch: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Average power cap; needs a power measurement (RAPL) on the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_watts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens_per_request: Option<u64>,
    /// Most requests waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_queue: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sampling {
    /// 0 = greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub temperature: Option<f64>,
    /// 0 = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// 1 = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub top_p: Option<f64>,
    /// 0 = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub min_p: Option<f64>,
    /// 1 = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub repeat_penalty: Option<f64>,
    /// Tokens the penalties look back over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last_n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Most tokens generated per request (0: until the end of generation or a full context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Stop before any of these strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::CpuScalar => "cpu-scalar",
            Backend::CpuSimd => "cpu-simd",
            Backend::Cuda => "cuda",
        }
    }
}

impl Quantization {
    pub fn name(self) -> &'static str {
        match self {
            Quantization::Source => "source",
            Quantization::Q8_0 => "Q8_0",
            Quantization::Q6K => "Q6_K",
            Quantization::Q4KM => "Q4_K_M",
        }
    }
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::Latency => "latency",
            Policy::Throughput => "throughput",
            Policy::Energy => "energy",
        }
    }
}

impl Determinism {
    pub fn name(self) -> &'static str {
        match self {
            Determinism::Strict => "strict",
            Determinism::Relaxed => "relaxed",
        }
    }
}
