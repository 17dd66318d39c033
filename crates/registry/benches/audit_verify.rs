//! `modelspec audit verify` of a log of 1,000,000 events: the events and their stored hashes
//! are bulk-loaded into a SQLite registry (as a registry that has run for years holds them),
//! a checkpoint is signed, then the verifier reads every tile through the embedded registry
//! (`RegistrySource`, exactly what the CLI does for a local registry), recomputes every leaf
//! and tree hash and checks the signed root, with its state kept in a directory. A second
//! run after 1,000 more events measures the incremental check.
//!
//! `cargo bench -p ms-registry --bench audit_verify [-- --events N]`

use std::sync::Arc;
use std::time::Instant;

use ms_registry::audit::event_digest;
use ms_registry::db::Db;
use ms_registry::digest::Digest;
use ms_registry::entity::{AuditEvent, Principal, Role};
use ms_registry::log::LogConfig;
use ms_registry::log::entry::RawEvent;
use ms_registry::log::source::RegistrySource;
use ms_registry::{Embedded, Registry};
use ms_tlog::Hash;
use ms_tlog::note::Verifier;
use ms_tlog::state::DirState;
use ms_tlog::verify::{Options, Trust, verify};

fn event(seq: u64) -> AuditEvent {
    let mut e = AuditEvent {
        seq,
        at: format!(
            "2026-12-07T02:{:02}:{:02}.{:03}Z",
            seq / 60_000 % 60,
            seq / 1000 % 60,
            seq % 1000
        ),
        actor: "os:ci-bot".into(),
        actor_role: Role::Writer,
        action: "model.register".into(),
        subject: format!("model:gemma3-270m-chat@{seq}"),
        before_digest: None,
        after_digest: Some(Digest::of(&seq.to_le_bytes())),
        details: serde_json::json!({"family": "gemma3", "artifacts": 1, "codeRef": "git+https://example.org/train@abc123"}),
        digest: Digest([0; 32]),
    };
    e.digest = event_digest(&e);
    e
}

/// Appends events `from..=to` with their stored hashes, in transactions of 10,000.
async fn load(db: &Db, hashes: &mut Vec<Hash>, from: u64, to: u64) {
    let mut seq = from;
    while seq <= to {
        let end = (seq + 9_999).min(to);
        let mut tx = db.begin_write().await.unwrap();
        let first_hash = hashes.len() as u64;
        let mut rows = Vec::new();
        for s in seq..=end {
            let raw = RawEvent::of(&event(s));
            ms_tlog::append_entry(hashes, &raw.entry()).unwrap();
            rows.push(raw);
        }
        for chunk in rows.chunks(500) {
            let marks: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 10;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9,
                        b + 10
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO audit_events (seq, at, actor, actor_role, action, subject, \
                 before_digest, after_digest, details, digest) VALUES {}",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.seq)
                    .bind(r.at.clone())
                    .bind(r.actor.clone())
                    .bind(r.actor_role.clone())
                    .bind(r.action.clone())
                    .bind(r.subject.clone())
                    .bind(r.before_digest.clone())
                    .bind(r.after_digest.clone())
                    .bind(r.details.clone())
                    .bind(r.digest.clone());
            }
            q.execute(&mut *tx).await.unwrap();
        }
        let new = &hashes[first_hash as usize..];
        for (c, chunk) in new.chunks(1000).enumerate() {
            let marks: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO audit_hashes (idx, hash) VALUES {}",
                marks.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, h) in chunk.iter().enumerate() {
                q = q
                    .bind((first_hash + (c * 1000 + i) as u64) as i64)
                    .bind(ms_tlog::hash::hex(h));
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        seq = end + 1;
    }
}

fn run_verify(
    rt: &tokio::runtime::Runtime,
    reg: &Embedded,
    trust: &Trust,
    state: &std::path::Path,
) -> (f64, u64) {
    let source = RegistrySource::new(Arc::new(reg.clone()), rt.handle().clone());
    let mut store = DirState::new(state);
    let options = Options {
        since: None,
        check_seq: true,
    };
    let t = Instant::now();
    let d = verify(&source, &mut store, trust, &options).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(d.is_ok(), "{d}");
    (secs, d.entries_checked)
}

fn main() {
    let mut events = 1_000_000u64;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--events" => events = it.next().unwrap().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let store = format!("file://{}", dir.path().join("blobs").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = Principal {
        name: "os:bench".into(),
        role: Role::Admin,
    };
    let t = Instant::now();
    let (reg, mut hashes) = rt.block_on(async {
        let reg = Embedded::open(&db_url, &store, admin).await.unwrap();
        let mut hashes = Vec::new();
        load(reg.db(), &mut hashes, 1, events).await;
        (reg, hashes)
    });
    eprintln!(
        "loaded {events} events and {} stored hashes in {:.1} s",
        hashes.len(),
        t.elapsed().as_secs_f64()
    );
    let key = dir.path().join("log-key.pem");
    let signer = ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap();
    signer.save_pkcs8_pem(&key).unwrap();
    let origin = "bench.example/audit";
    let cfg = LogConfig::new(Arc::new(signer), Some(origin.into()), &[]).unwrap();
    let trust = Trust::log(Verifier::parse(&cfg.verifier_key_text(origin).unwrap()).unwrap());
    reg.set_log(cfg);
    let t = Instant::now();
    rt.block_on(reg.audit_checkpoint()).unwrap();
    eprintln!(
        "signed the checkpoint in {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let state = dir.path().join("audit-state");
    let (secs, n) = run_verify(&rt, &reg, &trust, &state);
    println!(
        "audit verify, {n} events, first run (every tile): {secs:.1} s ({:.0} events/s)",
        n as f64 / secs
    );
    rt.block_on(load(reg.db(), &mut hashes, events + 1, events + 1000));
    let (secs, n) = run_verify(&rt, &reg, &trust, &state);
    println!("audit verify, {n} events, after 1,000 more (state kept): {secs:.1} s");
}
