//! Artifacts: one-shot upload (a raw body with its metadata in the query, or
//! multipart/form-data with a `metadata` part then a `file` part — streamed either way),
//! metadata, and content with `Range` (206, 416) and the digest as ETag.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use ms_registry::api::{ByteRange, ByteReader};
use ms_registry::entity::ArtifactUpload;
use ms_registry::remote::codes;
use ms_registry::{Digest, ErrorKind};
use serde::Deserialize;
use tokio_util::io::StreamReader;

use super::datasets::digest;
use super::registered;
use crate::auth::Caller;
use crate::body::{reader, response_body};
use crate::error::ApiError;
use crate::extract::{Ids, parse_json};
use crate::state::AppState;

/// The metadata of a raw upload, in the query string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadQuery {
    name: Option<String>,
    media_type: Option<String>,
    /// The expected digest; the upload fails (422) unless the bytes hash to it.
    digest: Option<Digest>,
    /// The size, when no `Content-Length` declares it (chunked bodies).
    size: Option<u64>,
    /// Provenance as a JSON text.
    provenance: Option<String>,
}

/// The body's declared size (`Content-Length`), if any.
pub(crate) fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_query("Content-Length is not a number"))
        })
        .transpose()
}

/// 413 before reading when `size` is above the store's limit.
pub(crate) fn check_size(state: &AppState, size: Option<u64>) -> Result<(), ApiError> {
    if let (Some(size), Some(max)) = (size, state.backend.max_artifact_size())
        && size > max
    {
        return Err(ApiError::too_large(format!(
            "the declared size {size} bytes is above the store's limit of {max} bytes"
        ))
        .hint("the server's operator sets the blob store's size limit"));
    }
    Ok(())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// `POST /artifact/upload`: 201 with the new artifact, 200 when the bytes were there.
pub async fn upload(
    State(state): State<AppState>,
    Caller(r): Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let declared = declared_length(req.headers())?;
    let (upload, body) = if is_multipart(req.headers()) {
        // The form's overhead is small next to a file; the exact size is checked by the store.
        let slack = state.limits.max_json_body as u64 + (1 << 20);
        check_size(&state, declared.map(|d| d.saturating_sub(slack)))?;
        multipart(&state, req).await?
    } else {
        raw(&state, req, declared)?
    };
    Ok(registered(&r.upload_artifact(upload, body).await?))
}

fn raw(
    state: &AppState,
    req: Request,
    declared: Option<u64>,
) -> Result<(ArtifactUpload, ByteReader), ApiError> {
    let axum::extract::Query(q) = axum::extract::Query::<UploadQuery>::try_from_uri(req.uri())
        .map_err(|e| {
            ApiError::bad_query(format!(
                "the query string cannot be read: {}",
                e.body_text()
            ))
            .hint("POST /artifact/upload?name=FILE&mediaType=TYPE&digest=sha256:HEX")
        })?;
    let name = q.name.ok_or_else(|| {
        ApiError::bad_query("`name` is required: the artifact's file name")
            .at("/name")
            .hint("POST /artifact/upload?name=FILE, or multipart/form-data with a `metadata` part")
    })?;
    if let (Some(size), Some(length)) = (q.size, declared)
        && size != length
    {
        return Err(ApiError::bad_query(format!(
            "size={size} but Content-Length is {length}"
        )));
    }
    let size = q.size.or(declared);
    check_size(state, size)?;
    let provenance = q
        .provenance
        .map(|p| parse_json::<serde_json::Value>(p.as_bytes()).map_err(|e| e.at("/provenance")))
        .transpose()?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.eq_ignore_ascii_case("application/octet-stream"))
        .map(str::to_string);
    let upload = ArtifactUpload {
        name,
        media_type: q.media_type.or(content_type),
        expected_digest: q.digest,
        size,
        provenance,
    };
    Ok((upload, reader(req.into_body())))
}

fn bad_form(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Invalid, codes::BAD_CONTENT_TYPE, message).hint(
        "send multipart/form-data with a `metadata` part (JSON: name, mediaType, expectedDigest, size) then a `file` part",
    )
}

async fn multipart(
    state: &AppState,
    req: Request,
) -> Result<(ArtifactUpload, ByteReader), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| bad_form(format!("the multipart Content-Type is not usable: {e}")))?;
    let mut form = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
    let mut metadata = form
        .next_field()
        .await
        .map_err(|e| bad_form(format!("the form cannot be read: {e}")))?
        .ok_or_else(|| bad_form("the form is empty"))?;
    if metadata.name() != Some("metadata") {
        return Err(bad_form(format!(
            "the first part is {:?}, not `metadata`",
            metadata.name().unwrap_or("")
        )));
    }
    let mut text = Vec::new();
    while let Some(chunk) = metadata
        .chunk()
        .await
        .map_err(|e| bad_form(format!("the metadata part cannot be read: {e}")))?
    {
        if text.len() + chunk.len() > state.limits.max_json_body {
            return Err(ApiError::too_large("the metadata part is too large"));
        }
        text.extend_from_slice(&chunk);
    }
    // multer hands out one field at a time: the metadata part must be gone before the next.
    drop(metadata);
    let upload: ArtifactUpload = parse_json(&text)?;
    check_size(state, upload.size)?;
    let file = form
        .next_field()
        .await
        .map_err(|e| bad_form(format!("the form cannot be read: {e}")))?
        .ok_or_else(|| bad_form("the form has no `file` part after `metadata`"))?;
    if file.name() != Some("file") {
        return Err(bad_form(format!(
            "the second part is {:?}, not `file`",
            file.name().unwrap_or("")
        )));
    }
    let stream = file.map_err(|e| std::io::Error::other(format!("the file part broke off: {e}")));
    // The form stays alive inside the field (multer shares its state), so the reader is
    // self-contained.
    let body: ByteReader = Box::new(StreamReader::new(stream));
    Ok((upload, body))
}

/// `GET /artifact/{id}`.
pub async fn metadata(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(super::json(
        StatusCode::OK,
        &r.artifact(&digest(&id)?).await?,
    ))
}

/// One `Range: bytes=…` request.
#[derive(Debug, PartialEq)]
enum RangeSpec {
    /// `START-` or `START-END` (END inclusive).
    From(u64, Option<u64>),
    /// `-N`: the last N bytes.
    Suffix(u64),
}

fn parse_range(value: &str) -> Result<RangeSpec, ApiError> {
    let bad = || {
        ApiError::bad_range(format!(
            "Range {value:?} is not `bytes=START-END`, `bytes=START-` or `bytes=-N`"
        ))
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') {
        return Err(ApiError::bad_range("only one range per request is served"));
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Ok(RangeSpec::Suffix(num(b)?)),
        (false, true) => Ok(RangeSpec::From(num(a)?, None)),
        (false, false) => {
            let (start, end) = (num(a)?, num(b)?);
            if end < start {
                return Err(bad());
            }
            Ok(RangeSpec::From(start, Some(end)))
        }
        (true, true) => Err(bad()),
    }
}

/// `GET /artifact/{id}/content`: 200 whole, 206 for a `Range`, 416 outside the blob.
pub async fn content(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = digest(&id)?;
    let spec = headers
        .get(header::RANGE)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_range("Range is not text"))
        })
        .transpose()?
        .map(parse_range)
        .transpose()?;
    let range = match spec {
        None => None,
        Some(RangeSpec::From(start, end)) => Some(ByteRange {
            start,
            end: end.map(|e| e.saturating_add(1)),
        }),
        Some(RangeSpec::Suffix(n)) => {
            let size = r.artifact(&id).await?.size;
            if n == 0 {
                return Err(unsatisfiable(size));
            }
            Some(ByteRange {
                start: size.saturating_sub(n),
                end: None,
            })
        }
    };
    let content = match r.artifact_content(&id, range).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::RangeNotSatisfiable => {
            let size = r.artifact(&id).await?.size;
            let mut api: ApiError = e.into();
            api.status = None;
            let mut response = api.into_response();
            set(
                &mut response,
                header::CONTENT_RANGE,
                format!("bytes */{size}"),
            );
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    let artifact = &content.artifact;
    let partial = range.is_some();
    let status = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let len = content.end - content.start;
    let mut response = (status, Body::empty()).into_response();
    set(
        &mut response,
        header::ETAG,
        format!("\"{}\"", artifact.artifact_id),
    );
    set(&mut response, header::ACCEPT_RANGES, "bytes".into());
    set(
        &mut response,
        header::CONTENT_TYPE,
        artifact.media_type.clone(),
    );
    set(&mut response, header::CONTENT_LENGTH, len.to_string());
    if partial {
        let range = if len == 0 {
            format!("bytes */{}", artifact.size)
        } else {
            format!(
                "bytes {}-{}/{}",
                content.start,
                content.end - 1,
                artifact.size
            )
        };
        set(&mut response, header::CONTENT_RANGE, range);
    }
    *response.body_mut() = response_body(content.body);
    Ok(response)
}

fn unsatisfiable(size: u64) -> ApiError {
    ApiError::new(
        ErrorKind::RangeNotSatisfiable,
        codes::BAD_RANGE,
        format!("the range is outside the artifact's {size} bytes"),
    )
}

fn set(response: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9").unwrap(),
            RangeSpec::From(0, Some(9))
        );
        assert_eq!(parse_range("bytes=5-").unwrap(), RangeSpec::From(5, None));
        assert_eq!(parse_range("bytes=-3").unwrap(), RangeSpec::Suffix(3));
        for bad in [
            "bytes=",
            "bytes=-",
            "items=0-1",
            "bytes=3-1",
            "bytes=0-1,4-5",
            "bytes=a-b",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
