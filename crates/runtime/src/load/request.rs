//! What to load: the model reference, the plan document (a file or inline text), the flags.

use std::path::PathBuf;

use ms_spec::types::plan::PlanSpec;

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

/// Whether to hash files to fill in [`PreparedArtifact`](super::PreparedArtifact)'s digests when they are not needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSettings {
    /// Always compute both sha256s (run reports need them); otherwise only when requantizing
    /// or when free (a cache blob is named by its digest).
    pub digests: bool,
}
