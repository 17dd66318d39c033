//! `modelspec signer serve`: the signing proxy's reference server (`ms_trust::proxy::server`) in
//! front of PKCS#11 keys or development key files, behind a bearer token read from a file.
//! Prints `listening on URL` and the keys served on stderr; the token is never printed.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use ms_trust::TrustError;
use ms_trust::codes::MT0402;
use ms_trust::proxy::server::{self, DEFAULT_MAX_BODY, ServeOptions};
use ms_trust::signer::{Signer, open_signer};

#[derive(ClapArgs)]
pub struct Args {
    /// A key to serve: `pkcs11:…` (an RFC 7512 URI; PIN from pin-source or
    /// MODELSPEC_PKCS11_PIN) or `file:KEY.pem` (a development key file: labelled
    /// development-only, never trusted for prod). Repeatable.
    #[arg(long, required = true, value_name = "REF")]
    pub backend: Vec<String>,
    /// Where to listen; anything but a loopback address needs --insecure.
    #[arg(long, default_value = "127.0.0.1:7300")]
    pub bind: SocketAddr,
    /// A file whose first line is the bearer token clients must send (at least 32
    /// characters: `openssl rand -hex 32 > FILE`).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Listen on a non-loopback address without TLS (behind a TLS-terminating proxy only).
    #[arg(long)]
    pub insecure: bool,
    /// No line per request on stderr.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let token = std::fs::read_to_string(&a.token_file)
        .with_context(|| {
            format!(
                "{MT0402}: cannot read the token file {}",
                a.token_file.display()
            )
        })?
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut signers: Vec<Arc<dyn Signer>> = Vec::new();
    for reference in &a.backend {
        if reference.starts_with("http://") || reference.starts_with("https://") {
            return Err(TrustError::new(
                MT0402,
                "a signing proxy's backend is a key it holds (`pkcs11:…` or `file:KEY.pem`), not \
                 another proxy",
            )
            .into());
        }
        signers.push(Arc::from(open_signer(reference)?));
    }
    let options = ServeOptions {
        max_body_bytes: a.max_body_bytes,
        insecure: a.insecure,
        log: !a.quiet,
        ..ServeOptions::new(a.bind, token)
    };
    let proxy = server::start(options, signers.clone())?;
    eprintln!(
        "modelspec signer serve: listening on http://{} (signing proxy protocol v1: GET /v1/keys, \
         POST /v1/sign)",
        proxy.addr
    );
    for s in &signers {
        let key = s.public_key();
        let label = if s.kind().development_only() {
            "DEVELOPMENT ONLY (a key file: refused for prod)"
        } else {
            "PKCS#11"
        };
        eprintln!("key {} {} — {label}", key.fingerprint(), key.algorithm());
    }
    eprintln!(
        "clients send 'Authorization: Bearer' with the token of {}",
        a.token_file.display()
    );
    if let Ok(meta) = std::fs::metadata(&a.token_file)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} is readable by other users (mode {:o}): chmod 600 it",
            a.token_file.display(),
            meta.permissions().mode() & 0o777
        );
    }
    eprintln!("Ctrl-C stops the server.");
    proxy.wait();
    Ok(ExitCode::SUCCESS)
}
