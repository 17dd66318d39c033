//! `GET /v1/models` and `GET /v1/models/{id}`: the one model this server serves, listed under
//! its id; the other names it answers to are accepted in a request's `model` (and by
//! `GET /v1/models/{id}`): the model reference it was started with (a catalog name, or a path
//! and its file name with and without `.gguf`), the ModelSpec's `metadata.name` and model id,
//! the loaded GGUF's file name with and without `.gguf`, the catalog entry's name and aliases
//! (by name or by the file's digest) and the file names of the spec's weights addresses
//! ([`ms_runtime::load::known_names`]). Any other `model` is a 404
//! `model_not_found`, as OpenAI answers.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use ms_runtime::Loaded;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, json_kind};
use crate::state::{AppState, PhaseView};

fn model(state: &AppState) -> Value {
    json!({
        "id": state.config.model_id,
        "object": "model",
        "created": 0,
        "owned_by": "modelspec",
    })
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model(&state)]}))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let known = match state.phase() {
        PhaseView::Ready(s) => s.model_names.contains(&id),
        _ => false,
    };
    if id != state.config.model_id && !known {
        return Err(ApiError::model_not_found(&id, &state.config.model_id));
    }
    Ok(Json(model(&state)))
}

/// The names of a loaded model besides the server's model id (see the module note).
pub fn names(l: &Loaded) -> Vec<String> {
    let mut out = vec![l.request.model.clone()];
    let mut file_names = |p: &Path| {
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            out.push(name.to_string());
            out.push(name.strip_suffix(".gguf").unwrap_or(name).to_string());
        }
    };
    file_names(Path::new(&l.request.model));
    file_names(&l.artifact.artifact);
    file_names(&l.artifact.loaded);
    if let Some(spec) = &l.spec {
        out.push(spec.name.clone());
        out.push(spec.model_id.clone());
    }
    out.extend(ms_runtime::load::known_names(
        &l.request.model,
        l.artifact
            .artifact_sha256
            .as_deref()
            .or(l.artifact.loaded_sha256.as_deref()),
        l.spec.as_deref(),
    ));
    out.retain(|n| !n.is_empty());
    out.sort();
    out.dedup();
    out
}

/// A request's `model`, when given, must name this model. Absent or null is accepted (as
/// llama.cpp's server does); the official clients always send it.
pub fn check(obj: &Map<String, Value>, served: &str, names: &[String]) -> Result<(), ApiError> {
    match obj.get("model") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(m)) if m == served || names.contains(m) => Ok(()),
        Some(Value::String(m)) => Err(ApiError::model_not_found(m, served)),
        Some(v) => Err(ApiError::invalid(
            "model",
            format!("'model' must be a string, got {}", json_kind(v)),
        )),
    }
}
