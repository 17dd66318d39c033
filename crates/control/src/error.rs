//! The one error shape on the wire: `{"error": RegistryError}` with the status of its kind.
//! The registry's own errors pass through unchanged (so a remote client rebuilds the same
//! value); what the HTTP layer refuses by itself (a malformed body, a bad query or path, a
//! missing token, an unknown route) gets an `MG05xx` code, a pointer when there is a place and
//! a hint. axum's plain-text rejections never reach a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ms_registry::remote::codes;
use ms_registry::{ErrorKind, RegistryError};

/// A registry error on its way out, with the status to answer (its kind's, unless the HTTP
/// layer has a more precise one: 405, 408, 431).
#[derive(Debug)]
pub struct ApiError {
    pub error: RegistryError,
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &str, message: impl Into<String>) -> ApiError {
        RegistryError::new(kind, code, message).into()
    }

    pub fn at(mut self, pointer: impl Into<String>) -> ApiError {
        self.error.pointer = Some(pointer.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> ApiError {
        self.error.hint = Some(hint.into());
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unauthenticated, codes::NO_CREDENTIALS, message).hint(
            "send `Authorization: Bearer TOKEN` with a token from `modelspec registry token create`",
        )
    }

    pub fn bad_path(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, codes::BAD_PATH, message)
    }

    pub fn bad_query(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, codes::BAD_QUERY, message)
    }

    pub fn bad_range(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, codes::BAD_RANGE, message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::TooLarge, codes::BODY_TOO_LARGE, message)
    }

    pub fn body_timeout(after: std::time::Duration) -> ApiError {
        ApiError::new(
            ErrorKind::Invalid,
            codes::BODY_TIMEOUT,
            format!(
                "no byte of the request body arrived for {} s",
                after.as_secs()
            ),
        )
        .with_status(StatusCode::REQUEST_TIMEOUT)
    }

    pub fn headers_too_large(limit_bytes: usize, limit_count: usize) -> ApiError {
        ApiError::new(
            ErrorKind::TooLarge,
            codes::HEADERS_TOO_LARGE,
            format!(
                "the request headers are larger than {limit_bytes} bytes or more than {limit_count} headers"
            ),
        )
        .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    }

    /// The status line of this error.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        ApiError {
            error,
            status: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.error });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"modelspec registry\""),
            );
        }
        response
    }
}

/// The answer for a path no route has.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        codes::NO_ROUTE,
        format!("no route {}", uri.path()),
    )
    .hint("GET /openapi.json lists every route")
}

/// The answer for a route asked with another method.
pub async fn bad_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::Invalid,
        codes::BAD_METHOD,
        format!("{} is not allowed on {}", method, uri.path()),
    )
    .hint("GET /openapi.json lists the methods of every route")
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_kind_unless_overridden() {
        let e = ApiError::new(ErrorKind::Conflict, "MG0001", "x");
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(
            ApiError::headers_too_large(1, 1).status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
