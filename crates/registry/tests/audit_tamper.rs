//! Tampering with the audit log directly in SQLite and PostgreSQL — a byte of an event
//! changed, an event deleted, two swapped, the log truncated, history rewritten and served as a
//! fork to two clients — and `audit verify`'s verifier, reading the registry's tiles, naming
//! each case.

mod audit;

use std::sync::Arc;

use audit::{Backend, Fixture, fixture};
use ms_registry::Registry;
use ms_registry::log::source::RegistrySource;
use ms_tlog::note::Verifier;
use ms_tlog::state::MemoryState;
use ms_tlog::verify::{Diagnosis, Finding, Options, Trust, verify};

const EVENTS: usize = 40;

/// One client's run of the verifier over the registry, with its kept state.
async fn run(f: &Fixture, state: MemoryState, since: Option<String>) -> (Diagnosis, MemoryState) {
    let reg: Arc<dyn Registry> = Arc::new(f.reg.clone());
    let trust = Trust::log(Verifier::parse(&f.log_key()).unwrap());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let source = RegistrySource::new(reg, handle);
        let mut state = state;
        let options = Options {
            since,
            check_seq: true,
        };
        let d = verify(&source, &mut state, &trust, &options).unwrap();
        (d, state)
    })
    .await
    .unwrap()
}

/// A registry with a verified log of `events`, and the state its client kept.
async fn verified_with(backend: Backend, events: usize) -> (Fixture, MemoryState) {
    let f = fixture(backend).await;
    f.events(events).await;
    let (d, state) = run(&f, MemoryState::default(), None).await;
    assert!(d.is_ok(), "{d}");
    assert_eq!(d.entries_checked, events as u64);
    (f, state)
}

async fn verified(backend: Backend) -> (Fixture, MemoryState) {
    verified_with(backend, EVENTS).await
}

fn names(d: &Diagnosis, want: impl Fn(&Finding) -> bool) {
    assert!(!d.is_ok(), "not detected");
    assert!(d.findings.iter().any(want), "not named as expected:\n{d}");
}

async fn changed_byte(backend: Backend) {
    let (f, state) = verified(backend).await;
    // One byte of one stored event: `os:auditor` -> `os:auditos`.
    f.sql("UPDATE audit_events SET actor = 'os:auditos' WHERE seq = 5")
        .await;
    let (d, _) = run(&f, state, None).await;
    names(&d, |x| matches!(x, Finding::Changed { seq: 5, .. }));
}

async fn deleted(backend: Backend) {
    let (f, state) = verified(backend).await;
    f.sql("DELETE FROM audit_events WHERE seq = 7").await;
    let (d, _) = run(&f, state, None).await;
    names(&d, |x| matches!(x, Finding::Removed { first: 7, last: 7 }));
}

async fn swapped(backend: Backend) {
    let (f, state) = verified(backend).await;
    f.sql("UPDATE audit_events SET seq = -3 WHERE seq = 3")
        .await;
    f.sql("UPDATE audit_events SET seq = 3 WHERE seq = 4").await;
    f.sql("UPDATE audit_events SET seq = 4 WHERE seq = -3")
        .await;
    let (d, _) = run(&f, state, None).await;
    names(&d, |x| {
        matches!(
            x,
            Finding::Reordered {
                position: 3,
                carries: 4
            }
        )
    });
    names(&d, |x| {
        matches!(
            x,
            Finding::Reordered {
                position: 4,
                carries: 3
            }
        )
    });
}

async fn truncated(backend: Backend) {
    let (f, state) = verified(backend).await;
    // The last events, their hashes and the checkpoints that covered them: the registry then
    // signs the shorter log as if it were all there is; the client remembers more.
    let keep = 30u64;
    f.sql(&format!("DELETE FROM audit_events WHERE seq > {keep}"))
        .await;
    f.sql(&format!(
        "DELETE FROM audit_hashes WHERE idx >= {}",
        ms_tlog::stored_hash_count(keep)
    ))
    .await;
    f.sql("DELETE FROM audit_checkpoints").await;
    let (d, _) = run(&f, state, None).await;
    names(&d, |x| {
        matches!(
            x,
            Finding::Truncated {
                kept_size: 40,
                size: 30
            }
        )
    });
}

async fn forked(backend: Backend) {
    // Past one full tile (256 entries), which the first client keeps: the fork is then
    // located to the entry.
    let (f, first_client) = verified_with(backend, 300).await;
    let seen_by_first = f.reg.audit_checkpoint().await.unwrap();
    // History rewritten by someone with the database's password: event 12 changed, the tree
    // rebuilt to match, the signed checkpoints dropped so that the registry signs the new
    // tree. A new client sees a consistent log; the first client sees the fork.
    f.sql("UPDATE audit_events SET subject = 'token:forged' WHERE seq = 12")
        .await;
    f.sql("DELETE FROM audit_cosignatures").await;
    f.sql("DELETE FROM audit_checkpoints").await;
    f.sql("DELETE FROM audit_hashes").await;
    ms_registry::db::Db::open(&f.db_url).await.unwrap();
    let (d, second_client) = run(&f, MemoryState::default(), None).await;
    assert!(d.is_ok(), "the rewritten log is consistent in itself: {d}");
    let (d, _) = run(&f, first_client, None).await;
    names(&d, |x| {
        matches!(
            x,
            Finding::Forked {
                size: 300,
                first_difference: Some(12),
                ..
            }
        )
    });
    // The second client, shown the checkpoint the first one saw (gossip, or a witness's),
    // finds the fork too.
    let (d, _) = run(&f, second_client, Some(seen_by_first)).await;
    names(&d, |x| matches!(x, Finding::Forked { size: 300, .. }));
}

macro_rules! on_both {
    ($($case:ident),*) => { $(
        mod $case {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$case(Backend::Postgres).await;
            }
        }
    )* };
}

on_both!(changed_byte, deleted, swapped, truncated, forked);
