//! Where a blob store is and how it behaves: the store URL (`file:///dir`, a path,
//! `s3://bucket/prefix`), the S3 connection (from the AWS environment variables or given
//! explicitly; the secret never printed), and the size options.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::blob::codes::*;
use crate::error::{ErrorKind, RegistryError, Result};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last).
pub const S3_MIN_PART: u64 = 5 * MIB;
/// S3's most parts per multipart upload.
pub const S3_MAX_PARTS: u64 = 10_000;

/// A parsed store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl StoreUrl {
    /// `file:///abs/dir`, a plain path (made absolute against the current directory), or
    /// `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let bad = |why: &str| {
            RegistryError::new(
                ErrorKind::Invalid,
                MG0100,
                format!("blob store {url:?}: {why}"),
            )
            .hint("use file:///absolute/dir, a directory path, or s3://bucket/prefix")
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !bucket_ok {
                return Err(bad("the bucket name must be 3-63 of a-z, 0-9, '-' and '.'"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|c| c == "." || c == "..")
                || prefix.contains("//")
                || prefix.chars().any(|c| c.is_control())
            {
                return Err(bad(
                    "the prefix must not contain empty, '.' or '..' segments",
                ));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        let path = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("a file:// URL needs an absolute path (file:///dir)"));
            }
            PathBuf::from(rest)
        } else if url.contains("://") {
            return Err(bad("unknown scheme"));
        } else if url.is_empty() {
            return Err(bad("empty location"));
        } else {
            PathBuf::from(url)
        };
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| bad(&format!("no current directory: {e}")))?
                .join(path)
        };
        Ok(StoreUrl::Local(path))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Local(p) => write!(f, "file://{}", p.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A secret string: compared and used, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach an S3 server. `Debug` never shows the secret key or the session token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:8333`; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
}

impl S3Config {
    /// From AWS_ENDPOINT_URL (or AWS_ENDPOINT), AWS_REGION (or AWS_DEFAULT_REGION),
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_ALLOW_HTTP.
    pub fn from_env() -> S3Config {
        S3Config::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`S3Config::from_env`], with the variables looked up by `get` (empty means unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> S3Config {
        let var = |names: &[&str]| names.iter().find_map(|n| get(n).filter(|v| !v.is_empty()));
        let allow_http = match var(&["AWS_ALLOW_HTTP"]) {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
            None => false,
        };
        S3Config {
            endpoint: var(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: var(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: var(&["AWS_ACCESS_KEY_ID"]),
            secret_access_key: var(&["AWS_SECRET_ACCESS_KEY"]).map(Secret),
            session_token: var(&["AWS_SESSION_TOKEN"]).map(Secret),
            allow_http,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let mut missing = Vec::new();
        if self.region.is_none() {
            missing.push("AWS_REGION (or AWS_DEFAULT_REGION)");
        }
        if self.access_key_id.is_none() {
            missing.push("AWS_ACCESS_KEY_ID");
        }
        if self.secret_access_key.is_none() {
            missing.push("AWS_SECRET_ACCESS_KEY");
        }
        if !missing.is_empty() {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                MG0101,
                format!("S3 store: missing {}", missing.join(", ")),
            )
            .hint("set them in the environment (or in the S3 configuration given to the store)"));
        }
        if let Some(e) = &self.endpoint {
            if e.starts_with("http://") && !self.allow_http {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    MG0101,
                    format!("S3 store: the endpoint {e} is plain http"),
                )
                .hint("set AWS_ALLOW_HTTP=true to allow it (local test servers), or use https"));
            }
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    MG0101,
                    format!("S3 store: the endpoint {e:?} is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }
}

/// Sizes and limits of a store. The defaults suit artifacts of a few GiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOptions {
    /// The largest blob accepted (declared or streamed). Default 64 GiB.
    pub max_blob_size: u64,
    /// S3: a one-shot upload up to this size is one PUT (buffered in memory); above it, a
    /// multipart upload. Default 16 MiB.
    pub multipart_threshold: u64,
    /// S3 part size, and how often a resumable session makes its progress durable (both
    /// backends). At least 5 MiB on S3; raised so that `max_blob_size` fits in 10,000 parts.
    /// Default 16 MiB.
    pub part_size: u64,
    /// The size of the chunks at whose boundaries the `.chunks` index keeps the digest's
    /// SHA-256 state (ranged reads verify whole chunks). A multiple of 64. Default 4 MiB.
    pub chunk_size: u64,
    /// Upload sessions and temporary files older than this are reported as abandoned by
    /// `check()`. Default 24 hours.
    pub upload_ttl: Duration,
    /// Read and write buffer size. Default 4 MiB.
    pub buffer_size: usize,
}

impl Default for BlobOptions {
    fn default() -> BlobOptions {
        BlobOptions {
            max_blob_size: 64 * 1024 * MIB,
            multipart_threshold: 16 * MIB,
            part_size: 16 * MIB,
            chunk_size: 4 * MIB,
            upload_ttl: Duration::from_secs(24 * 3600),
            buffer_size: 4 * MIB as usize,
        }
    }
}

impl BlobOptions {
    pub(crate) fn validate(&mut self, s3: bool) -> Result<()> {
        let bad = |what: String| RegistryError::new(ErrorKind::Invalid, MG0114, what);
        // A multiple of SHA-256's 64-byte block: the chunk index keeps the hash's chaining
        // value at every chunk boundary (see `read.rs`).
        if self.chunk_size == 0
            || self.chunk_size > 256 * MIB
            || !self.chunk_size.is_multiple_of(64)
        {
            return Err(bad(format!(
                "chunk size {} must be a multiple of 64 bytes, at most 256 MiB",
                self.chunk_size
            )));
        }
        if self.buffer_size == 0 {
            return Err(bad("buffer size must not be zero".into()));
        }
        if self.part_size == 0 || self.part_size > 1024 * MIB {
            return Err(bad(format!(
                "part size {} must be between 1 byte and 1 GiB",
                self.part_size
            )));
        }
        if s3 {
            if self.part_size < S3_MIN_PART {
                return Err(bad(format!(
                    "S3 part size {} is below S3's minimum of 5 MiB",
                    self.part_size
                )));
            }
            let needed = self.max_blob_size.div_ceil(S3_MAX_PARTS);
            self.part_size = self.part_size.max(needed);
            self.multipart_threshold = self
                .multipart_threshold
                .min(self.part_size.max(S3_MIN_PART));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("file:///var/x").unwrap(),
            StoreUrl::Local("/var/x".into())
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/a/b/").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").unwrap().to_string(),
            "s3://my-bucket"
        );
        for bad in ["file://rel", "s3://B", "s3://ok-bucket/../x", "ftp://x", ""] {
            let e = StoreUrl::parse(bad).unwrap_err();
            assert_eq!(e.code, MG0100, "{bad}");
        }
    }

    #[test]
    fn aws_variables() {
        let vars = [
            ("AWS_ENDPOINT", "http://127.0.0.1:9"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_REGION", ""),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "shh"),
            ("AWS_ALLOW_HTTP", "TRUE"),
        ];
        let get = |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let c = S3Config::from_vars(get);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            c.region.as_deref(),
            Some("eu-west-3"),
            "empty AWS_REGION is unset"
        );
        assert_eq!(c.access_key_id.as_deref(), Some("AKID"));
        assert_eq!(c.secret_access_key, Some(Secret::new("shh")));
        assert!(c.allow_http && c.session_token.is_none());
        c.validate().unwrap();
        let first = |n: &str| match n {
            "AWS_ENDPOINT_URL" => Some("https://s3.example".to_string()),
            "AWS_ENDPOINT" => Some("http://ignored".to_string()),
            _ => None,
        };
        let c = S3Config::from_vars(first);
        assert_eq!(c.endpoint.as_deref(), Some("https://s3.example"));
        let e = c.validate().unwrap_err();
        assert_eq!(e.code, MG0101);
        assert!(e.message.contains("AWS_REGION") && e.message.contains("AWS_SECRET_ACCESS_KEY"));
        let plain = S3Config {
            allow_http: false,
            ..S3Config::from_vars(get)
        };
        assert!(
            plain
                .validate()
                .unwrap_err()
                .to_string()
                .contains("AWS_ALLOW_HTTP")
        );
    }

    #[test]
    fn secrets_never_shown() {
        let c = S3Config {
            secret_access_key: Some(Secret::new("hunter2")),
            session_token: Some(Secret::new("tok-secret")),
            ..S3Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-secret"),
            "{shown}"
        );
        let e = c.validate().unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
