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
use ms_test_support::registry_suite::{self as suite, Ctx};

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
        damage: None,
    };
    Fixture { _plane: plane, ctx }
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
