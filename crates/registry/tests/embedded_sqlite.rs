//! The conformance suite against the embedded registry over SQLite and a local blob store.

use std::path::PathBuf;
use std::sync::Arc;

use ms_registry::entity::{Principal, Role};
use ms_registry::{Digest, Embedded, Registry};
use ms_test_support::registry_suite::{self as suite, Ctx, Damage};

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: Ctx,
}

struct LocalDamage {
    reg: Embedded,
    store: PathBuf,
}

impl LocalDamage {
    fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.store.join("blobs/sha256").join(&hex[..2]).join(hex)
    }
}

#[async_trait::async_trait]
impl Damage for LocalDamage {
    async fn sql(&self, statement: &str) {
        let mut conn = self.reg.db().pool().acquire().await.unwrap();
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    async fn delete_blob(&self, d: &Digest) {
        std::fs::remove_file(self.blob_path(d)).unwrap();
    }
    async fn corrupt_blob(&self, d: &Digest) {
        let p = self.blob_path(d);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let store = dir.path().join("store");
    let admin = Principal {
        name: "os:suite".into(),
        role: Role::Admin,
    };
    let reg = Embedded::open(&db, &format!("file://{}", store.display()), admin)
        .await
        .unwrap();
    let connect_reg = reg.clone();
    let ctx = Ctx {
        admin: Arc::new(reg.clone()),
        connect: Box::new(move |token: String| {
            let reg = connect_reg.clone();
            Box::pin(async move {
                let who = reg.authenticate(&token).await?;
                Ok(Arc::new(reg.acting_as(who)) as Arc<dyn Registry>)
            })
        }),
        damage: Some(Arc::new(LocalDamage { reg, store })),
    };
    Fixture { _dir: dir, ctx }
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let f = fixture().await;
            suite::$name(&f.ctx).await;
        }
    )*};
}

suite_tests!(
    artifacts,
    models,
    missing_artifact_refused,
    invalid_spec_refused,
    datasets,
    lineage,
    promote_and_history,
    roles_and_tokens,
    audit_trail,
    hostile_input,
    concurrent_registration,
    check_finds_damage,
    provenance,
    provenance_tampering,
);

/// Signing keys and signatures (ms_test_support::signing_suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing() {
    let f = fixture().await;
    ms_test_support::signing_suite::signing(&f.ctx).await;
}

/// Edited signature and key rows are found by `check` and refused by verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_damage_found() {
    let f = fixture().await;
    ms_test_support::signing_suite::signature_damage_found(&f.ctx).await;
}

/// All checks one after another on one registry, as a long-lived registry sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_on_one_registry() {
    let f = fixture().await;
    let c = &f.ctx;
    suite::artifacts(c).await;
    suite::models(c).await;
    suite::missing_artifact_refused(c).await;
    suite::invalid_spec_refused(c).await;
    suite::datasets(c).await;
    suite::lineage(c).await;
    suite::promote_and_history(c).await;
    suite::roles_and_tokens(c).await;
    suite::audit_trail(c).await;
    suite::hostile_input(c).await;
    suite::concurrent_registration(c).await;
    suite::provenance(c).await;
    ms_test_support::signing_suite::signing(c).await;
    let report = c.admin.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test]
async fn reopening_checks_the_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = dir.path().join("s").display().to_string();
    let who = ms_registry::auth::os_principal();
    let reg = Embedded::open(&db, &store, who.clone()).await.unwrap();
    sqlx::query("UPDATE schema_migrations SET checksum = 'sha256:00' WHERE version = 1")
        .execute(reg.db().pool())
        .await
        .unwrap();
    let e = Embedded::open(&db, &store, who.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, "MG0002", "{e}");
    sqlx::query("DELETE FROM schema_migrations")
        .execute(reg.db().pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
         VALUES (999, 'future', 'x', 'now')",
    )
    .execute(reg.db().pool())
    .await
    .unwrap();
    let e = Embedded::open(&db, &store, who).await.err().unwrap();
    assert_eq!(e.code, "MG0003", "{e}");
    assert!(e.message.contains("999"), "{e}");
}

/// A database made by an older build (only version 1 applied) gets the later migrations at
/// the next open, and keeps its data.
#[tokio::test]
async fn an_older_database_is_migrated_forward() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = dir.path().join("s").display().to_string();
    let who = ms_registry::auth::os_principal();
    let reg = Embedded::open(&db, &store, who.clone()).await.unwrap();
    for stmt in [
        "DROP INDEX lineage_edges_down",
        "DROP INDEX lineage_edges_up",
        "CREATE INDEX lineage_edges_parent ON lineage_edges (parent, child)",
        "INSERT INTO lineage_edges (child, parent, relation) VALUES ('a', 'b', 'derivedFrom')",
        "DELETE FROM schema_migrations WHERE version > 1",
        // schema v3's tables, newest first (foreign keys)
        "DROP TABLE audit_cosignatures",
        "DROP TABLE audit_checkpoints",
        "DROP TABLE audit_hashes",
        "DROP TABLE signing_keys",
        "DROP TABLE provenance_records",
        "DROP TABLE manifest_signatures",
    ] {
        sqlx::query(stmt).execute(reg.db().pool()).await.unwrap();
    }
    drop(reg);
    let reg = Embedded::open(&db, &store, who).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(reg.db().pool())
            .await
            .unwrap();
    let newest = ms_registry::db::migrations::MIGRATIONS
        .last()
        .unwrap()
        .version;
    assert_eq!(versions, (1..=newest).collect::<Vec<_>>());
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lineage_edges' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(reg.db().pool())
    .await
    .unwrap();
    assert_eq!(indexes, ["lineage_edges_down", "lineage_edges_up"]);
    let edges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lineage_edges")
        .fetch_one(reg.db().pool())
        .await
        .unwrap();
    assert_eq!(edges, 1);
}

#[tokio::test]
async fn odd_file_names_and_missing_directories_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new dir/a%b #1?.db");
    let db = format!("sqlite://{}", path.display());
    let store = dir.path().join("s").display().to_string();
    let reg = Embedded::open(&db, &store, ms_registry::auth::os_principal())
        .await
        .unwrap();
    suite::upload(&reg, "x.bin", b"x").await;
    assert!(path.is_file(), "the file is where the user said");
}

/// Eight registries opening one new database at once (as eight CLI processes do) all get it
/// migrated once, then register versions of one model without a duplicate number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_openers_of_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = dir.path().join("s").display().to_string();
    let first = Embedded::open(&db, &store, ms_registry::auth::os_principal())
        .await
        .unwrap();
    let req = suite::model_fixture(&first, "race-open", "fam").await;
    drop(first);
    std::fs::remove_file(dir.path().join("r.db")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("r.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("r.db-shm"));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (db, store, mut req) = (db.clone(), store.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            let reg = Embedded::open(&db, &store, ms_registry::auth::os_principal())
                .await
                .unwrap();
            // The artifact row went with the old database: upload it again (same bytes).
            suite::upload(&reg, "race-open.gguf", b"weights of race-open").await;
            req.metrics.insert("run".into(), f64::from(i));
            reg.register_model(req).await.unwrap().record.version
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
}
