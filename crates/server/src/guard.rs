//! What a request must show before any handler runs: the `Host` it was sent to (against DNS
//! rebinding), an API key (`Authorization: Bearer KEY`, when keys are configured) and, on the
//! routes that read a body, its `Content-Type` (a browser posts `text/plain` forms to any
//! address without asking; a JSON or YAML content type makes it ask first, a CORS preflight this
//! server does not answer). One middleware over the whole router, in this order:
//!
//! 1. the probes and the metrics path are open: orchestrators and scrapers call them without
//!    keys, under whatever name they use for the pod;
//! 2. `Host` must be an IP address, `localhost` (or a name under `.localhost`), or a name given
//!    with `--allowed-host` (`*` allows any); the port is not checked (rebinding changes the
//!    name). Else 403 `host_not_allowed`;
//! 3. with keys configured, every other route needs one of them: else 401 `invalid_api_key`, as
//!    OpenAI answers. Keys are kept as SHA-256 digests and compared in constant time; they are
//!    never printed (`Debug` shows only their count);
//! 4. without keys on a non-loopback address, the plan routes (`PUT /v1/plan`,
//!    `POST /v1/plans/evaluate`, which reload or run the engine) answer 403: anyone who can
//!    reach the port could otherwise take the server over. Inference stays open (a deployment
//!    behind an authenticating proxy), with a warning at start;
//! 5. POST and PUT need `Content-Type: application/json`; the plan routes also take YAML
//!    (`application/yaml`, `application/x-yaml`, `text/yaml`). Else 415.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::state::AppState;

/// The environment variable with API keys, comma-separated (besides `--api-key`).
pub const API_KEYS_ENV: &str = "MODELSPEC_API_KEYS";

/// The routes that reload or run the engine under another plan.
const PLAN_ROUTES: [&str; 2] = ["/v1/plan", "/v1/plans/evaluate"];

/// The accepted API keys, as SHA-256 digests (the keys themselves are not kept).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.0.len())
    }
}

impl ApiKeys {
    /// Keys as given; surrounding spaces are trimmed, an empty key is refused (it would let an
    /// empty `Bearer` in).
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut digests = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let key = key.as_ref().trim();
            if key.is_empty() {
                return Err(format!("API key {} is empty; give a non-empty key", i + 1));
            }
            if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "API key {} contains a space or control character; HTTP clients cannot send it",
                    i + 1
                ));
            }
            digests.push(digest(key));
        }
        Ok(Self(digests))
    }

    /// Keys from a file: one per line; blank lines and lines starting with `#` are skipped.
    pub fn lines_of(text: &str) -> impl Iterator<Item = &str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    /// Keys from a comma-separated list (the value of [`API_KEYS_ENV`]); blank entries are
    /// skipped.
    pub fn comma_separated(text: &str) -> impl Iterator<Item = &str> {
        text.split(',').map(str::trim).filter(|k| !k.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `presented` is one of the keys. Every key is compared, each in constant time.
    pub fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented);
        self.0
            .iter()
            .fold(false, |found, key| found | constant_time_eq(key, &d))
    }

    /// Adds other keys (`--api-key` beside the environment's).
    pub fn extend(&mut self, other: ApiKeys) {
        self.0.extend(other.0);
        self.0.sort_unstable();
        self.0.dedup();
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// No early exit: the time does not depend on where the digests differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The `Host` names allowed besides IP addresses and `localhost`; `*` allows any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut out = Vec::new();
        for n in names {
            let n = n.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            if n.is_empty() || n.contains(['/', ' ', '@']) || (n.contains('*') && n != "*") {
                return Err(format!(
                    "--allowed-host {n:?} must be a host name (no port, scheme or path), or '*' for any"
                ));
            }
            out.push(n);
        }
        Ok(Self(out))
    }

    pub fn any(&self) -> bool {
        self.0.iter().any(|n| n == "*")
    }

    /// Whether a `Host` header value (`name[:port]`, `[v6]:port`) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        if self.any() {
            return true;
        }
        let name = host_name(host).trim_end_matches('.').to_ascii_lowercase();
        name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok()
            || self.0.contains(&name)
    }
}

/// The name of a `Host` value without its port: `[::1]:8080` → `::1`, `a.b:80` → `a.b`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// What the server says at start about its exposure, for the command to print.
pub fn warnings(host: IpAddr, keys: &ApiKeys, allowed: &AllowedHosts) -> Vec<String> {
    let mut out = Vec::new();
    if !host.is_loopback() && keys.is_empty() {
        out.push(format!(
            "WARNING: listening on {host}, reachable from other machines, WITHOUT an API key: anyone who reaches the port can use the model. Set --api-key (or {API_KEYS_ENV}). The plan routes (PUT /v1/plan, POST /v1/plans/evaluate) are disabled until a key is set."
        ));
    }
    if allowed.any() {
        out.push(
            "WARNING: --allowed-host '*': any Host is accepted; web pages can reach this server through DNS rebinding".to_string(),
        );
    }
    out
}

/// The middleware (see the module note).
pub async fn check(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let c = &state.config;
    let path = req.uri().path();
    if [&c.live_path, &c.ready_path, &c.metrics_path]
        .iter()
        .any(|p| p.as_str() == path)
    {
        return next.run(req).await;
    }
    if let Err(e) = admit(&state, &req) {
        let unauthorized = e.status == StatusCode::UNAUTHORIZED;
        let mut response = e.into_response();
        if unauthorized {
            // RFC 9110: a 401 names the scheme it expects.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return response;
    }
    next.run(req).await
}

fn admit(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let c = &state.config;
    let headers = req.headers();
    let path = req.uri().path();
    if let Some(host) = host_of(req)
        && !c.allowed_hosts.allows(&host)
    {
        return Err(ApiError::forbidden(
            format!(
                "the Host {host:?} is not one this server answers to (against DNS rebinding); start it with --allowed-host {:?} to allow it",
                host_name(&host)
            ),
            "host_not_allowed",
        ));
    }
    let plan_route = PLAN_ROUTES.contains(&path);
    if c.api_keys.is_empty() {
        if plan_route && !c.host.is_loopback() {
            return Err(ApiError::forbidden(
                format!(
                    "the plan routes are disabled on a server listening on {} without an API key; restart it with --api-key",
                    c.host
                ),
                "api_key_required",
            ));
        }
    } else {
        authorize(&c.api_keys, headers)?;
    }
    if matches!(*req.method(), Method::POST | Method::PUT) {
        content_type(headers, plan_route)?;
    }
    Ok(())
}

/// The `Host` header, or the URI's authority (HTTP/2); `None` when neither is sent.
fn host_of(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(v) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

fn authorize(keys: &ApiKeys, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the Authorization header must be 'Bearer YOUR_KEY'; no other scheme is accepted",
            )
        })?;
    if keys.accepts(presented) {
        Ok(())
    } else {
        // The key itself is not echoed: it may be another service's secret.
        Err(ApiError::unauthorized("Incorrect API key provided."))
    }
}

fn content_type(headers: &HeaderMap, yaml_too: bool) -> Result<(), ApiError> {
    let given = headers.get(header::CONTENT_TYPE).map(mime_of);
    let ok = match given.as_deref() {
        Some("application/json") => true,
        Some("application/yaml" | "application/x-yaml" | "text/yaml") => yaml_too,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let expected = if yaml_too {
        "application/json or application/yaml"
    } else {
        "application/json"
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request_error",
        match given {
            Some(t) => format!("Content-Type {t:?} is not accepted here; send {expected}"),
            None => format!("the request has no Content-Type; send {expected}"),
        },
    )
    .with_code("unsupported_media_type"))
}

/// `Application/JSON; charset=utf-8` → `application/json`.
fn mime_of(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes())
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_digests_compared_whole_and_never_shown() {
        let keys = ApiKeys::new(["sk-one", " sk-two "]).unwrap();
        assert!(keys.accepts("sk-one") && keys.accepts("sk-two"));
        assert!(!keys.accepts("sk-on") && !keys.accepts("") && !keys.accepts("sk-one "));
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 configured)");
        assert!(ApiKeys::new([""]).is_err());
        assert!(ApiKeys::new(["a b"]).is_err());
        let file = "# keys\nsk-a\n\n  sk-b  \n";
        assert_eq!(
            ApiKeys::lines_of(file).collect::<Vec<_>>(),
            ["sk-a", "sk-b"]
        );
    }

    #[test]
    fn hosts_ip_addresses_and_localhost_are_allowed_names_must_be_listed() {
        let none = AllowedHosts::default();
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
        ] {
            assert!(none.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
        ] {
            assert!(!none.allows(bad), "{bad}");
        }
        let some = AllowedHosts::new(["API.example.com"]).unwrap();
        assert!(some.allows("api.example.com:443") && !some.allows("example.com"));
        assert!(AllowedHosts::new(["*"]).unwrap().allows("anything"));
        assert!(AllowedHosts::new(["http://x"]).is_err());
        assert!(AllowedHosts::new(["*.example"]).is_err());
    }
}
