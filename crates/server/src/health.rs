//! Probes: live answers 200 while the process serves HTTP; ready answers 200 once the model is
//! loaded and 503 before (and after a failed load, with the error).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::{AppState, PhaseView};

pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    match state.phase() {
        PhaseView::Ready(s) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "model": state.config.model_id, "plan": s.plan_name()})),
        ),
        PhaseView::Loading => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading", "model": state.config.model_id})),
        ),
        PhaseView::Failed(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed", "model": state.config.model_id, "error": e})),
        ),
    }
}
