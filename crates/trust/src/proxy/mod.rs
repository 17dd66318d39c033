//! The signing proxy: a small HTTP protocol through which a process signs with a key it never
//! holds, its client [`ProxySigner`] (a `Signer`), and its reference server ([`server`], run by
//! `modelspec signer serve`) backed by a PKCS#11 token or a development key file.
//!
//! # Protocol (version 1)
//!
//! Every request carries `Authorization: Bearer <token>`; a missing or other token gets 401
//! (with `WWW-Authenticate: Bearer`) before the body is read. Bodies are JSON
//! (`content-type: application/json`); binary values are standard base64 with padding. Keys
//! are named by their fingerprint, `sha256:<hex>` of the SubjectPublicKeyInfo DER (the
//! `keyId`).
//!
//! `GET /v1/keys` →
//! `200 {"keys": [{"keyId", "algorithm": "ed25519" | "ecdsa-p256-sha256", "publicKey": PEM,
//! "developmentOnly": bool}]}`. `developmentOnly` is true for a key file backend: such a key
//! must not be trusted for `prod`, and the client's `kind()` says so.
//!
//! `POST /v1/sign` with `{"keyId", "message": base64}` (any key: Ed25519 signs the whole
//! message, ECDSA its SHA-256) or `{"keyId", "digest": base64 of 32 bytes}` (ECDSA P-256 only:
//! the SHA-256 of the message, so the message never leaves the client) →
//! `200 {"keyId", "algorithm", "signature": base64}`: 64 bytes for Ed25519, ASN.1 DER for ECDSA.
//!
//! Errors are `{"error": {"code": "MT04xx" | "MT03xx", "message"}}` with 400 (not the
//! protocol's JSON: unknown or missing field, bad base64, a digest not 32 bytes), 401 (bearer
//! token), 404 (unknown `keyId` or path), 405, 413 (body over the server's limit, default
//! 1 MiB), 415 (not JSON), 422 (a digest for an Ed25519 key), 502 (the backend failed to sign).
//! The server never logs or returns the token; the client checks every signature against the
//! key it announced before handing it on.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

pub use client::{CA_FILE_ENV, ProxySigner, TOKEN_ENV, TOKEN_FILE_ENV, open};

/// One key in `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyInfo {
    pub key_id: String,
    pub algorithm: String,
    pub public_key: String,
    pub development_only: bool,
}

/// `GET /v1/keys`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `POST /v1/sign`'s body: exactly one of `message` and `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignRequest {
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `POST /v1/sign`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignResponse {
    pub key_id: String,
    pub algorithm: String,
    pub signature: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
