//! Signing and trust for the control plane: public keys and their fingerprints, the `Signer`
//! seam (PKCS#11 tokens, a signing proxy over HTTP, development key files: never a private key
//! held by the registry), OMS model signatures, SLSA provenance statements and trust policies.
//! Depends on nothing of ours, so the registry, the log and the CLI can all use it.
//!
//! - OMS model signatures: [`oms`] (hash a model directory, statement, sign, verify, compare)
//!   over [`intoto`] statements in [`dsse`] envelopes in Sigstore [`bundle`]s, byte-compatible
//!   with the `model_signing` tool's key mode;
//! - SLSA provenance: [`provenance`], signed the same way through [`dsse`];
//! - signers: [`signer::open_signer`] (`file:` → [`keyfile`], `pkcs11:` → [`pkcs11`] (RFC 7512),
//!   `http(s)://` → the signing [`proxy`]'s client; `modelspec signer serve` is its server);
//! - trust: [`policy::TrustPolicy`] (keys per environment, the log's key, witnesses).

pub mod bundle;
pub mod codes;
pub mod dsse;
pub mod error;
pub mod intoto;
pub mod key;
pub mod keyfile;
pub mod oms;
pub mod pkcs11;
pub mod policy;
pub mod provenance;
pub mod proxy;
pub mod signer;
pub mod yaml;

pub use bundle::Bundle;
pub use error::{Result, TrustError};
pub use key::{Algorithm, PublicKey};
pub use signer::{Signer, SignerKind};
