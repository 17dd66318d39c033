//! How `modelspec registry serve` is told to run: where the store is, where to listen, TLS
//! and client certificates, and the limits, with their defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ms_registry::entity::Role;

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The metadata database: `sqlite://PATH` or `postgres://…`.
    pub db: String,
    /// The blob store: `file:///DIR`, a path, or `s3://bucket/prefix`.
    pub store: String,
    /// Default 127.0.0.1. Anything but a loopback address needs [`ServeConfig::tls`] or
    /// [`ServeConfig::insecure`].
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub tls: Option<TlsFiles>,
    /// Client certificate subject CN -> role, for `tls.client_ca`.
    pub cert_roles: BTreeMap<String, Role>,
    /// Bind a non-loopback address without TLS.
    pub insecure: bool,
    pub limits: Limits,
    /// The audit log's key and witnesses; without it the log serves tiles and proofs but
    /// signs no checkpoint.
    pub log: Option<std::sync::Arc<ms_registry::log::LogConfig>>,
}

impl ServeConfig {
    /// Loopback, a free port, no TLS, the default limits.
    pub fn new(db: impl Into<String>, store: impl Into<String>) -> ServeConfig {
        ServeConfig {
            db: db.into(),
            store: store.into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: None,
            cert_roles: BTreeMap::new(),
            insecure: false,
            limits: Limits::default(),
            log: None,
        }
    }
}

/// PEM files of the server's TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates client certificates must chain to; when set, every connection must
    /// present one.
    pub client_ca: Option<PathBuf>,
}

/// What a request may take. Uploads are streamed and bounded by the blob store's size limit,
/// not by `max_json_body`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON body (16 MiB: a spec text with room to spare).
    pub max_json_body: usize,
    /// Largest request head, all headers together (32 KiB); above it, 431.
    pub max_header_bytes: usize,
    /// Most headers in a request (100); above it, 431.
    pub max_headers: usize,
    /// Time for a request's head to arrive, and for an idle keep-alive connection to send its
    /// next request (20 s). Also bounds the TLS handshake.
    pub header_read: Duration,
    /// Longest pause in a request body before it is abandoned with 408 (60 s).
    pub body_stall: Duration,
    /// Connections served at once; more wait in the kernel's backlog (1024).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_json_body: 16 << 20,
            max_header_bytes: 32 << 10,
            max_headers: 100,
            header_read: Duration::from_secs(20),
            body_stall: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}
