//! The registry conformance suite against `Remote`, the HTTP client, talking to an in-process
//! control plane on loopback: over SQLite + a local directory, and over PostgreSQL + SeaweedFS
//! S3 (a throwaway PostgreSQL and a real S3 server from ms-test-support). The same behaviours,
//! errors and messages as the embedded registry.

mod common;

use std::sync::Arc;

use ms_registry::blob::{BlobOptions, BlobStore, S3Config, Secret};
use ms_registry::db::Db;
use ms_registry::remote::Remote;
use ms_registry::{Embedded, Registry};
use ms_test_support::registry_suite::{self as suite, Ctx, Damage};

struct Fixture {
    _plane: common::Plane,
    ctx: Ctx,
}

async fn sqlite() -> Fixture {
    fixture(common::plane().await)
}

async fn postgres_s3() -> Fixture {
    let (db, bucket) = tokio::task::spawn_blocking(|| {
        (
            ms_test_support::postgres::database(),
            ms_test_support::seaweed::bucket(),
        )
    })
    .await
    .unwrap();
    let sw = ms_test_support::seaweed::seaweed();
    let s3 = S3Config {
        endpoint: Some(sw.endpoint.clone()),
        region: Some(sw.region.clone()),
        access_key_id: Some(sw.access_key.clone()),
        secret_access_key: Some(Secret::new(sw.secret_key.clone())),
        session_token: None,
        allow_http: true,
    };
    let store = BlobStore::open_with(
        &format!("s3://{bucket}/registry"),
        s3,
        BlobOptions::default(),
    )
    .await
    .unwrap();
    let embedded = Embedded::with_parts(
        Db::open(&db).await.unwrap(),
        store,
        common::admin_principal(),
    );
    let dir = tempfile::tempdir().unwrap();
    fixture(common::plane_over(dir, embedded).await)
}

fn fixture(plane: common::Plane) -> Fixture {
    let url = plane.url.clone();
    let ctx = Ctx {
        admin: common::remote(&plane, &plane.admin),
        connect: Box::new(move |token: String| {
            let url = url.clone();
            Box::pin(async move {
                let remote = Remote::new(&url, &token)?;
                // A refused token is refused here, as the embedded connect refuses it.
                remote.whoami().await?;
                Ok(Arc::new(remote) as Arc<dyn Registry>)
            })
        }),
        damage: Some(Arc::new(BehindTheServer(plane.embedded.clone()))),
    };
    Fixture { _plane: plane, ctx }
}

/// Damage done to the server's database directly, behind its back (the server keeps
/// answering from it): what the tamper checks need over HTTP. Blobs are not damaged here.
struct BehindTheServer(Embedded);

#[async_trait::async_trait]
impl Damage for BehindTheServer {
    async fn sql(&self, statement: &str) {
        use ms_registry::db::Backend;
        let (off, on) = match self.0.db().backend() {
            Backend::Sqlite => ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"),
            Backend::Postgres => (
                "SET session_replication_role = replica",
                "SET session_replication_role = DEFAULT",
            ),
        };
        let mut conn = self.0.db().pool().acquire().await.unwrap();
        for s in [off, statement, on] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
    async fn delete_blob(&self, _: &ms_registry::Digest) {
        unreachable!("the remote suite damages rows only")
    }
    async fn corrupt_blob(&self, _: &ms_registry::Digest) {
        unreachable!("the remote suite damages rows only")
    }
}

macro_rules! suite_tests {
    ($fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let f = $fixture().await;
            suite::$name(&f.ctx).await;
        }
    )*};
}

macro_rules! the_suite {
    ($fixture:path) => {
        suite_tests!($fixture;
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
    provenance,
    provenance_tampering,
        );
    };
}

mod over_sqlite {
    use super::*;
    the_suite!(super::sqlite);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signing() {
        let f = super::sqlite().await;
        ms_test_support::signing_suite::signing(&f.ctx).await;
    }
}

mod over_postgres_and_s3 {
    use super::*;
    the_suite!(super::postgres_s3);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signing() {
        let f = super::postgres_s3().await;
        ms_test_support::signing_suite::signing(&f.ctx).await;
    }
}
