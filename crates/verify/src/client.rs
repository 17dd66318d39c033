//! The HTTP side of verification: plain GETs (probes, metrics, the plan) and OpenAI-style
//! completions, streamed (server-sent events) so that the time to the first token is seen.
//! The same client talks to the in-process server and to a remote one.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::Agent;

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// One completion request as the load generator saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// HTTP status; 0 when no response arrived (connection refused, timeout).
    pub status: u16,
    /// From sending the request to the first streamed token event.
    pub ttft: Option<Duration>,
    /// From sending the request to the end of the stream.
    pub latency: Duration,
    /// From the response's `usage`, when the server reports it.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Token events received (a count of generated tokens when `usage` is missing).
    pub events: u64,
    /// Why the request failed (HTTP error body, stream error event, transport error).
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status == 200 && self.error.is_none()
    }

    /// A request that failed by running too long (timed out, cut off, stream broken after it
    /// started): its real latency is at least [`Outcome::latency`].
    pub fn unfinished(&self) -> bool {
        !self.ok() && matches!(self.status, 0 | 200 | 504)
    }
}

/// An API key for a server that requires one (`serve --api-key`). Kept out of every rendering:
/// `Debug` shows a placeholder, and the key is only ever written into the `Authorization`
/// header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The environment variable `verify` reads a key from when `--api-key` is not given.
    pub const ENV: &'static str = "MODELSPEC_API_KEY";

    /// A key as given; surrounding spaces are trimmed. An empty key, or one with spaces or
    /// control characters (which a header cannot carry), is refused.
    pub fn new(key: &str) -> Result<Self, String> {
        let key = key.trim();
        if key.is_empty() {
            return Err("the API key is empty; give the key the server was started with".into());
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(
                "the API key contains a space or control character; an HTTP header cannot carry it"
                    .into(),
            );
        }
        Ok(ApiKey(key.to_string()))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Deliberately not `Debug`: it holds the `Authorization` header's value.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: Agent,
    /// `Bearer KEY`, sent with every request when a key is given.
    authorization: Option<String>,
}

impl Client {
    /// A client for the server at `base` (`http://host:port`); `timeout` bounds each request
    /// from start to end of body.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(10)))
            .user_agent(concat!("modelspec-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent,
            authorization: None,
        }
    }

    /// This client, sending `Authorization: Bearer KEY` with every request (probes and
    /// metrics too: they are open on modelspec's server, and a proxy in front may want it).
    pub fn with_api_key(mut self, key: Option<&ApiKey>) -> Self {
        self.authorization = key.map(ApiKey::bearer);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        self.get_url(&self.url(path))
    }

    pub fn get_url(&self, url: &str) -> Result<Reply, String> {
        let mut req = self.agent.get(url);
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        let resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
        read_reply(resp).map_err(|e| format!("GET {url}: {e}"))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Reply, String> {
        let url = self.url(path);
        let mut req = self.agent.post(&url);
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        let resp = req
            .header("content-type", "application/json")
            .send(body.to_string())
            .map_err(|e| format!("POST {url}: {e}"))?;
        read_reply(resp).map_err(|e| format!("POST {url}: {e}"))
    }

    /// A streamed `POST /v1/completions` (`body` must ask for `"stream": true`); `timeout`
    /// bounds this request instead of the client's.
    pub fn stream_completion(&self, body: &Value, timeout: Option<Duration>) -> Outcome {
        let url = self.url("/v1/completions");
        let start = Instant::now();
        let mut out = Outcome::default();
        let mut req = self.agent.post(&url);
        if let Some(t) = timeout {
            req = req.config().timeout_global(Some(t)).build();
        }
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        let resp = match req
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .send(body.to_string())
        {
            Ok(r) => r,
            Err(e) => {
                out.latency = start.elapsed();
                out.error = Some(format!("POST {url}: {e}"));
                return out;
            }
        };
        out.status = resp.status().as_u16();
        if out.status != 200 {
            let body = read_reply(resp).map(|r| r.body).unwrap_or_default();
            out.latency = start.elapsed();
            out.error = Some(format!("HTTP {}: {}", out.status, error_text(&body)));
            return out;
        }
        let mut reader = BufReader::new(resp.into_body().into_reader());
        let mut line = String::new();
        let mut done = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    out.error = Some(format!("reading the event stream: {e}"));
                    break;
                }
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                out.error = Some(format!("event is not JSON: {data}"));
                break;
            };
            if let Some(e) = event.get("error") {
                out.error = Some(format!("error event: {}", error_text(&e.to_string())));
                break;
            }
            if event
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty())
            {
                out.events += 1;
                if out.ttft.is_none() {
                    out.ttft = Some(start.elapsed());
                }
            }
            read_usage(&event, &mut out);
        }
        if !done && out.error.is_none() {
            out.error = Some("the event stream ended without [DONE]".into());
        }
        out.latency = start.elapsed();
        out
    }
}

fn read_reply(resp: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(Reply { status, body })
}

/// `usage.prompt_tokens` / `usage.completion_tokens` of a response or final stream event.
pub fn read_usage(v: &Value, out: &mut Outcome) {
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        if let Some(p) = u.get("prompt_tokens").and_then(Value::as_u64) {
            out.prompt_tokens = Some(p);
        }
        if let Some(c) = u.get("completion_tokens").and_then(Value::as_u64) {
            out.completion_tokens = Some(c);
        }
    }
}

/// The message of an OpenAI-style error body (`{"error": {"message": ...}}`), else the body.
pub fn error_text(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let msg = v.as_ref().and_then(|v| {
        let e = v.get("error").unwrap_or(v);
        e.get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| e.as_str().map(str::to_string))
    });
    let text = msg.unwrap_or_else(|| body.trim().to_string());
    // Bodies can be long (an HTML page): the report needs the gist.
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_and_usage() {
        assert_eq!(
            error_text(r#"{"error":{"message":"prompt too long","type":"invalid_request_error"}}"#),
            "prompt too long"
        );
        assert_eq!(error_text("plain failure\n"), "plain failure");
        assert_eq!(error_text(&"x".repeat(400)).len(), 303);
        let mut o = Outcome::default();
        read_usage(
            &serde_json::json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
            &mut o,
        );
        assert_eq!((o.prompt_tokens, o.completion_tokens), (Some(12), Some(3)));
        read_usage(&serde_json::json!({"usage": null}), &mut o);
        assert_eq!(o.prompt_tokens, Some(12));
    }

    #[test]
    fn api_keys_are_checked_and_never_shown() {
        let key = ApiKey::new("  sk-secret-1 ").unwrap();
        assert_eq!(key.bearer(), "Bearer sk-secret-1");
        assert!(!format!("{key:?}").contains("secret"));
        assert!(ApiKey::new(" ").is_err());
        assert!(ApiKey::new("a b").is_err());
    }

    #[test]
    fn urls_join_paths() {
        let c = Client::new("http://127.0.0.1:9/", Duration::from_secs(1));
        assert_eq!(c.url("/metrics"), "http://127.0.0.1:9/metrics");
        assert_eq!(c.url("health"), "http://127.0.0.1:9/health");
    }
}
