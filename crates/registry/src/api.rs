//! The registry's operations, as one trait. The embedded registry (a database and a blob store
//! used in-process, acting as one principal) and the HTTP client of `modelspec registry serve`
//! implement it; the CLI and the shared test suite only see this trait, so behaviour is the
//! same both ways. Who acts is fixed when the implementation is made (a token, a client
//! certificate, the OS user), never passed per call.

use async_trait::async_trait;

use crate::digest::Digest;
use crate::entity::*;
use crate::error::Result;
use crate::log::{ConsistencyProof, CosignatureReceipt, Cosignatures, EventProof};

/// A byte stream in or out of the store.
pub type ByteReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// A byte range of a blob: `start..end` (end exclusive), `end` `None` meaning to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// An artifact's bytes (verified against the digest as they stream; a mismatch is an
/// [`crate::ErrorKind::Integrity`] error from the reader) and which part of it they are.
pub struct Content {
    pub artifact: Artifact,
    /// The range served, `start..end`, end exclusive, clamped to the size.
    pub start: u64,
    pub end: u64,
    pub body: ByteReader,
}

/// Whether a registration made something new or found the identical record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered<T> {
    pub created: bool,
    #[serde(flatten)]
    pub record: T,
}

#[async_trait]
pub trait Registry: Send + Sync {
    /// The principal this registry acts as.
    async fn whoami(&self) -> Result<Principal>;

    /// Stores the bytes of `body` (streamed, never whole in memory) as an artifact. Storing
    /// bytes that exist already is not an error: the existing artifact is returned.
    async fn upload_artifact(
        &self,
        req: ArtifactUpload,
        body: ByteReader,
    ) -> Result<Registered<Artifact>>;
    async fn start_upload(&self, req: ArtifactUpload) -> Result<UploadSession>;
    async fn upload_status(&self, upload_id: &str) -> Result<UploadSession>;
    /// Appends `body` at `offset`, which must equal the session's offset (else Conflict with
    /// the current offset in the message).
    async fn upload_chunk(
        &self,
        upload_id: &str,
        offset: u64,
        body: ByteReader,
    ) -> Result<UploadSession>;
    /// Verifies the digest (and size) and makes the blob visible.
    async fn finish_upload(&self, upload_id: &str) -> Result<Registered<Artifact>>;
    async fn artifact(&self, id: &Digest) -> Result<Artifact>;
    async fn artifact_content(&self, id: &Digest, range: Option<ByteRange>) -> Result<Content>;

    async fn register_dataset(&self, req: DatasetRegistration) -> Result<Registered<Dataset>>;
    /// A dataset by `datasetId`.
    async fn dataset(&self, id: &Digest) -> Result<Dataset>;

    async fn register_model(&self, req: ModelRegistration) -> Result<Registered<ModelVersion>>;
    async fn model(&self, model_id: &str) -> Result<Model>;
    /// `selector`: a version number, a pointer name (`prod`, an alias) or the version's digest.
    async fn model_version(&self, model_id: &str, selector: &str) -> Result<ModelVersion>;
    async fn list_models(&self, query: ModelQuery) -> Result<Page<ModelVersion>>;
    async fn history(&self, model_id: &str) -> Result<Vec<HistoryEntry>>;
    async fn promote(&self, model_id: &str, req: PromoteRequest) -> Result<PointerMove>;

    /// The provenance record of `subject`: `model:NAME@SELECTOR` (or `NAME@SELECTOR`) or
    /// `dataset:sha256:…` (or the bare dataset id). Its `subject` is the normalized id
    /// (`model:NAME@N`).
    async fn provenance(&self, subject: &str) -> Result<ProvenanceRecord>;
    /// Attaches a signature made client-side to `subject`'s record. The registry checks that
    /// the bundle's payload is the stored statement byte for byte, that its key is registered
    /// and not revoked, and that the signature verifies; a new signature replaces the old one
    /// (both are in the audit log, action `provenance.sign`).
    async fn sign_provenance(
        &self,
        subject: &str,
        signature: ProvenanceSignature,
    ) -> Result<ProvenanceRecord>;

    /// `id`: `name@version` (or `name`, its latest version) for a model, `sha256:…` for a
    /// dataset. `depth` at most 32.
    async fn lineage(&self, id: &str, direction: Direction, depth: u32) -> Result<LineageGraph>;

    async fn create_token(&self, req: TokenRequest) -> Result<CreatedToken>;
    async fn revoke_token(&self, token_id: &str) -> Result<TokenInfo>;
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Audit events with `seq > after`, oldest first, at most `limit` (<= 1000).
    async fn audit_events(&self, after: u64, limit: u32) -> Result<Vec<AuditEvent>>;

    /// fsck: every blob re-hashed, every reference resolves, nothing half-written.
    async fn check(&self) -> Result<CheckReport>;

    /// Attaches a client-made signature bundle to a version (writer role) after checking it:
    /// its key is registered and active, it verifies, and its manifest lists exactly the
    /// version's artifacts. The same envelope again finds the attached record.
    async fn sign_version(
        &self,
        model_id: &str,
        selector: &str,
        req: SignatureRequest,
    ) -> Result<Registered<ManifestSignature>>;
    /// A version's signatures, newest first.
    async fn signatures(&self, model_id: &str, selector: &str) -> Result<Vec<ManifestSignature>>;
    /// Registers a public key (admin role; audit event `key.add`).
    async fn add_key(&self, req: KeyRequest) -> Result<Registered<SigningKey>>;
    /// Replaces an active key by a new one, retiring the old (admin; `key.rotate`).
    async fn rotate_key(&self, key_id: &str, req: RotateKeyRequest) -> Result<KeyRotation>;
    /// Revokes a key: none of its signatures is valid any more (admin; `key.revoke`).
    async fn revoke_key(&self, key_id: &str, req: RevokeKeyRequest) -> Result<SigningKey>;
    /// Every registered key, oldest first.
    async fn keys(&self) -> Result<Vec<SigningKey>>;

    /// The audit log's newest signed checkpoint (a C2SP signed note) with the cosignature lines
    /// of the witnesses that signed it. When the log grew since the last checkpoint, a new one
    /// is signed first (proved consistent with the last), so it covers every event committed
    /// before the call.
    async fn audit_checkpoint(&self) -> Result<String>;
    /// A tile of the audit log (C2SP tlog-tiles): `tile/<L>/<N>[.p/<W>]` (hashes) or
    /// `tile/entries/<N>[.p/<W>]` (events, 16-bit length-prefixed canonical JSON).
    async fn audit_tile(&self, path: &str) -> Result<Vec<u8>>;
    /// Event `seq` with its inclusion proof in the newest signed checkpoint.
    async fn audit_event(&self, seq: u64) -> Result<EventProof>;
    /// A consistency proof from the tree of `from` events to the tree of `to`.
    async fn audit_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof>;
    /// Keeps witness cosignatures of a checkpoint the log signed (only from the witnesses the
    /// log was configured with, only when they verify).
    async fn add_cosignatures(&self, req: Cosignatures) -> Result<CosignatureReceipt>;
}
