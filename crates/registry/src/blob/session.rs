//! An upload in progress, and the loop that streams bytes into it. The persisted
//! [`SessionState`] is the truth about a session: its offset, the SHA-256 state over exactly
//! those bytes with the chaining values recorded at the chunk boundaries so far (the chunk
//! index to be) and (S3) the parts stored. It is written only after
//! the bytes it counts are durable, so a restart resumes from it without re-reading anything.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::api::ByteReader;
use crate::blob::codes::*;
use crate::blob::hash::ChunkedSha256;
use crate::digest::Digest;
use crate::entity::{ArtifactUpload, UploadSession};
use crate::error::{ErrorKind, RegistryError, Result};

/// The state file of a session (`uploads/<id>/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub version: u32,
    pub upload_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub request: ArtifactUpload,
    /// Bytes durably stored.
    pub offset: u64,
    /// The blob digest over the first `offset` bytes, and its chunk-boundary states.
    pub hash: ChunkedSha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Progress>,
    /// True for sessions (`begin`), false for one-shot puts.
    #[serde(default)]
    pub resumable: bool,
}

/// What an S3 session has stored: a multipart upload's parts and the bytes after the last
/// part (fewer than S3's minimum part size) as a small object of their own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Progress {
    /// Where the multipart upload goes: the blob's own key when the digest was declared
    /// (completing it publishes the blob), else a staging key copied into place at the end.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart_id: Option<String>,
    #[serde(default)]
    pub parts: Vec<PartRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<TailRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartRecord {
    pub etag: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TailRecord {
    pub key: String,
    pub len: u64,
}

pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl SessionState {
    pub fn new(upload_id: &str, request: ArtifactUpload, chunk_size: u64) -> SessionState {
        let at = now();
        SessionState {
            version: 2,
            upload_id: upload_id.to_string(),
            created_at: at.clone(),
            updated_at: at,
            request,
            offset: 0,
            hash: ChunkedSha256::new(chunk_size),
            s3: None,
            resumable: false,
        }
    }

    /// Whether this is a resumable session (a one-shot put has no saved state).
    pub fn is_session(&self) -> bool {
        self.resumable
    }

    pub fn session(&self) -> UploadSession {
        UploadSession {
            upload_id: self.upload_id.clone(),
            offset: self.offset,
            request: self.request.clone(),
            created_at: self.created_at.clone(),
        }
    }

    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("session state serializes"))
    }
}

/// Where an upload's bytes go, per backend. A durable sink (a session's) saves the session
/// state itself, each time the bytes a state counts have become durable.
#[async_trait]
pub trait Sink: Send {
    /// Bytes that may still be written before the next [`Sink::checkpoint`].
    fn room(&self) -> u64;
    async fn write(&mut self, buf: Bytes) -> Result<()>;
    /// Called when `room()` is 0, with the state over everything written: starts making those
    /// bytes durable and saves this state once they are. May return before that is done.
    async fn checkpoint(&mut self, state: &SessionState) -> Result<()>;
    /// The end of a chunk: returns once everything written is durable (a session: its state
    /// saved), and records in `state` what the backend stored.
    async fn flush(&mut self, state: &mut SessionState) -> Result<()>;
    /// After a failure: lets checkpoints already started finish (and their states be saved),
    /// so that a resumed session loses as little as possible. Best effort.
    async fn settle(&mut self);
    /// Makes the verified bytes visible as blob `digest` (its chunk index is already written).
    async fn publish(self: Box<Self>, state: &mut SessionState, digest: &Digest) -> Result<()>;
}

/// Limits checked while streaming.
pub struct Limits {
    pub max_blob_size: u64,
    pub buffer_size: usize,
}

pub fn too_large(max: u64, what: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::TooLarge,
        MG0105,
        format!("{what} exceeds the store's maximum blob size of {max} bytes"),
    )
    .hint("split the artifact, or raise the store's maximum blob size")
}

fn size_exceeded(declared: u64) -> RegistryError {
    RegistryError::new(
        ErrorKind::Integrity,
        MG0107,
        format!("more bytes arrived than the declared size of {declared}"),
    )
    .at("/size")
    .hint("declare the file's real size")
}

/// Below this, hashing inline is cheaper than handing the buffer to other threads.
const PARALLEL_HASH_MIN: usize = 256 * 1024;

/// Reads up to `want` bytes (fewer only at the end of the stream), into a buffer that is
/// not zero-filled first (`read_buf` writes into its spare capacity).
async fn read_buffer(reader: &mut ByteReader, want: usize) -> std::io::Result<(Bytes, bool)> {
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        // The capacity is exactly `want`: a read never grows the buffer past it.
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok((buf.freeze(), true));
        }
    }
    Ok((buf.freeze(), false))
}

/// Hashes and writes `bytes`, cut at the sink's checkpoint boundaries so that each saved
/// state's hash covers exactly the bytes made durable.
async fn absorb(state: &mut SessionState, sink: &mut dyn Sink, mut bytes: Bytes) -> Result<()> {
    while !bytes.is_empty() {
        let take = (sink.room().max(1) as usize).min(bytes.len());
        let piece = bytes.split_to(take);
        if piece.len() < PARALLEL_HASH_MIN {
            state.hash.update(&piece);
            sink.write(piece).await?;
        } else {
            // One pass gives the digest and the chunk index; it runs while the bytes are
            // written (and the next buffer read, see `stream_into`).
            let mut hash = std::mem::replace(&mut state.hash, ChunkedSha256::new(64));
            let b = piece.clone();
            let hashed = tokio::task::spawn_blocking(move || {
                hash.update(&b);
                hash
            });
            let (hashed, written) = tokio::join!(hashed, sink.write(piece));
            state.hash = hashed.map_err(join_error)?;
            written?;
        }
        state.offset += take as u64;
        if sink.room() == 0 {
            state.updated_at = now();
            sink.checkpoint(state).await?;
        }
    }
    Ok(())
}

/// Streams `reader` to its end into `sink`, hashing as it goes; the next buffer is read while
/// the previous one is hashed and written. A session's sink saves the state at every
/// checkpoint; bytes after the last one are lost if this fails, and no saved state counts
/// them.
pub async fn ingest(
    state: &mut SessionState,
    sink: &mut dyn Sink,
    reader: &mut ByteReader,
    limits: &Limits,
) -> Result<()> {
    let result = stream_into(state, sink, reader, limits).await;
    if result.is_err() {
        sink.settle().await;
    }
    result
}

async fn stream_into(
    state: &mut SessionState,
    sink: &mut dyn Sink,
    reader: &mut ByteReader,
    limits: &Limits,
) -> Result<()> {
    let declared = state.request.size;
    let mut previous: Option<Bytes> = None;
    loop {
        let (read, absorbed) = tokio::join!(read_buffer(reader, limits.buffer_size), async {
            match previous.take() {
                Some(b) => absorb(state, sink, b).await,
                None => Ok(()),
            }
        });
        absorbed?;
        let (bytes, eof) = read.map_err(|e| {
            // A body that is itself a verified blob read fails with the store's own error.
            if let Some(inner) = crate::blob::read::registry_error(&e) {
                return inner.clone();
            }
            RegistryError::new(
                ErrorKind::Invalid,
                MG0115,
                format!("the upload stream failed after {} bytes: {e}", state.offset),
            )
            .hint("ask the session's status and resume from its offset")
        })?;
        let total = state.offset + bytes.len() as u64;
        if total > limits.max_blob_size {
            return Err(too_large(limits.max_blob_size, "the uploaded stream"));
        }
        if let Some(d) = declared
            && total > d
        {
            return Err(size_exceeded(d));
        }
        if eof {
            absorb(state, sink, bytes).await?;
            state.updated_at = now();
            sink.flush(state).await?;
            return Ok(());
        }
        previous = Some(bytes);
    }
}

pub fn join_error(e: tokio::task::JoinError) -> RegistryError {
    RegistryError::new(
        ErrorKind::Internal,
        MG0112,
        format!("a blob store task failed: {e}"),
    )
}
