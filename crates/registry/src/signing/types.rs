//! The records of signing: public keys the registry knows (added, rotated, revoked), the
//! signatures attached to model versions, and the requests that make them. camelCase on the
//! wire like every record of `entity`, which re-exports them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a signing key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signatures by it are attached and trusted.
    Active,
    /// Replaced by a rotation: it signs nothing new, and the signatures attached before the
    /// rotation stay valid.
    Retired,
    /// Revoked (compromised, or withdrawn): no signature by it is valid, old or new.
    Revoked,
}

/// A public key the registry knows. `keyId` is its fingerprint: `sha256:` of the
/// SubjectPublicKeyInfo DER (what trust policies name keys by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub key_id: String,
    pub name: String,
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// PEM `PUBLIC KEY`.
    pub public_key: String,
    /// The environments it is meant to sign for (`prod`, `staging`, …); the trust policy a
    /// verifier holds has the last word.
    pub environments: Vec<String>,
    pub status: KeyStatus,
    pub added_at: String,
    pub added_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
    /// For a retired key: the key that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The audit event that added it.
    pub audit_seq: u64,
}

/// A request to register a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRequest {
    /// A name for people: 1 to 128 letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    /// PEM `PUBLIC KEY` (Ed25519 or ECDSA P-256).
    pub public_key: String,
    /// `prod`, `staging`, or other names of `[a-z][a-z0-9-]{0,62}`; at least one.
    pub environments: Vec<String>,
}

/// A request to replace a key by a new one: the old one is retired in the same event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// PEM `PUBLIC KEY` of the new key.
    pub public_key: String,
    /// Defaults to the old key's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Defaults to the old key's environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// A request to revoke a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeKeyRequest {
    /// Why (kept in the key's record and the audit log), 1 to 4096 bytes.
    pub reason: String,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotation {
    pub retired: SigningKey,
    pub added: SigningKey,
    pub audit_seq: u64,
}

/// A signature to attach: a Sigstore bundle (v0.3 JSON) made by the client, whose DSSE
/// envelope carries the OMS manifest of the version's artifacts. The registry never signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureRequest {
    pub bundle: Value,
    /// The signing key's id, when the bundle's key hint does not name a registered key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// ManifestSignature: a verified signature of a version's OMS manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSignature {
    pub model_id: String,
    pub version: u64,
    /// `sha256:` of the DSSE envelope's JSON as the bundle carries it.
    pub envelope_digest: String,
    /// The signing key's name.
    pub signer_id: String,
    pub key_id: String,
    pub algorithm: String,
    /// When the registry verified and attached it.
    pub signed_at: String,
    pub bundle: Value,
    pub audit_seq: u64,
}

/// One file of a version as its OMS manifest lists it: the artifact's registered name and the
/// sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionFile {
    pub name: String,
    pub sha256: crate::digest::Digest,
}
