//! Loading a model under an execution plan: the one path `run`, `plan show`, `bench`, `serve`
//! and `verify` share.
//!
//! A [`LoadRequest`] names the model (a GGUF path, a ModelSpec file, a catalog name such as
//! `gemma3-270m`, or an address), an optional plan (a file, or an inline YAML/JSON document
//! received e.g. over HTTP) and the command-line flags. [`resolve_plan`] reads and validates
//! every plan document (schema + MS08xx rules, exactly as `modelspec plan validate`), resolves
//! the model to a file and decides the effective plan, checked against the machine and the
//! model, before any work. [`prepare_artifact`] then picks the file to load (the artifact, or
//! its requantized copy from the [`QuantCache`], built on first use), and [`load`] maps it and
//! builds the tokenizer. Every error names the file or model and says how to fix it; invalid
//! plan documents come with their findings (JSON pointer, line:column in the document).
//!
//! Layers of the effective plan, lowest priority first: the engine's defaults, the model, the
//! ModelSpec's default plan (`spec.executionPlan.ref`), the request's plan, the flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ms_engine::tokenizer::Tokenizer;
use ms_engine::{EngineError, Model};
use ms_fetch::{Artifact, Cache, FetchError, FetchOptions, Source as FetchSource};
use ms_spec::check::Checker;
use ms_spec::diag::codes as spec_codes;
use ms_spec::schema::DocType;
use ms_spec::types::plan::{ExecutionPlan, PlanSpec};
use ms_spec::types::v1::{ArtifactFormat, ArtifactRole, ModelSpec};
use ms_spec::{Diagnostic, Severity, Source};
use serde::Serialize;

use crate::plan::{Context, EffectivePlan, Layer, ModelFacts, Origin, PlanError, resolve};
use crate::quant_cache::{CacheStatus, Prepared, QuantCache, QuantCacheError, artifact_sha256};
use crate::quantization::Quantization;
use crate::requantize;

/// Codes of the findings only the runtime can make (they are not lint rules: they depend on
/// the machine, the model and the current deployment, so `modelspec validate` never gives them).
pub mod codes {
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
}

/// Where a plan document comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanSource {
    /// An ExecutionPlan file.
    File(PathBuf),
    /// An ExecutionPlan document given as text (YAML or JSON), e.g. received over HTTP;
    /// `name` says where it came from in messages: `<inline plan NAME>`.
    Inline { name: String, yaml: String },
}

impl PlanSource {
    /// How findings and errors name the document: the path, or `<inline plan NAME>`.
    pub fn display_name(&self) -> String {
        match self {
            PlanSource::File(p) => p.display().to_string(),
            PlanSource::Inline { name, .. } => format!("<inline plan {name}>"),
        }
    }
}

/// What to load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadRequest {
    /// A GGUF file, a ModelSpec file, a catalog name (`gemma3-270m`) or an address.
    pub model: String,
    /// The plan over the ModelSpec's default plan, if any.
    pub plan: Option<PlanSource>,
    /// Fields set by command-line flags: over every plan.
    pub flags: PlanSpec,
}

impl LoadRequest {
    pub fn new(model: impl Into<String>) -> Self {
        LoadRequest {
            model: model.into(),
            plan: None,
            flags: PlanSpec::default(),
        }
    }

    pub fn with_plan(mut self, plan: PlanSource) -> Self {
        self.plan = Some(plan);
        self
    }
}

/// One finding about a plan or spec document, as an API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanFinding {
    /// A rule code (`MS0102`, `MS0803`, ... see `modelspec explain`), or for what only the
    /// runtime knows (the machine, the model, the spec's limits) one of [`codes`].
    pub code: String,
    pub severity: Severity,
    /// The document: a path or `<inline plan NAME>`.
    pub source: String,
    /// 1-based; 0 when not known (a field set elsewhere than in a document).
    pub line: u32,
    pub column: u32,
    /// JSON pointer into the document.
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&Diagnostic> for PlanFinding {
    fn from(d: &Diagnostic) -> Self {
        let mut message = d.message.clone();
        if let Some(e) = &d.expected {
            message.push_str(&format!("; expected {e}"));
        }
        if let Some(f) = &d.found {
            message.push_str(&format!(", found {f}"));
        }
        PlanFinding {
            code: d.code.to_string(),
            severity: d.severity,
            source: d.file.clone(),
            line: d.line,
            column: d.column,
            pointer: d.pointer.clone(),
            message,
            hint: d.hint.clone(),
        }
    }
}

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

/// The model file to load and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreparedArtifact {
    /// The logical artifact, as resolved.
    pub artifact: PathBuf,
    /// Known when it was needed (requantizing, reports) or free (a cache blob's name).
    pub artifact_sha256: Option<String>,
    /// `source`, or what the artifact was converted to.
    #[serde(serialize_with = "quantization_name")]
    pub quantization: Quantization,
    /// The file loaded: the artifact itself for `source`, else the cache entry.
    pub loaded: PathBuf,
    pub loaded_sha256: Option<String>,
    pub cache: CacheStatus,
}

fn quantization_name<S: serde::Serializer>(q: &Quantization, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(q.name())
}

/// A model loaded under its effective plan. Cloning is cheap (the model is a shared handle).
#[derive(Clone)]
pub struct Loaded {
    /// Every decision, with its origin.
    pub plan: EffectivePlan,
    pub model: Model,
    pub tokenizer: Arc<Tokenizer>,
    pub artifact: PreparedArtifact,
    /// The typed ModelSpec when the model reference was a spec.
    pub spec: Option<Arc<ModelSpecInfo>>,
    /// Preparing the file (requantizing or reusing the cached copy), mapping it and building
    /// the tokenizer; resolving and fetching are not included.
    pub load_time: Duration,
    /// What was asked: [`load_with_plan`] swaps its plan.
    pub request: LoadRequest,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("plan", &self.plan.metadata.name)
            .field("model", &self.model)
            .field("artifact", &self.artifact)
            .field("load_time", &self.load_time)
            .finish()
    }
}

/// What a load is doing, for progress output. Nothing here is an error.
pub enum LoadProgress<'a> {
    /// A plan document's warnings, rendered as `modelspec plan validate` prints them.
    PlanWarnings {
        source: &'a str,
        text: &'a str,
        findings: &'a [PlanFinding],
    },
    /// A problem that does not stop the load (the effective plan's warnings, the quantizer's).
    Warning(&'a str),
    /// The effective plan is decided; nothing is loaded yet.
    Planned(&'a EffectivePlan),
    /// The requantization pipeline (only when the cache has no copy yet).
    Quantize {
        quantization: Quantization,
        progress: &'a requantize::Progress<'a>,
    },
    /// The file to load is ready.
    Prepared(&'a PreparedArtifact),
}

/// Why a model could not be loaded. Messages name the file or model and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A plan document is invalid (schema or MS08xx rules); `text` is the rendered findings.
    #[error("invalid execution plan {source_name}:\n{text}")]
    Plan {
        source_name: String,
        text: String,
        findings: Vec<PlanFinding>,
    },
    /// The model reference is a file that is neither GGUF nor a valid ModelSpec.
    #[error(
        "{} is neither a GGUF file nor a valid ModelSpec:\n{text}(`modelspec validate {}` explains each finding)",
        path.display(),
        path.display()
    )]
    Spec {
        path: PathBuf,
        text: String,
        findings: Vec<PlanFinding>,
    },
    /// The effective plan cannot run on this machine or model (every reason).
    #[error("{error}")]
    CannotRun {
        error: PlanError,
        /// The problems located in the documents that set them, where one did.
        findings: Vec<PlanFinding>,
    },
    /// The model reference could not be resolved to a file.
    #[error("{model}: {message}")]
    Model { model: String, message: String },
    /// The model file's header is unreadable (the message names the file).
    #[error("{0}")]
    ModelFile(String),
    #[error(transparent)]
    Fetch(Box<FetchError>),
    #[error(transparent)]
    Quantize(Box<QuantCacheError>),
    #[error("loading {}: {error}", path.display())]
    Engine {
        path: PathBuf,
        error: Box<EngineError>,
    },
    #[error("{}: reading the tokenizer: {error}", path.display())]
    Tokenizer {
        path: PathBuf,
        error: Box<ms_engine::tokenizer::TokenizerError>,
    },
}

impl From<FetchError> for LoadError {
    fn from(e: FetchError) -> Self {
        LoadError::Fetch(Box::new(e))
    }
}

impl From<QuantCacheError> for LoadError {
    fn from(e: QuantCacheError) -> Self {
        LoadError::Quantize(Box::new(e))
    }
}

impl LoadError {
    /// The findings behind an invalid plan, spec or plan that cannot run; empty otherwise.
    pub fn findings(&self) -> &[PlanFinding] {
        match self {
            LoadError::Plan { findings, .. }
            | LoadError::Spec { findings, .. }
            | LoadError::CannotRun { findings, .. } => findings,
            _ => &[],
        }
    }

    /// Whether the request itself is at fault (an invalid or impossible plan or spec), as
    /// opposed to the model file or the machine: an API answers 422 for these.
    pub fn is_invalid_plan(&self) -> bool {
        matches!(
            self,
            LoadError::Plan { .. } | LoadError::Spec { .. } | LoadError::CannotRun { .. }
        )
    }
}

/// A plan document read and checked, with its text for locating findings.
pub struct PlanDocument {
    pub plan: ExecutionPlan,
    pub source: Source,
    pub warnings: Vec<PlanFinding>,
}

/// Reads and validates an ExecutionPlan (schema and plan rules at default levels, exactly as
/// `modelspec plan validate`). Warnings go to `progress`.
pub fn read_plan(
    plan: &PlanSource,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<PlanDocument, LoadError> {
    let name = plan.display_name();
    let src = match plan {
        PlanSource::File(p) => ms_spec::source::load(&p.display().to_string()).map_err(|e| {
            let d = e.into_diagnostic();
            LoadError::Plan {
                source_name: name.clone(),
                text: render(&name, None, std::slice::from_ref(&d)),
                findings: vec![PlanFinding::from(&d)],
            }
        })?,
        PlanSource::Inline { yaml, .. } => {
            if let Some(d) = unusable_text(&name, yaml) {
                return Err(LoadError::Plan {
                    source_name: name.clone(),
                    text: render(&name, None, std::slice::from_ref(&d)),
                    findings: vec![PlanFinding::from(&d)],
                });
            }
            // A byte-order mark is legal but would shift every column by one.
            let text = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
            Source::from_text(name.clone(), text)
        }
    };
    let invalid = |diags: &[Diagnostic], src: &Source| LoadError::Plan {
        source_name: name.clone(),
        text: render(&name, Some(src.clone()), diags),
        findings: diags.iter().map(PlanFinding::from).collect(),
    };
    let mut checker = Checker::default();
    let (mut diags, checked) = checker.check_raw(&src);
    checker.config.apply(&mut diags);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(invalid(&diags, &src));
    }
    let mut plans = checked
        .into_iter()
        .filter(|c| c.doc_type == Some(DocType::Plan));
    let (Some(doc), None) = (plans.next(), plans.next()) else {
        let d = Diagnostic::file_level(
            spec_codes::KIND,
            &src.name,
            "expected exactly one `kind: ExecutionPlan` document",
        );
        return Err(invalid(std::slice::from_ref(&d), &src));
    };
    let plan: ExecutionPlan = serde_json::from_value(doc.value).map_err(|e| {
        let d = Diagnostic::file_level(spec_codes::SCHEMA_OTHER, &src.name, e.to_string());
        invalid(std::slice::from_ref(&d), &src)
    })?;
    let warnings: Vec<PlanFinding> = diags.iter().map(PlanFinding::from).collect();
    if !diags.is_empty() {
        let text = render(&name, Some(src.clone()), &diags);
        progress(LoadProgress::PlanWarnings {
            source: &name,
            text: &text,
            findings: &warnings,
        });
    }
    Ok(PlanDocument {
        plan,
        source: src,
        warnings,
    })
}

/// The limits a plan file gets when it is read (size, no NUL bytes), for inline text.
fn unusable_text(name: &str, text: &str) -> Option<Diagnostic> {
    let max = ms_spec::source::MAX_FILE_BYTES;
    if text.len() as u64 > max {
        return Some(
            Diagnostic::file_level(
                spec_codes::TOO_LARGE,
                name,
                "document is too large to be a plan",
            )
            .with_expected(format!("at most {} MiB", max / (1024 * 1024)))
            .with_found(format!("{} bytes", text.len())),
        );
    }
    text.bytes().position(|b| b == 0).map(|pos| {
        Diagnostic::file_level(
            spec_codes::NOT_TEXT,
            name,
            "document is binary, not YAML or JSON text",
        )
        .with_found(format!("a NUL byte at offset {pos}"))
    })
}

/// Findings as `modelspec validate` prints them (with source snippets when the text is known).
fn render(name: &str, source: Option<Source>, diags: &[Diagnostic]) -> String {
    let result = ms_spec::FileResult {
        name: name.to_string(),
        source,
        diagnostics: diags.to_vec(),
    };
    ms_spec::report::text(std::slice::from_ref(&result), false)
}

/// A model reference resolved to the GGUF file to run.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub path: PathBuf,
    pub spec: Option<Arc<ModelSpecInfo>>,
}

/// `Some(spec)` when `model` is an existing file that is not GGUF (so it must be a ModelSpec).
fn read_spec_if_any(model: &str) -> Result<Option<ModelSpecInfo>, LoadError> {
    use std::io::Read;
    let path = Path::new(model);
    if !path.is_file() {
        return Ok(None);
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| LoadError::Model {
            model: model.to_string(),
            message: e.to_string(),
        })?;
    if n == 4 && &magic == b"GGUF" {
        return Ok(None);
    }
    ModelSpecInfo::read(path).map(Some)
}

/// The GGUF file of a spec (its first runnable weights artifact), fetched when needed.
fn fetch_spec_weights(spec: &ModelSpecInfo) -> Result<PathBuf, LoadError> {
    let artifacts = spec.fetchable_artifacts(true)?;
    let Some((name, artifact)) = artifacts.into_iter().next() else {
        return Err(LoadError::Model {
            model: spec.path.display().to_string(),
            message: "no artifact with role weights and format gguf under spec.identity.model.artifacts; add one (uri + sha256) to run this spec".into(),
        });
    };
    let cache = Cache::from_env()?;
    ms_fetch::fetch(&cache, &artifact, &FetchOptions::from_env()).map_err(|e| LoadError::Model {
        model: spec.path.display().to_string(),
        message: format!("artifact {name}: {e}"),
    })
}

/// Resolves a model reference to its GGUF file: a GGUF path, a ModelSpec file (its weights
/// artifact), a catalog name or an address. Fetches into the cache when needed.
pub fn resolve_model(model: &str) -> Result<ResolvedModel, LoadError> {
    if let Some(spec) = read_spec_if_any(model)? {
        let path = fetch_spec_weights(&spec)?;
        return Ok(ResolvedModel {
            path,
            spec: Some(Arc::new(spec)),
        });
    }
    let cache = Cache::from_env()?;
    let path = ms_fetch::resolve(&cache, model, None, &FetchOptions::from_env())?;
    Ok(ResolvedModel { path, spec: None })
}

/// An effective plan and what it was resolved from.
#[derive(Debug, Clone)]
pub struct ResolvedPlan {
    pub plan: EffectivePlan,
    /// The model's file, when a model was given.
    pub model: Option<ResolvedModel>,
    /// The layers the plan was merged from, lowest priority first.
    pub layers: Vec<Layer>,
    /// Each layer's document text (`None` for the flags), to locate findings.
    pub documents: Vec<Option<Source>>,
}

/// Reads the ModelSpec's default plan (when `model` is a spec), `plan`, and resolves them
/// with `flags` on top against the model. Every problem is reported before anything is loaded.
/// The plans' warnings and the effective plan's go to `progress`.
pub fn resolve_plan(
    plan: Option<&PlanSource>,
    model: Option<&str>,
    flags: PlanSpec,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<ResolvedPlan, LoadError> {
    let mut layers = Vec::new();
    let mut sources: Vec<Option<Source>> = Vec::new();
    let mut name = "default".to_string();
    let spec = model.map(read_spec_if_any).transpose()?.flatten();
    if let Some(path) = spec.as_ref().and_then(ModelSpecInfo::default_plan) {
        let doc = read_plan(&PlanSource::File(path.clone()), progress)?;
        name = doc.plan.metadata.name.clone();
        layers.push(Layer::from_plan(Origin::SpecPlan, &path, doc.plan));
        sources.push(Some(doc.source));
    }
    if let Some(p) = plan {
        let doc = read_plan(p, progress)?;
        name = doc.plan.metadata.name.clone();
        let file = match p {
            PlanSource::File(path) => path.clone(),
            PlanSource::Inline { .. } => PathBuf::from(p.display_name()),
        };
        layers.push(Layer::from_plan(Origin::Plan, &file, doc.plan));
        sources.push(Some(doc.source));
    }
    layers.push(Layer::flags(flags));
    sources.push(None);

    let spec_max_sequence = spec
        .as_ref()
        .and_then(|s| s.batch.max_sequence_length_tokens);
    let resolved = match (model, spec) {
        (_, Some(spec)) => Some(ResolvedModel {
            path: fetch_spec_weights(&spec)?,
            spec: Some(Arc::new(spec)),
        }),
        (Some(m), None) => Some(resolve_model(m)?),
        (None, None) => None,
    };
    let facts = resolved
        .as_ref()
        .map(|r| ModelFacts::read(&r.path))
        .transpose()
        .map_err(LoadError::ModelFile)?;
    let ctx = Context {
        model: facts,
        cache_root: Cache::from_env().ok().map(|c| c.root().to_path_buf()),
        spec_max_sequence,
    };
    let plan = resolve(&name, &layers, &ctx).map_err(|error| LoadError::CannotRun {
        findings: locate_problems(&error, &layers, &sources),
        error,
    })?;
    for w in &plan.status.warnings {
        progress(LoadProgress::Warning(w));
    }
    Ok(ResolvedPlan {
        plan,
        model: resolved,
        layers,
        documents: sources,
    })
}

/// The JSON pointer a problem of [`PlanError`] is about (`spec.limits.maxWatts: ...` ->
/// `/spec/limits/maxWatts`).
pub fn problem_pointer(problem: &str) -> String {
    let head = problem
        .split([':', ' '])
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    if head.starts_with("spec") {
        format!("/{}", head.replace('.', "/"))
    } else {
        String::new()
    }
}

/// The problems as findings, each located in the highest layer that sets its field.
fn locate_problems(
    error: &PlanError,
    layers: &[Layer],
    sources: &[Option<Source>],
) -> Vec<PlanFinding> {
    error
        .problems
        .iter()
        .map(|p| {
            let pointer = problem_pointer(p);
            let (source, pos) = locate(&pointer, layers, sources);
            PlanFinding {
                code: codes::CANNOT_RUN.to_string(),
                severity: Severity::Error,
                source,
                line: pos.map_or(0, |p| p.0),
                column: pos.map_or(0, |p| p.1),
                pointer,
                message: p.clone(),
                hint: None,
            }
        })
        .collect()
}

/// Which layer sets the field at `pointer` (`/spec/...`), and where in its text.
pub(crate) fn locate(
    pointer: &str,
    layers: &[Layer],
    sources: &[Option<Source>],
) -> (String, Option<(u32, u32)>) {
    let Some(field) = pointer.strip_prefix("/spec") else {
        return (String::new(), None);
    };
    for (layer, src) in layers.iter().zip(sources).rev() {
        let json = serde_json::to_value(&layer.spec).unwrap_or_default();
        if field.is_empty() || json.pointer(field).is_none() {
            continue;
        }
        let name = match (&layer.file, layer.origin) {
            (Some(f), _) => f.display().to_string(),
            (None, Origin::Flag) => "command-line flags".to_string(),
            (None, o) => o.to_string(),
        };
        let pos = src.as_ref().and_then(|s| position(s, pointer));
        return (name, pos);
    }
    (String::new(), None)
}

/// Line and column of the node at `pointer` in a one-document source.
pub(crate) fn position(src: &Source, pointer: &str) -> Option<(u32, u32)> {
    let parsed = ms_spec::yaml::parse(src);
    let doc = parsed.documents.first()?;
    let (node, key) = doc.root.lookup(pointer)?;
    let pos = key.unwrap_or(node.start);
    Some((pos.line, pos.col))
}

/// Whether to hash files to fill in [`PreparedArtifact`]'s digests when they are not needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSettings {
    /// Always compute both sha256s (run reports need them); otherwise only when requantizing
    /// or when free (a cache blob is named by its digest).
    pub digests: bool,
}

/// The artifact as stored, or its requantized version from the cache (built when missing).
pub fn prepare_artifact(
    path: &Path,
    q: Quantization,
    threads: usize,
    settings: LoadSettings,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<PreparedArtifact, LoadError> {
    let cache_root = Cache::from_env()?.root().to_path_buf();
    if q == Quantization::Source && !settings.digests {
        let free = free_digest(&cache_root, path);
        return Ok(PreparedArtifact {
            artifact: path.to_path_buf(),
            artifact_sha256: free.clone(),
            quantization: q,
            loaded: path.to_path_buf(),
            loaded_sha256: free,
            cache: CacheStatus::Source,
        });
    }
    let sha = artifact_sha256(&cache_root, path)?;
    // The report names the artifact wherever it is read from.
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if q.target().is_none() {
        return Ok(PreparedArtifact {
            artifact: path.to_path_buf(),
            artifact_sha256: Some(sha.clone()),
            quantization: q,
            loaded: path.to_path_buf(),
            loaded_sha256: Some(sha),
            cache: CacheStatus::Source,
        });
    }
    let cache = QuantCache::under(&cache_root);
    let Prepared {
        path: loaded,
        sha256,
        status,
        warnings,
    } = cache.prepare(path, &sha, q, threads, &mut |p| {
        progress(LoadProgress::Quantize {
            quantization: q,
            progress: &p,
        })
    })?;
    for w in &warnings {
        progress(LoadProgress::Warning(w));
    }
    Ok(PreparedArtifact {
        artifact: path.to_path_buf(),
        artifact_sha256: Some(sha),
        quantization: q,
        loaded,
        loaded_sha256: Some(sha256),
        cache: status,
    })
}

/// A cache blob's digest is its name (verified when stored).
fn free_digest(cache_root: &Path, path: &Path) -> Option<String> {
    let blobs = cache_root.join("blobs").join("sha256");
    (path.parent() == Some(blobs.as_path()))
        .then(|| path.file_name()?.to_str().map(str::to_string))
        .flatten()
        .filter(|n| ms_fetch::is_sha256_hex(n))
}

/// Resolves, checks, prepares and loads `req` (digests only when needed or free).
pub fn load(
    req: &LoadRequest,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Loaded, LoadError> {
    load_with(req, LoadSettings::default(), progress)
}

/// [`load`] with explicit settings.
pub fn load_with(
    req: &LoadRequest,
    settings: LoadSettings,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Loaded, LoadError> {
    let resolved = resolve_plan(
        req.plan.as_ref(),
        Some(&req.model),
        req.flags.clone(),
        progress,
    )?;
    let Some(model_ref) = resolved.model else {
        return Err(LoadError::Model {
            model: req.model.clone(),
            message: "no model to run".into(),
        });
    };
    progress(LoadProgress::Planned(&resolved.plan));
    load_resolved(req, resolved.plan, model_ref, settings, progress)
}

/// Prepares and loads a model whose plan is already resolved.
pub(crate) fn load_resolved(
    req: &LoadRequest,
    plan: EffectivePlan,
    model_ref: ResolvedModel,
    settings: LoadSettings,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Loaded, LoadError> {
    let start = Instant::now();
    let options = plan.load_options();
    let artifact = prepare_artifact(
        &model_ref.path,
        plan.quantization(),
        options.threads,
        settings,
        progress,
    )?;
    progress(LoadProgress::Prepared(&artifact));
    let model = Model::load(&artifact.loaded, &options).map_err(|error| LoadError::Engine {
        path: artifact.loaded.clone(),
        error: Box::new(error),
    })?;
    let tokenizer = Tokenizer::from_gguf(model.gguf()).map_err(|error| LoadError::Tokenizer {
        path: model_ref.path.clone(),
        error: Box::new(error),
    })?;
    Ok(Loaded {
        plan,
        model,
        tokenizer: Arc::new(tokenizer),
        artifact,
        spec: model_ref.spec,
        load_time: start.elapsed(),
        request: req.clone(),
    })
}

/// The same model under another plan: `current` with its plan replaced by `plan` (the
/// ModelSpec's default plan and the flags stay). What `PUT /v1/plan` applies.
pub fn load_with_plan(
    current: &LoadRequest,
    plan: PlanSource,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Loaded, LoadError> {
    let req = LoadRequest {
        plan: Some(plan),
        ..current.clone()
    };
    load(&req, progress)
}
