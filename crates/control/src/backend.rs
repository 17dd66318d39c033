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

use ms_registry::embedded::Embedded;
use ms_registry::entity::Role;

/// The embedded registry (a database and a blob store) as the server's backend.
pub struct EmbeddedBackend {
    registry: Embedded,
}

impl EmbeddedBackend {
    /// Opens (creating and migrating) the database at `db` and the blob store at `store`.
    pub async fn open(db: &str, store: &str) -> ms_registry::Result<EmbeddedBackend> {
        // The server itself acts only through per-request views; this principal is never
        // used for a call.
        let nobody = Principal {
            name: "control-plane".into(),
            role: Role::Reader,
        };
        let registry = Embedded::open(db, store, nobody).await?;
        Ok(EmbeddedBackend::new(registry))
    }

    /// Over an embedded registry opened by the caller (explicit S3 settings, limits); the
    /// principal it acts as is never used.
    pub fn new(registry: Embedded) -> EmbeddedBackend {
        EmbeddedBackend { registry }
    }

    /// The registry served (to give its log a key).
    pub fn registry(&self) -> &Embedded {
        &self.registry
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn authenticate(&self, secret: &str) -> ms_registry::Result<Principal> {
        self.registry.authenticate(secret).await
    }

    fn registry_for(&self, principal: Principal) -> Arc<dyn Registry> {
        Arc::new(self.registry.acting_as(principal))
    }

    fn max_artifact_size(&self) -> Option<u64> {
        Some(self.registry.store().options().max_blob_size)
    }
}
