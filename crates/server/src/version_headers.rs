//! Which registry version this server runs, on every response: `x-modelspec-model-version`,
//! `x-modelspec-manifest-digest` and `x-modelspec-signer`. The values are plain configuration
//! (`modelspec serve registry://…` fills them after resolving and verifying the version); the
//! server knows nothing of the registry and only checks that they are valid header values.
//! One middleware, outermost, so that errors, refusals of the guard and streamed (SSE)
//! answers carry them too; the answers the accept loop writes itself (over the connection
//! limit, malformed HTTP) get them from [`crate::connections`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::ServerError;
use crate::state::AppState;

/// `MODEL@VERSION` of the registry version served.
pub const MODEL_VERSION: &str = "x-modelspec-model-version";
/// `sha256:…` of the version's manifest, as the registry and its signature name it.
pub const MANIFEST_DIGEST: &str = "x-modelspec-manifest-digest";
/// Who signed the manifest (the trust policy's key name and the key's fingerprint), or
/// `none` when the version was not verified.
pub const SIGNER: &str = "x-modelspec-signer";

/// The three values, as the caller computed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHeaders {
    pub model_version: String,
    pub manifest_digest: String,
    pub signer: String,
}

impl VersionHeaders {
    /// The (name, value) pairs, each value checked: visible ASCII and spaces only, at most
    /// 1024 bytes (a header value carries no line breaks or control characters).
    pub fn pairs(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ServerError> {
        [
            (MODEL_VERSION, &self.model_version),
            (MANIFEST_DIGEST, &self.manifest_digest),
            (SIGNER, &self.signer),
        ]
        .into_iter()
        .map(|(name, value)| {
            let ok = !value.is_empty()
                && value.len() <= 1024
                && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
            let header = HeaderValue::from_str(value).ok().filter(|_| ok);
            match header {
                Some(v) => Ok((HeaderName::from_static(name), v)),
                None => Err(ServerError::Config(format!(
                    "the {name} header value {value:?} must be 1 to 1024 visible ASCII characters"
                ))),
            }
        })
        .collect()
    }
}

/// Adds the configured headers to every response (nothing when none are configured).
pub async fn add(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    for (name, value) in &state.version_headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        let good = VersionHeaders {
            model_version: "tiny@2".into(),
            manifest_digest: format!("sha256:{}", "ab".repeat(32)),
            signer: "release (sha256:00ff)".into(),
        };
        assert_eq!(good.pairs().unwrap().len(), 3);
        for bad in ["", "a\nb", "é", "x\u{7f}"] {
            let h = VersionHeaders {
                signer: bad.into(),
                ..good.clone()
            };
            let e = h.pairs().unwrap_err().to_string();
            assert!(e.contains(SIGNER), "{e}");
        }
    }
}
