//! Execution plans over HTTP: `GET /v1/plan` (the effective plan, every decision with its
//! origin), `POST /v1/plans/evaluate` (a candidate measured beside the current plan on a fixed
//! workload, by ms-runtime) and `PUT /v1/plan` (apply: loaded by ms-runtime, then the
//! scheduler's engine is replaced; admitted requests finish under the old plan).
//!
//! A plan body is the ExecutionPlan document as YAML or JSON text, or a JSON object
//! `{"plan": {...} | "yaml text"}` (evaluate also takes `"workload"` there).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use ms_runtime::{EvaluateError, LoadError, PlanSource, Workload};
use serde_json::{Map, Value, json};

use crate::config::scheduler_config;
use crate::errors::{ApiError, body_rejection, field, json_kind};
use crate::state::{AppState, Serving};

pub async fn show(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let (serving, _) = state.ready()?;
    plan_json(&serving).map(Json)
}

fn plan_json(serving: &Serving) -> Result<Value, ApiError> {
    serde_json::to_value(&serving.loaded.plan)
        .map_err(|e| ApiError::internal(format!("writing the plan as JSON: {e}")))
}

/// The plan document of a request body, and the rest of a `{"plan": ...}` wrapper.
pub fn plan_body(body: &[u8], name: &str) -> Result<(PlanSource, Map<String, Value>), ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the plan is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "plan",
            "the body is empty; send an ExecutionPlan as YAML or JSON, or {\"plan\": {...}}",
        ));
    }
    let source = |yaml: String| PlanSource::Inline {
        name: name.to_string(),
        yaml,
    };
    if !text.trim_start().starts_with('{') {
        return Ok((source(text.to_string()), Map::new()));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    match obj.remove("plan") {
        // The body is the plan document itself.
        None => Ok((source(text.to_string()), Map::new())),
        Some(Value::String(yaml)) => Ok((source(yaml), obj)),
        Some(plan @ Value::Object(_)) => Ok((source(plan.to_string()), obj)),
        Some(v) => Err(ApiError::invalid(
            "plan",
            format!(
                "'plan' must be an ExecutionPlan object or its YAML text, got {}",
                json_kind(&v)
            ),
        )),
    }
}

/// 422 for a plan that is invalid or cannot run here (with its findings), 500 otherwise.
pub fn load_error(e: LoadError) -> ApiError {
    if e.is_invalid_plan() {
        let findings = serde_json::to_value(e.findings()).unwrap_or_else(|_| json!([]));
        ApiError::unprocessable(e.to_string()).with_findings(findings)
    } else {
        ApiError::internal(e.to_string())
    }
}

/// Most prompts an evaluation workload may have: it runs twice, beside live traffic.
pub const MAX_WORKLOAD_PROMPTS: usize = 8;

pub async fn evaluate(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config.limits.max_body_bytes))?;
    let (source, rest) = plan_body(&body, "candidate")?;
    let (current, _) = state.ready()?;
    let workload = workload(&rest, current.max_tokens)?;
    let one_at_a_time = state.plan_lock.clone().lock_owned().await;
    // Set when this handler is dropped (the client went away): the evaluation stops at its
    // next token, and only then releases the lock it carries.
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    let metrics_state = state.clone();
    let evaluation = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = one_at_a_time;
        let metrics = &metrics_state.metrics;
        metrics.evaluation_started();
        let result = ms_runtime::evaluate_until(&current.loaded, source, &workload, &cancel);
        metrics.evaluation_ended(match &result {
            Ok(_) => "completed",
            Err(EvaluateError::Cancelled { .. }) => "cancelled",
            Err(_) => "failed",
        });
        result
    })
    .await
    .map_err(|e| ApiError::internal(format!("evaluating the plan: {e}")))?
    .map_err(|e| match e {
        EvaluateError::Invalid { ref findings, .. } => {
            let f = serde_json::to_value(findings).unwrap_or_else(|_| json!([]));
            ApiError::unprocessable(e.to_string()).with_findings(f)
        }
        EvaluateError::Workload(m) => ApiError::invalid("workload", m),
        EvaluateError::Load { error, .. } if error.is_invalid_plan() => load_error(*error),
        other => ApiError::internal(other.to_string()),
    })?;
    serde_json::to_value(&evaluation)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("writing the evaluation as JSON: {e}")))
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// `"workload": {"prompts": [...], "maxTokens": n}` of a wrapped body, else the default one.
fn workload(rest: &Map<String, Value>, max_tokens: usize) -> Result<Workload, ApiError> {
    let mut w = Workload::default();
    let Some(spec) = field::<Map<String, Value>>(rest, "workload", "an object")? else {
        return Ok(w);
    };
    let named = |e: ApiError| {
        ApiError::invalid(
            format!("workload.{}", e.param.clone().unwrap_or_default()),
            e.message.clone(),
        )
    };
    if let Some(prompts) =
        field::<Vec<String>>(&spec, "prompts", "an array of strings").map_err(named)?
    {
        if prompts.is_empty() || prompts.len() > MAX_WORKLOAD_PROMPTS {
            return Err(ApiError::invalid(
                "workload.prompts",
                format!(
                    "give 1 to {MAX_WORKLOAD_PROMPTS} prompts (got {})",
                    prompts.len()
                ),
            ));
        }
        w.prompts = prompts;
    }
    if let Some(n) = field::<usize>(&spec, "maxTokens", "a positive integer").map_err(named)? {
        if n == 0 || n > max_tokens {
            return Err(ApiError::invalid(
                "workload.maxTokens",
                format!("workload.maxTokens must be 1 to {max_tokens} (got {n})"),
            ));
        }
        w.max_tokens = n;
    }
    Ok(w)
}

pub async fn apply(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config.limits.max_body_bytes))?;
    let (source, _) = plan_body(&body, "PUT /v1/plan")?;
    let _one_at_a_time = state.plan_lock.lock().await;
    let (current, _) = state.ready()?;
    let request = current.loaded.request.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        ms_runtime::load_with_plan(&request, source, &mut |_| {})
    })
    .await
    .map_err(|e| ApiError::internal(format!("loading the plan: {e}")))?
    .map_err(load_error)?;
    let limits = &state.config.limits;
    let config = scheduler_config(&loaded, limits);
    let serving = Serving::new(loaded, limits);
    let plan = plan_json(&serving)?;
    state.replace(serving, config).map_err(|e| {
        ApiError::unavailable(format!("{e}; the previous plan keeps serving"))
            .with_code("plan_not_applied")
    })?;
    Ok(Json(json!({
        "previous": current.plan_name(),
        "plan": plan,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_of(s: PlanSource) -> String {
        match s {
            PlanSource::Inline { yaml, .. } => yaml,
            PlanSource::File(_) => unreachable!(),
        }
    }

    #[test]
    fn plan_bodies() {
        let yaml = "apiVersion: modelspec/v1\nkind: ExecutionPlan\n";
        assert_eq!(yaml_of(plan_body(yaml.as_bytes(), "t").unwrap().0), yaml);
        let doc = r#"{"apiVersion": "modelspec/v1", "kind": "ExecutionPlan"}"#;
        assert_eq!(yaml_of(plan_body(doc.as_bytes(), "t").unwrap().0), doc);
        let (s, rest) = plan_body(
            br#"{"plan": {"kind": "ExecutionPlan"}, "workload": {}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(yaml_of(s), r#"{"kind":"ExecutionPlan"}"#);
        assert!(rest.contains_key("workload"));
        assert_eq!(
            yaml_of(plan_body(br#"{"plan": "kind: X"}"#, "t").unwrap().0),
            "kind: X"
        );
        assert!(plan_body(b"  ", "t").is_err());
        assert!(plan_body(br#"{"plan": 3}"#, "t").is_err());
        assert!(
            plan_body(b"{oops", "t")
                .unwrap_err()
                .message
                .contains("line 1")
        );
    }
}
