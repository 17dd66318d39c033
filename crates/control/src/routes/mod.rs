//! The API's routes, one module per subject, and what runs before every handler (the header
//! size check). [`ROUTES`] lists every route; a test checks it against the router and
//! `/openapi.json`.

mod admin;
mod artifacts;
mod audit;
mod datasets;
mod models;
mod provenance;
mod signing;
mod uploads;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::error::{ApiError, bad_method, no_route};
use crate::state::AppState;

/// Every route: method and path as axum and OpenAPI write them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/whoami"),
    ("POST", "/models/register"),
    ("GET", "/models"),
    ("GET", "/models/{id}"),
    ("GET", "/models/{id}/versions/{selector}"),
    ("GET", "/models/{id}/history"),
    ("POST", "/models/{id}/promote"),
    ("POST", "/artifact/upload"),
    ("POST", "/artifact/uploads"),
    ("GET", "/artifact/uploads/{id}"),
    ("PATCH", "/artifact/uploads/{id}"),
    ("PUT", "/artifact/uploads/{id}"),
    ("GET", "/artifact/{id}"),
    ("GET", "/artifact/{id}/content"),
    ("POST", "/dataset/register"),
    ("GET", "/datasets/{id}"),
    ("GET", "/lineage/{id}"),
    ("GET", "/provenance/{subject}"),
    ("POST", "/provenance/{subject}/signature"),
    ("POST", "/tokens"),
    ("GET", "/tokens"),
    ("DELETE", "/tokens/{id}"),
    ("GET", "/audit"),
    ("GET", "/audit/checkpoint"),
    ("GET", "/audit/tile/{*path}"),
    ("GET", "/audit/events/{seq}"),
    ("GET", "/audit/proof/consistency"),
    ("POST", "/audit/cosignatures"),
    ("POST", "/registry/check"),
    ("POST", "/models/{id}/versions/{selector}/signatures"),
    ("GET", "/models/{id}/versions/{selector}/signatures"),
    ("POST", "/keys"),
    ("GET", "/keys"),
    ("POST", "/keys/{id}/rotate"),
    ("POST", "/keys/{id}/revoke"),
];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/whoami", get(admin::whoami))
        .route("/models/register", post(models::register))
        .route("/models", get(models::list))
        .route("/models/{id}", get(models::model))
        .route("/models/{id}/versions/{selector}", get(models::version))
        .route("/models/{id}/history", get(models::history))
        .route("/models/{id}/promote", post(models::promote))
        .route("/artifact/upload", post(artifacts::upload))
        .route("/artifact/uploads", post(uploads::start))
        .route(
            "/artifact/uploads/{id}",
            get(uploads::status)
                .patch(uploads::chunk)
                .put(uploads::finish),
        )
        .route("/artifact/{id}", get(artifacts::metadata))
        .route("/artifact/{id}/content", get(artifacts::content))
        .route("/dataset/register", post(datasets::register))
        .route("/datasets/{id}", get(datasets::dataset))
        .route("/lineage/{id}", get(datasets::lineage))
        .route("/provenance/{subject}", get(provenance::record))
        .route("/provenance/{subject}/signature", post(provenance::sign))
        .route("/tokens", post(admin::create_token).get(admin::list_tokens))
        .route("/tokens/{id}", axum::routing::delete(admin::revoke_token))
        .route("/audit", get(admin::audit))
        .route("/audit/checkpoint", get(audit::checkpoint))
        .route("/audit/tile/{*path}", get(audit::tile))
        .route("/audit/events/{seq}", get(audit::event))
        .route("/audit/proof/consistency", get(audit::consistency))
        .route("/audit/cosignatures", post(audit::cosignatures))
        .route("/registry/check", post(admin::check))
        .route(
            "/models/{id}/versions/{selector}/signatures",
            post(signing::attach).get(signing::list),
        )
        .route("/keys", post(signing::add_key).get(signing::keys))
        .route("/keys/{id}/rotate", post(signing::rotate_key))
        .route("/keys/{id}/revoke", post(signing::revoke_key))
        .fallback(no_route)
        .method_not_allowed_fallback(bad_method)
        .layer(middleware::from_fn_with_state(state.clone(), header_limits))
        .with_state(state)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// 431 with the error shape for heads above the limits (hyper's own, larger, limit answers
/// without a body).
async fn header_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len();
    if bytes > state.limits.max_header_bytes || headers.len() > state.limits.max_headers {
        return ApiError::headers_too_large(
            state.limits.max_header_bytes,
            state.limits.max_headers,
        )
        .into_response();
    }
    next.run(req).await
}

/// A JSON answer with a status.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// 201 for a new record, 200 for the identical one found.
pub(crate) fn registered<T: Serialize>(r: &ms_registry::api::Registered<T>) -> Response {
    let status = if r.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, r)
}
