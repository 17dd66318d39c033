//! The request fields shared by completions and chat completions, checked one by one so that
//! an error names the field (`param`), and turned into the engine's generation options over the
//! plan's defaults.

use ms_engine::generate::GenerateOptions;
use serde_json::{Map, Value};

use crate::errors::{ApiError, field, json_kind};

/// Most stop strings per request (OpenAI allows 4).
pub const MAX_STOP: usize = 4;

/// What a request asks for beyond its prompt. `None` = the plan's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub stop: Vec<String>,
}

impl Sampling {
    /// Reads the shared fields; `max_tokens_keys` in order of preference (chat has
    /// `max_completion_tokens` beside the older `max_tokens`).
    pub fn parse(obj: &Map<String, Value>, max_tokens_keys: &[&str]) -> Result<Self, ApiError> {
        if let Some(n) = field::<i64>(obj, "n", "an integer")?
            && n != 1
        {
            return Err(ApiError::invalid(
                "n",
                format!("'n' must be 1: this server generates one choice per request (got {n})"),
            ));
        }
        let stream = field::<bool>(obj, "stream", "a boolean")?.unwrap_or(false);
        let include_usage = match obj.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => {
                if !stream {
                    return Err(ApiError::invalid(
                        "stream_options",
                        "'stream_options' is only allowed when 'stream' is true",
                    ));
                }
                field::<bool>(o, "include_usage", "a boolean")
                    .map_err(|e| {
                        ApiError::invalid("stream_options.include_usage", e.message.clone())
                    })?
                    .unwrap_or(false)
            }
            Some(v) => {
                return Err(ApiError::invalid(
                    "stream_options",
                    format!("'stream_options' must be an object, got {}", json_kind(v)),
                ));
            }
        };
        let mut max_tokens = None;
        for key in max_tokens_keys {
            if let Some(n) = field::<i64>(obj, key, "an integer")? {
                if n < 1 {
                    return Err(ApiError::invalid(
                        *key,
                        format!("'{key}' must be at least 1 (got {n})"),
                    ));
                }
                max_tokens = Some(usize::try_from(n).unwrap_or(usize::MAX));
                break;
            }
        }
        let temperature = ranged(obj, "temperature", 0.0, 2.0)?;
        let top_p = ranged(obj, "top_p", 0.0, 1.0)?;
        let presence_penalty = ranged(obj, "presence_penalty", -2.0, 2.0)?;
        let frequency_penalty = ranged(obj, "frequency_penalty", -2.0, 2.0)?;
        let seed = match obj.get("seed") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            // OpenAI's seed is a signed 64-bit integer: negative ones keep their bits.
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().map(|s| s as u64),
            Some(v) => {
                return Err(ApiError::invalid(
                    "seed",
                    format!("'seed' must be an integer, got {}", describe(v)),
                ));
            }
        };
        Ok(Self {
            stream,
            include_usage,
            max_tokens,
            temperature,
            top_p,
            seed,
            presence_penalty,
            frequency_penalty,
            stop: stop_strings(obj)?,
        })
    }

    /// The generation options: the plan's defaults with this request's values; `limit` is the
    /// largest `max_tokens` allowed. `key` names the max-tokens field in errors.
    pub fn options(
        &self,
        defaults: &GenerateOptions,
        limit: usize,
        key: &str,
    ) -> Result<GenerateOptions, ApiError> {
        let mut o = defaults.clone();
        match self.max_tokens {
            Some(n) if n > limit => {
                return Err(ApiError::invalid(
                    key,
                    format!(
                        "'{key}' is {n}, above this server's limit of {limit} tokens per request (the plan's limits and the context length)"
                    ),
                ));
            }
            Some(n) => o.max_tokens = n,
            // The plan's default (0 = until the context is full), within the limit.
            None if o.max_tokens == 0 || o.max_tokens > limit => o.max_tokens = limit,
            None => {}
        }
        if let Some(t) = self.temperature {
            o.sampling.temperature = t;
        }
        if let Some(p) = self.top_p {
            o.sampling.top_p = p;
        }
        if let Some(s) = self.seed {
            o.sampling.seed = s;
        }
        if let Some(p) = self.presence_penalty {
            o.sampling.presence_penalty = p;
        }
        if let Some(p) = self.frequency_penalty {
            o.sampling.frequency_penalty = p;
        }
        if !self.stop.is_empty() {
            o.stop = self.stop.clone();
        }
        Ok(o)
    }
}

/// Fields that would silently not do what the client asked: refused.
pub fn refuse_unsupported(obj: &Map<String, Value>, keys: &[&str]) -> Result<(), ApiError> {
    for key in keys {
        let set = match obj.get(*key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => {
                !(n.as_i64() == Some(0) || *key == "best_of" && n.as_i64() == Some(1))
            }
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(ApiError::invalid(
                *key,
                format!("'{key}' is not supported by this server; leave it out"),
            ));
        }
    }
    if let Some(format) = obj.get("response_format").filter(|v| !v.is_null()) {
        let kind = format.get("type").and_then(Value::as_str);
        if kind != Some("text") {
            return Err(ApiError::invalid(
                "response_format",
                "only response_format {\"type\": \"text\"} is supported; leave it out for plain text",
            ));
        }
    }
    Ok(())
}

fn ranged(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<Option<f32>, ApiError> {
    let Some(v) = field::<f64>(obj, key, "a number")? else {
        return Ok(None);
    };
    if !(lo..=hi).contains(&v) {
        return Err(ApiError::invalid(
            key,
            format!("'{key}' must be between {lo} and {hi} (got {v})"),
        ));
    }
    Ok(Some(v as f32))
}

/// `stop`: a string or an array of up to [`MAX_STOP`] non-empty strings.
fn stop_strings(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let list = match obj.get("stop") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::String(s) = item else {
                    return Err(ApiError::invalid(
                        "stop",
                        format!("'stop[{i}]' must be a string, got {}", json_kind(item)),
                    ));
                };
                list.push(s.clone());
            }
            list
        }
        Some(v) => {
            return Err(ApiError::invalid(
                "stop",
                format!(
                    "'stop' must be a string or an array of strings, got {}",
                    json_kind(v)
                ),
            ));
        }
    };
    if list.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "'stop' has {} strings; at most {MAX_STOP} are allowed",
                list.len()
            ),
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "stop",
            "'stop' strings must not be empty",
        ));
    }
    Ok(list)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("the number {n}"),
        other => json_kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::parse_object;

    fn parse(body: &str) -> Result<Sampling, ApiError> {
        Sampling::parse(
            &parse_object(body.as_bytes()).unwrap(),
            &["max_completion_tokens", "max_tokens"],
        )
    }

    #[test]
    fn reads_openai_fields() {
        let s = parse(
            r#"{"stream": true, "stream_options": {"include_usage": true}, "max_tokens": 7,
            "temperature": 0, "top_p": 0.5, "seed": -1, "stop": "\n", "n": 1, "user": "x"}"#,
        )
        .unwrap();
        assert!(s.stream && s.include_usage);
        assert_eq!(s.max_tokens, Some(7));
        assert_eq!(s.temperature, Some(0.0));
        assert_eq!(s.seed, Some(u64::MAX));
        assert_eq!(s.stop, vec!["\n".to_string()]);
        let o = s
            .options(&GenerateOptions::default(), 100, "max_tokens")
            .unwrap();
        assert_eq!(o.max_tokens, 7);
        assert_eq!(o.sampling.top_p, 0.5);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"n": 2}"#, "n"),
            (r#"{"temperature": 3}"#, "temperature"),
            (r#"{"top_p": "x"}"#, "top_p"),
            (r#"{"max_tokens": 0}"#, "max_tokens"),
            (r#"{"seed": 1.5}"#, "seed"),
            (r#"{"stop": ["a", 1]}"#, "stop"),
            (r#"{"stop": ["a", "b", "c", "d", "e"]}"#, "stop"),
            (
                r#"{"stream_options": {"include_usage": true}}"#,
                "stream_options",
            ),
        ];
        for (body, param) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
            assert_eq!(e.status.as_u16(), 400);
        }
        let e = parse(r#"{"max_tokens": 101}"#)
            .unwrap()
            .options(&GenerateOptions::default(), 100, "max_tokens")
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        assert!(e.message.contains("limit of 100"), "{}", e.message);
    }

    #[test]
    fn unsupported_fields_are_refused_when_set() {
        let obj = parse_object(br#"{"logprobs": false, "echo": true}"#).unwrap();
        assert_eq!(
            refuse_unsupported(&obj, &["logprobs"]).map_err(|e| e.param.clone()),
            Ok(())
        );
        let e = refuse_unsupported(&obj, &["logprobs", "echo"]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("echo"));
        let obj = parse_object(br#"{"response_format": {"type": "json_object"}}"#).unwrap();
        assert!(refuse_unsupported(&obj, &[]).is_err());
    }
}
