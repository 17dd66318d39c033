//! The typed view of a ModelSpec that serve and verify read ([`ModelSpecInfo`]): its identity,
//! declared artifacts, serving, batch, scaling, resources, metrics and cost sections.

use std::path::{Path, PathBuf};

use ms_fetch::{Artifact, Source as FetchSource};
use ms_spec::types::v1::{ArtifactFormat, ArtifactRole, ModelSpec};
use serde::Serialize;

use super::error::LoadError;
use super::finding::{PlanFinding, render};

/// What serve and verify need from a ModelSpec, typed. `document` is the whole spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpecInfo {
    /// The spec file.
    pub path: PathBuf,
    /// `metadata.name`.
    pub name: String,
    /// `spec.identity.model.id`.
    pub model_id: String,
    /// `spec.identity.model.precision`.
    pub precision: Option<String>,
    /// The declared quantization of the weights artifact that runs.
    pub quantization: Option<String>,
    pub artifacts: Vec<DeclaredArtifact>,
    pub serving: ServingInfo,
    pub batch: BatchInfo,
    pub scaling: ScalingInfo,
    pub resources: ResourcesInfo,
    pub accelerator: AcceleratorInfo,
    pub metrics: MetricsInfo,
    pub cost: CostInfo,
    #[serde(skip)]
    pub document: ModelSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredArtifact {
    /// `name`, or `artifacts[i]`.
    pub name: String,
    pub role: String,
    pub uri: String,
    pub sha256: Option<String>,
    pub format: Option<String>,
    pub quantization: Option<String>,
    pub size_bytes: Option<u64>,
}

/// `spec.operations.serving`; `None` where the spec says nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingInfo {
    pub port: Option<u16>,
    pub readiness_path: Option<String>,
    pub readiness_timeout_seconds: Option<u64>,
    pub liveness_path: Option<String>,
    pub liveness_timeout_seconds: Option<u64>,
    pub max_concurrency: Option<u64>,
    pub timeout_seconds: Option<u64>,
}

/// `spec.runtime.batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    pub max_batch_size: Option<u64>,
    pub max_sequence_length_tokens: Option<u64>,
}

/// `spec.operations.scaling`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingInfo {
    pub target_latency_ms_p95: Option<f64>,
    pub target_rps: Option<f64>,
    pub min_replicas: Option<u64>,
    pub max_replicas: Option<u64>,
}

/// `spec.runtime.resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesInfo {
    pub memory_gb: Option<f64>,
    pub cpu_cores: Option<u64>,
}

/// `spec.runtime.accelerator`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceleratorInfo {
    /// `type`: `cpu` or a device model.
    pub kind: String,
    pub count: u64,
    /// The CPU instruction set features declared (`avx2`, `neon`, ...).
    pub features: Vec<String>,
}

/// `spec.operations.observability.metrics` (the spec has no path: servers use `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsInfo {
    pub enabled: Option<bool>,
    pub provider: Option<String>,
    pub port: Option<u16>,
}

/// `spec.governance.cost`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostInfo {
    pub target_cost_per_1k_tokens_usd: Option<f64>,
    pub cloud_provider: Option<String>,
    pub instance_type: Option<String>,
    pub spot_allowed: Option<bool>,
}

fn port(p: Option<u64>) -> Option<u16> {
    p.and_then(|p| u16::try_from(p).ok())
}

impl ModelSpecInfo {
    /// Reads and validates the ModelSpec at `path` (either apiVersion).
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let doc = ms_spec::load_model_spec(path).map_err(|diags| LoadError::Spec {
            path: path.to_path_buf(),
            text: render(
                &path.display().to_string(),
                ms_spec::source::load(&path.display().to_string()).ok(),
                &diags,
            ),
            findings: diags.iter().map(PlanFinding::from).collect(),
        })?;
        Ok(Self::from_document(path, doc))
    }

    pub fn from_document(path: &Path, doc: ModelSpec) -> Self {
        let s = &doc.spec;
        let ops = s.operations.as_ref();
        let serving = ops.and_then(|o| o.serving.as_ref());
        let scaling = ops.and_then(|o| o.scaling.as_ref());
        let metrics = ops
            .and_then(|o| o.observability.as_ref())
            .and_then(|o| o.metrics.as_ref());
        let cost = s.governance.as_ref().and_then(|g| g.cost.as_ref());
        let hints = cost.and_then(|c| c.pricing_hints.as_ref());
        let artifacts: Vec<DeclaredArtifact> = s
            .identity
            .model
            .artifacts
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| DeclaredArtifact {
                name: a.name.clone().unwrap_or_else(|| format!("artifacts[{i}]")),
                role: enum_name(&a.role),
                uri: a.uri.clone(),
                sha256: a.sha256.clone(),
                format: a.format.as_ref().map(enum_name),
                quantization: a.quantization.clone(),
                size_bytes: a.size_bytes,
            })
            .collect();
        let quantization = s
            .identity
            .model
            .artifacts
            .iter()
            .flatten()
            .find(|a| is_runnable(a))
            .and_then(|a| a.quantization.clone());
        ModelSpecInfo {
            path: path.to_path_buf(),
            name: doc.metadata.name.clone(),
            model_id: s.identity.model.id.clone(),
            precision: s.identity.model.precision.clone(),
            quantization,
            artifacts,
            serving: ServingInfo {
                port: port(serving.and_then(|x| x.port)),
                readiness_path: serving
                    .and_then(|x| x.readiness_probe.as_ref())
                    .and_then(|p| p.path.clone()),
                readiness_timeout_seconds: serving
                    .and_then(|x| x.readiness_probe.as_ref())
                    .and_then(|p| p.timeout_seconds),
                liveness_path: serving
                    .and_then(|x| x.liveness_probe.as_ref())
                    .and_then(|p| p.path.clone()),
                liveness_timeout_seconds: serving
                    .and_then(|x| x.liveness_probe.as_ref())
                    .and_then(|p| p.timeout_seconds),
                max_concurrency: serving.and_then(|x| x.max_concurrency),
                timeout_seconds: serving.and_then(|x| x.timeout_seconds),
            },
            batch: BatchInfo {
                max_batch_size: s.runtime.batch.as_ref().and_then(|b| b.max_batch_size),
                max_sequence_length_tokens: s
                    .runtime
                    .batch
                    .as_ref()
                    .and_then(|b| b.max_sequence_length_tokens),
            },
            scaling: ScalingInfo {
                target_latency_ms_p95: scaling.and_then(|x| x.target_latency_ms_p95),
                target_rps: scaling.and_then(|x| x.target_rps),
                min_replicas: scaling.and_then(|x| x.min_replicas),
                max_replicas: scaling.and_then(|x| x.max_replicas),
            },
            resources: ResourcesInfo {
                memory_gb: s.runtime.resources.as_ref().and_then(|r| r.memory_gb),
                cpu_cores: s.runtime.resources.as_ref().and_then(|r| r.cpu_cores),
            },
            accelerator: AcceleratorInfo {
                kind: s.runtime.accelerator.kind.clone(),
                count: s.runtime.accelerator.count,
                features: s.runtime.accelerator.features.clone().unwrap_or_default(),
            },
            metrics: MetricsInfo {
                enabled: metrics.and_then(|m| m.enabled),
                provider: metrics.and_then(|m| m.provider.clone()),
                port: port(metrics.and_then(|m| m.port)),
            },
            cost: CostInfo {
                target_cost_per_1k_tokens_usd: cost.and_then(|c| c.target_cost_per1k_tokens_usd),
                cloud_provider: hints.and_then(|h| h.cloud_provider.clone()),
                instance_type: hints.and_then(|h| h.instance_type.clone()),
                spot_allowed: hints.and_then(|h| h.spot_allowed),
            },
            document: doc,
        }
    }

    /// The default plan the spec names (`spec.executionPlan.ref`, relative to the spec).
    pub fn default_plan(&self) -> Option<PathBuf> {
        self.document.spec.execution_plan.as_ref().map(|r| {
            self.path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&r.reference)
        })
    }

    /// The artifacts to fetch: all of them, or only the runnable ones (weights in GGUF or of
    /// unstated format), in declaration order; a relative file path is relative to the spec.
    pub fn fetchable_artifacts(
        &self,
        runnable_only: bool,
    ) -> Result<Vec<(String, Artifact)>, LoadError> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let mut out = Vec::new();
        for (i, a) in self
            .document
            .spec
            .identity
            .model
            .artifacts
            .iter()
            .flatten()
            .enumerate()
        {
            if runnable_only && !is_runnable(a) {
                continue;
            }
            let mut artifact =
                Artifact::from_uri(&a.uri, a.sha256.as_deref()).map_err(|e| LoadError::Model {
                    model: self.path.display().to_string(),
                    message: format!("artifacts[{i}].uri: {e}"),
                })?;
            artifact.size = a.size_bytes;
            if let [FetchSource::File(p)] = artifact.parts.as_mut_slice()
                && p.is_relative()
            {
                *p = base.join(&*p);
            }
            let name = a.name.clone().unwrap_or_else(|| format!("artifacts[{i}]"));
            out.push((name, artifact));
        }
        Ok(out)
    }
}

fn is_runnable(a: &ms_spec::types::v1::Artifact) -> bool {
    matches!(a.role, ArtifactRole::Weights)
        && a.format.is_none_or(|f| matches!(f, ArtifactFormat::Gguf))
}

/// The serde name of a unit enum variant (`weights`, `gguf`).
fn enum_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
