//! The run report: what was decided (the effective plan), where (the machine), on what (the
//! model's digests), what came out (the token digest) and what it cost (the metrics).
//!
//! Token digest encoding: `sha256:` followed by the lowercase hex SHA-256 of the token ids,
//! each written as 4 bytes little-endian (u32), in order, nothing else. Two runs produced the
//! same tokens exactly when their digests are equal.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::machine::Machine;
use crate::metrics::Metrics;
use crate::quant_cache::CacheStatus;

/// The report format; bumped when a field changes meaning.
pub const REPORT_FORMAT: &str = "modelspec.run-report/v1";

/// `sha256:<hex>` of the token ids as u32 little-endian.
pub fn token_digest(tokens: &[u32]) -> String {
    let mut h = Sha256::new();
    for t in tokens {
        h.update(t.to_le_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The model that ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRecord {
    /// The logical artifact, as resolved.
    pub artifact: PathBuf,
    pub artifact_sha256: String,
    /// `source`, or the quantization it was converted to at load.
    pub quantization: String,
    /// The file loaded (the artifact itself for `source`, else the cache entry).
    pub loaded: PathBuf,
    pub loaded_sha256: String,
    pub cache: CacheStatus,
    pub architecture: String,
}

/// The tokens in and out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub prompt_digest: String,
    pub generated_digest: String,
    pub generated_count: usize,
    /// How the digests are computed.
    pub digest_encoding: &'static str,
    pub stop_reason: String,
}

pub const DIGEST_ENCODING: &str = "sha256 of the token ids as u32 little-endian, concatenated";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub format: &'static str,
    /// The modelspec version that ran.
    pub modelspec: &'static str,
    /// The effective plan: every decision written out. A JSON value until the ExecutionPlan
    /// type of ms-spec is wired in.
    pub plan: serde_json::Value,
    pub machine: Machine,
    pub model: ModelRecord,
    pub tokens: TokenRecord,
    pub metrics: Metrics,
}

impl RunReport {
    pub fn new(
        plan: serde_json::Value,
        model: ModelRecord,
        tokens: TokenRecord,
        metrics: Metrics,
    ) -> Self {
        Self {
            format: REPORT_FORMAT,
            modelspec: env!("CARGO_PKG_VERSION"),
            plan,
            machine: Machine::detect(),
            model,
            tokens,
            metrics,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the report as JSON (temporary file + rename, [`ms_fetch::write_atomic`]).
    pub fn write(&self, path: &Path) -> Result<(), ms_fetch::FetchError> {
        let mut json = self.to_json();
        json.push('\n');
        ms_fetch::write_atomic(path, json.as_bytes())
    }
}

impl TokenRecord {
    pub fn new(prompt: &[u32], generated: &[u32], stop_reason: String) -> Self {
        Self {
            prompt_digest: token_digest(prompt),
            generated_digest: token_digest(generated),
            generated_count: generated.len(),
            digest_encoding: DIGEST_ENCODING,
            stop_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_digest_is_sha256_of_little_endian_u32s() {
        // sha256 of the empty input.
        assert_eq!(
            token_digest(&[]),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let manual = Sha256::digest([1u8, 0, 0, 0, 0, 1, 0, 0]);
        let hex: String = manual.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(token_digest(&[1, 256]), format!("sha256:{hex}"));
        assert_ne!(token_digest(&[1, 2]), token_digest(&[2, 1]));
    }
}
