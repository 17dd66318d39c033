//! Datasets and lineage: register a dataset, show one, walk the graph up or down.

use axum::http::StatusCode;
use axum::response::Response;
use ms_registry::Digest;
use ms_registry::entity::{DatasetRegistration, Direction};
use serde::Deserialize;

use super::{json, registered};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody, QueryOf};

/// A digest from the path, refused with 400 (not a lookup) when it is not one.
pub(crate) fn digest(id: &str) -> Result<Digest, ApiError> {
    id.parse()
        .map_err(|e: ms_registry::digest::BadDigest| ApiError::bad_path(e.to_string()))
}

/// `POST /dataset/register`.
pub async fn register(
    Caller(r): Caller,
    JsonBody(req): JsonBody<DatasetRegistration>,
) -> Result<Response, ApiError> {
    Ok(registered(&r.register_dataset(req).await?))
}

/// `GET /datasets/{id}`.
pub async fn dataset(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.dataset(&digest(&id)?).await?))
}

/// The lineage query: `direction` (default `up`), `depth` (default 5, at most 32).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageQuery {
    direction: Option<Direction>,
    depth: Option<u32>,
}

/// Depth when the query names none.
pub const DEFAULT_LINEAGE_DEPTH: u32 = 5;

/// `GET /lineage/{id}?direction=up|down&depth=N`.
pub async fn lineage(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    QueryOf(q): QueryOf<LineageQuery>,
) -> Result<Response, ApiError> {
    let direction = q.direction.unwrap_or(Direction::Up);
    let depth = q.depth.unwrap_or(DEFAULT_LINEAGE_DEPTH);
    Ok(json(
        StatusCode::OK,
        &r.lineage(&id, direction, depth).await?,
    ))
}
