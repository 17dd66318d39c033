//! Signatures of model versions and the signing keys: attach (writer) and list a version's
//! signatures; add, rotate, revoke (admin) and list keys. The checks are the registry's.

use axum::http::StatusCode;
use axum::response::Response;
use ms_registry::entity::{KeyRequest, RevokeKeyRequest, RotateKeyRequest, SignatureRequest};

use super::{json, registered};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody};

/// `POST /models/{id}/versions/{selector}/signatures`: 201 attached, 200 attached already.
pub async fn attach(
    Caller(r): Caller,
    Ids((id, selector)): Ids<(String, String)>,
    JsonBody(req): JsonBody<SignatureRequest>,
) -> Result<Response, ApiError> {
    Ok(registered(&r.sign_version(&id, &selector, req).await?))
}

/// `GET /models/{id}/versions/{selector}/signatures`: newest first.
pub async fn list(
    Caller(r): Caller,
    Ids((id, selector)): Ids<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.signatures(&id, &selector).await?))
}

/// `POST /keys`: 201 added, 200 the identical key existed.
pub async fn add_key(
    Caller(r): Caller,
    JsonBody(req): JsonBody<KeyRequest>,
) -> Result<Response, ApiError> {
    Ok(registered(&r.add_key(req).await?))
}

/// `GET /keys`.
pub async fn keys(Caller(r): Caller) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.keys().await?))
}

/// `POST /keys/{id}/rotate`.
pub async fn rotate_key(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    JsonBody(req): JsonBody<RotateKeyRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.rotate_key(&id, req).await?))
}

/// `POST /keys/{id}/revoke`.
pub async fn revoke_key(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    JsonBody(req): JsonBody<RevokeKeyRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.revoke_key(&id, req).await?))
}
