//! The request fields shared by completions and chat completions, checked one by one so that
//! an error names the field (`param`), and turned into the engine's generation options over
//! [`request_defaults`].
//!
//! No field is dropped silently: a field this server does not know is a 400 naming it
//! (`unknown_parameter`), except the harmless bookkeeping fields of [`IGNORED`]; one it knows
//! and cannot honour (tool calling, `echo`, `n` > 1, ...) is a 400 `unsupported_parameter`.

use ms_engine::generate::GenerateOptions;
use ms_engine::sampler::{MAX_LOGIT_BIAS, MAX_TOP_LOGPROBS};
use ms_runtime::plan::{EffectivePlan, Origin};
use serde_json::{Map, Value};

use crate::errors::{ApiError, field, json_kind};

/// OpenAI fields accepted and ignored: they ask nothing of the generation (an end-user id for
/// abuse tracking, OpenAI-side storage and metadata, a processing tier, a cache hint).
pub const IGNORED: [&str; 6] = [
    "user",
    "store",
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// The fields both endpoints read (through [`Sampling::parse`]).
pub const SHARED: [&str; 13] = [
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "n",
    "logit_bias",
    "logprobs",
];

/// OpenAI's tool-calling fields: refused until a grammar-constrained decode exists.
const TOOL_FIELDS: [&str; 4] = ["tools", "functions", "tool_choice", "function_call"];

/// 400 `unsupported_parameter` for a tool-calling field that asks for something:
/// `tool_choice`/`function_call` `"none"` without tools ask for nothing.
pub fn refuse_tools(obj: &Map<String, Value>) -> Result<(), ApiError> {
    for key in TOOL_FIELDS {
        let asks = match obj.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::String(s)) if s == "none" => false,
            Some(_) => true,
        };
        if asks {
            return Err(ApiError::invalid(
                key,
                format!(
                    "'{key}' is not supported: this server does not do tool (function) calling yet; leave out tools, functions, tool_choice and function_call"
                ),
            )
            .with_code("unsupported_parameter"));
        }
    }
    Ok(())
}

/// 400 `unknown_parameter` for the first field that is neither read (`known`, [`SHARED`]) nor
/// harmless ([`IGNORED`]).
pub fn refuse_unknown(obj: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    let allowed = |k: &str| {
        SHARED.contains(&k)
            || known.contains(&k)
            || IGNORED.contains(&k)
            || TOOL_FIELDS.contains(&k)
    };
    match obj.keys().find(|k| !allowed(k)) {
        Some(k) => Err(ApiError::invalid(
            k.as_str(),
            format!(
                "Unrecognized request argument supplied: '{k}'; this server does not know it (see /openapi.json) and does not ignore fields silently"
            ),
        )
        .with_code("unknown_parameter")),
        None => Ok(()),
    }
}

/// The options a request starts from: OpenAI's defaults (temperature 1, top-p 1, no top-k or
/// min-p, no token limit but the context), except for the values the plan (or the spec, or a
/// flag) sets itself. modelspec's own defaults (origin `default`) never override OpenAI's. The
/// seed is the plan's (0 unless set): identical requests get identical answers.
pub fn request_defaults(plan: &EffectivePlan) -> GenerateOptions {
    let mut o = plan.generate_options();
    let defaulted = |key: &str| {
        plan.status
            .origins
            .get(key)
            .is_none_or(|&origin| origin == Origin::Default)
    };
    if defaulted("/sampling/temperature") {
        o.sampling.temperature = 1.0;
    }
    if defaulted("/sampling/topP") {
        o.sampling.top_p = 1.0;
    }
    if defaulted("/sampling/topK") {
        o.sampling.top_k = 0;
    }
    if defaulted("/sampling/minP") {
        o.sampling.min_p = 0.0;
    }
    if defaulted("/sampling/maxTokens") {
        // Until the end-of-generation token or a full context (within the request limit).
        o.max_tokens = 0;
    }
    o
}

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
    /// Token id and bias (OpenAI's `logit_bias`).
    pub logit_bias: Vec<(u32, f32)>,
    /// Report log-probabilities with this many alternatives (set by each endpoint: chat's
    /// `logprobs`/`top_logprobs`, completions' `logprobs`).
    pub logprobs: Option<usize>,
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
            )
            .with_code("unsupported_parameter"));
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
        if top_p == Some(0.0) {
            return Err(ApiError::invalid(
                "top_p",
                "'top_p' must be above 0 and at most 1 (got 0); use temperature 0 for greedy decoding",
            ));
        }
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
            logit_bias: logit_bias(obj)?,
            logprobs: None,
        })
    }

    /// The generation options: the plan's defaults with this request's values; `limit` is the
    /// largest `max_tokens` allowed. `key` names the max-tokens field in errors.
    pub fn options(
        &self,
        defaults: &GenerateOptions,
        limit: usize,
        n_vocab: usize,
        key: &str,
    ) -> Result<GenerateOptions, ApiError> {
        let mut o = defaults.clone();
        if let Some((id, _)) = self
            .logit_bias
            .iter()
            .find(|(id, _)| *id as usize >= n_vocab)
        {
            return Err(ApiError::invalid(
                "logit_bias",
                format!("'logit_bias' names token {id}, outside the vocabulary (0..{n_vocab})"),
            ));
        }
        o.sampling.logit_bias.clone_from(&self.logit_bias);
        o.sampling.logprobs = self.logprobs;
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
            // The default (0 = until the context is full), within the limit.
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
            )
            .with_code("unsupported_parameter"));
        }
    }
    if let Some(format) = obj.get("response_format").filter(|v| !v.is_null()) {
        let kind = format.get("type").and_then(Value::as_str);
        if kind != Some("text") {
            return Err(ApiError::invalid(
                "response_format",
                "only response_format {\"type\": \"text\"} is supported (no JSON mode or schema yet); leave it out for plain text",
            )
            .with_code("unsupported_parameter"));
        }
    }
    Ok(())
}

/// `logit_bias`: an object from token ids (as strings, OpenAI's form) to biases in -100..100.
fn logit_bias(obj: &Map<String, Value>) -> Result<Vec<(u32, f32)>, ApiError> {
    let map = match obj.get("logit_bias") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(v) => {
            return Err(ApiError::invalid(
                "logit_bias",
                format!(
                    "'logit_bias' must be an object from token ids to biases, got {}",
                    json_kind(v)
                ),
            ));
        }
    };
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(map.len());
    // A set, not a scan of `out`: a 1 MiB body holds ~100,000 keys, and a quadratic check would
    // hold a runtime thread for seconds.
    let mut seen = std::collections::HashSet::with_capacity(map.len());
    for (k, v) in map {
        let Ok(id) = k.trim().parse::<u32>() else {
            return Err(ApiError::invalid(
                "logit_bias",
                format!("'logit_bias' key {k:?} is not a token id (an integer from 0)"),
            ));
        };
        let bias = v.as_f64().filter(|b| b.abs() <= f64::from(MAX_LOGIT_BIAS));
        let Some(bias) = bias else {
            return Err(ApiError::invalid(
                "logit_bias",
                format!(
                    "'logit_bias' of token {id} must be a number from -100 to 100, got {}",
                    describe(v)
                ),
            ));
        };
        if !seen.insert(id) {
            return Err(ApiError::invalid(
                "logit_bias",
                format!("'logit_bias' names token {id} twice"),
            ));
        }
        out.push((id, bias as f32));
    }
    Ok(out)
}

/// A count of alternatives (`top_logprobs`, completions' `logprobs`): 0 to 20.
pub fn top_logprobs(obj: &Map<String, Value>, key: &str) -> Result<Option<usize>, ApiError> {
    match field::<i64>(obj, key, "an integer")? {
        None => Ok(None),
        Some(n) if (0..=MAX_TOP_LOGPROBS as i64).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(ApiError::invalid(
            key,
            format!("'{key}' must be between 0 and {MAX_TOP_LOGPROBS} (got {n})"),
        )),
    }
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
    fn logit_bias_refuses_a_token_named_twice_and_takes_many_distinct_ones() {
        let e = parse(r#"{"logit_bias": {"7": 1, "07": -1}}"#).unwrap_err();
        assert!(e.to_string().contains("names token 7 twice"), "{e}");
        // What a 1 MiB body can hold: accepted at once (the vocabulary check comes later).
        let many: Vec<String> = (0..100_000).map(|i| format!("\"{i}\": 0")).collect();
        let s = parse(&format!(r#"{{"logit_bias": {{{}}}}}"#, many.join(","))).unwrap();
        assert_eq!(s.logit_bias.len(), 100_000);
    }

    #[test]
    fn every_request_keeps_the_plans_watermark() {
        use ms_engine::watermark::WatermarkKey;
        use ms_runtime::plan::{Context, Layer, resolve};
        use ms_runtime::watermark::KeyLookup;
        use ms_spec::types::plan::{PlanSpec, Watermark};
        let key = WatermarkKey::new("news", [9; 32]).unwrap();
        let spec = PlanSpec {
            watermark: Some(Watermark {
                key_id: "news".into(),
                gamma: None,
                delta: Some(3.0),
            }),
            ..PlanSpec::default()
        };
        let plan = resolve(
            "p",
            &[Layer::flags(spec)],
            &Context {
                watermark_keys: KeyLookup::Keys(vec![key.clone()]),
                ..Context::default()
            },
        )
        .unwrap();
        let defaults = request_defaults(&plan);
        // Greedy, seeded, biased: the watermark stays whatever the request asks.
        let s = parse(r#"{"temperature": 0, "seed": 5, "logit_bias": {"3": -100}}"#).unwrap();
        let o = s.options(&defaults, 100, 1000, "max_tokens").unwrap();
        let w = o.sampling.watermark.expect("the plan's watermark");
        assert_eq!((*w.key).clone(), key);
        assert_eq!((w.gamma, w.delta), (0.25, 3.0));
        assert_eq!(o.sampling.temperature, 0.0);
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
            .options(&GenerateOptions::default(), 100, 1000, "max_tokens")
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
            (r#"{"top_p": 0}"#, "top_p"),
            (r#"{"logit_bias": {"x": 1}}"#, "logit_bias"),
            (r#"{"logit_bias": {"5": 101}}"#, "logit_bias"),
            (r#"{"logit_bias": {"5": "1"}}"#, "logit_bias"),
            (r#"{"logit_bias": [1]}"#, "logit_bias"),
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
            .options(&GenerateOptions::default(), 100, 1000, "max_tokens")
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
