//! The verifiable audit log (C2SP tlog-tiles, tlog-checkpoint, signed-note, tlog-cosignature):
//! every audit event is a leaf of an RFC 6962 Merkle tree whose stored hashes are written in the
//! event's own transaction; checkpoints are signed notes made by the log key through an
//! `ms_trust::Signer`, each proved consistent with the previous one before it is signed, so the
//! log never signs two inconsistent trees; tiles, inclusion and consistency proofs are served
//! from the database, and witnesses' cosignatures are kept beside the checkpoint they sign.
//!
//! Modules: [`entry`] (the bytes of a leaf), [`tree`] (stored hashes in `audit_hashes`),
//! [`checkpoint`] (signing, cosignatures), [`key`] (where the log key comes from), [`tiles`]
//! (hash and entries tiles, proofs), [`source`] (the log as a verifier reads it),
//! [`witness_client`] (getting a checkpoint cosigned), [`codes`] (`MG10xx`).

pub mod checkpoint;
pub mod codes;
pub mod entry;
pub mod key;
pub mod source;
pub mod tiles;
pub mod tree;
pub mod witness_client;

use serde::{Deserialize, Serialize};

use crate::entity::AuditEvent;

pub use checkpoint::LogConfig;

/// An event with the proof that it is in the tree of a signed checkpoint
/// (`GET /audit/events/{seq}`): `leaf_hash(entry)` at `seq - 1`, checked with the proof
/// against the checkpoint's root (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProof {
    pub event: AuditEvent,
    /// The entry bytes the tree hashed (the event's canonical JSON), as a string.
    pub entry: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Base64 hashes, from the leaf up.
    pub proof: Vec<String>,
    /// The signed checkpoint (a C2SP signed note) of `tree_size`.
    pub checkpoint: String,
}

/// A consistency proof between two tree sizes (`GET /audit/proof/consistency`), RFC 9162
/// §2.1.4: the tree of `to` entries extends the tree of `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Base64 hashes.
    pub proof: Vec<String>,
}

/// Witness cosignatures of a checkpoint the log signed (`POST /audit/cosignatures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cosignatures {
    /// The checkpoint as the witness received it (its body is what the witness signed).
    pub checkpoint: String,
    /// Signature lines (`— <name> <base64>`) as a witness's add-checkpoint answer gives them.
    pub signatures: Vec<String>,
}

/// What the log kept of a [`Cosignatures`] submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignatureReceipt {
    pub size: u64,
    /// Names of the witnesses whose cosignatures were verified and kept.
    pub witnesses: Vec<String>,
}
