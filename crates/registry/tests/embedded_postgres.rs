//! The conformance suite against the embedded registry over PostgreSQL (a throwaway server)
//! and SeaweedFS S3 (a real S3 server), both started by the test setup.

use std::sync::Arc;

use ms_registry::blob::{BlobOptions, BlobStore, S3Config, Secret};
use ms_registry::db::Db;
use ms_registry::entity::{Principal, Role};
use ms_registry::{Digest, Embedded, Registry};
use ms_test_support::registry_suite::{self as suite, Ctx, Damage};
use object_store::{ObjectStoreExt, PutPayload};

const PREFIX: &str = "registry";

struct S3Damage {
    reg: Embedded,
    s3: object_store::aws::AmazonS3,
}

impl S3Damage {
    fn key(d: &Digest) -> object_store::path::Path {
        let hex = d.hex();
        object_store::path::Path::from(format!("{PREFIX}/blobs/sha256/{}/{hex}", &hex[..2]))
    }
}

#[async_trait::async_trait]
impl Damage for S3Damage {
    async fn sql(&self, statement: &str) {
        // Foreign keys are triggers in PostgreSQL: replica mode skips them (the test server's
        // user is a superuser).
        let mut conn = self.reg.db().pool().acquire().await.unwrap();
        sqlx::raw_sql("SET session_replication_role = replica")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql("SET session_replication_role = DEFAULT")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    async fn delete_blob(&self, d: &Digest) {
        self.s3.delete(&Self::key(d)).await.unwrap();
    }
    async fn corrupt_blob(&self, d: &Digest) {
        let key = Self::key(d);
        let mut bytes = self
            .s3
            .get(&key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        bytes[0] ^= 0xff;
        self.s3.put(&key, PutPayload::from(bytes)).await.unwrap();
    }
}

struct Fixture {
    ctx: Ctx,
}

async fn fixture() -> Fixture {
    let (db_url, bucket) = tokio::task::spawn_blocking(|| {
        (
            ms_test_support::postgres::database(),
            ms_test_support::seaweed::bucket(),
        )
    })
    .await
    .unwrap();
    let sw = ms_test_support::seaweed::seaweed();
    let cfg = S3Config {
        endpoint: Some(sw.endpoint.clone()),
        region: Some(sw.region.clone()),
        access_key_id: Some(sw.access_key.clone()),
        secret_access_key: Some(Secret::new(sw.secret_key.clone())),
        session_token: None,
        allow_http: true,
    };
    let store = BlobStore::open_with(
        &format!("s3://{bucket}/{PREFIX}"),
        cfg,
        BlobOptions::default(),
    )
    .await
    .unwrap();
    let admin = Principal {
        name: "os:suite".into(),
        role: Role::Admin,
    };
    let reg = Embedded::with_parts(Db::open(&db_url).await.unwrap(), store, admin);
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_endpoint(&sw.endpoint)
        .with_region(&sw.region)
        .with_access_key_id(&sw.access_key)
        .with_secret_access_key(&sw.secret_key)
        .with_allow_http(true)
        .build()
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
        damage: Some(Arc::new(S3Damage { reg, s3 })),
    };
    Fixture { ctx }
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
    let url = tokio::task::spawn_blocking(ms_test_support::postgres::database)
        .await
        .unwrap();
    let db = Db::open(&url).await.unwrap();
    sqlx::query("UPDATE schema_migrations SET checksum = 'sha256:00' WHERE version = 1")
        .execute(db.pool())
        .await
        .unwrap();
    let e = Db::open(&url).await.err().unwrap();
    assert_eq!(e.code, "MG0002", "{e}");
    sqlx::query("DELETE FROM schema_migrations")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
         VALUES (999, 'future', 'x', 'now')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let e = Db::open(&url).await.err().unwrap();
    assert_eq!(e.code, "MG0003", "{e}");
}
