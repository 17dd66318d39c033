//! Loading: a resolved model and plan to a mapped model and its tokenizer ([`Loaded`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ms_engine::Model;
use ms_engine::tokenizer::Tokenizer;

use super::artifact::{PreparedArtifact, prepare_artifact};
use super::error::LoadError;
use super::model_ref::ResolvedModel;
use super::plan_resolution::resolve_plan;
use super::progress::LoadProgress;
use super::request::{LoadRequest, LoadSettings, PlanSource};
use super::spec_info::ModelSpecInfo;
use crate::plan::EffectivePlan;

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
