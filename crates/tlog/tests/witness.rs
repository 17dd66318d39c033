//! The witness logic (C2SP tlog-witness): it cosigns only checkpoints signed by the log that
//! extend the last one it cosigned, answers 409 with its size when the caller's old size is
//! stale, and never cosigns a fork; its cosignatures verify as tlog-cosignature/v1.

mod common;

use common::{ORIGIN, SeedSigner, event, json_log};
use ms_tlog::witness::{AddCheckpoint, Witness, WitnessError};
use ms_tlog::{Checkpoint, MemoryLog, Verifier, cosignature, note, prove_tree};
use ms_trust::Signer;

fn log_key() -> SeedSigner {
    SeedSigner::new(&[1; 32])
}

fn witness_key() -> SeedSigner {
    SeedSigner::new(&[5; 32])
}

fn witness() -> Witness {
    let v = Verifier::new(ORIGIN, log_key().public_key()).unwrap();
    Witness::new("witness.example", [(ORIGIN.to_string(), v)]).unwrap()
}

fn request(log: &MemoryLog, old: u64, size: u64) -> AddCheckpoint {
    AddCheckpoint {
        old,
        proof: if old == 0 || old == size {
            Vec::new()
        } else {
            prove_tree(size, old, &log.hashes).unwrap()
        },
        checkpoint: log.publish(size, ORIGIN, &log_key()).unwrap().checkpoint,
    }
}

#[test]
fn cosigns_consistent_checkpoints_and_the_cosignature_verifies() {
    let log = json_log(30);
    let mut w = witness();
    let wk = witness_key();
    let (sig, cp) = w
        .add_checkpoint(&request(&log, 0, 10), &wk, 1_700_000_000)
        .unwrap();
    assert_eq!(cp.size, 10);
    let wv = Verifier::cosignature("witness.example", wk.public_key()).unwrap();
    assert_eq!(
        cosignature::verify(&sig.to_line(), &cp, &wv).unwrap(),
        1_700_000_000
    );
    // The cosigned note opens with the log key and the witness key.
    let req = request(&log, 10, 30);
    let (sig, cp) = w.add_checkpoint(&req, &wk, 1_700_000_100).unwrap();
    let mut n = note::Note::parse(&req.checkpoint).unwrap();
    n.add(sig.clone());
    let lv = Verifier::new(ORIGIN, log_key().public_key()).unwrap();
    let opened = note::open(&n.to_text(), &[lv, wv.clone()]).unwrap();
    assert!(opened.signed_by(&wv));
    assert_eq!(
        opened
            .verified
            .iter()
            .find(|v| v.cosigned_at.is_some())
            .unwrap()
            .cosigned_at,
        Some(1_700_000_100)
    );
    assert_eq!(w.latest(ORIGIN).unwrap(), &cp);
    // A cosignature does not verify for another checkpoint or as a plain note signature.
    let other = Checkpoint::new(ORIGIN, 31, cp.root);
    assert_eq!(
        cosignature::verify(&sig.to_line(), &other, &wv)
            .unwrap_err()
            .code,
        "MT0608"
    );
    // The same checkpoint again is fine (idempotent).
    w.add_checkpoint(&request(&log, 30, 30), &wk, 1_700_000_200)
        .unwrap();
}

#[test]
fn a_stale_old_size_is_409_with_the_latest_size() {
    let log = json_log(30);
    let mut w = witness();
    w.add_checkpoint(&request(&log, 0, 20), &witness_key(), 1)
        .unwrap();
    let e = w
        .add_checkpoint(&request(&log, 10, 30), &witness_key(), 2)
        .unwrap_err();
    assert_eq!(e, WitnessError::Conflict { latest: 20 });
    assert_eq!(e.status(), 409);
    assert_eq!(e.body(), "20\n");
    let e = w
        .add_checkpoint(&request(&log, 0, 30), &witness_key(), 2)
        .unwrap_err();
    assert_eq!(e.status(), 409);
}

#[test]
fn a_fork_is_never_cosigned() {
    let log = json_log(30);
    let mut w = witness();
    w.add_checkpoint(&request(&log, 0, 20), &witness_key(), 1)
        .unwrap();
    // The log rewrites entry 15 and signs the fork.
    let mut fork = MemoryLog::new(ORIGIN);
    for (i, e) in log.entries.iter().enumerate() {
        fork.append(if i == 14 { b"{\"seq\":15,\"x\":1}" } else { e })
            .unwrap();
    }
    // Same size, other root: 409.
    let e = w
        .add_checkpoint(&request(&fork, 20, 20), &witness_key(), 2)
        .unwrap_err();
    assert_eq!(e.status(), 409, "{e}");
    // Grown: its own proof does not connect to the root the witness holds: 422.
    let e = w
        .add_checkpoint(&request(&fork, 20, 30), &witness_key(), 2)
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e}");
    // The honest continuation still works.
    w.add_checkpoint(&request(&log, 20, 30), &witness_key(), 3)
        .unwrap();
}

#[test]
fn refusals_have_their_statuses() {
    let log = json_log(10);
    let mut w = witness();
    // Not signed by the log key: 403.
    let mut req = request(&log, 0, 10);
    req.checkpoint = log
        .publish(10, ORIGIN, &SeedSigner::new(&[2; 32]))
        .unwrap()
        .checkpoint;
    assert_eq!(
        w.add_checkpoint(&req, &witness_key(), 1)
            .unwrap_err()
            .status(),
        403
    );
    // Unknown origin: 404.
    let mut other = MemoryLog::new("other.example/log");
    other.append(&event(1)).unwrap();
    let req = AddCheckpoint {
        old: 0,
        proof: Vec::new(),
        checkpoint: other.publish(1, ORIGIN, &log_key()).unwrap().checkpoint,
    };
    assert_eq!(
        w.add_checkpoint(&req, &witness_key(), 1)
            .unwrap_err()
            .status(),
        404
    );
    // Old size above the checkpoint's: 400 (after the 409 check, so first make old match).
    w.add_checkpoint(&request(&log, 0, 10), &witness_key(), 1)
        .unwrap();
    let mut req = request(&log, 10, 10);
    req.checkpoint = log.publish(5, ORIGIN, &log_key()).unwrap().checkpoint;
    assert_eq!(
        w.add_checkpoint(&req, &witness_key(), 1)
            .unwrap_err()
            .status(),
        400
    );
    // Malformed bodies: 400.
    for body in [
        "",
        "old x\n\n",
        "old 1\nnot base64!\n\nnote",
        "new 1\n\nnote",
    ] {
        assert_eq!(
            AddCheckpoint::parse(body).unwrap_err().status(),
            400,
            "{body:?}"
        );
    }
}

#[test]
fn add_checkpoint_bodies_round_trip() {
    let log = json_log(30);
    let req = request(&log, 13, 30);
    assert!(!req.proof.is_empty());
    let text = req.to_text();
    assert!(text.starts_with("old 13\n"));
    assert_eq!(AddCheckpoint::parse(&text).unwrap(), req);
    let req = request(&log, 0, 30);
    assert_eq!(AddCheckpoint::parse(&req.to_text()).unwrap(), req);
}

#[test]
fn a_restored_witness_continues_from_its_state() {
    let log = json_log(30);
    let mut w = witness();
    let (_, cp) = w
        .add_checkpoint(&request(&log, 0, 20), &witness_key(), 1)
        .unwrap();
    let mut again = witness();
    again.restore(cp);
    again
        .add_checkpoint(&request(&log, 20, 30), &witness_key(), 2)
        .unwrap();
}
