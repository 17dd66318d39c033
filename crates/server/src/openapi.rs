//! `/openapi.json`: the OpenAPI 3.1 document of every route, written by hand (the probe and
//! metrics paths come from the configuration).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::config::ServerConfig;
use crate::state::AppState;

/// The API's fixed routes (method, path); the probes and `/metrics` are configurable.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/completions"),
    ("post", "/v1/chat/completions"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{id}"),
    ("get", "/v1/plan"),
    ("put", "/v1/plan"),
    ("post", "/v1/plans/evaluate"),
    ("get", "/v1/runs/{id}"),
    ("get", "/openapi.json"),
];

pub async fn serve(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(document(&state.config))
}

fn op(summary: &str, responses: &[(&str, &str)]) -> Value {
    let mut r = Map::new();
    for (code, description) in responses {
        let mut response = json!({"description": description});
        if code.starts_with('4') || code.starts_with('5') {
            response["content"] =
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
        } else {
            response["content"] = json!({"application/json": {"schema": {"type": "object"}}});
        }
        r.insert((*code).to_string(), response);
    }
    json!({"summary": summary, "responses": r})
}

fn with_body(mut op: Value, media: &[&str], schema: Value) -> Value {
    let mut content = Map::new();
    for m in media {
        content.insert((*m).to_string(), json!({"schema": schema}));
    }
    op["requestBody"] = json!({"required": true, "content": content});
    op
}

fn with_id(mut op: Value, description: &str) -> Value {
    op["parameters"] = json!([{
        "name": "id", "in": "path", "required": true, "description": description,
        "schema": {"type": "string"},
    }]);
    op
}

/// Every response of every operation names the registry version served (see
/// [`crate::version_headers`]).
fn add_version_headers(paths: &mut Map<String, Value>) {
    use crate::version_headers::{MANIFEST_DIGEST, MODEL_VERSION, SIGNER};
    let headers = json!({
        MODEL_VERSION: {"description": "The registry version served: MODEL@VERSION", "schema": {"type": "string"}},
        MANIFEST_DIGEST: {"description": "sha256: of the version's OMS manifest (its files by name and sha256)", "schema": {"type": "string"}},
        SIGNER: {"description": "The signing key's name and fingerprint, or none when the version was not verified", "schema": {"type": "string"}},
    });
    for ops in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in ops.values_mut() {
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            for response in responses.values_mut() {
                response["headers"] = headers.clone();
            }
        }
    }
}

pub fn document(config: &ServerConfig) -> Value {
    let completion_errors = [
        (
            "200",
            "The answer (JSON), or with \"stream\": true server-sent events ending with data: [DONE]; header x-modelspec-run-id, and traceparent when tracing is on",
        ),
        ("400", "Invalid request (param names the field)"),
        ("413", "Body larger than the limit"),
        ("429", "Batch and queue full; see Retry-After"),
        ("503", "Model not loaded yet"),
        ("504", "Timed out (serving.timeoutSeconds)"),
    ];
    let plan_body = json!({"oneOf": [
        {"type": "object", "description": "An ExecutionPlan document, or {\"plan\": document or YAML text}"},
        {"type": "string"}
    ]});
    let mut paths = Map::new();
    paths.insert(
        "/v1/completions".into(),
        json!({"post": with_body(
            op("OpenAI-compatible text completion", &completion_errors),
            &["application/json"],
            json!({"$ref": "#/components/schemas/CompletionRequest"}),
        )}),
    );
    paths.insert(
        "/v1/chat/completions".into(),
        json!({"post": with_body(
            op("OpenAI-compatible chat completion", &completion_errors),
            &["application/json"],
            json!({"$ref": "#/components/schemas/ChatCompletionRequest"}),
        )}),
    );
    paths.insert(
        "/v1/models".into(),
        json!({"get": op("The model served", &[("200", "A list with one model")])}),
    );
    paths.insert(
        "/v1/models/{id}".into(),
        json!({"get": with_id(
        op("One model", &[("200", "The model"), ("404", "No such model")]), "The model id")}),
    );
    paths.insert("/v1/plan".into(), json!({
        "get": op("The effective execution plan, every decision with its origin", &[("200", "The plan"), ("503", "Model not loaded yet")]),
        "put": with_body(
            op("Apply a plan: new requests run under it, admitted ones finish under the old one",
               &[("200", "The new effective plan"), ("422", "Invalid plan, with findings"), ("503", "Model not loaded yet")]),
            &["application/json", "application/yaml"], plan_body.clone()),
    }));
    paths.insert("/v1/plans/evaluate".into(), json!({"post": with_body(
        op("Measure a candidate plan beside the current one on a fixed workload",
           &[("200", "Both measurements side by side"), ("422", "Invalid candidate, with findings"), ("503", "Model not loaded yet")]),
        &["application/json", "application/yaml"], plan_body)}));
    paths.insert("/v1/runs/{id}".into(), json!({"get": with_id(
        op("A request's measurements (id from x-modelspec-run-id)", &[("200", "The run"), ("404", "Unknown or forgotten run")]),
        "The run id")}));
    paths.insert(
        "/openapi.json".into(),
        json!({"get": op("This document", &[("200", "OpenAPI 3.1")])}),
    );
    paths.insert(
        config.live_path.clone(),
        json!({"get": op("Liveness probe", &[("200", "Serving HTTP")])}),
    );
    paths.insert(config.ready_path.clone(), json!({"get": op("Readiness probe", &[("200", "Model loaded"), ("503", "Loading or failed")])}));
    paths.insert(config.metrics_path.clone(), json!({"get": {
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }}));
    if config.version_headers.is_some() {
        add_version_headers(&mut paths);
    }
    let common = json!({
        "model": {"type": "string"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "seed": {"type": "integer"},
        "n": {"type": "integer", "const": 1},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "presence_penalty": {"type": "number"},
        "frequency_penalty": {"type": "number"},
        "logit_bias": {"type": "object", "description": "Token id (as a string) to a bias added to its logit before sampling",
            "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}},
        // Accepted and ignored: they ask nothing of the generation.
        "user": {"type": "string"},
        "store": {"type": "boolean"},
        "metadata": {"type": "object"},
        "service_tier": {"type": "string"},
        "safety_identifier": {"type": "string"},
        "prompt_cache_key": {"type": "string"},
    });
    let mut chat_props = common.clone();
    chat_props["messages"] = json!({"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role"],
        "properties": {"role": {"type": "string"}, "content": {"oneOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]}}}});
    chat_props["max_completion_tokens"] = json!({"type": "integer", "minimum": 1});
    chat_props["logprobs"] = json!({"type": "boolean"});
    chat_props["top_logprobs"] = json!({"type": "integer", "minimum": 0, "maximum": 20});
    chat_props["response_format"] =
        json!({"type": "object", "properties": {"type": {"const": "text"}}});
    let mut completion_props = common;
    completion_props["prompt"] = json!({"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "integer"}},
        {"type": "array", "maxItems": 1}]});
    completion_props["logprobs"] = json!({"type": "integer", "minimum": 0, "maximum": 20});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "modelspec serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-compatible inference, execution plans, runs, health and metrics of one model. A model from a registry is named on every response by the x-modelspec-model-version, x-modelspec-manifest-digest and x-modelspec-signer headers.",
        },
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["message", "type"],
                "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                    "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
            // Other fields are refused with 400 (tool calling among them).
            "ChatCompletionRequest": {"type": "object", "required": ["messages"], "properties": chat_props,
                "additionalProperties": false},
            "CompletionRequest": {"type": "object", "required": ["prompt"], "properties": completion_props,
                "additionalProperties": false},
        },
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
            "description": "Required on every route but the probes and metrics when the server has keys (--api-key)"}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_route() {
        let config = ServerConfig::new("m");
        let text = serde_json::to_string(&document(&config)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
        for path in ["/healthz/live", "/healthz/ready", "/metrics"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
        }
        // Every path's operations have responses.
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["responses"].is_object(), "{method} {path}");
            }
        }
    }
}
