//! `GET /v1/runs/{id}`: what happened to a request (`x-modelspec-run-id`), kept for the last
//! [`RUNS_KEPT`] requests: the scheduler's Outcome (timings, tokens, joules, plan) once it
//! finished, else `running`, `cancelled` or `failed`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use crate::errors::ApiError;
use crate::state::AppState;

/// Runs `GET /v1/runs/{id}` can still answer for.
pub const RUNS_KEPT: usize = 1024;

/// A bounded map: the oldest run is forgotten when a new one does not fit.
pub struct Runs {
    inner: Mutex<RunsInner>,
    capacity: usize,
}

#[derive(Default)]
struct RunsInner {
    by_id: HashMap<u64, Value>,
    order: VecDeque<u64>,
}

impl Runs {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(RunsInner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Records (or updates) a run.
    pub fn put(&self, id: u64, record: Value) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.by_id.insert(id, record).is_none() {
            inner.order.push_back(id);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_id.remove(&old);
                }
            }
        }
    }

    pub fn get(&self, id: u64) -> Option<Value> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.by_id.get(&id).cloned()
    }
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = id
        .parse::<u64>()
        .ok()
        .and_then(|n| state.runs.get(n))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no run with id {id:?}: ids come from the x-modelspec-run-id header; the last {RUNS_KEPT} runs are kept"
            ))
        })?;
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_the_latest_runs() {
        let runs = Runs::new(2);
        runs.put(1, json!({"id": 1}));
        runs.put(2, json!({"id": 2}));
        runs.put(2, json!({"id": 2, "status": "completed"}));
        runs.put(3, json!({"id": 3}));
        assert_eq!(runs.get(1), None);
        assert_eq!(runs.get(2).unwrap()["status"], "completed");
        assert_eq!(runs.get(3).unwrap()["id"], 3);
    }
}
