//! [`LoadError`]: why a model could not be loaded, naming the file or model and what to do.

use std::path::PathBuf;

use ms_engine::EngineError;
use ms_fetch::FetchError;

use super::finding::PlanFinding;
use crate::plan::PlanError;
use crate::quant_cache::QuantCacheError;

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
    /// The effective plan cannot run on this machine or model (every reason); `text` is the
    /// problems rendered as `modelspec validate` renders findings, each at the `file:line:col`
    /// of the document that set the field.
    #[error("the execution plan cannot run:\n{text}")]
    CannotRun {
        error: PlanError,
        text: String,
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
