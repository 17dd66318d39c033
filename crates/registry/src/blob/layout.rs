//! Names inside a store, relative to its root (a directory or an S3 prefix), and the strict
//! checks on the parts that come from outside (upload ids, digests): nothing from a request
//! is ever joined into a path unchecked.

use crate::blob::codes::*;
use crate::digest::Digest;
use crate::error::{ErrorKind, RegistryError, Result};

pub const BLOBS: &str = "blobs/sha256";
pub const UPLOADS: &str = "uploads";
/// The suffix of a blob's chunk index.
pub const CHUNKS_SUFFIX: &str = ".chunks";

/// `blobs/sha256/<hh>/<hex>`.
pub fn blob_key(d: &Digest) -> String {
    let hex = d.hex();
    format!("{BLOBS}/{}/{hex}", &hex[..2])
}

/// `blobs/sha256/<hh>/<hex>.chunks`.
pub fn chunks_key(d: &Digest) -> String {
    format!("{}{CHUNKS_SUFFIX}", blob_key(d))
}

pub fn upload_dir(id: &UploadId) -> String {
    format!("{UPLOADS}/{}", id.0)
}

pub fn state_key(id: &UploadId) -> String {
    format!("{}/state.json", upload_dir(id))
}

pub fn data_key(id: &UploadId) -> String {
    format!("{}/data", upload_dir(id))
}

/// Parses a key under `blobs/` back into what it is.
pub enum BlobEntry {
    Blob(Digest),
    Chunks(Digest),
    Stray,
}

pub fn parse_blob_key(key: &str) -> BlobEntry {
    let Some(rest) = key.strip_prefix(BLOBS).and_then(|r| r.strip_prefix('/')) else {
        return BlobEntry::Stray;
    };
    let Some((hh, name)) = rest.split_once('/') else {
        return BlobEntry::Stray;
    };
    let (hex, chunks) = match name.strip_suffix(CHUNKS_SUFFIX) {
        Some(hex) => (hex, true),
        None => (name, false),
    };
    match Digest::from_hex(hex) {
        Ok(d) if hex.starts_with(hh) && hh.len() == 2 => {
            if chunks {
                BlobEntry::Chunks(d)
            } else {
                BlobEntry::Blob(d)
            }
        }
        _ => BlobEntry::Stray,
    }
}

/// An upload session's id: 128 random bits as 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn random() -> Result<UploadId> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| {
            RegistryError::new(
                ErrorKind::Internal,
                MG0112,
                format!("no randomness for an upload id: {e}"),
            )
        })?;
        Ok(UploadId(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    /// Strict: exactly 32 of `0-9a-f`.
    pub fn parse(s: &str) -> Result<UploadId> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(UploadId(s.to_string()))
        } else {
            let shown: String = s.chars().take(80).collect();
            Err(RegistryError::new(
                ErrorKind::Invalid,
                MG0102,
                format!("{shown:?} is not an upload id: expected 32 lowercase hex digits"),
            )
            .at("/uploadId")
            .hint("use the uploadId that starting the upload returned"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_strict() {
        let id = UploadId::random().unwrap();
        assert_eq!(UploadId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "../../../../etc/passwd",
            "0123456789abcdef0123456789abcdeF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef/123456789abcdef",
            "..23456789abcdef0123456789abcdef",
        ] {
            assert_eq!(UploadId::parse(bad).unwrap_err().code, MG0102, "{bad}");
        }
    }

    #[test]
    fn keys_round_trip() {
        let d = Digest::of(b"x");
        assert!(matches!(parse_blob_key(&blob_key(&d)), BlobEntry::Blob(x) if x == d));
        assert!(matches!(parse_blob_key(&chunks_key(&d)), BlobEntry::Chunks(x) if x == d));
        let wrong_dir = format!("{BLOBS}/zz/{}", d.hex());
        assert!(matches!(parse_blob_key(&wrong_dir), BlobEntry::Stray));
        assert!(matches!(
            parse_blob_key("blobs/sha256/ab/notes.txt"),
            BlobEntry::Stray
        ));
    }
}
