//! `GET /v1/models` and `GET /v1/models/{id}`: the one model this server serves.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::state::AppState;

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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if id != state.config.model_id {
        return Err(ApiError::not_found(format!(
            "the model {id:?} does not exist; this server serves {:?}",
            state.config.model_id
        ))
        .with_code("model_not_found"));
    }
    Ok(Json(model(&state)))
}
