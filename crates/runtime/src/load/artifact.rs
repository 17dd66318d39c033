//! Artifact preparation: the file to load, the artifact as stored or its requantized copy
//! from the [`QuantCache`] (built on first use), with its provenance.

use std::path::{Path, PathBuf};

use ms_fetch::Cache;
use serde::Serialize;

use super::error::LoadError;
use super::progress::LoadProgress;
use super::request::LoadSettings;
use crate::codes;
use crate::plan::PlanProblem;
use crate::quant_cache::{CacheStatus, Prepared, QuantCache, artifact_sha256};
use crate::quantization::Quantization;

/// The model file to load and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreparedArtifact {
    /// The logical artifact, as resolved.
    pub artifact: PathBuf,
    /// Known when it was needed (requantizing, reports) or free (a cache blob's name).
    pub artifact_sha256: Option<String>,
    /// `source`, or what the artifact was converted to.
    #[serde(serialize_with = "quantization_name")]
    pub quantization: Quantization,
    /// The file loaded: the artifact itself for `source`, else the cache entry.
    pub loaded: PathBuf,
    pub loaded_sha256: Option<String>,
    pub cache: CacheStatus,
}

fn quantization_name<S: serde::Serializer>(q: &Quantization, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(q.name())
}

/// The artifact as stored, or its requantized version from the cache (built when missing).
pub fn prepare_artifact(
    path: &Path,
    q: Quantization,
    threads: usize,
    settings: LoadSettings,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<PreparedArtifact, LoadError> {
    let cache_root = Cache::from_env()?.root().to_path_buf();
    if q == Quantization::Source && !settings.digests {
        let free = free_digest(&cache_root, path);
        return Ok(PreparedArtifact {
            artifact: path.to_path_buf(),
            artifact_sha256: free.clone(),
            quantization: q,
            loaded: path.to_path_buf(),
            loaded_sha256: free,
            cache: CacheStatus::Source,
        });
    }
    let sha = artifact_sha256(&cache_root, path)?;
    // The report names the artifact wherever it is read from.
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if q.target().is_none() {
        return Ok(PreparedArtifact {
            artifact: path.to_path_buf(),
            artifact_sha256: Some(sha.clone()),
            quantization: q,
            loaded: path.to_path_buf(),
            loaded_sha256: Some(sha),
            cache: CacheStatus::Source,
        });
    }
    let cache = QuantCache::under(&cache_root);
    let Prepared {
        path: loaded,
        sha256,
        status,
        warnings,
    } = cache.prepare(path, &sha, q, threads, &mut |p| {
        progress(LoadProgress::Quantize {
            quantization: q,
            progress: &p,
        })
    })?;
    for w in warnings {
        let w = PlanProblem::warning(codes::QUANTIZE_WARNING, "/spec/quantization", w);
        progress(LoadProgress::Warning(&w));
    }
    Ok(PreparedArtifact {
        artifact: path.to_path_buf(),
        artifact_sha256: Some(sha),
        quantization: q,
        loaded,
        loaded_sha256: Some(sha256),
        cache: status,
    })
}

/// A cache blob's digest is its name (verified when stored).
fn free_digest(cache_root: &Path, path: &Path) -> Option<String> {
    let blobs = cache_root.join("blobs").join("sha256");
    (path.parent() == Some(blobs.as_path()))
        .then(|| path.file_name()?.to_str().map(str::to_string))
        .flatten()
        .filter(|n| ms_fetch::is_sha256_hex(n))
}
