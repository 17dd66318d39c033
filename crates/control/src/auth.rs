//! Who calls: `Authorization: Bearer TOKEN` through the backend's token table, else the
//! client certificate's subject CN (when the server requires client certificates) through
//! `--cert-role`. The answer is a registry acting as that principal; `createdBy` of whatever
//! the call makes is that principal's name, never a request field.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use ms_registry::entity::Principal;
use ms_registry::remote::codes;
use ms_registry::{ErrorKind, Registry};

use crate::error::ApiError;
use crate::state::AppState;

/// The verified subject CN of the connection's client certificate (a request extension).
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    pub common_name: Option<String>,
}

/// The principal's name for a certificate subject CN.
pub fn certificate_principal(common_name: &str) -> String {
    format!("CN={common_name}")
}

/// The registry acting as the caller.
pub struct Caller(pub Arc<dyn Registry>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        Ok(Caller(state.backend.registry_for(principal)))
    }
}

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header is not `Bearer TOKEN`")
            })?;
        return Ok(state.backend.authenticate(secret).await?);
    }
    if let Some(cn) = parts
        .extensions
        .get::<PeerCertificate>()
        .and_then(|c| c.common_name.as_deref())
    {
        let role = state.cert_roles.get(cn).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                codes::UNMAPPED_CERTIFICATE,
                format!("the client certificate's subject CN {cn:?} has no role"),
            )
            .hint(format!(
                "start the server with `--cert-role '{cn}=reader'` (or writer, approver, admin), or send a bearer token"
            ))
        })?;
        return Ok(Principal {
            name: certificate_principal(cn),
            role: *role,
        });
    }
    Err(ApiError::unauthenticated("this call needs credentials"))
}
