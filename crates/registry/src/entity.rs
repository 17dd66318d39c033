//! The registry's records, as the API and the CLI's `--json` show them (camelCase field names,
//! as the design's data model spells them). They are also the request bodies of the HTTP API.
//! Timestamps are RFC 3339 UTC strings with milliseconds (`2026-12-06T23:10:00.000Z`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;

pub use crate::signing::types::*;

/// Who acts: the authenticated principal of a call, never a field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// A token's name, a client certificate's subject, or `os:<user>` for the embedded registry.
    pub name: String,
    pub role: Role,
}

/// Roles, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Reader,
    /// Uploads artifacts, registers datasets and model versions.
    Writer,
    /// Moves environment pointers (promotion).
    Approver,
    /// Manages tokens; runs `registry check` remotely.
    Admin,
}

/// A version's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Staging,
    Prod,
    Deprecated,
}

/// A blob in the content-addressed store, with what was said about it at upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `sha256:` of the bytes.
    pub artifact_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub name: String,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
    /// The provenance records of the model versions made of this artifact (it is one of their
    /// statements' subjects), oldest first, at most 100. `provenance` above is what the
    /// uploader said; these are what the registry recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provenance_records: Vec<ProvenanceRecord>,
}

/// The provenance of a lineage node (`model:NAME@VERSION`, `dataset:sha256:…`): an in-toto
/// Statement v1 with an SLSA Provenance v1 predicate, written by the registry in the
/// registration's transaction, and the Sigstore bundle that signs it once someone has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceRecord {
    pub subject: String,
    /// `sha256:` of `statement`'s bytes; also in the registration's audit event
    /// (`details.provenance`).
    pub statement_digest: Digest,
    /// The statement's exact bytes (canonical JSON): what a signature covers.
    pub statement: String,
    /// The Sigstore bundle (DSSE envelope of `statement`), once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Value>,
    /// The signing key's id (`sha256:` fingerprint of its SPKI DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// The audit event of the registration (the statement's `invocationId`).
    pub audit_seq: u64,
}

/// A signature for a provenance record, made client-side (the registry holds no key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvenanceSignature {
    /// A Sigstore bundle v0.3 whose DSSE envelope carries the record's statement.
    pub bundle: Value,
}

/// What an uploader says about the bytes it sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactUpload {
    /// A file name (no directories), e.g. `gemma-3-270m-q4_k_m.gguf`.
    pub name: String,
    /// Defaults from the name (`application/x-gguf`, …) or `application/octet-stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// When given, the upload fails unless the bytes hash to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_digest: Option<Digest>,
    /// When given, the upload fails unless exactly this many bytes arrive; checked against the
    /// size limit before any byte is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
}

/// A resumable upload in progress (OCI-distribution style: start, send chunks at an offset,
/// finish). Survives a restart of either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    pub upload_id: String,
    /// Bytes received and durably stored so far: the next chunk starts here.
    pub offset: u64,
    pub request: ArtifactUpload,
    pub created_at: String,
}

/// One file of a dataset's manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetFile {
    /// Relative, `/`-separated, no `.` or `..` components.
    pub path: String,
    pub sha256: Digest,
    pub size: u64,
}

/// A step that made the dataset from its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformation {
    /// Where the code is, e.g. `git+https://…/prep.py@<commit>`.
    pub code_ref: String,
    /// `sha256:` of that code.
    pub checksum: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a client sends to register a dataset: the manifest it computed from the files (the
/// registry recomputes `checksum` from it) and what is known about the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetRegistration {
    pub name: String,
    pub files: Vec<DatasetFile>,
    /// An SPDX license id or expression.
    pub license: String,
    #[serde(default)]
    pub pii_flags: Vec<String>,
    /// URIs the data came from, or `sha256:` ids of registered datasets.
    #[serde(default)]
    pub source_refs: Vec<String>,
    #[serde(default)]
    pub transformations: Vec<Transformation>,
}

/// DatasetLineage: a registered dataset. Immutable; `datasetId` is the digest of the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub dataset_id: Digest,
    pub name: String,
    /// `sha256:` of the sorted manifest (one `<sha256 hex>  <size>  <path>\n` line per file).
    pub checksum: Digest,
    pub license: String,
    pub pii_flags: Vec<String>,
    pub source_refs: Vec<String>,
    pub transformations: Vec<Transformation>,
    pub file_count: u64,
    pub total_size: u64,
    pub created_at: String,
    pub created_by: String,
    /// The manifest; left out of listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<DatasetFile>>,
}

/// Where a version came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lineage {
    /// `datasetId`s of registered datasets.
    #[serde(default)]
    pub dataset_refs: Vec<Digest>,
    /// Versions this one was derived from, as `name@version`.
    #[serde(default)]
    pub parent_models: Vec<String>,
}

fn metrics_with_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    let raw: BTreeMap<String, Option<f64>> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// What a client sends to register a model version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelRegistration {
    /// The ModelSpec document's text (YAML or JSON). Its `metadata.name` is the model id, its
    /// `identity.model.family` the family; every artifact digest it declares must be in the
    /// store.
    pub spec: String,
    /// The file name the spec came from, for error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_file: Option<String>,
    /// Artifacts beyond those the spec declares (must be in the store).
    #[serde(default)]
    pub artifact_ids: Vec<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ref: Option<String>,
    /// JSON has no NaN or infinity: serde_json writes them as `null`, read back here as NaN so
    /// that the registry's own rule (metrics are finite) refuses them with its code, the same
    /// over HTTP as embedded.
    #[serde(default, deserialize_with = "metrics_with_null")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub lineage: Lineage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
}

/// ModelRegistryEntry: one immutable version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersion {
    pub model_id: String,
    /// 1, 2, 3… per model, assigned at registration.
    pub version: u64,
    /// `sha256:` of the version's manifest (spec digest, artifacts, lineage, codeRef, metrics,
    /// provenance): its content identity. Registering the same manifest again returns this
    /// version instead of making a new one.
    pub digest: Digest,
    pub family: String,
    /// The spec's own `metadata.version`, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ref: Option<String>,
    pub artifact_ids: Vec<Digest>,
    pub metrics: BTreeMap<String, f64>,
    pub created_at: String,
    pub created_by: String,
    pub status: Status,
    /// Pointers (environments and aliases) at this version now.
    pub pointers: Vec<String>,
    /// The newest attached signature's key name (`signatures` lists them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_id: Option<String>,
    /// The newest attached signature's envelope digest (`sha256:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub lineage: Lineage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
    /// `sha256:` of the spec text as registered.
    pub spec_digest: Digest,
    /// The spec text; left out of listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// A model: its versions and where its pointers are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub model_id: String,
    pub family: String,
    pub latest_version: u64,
    /// Pointer name (`staging`, `prod`, or an alias) -> version.
    pub pointers: BTreeMap<String, u64>,
    /// The newest 100 versions, newest first, without spec texts (`list_models` pages
    /// through all of them).
    pub versions: Vec<ModelVersion>,
}

/// Search over versions; every field optional. `q` matches model ids and families
/// (substring, case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ModelQuery {
    pub family: Option<String>,
    pub status: Option<Status>,
    pub q: Option<String>,
    /// Opaque, from the previous page's `nextPageToken`.
    pub page_token: Option<String>,
    /// At most 1000; default 100.
    pub limit: Option<u32>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A request to move a pointer. Gates that decide whether it may move come later (issue 18);
/// here the approver role is required and every move is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteRequest {
    pub version: u64,
    /// `staging`, `prod`, or an alias (`[a-z][a-z0-9-]{0,62}`).
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One kept move of a pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointerMove {
    pub model_id: String,
    pub pointer: String,
    /// `None` when the pointer did not exist before.
    pub from_version: Option<u64>,
    pub to_version: u64,
    pub moved_at: String,
    pub moved_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The audit event that recorded the move.
    pub audit_seq: u64,
}

/// A model's history: registrations and pointer moves, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum HistoryEntry {
    Registered {
        version: u64,
        digest: Digest,
        at: String,
        by: String,
    },
    Moved(PointerMove),
}

/// Which way a lineage query walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From a model to its parents and datasets, from a dataset to its sources.
    Up,
    /// From a dataset or a model to everything built on it.
    Down,
}

/// A node of the lineage graph. `id` is `model:<name>@<version>`, `dataset:<sha256:…>` or
/// `source:<uri>` (an external source a dataset names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageNode {
    pub id: String,
    pub kind: String,
    /// A model's id or a dataset's name.
    pub label: String,
    /// Hops from the start.
    pub depth: u32,
}

/// An edge: `from` was built from `to` (child -> parent), whatever the query's direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageEdge {
    pub from: String,
    pub to: String,
    /// `trainedOn`, `derivedFrom`, `sourcedFrom`.
    pub relation: String,
}

/// The answer to a lineage query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageGraph {
    pub root: String,
    pub direction: Direction,
    pub depth: u32,
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
    /// True when nodes exist beyond `depth`.
    pub truncated: bool,
}

/// A bearer token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A request for a new token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
}

/// A new token: the secret is shown this once and stored only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

/// AuditEvent: one change, written in the same transaction as the change. `seq` is gapless
/// from 1 so that the next issue can chain events into a verifiable log; `digest` is the
/// sha256 of the event's canonical JSON (every field but `digest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub actor_role: Role,
    /// e.g. `artifact.upload`, `dataset.register`, `model.register`, `model.promote`,
    /// `token.create`, `token.revoke`, `key.add`, `key.rotate`, `key.revoke`, `model.sign`.
    pub action: String,
    /// What was acted on, e.g. `model:gemma3-270m-chat@3`.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
    pub digest: Digest,
}

/// One problem `registry check` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckProblem {
    /// An `MG` code.
    pub code: String,
    /// What is wrong, e.g. `blob:sha256:…`, `model:x@3`.
    pub subject: String,
    pub message: String,
}

/// What `registry check` did and found; `problems` empty means healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub blobs_checked: u64,
    pub bytes_hashed: u64,
    pub rows_checked: u64,
    pub problems: Vec<CheckProblem>,
}
