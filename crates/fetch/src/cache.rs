//! The local, content-addressed cache.
//!
//! Layout under the cache root (`$MODELSPEC_CACHE`, else `$XDG_CACHE_HOME/modelspec`, else
//! `~/.cache/modelspec`):
//!
//! ```text
//! blobs/sha256/<hex>      the artifact bytes, named by their sha256
//! verified/<hex>          "<size> <mtime-ns>" of the blob when its hash was last checked
//! locks/<key>.lock        advisory lock held while a process fetches that artifact
//! refs/uri-<hex>          sha256 of an artifact fetched without a declared digest (key: its address)
//! partial/<key>.<n>       an interrupted download, resumed by the next run
//! verified-local/<hex>    "<sha256> <size> <mtime-ns>" of a local file checked against a digest
//! tmp/                    partial downloads and unpacked wheels (same filesystem: rename is atomic)
//! ```
//!
//! A blob only ever appears through an atomic rename after its hash was checked, so a lookup
//! trusts a blob whose size and modification time still match its `verified/` marker and does
//! not re-hash it: a second call is instant. A blob without a marker (copied in by hand, or
//! from an older version) is hashed once, then marked; a blob whose hash is wrong is removed.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::FetchError;

/// The cache root and the operations on it.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at an explicit root (created on first write).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The user's cache: `$MODELSPEC_CACHE`, else `$XDG_CACHE_HOME/modelspec`, else
    /// `$HOME/.cache/modelspec`.
    pub fn from_env() -> Result<Self, FetchError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = non_empty("MODELSPEC_CACHE") {
            return Ok(Self::at(dir));
        }
        if let Some(dir) = non_empty("XDG_CACHE_HOME") {
            return Ok(Self::at(PathBuf::from(dir).join("modelspec")));
        }
        if let Some(home) = non_empty("HOME") {
            return Ok(Self::at(
                PathBuf::from(home).join(".cache").join("modelspec"),
            ));
        }
        Err(FetchError::NoCacheDir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this sha256 lives (whether or not it exists yet).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join("sha256").join(sha256)
    }

    fn marker_path(&self, sha256: &str) -> PathBuf {
        self.root.join("verified").join(sha256)
    }

    /// A fresh private directory under `tmp/` for one fetch; removed when dropped.
    pub(crate) fn temp_dir(&self, label: &str) -> Result<TempDir, FetchError> {
        let parent = self.root.join("tmp");
        create_dir_all(&parent)?;
        for attempt in 0u32..1000 {
            let path = parent.join(format!("{label}-{}-{attempt}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(FetchError::io(&path, e)),
            }
        }
        Err(FetchError::io(
            &parent,
            std::io::Error::other("could not create a unique temporary directory"),
        ))
    }

    /// Takes the per-artifact lock (`key` is its sha256, or a name derived from its address), so that parallel processes fetch a blob once: the second waits,
    /// then finds the blob in place.
    pub(crate) fn lock(&self, key: &str) -> Result<BlobLock, FetchError> {
        let dir = self.root.join("locks");
        create_dir_all(&dir)?;
        let path = dir.join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| FetchError::io(&path, e))?;
        file.lock().map_err(|e| FetchError::io(&path, e))?;
        Ok(BlobLock { _file: file })
    }

    /// The blob's path if it is present and intact. Instant when its marker matches; otherwise
    /// hashes it once (and removes it if the hash is wrong).
    pub fn lookup(&self, sha256: &str) -> Result<Option<PathBuf>, FetchError> {
        let blob = self.blob_path(sha256);
        let Some(stamp) = stamp_of(&blob)? else {
            return Ok(None);
        };
        let marker = self.marker_path(sha256);
        if fs::read_to_string(&marker).ok().as_deref() == Some(stamp.as_str()) {
            return Ok(Some(blob));
        }
        let actual = sha256_file(&blob)?;
        if actual != sha256 {
            // A corrupt blob would fail every later run: drop it so that it is fetched again.
            fs::remove_file(&blob).map_err(|e| FetchError::io(&blob, e))?;
            let _ = fs::remove_file(&marker);
            return Ok(None);
        }
        self.write_marker(sha256, &blob)?;
        Ok(Some(blob))
    }

    /// The blob for `key`: a sha256 itself, or (for artifacts without a digest) a name whose
    /// `refs/` entry records the sha256 the artifact had when it was fetched.
    pub(crate) fn lookup_key(
        &self,
        key: &str,
        sha256: Option<&str>,
    ) -> Result<Option<PathBuf>, FetchError> {
        if let Some(sha) = sha256 {
            return self.lookup(sha);
        }
        let Ok(sha) = fs::read_to_string(self.root.join("refs").join(key)) else {
            return Ok(None);
        };
        let sha = sha.trim();
        if !is_sha256_hex(sha) {
            return Ok(None);
        }
        self.lookup(sha)
    }

    pub(crate) fn write_ref(&self, key: &str, sha256: &str) -> Result<(), FetchError> {
        write_atomic(&self.root.join("refs").join(key), sha256.as_bytes())
    }

    /// Where part `index` of the artifact `key` is downloaded; kept across runs so that an
    /// interrupted download resumes.
    pub(crate) fn partial_path(&self, key: &str, index: usize) -> Result<PathBuf, FetchError> {
        let dir = self.root.join("partial");
        create_dir_all(&dir)?;
        Ok(dir.join(format!("{key}.{index}")))
    }

    pub(crate) fn is_partial(&self, path: &Path) -> bool {
        path.starts_with(self.root.join("partial"))
    }

    /// Checks a file outside the cache against `sha256`; remembers the check (keyed by the
    /// file's path, size and mtime) so that it is not repeated while the file is unchanged.
    pub(crate) fn verify_local(&self, path: &Path, sha256: &str) -> Result<(), FetchError> {
        let canonical = fs::canonicalize(path).map_err(|e| FetchError::io(path, e))?;
        let name = hex(&Sha256::digest(canonical.to_string_lossy().as_bytes()));
        let marker = self.root.join("verified-local").join(name);
        let Some(stamp) = stamp_of(path)? else {
            return Err(FetchError::MissingFile(path.to_path_buf()));
        };
        let expected_marker = format!("{sha256} {stamp}");
        if fs::read_to_string(&marker).ok().as_deref() == Some(expected_marker.as_str()) {
            return Ok(());
        }
        let actual = sha256_file(path)?;
        if actual != sha256 {
            return Err(FetchError::Checksum {
                what: path.display().to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        // The marker is an optimisation: a read-only cache only costs a re-hash next time.
        let _ = write_atomic(&marker, expected_marker.as_bytes());
        Ok(())
    }

    /// Moves a fully written, already hashed file into place as the blob `sha256`.
    pub(crate) fn install(&self, sha256: &str, staged: &Path) -> Result<PathBuf, FetchError> {
        let blob = self.blob_path(sha256);
        if let Some(parent) = blob.parent() {
            create_dir_all(parent)?;
        }
        fs::rename(staged, &blob).map_err(|e| FetchError::io(&blob, e))?;
        self.write_marker(sha256, &blob)?;
        Ok(blob)
    }

    fn write_marker(&self, sha256: &str, blob: &Path) -> Result<(), FetchError> {
        let Some(stamp) = stamp_of(blob)? else {
            return Err(FetchError::io(
                blob,
                std::io::Error::new(std::io::ErrorKind::NotFound, "blob vanished"),
            ));
        };
        let marker = self.marker_path(sha256);
        write_atomic(&marker, stamp.as_bytes())
    }
}

/// "<size> <mtime-ns>" of a file, or None when it does not exist.
fn stamp_of(path: &Path) -> Result<Option<String>, FetchError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FetchError::io(path, e)),
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Some(format!("{} {mtime}", meta.len())))
}

/// Held while one process fetches a blob; the OS releases it when the file is closed.
pub(crate) struct BlobLock {
    _file: File,
}

/// A temporary directory removed (with its contents) on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub(crate) fn create_dir_all(path: &Path) -> Result<(), FetchError> {
    fs::create_dir_all(path).map_err(|e| FetchError::io(path, e))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that readers see the old file or the whole new one, never a part. Creates the directory
/// when missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        FetchError::io(path, e)
    })
}

/// The lowercase hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `s` looks like a sha256 hex digest (64 lowercase hex digits).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
