//! `POST /v1/chat/completions`: messages rendered with the model's chat template (its own
//! Jinja template in minijinja's sandbox, else the built-in format of its architecture, as
//! `modelspec run --chat` does), then generated like a completion.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use ms_engine::generate::encode_prompt;
use serde_json::{Map, Value, json};

use super::models;
use super::request::{
    Sampling, refuse_tools, refuse_unknown, refuse_unsupported, request_defaults, top_logprobs,
};
use super::run::{self, Job, Kind};
use crate::errors::{ApiError, body_rejection, field, json_kind, parse_object};
use crate::state::AppState;

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config.limits.max_body_bytes))?;
    let obj = parse_object(&body)?;
    refuse_tools(&obj)?;
    refuse_unknown(
        &obj,
        &[
            "messages",
            "max_completion_tokens",
            "top_logprobs",
            "response_format",
            // Meaningless without tools, which are refused.
            "parallel_tool_calls",
        ],
    )?;
    refuse_unsupported(&obj, &[])?;
    let mut sampling = Sampling::parse(&obj, &["max_completion_tokens", "max_tokens"])?;
    sampling.logprobs = logprobs(&obj)?;
    let messages = messages(&obj)?;
    let (serving, _) = state.ready()?;
    models::check(&obj, &state.config.model_id, &serving.model_names)?;
    let key = if obj
        .get("max_completion_tokens")
        .is_some_and(|v| !v.is_null())
    {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let mut options = sampling.options(
        &request_defaults(&serving.loaded.plan),
        serving.max_tokens,
        serving.loaded.tokenizer.vocab_size(),
        key,
    )?;
    options.stop.extend(serving.template.stop_strings());
    // Templates run with a time limit on their own thread, tokenizing is linear in the body:
    // both off the async workers.
    let s = serving.clone();
    let prompt = tokio::task::spawn_blocking(move || {
        let text = s
            .template
            .render_json(&messages, true, None)
            .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
        encode_prompt(&s.loaded.tokenizer, &text, true)
            .map_err(|e| ApiError::invalid("messages", e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("rendering the chat template: {e}")))??;
    run::check_context(&prompt, &serving, "messages")?;
    let job = Job {
        kind: Kind::Chat,
        prompt,
        options,
        stream: sampling.stream,
        include_usage: sampling.include_usage,
    };
    run::respond(state.clone(), serving, job).await
}

/// `logprobs: true` and `top_logprobs` (0..20 alternatives, only with `logprobs`).
fn logprobs(obj: &Map<String, Value>) -> Result<Option<usize>, ApiError> {
    let on = field::<bool>(obj, "logprobs", "a boolean")?.unwrap_or(false);
    let top = top_logprobs(obj, "top_logprobs")?;
    if top.is_some() && !on {
        return Err(ApiError::invalid(
            "top_logprobs",
            "'top_logprobs' needs 'logprobs': true",
        ));
    }
    Ok(on.then(|| top.unwrap_or(0)))
}

/// The roles a message may have; `tool` and `function` messages answer tool calls, which are
/// not supported.
const ROLES: [&str; 4] = ["system", "developer", "user", "assistant"];

/// The messages as `{role, content}` with text content: OpenAI's content parts are joined,
/// `developer` is the newer name of `system`.
fn messages(obj: &Map<String, Value>) -> Result<Value, ApiError> {
    let list = match obj.get("messages") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("messages", "'messages' is required"));
        }
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(ApiError::invalid(
                "messages",
                "'messages' is empty; give at least one message",
            ));
        }
        Some(Value::Array(list)) => list,
        Some(v) => {
            return Err(ApiError::invalid(
                "messages",
                format!("'messages' must be an array, got {}", json_kind(v)),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let param = format!("messages[{i}]");
        let Value::Object(m) = m else {
            return Err(ApiError::invalid(
                param,
                format!("each message must be an object, got {}", json_kind(m)),
            ));
        };
        let role = match m.get("role") {
            Some(Value::String(r)) if !r.is_empty() => r.as_str(),
            _ => {
                return Err(ApiError::invalid(
                    format!("{param}.role"),
                    "each message needs a 'role' string (system, user, assistant, ...)",
                ));
            }
        };
        if !ROLES.contains(&role) {
            let why = if matches!(role, "tool" | "function") {
                "tool calling is not supported yet, so there are no tool results to send"
            } else {
                "it is not one of OpenAI's roles"
            };
            return Err(ApiError::invalid(
                format!("{param}.role"),
                format!(
                    "role {role:?} is not supported ({why}); use system, developer, user or assistant"
                ),
            ));
        }
        for key in ["tool_calls", "function_call"] {
            if m.get(key).is_some_and(|v| !v.is_null()) {
                return Err(ApiError::invalid(
                    format!("{param}.{key}"),
                    "tool calling is not supported yet; send the assistant's turn as text content",
                )
                .with_code("unsupported_parameter"));
            }
        }
        let role = if role == "developer" { "system" } else { role };
        let content = content_text(m.get("content"), &param, role)?;
        out.push(json!({"role": role, "content": content}));
    }
    Ok(Value::Array(out))
}

fn content_text(content: Option<&Value>, param: &str, role: &str) -> Result<String, ApiError> {
    match content {
        Some(Value::String(s)) => Ok(s.clone()),
        // An assistant turn that only called tools has no content.
        None | Some(Value::Null) if role == "assistant" => Ok(String::new()),
        None | Some(Value::Null) => Err(ApiError::invalid(
            format!("{param}.content"),
            "each message needs 'content'",
        )),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            format!("{param}.content[{j}]"),
                            format!(
                                "only text content parts ({{\"type\": \"text\", \"text\": ...}}) are supported, got type {}",
                                kind.unwrap_or("(none)")
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(v) => Err(ApiError::invalid(
            format!("{param}.content"),
            format!(
                "'content' must be a string or an array of text parts, got {}",
                json_kind(v)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_normalized_and_checked() {
        let obj = parse_object(
            br#"{"messages": [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": null}]}"#,
        )
        .unwrap();
        let m = messages(&obj).unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(m[1]["content"], "Hi there");
        assert_eq!(m[2]["content"], "");
        for (body, param) in [
            (r#"{}"#, "messages"),
            (r#"{"messages": []}"#, "messages"),
            (r#"{"messages": "hi"}"#, "messages"),
            (r#"{"messages": [{"content": "x"}]}"#, "messages[0].role"),
            (r#"{"messages": [{"role": "user"}]}"#, "messages[0].content"),
            (
                r#"{"messages": [{"role": "user", "content": "a"}, {"role": "wizard", "content": "x"}]}"#,
                "messages[1].role",
            ),
            (
                r#"{"messages": [{"role": "tool", "content": "x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"messages": [{"role": "assistant", "content": null, "tool_calls": []}]}"#,
                "messages[0].tool_calls",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#,
                "messages[0].content[0]",
            ),
        ] {
            let e = messages(&parse_object(body.as_bytes()).unwrap()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
    }
}
