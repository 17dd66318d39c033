//! Quantization at load: a requantized copy of an artifact, built once and kept in the cache.
//!
//! Layout under the ms-fetch cache root (next to `blobs/`):
//!
//! ```text
//! quantized/<artifact sha256>/<quant>.<quantizer key>.gguf   the requantized model
//! quantized/<artifact sha256>/<quant>.<quantizer key>.json   its record (sha256, size, ...)
//! quantized/<artifact sha256>/<quant>.<quantizer key>.lock   held while one process builds it
//! ```
//!
//! The key is the artifact's sha256, the quantization and [`quantizer_key`] (a version and a
//! fingerprint of the quantizer's output), so a new quantizer never reuses an old entry. The
//! conversion is [`crate::requantize`]'s, whose GGUF writer writes to a temporary name and
//! renames; the record is written (atomically) only after, so an entry without a record is a
//! partial build. A hit re-checks the entry's size, GGUF magic and sha256 against its record (one read
//! of the file), and anything that does not match is rebuilt. The artifact itself is only ever
//! read.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ms_fetch::write_atomic;
use ms_quant::quantize::{Algorithm, quantize_rows};
use ms_quant::{GgmlType, QUANTIZER_VERSION};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::quantization::Quantization;
use crate::requantize::{self, Progress, QuantizeError};

/// The quantizer part of the cache key: `msq` with [`ms_quant::QUANTIZER_VERSION`], then the
/// first 8 hex digits of the sha256 of what the refined quantizer (the one the cache builds
/// with) writes for a fixed input, for each block type the mixes produce. The fingerprint
/// invalidates entries when a kernel's output changes even if nobody bumped the version.
pub fn quantizer_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| format!("msq{QUANTIZER_VERSION}-{}", quantizer_fingerprint()))
}

fn quantizer_fingerprint() -> String {
    // Two rows of 256 fixed pseudo-random values in [-0.5, 0.5), with outliers as real
    // weights have.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let x: Vec<f32> = (0..512)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if i % 97 == 0 { u * 40.0 } else { u }
        })
        .collect();
    let mut h = Sha256::new();
    for ty in [GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q6K, GgmlType::Q4K] {
        h.update(ty.to_string().as_bytes());
        match quantize_rows(ty, Algorithm::Refined, &x, 256, 1) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(format!("{e:?}").as_bytes()),
        }
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum QuantCacheError {
    #[error(
        "the quantization cache directory {} is not usable: {source}; set MODELSPEC_CACHE to a writable directory",
        path.display()
    )]
    Unwritable { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Fetch(#[from] ms_fetch::FetchError),
    #[error("'{0}' is not a sha256 (64 lowercase hex digits)")]
    BadDigest(String),
    #[error("cannot convert {} to {quantization}: {source}", artifact.display())]
    Convert {
        artifact: PathBuf,
        quantization: Quantization,
        source: QuantizeError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QuantCacheError + '_ {
    move |source| QuantCacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How the model to run was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum CacheStatus {
    /// `quantization: source`: the artifact as stored.
    Source,
    /// An intact entry was reused.
    Hit,
    /// No entry: built now.
    Built,
    /// An entry was there but did not match its record (the reason): built again.
    Rebuilt(String),
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheStatus::Source => f.write_str("as stored"),
            CacheStatus::Hit => f.write_str("reused from the cache"),
            CacheStatus::Built => f.write_str("converted and cached"),
            CacheStatus::Rebuilt(reason) => {
                write!(f, "converted again (the cached copy was damaged: {reason})")
            }
        }
    }
}

/// The model file to load for a quantization.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    /// sha256 of the file at `path`.
    pub sha256: String,
    pub status: CacheStatus,
    /// The quantizer's warnings (when built now) and ours (no size gain).
    pub warnings: Vec<String>,
}

/// What the `.json` next to an entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    artifact_sha256: String,
    quantization: String,
    quantizer_version: String,
    sha256: String,
    size: u64,
}

/// The requantized-model cache under a cache root (ms-fetch's).
#[derive(Debug, Clone)]
pub struct QuantCache {
    root: PathBuf,
}

impl QuantCache {
    /// The cache below `cache_root` (ms-fetch's root: `$MODELSPEC_CACHE`, ...).
    pub fn under(cache_root: &Path) -> Self {
        Self {
            root: cache_root.join("quantized"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry for this artifact and quantization lives (whether or not it exists).
    pub fn entry_path(&self, artifact_sha256: &str, q: Quantization) -> PathBuf {
        self.root
            .join(artifact_sha256)
            .join(format!("{}.{}.gguf", q.name(), quantizer_key()))
    }

    /// The file to load for `q`: `artifact` itself for `source`; otherwise the cached
    /// conversion, built with the refined quantizer on `threads` threads when missing or
    /// damaged (the output does not depend on `threads`). `progress` hears about a build
    /// (nothing on a hit).
    pub fn prepare(
        &self,
        artifact: &Path,
        artifact_sha256: &str,
        q: Quantization,
        threads: usize,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Prepared, QuantCacheError> {
        if !ms_fetch::is_sha256_hex(artifact_sha256) {
            return Err(QuantCacheError::BadDigest(artifact_sha256.to_string()));
        }
        let Some(target) = q.target() else {
            return Ok(Prepared {
                path: artifact.to_path_buf(),
                sha256: artifact_sha256.to_string(),
                status: CacheStatus::Source,
                warnings: Vec::new(),
            });
        };
        let entry = self.entry_path(artifact_sha256, q);
        let record_path = entry.with_extension("json");
        let dir = entry.parent().unwrap_or(&self.root).to_path_buf();
        // Fails here, before any work, when the cache cannot be written.
        fs::create_dir_all(&dir).map_err(|source| QuantCacheError::Unwritable {
            path: dir.clone(),
            source,
        })?;
        let lock_path = entry.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| QuantCacheError::Unwritable {
                path: lock_path.clone(),
                source,
            })?;
        // Another process building the same entry: wait for it, then reuse its result.
        lock.lock().map_err(io_err(&lock_path))?;

        let expected = Record {
            artifact_sha256: artifact_sha256.to_string(),
            quantization: q.name().to_string(),
            quantizer_version: quantizer_key().to_string(),
            sha256: String::new(),
            size: 0,
        };
        let status = match check_entry(&entry, &record_path, &expected)? {
            Check::Intact(sha256) => {
                return Ok(Prepared {
                    warnings: size_warning(artifact, &entry, q).into_iter().collect(),
                    path: entry,
                    sha256,
                    status: CacheStatus::Hit,
                });
            }
            Check::Missing => CacheStatus::Built,
            Check::Damaged(reason) => {
                remove_if_present(&record_path)?;
                remove_if_present(&entry)?;
                CacheStatus::Rebuilt(reason)
            }
        };

        // The writer renames a complete file into place and removes its partial one on failure.
        let mut warnings = requantize::quantize_file_with_progress(
            artifact,
            &entry,
            target,
            Algorithm::Refined,
            threads,
            progress,
        )
        .map_err(|source| QuantCacheError::Convert {
            artifact: artifact.to_path_buf(),
            quantization: q,
            source,
        })?
        .warnings;
        let sha256 = ms_fetch::sha256_file(&entry)?;
        let size = fs::metadata(&entry).map_err(io_err(&entry))?.len();
        let record = Record {
            sha256: sha256.clone(),
            size,
            ..expected
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| QuantCacheError::Io {
            path: record_path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&record_path, &json)?;
        warnings.extend(size_warning(artifact, &entry, q));
        Ok(Prepared {
            path: entry,
            sha256,
            status,
            warnings,
        })
    }
}

enum Check {
    Intact(String),
    Missing,
    Damaged(String),
}

fn check_entry(
    entry: &Path,
    record_path: &Path,
    expected: &Record,
) -> Result<Check, QuantCacheError> {
    let has_entry = entry.exists();
    let record_bytes = match fs::read(record_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(record_path)(e)),
    };
    let Some(record_bytes) = record_bytes else {
        return Ok(if has_entry {
            Check::Damaged("no record (an interrupted build)".into())
        } else {
            Check::Missing
        });
    };
    if !has_entry {
        return Ok(Check::Damaged("the model file is missing".into()));
    }
    let record: Record = match serde_json::from_slice(&record_bytes) {
        Ok(r) => r,
        Err(e) => return Ok(Check::Damaged(format!("unreadable record: {e}"))),
    };
    if record.artifact_sha256 != expected.artifact_sha256
        || record.quantization != expected.quantization
        || record.quantizer_version != expected.quantizer_version
    {
        return Ok(Check::Damaged("the record names another build".into()));
    }
    let size = fs::metadata(entry).map_err(io_err(entry))?.len();
    if size != record.size {
        return Ok(Check::Damaged(format!(
            "size {size} bytes, recorded {}",
            record.size
        )));
    }
    let mut magic = [0u8; 4];
    let magic_ok = File::open(entry)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF";
    if !magic_ok {
        return Ok(Check::Damaged("not a GGUF file".into()));
    }
    let actual = ms_fetch::sha256_file(entry)?;
    if actual != record.sha256 {
        return Ok(Check::Damaged(format!(
            "sha256 {actual}, recorded {}",
            record.sha256
        )));
    }
    Ok(Check::Intact(actual))
}

fn remove_if_present(path: &Path) -> Result<(), QuantCacheError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Requantizing to a format no smaller than the stored one costs precision for nothing.
fn size_warning(artifact: &Path, entry: &Path, q: Quantization) -> Option<String> {
    let stored = fs::metadata(artifact).ok()?.len();
    let converted = fs::metadata(entry).ok()?.len();
    (converted >= stored).then(|| {
        format!(
            "requantizing {} ({:.1} MiB) to {q} gives {:.1} MiB: no smaller than the stored \
             format, so it gains nothing and loses precision; use quantization: source",
            artifact.display(),
            mib(stored),
            mib(converted)
        )
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The sha256 of a model file: read from its name when it is a blob of the ms-fetch cache
/// (which verified it when it was stored), computed otherwise.
pub fn artifact_sha256(cache_root: &Path, path: &Path) -> Result<String, QuantCacheError> {
    let blobs = cache_root.join("blobs").join("sha256");
    if path.parent() == Some(blobs.as_path())
        && let Some(name) = path.file_name().and_then(|n| n.to_str())
        && ms_fetch::is_sha256_hex(name)
    {
        return Ok(name.to_string());
    }
    Ok(ms_fetch::sha256_file(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantizer_key_is_stable_and_fingerprints_real_output() {
        let key = quantizer_key();
        assert!(
            key.starts_with(&format!("msq{QUANTIZER_VERSION}-")),
            "{key}"
        );
        let fp = key.rsplit('-').next().unwrap();
        assert_eq!(fp.len(), 8);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        // Recomputed, the same: the cache key must not change between runs.
        assert_eq!(quantizer_fingerprint(), fp);
        let cache = QuantCache::under(Path::new("/c"));
        let sha = "ab".repeat(32);
        let name = cache.entry_path(&sha, Quantization::Q4KM);
        assert_eq!(
            name,
            Path::new("/c/quantized")
                .join(&sha)
                .join(format!("Q4_K_M.{key}.gguf"))
        );
    }
}
