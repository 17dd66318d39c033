//! The verifiable audit log (C2SP tlog-tiles): the signed checkpoint, hash and entries tiles,
//! an event with its inclusion proof, consistency proofs, and witness cosignatures. Tiles and
//! checkpoints are bytes and text as the specs define them, not JSON; a full tile never
//! changes, so it is served as immutable.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ms_registry::log::Cosignatures;
use serde::Deserialize;

use super::json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody, QueryOf};

/// `GET /audit/checkpoint`: the signed note, `text/plain`.
pub async fn checkpoint(Caller(r): Caller) -> Result<Response, ApiError> {
    let note = r.audit_checkpoint().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    )
        .into_response())
}

/// `GET /audit/tile/{*path}`: a hash or entries tile.
pub async fn tile(Caller(r): Caller, Ids(path): Ids<String>) -> Result<Response, ApiError> {
    let path = format!("tile/{path}");
    let bytes = r.audit_tile(&path).await?;
    // A partial tile is replaced by a wider one as the log grows; a full one never changes.
    let cache = if path.contains(".p/") {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /audit/events/{seq}`: the event and its inclusion proof.
pub async fn event(Caller(r): Caller, Ids(seq): Ids<String>) -> Result<Response, ApiError> {
    let seq: u64 = seq.parse().map_err(|_| {
        ApiError::bad_path(format!("{seq:?} is not an event sequence number"))
            .hint("events are numbered from 1")
    })?;
    Ok(json(StatusCode::OK, &r.audit_event(seq).await?))
}

/// The sizes of a consistency proof.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /audit/proof/consistency?from=&to=`.
pub async fn consistency(
    Caller(r): Caller,
    QueryOf(q): QueryOf<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &r.audit_consistency(q.from, q.to).await?,
    ))
}

/// `POST /audit/cosignatures`: cosignatures of configured witnesses, verified and kept.
pub async fn cosignatures(
    Caller(r): Caller,
    JsonBody(req): JsonBody<Cosignatures>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.add_cosignatures(req).await?))
}
