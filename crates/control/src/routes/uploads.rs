//! Resumable uploads, OCI-distribution style: `POST /artifact/uploads` opens a session (202,
//! `Location`, `Upload-Id`), `PATCH` appends a chunk at the session's offset (from
//! `Content-Range: bytes START-END/*`, `Upload-Offset: START` or `?offset=START`), `GET` tells
//! the offset after an interruption, `PUT` verifies and publishes.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use ms_registry::entity::{ArtifactUpload, UploadSession};
use serde::Deserialize;

use super::artifacts::check_size;
use super::{json, registered};
use crate::auth::Caller;
use crate::body::reader;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody};
use crate::state::AppState;

/// The header a session's offset is also given in.
pub const UPLOAD_OFFSET: &str = "upload-offset";

fn session_response(status: StatusCode, session: &UploadSession) -> Response {
    let mut response = json(status, session);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/artifact/uploads/{}", session.upload_id)) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&session.upload_id) {
        headers.insert("upload-id", v);
    }
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(session.offset));
    response
}

/// `POST /artifact/uploads`: 202 with the session.
pub async fn start(
    State(state): State<AppState>,
    Caller(r): Caller,
    JsonBody(req): JsonBody<ArtifactUpload>,
) -> Result<Response, ApiError> {
    check_size(&state, req.size)?;
    let session = r.start_upload(req).await?;
    Ok(session_response(StatusCode::ACCEPTED, &session))
}

/// `GET /artifact/uploads/{id}`: the session and its offset.
pub async fn status(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    let session = r.upload_status(&id).await?;
    Ok(session_response(StatusCode::OK, &session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    offset: Option<u64>,
}

/// Where a chunk starts: `Content-Range`, `Upload-Offset` or `?offset=`, which must agree.
fn chunk_offset(headers: &HeaderMap, query: Option<u64>) -> Result<u64, ApiError> {
    let mut found: Vec<(&str, u64)> = Vec::new();
    if let Some(v) = headers.get(header::CONTENT_RANGE) {
        let text = v.to_str().unwrap_or("");
        let start = text
            .trim()
            .strip_prefix("bytes ")
            .and_then(|rest| rest.split(['-', '/']).next())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_range(format!("Content-Range {text:?} is not `bytes START-END/*`"))
            })?;
        found.push(("Content-Range", start));
    }
    if let Some(v) = headers.get(UPLOAD_OFFSET) {
        let n = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_range("Upload-Offset is not a number"))?;
        found.push(("Upload-Offset", n));
    }
    if let Some(n) = query {
        found.push(("offset", n));
    }
    let Some(&(_, offset)) = found.first() else {
        return Err(ApiError::bad_range("the chunk's offset is missing").hint(
            "send `Content-Range: bytes START-END/*` or `Upload-Offset: START`, START being the offset GET /artifact/uploads/{id} gives",
        ));
    };
    if let Some((name, other)) = found.iter().find(|(_, n)| *n != offset) {
        return Err(ApiError::bad_range(format!(
            "{} says {offset} but {name} says {other}",
            found[0].0
        )));
    }
    Ok(offset)
}

/// `PATCH /artifact/uploads/{id}`: 202 with the new offset.
pub async fn chunk(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let query: Option<ChunkQuery> = req
        .uri()
        .query()
        .map(|_| {
            axum::extract::Query::<ChunkQuery>::try_from_uri(req.uri())
                .map(|q| q.0)
                .map_err(|e| ApiError::bad_query(e.body_text()))
        })
        .transpose()?;
    let offset = chunk_offset(req.headers(), query.and_then(|q| q.offset))?;
    let session = r.upload_chunk(&id, offset, reader(req.into_body())).await?;
    Ok(session_response(StatusCode::ACCEPTED, &session))
}

/// `PUT /artifact/uploads/{id}`: verifies the digest and publishes; 201, or 200 when the
/// bytes were there already.
pub async fn finish(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(registered(&r.finish_upload(&id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_agree_or_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 100-199/*"),
        );
        assert_eq!(chunk_offset(&h, None).unwrap(), 100);
        assert_eq!(chunk_offset(&h, Some(100)).unwrap(), 100);
        assert!(chunk_offset(&h, Some(5)).is_err());
        assert!(chunk_offset(&HeaderMap::new(), None).is_err());
        assert_eq!(chunk_offset(&HeaderMap::new(), Some(7)).unwrap(), 7);
    }
}
