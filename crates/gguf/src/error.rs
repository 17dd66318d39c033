//! [`GgufError`]: why a GGUF file could not be read or written, with the file and byte offset.

use std::path::PathBuf;

use crate::ValueType;

/// Why a GGUF file could not be read. Every variant says where (byte offset) and what.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a GGUF file (magic bytes {found:02x?}, expected \"GGUF\")")]
    BadMagic { path: PathBuf, found: Vec<u8> },
    #[error(
        "{path}: GGUF version {version} is not supported (versions 2 and 3 are; version 1 \
         files predate August 2023 and must be re-converted)"
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path}: file truncated at byte {offset}: needed {needed} more bytes for {what}")]
    Truncated {
        path: PathBuf,
        offset: u64,
        needed: u64,
        what: String,
    },
    #[error("{path}: invalid file at byte {offset}: {what}")]
    Invalid {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path}: cannot write GGUF: {what}")]
    Write { path: PathBuf, what: String },
    #[error("{path}: tensor '{tensor}': {what}")]
    BadTensor {
        path: PathBuf,
        tensor: String,
        what: String,
    },
}

/// A metadata lookup that failed: the key is missing or holds another type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetaError {
    #[error("metadata key '{key}' is missing")]
    Missing { key: String },
    #[error("metadata key '{key}' holds {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
}

impl MetaError {
    pub(crate) fn wrong(key: &str, expected: &'static str, found: ValueType) -> Self {
        MetaError::WrongType {
            key: key.to_string(),
            expected,
            found: found.to_string(),
        }
    }
}
