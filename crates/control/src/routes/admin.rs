//! Who am I, tokens, the audit trail and `registry check`.

use axum::http::StatusCode;
use axum::response::Response;
use ms_registry::entity::TokenRequest;
use serde::Deserialize;

use super::json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody, QueryOf};

/// `GET /whoami`: the principal the credentials stand for.
pub async fn whoami(Caller(r): Caller) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.whoami().await?))
}

/// `POST /tokens`: 201 with the secret, shown this once.
pub async fn create_token(
    Caller(r): Caller,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::CREATED, &r.create_token(req).await?))
}

/// `GET /tokens`.
pub async fn list_tokens(Caller(r): Caller) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.list_tokens().await?))
}

/// `DELETE /tokens/{id}`.
pub async fn revoke_token(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.revoke_token(&id).await?))
}

/// `after` (default 0) and `limit` (default 100).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /audit?after=&limit=`.
pub async fn audit(
    Caller(r): Caller,
    QueryOf(q): QueryOf<AuditQuery>,
) -> Result<Response, ApiError> {
    let events = r
        .audit_events(q.after.unwrap_or(0), q.limit.unwrap_or(100))
        .await?;
    Ok(json(StatusCode::OK, &events))
}

/// `POST /registry/check`.
pub async fn check(Caller(r): Caller) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.check().await?))
}
