//! The local-directory backend. Every visible name appears by `rename` of a complete, fsynced
//! file from `uploads/` (same filesystem), followed by an fsync of the directory, so a crash
//! leaves either the old state or the new one, never a partial file under `blobs/`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::blob::backend::{ByteStream, Entry, SessionLock, Storage, unavailable};
use crate::blob::codes::*;
use crate::blob::layout::{self, UploadId};
use crate::blob::session::{SessionState, Sink, join_error};
use crate::digest::Digest;
use crate::error::{ErrorKind, RegistryError, Result};

pub struct Local {
    root: PathBuf,
    part_size: u64,
    buffer_size: usize,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(join_error)?
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Local {
    pub fn new(root: PathBuf, part_size: u64, buffer_size: usize) -> Local {
        Local {
            root,
            part_size,
            buffer_size,
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Creates the layout's top directories (idempotent).
    pub async fn init(&self) -> Result<()> {
        let root = self.root.clone();
        blocking(move || {
            for d in [layout::BLOBS, layout::UPLOADS] {
                let p = root.join(d);
                fs::create_dir_all(&p)
                    .map_err(|e| unavailable("create directory", &p.display().to_string(), e))?;
            }
            Ok(())
        })
        .await
    }
}

/// `create_dir_all` that fsyncs the parent of every directory it makes, so that a renamed
/// file's directory entry survives a crash.
fn create_dirs_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs_durably(parent)?;
        match fs::create_dir(dir) {
            Ok(()) => fsync_dir(parent)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `data` to a temp file in `uploads/`, fsyncs it and renames it to `target`.
fn write_atomically(root: &Path, target: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = root.join(layout::UPLOADS).join(format!(
        "{}.tmp",
        UploadId::random().map_err(std::io::Error::other)?.as_str()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        let dir = target.parent().expect("store keys have a parent");
        create_dirs_durably(dir)?;
        fs::rename(&tmp, target)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn list_into(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let ent = ent?;
        let meta = ent.metadata()?;
        let path = ent.path();
        if meta.is_dir() {
            list_into(root, &path, out)?;
        } else {
            let key = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            out.push(Entry {
                key,
                size: meta.len(),
                modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for Local {
    async fn get_small(&self, key: &str) -> Result<Option<Bytes>> {
        let p = self.path(key);
        let k = key.to_string();
        blocking(move || match fs::read(&p) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("read", &k, e)),
        })
        .await
    }

    async fn put_small(&self, key: &str, data: Bytes) -> Result<()> {
        let (root, p, k) = (self.root.clone(), self.path(key), key.to_string());
        blocking(move || {
            write_atomically(&root, &p, &data).map_err(|e| unavailable("write", &k, e))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let (p, k) = (self.path(key), key.to_string());
        blocking(move || match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable("delete", &k, e)),
        })
        .await
    }

    async fn stat(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("stat", key, e)),
        }
    }

    async fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let (p, k) = (self.path(key), key.to_string());
        blocking(move || {
            let mut f = File::open(&p).map_err(|e| unavailable("open", &k, e))?;
            f.seek(SeekFrom::Start(range.start))
                .map_err(|e| unavailable("seek", &k, e))?;
            let mut buf = Vec::with_capacity((range.end - range.start) as usize);
            f.take(range.end - range.start)
                .read_to_end(&mut buf)
                .map_err(|e| unavailable("read", &k, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    fn stream(&self, key: &str, range: Range<u64>) -> ByteStream {
        let path = self.path(key);
        let buffer = self.buffer_size as u64;
        struct Cursor {
            file: Option<File>,
            path: PathBuf,
            pos: u64,
            end: u64,
        }
        let start = Cursor {
            file: None,
            path,
            pos: range.start,
            end: range.end,
        };
        futures_util::stream::try_unfold(start, move |mut c| async move {
            if c.pos >= c.end {
                return Ok(None);
            }
            let (c, bytes) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                if c.file.is_none() {
                    let mut f = File::open(&c.path)?;
                    f.seek(SeekFrom::Start(c.pos))?;
                    c.file = Some(f);
                }
                let n = buffer.min(c.end - c.pos);
                let mut buf = Vec::with_capacity(n as usize);
                c.file
                    .as_mut()
                    .expect("opened")
                    .take(n)
                    .read_to_end(&mut buf)?;
                if buf.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the blob is shorter than its recorded size",
                    ));
                }
                c.pos += buf.len() as u64;
                Ok((c, Bytes::from(buf)))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((bytes, c)))
        })
        .boxed()
    }

    async fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let (root, d, k) = (self.root.clone(), self.path(dir), dir.to_string());
        blocking(move || {
            let mut out = Vec::new();
            list_into(&root, &d, &mut out).map_err(|e| unavailable("list", &k, e))?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn create_upload(&self, id: &UploadId) -> Result<()> {
        let dir = self.path(&layout::upload_dir(id));
        let data = self.path(&layout::data_key(id));
        let k = layout::upload_dir(id);
        blocking(move || {
            create_dirs_durably(&dir)
                .and_then(|()| File::create(&data).map(drop))
                .map_err(|e| unavailable("create upload", &k, e))
        })
        .await
    }

    async fn lock_upload(&self, id: &UploadId) -> Result<SessionLock> {
        let p = self.path(&layout::data_key(id));
        let k = id.as_str().to_string();
        blocking(move || {
            let f = match OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&p)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(not_found_session(&k));
                }
                Err(e) => return Err(unavailable("lock upload", &k, e)),
            };
            match f.try_lock() {
                Ok(()) => Ok(Some(f)),
                Err(fs::TryLockError::WouldBlock) => Err(busy(&k)),
                Err(fs::TryLockError::Error(e)) => Err(unavailable("lock upload", &k, e)),
            }
        })
        .await
    }

    async fn sink(
        &self,
        id: &UploadId,
        state: &mut SessionState,
        durable: bool,
        lock: SessionLock,
    ) -> Result<Box<dyn Sink>> {
        let k = layout::data_key(id);
        let offset = state.offset;
        let mut f = lock.expect("local uploads are locked before writing");
        let file = blocking(move || {
            let len = f.metadata().map_err(|e| unavailable("stat", &k, e))?.len();
            if len < offset {
                return Err(RegistryError::new(
                    ErrorKind::Internal,
                    MG0112,
                    format!("{k} has {len} bytes, fewer than the session's offset {offset}"),
                )
                .hint("the upload's stored bytes were removed: cancel it and upload again"));
            }
            // Bytes past the recorded offset belong to an interrupted chunk: drop them.
            if len > offset {
                f.set_len(offset)
                    .map_err(|e| unavailable("truncate", &k, e))?;
                f.sync_all().map_err(|e| unavailable("fsync", &k, e))?;
            }
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| unavailable("seek", &k, e))?;
            Ok(f)
        })
        .await?;
        Ok(Box::new(LocalSink {
            file: Some(file),
            root: self.root.clone(),
            key: layout::data_key(id),
            state_key: durable.then(|| layout::state_key(id)),
            since_checkpoint: 0,
            part_size: self.part_size,
            pending: None,
        }))
    }

    async fn remove_upload(&self, id: &UploadId, _state: Option<&SessionState>) -> Result<()> {
        let dir = self.path(&layout::upload_dir(id));
        let k = layout::upload_dir(id);
        blocking(move || match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable("remove upload", &k, e)),
        })
        .await
    }
}

pub fn not_found_session(id: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        MG0103,
        format!("no upload session {id}"),
    )
    .hint("it was finished, cancelled or garbage-collected: start a new upload")
}

pub fn busy(id: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Conflict,
        MG0113,
        format!("upload session {id} is being written by another request"),
    )
    .hint("wait for it, then ask the session's status and continue from its offset")
}

/// Appends to `uploads/<id>/data`. A checkpoint (an fsync, then a session's state saved) runs
/// in the background while the next bytes are written; the next checkpoint waits for it.
struct LocalSink {
    file: Option<File>,
    root: PathBuf,
    key: String,
    /// Where a session's state is saved; `None` for a one-shot put.
    state_key: Option<String>,
    since_checkpoint: u64,
    part_size: u64,
    pending: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl LocalSink {
    async fn wait_pending(&mut self) -> Result<()> {
        match self.pending.take() {
            Some(h) => h.await.map_err(join_error)?,
            None => Ok(()),
        }
    }

    /// fsyncs what was written, then saves `state` (if a session's).
    fn durable_task(&self, state: Option<Bytes>) -> Result<impl FnOnce() -> Result<()> + use<>> {
        let k = self.key.clone();
        let file = self
            .file
            .as_ref()
            .expect("sink file present between calls")
            .try_clone()
            .map_err(|e| unavailable("fsync", &k, e))?;
        let target = self
            .state_key
            .as_ref()
            .map(|s| (self.root.join(s), s.clone()));
        let root = self.root.clone();
        Ok(move || {
            file.sync_data().map_err(|e| unavailable("fsync", &k, e))?;
            if let (Some((path, key)), Some(json)) = (target, state) {
                write_atomically(&root, &path, &json).map_err(|e| unavailable("write", &key, e))?;
            }
            Ok(())
        })
    }
}

impl Drop for LocalSink {
    fn drop(&mut self) {
        if let Some(h) = &self.pending {
            h.abort();
        }
    }
}

#[async_trait]
impl Sink for LocalSink {
    fn room(&self) -> u64 {
        self.part_size.saturating_sub(self.since_checkpoint)
    }

    async fn write(&mut self, buf: Bytes) -> Result<()> {
        let mut f = self.file.take().expect("sink file present between calls");
        let k = self.key.clone();
        let n = buf.len() as u64;
        let f = blocking(move || {
            f.write_all(&buf).map_err(|e| unavailable("write", &k, e))?;
            Ok(f)
        })
        .await?;
        self.file = Some(f);
        self.since_checkpoint += n;
        Ok(())
    }

    async fn checkpoint(&mut self, state: &SessionState) -> Result<()> {
        self.since_checkpoint = 0;
        self.wait_pending().await?;
        // A one-shot put saves no state but syncs too: the disk then writes while the next
        // bytes are hashed, instead of all at the end (the fsync before publishing).
        let task = self.durable_task(self.state_key.is_some().then(|| state.to_json()))?;
        self.pending = Some(tokio::task::spawn_blocking(task));
        Ok(())
    }

    async fn flush(&mut self, state: &mut SessionState) -> Result<()> {
        self.wait_pending().await?;
        let json = self.state_key.is_some().then(|| state.to_json());
        let task = self.durable_task(json)?;
        blocking(task).await
    }

    async fn settle(&mut self) {
        let _ = self.wait_pending().await;
    }

    async fn publish(
        mut self: Box<Self>,
        _state: &mut SessionState,
        digest: &Digest,
    ) -> Result<()> {
        self.wait_pending().await?;
        let from = self.root.join(&self.key);
        let to = self.root.join(layout::blob_key(digest));
        let k = layout::blob_key(digest);
        let file = self.file.take();
        blocking(move || {
            let f = match file {
                Some(f) => f,
                None => File::open(&from).map_err(|e| unavailable("open", &k, e))?,
            };
            f.sync_all().map_err(|e| unavailable("fsync", &k, e))?;
            drop(f);
            let dir = to.parent().expect("blob keys have a parent");
            create_dirs_durably(dir).map_err(|e| unavailable("create directory", &k, e))?;
            fs::rename(&from, &to).map_err(|e| unavailable("rename into", &k, e))?;
            fsync_dir(dir).map_err(|e| unavailable("fsync directory of", &k, e))
        })
        .await
    }
}
