//! What the server needs from a registry store: who a bearer token is, and a registry acting
//! as a principal. The embedded registry (a database and a blob store) provides both; the
//! server builds one acting registry per request, so the role checks stay in one place (the
//! registry), never in the routes.

use std::sync::Arc;

use async_trait::async_trait;
use ms_registry::Registry;
use ms_registry::entity::Principal;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The principal a bearer token's secret stands for (401 when unknown or revoked).
    async fn authenticate(&self, secret: &str) -> ms_registry::Result<Principal>;
    /// A registry acting as `principal`.
    fn registry_for(&self, principal: Principal) -> Arc<dyn Registry>;
    /// The largest artifact the store takes, if it has a limit: a declared size above it is
    /// refused before a byte of the body is read.
    fn max_artifact_size(&self) -> Option<u64> {
        None
    }
}
