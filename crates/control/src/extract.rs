//! Extractors whose refusals are the API's error shape: a JSON body (Content-Type checked,
//! size-limited, with a JSON pointer to the field that failed), path ids (no traversal) and
//! query parameters. They replace axum's `Json`, `Path` and `Query`, whose rejections are
//! plain text.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts};
use bytes::BytesMut;
use futures_util::StreamExt;
use ms_registry::ErrorKind;
use ms_registry::remote::codes;
use serde::de::DeserializeOwned;

use crate::body::body_error;
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body, parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorKind::Invalid,
                codes::BAD_CONTENT_TYPE,
                "the body must be JSON",
            )
            .hint("send `Content-Type: application/json`"));
        }
        let limit = state.limits.max_json_body;
        let bytes = read_limited(req.into_body(), limit).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Whether the request says its body is JSON (`application/json` or `…+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// The whole body, refused with 413 above `limit` bytes (declared or streamed).
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!("the JSON body is larger than {limit} bytes"))
            .hint("upload large files with POST /artifact/upload")
    };
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| body_error(&e))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `T` from JSON bytes; the error names the line and column of a syntax error, or the field
/// (as a JSON pointer) whose value is missing, unknown or of the wrong type.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    // Bytes after the value are a syntax error at the top.
    let parsed = parsed.and_then(|v| {
        de.end().map(|()| v).map_err(|e| {
            serde_path_to_error::Error::new(serde_path_to_error::Track::new().path(), e)
        })
    });
    parsed.map_err(|e| {
        let pointer = pointer_of(e.path());
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("the body is not valid JSON: {inner}")
            }
            _ if pointer.is_empty() => format!("the body is not the expected record: {inner}"),
            _ => format!("{pointer}: {inner}"),
        };
        ApiError::new(ErrorKind::Invalid, codes::BAD_JSON, message)
            .at(pointer)
            .hint("GET /openapi.json documents each route's body (camelCase field names)")
    })
}

/// A serde path as a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// Ids from the path, percent-decoded. They are handed to the registry as they are: it
/// decides what exists (an id with `/` or `..` names nothing, 404), exactly as when it is used
/// embedded, and nothing here turns an id into a file path.
pub struct Ids<T>(pub T);

impl FromRequestParts<AppState> for Ids<String> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_path(format!("the path cannot be read: {e}")))?;
        Ok(Ids(id))
    }
}

impl FromRequestParts<AppState> for Ids<(String, String)> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((a, b)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_path(format!("the path cannot be read: {e}")))?;
        Ok(Ids((a, b)))
    }
}

/// Query parameters parsed into `T`; an unknown value or a wrong type names the parameter.
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryOf(q))
            .map_err(|e| {
                ApiError::bad_query(format!(
                    "the query string cannot be read: {}",
                    e.body_text()
                ))
                .hint("GET /openapi.json lists each route's parameters")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        size: u64,
    }

    #[test]
    fn errors_point_at_the_field() {
        let e = parse_json::<Outer>(br#"{"items": [{"size": 1}, {"size": "x"}]}"#).unwrap_err();
        assert_eq!(e.error.pointer.as_deref(), Some("/items/1/size"));
        assert_eq!(e.error.code, codes::BAD_JSON);
        let e = parse_json::<Outer>(b"{\"items\": [").unwrap_err();
        assert!(e.error.message.contains("not valid JSON"), "{}", e.error);
        let e = parse_json::<Outer>(br#"{"items": [], "x": 1}"#).unwrap_err();
        assert!(e.error.message.contains("unknown field"), "{}", e.error);
        assert!(parse_json::<Outer>(br#"{"items": []} x"#).is_err());
    }
}
