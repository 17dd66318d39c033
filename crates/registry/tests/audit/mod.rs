//! What the audit-log tests share: a registry with a log key over SQLite or PostgreSQL, events
//! made cheaply (tokens), direct damage to its tables, and an Ed25519 test signer.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use ms_registry::entity::{Principal, Role, TokenRequest};
use ms_registry::log::LogConfig;
use ms_registry::{Embedded, Registry};
use ms_trust::{PublicKey, Signer, SignerKind};

/// An Ed25519 key in memory (the tests' log and witness keys).
pub struct TestSigner {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl TestSigner {
    pub fn new() -> TestSigner {
        let pair = Ed25519KeyPair::generate().unwrap();
        let raw: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        TestSigner {
            public: PublicKey::ed25519(&raw),
            pair,
        }
    }
}

impl Signer for TestSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }
    fn sign(&self, message: &[u8]) -> ms_trust::Result<Vec<u8>> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A registry with a log key, acting as an admin.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub db_url: String,
    pub store: String,
    pub reg: Embedded,
    pub signer: Arc<TestSigner>,
    pub origin: String,
}

pub fn admin() -> Principal {
    Principal {
        name: "os:auditor".into(),
        role: Role::Admin,
    }
}

pub async fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("registry.db").display()),
        Backend::Postgres => tokio::task::spawn_blocking(ms_test_support::postgres::database)
            .await
            .unwrap(),
    };
    let store = format!("file://{}", dir.path().join("store").display());
    let reg = Embedded::open(&db_url, &store, admin()).await.unwrap();
    let signer = Arc::new(TestSigner::new());
    let origin = "audit.test/log".to_string();
    reg.set_log(LogConfig::new(signer.clone(), Some(origin.clone()), &[]).unwrap());
    Fixture {
        _dir: dir,
        db_url,
        store,
        reg,
        signer,
        origin,
    }
}

impl Fixture {
    /// `n` more audit events (token creations).
    pub async fn events(&self, n: usize) {
        for _ in 0..n {
            let name = format!("t{}", next_id());
            self.reg
                .create_token(TokenRequest {
                    name,
                    role: Role::Reader,
                })
                .await
                .unwrap();
        }
    }

    /// Runs `statement` on the database directly, as someone with its password would.
    pub async fn sql(&self, statement: &str) {
        let mut conn = self.reg.db().pool().acquire().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }

    /// The log's verifier key text.
    pub fn log_key(&self) -> String {
        self.reg
            .log_config()
            .unwrap()
            .verifier_key_text(&self.origin)
            .unwrap()
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
