//! What every handler shares: the backend, the certificate roles and the limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use ms_registry::entity::Role;

use crate::backend::Backend;
use crate::config::Limits;

#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    /// Client certificate subject CN -> role (`--cert-role CN=ROLE`).
    pub cert_roles: Arc<BTreeMap<String, Role>>,
    pub limits: Limits,
}
