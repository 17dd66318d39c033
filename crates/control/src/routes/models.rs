//! Model versions: register, show a model or one version, list (search, paginated), history,
//! promote.

use axum::http::StatusCode;
use axum::response::Response;
use ms_registry::entity::{ModelQuery, ModelRegistration, PromoteRequest};

use super::{json, registered};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Ids, JsonBody, QueryOf};

/// `POST /models/register`: 201 with the new version, 200 with the identical one.
pub async fn register(
    Caller(r): Caller,
    JsonBody(req): JsonBody<ModelRegistration>,
) -> Result<Response, ApiError> {
    Ok(registered(&r.register_model(req).await?))
}

/// `GET /models/{id}`.
pub async fn model(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.model(&id).await?))
}

/// `GET /models/{id}/versions/{selector}`: a version number, a pointer or a digest.
pub async fn version(
    Caller(r): Caller,
    Ids((id, selector)): Ids<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &r.model_version(&id, &selector).await?,
    ))
}

/// `GET /models?family=&status=&q=&page_token=&limit=`.
pub async fn list(
    Caller(r): Caller,
    QueryOf(query): QueryOf<ModelQuery>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.list_models(query).await?))
}

/// `GET /models/{id}/history`.
pub async fn history(Caller(r): Caller, Ids(id): Ids<String>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.history(&id).await?))
}

/// `POST /models/{id}/promote`.
pub async fn promote(
    Caller(r): Caller,
    Ids(id): Ids<String>,
    JsonBody(req): JsonBody<PromoteRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &r.promote(&id, req).await?))
}
