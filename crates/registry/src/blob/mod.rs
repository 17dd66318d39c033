//! The content-addressed blob store behind artifacts: a local directory or an S3 bucket
//! (through `object_store`), blobs named by the sha256 of their bytes.
//!
//! Layout (relative to the directory or the S3 prefix):
//! - `blobs/sha256/<hh>/<hex>` — a blob, `<hh>` its first two hex digits;
//! - `blobs/sha256/<hh>/<hex>.chunks` — its chunk index (JSON, version 2: the chunk size and
//!   the SHA-256 chaining state of the blob's digest at the start of every chunk, recorded
//!   while the digest is computed, so every byte is hashed once), so that ranged reads are
//!   verified too (how and why: `read.rs`);
//! - `uploads/<id>/…` — an upload in progress: `state.json` (a resumable session's state),
//!   `data` (local: the bytes so far), `tail-<offset>-<len>` and `multipart` (S3), `lock`;
//!   `uploads/<random>.tmp` — a small file being written.
//!
//! What is durable when (what a `kill -9` at any moment leaves):
//! - A blob is visible only once complete and verified: locally its file is written under
//!   `uploads/`, fsynced, its digest (and size) checked, its chunk index written (temp file,
//!   fsync, rename), then it is renamed into `blobs/` and the directory fsynced; on S3 the
//!   index is PUT first, then the blob is one PUT or the completion of a multipart upload.
//!   Either way a crash leaves the old state (no blob; maybe an index without its blob, or an
//!   upload directory) or the new one, never a partial blob.
//! - A resumable session's `state.json` (offset, SHA-256 midstate and those at the chunk
//!   boundaries so far, S3 parts) is replaced atomically, and only after the bytes it counts
//!   are durable (local: the data file fsynced; S3: the part or the tail object stored). A
//!   crash in the middle of a chunk loses only the bytes since the last checkpoint (at most
//!   `part_size`): `status()` reports the stored offset and the client resends from there;
//!   bytes past it are discarded.
//! - Anything left under `uploads/` by a dead writer is invisible to readers; `check()`
//!   reports it once older than `upload_ttl` and `gc_uploads()` removes it (aborting S3
//!   multipart uploads).
//!
//! Reads verify: a full read hashes what it yields and ends in an Integrity error (MG0110)
//! instead of EOF on a mismatch; a ranged read checks every chunk it touches first (from its
//! stored start state to the next one; the last chunk to the digest).

pub mod codes;
pub mod config;
pub mod hash;
pub mod layout;
pub mod read;

mod backend;
mod check;
mod local;
mod s3;
mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::api::{ByteRange, ByteReader};
use crate::digest::Digest;
use crate::entity::{ArtifactUpload, UploadSession};
use crate::error::{ErrorKind, RegistryError, Result};

use backend::Storage;
pub use check::BlobCheck;
use codes::*;
pub use config::{BlobOptions, S3Config, Secret, StoreUrl};
use layout::UploadId;
pub use read::{ChunkIndex, registry_error};
use session::{Limits, SessionState, Sink};

/// A stored (or found) blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub digest: Digest,
    pub size: u64,
    /// False when the blob was in the store already (the upload was a no-op).
    pub created: bool,
}

/// A verified read of a blob.
pub struct BlobRead {
    pub digest: Digest,
    /// The blob's whole size.
    pub size: u64,
    /// The bytes served: `start..end`, end exclusive.
    pub start: u64,
    pub end: u64,
    /// Yields an I/O error wrapping an Integrity [`RegistryError`] (see [`registry_error`])
    /// instead of EOF or of unverified bytes when the stored blob is damaged.
    pub body: ByteReader,
}

/// The content-addressed blob store.
pub struct BlobStore {
    url: StoreUrl,
    opts: BlobOptions,
    storage: Arc<dyn Storage>,
    /// Sessions being appended to or finished by this process.
    busy: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("url", &self.url.to_string())
            .field("options", &self.opts)
            .finish()
    }
}

/// Releases a session's in-process lock.
struct BusyGuard {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl BlobStore {
    /// Opens `file:///dir`, a directory path or `s3://bucket/prefix`, with S3 settings from
    /// the AWS environment variables and the default options.
    pub async fn open(url: &str) -> Result<BlobStore> {
        BlobStore::open_with(url, S3Config::from_env(), BlobOptions::default()).await
    }

    /// Opens with explicit S3 settings (ignored for local stores) and options.
    pub async fn open_with(url: &str, s3: S3Config, opts: BlobOptions) -> Result<BlobStore> {
        let url = StoreUrl::parse(url)?;
        let mut opts = opts;
        let storage: Arc<dyn Storage> = match &url {
            StoreUrl::Local(root) => {
                opts.validate(false)?;
                let l = local::Local::new(root.clone(), opts.part_size, opts.buffer_size);
                l.init().await?;
                Arc::new(l)
            }
            StoreUrl::S3 { bucket, prefix } => {
                opts.validate(true)?;
                Arc::new(s3::S3::new(
                    bucket,
                    prefix,
                    &s3,
                    opts.part_size,
                    opts.multipart_threshold,
                )?)
            }
        };
        Ok(BlobStore {
            url,
            opts,
            storage,
            busy: Arc::default(),
        })
    }

    /// Where the store is, for display (never credentials).
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// The options in effect (after adjustments such as the S3 part size).
    pub fn options(&self) -> &BlobOptions {
        &self.opts
    }

    fn limits(&self) -> Limits {
        Limits {
            max_blob_size: self.opts.max_blob_size,
            buffer_size: self.opts.buffer_size,
        }
    }

    fn check_declared(&self, req: &ArtifactUpload) -> Result<()> {
        if let Some(size) = req.size
            && size > self.opts.max_blob_size
        {
            return Err(session::too_large(
                self.opts.max_blob_size,
                &format!("the declared size of {size} bytes"),
            )
            .at("/size"));
        }
        Ok(())
    }

    /// The blob already stored under the declared digest, if any (dedupe before reading).
    async fn existing(&self, req: &ArtifactUpload) -> Result<Option<Stored>> {
        let Some(d) = req.expected_digest else {
            return Ok(None);
        };
        let Some(size) = self.stat(&d).await? else {
            return Ok(None);
        };
        if let Some(declared) = req.size
            && declared != size
        {
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                MG0107,
                format!("{d} is stored with {size} bytes, the upload declares {declared}"),
            )
            .at("/size"));
        }
        Ok(Some(Stored {
            digest: d,
            size,
            created: false,
        }))
    }

    /// Stores `body` in one go: streamed (never whole in memory), hashed as it goes, verified
    /// against `req.expected_digest` and `req.size` when given, visible only once complete.
    /// If the declared digest is stored already, nothing is read and `created` is false.
    pub async fn put(&self, req: &ArtifactUpload, mut body: ByteReader) -> Result<Stored> {
        self.check_declared(req)?;
        if let Some(found) = self.existing(req).await? {
            return Ok(found);
        }
        let id = UploadId::random()?;
        self.storage.create_upload(&id).await?;
        // Held so that a concurrent `gc_uploads` (this or another process) leaves it alone.
        let lock = self.storage.lock_upload(&id).await?;
        let mut state = SessionState::new(id.as_str(), req.clone(), self.opts.chunk_size);
        let result = async {
            let mut sink = self.storage.sink(&id, &mut state, false, lock).await?;
            session::ingest(&mut state, sink.as_mut(), &mut body, &self.limits()).await?;
            self.complete(&id, &mut state, sink).await
        }
        .await;
        if result.is_err() {
            let _ = self.storage.remove_upload(&id, Some(&state)).await;
        }
        result
    }

    /// Checks the received bytes against the declared size and digest; a mismatch ends the
    /// upload (nothing stored). `Ok(Some(..))`: the blob is stored already (the upload is
    /// ended too); `Ok(None)`: to be published.
    async fn verify(&self, id: &UploadId, state: &SessionState) -> Result<Option<Stored>> {
        let digest = state.hash.finish();
        let size = state.offset;
        let mut refusal = None;
        if let Some(declared) = state.request.size
            && declared > size
            && state.is_session()
        {
            // A session finished too early keeps its bytes: the client may send the rest.
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                MG0107,
                format!("the upload has {size} of its declared {declared} bytes"),
            )
            .at("/size")
            .hint(format!(
                "send the rest from offset {size}, then finish again"
            )));
        }
        if let Some(declared) = state.request.size
            && declared != size
        {
            refusal = Some(
                RegistryError::new(
                    ErrorKind::Integrity,
                    MG0107,
                    format!(
                        "{size} bytes arrived, the upload declared {declared}: nothing was stored"
                    ),
                )
                .at("/size")
                .hint("declare the file's real size, or send it whole"),
            );
        } else if let Some(expected) = state.request.expected_digest
            && expected != digest
        {
            refusal = Some(
                RegistryError::new(
                    ErrorKind::Integrity,
                    MG0106,
                    format!("the bytes hash to {digest}, not to the expected {expected}: nothing was stored"),
                )
                .at("/expectedDigest")
                .hint("check that the file is the one the digest was computed from, then upload it again"),
            );
        }
        if let Some(e) = refusal {
            let _ = self.storage.remove_upload(id, Some(state)).await;
            return Err(e);
        }
        if self.stat(&digest).await?.is_some() {
            self.storage.remove_upload(id, Some(state)).await?;
            return Ok(Some(Stored {
                digest,
                size,
                created: false,
            }));
        }
        Ok(None)
    }

    /// Verifies what a session or a put received and publishes it: the chunk index first,
    /// then the blob.
    async fn complete(
        &self,
        id: &UploadId,
        state: &mut SessionState,
        sink: Box<dyn Sink>,
    ) -> Result<Stored> {
        if let Some(found) = self.verify(id, state).await? {
            return Ok(found);
        }
        let digest = state.hash.finish();
        let size = state.offset;
        let index = ChunkIndex::new(digest, size, state.hash.chunk_size, state.hash.midstates());
        self.storage
            .put_small(&layout::chunks_key(&digest), index.to_json())
            .await?;
        sink.publish(state, &digest).await?;
        self.storage.remove_upload(id, Some(state)).await?;
        Ok(Stored {
            digest,
            size,
            created: true,
        })
    }

    /// Starts a resumable upload session (refusing a declared size over the limit).
    pub async fn begin(&self, req: ArtifactUpload) -> Result<UploadSession> {
        self.check_declared(&req)?;
        let id = UploadId::random()?;
        self.storage.create_upload(&id).await?;
        let mut state = SessionState::new(id.as_str(), req, self.opts.chunk_size);
        state.resumable = true;
        self.storage
            .put_small(&layout::state_key(&id), state.to_json())
            .await?;
        Ok(state.session())
    }

    async fn load(&self, id: &UploadId) -> Result<SessionState> {
        let bytes = self
            .storage
            .get_small(&layout::state_key(id))
            .await?
            .ok_or_else(|| local::not_found_session(id.as_str()))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::new(
                ErrorKind::Internal,
                MG0112,
                format!("upload session {}: unreadable state: {e}", id.as_str()),
            )
            .hint("cancel the upload and start again")
        })
    }

    fn hold(&self, id: &UploadId) -> Result<BusyGuard> {
        let mut set = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(id.as_str().to_string()) {
            return Err(local::busy(id.as_str()));
        }
        Ok(BusyGuard {
            set: self.busy.clone(),
            id: id.as_str().to_string(),
        })
    }

    /// The session's durable offset.
    pub async fn status(&self, upload_id: &str) -> Result<UploadSession> {
        let id = UploadId::parse(upload_id)?;
        Ok(self.load(&id).await?.session())
    }

    /// Appends `body` (to its end) at `offset`, which must be the session's offset. Progress
    /// becomes durable every `part_size` bytes and at the end; if the body fails midway, the
    /// session keeps what was made durable (see `status`).
    pub async fn append(
        &self,
        upload_id: &str,
        offset: u64,
        mut body: ByteReader,
    ) -> Result<UploadSession> {
        let id = UploadId::parse(upload_id)?;
        let _held = self.hold(&id)?;
        let lock = self.storage.lock_upload(&id).await?;
        let mut state = self.load(&id).await?;
        if offset != state.offset {
            return Err(RegistryError::new(
                ErrorKind::Conflict,
                MG0104,
                format!(
                    "upload {upload_id}: a chunk at offset {offset}, but the session's offset is {}",
                    state.offset
                ),
            )
            .at("/offset")
            .hint(format!("send the bytes from offset {}", state.offset)));
        }
        let mut sink = self.storage.sink(&id, &mut state, true, lock).await?;
        session::ingest(&mut state, sink.as_mut(), &mut body, &self.limits()).await?;
        Ok(state.session())
    }

    /// Verifies the session's bytes against its declared digest and size and publishes the
    /// blob. Fewer bytes than declared: an error, the session stays (send the rest). A digest
    /// mismatch ends the session with nothing stored. A store failure leaves it to retry.
    pub async fn finish(&self, upload_id: &str) -> Result<Stored> {
        let id = UploadId::parse(upload_id)?;
        let _held = self.hold(&id)?;
        let lock = self.storage.lock_upload(&id).await?;
        let mut state = self.load(&id).await?;
        // Settled before the bytes are touched: a finish retried after a crash that followed
        // the publication finds the blob stored.
        if let Some(found) = self.verify(&id, &state).await? {
            return Ok(found);
        }
        let sink = self.storage.sink(&id, &mut state, true, lock).await?;
        self.complete(&id, &mut state, sink).await
    }

    /// Ends a session without storing anything.
    pub async fn cancel(&self, upload_id: &str) -> Result<()> {
        let id = UploadId::parse(upload_id)?;
        let _held = self.hold(&id)?;
        let _lock = self.storage.lock_upload(&id).await?;
        let state = self.load(&id).await?;
        self.storage.remove_upload(&id, Some(&state)).await
    }

    /// The blob's size, or `None` when it is not stored.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        self.storage.stat(&layout::blob_key(digest)).await
    }

    /// Reads a blob, or a range of it, verified as it streams (see [`BlobRead::body`]).
    pub async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let key = layout::blob_key(digest);
        let size = self.storage.stat(&key).await?.ok_or_else(|| {
            RegistryError::new(
                ErrorKind::NotFound,
                MG0108,
                format!("no blob {digest} in the store"),
            )
            .hint("upload it first (`modelspec artifact push`)")
        })?;
        let (start, end) = resolve(range, size)?;
        let stream = if start == 0 && end == size {
            read::verify_full(self.storage.stream(&key, 0..size), *digest, size)
        } else {
            let bytes = self
                .storage
                .get_small(&layout::chunks_key(digest))
                .await?
                .ok_or_else(|| {
                    RegistryError::new(
                        ErrorKind::Integrity,
                        MG0111,
                        format!("blob {digest} has no chunk index: its ranges cannot be verified"),
                    )
                    .hint("run `modelspec registry check`; uploading the artifact again rewrites the index")
                })?;
            let index = ChunkIndex::parse(&bytes, digest, size)?;
            let storage = self.storage.clone();
            read::verify_ranged(index, start, end, move |r| {
                let (storage, key) = (storage.clone(), key.clone());
                async move { storage.read_range(&key, r).await }
            })
        };
        Ok(BlobRead {
            digest: *digest,
            size,
            start,
            end,
            body: Box::new(read::StreamReader::new(stream)),
        })
    }

    /// Every blob's digest, sorted.
    pub async fn list(&self) -> Result<Vec<Digest>> {
        Ok(self
            .storage
            .list(layout::BLOBS)
            .await?
            .into_iter()
            .filter_map(|e| match layout::parse_blob_key(&e.key) {
                layout::BlobEntry::Blob(d) => Some(d),
                _ => None,
            })
            .collect())
    }
}

/// A requested range against a blob of `size` bytes -> `start..end`, clamped.
fn resolve(range: Option<ByteRange>, size: u64) -> Result<(u64, u64)> {
    let Some(r) = range else {
        return Ok((0, size));
    };
    let end = r.end.unwrap_or(size).min(size);
    let empty_blob_whole = size == 0 && r.start == 0 && r.end.is_none();
    if !empty_blob_whole && (r.start >= size || end <= r.start) {
        let shown = match r.end {
            Some(e) => format!("{}..{e}", r.start),
            None => format!("{}..", r.start),
        };
        return Err(RegistryError::new(
            ErrorKind::RangeNotSatisfiable,
            MG0109,
            format!("range {shown} is outside the blob's {size} bytes"),
        )
        .hint(format!("ask for a range within 0..{size}")));
    }
    Ok((r.start, end))
}
