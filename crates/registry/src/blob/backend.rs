//! What the store needs from where bytes live (a directory or an S3 bucket). Keys are
//! relative to the store's root and always built by `layout`, never taken from a request.

use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::blob::codes::MG0112;
use crate::blob::layout::UploadId;
use crate::blob::session::{SessionState, Sink};
use crate::error::{ErrorKind, RegistryError, Result};

pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A stored object or file, as listed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// A session's cross-process lock (local stores: its data file, locked with `flock`; every
/// task writing to the file holds a handle, so the lock outlives a cancelled request until
/// its last write or fsync is over).
pub type SessionLock = Option<std::fs::File>;

#[async_trait]
pub trait Storage: Send + Sync {
    /// A small object (state, chunk index), `None` if absent.
    async fn get_small(&self, key: &str) -> Result<Option<Bytes>>;
    /// Writes a small object atomically (all or nothing visible) and durably.
    async fn put_small(&self, key: &str, data: Bytes) -> Result<()>;
    /// Deletes; absent is fine.
    async fn delete(&self, key: &str) -> Result<()>;
    async fn stat(&self, key: &str) -> Result<Option<u64>>;
    async fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;
    fn stream(&self, key: &str, range: Range<u64>) -> ByteStream;
    /// Everything under `dir` (recursively), sorted by key.
    async fn list(&self, dir: &str) -> Result<Vec<Entry>>;
    /// Prepares a new session's storage (before its state is first saved).
    async fn create_upload(&self, id: &UploadId) -> Result<()>;
    /// Takes the session's lock (another process appending makes this fail with MG0113).
    async fn lock_upload(&self, id: &UploadId) -> Result<SessionLock>;
    /// Opens the session's byte sink positioned at `state.offset` (discarding bytes of an
    /// interrupted chunk). `durable`: make progress durable at each checkpoint (sessions) or
    /// only at the end (one-shot puts).
    async fn sink(
        &self,
        id: &UploadId,
        state: &mut SessionState,
        durable: bool,
        lock: SessionLock,
    ) -> Result<Box<dyn Sink>>;
    /// Removes everything of the session (aborting an S3 multipart upload).
    async fn remove_upload(&self, id: &UploadId, state: Option<&SessionState>) -> Result<()>;
}

/// A storage failure as MG0112, naming the operation and the key (never credentials).
pub fn unavailable(op: &str, key: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(
        ErrorKind::Unavailable,
        MG0112,
        format!("blob store: {op} {key}: {e}"),
    )
}
