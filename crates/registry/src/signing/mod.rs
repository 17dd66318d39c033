//! Signing in the registry: signing keys (added, rotated, revoked, each an audit event) and
//! signatures of model versions (client-made Sigstore bundles, verified before they are
//! attached). Verification for a consumer (a trust policy, an environment) is in
//! [`crate::trust`].

pub mod bundle;
pub mod check;
pub mod keys;
pub mod signatures;
pub mod types;
