//! The registry conformance suite against `Remote`, the HTTP client, talking to an in-process
//! control plane on loopback over SQLite + a local directory: the same behaviours, errors
//! and messages as the embedded registry.

mod common;

use std::sync::Arc;

use ms_registry::Registry;
use ms_registry::remote::Remote;
use ms_test_support::registry_suite::{self as suite, Ctx};

struct Fixture {
    _plane: common::Plane,
    ctx: Ctx,
}

async fn fixture() -> Fixture {
    let plane = common::plane().await;
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
);
