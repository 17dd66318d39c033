//! The S3 backend, through `object_store` (no hand-written S3). A blob becomes visible by a
//! single PUT or by completing a multipart upload, both atomic on S3; parts are stored with
//! the low-level [`MultipartStore`] calls so that a session can continue in another process
//! from the part list in its state.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use crate::blob::backend::{ByteStream, Entry, SessionLock, Storage, unavailable};
use crate::blob::config::{S3_MIN_PART, S3Config};
use crate::blob::layout::{self, UploadId};
use crate::blob::session::{PartRecord, S3Progress, SessionState, Sink, TailRecord};
use crate::digest::Digest;
use crate::error::{ErrorKind, RegistryError, Result};

/// The object path of a store key (`blobs/…`, `uploads/…`) under the store's prefix.
fn under_prefix(prefix: &str, key: &str) -> Path {
    if prefix.is_empty() {
        Path::from(key)
    } else {
        Path::from(format!("{prefix}/{key}"))
    }
}

/// The store key of an object path: [`under_prefix`] undone.
fn key_below_prefix(prefix: &str, p: &Path) -> String {
    let s = p.as_ref();
    if prefix.is_empty() {
        s.to_string()
    } else {
        s.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(s)
            .to_string()
    }
}

pub struct S3 {
    store: Arc<AmazonS3>,
    prefix: String,
    part_size: u64,
    first_part: u64,
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl S3 {
    pub fn new(
        bucket: &str,
        prefix: &str,
        cfg: &S3Config,
        part_size: u64,
        first_part: u64,
    ) -> Result<S3> {
        cfg.validate()?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_allow_http(cfg.allow_http);
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &cfg.secret_access_key {
            b = b.with_secret_access_key(s.expose());
        }
        if let Some(t) = &cfg.session_token {
            b = b.with_token(t.expose());
        }
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| {
            RegistryError::new(
                ErrorKind::Invalid,
                crate::blob::codes::MG0101,
                format!("S3 store s3://{bucket}: {e}"),
            )
        })?;
        Ok(S3 {
            store: Arc::new(store),
            prefix: prefix.to_string(),
            part_size,
            first_part: first_part.clamp(S3_MIN_PART, part_size),
        })
    }

    fn path(&self, key: &str) -> Path {
        under_prefix(&self.prefix, key)
    }

    fn key_of(&self, p: &Path) -> String {
        key_below_prefix(&self.prefix, p)
    }
}

fn multipart_key(id: &UploadId) -> String {
    format!("{}/multipart", layout::upload_dir(id))
}

#[async_trait]
impl Storage for S3 {
    async fn get_small(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(
                r.bytes().await.map_err(|e| unavailable("read", key, e))?,
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable("read", key, e)),
        }
    }

    async fn put_small(&self, key: &str, data: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(data))
            .await
            .map(drop)
            .map_err(|e| unavailable("write", key, e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(unavailable("delete", key, e)),
        }
    }

    async fn stat(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable("stat", key, e)),
        }
    }

    async fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(&self.path(key), range)
            .await
            .map_err(|e| unavailable("read", key, e))
    }

    fn stream(&self, key: &str, range: Range<u64>) -> ByteStream {
        if range.is_empty() {
            return futures_util::stream::empty().boxed();
        }
        let (store, path, key) = (self.store.clone(), self.path(key), key.to_string());
        let k2 = key.clone();
        futures_util::stream::once(async move {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(range)),
                ..GetOptions::default()
            };
            store
                .get_opts(&path, opts)
                .await
                .map(|r| r.into_stream())
                .map_err(|e| std::io::Error::other(unavailable("read", &key, e)))
        })
        .map_ok(move |s| {
            let k = k2.clone();
            s.map_err(move |e| std::io::Error::other(unavailable("read", &k, e)))
        })
        .try_flatten()
        .boxed()
    }

    async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = self
            .store
            .list(Some(&self.path(dir)))
            .map_ok(|m| Entry {
                key: self.key_of(&m.location),
                size: m.size,
                modified: m.last_modified.into(),
            })
            .try_collect()
            .await
            .map_err(|e| unavailable("list", dir, e))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn create_upload(&self, _id: &UploadId) -> Result<()> {
        Ok(())
    }

    async fn lock_upload(&self, _id: &UploadId) -> Result<SessionLock> {
        // Within one process the store's own lock applies; across processes, a part stored
        // twice changes its ETag and completing the upload with the other ETag fails, so a
        // race cannot publish bytes the digest was not computed over.
        Ok(None)
    }

    async fn sink(
        &self,
        id: &UploadId,
        state: &mut SessionState,
        durable: bool,
        _lock: SessionLock,
    ) -> Result<Box<dyn Sink>> {
        let progress = state.s3.get_or_insert_with(|| S3Progress {
            target: match &state.request.expected_digest {
                Some(d) => layout::blob_key(d),
                None => layout::data_key(id),
            },
            ..S3Progress::default()
        });
        let mut buf = Vec::new();
        let mut buffered = 0;
        if let Some(tail) = &progress.tail {
            let bytes = self.get_small(&tail.key).await?.ok_or_else(|| {
                RegistryError::new(
                    ErrorKind::Internal,
                    crate::blob::codes::MG0112,
                    format!(
                        "upload {}: its stored tail {} is missing",
                        id.as_str(),
                        tail.key
                    ),
                )
                .hint("cancel the upload and start again")
            })?;
            if bytes.len() as u64 != tail.len {
                return Err(unavailable(
                    "read",
                    &tail.key,
                    "the stored tail has the wrong size",
                ));
            }
            buffered = tail.len;
            buf.push(bytes);
        }
        Ok(Box::new(S3Sink {
            store: self.store.clone(),
            id: id.clone(),
            target: self.path(&progress.target),
            multipart_key: self.path(&multipart_key(id)),
            multipart: progress.multipart_id.clone(),
            parts: progress.parts.clone(),
            tail: progress.tail.clone(),
            prefix: self.prefix.clone(),
            buf,
            buffered,
            durable,
            inflight: VecDeque::new(),
            part_size: self.part_size,
            first_part: self.first_part,
        }))
    }

    async fn remove_upload(&self, id: &UploadId, state: Option<&SessionState>) -> Result<()> {
        let mut aborts = Vec::new();
        if let Some(p) = state.and_then(|s| s.s3.as_ref())
            && let Some(mp) = &p.multipart_id
        {
            aborts.push((p.target.clone(), mp.clone()));
        }
        if let Some(b) = self.get_small(&multipart_key(id)).await?
            && let Ok(rec) = serde_json::from_slice::<MultipartRecord>(&b)
            && !aborts.iter().any(|(_, m)| *m == rec.multipart_id)
        {
            aborts.push((rec.target, rec.multipart_id));
        }
        for (target, mp) in aborts {
            match self.store.abort_multipart(&self.path(&target), &mp).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                // Already completed or aborted: some servers answer with another error.
                Err(_) => {}
            }
        }
        for e in self.list(&layout::upload_dir(id)).await? {
            self.delete(&e.key).await?;
        }
        Ok(())
    }
}

/// `uploads/<id>/multipart`: written as soon as a multipart upload is created, so that it
/// can be aborted even if the process dies before the session state records it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MultipartRecord {
    target: String,
    multipart_id: String,
}

/// Parts stored concurrently by one session (each holds a part's bytes in memory).
const PARTS_IN_FLIGHT: usize = 3;

/// A part being stored, and the session state to save once it (and every part before it)
/// is stored.
struct InFlight {
    size: u64,
    task: tokio::task::JoinHandle<Result<PartId>>,
    state: Option<SessionState>,
}

/// Collects bytes into parts; full parts are stored in the background (a few at once, their
/// states saved in order as they complete); at the end of a chunk what is left is stored as a
/// part (at least 5 MiB) or as the session's tail object.
struct S3Sink {
    store: Arc<AmazonS3>,
    id: UploadId,
    prefix: String,
    target: Path,
    multipart_key: Path,
    multipart: Option<String>,
    /// Parts stored, in order.
    parts: Vec<PartRecord>,
    /// The tail object the last saved state names.
    tail: Option<TailRecord>,
    buf: Vec<Bytes>,
    buffered: u64,
    durable: bool,
    part_size: u64,
    first_part: u64,
    inflight: VecDeque<InFlight>,
}

impl Drop for S3Sink {
    fn drop(&mut self) {
        for f in &self.inflight {
            f.task.abort();
        }
    }
}

impl S3Sink {
    fn abs(&self, key: &str) -> Path {
        under_prefix(&self.prefix, key)
    }

    fn rel(&self, p: &Path) -> String {
        key_below_prefix(&self.prefix, p)
    }

    /// Parts started, stored or not.
    fn parts_started(&self) -> usize {
        self.parts.len() + self.inflight.len()
    }

    fn limit(&self) -> u64 {
        if self.parts_started() == 0 {
            self.first_part
        } else {
            self.part_size
        }
    }

    async fn multipart_id(&mut self) -> Result<String> {
        if let Some(m) = &self.multipart {
            return Ok(m.clone());
        }
        let target_key = self.rel(&self.target);
        let m = self
            .store
            .create_multipart(&self.target)
            .await
            .map_err(|e| unavailable("start a multipart upload of", &target_key, e))?;
        let rec = MultipartRecord {
            target: target_key,
            multipart_id: m.clone(),
        };
        let json = serde_json::to_vec(&rec).expect("record serializes");
        self.store
            .put(&self.multipart_key, PutPayload::from(json))
            .await
            .map_err(|e| unavailable("write", &self.rel(&self.multipart_key), e))?;
        self.multipart = Some(m.clone());
        Ok(m)
    }

    /// Starts storing the buffered bytes as the next part; `state` is saved once it is stored.
    async fn start_part(&mut self, state: Option<SessionState>) -> Result<()> {
        while self.inflight.len() >= PARTS_IN_FLIGHT {
            self.complete_oldest().await?;
        }
        let mp = self.multipart_id().await?;
        let payload: PutPayload = std::mem::take(&mut self.buf).into_iter().collect();
        let (store, target, idx) = (
            self.store.clone(),
            self.target.clone(),
            self.parts_started(),
        );
        let target_key = self.rel(&self.target);
        let task = tokio::spawn(async move {
            store
                .put_part(&target, &mp, idx, payload)
                .await
                .map_err(|e| unavailable("store a part of", &target_key, e))
        });
        self.inflight.push_back(InFlight {
            size: std::mem::take(&mut self.buffered),
            task,
            state,
        });
        Ok(())
    }

    /// Waits for the oldest part in flight, records it and saves the state that counts it.
    async fn complete_oldest(&mut self) -> Result<()> {
        let Some(f) = self.inflight.pop_front() else {
            return Ok(());
        };
        let part = f.task.await.map_err(crate::blob::session::join_error)??;
        self.parts.push(PartRecord {
            etag: part.content_id,
            size: f.size,
        });
        if let Some(mut state) = f.state {
            // Its bytes now all lie in stored parts: the state names no tail.
            self.tail = None;
            self.record(&mut state);
            self.save(&state).await?;
        }
        Ok(())
    }

    fn record(&self, state: &mut SessionState) {
        let p = state.s3.get_or_insert_with(S3Progress::default);
        p.target = self.rel(&self.target);
        p.multipart_id = self.multipart.clone();
        p.parts = self.parts.clone();
        p.tail = self.tail.clone();
    }

    async fn save(&self, state: &SessionState) -> Result<()> {
        let key = layout::state_key(&self.id);
        self.store
            .put(&self.abs(&key), PutPayload::from(state.to_json()))
            .await
            .map(drop)
            .map_err(|e| unavailable("write", &key, e))
    }
}

#[async_trait]
impl Sink for S3Sink {
    fn room(&self) -> u64 {
        self.limit().saturating_sub(self.buffered)
    }

    async fn write(&mut self, buf: Bytes) -> Result<()> {
        self.buffered += buf.len() as u64;
        self.buf.push(buf);
        Ok(())
    }

    async fn checkpoint(&mut self, state: &SessionState) -> Result<()> {
        let snapshot = self.durable.then(|| state.clone());
        self.start_part(snapshot).await
    }

    async fn flush(&mut self, state: &mut SessionState) -> Result<()> {
        if self.durable && self.buffered >= S3_MIN_PART {
            self.start_part(None).await?;
        }
        while !self.inflight.is_empty() {
            self.complete_oldest().await?;
        }
        if self.durable && self.buffered > 0 {
            // Fewer than 5 MiB left at the end of a chunk: a tail object named by its
            // position, so that a saved state naming an older tail stays valid until the new
            // state is saved.
            let parts_end: u64 = self.parts.iter().map(|p| p.size).sum();
            let key = format!(
                "{}/tail-{parts_end}-{}",
                layout::upload_dir(&self.id),
                self.buffered
            );
            let bytes: PutPayload = self.buf.iter().cloned().collect();
            self.store
                .put(&self.abs(&key), bytes)
                .await
                .map_err(|e| unavailable("write", &key, e))?;
            self.tail = Some(TailRecord {
                key,
                len: self.buffered,
            });
        } else if self.buffered == 0 {
            self.tail = None;
        }
        self.record(state);
        if self.durable {
            self.save(state).await?;
        }
        Ok(())
    }

    async fn settle(&mut self) {
        while !self.inflight.is_empty() {
            if self.complete_oldest().await.is_err() {
                break;
            }
        }
    }

    async fn publish(mut self: Box<Self>, state: &mut SessionState, digest: &Digest) -> Result<()> {
        while !self.inflight.is_empty() {
            self.complete_oldest().await?;
        }
        let final_key = layout::blob_key(digest);
        let final_path = self.abs(&final_key);
        match self.multipart.clone() {
            None => {
                // Small enough for one PUT: everything is in memory.
                let bytes: PutPayload = std::mem::take(&mut self.buf).into_iter().collect();
                self.store
                    .put(&final_path, bytes)
                    .await
                    .map_err(|e| unavailable("write", &final_key, e))?;
            }
            Some(mp) => {
                if self.buffered > 0 {
                    // The last part may be of any size.
                    self.start_part(None).await?;
                    self.complete_oldest().await?;
                }
                let target_key = self.rel(&self.target);
                let parts = self
                    .parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.etag.clone(),
                    })
                    .collect();
                self.store
                    .complete_multipart(&self.target, &mp, parts)
                    .await
                    .map_err(|e| unavailable("complete the upload of", &target_key, e))?;
                self.multipart = None;
                if self.target != final_path {
                    self.store
                        .copy(&self.target, &final_path)
                        .await
                        .map_err(|e| unavailable("copy into", &final_key, e))?;
                    let _ = self.store.delete(&self.target).await;
                }
            }
        }
        self.tail = None;
        self.record(state);
        Ok(())
    }
}
