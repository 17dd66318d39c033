//! OpenAI-style error responses: `{"error": {"message", "type", "param", "code"}}` with a 4xx
//! or 5xx status, and the JSON body parsing that produces them (a malformed body gets serde's
//! message with its line and column; a wrongly typed field names the field in `param`).

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// An error answer; boxed so that `Result<_, ApiError>` stays small.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorDetail>);

#[derive(Debug, Clone)]
pub struct ErrorDetail {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub retry_after: Option<Duration>,
    /// Findings behind a 422 (an invalid plan): code, JSON pointer, line, column, message.
    pub findings: Option<Value>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetail;
    fn deref(&self) -> &ErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorDetail {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorDetail {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
            findings: None,
        }))
    }

    /// 400: a request field is missing or wrong.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = Some(param.into());
        e
    }

    /// 400 without a single field to blame (e.g. the body is not JSON).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message).with_code("not_found")
    }

    /// 401 as OpenAI answers a missing or wrong key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
            .with_code("invalid_api_key")
    }

    /// 403: the request is understood and refused (a Host not allowed, a disabled route).
    pub fn forbidden(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_request_error", message).with_code(code)
    }

    /// 404 `model_not_found`, as OpenAI answers a model it does not have.
    pub fn model_not_found(model: &str, served: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model {model:?} does not exist; this server serves {served:?} (see GET /v1/models)"),
        )
        .with_code("model_not_found");
        e.param = Some("model".into());
        e
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "this method is not allowed on this path; see /openapi.json",
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body exceeds the server's limit of {limit} bytes"),
        )
        .with_code("request_too_large")
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "the server is at its concurrency limit (running batch and queue are full); retry in {} s",
                retry_after.as_secs().max(1)
            ),
        )
        .with_code("rate_limit_exceeded");
        e.retry_after = Some(retry_after);
        e
    }

    /// 503: no model yet (loading, or the load failed), or shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
            .with_code("model_not_ready")
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout_error", message).with_code("timeout")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// 422: a well-formed document that does not hold (an invalid candidate plan).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            message,
        )
        .with_code("invalid_plan")
    }

    /// An answer to a request the HTTP layer could not read (malformed, too long, too slow):
    /// 4xx are the client's (`invalid_request_error`), the code says which.
    pub fn protocol(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status.is_client_error() {
            "invalid_request_error"
        } else {
            "server_error"
        };
        let code = match status {
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::URI_TOO_LONG => "uri_too_long",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            _ => "malformed_request",
        };
        Self::new(status, kind, message).with_code(code)
    }

    pub fn with_findings(mut self, findings: Value) -> Self {
        self.findings = Some(findings);
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The error object as OpenAI writes it.
    pub fn body(&self) -> Value {
        let mut body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        if let Some(f) = &self.findings {
            body["findings"] = f.clone();
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// A body that could not be read: too large (413), too slow (408, see
/// [`crate::connections`]) or a broken connection (400).
pub fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else if let Some(t) = timeout_cause(&rejection) {
        ApiError::protocol(StatusCode::REQUEST_TIMEOUT, t.to_string())
    } else {
        ApiError::bad_request(format!("could not read the request body: {rejection}"))
    }
}

/// The body read's deadline, when that is why the body could not be read.
fn timeout_cause(rejection: &BytesRejection) -> Option<&crate::connections::BodyTimeout> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if let Some(t) = e.downcast_ref::<crate::connections::BodyTimeout>() {
            return Some(t);
        }
        cause = e.source();
    }
    None
}

/// The request body as a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// An optional field (absent or null = None), its type error naming the field.
pub fn field<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    key: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v).map(Some).map_err(|_| {
            ApiError::invalid(
                key,
                format!("'{key}' must be {expected}, got {}", json_kind(v)),
            )
        }),
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = parse_object(b"{\n  \"model\": \"x\",\n  oops\n}").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("line 3 column 3"), "{}", e.message);
        let e = parse_object(b"[1]").unwrap_err();
        assert!(e.message.contains("not an array"), "{}", e.message);
    }

    #[test]
    fn field_type_errors_name_the_field() {
        let obj = parse_object(br#"{"temperature": "hot", "seed": null}"#).unwrap();
        let e = field::<f64>(&obj, "temperature", "a number").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        assert!(e.message.contains("got a string"));
        assert_eq!(field::<u64>(&obj, "seed", "an integer").unwrap(), None);
        let body = e.body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "temperature");
    }
}
