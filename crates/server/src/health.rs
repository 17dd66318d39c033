//! Probes: live answers 200 while the process serves HTTP; ready answers 200 once the model is
//! loaded and 503 before (and after a failed load, with the error), and 503 while the batch
//! loop is down (it is restarted: see [`crate::state::AppState::supervise`]).

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
    if let Some(why) = state.scheduler_problem() {
        // Not ready while the batch loop is down; ask for a restart (the next probe sees it).
        state.supervise();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "scheduler_stopped", "model": state.config.model_id, "error": why}),
            ),
        );
    }
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
