//! Plan resolution: the ModelSpec's default plan, the request's plan and the flags resolved
//! against the model into the effective plan, with every problem located in the document
//! that set its field.

use std::path::PathBuf;
use std::sync::Arc;

use ms_fetch::Cache;
use ms_spec::Source;
use ms_spec::types::plan::PlanSpec;

use super::error::LoadError;
use super::finding::{PlanFinding, render_problems};
use super::model_ref::{ResolvedModel, fetch_spec_weights, read_spec_if_any, resolve_model};
use super::plan_document::read_plan;
use super::progress::LoadProgress;
use super::request::PlanSource;
use super::spec_info::ModelSpecInfo;
use crate::plan::{Context, EffectivePlan, Layer, ModelFacts, Origin, PlanError, resolve};

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
    let spec_max_batch = spec.as_ref().and_then(|s| s.batch.max_batch_size);
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
        spec_max_batch,
        watermark_keys: crate::watermark::KeyLookup::Environment,
    };
    let plan = resolve(&name, &layers, &ctx).map_err(|error| {
        let findings = locate_problems(&error, &layers, &sources);
        LoadError::CannotRun {
            text: render_problems(&error.problems, &findings, &sources),
            findings,
            error,
        }
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
            let (source, pos) = locate(&p.pointer, layers, sources);
            PlanFinding::from_problem(p, source, pos)
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
fn position(src: &Source, pointer: &str) -> Option<(u32, u32)> {
    let parsed = ms_spec::yaml::parse(src);
    let doc = parsed.documents.first()?;
    let (node, key) = doc.root.lookup(pointer)?;
    let pos = key.unwrap_or(node.start);
    Some((pos.line, pos.col))
}
