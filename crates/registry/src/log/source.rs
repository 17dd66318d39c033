//! The log as a verifier reads it: ms-tlog's `TileSource` over any [`Registry`] (the embedded
//! one reads its database; the remote one GETs `/audit/checkpoint` and `/audit/tile/…`). The
//! verifier is synchronous; it runs on a blocking thread and each read is driven on the
//! runtime through its handle.

use std::sync::Arc;

use ms_tlog::TlogError;
use ms_tlog::source::TileSource;
use ms_trust::codes::MT0614;
use tokio::runtime::Handle;

use crate::api::Registry;

/// A [`TileSource`] over a registry. Call its methods from outside the runtime's own threads
/// (e.g. in `tokio::task::spawn_blocking`).
pub struct RegistrySource {
    registry: Arc<dyn Registry>,
    handle: Handle,
}

impl RegistrySource {
    pub fn new(registry: Arc<dyn Registry>, handle: Handle) -> RegistrySource {
        RegistrySource { registry, handle }
    }
}

fn fetch_err(what: &str, e: crate::RegistryError) -> TlogError {
    TlogError::new(
        MT0614,
        format!("cannot fetch {what}: {}: {}", e.code, e.message),
    )
}

impl TileSource for RegistrySource {
    fn checkpoint(&self) -> ms_tlog::Result<String> {
        self.handle
            .block_on(self.registry.audit_checkpoint())
            .map_err(|e| fetch_err("the checkpoint", e))
    }

    fn tile(&self, path: &str) -> ms_tlog::Result<Vec<u8>> {
        self.handle
            .block_on(self.registry.audit_tile(path))
            .map_err(|e| fetch_err(path, e))
    }
}
