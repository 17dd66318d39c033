//! Provenance: a lineage node's SLSA statement and its signature, attached after the fact.

use axum::http::StatusCode;
use axum::response::Response;
use ms_registry::entity::ProvenanceSignature;

use super::json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody};

/// `GET /provenance/{subject}`.
pub async fn record(Caller(r): Caller, Ids(subject): Ids<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.provenance(&subject).await?))
}

/// `POST /provenance/{subject}/signature`.
pub async fn sign(
    Caller(r): Caller,
    Ids(subject): Ids<String>,
    JsonBody(req): JsonBody<ProvenanceSignature>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &r.sign_provenance(&subject, req).await?,
    ))
}
