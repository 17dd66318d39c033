//! `POST /v1/completions`: a prompt (text, or token ids) continued. Without `max_tokens` it
//! runs to the end-of-generation token or a full context, unless the plan sets
//! `sampling.maxTokens` (see [`super::request::request_defaults`]; OpenAI's legacy default of
//! 16 is not followed: the chat endpoint has none, and one rule for both is clearer).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use ms_engine::generate::encode_prompt;
use serde_json::Value;

use super::models;
use super::request::{
    Sampling, refuse_tools, refuse_unknown, refuse_unsupported, request_defaults, top_logprobs,
};
use super::run::{self, Job, Kind};
use crate::errors::{ApiError, body_rejection, json_kind, parse_object};
use crate::state::AppState;

/// What the client sent as `prompt`.
enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| body_rejection(r, state.config.limits.max_body_bytes))?;
    let obj = parse_object(&body)?;
    refuse_tools(&obj)?;
    refuse_unknown(
        &obj,
        &["prompt", "echo", "suffix", "best_of", "response_format"],
    )?;
    refuse_unsupported(&obj, &["echo", "suffix", "best_of"])?;
    let mut sampling = Sampling::parse(&obj, &["max_tokens"])?;
    sampling.logprobs = top_logprobs(&obj, "logprobs")?;
    let prompt = prompt(obj.get("prompt"))?;
    let (serving, _) = state.ready()?;
    models::check(&obj, &state.config.model_id, &serving.model_names)?;
    let options = sampling.options(
        &request_defaults(&serving.loaded.plan),
        serving.max_tokens,
        serving.loaded.tokenizer.vocab_size(),
        "max_tokens",
    )?;
    let prompt = match prompt {
        Prompt::Tokens(ids) => {
            let n_vocab = serving.loaded.tokenizer.vocab_size();
            if let Some(bad) = ids.iter().find(|&&id| id as usize >= n_vocab) {
                return Err(ApiError::invalid(
                    "prompt",
                    format!("token id {bad} is not in the vocabulary (0..{n_vocab})"),
                ));
            }
            ids
        }
        Prompt::Text(text) => {
            let s = serving.clone();
            tokio::task::spawn_blocking(move || encode_prompt(&s.loaded.tokenizer, &text, true))
                .await
                .map_err(|e| ApiError::internal(format!("tokenizing the prompt: {e}")))?
                .map_err(|e| ApiError::invalid("prompt", e.to_string()))?
        }
    };
    run::check_context(&prompt, &serving, "prompt")?;
    let job = Job {
        kind: Kind::Completion,
        prompt,
        options,
        stream: sampling.stream,
        include_usage: sampling.include_usage,
    };
    run::respond(state.clone(), serving, job).await
}

/// A string, or one prompt in a list (a string or token ids); several prompts need `n`
/// choices, which this server does not make.
fn prompt(v: Option<&Value>) -> Result<Prompt, ApiError> {
    let one = match v {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("prompt", "'prompt' is required"));
        }
        Some(Value::Array(items))
            if !items.is_empty() && items.iter().all(|i| i.is_string() || i.is_array()) =>
        {
            if items.len() != 1 {
                return Err(ApiError::invalid(
                    "prompt",
                    format!(
                        "'prompt' holds {} prompts; this server answers one prompt per request",
                        items.len()
                    ),
                ));
            }
            &items[0]
        }
        Some(v) => v,
    };
    match one {
        Value::String(s) if s.is_empty() => Err(ApiError::invalid(
            "prompt",
            "'prompt' is empty; give some text to continue",
        )),
        Value::String(s) => Ok(Prompt::Text(s.clone())),
        Value::Array(ids) if !ids.is_empty() => ids
            .iter()
            .map(|id| id.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect::<Option<Vec<u32>>>()
            .map(Prompt::Tokens)
            .ok_or_else(|| {
                ApiError::invalid("prompt", "token ids in 'prompt' must be integers from 0")
            }),
        other => Err(ApiError::invalid(
            "prompt",
            format!(
                "'prompt' must be a string or an array of token ids, got {}",
                if other.is_array() {
                    "an empty array"
                } else {
                    json_kind(other)
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_forms() {
        assert!(matches!(prompt(Some(&json!("hi"))), Ok(Prompt::Text(t)) if t == "hi"));
        assert!(matches!(prompt(Some(&json!(["hi"]))), Ok(Prompt::Text(t)) if t == "hi"));
        assert!(matches!(prompt(Some(&json!([1, 2]))), Ok(Prompt::Tokens(t)) if t == [1, 2]));
        assert!(matches!(prompt(Some(&json!([[3]]))), Ok(Prompt::Tokens(t)) if t == [3]));
        for bad in [
            json!(null),
            json!(""),
            json!(["a", "b"]),
            json!([]),
            json!([-1]),
            json!(5),
        ] {
            let e = prompt(Some(&bad)).err().unwrap();
            assert_eq!(e.param.as_deref(), Some("prompt"), "{bad}");
        }
    }
}
