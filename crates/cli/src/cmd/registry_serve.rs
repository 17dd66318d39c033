//! `modelspec registry serve`: the registry's control plane over HTTP(S). It serves the same
//! database and blob store an embedded registry uses (`--db`, `--store`; by default the local
//! registry under the data directory) through `ms_control`, prints `listening on URL` on
//! stderr, and stops on Ctrl-C or SIGTERM after the requests in flight.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use ms_control::{ServeConfig, TlsFiles};
use ms_registry::RegistryError;
use ms_registry::entity::Role;
use ms_registry::locate::{self, Location, Settings};

use super::connect::{bad_value, report};

#[derive(ClapArgs)]
pub struct Args {
    /// The metadata database: sqlite://PATH or postgres://USER@HOST/DB. Default: the local
    /// registry's SQLite file under the data directory.
    #[arg(long, env = "MODELSPEC_REGISTRY_DB", value_name = "URL")]
    pub db: Option<String>,
    /// The blob store: file://DIR or a directory, or s3://BUCKET/PREFIX (AWS_* variables give
    /// the endpoint and credentials). Default: `blobs/` beside a SQLite file.
    #[arg(long, env = "MODELSPEC_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// The address to bind; anything but loopback needs --tls-cert/--tls-key or --insecure.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port; 0 picks a free one (printed on stderr).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// The server's certificate chain (PEM, leaf first): serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: every connection must
    /// present one (mTLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// A client certificate's subject CN and its role, e.g. `--cert-role ci-bot=writer`
    /// (repeatable).
    #[arg(long, value_name = "CN=ROLE")]
    pub cert_role: Vec<String>,
    /// Bind a non-loopback address without TLS (e.g. behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure: bool,
    /// The largest JSON request body, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_json_bytes: Option<usize>,
    /// The audit log's key (Ed25519), which signs its checkpoints: a PKCS#11 URI, a signing
    /// proxy URL or a key file. Default for a SQLite registry: a development key file beside
    /// the database (`log-key.dev.pem`, made on first use); a PostgreSQL registry without one
    /// serves tiles but signs no checkpoint.
    #[arg(long, env = "MODELSPEC_LOG_SIGNER", value_name = "REF")]
    pub log_signer: Option<String>,
    /// The log's origin, the first line of every checkpoint (fixed by the first checkpoint).
    /// Default: `modelspec.local/<first 16 hex digits of the log key's fingerprint>`.
    #[arg(long, env = "MODELSPEC_LOG_ORIGIN", value_name = "ORIGIN")]
    pub log_origin: Option<String>,
    /// A witness whose cosignatures the log accepts, as its C2SP verifier key
    /// (`<name>+<hex id>+<base64 key>`, printed by `modelspec audit witness`); repeatable.
    #[arg(long, value_name = "VKEY")]
    pub witness: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = match config(&a) {
        Ok(c) => c,
        Err(e) => return Ok(report(&e, false)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let log = match ms_registry::log::key::configure(
            &config.db,
            &ms_registry::log::key::LogSettings {
                signer: a.log_signer.clone(),
                origin: a.log_origin.clone(),
                witnesses: a.witness.clone(),
            },
        ) {
            Ok(l) => l,
            Err(e) => return Ok(report(&e, false)),
        };
        let mut config = config;
        config.log = log.clone();
        let server = match ms_control::serve(&config).await {
            Ok(s) => s,
            Err(e) => return Ok(report(&e, false)),
        };
        let url = server.url();
        eprintln!("modelspec registry serve: listening on {url} (API at {url}/openapi.json)");
        eprintln!(
            "registry: {} + {}",
            locate::redact_userinfo(&config.db),
            locate::redact_userinfo(&config.store)
        );
        match &config.tls {
            None => eprintln!("TLS: off (plain HTTP)"),
            Some(t) if t.client_ca.is_some() => eprintln!(
                "TLS: on; client certificates required ({} CN role(s))",
                config.cert_roles.len()
            ),
            Some(_) => eprintln!("TLS: on"),
        }
        match &log {
            Some(l) if l.development() => eprintln!(
                "audit log: checkpoints signed with a DEVELOPMENT key file ({}); give \
                 --log-signer for a registry others rely on",
                l.public_key().fingerprint()
            ),
            Some(l) => eprintln!(
                "audit log: checkpoints signed by {}",
                l.public_key().fingerprint()
            ),
            None => eprintln!("audit log: no --log-signer; tiles served, no checkpoint signed"),
        }
        eprintln!(
            "every call but /healthz and /openapi.json needs 'Authorization: Bearer TOKEN' \
             (make one: modelspec registry token create --registry DB --name NAME --role ROLE)"
        );
        eprintln!("Ctrl-C stops the server.");
        stopped().await;
        eprintln!("modelspec registry serve: stopping after the requests in flight");
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn config(a: &Args) -> Result<ServeConfig, RegistryError> {
    let location = locate::resolve(&Settings {
        registry: a.db.clone(),
        store: a.store.clone(),
        token: None,
        data_dir: None,
    })?;
    let Location::Embedded { db, store } = location else {
        return Err(bad_value(
            "--db",
            a.db.as_deref().unwrap_or_default(),
            "a database to serve: sqlite://PATH or postgres://USER@HOST/DB (an http(s) URL is \
             another control plane)",
        ));
    };
    let mut config = ServeConfig::new(db.url(), store);
    config.host = a.host;
    config.port = a.port;
    config.insecure = a.insecure;
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        config.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: a.client_ca.clone(),
        });
    }
    config.cert_roles = cert_roles(&a.cert_role)?;
    if let Some(n) = a.max_json_bytes {
        config.limits.max_json_body = n;
    }
    Ok(config)
}

fn cert_roles(given: &[String]) -> Result<BTreeMap<String, Role>, RegistryError> {
    let mut out = BTreeMap::new();
    for g in given {
        let expected = "CN=ROLE, the role one of reader, writer, approver, admin";
        let Some((cn, role)) = g.rsplit_once('=') else {
            return Err(bad_value("--cert-role", g, expected));
        };
        let role = ms_registry::auth::parse_role(role)
            .map_err(|_| bad_value("--cert-role", g, expected))?;
        if cn.is_empty() {
            return Err(bad_value("--cert-role", g, expected));
        }
        if out.insert(cn.to_string(), role).is_some() {
            return Err(bad_value("--cert-role", g, "each CN given one role, once"));
        }
    }
    Ok(out)
}
