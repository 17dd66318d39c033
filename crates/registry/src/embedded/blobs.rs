//! The blob store as the embedded registry uses it: a narrow trait, so that the registry's
//! rules do not depend on how bytes are kept. `Interim` is a small local-directory store used
//! until `crate::blob::BlobStore` (streaming, S3, resumable with stored hash state) is wired in.

use std::path::PathBuf;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api::ByteReader;
use crate::codes;
use crate::digest::Digest;
use crate::entity::CheckProblem;
use crate::error::{ErrorKind, RegistryError, Result};

/// What a blob check saw.
#[derive(Debug, Default)]
pub struct BlobCheck {
    pub blobs: u64,
    pub bytes: u64,
    pub problems: Vec<CheckProblem>,
}

/// The operations the registry needs from a content-addressed store.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores `body`; fails (storing nothing) unless it hashes to `expected` and has `size`
    /// bytes when those are given, or when it exceeds `limit` bytes.
    async fn put(
        &self,
        body: ByteReader,
        expected: Option<Digest>,
        size: Option<u64>,
        limit: u64,
    ) -> Result<(Digest, u64)>;
    async fn begin(&self, expected: Option<Digest>, size: Option<u64>) -> Result<String>;
    async fn offset(&self, upload_id: &str) -> Result<u64>;
    async fn append(
        &self,
        upload_id: &str,
        offset: u64,
        body: ByteReader,
        limit: u64,
    ) -> Result<u64>;
    async fn finish(
        &self,
        upload_id: &str,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)>;
    /// The bytes `start..end` of a blob.
    async fn read(&self, digest: &Digest, start: u64, end: u64) -> Result<ByteReader>;
    /// The size of a complete blob, `None` when absent.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Re-hashes every blob.
    async fn check(&self) -> Result<BlobCheck>;
}

/// A local directory: `blobs/sha256/<hex>` and `uploads/<id>`.
pub struct Interim {
    root: PathBuf,
}

fn io(e: std::io::Error) -> RegistryError {
    RegistryError::new(
        ErrorKind::Unavailable,
        codes::MG0001,
        format!("blob store: {e}"),
    )
}

impl Interim {
    pub fn open(root: PathBuf) -> Result<Interim> {
        std::fs::create_dir_all(root.join("blobs/sha256")).map_err(io)?;
        std::fs::create_dir_all(root.join("uploads")).map_err(io)?;
        Ok(Interim { root })
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0012,
                format!("no upload session {id:?}"),
            ));
        }
        Ok(self.root.join("uploads").join(id))
    }

    async fn commit(
        &self,
        tmp: &std::path::Path,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let mut f = tokio::fs::File::open(tmp).await.map_err(io)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).await.map_err(io)?;
            if k == 0 {
                break;
            }
            n += k as u64;
            h.update(&buf[..k]);
        }
        let d = Digest(h.finalize().into());
        if let Some(s) = size
            && s != n
        {
            let _ = tokio::fs::remove_file(tmp).await;
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                codes::MG0013,
                format!("received {n} bytes, the upload declared {s}"),
            ));
        }
        if let Some(e) = expected
            && e != d
        {
            let _ = tokio::fs::remove_file(tmp).await;
            return Err(RegistryError::new(
                ErrorKind::Integrity,
                codes::MG0013,
                format!("the bytes hash to {d}, the upload declared {e}"),
            ));
        }
        tokio::fs::rename(tmp, self.blob_path(&d))
            .await
            .map_err(io)?;
        Ok((d, n))
    }
}

async fn copy_limited(
    mut body: ByteReader,
    f: &mut tokio::fs::File,
    already: u64,
    limit: u64,
) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut n = already;
    loop {
        let k = body.read(&mut buf).await.map_err(|e| {
            RegistryError::new(
                ErrorKind::Invalid,
                codes::MG0013,
                format!("upload body: {e}"),
            )
        })?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > limit {
            return Err(RegistryError::new(
                ErrorKind::TooLarge,
                codes::MG0011,
                format!("the upload exceeds the size limit of {limit} bytes"),
            ));
        }
        f.write_all(&buf[..k]).await.map_err(io)?;
    }
    f.sync_all().await.map_err(io)?;
    Ok(n)
}

#[async_trait]
impl Blobs for Interim {
    async fn put(
        &self,
        body: ByteReader,
        expected: Option<Digest>,
        size: Option<u64>,
        limit: u64,
    ) -> Result<(Digest, u64)> {
        let id = crate::auth::random_hex(16);
        let tmp = self.upload_path(&id)?;
        let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
        if let Err(e) = copy_limited(body, &mut f, 0, limit).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        self.commit(&tmp, expected, size).await
    }

    async fn begin(&self, _expected: Option<Digest>, _size: Option<u64>) -> Result<String> {
        let id = crate::auth::random_hex(16);
        tokio::fs::File::create(self.upload_path(&id)?)
            .await
            .map_err(io)?;
        Ok(id)
    }

    async fn offset(&self, upload_id: &str) -> Result<u64> {
        let p = self.upload_path(upload_id)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(m.len()),
            Err(_) => Err(RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0012,
                format!("no upload session {upload_id:?}"),
            )),
        }
    }

    async fn append(
        &self,
        upload_id: &str,
        offset: u64,
        body: ByteReader,
        limit: u64,
    ) -> Result<u64> {
        let now = self.offset(upload_id).await?;
        if now != offset {
            return Err(RegistryError::new(
                ErrorKind::Conflict,
                codes::MG0014,
                format!("the upload is at offset {now}, not {offset}"),
            )
            .hint(format!("resume at offset {now}")));
        }
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.upload_path(upload_id)?)
            .await
            .map_err(io)?;
        f.seek(std::io::SeekFrom::End(0)).await.map_err(io)?;
        copy_limited(body, &mut f, now, limit).await
    }

    async fn finish(
        &self,
        upload_id: &str,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        self.offset(upload_id).await?;
        self.commit(&self.upload_path(upload_id)?, expected, size)
            .await
    }

    async fn read(&self, digest: &Digest, start: u64, end: u64) -> Result<ByteReader> {
        let mut f = tokio::fs::File::open(self.blob_path(digest))
            .await
            .map_err(|_| {
                RegistryError::new(
                    ErrorKind::NotFound,
                    codes::MG0015,
                    format!("blob {digest} is not in the store"),
                )
            })?;
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(io)?;
        Ok(Box::new(f.take(end - start)))
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn check(&self) -> Result<BlobCheck> {
        let mut out = BlobCheck::default();
        let mut dir = tokio::fs::read_dir(self.root.join("blobs/sha256"))
            .await
            .map_err(io)?;
        while let Some(ent) = dir.next_entry().await.map_err(io)? {
            let name = ent.file_name().to_string_lossy().to_string();
            let bytes = tokio::fs::read(ent.path()).await.map_err(io)?;
            out.blobs += 1;
            out.bytes += bytes.len() as u64;
            if Digest::of(&bytes).hex() != name {
                out.problems.push(CheckProblem {
                    code: codes::MG0602.into(),
                    subject: format!("blob:sha256:{name}"),
                    message: "the blob's bytes do not hash to its name".into(),
                });
            }
        }
        Ok(out)
    }
}
