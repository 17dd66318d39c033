//! The offline verifier against honest and dishonest logs: each kind of tampering is found and
//! named (changed, removed, reordered, inserted, hash tile changed, truncated, forked, bad
//! signature, not witnessed), and the kept state advances only after a clean run.

mod common;

use common::{ORIGIN, SeedSigner, event, json_log};
use ms_tlog::StateStore;
use ms_tlog::entries::encode_entries;
use ms_tlog::tile::{entries_tiles_for_size, tile_bytes, tiles_for_size};
use ms_tlog::{
    DirSource, DirState, Finding, Hash, MemorySource, MemoryState, Options, Trust, Verifier,
    cosignature, note, verify,
};
use ms_trust::Signer;

fn log_signer() -> SeedSigner {
    SeedSigner::new(&[1; 32])
}

fn trust(signer: &SeedSigner) -> Trust {
    Trust {
        origin: Some(ORIGIN.into()),
        log: Verifier::new(ORIGIN, signer.public_key()).unwrap(),
        witnesses: Vec::new(),
        witness_quorum: 0,
    }
}

fn opts() -> Options {
    Options {
        since: None,
        check_seq: true,
    }
}

/// What a server backed by a tampered database serves: the signed checkpoint `note` of `size`
/// records, entries tiles cut from `entries` by position, hash tiles from `hashes`.
fn serve(entries: &[Vec<u8>], hashes: &[Hash], size: u64, note: &str) -> MemorySource {
    let mut s = MemorySource {
        checkpoint: note.to_string(),
        ..Default::default()
    };
    for t in tiles_for_size(size) {
        s.files
            .insert(t.path(), tile_bytes(&t, &hashes.to_vec()).unwrap());
    }
    for t in entries_tiles_for_size(size) {
        let start = (t.start() as usize).min(entries.len());
        let end = (start + t.width as usize).min(entries.len());
        s.files
            .insert(t.path(), encode_entries(&entries[start..end]).unwrap());
    }
    s
}

fn findings(src: &MemorySource, state: &mut MemoryState) -> Vec<Finding> {
    let signer = log_signer();
    verify(src, state, &trust(&signer), &opts())
        .unwrap()
        .findings
}

/// A log of `n` events, its honest source, and a state that verified it.
fn verified(n: u64) -> (ms_tlog::MemoryLog, MemorySource, MemoryState) {
    let log = json_log(n);
    let src = log.publish(n, ORIGIN, &log_signer()).unwrap();
    let mut state = MemoryState::default();
    let d = verify(&src, &mut state, &trust(&log_signer()), &opts()).unwrap();
    assert!(d.is_ok(), "{d}");
    assert_eq!(d.entries_checked, n);
    (log, src, state)
}

#[test]
fn an_honest_log_verifies_and_its_state_advances() {
    let (mut log, _, mut state) = verified(600);
    assert_eq!(state.checkpoints.len(), 1);
    // 2 full level-0 tiles kept.
    assert_eq!(state.tiles.len(), 2);
    for seq in 601..=1000 {
        log.append(&event(seq)).unwrap();
    }
    let src = log.publish(1000, ORIGIN, &log_signer()).unwrap();
    let d = verify(&src, &mut state, &trust(&log_signer()), &opts()).unwrap();
    assert!(d.is_ok(), "{d}");
    assert_eq!(d.previous.as_ref().unwrap().size, 600);
    assert_eq!(d.checkpoint.as_ref().unwrap().size, 1000);
    assert!(d.to_string().contains("ok: 1000 entries verified"));
}

#[test]
fn a_changed_byte_names_the_entry() {
    let (log, src, mut state) = verified(600);
    let mut entries = log.entries.clone();
    entries[299][12] ^= 1;
    let bad = serve(&entries, &log.hashes, 600, &src.checkpoint);
    let f = findings(&bad, &mut state);
    assert_eq!(
        f,
        vec![Finding::Changed {
            seq: 300,
            position: 300
        }]
    );
    assert_eq!((f[0].kind(), f[0].code()), ("changed", "MT0612"));
    assert_eq!(
        f[0].to_string(),
        "entry 300 changed: its hash differs from the one the signed tree commits to"
    );
    // A fresh verifier (no state) names it too: the hash tiles still reproduce the signed root.
    assert_eq!(
        findings(&bad, &mut MemoryState::default()),
        vec![Finding::Changed {
            seq: 300,
            position: 300
        }]
    );
    // Nothing was kept from the failed run.
    assert_eq!(state.checkpoints.values().next().unwrap(), &src.checkpoint);
}

#[test]
fn a_changed_seq_is_a_change() {
    let (log, src, mut state) = verified(40);
    let mut entries = log.entries.clone();
    entries[9] = String::from_utf8(entries[9].clone())
        .unwrap()
        .replace("\"seq\":10", "\"seq\":11")
        .into_bytes();
    let f = findings(
        &serve(&entries, &log.hashes, 40, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![Finding::Changed {
            seq: 10,
            position: 10
        }]
    );
}

#[test]
fn a_deleted_entry_is_named_removed() {
    let (log, src, mut state) = verified(600);
    let mut entries = log.entries.clone();
    entries.remove(4);
    let f = findings(
        &serve(&entries, &log.hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(f, vec![Finding::Removed { first: 5, last: 5 }]);
    // The last entries gone (rows deleted, checkpoint kept): removed too.
    let f = findings(
        &serve(&log.entries[..590], &log.hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![Finding::Removed {
            first: 591,
            last: 600
        }]
    );
}

#[test]
fn swapped_entries_are_named_reordered() {
    let (log, src, mut state) = verified(600);
    let mut entries = log.entries.clone();
    entries.swap(9, 10);
    let f = findings(
        &serve(&entries, &log.hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![
            Finding::Reordered {
                position: 10,
                carries: 11
            },
            Finding::Reordered {
                position: 11,
                carries: 10
            }
        ]
    );
    // The rows' contents swapped while each keeps its seq: still found as moved content.
    let mut entries = log.entries.clone();
    entries[9] = event(11).to_vec();
    entries[10] = event(10).to_vec();
    let swap = |e: &[u8], seq: u64| {
        String::from_utf8(e.to_vec())
            .unwrap()
            .replace(
                &format!("\"seq\":{}", if seq == 10 { 11 } else { 10 }),
                &format!("\"seq\":{seq}"),
            )
            .into_bytes()
    };
    entries[9] = swap(&entries[9], 10);
    entries[10] = swap(&entries[10], 11);
    let f = findings(
        &serve(&entries, &log.hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![
            Finding::Reordered {
                position: 10,
                carries: 11
            },
            Finding::Reordered {
                position: 11,
                carries: 10
            }
        ]
    );
}

#[test]
fn an_entry_that_is_not_in_the_tree_is_named() {
    let (log, src, mut state) = verified(100);
    let mut entries = log.entries.clone();
    entries.insert(50, b"{\"seq\":9999}".to_vec());
    let f = findings(
        &serve(&entries, &log.hashes, 100, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![
            Finding::Inserted { position: 51 },
            Finding::Removed {
                first: 100,
                last: 100
            }
        ]
    );
}

#[test]
fn a_changed_hash_tile_is_named() {
    let (log, src, mut state) = verified(600);
    let mut hashes = log.hashes.clone();
    let i = ms_tlog::stored_hash_index(0, 300) as usize;
    hashes[i][0] ^= 0x80;
    let f = findings(
        &serve(&log.entries, &hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![Finding::TileChanged {
            path: "tile/0/001".into(),
            first_hash: 44
        }]
    );
}

#[test]
fn an_entry_and_its_hash_changed_together_are_named_from_the_kept_tiles() {
    let (log, src, mut state) = verified(600);
    // The attacker rewrites entry 5 and recomputes every stored hash, but cannot sign.
    let mut entries = log.entries.clone();
    entries[4] = b"{\"seq\":5,\"forged\":true}".to_vec();
    let mut forged = ms_tlog::MemoryLog::new(ORIGIN);
    for e in &entries {
        forged.append(e).unwrap();
    }
    let f = findings(
        &serve(&entries, &forged.hashes, 600, &src.checkpoint),
        &mut state,
    );
    assert_eq!(
        f,
        vec![
            Finding::TreeMismatch { size: 600 },
            Finding::Changed {
                seq: 5,
                position: 5
            }
        ]
    );
    // Without kept tiles the verifier still refuses the log, without naming the entry.
    let f = findings(
        &serve(&entries, &forged.hashes, 600, &src.checkpoint),
        &mut MemoryState::default(),
    );
    assert_eq!(f, vec![Finding::TreeMismatch { size: 600 }]);
}

#[test]
fn a_log_signed_smaller_than_before_is_truncated() {
    let (log, _, mut state) = verified(600);
    let smaller = log.publish(500, ORIGIN, &log_signer()).unwrap();
    assert_eq!(
        findings(&smaller, &mut state),
        vec![Finding::Truncated {
            kept_size: 600,
            size: 500
        }]
    );
}

#[test]
fn a_fork_served_to_two_clients_is_found_by_the_one_that_saw_the_other_branch() {
    // Client 1 verified the honest tree of 600 events.
    let (log, _, mut client1) = verified(600);
    // The server (holding the log key) rewrites history from entry 300 and signs the fork.
    let mut fork = ms_tlog::MemoryLog::new(ORIGIN);
    for (i, e) in log.entries.iter().enumerate() {
        if i == 299 {
            fork.append(b"{\"seq\":300,\"rewritten\":true}").unwrap();
        } else {
            fork.append(e).unwrap();
        }
    }
    // Client 2 has never seen the log: the fork is internally consistent, it verifies.
    let same_size = fork.publish(600, ORIGIN, &log_signer()).unwrap();
    let mut client2 = MemoryState::default();
    assert!(findings(&same_size, &mut client2).is_empty());
    // Client 1 gets the same-size fork: named, with the first differing entry.
    let f = findings(&same_size, &mut client1);
    assert!(
        matches!(
            f.as_slice(),
            [Finding::Forked {
                size: 600,
                first_difference: Some(300),
                ..
            }]
        ),
        "{f:?}"
    );
    assert_eq!(client1.evidence.len(), 1);
    assert_eq!(client1.evidence[0].1, same_size.checkpoint);
    // A grown fork does not extend what client 1 saw.
    for seq in 601..=700 {
        fork.append(&event(seq)).unwrap();
    }
    let grown = fork.publish(700, ORIGIN, &log_signer()).unwrap();
    let f = findings(&grown, &mut client1);
    assert!(
        matches!(
            f.as_slice(),
            [Finding::Forked {
                size: 600,
                first_difference: Some(300),
                ..
            }]
        ),
        "{f:?}"
    );
    // And client 2, handed client 1's checkpoint with --since, sees it too.
    let honest = log.publish(600, ORIGIN, &log_signer()).unwrap();
    let d = verify(
        &grown,
        &mut MemoryState::default(),
        &trust(&log_signer()),
        &Options {
            since: Some(honest.checkpoint.clone()),
            check_seq: true,
        },
    )
    .unwrap();
    assert!(
        matches!(d.findings.as_slice(), [Finding::Forked { size: 600, .. }]),
        "{d}"
    );
}

#[test]
fn bad_signatures_are_named() {
    let (log, src, mut state) = verified(50);
    // Signed by another key.
    let other = log.publish(50, ORIGIN, &SeedSigner::new(&[2; 32])).unwrap();
    assert!(matches!(
        findings(&other, &mut state).as_slice(),
        [Finding::BadSignature { .. }]
    ));
    // The checkpoint text altered after signing.
    let mut altered = src.clone();
    altered.checkpoint = altered.checkpoint.replacen("\n50\n", "\n49\n", 1);
    assert!(matches!(
        findings(&altered, &mut state).as_slice(),
        [Finding::BadSignature { .. }]
    ));
    // A signature forged under the log key's name and id.
    let mut forged = src.clone();
    let mut n = note::Note::parse(&forged.checkpoint).unwrap();
    n.signatures[0].bytes[0] ^= 1;
    forged.checkpoint = n.to_text();
    assert!(matches!(
        findings(&forged, &mut state).as_slice(),
        [Finding::BadSignature { .. }]
    ));
    // Another origin under the same key.
    let mut elsewhere = ms_tlog::MemoryLog::new("other.example/log");
    elsewhere.append(&event(1)).unwrap();
    let e = elsewhere.publish(1, ORIGIN, &log_signer()).unwrap();
    assert!(matches!(
        findings(&e, &mut state).as_slice(),
        [Finding::BadCheckpoint { .. }]
    ));
}

#[test]
fn a_witness_quorum_is_required_when_configured() {
    let log = json_log(20);
    let src = log.publish(20, ORIGIN, &log_signer()).unwrap();
    let w = SeedSigner::new(&[7; 32]);
    let wv = Verifier::cosignature("witness.example", w.public_key()).unwrap();
    let mut t = trust(&log_signer());
    t.witnesses = vec![wv];
    t.witness_quorum = 1;
    let d = verify(&src, &mut MemoryState::default(), &t, &opts()).unwrap();
    assert_eq!(
        d.findings,
        vec![Finding::NotWitnessed {
            cosigned: 0,
            required: 1
        }]
    );
    let mut n = note::Note::parse(&src.checkpoint).unwrap();
    n.add(cosignature::cosign(&n.text, "witness.example", &w, 1_700_000_000).unwrap());
    let mut cosigned = src.clone();
    cosigned.checkpoint = n.to_text();
    let d = verify(&cosigned, &mut MemoryState::default(), &t, &opts()).unwrap();
    assert!(d.is_ok(), "{d}");
    assert_eq!(d.cosigned_by, vec!["witness.example".to_string()]);
}

#[test]
fn a_cut_entries_bundle_is_malformed() {
    let (_, src, mut state) = verified(300);
    let mut cut = src.clone();
    let b = cut.files.get_mut("tile/entries/001.p/44").unwrap();
    b.truncate(b.len() - 3);
    let f = findings(&cut, &mut state);
    assert!(
        matches!(&f[0], Finding::MalformedTile { path, .. } if path == "tile/entries/001.p/44"),
        "{f:?}"
    );
}

#[test]
fn on_disk_sources_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = json_log(700);
    let src = log.publish(700, ORIGIN, &log_signer()).unwrap();
    src.write_to(&dir.path().join("log")).unwrap();
    let source = DirSource::new(dir.path().join("log"));
    let mut state = DirState::new(dir.path().join("state"));
    let d = verify(&source, &mut state, &trust(&log_signer()), &opts()).unwrap();
    assert!(d.is_ok(), "{d}");
    let kept = state.origin_dir(ORIGIN);
    assert!(kept.join("checkpoint").exists());
    assert!(kept.join("tile/0/001").exists());
    // A second run starts from the kept checkpoint.
    let mut state = DirState::new(dir.path().join("state"));
    let d = verify(&source, &mut state, &trust(&log_signer()), &opts()).unwrap();
    assert_eq!(d.previous.unwrap().size, 700);
    // A truncated log's signed checkpoint is kept as evidence, the state is not moved.
    let smaller = log.publish(600, ORIGIN, &log_signer()).unwrap();
    smaller.write_to(&dir.path().join("smaller")).unwrap();
    let d = verify(
        &DirSource::new(dir.path().join("smaller")),
        &mut state,
        &trust(&log_signer()),
        &opts(),
    )
    .unwrap();
    let kept = std::path::PathBuf::from(d.evidence.clone().unwrap());
    assert_eq!(std::fs::read_to_string(kept).unwrap(), smaller.checkpoint);
    assert!(d.to_string().contains("kept as evidence"), "{d}");
    assert_eq!(state.checkpoint(ORIGIN).unwrap().unwrap(), src.checkpoint);
    // A tile path never leaves the directory.
    assert!(ms_tlog::TileSource::tile(&source, "tile/../../etc/passwd").is_err());
}

#[test]
fn a_checkpoint_claiming_an_absurd_size_is_refused_without_panic() {
    let log = json_log(3);
    let key = log_signer();
    for size in [1u64 << 62, u64::MAX] {
        let body = ms_tlog::Checkpoint::new(ORIGIN, size, [0; 32]).body();
        let src = MemorySource {
            checkpoint: note::sign(&body, ORIGIN, &key).unwrap(),
            ..log.publish(3, ORIGIN, &key).unwrap()
        };
        match verify(&src, &mut MemoryState::default(), &trust(&key), &opts()) {
            Err(e) => assert_eq!(e.code, "MT0614", "{e}"),
            Ok(d) => assert!(
                matches!(d.findings.as_slice(), [Finding::BadCheckpoint { .. }]),
                "{d}"
            ),
        }
    }
}

#[test]
fn a_damaged_state_is_an_error_not_silently_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let log = json_log(10);
    let src = log.publish(10, ORIGIN, &log_signer()).unwrap();
    let mut state = DirState::new(dir.path());
    assert!(
        verify(&src, &mut state, &trust(&log_signer()), &opts())
            .unwrap()
            .is_ok()
    );
    let kept = state.origin_dir(ORIGIN).join("checkpoint");
    std::fs::write(&kept, "not a note").unwrap();
    let e = verify(&src, &mut state, &trust(&log_signer()), &opts()).unwrap_err();
    assert_eq!(e.code, "MT0613", "{e}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "not a note");
    // A --since that is not a note signed by the log key is refused as input.
    let e = verify(
        &src,
        &mut MemoryState::default(),
        &trust(&log_signer()),
        &Options {
            since: Some("garbage".into()),
            check_seq: true,
        },
    )
    .unwrap_err();
    assert!(e.message.starts_with("--since"), "{e}");
}

#[test]
fn proofs_from_tiles_alone_check_against_the_signed_root() {
    let log = json_log(70_000);
    let src = log.publish(70_000, ORIGIN, &log_signer()).unwrap();
    let cp = ms_tlog::Checkpoint::parse(
        &note::open(&src.checkpoint, &[trust(&log_signer()).log])
            .unwrap()
            .note
            .text,
    )
    .unwrap();
    let r = ms_tlog::TileHashReader::new(&src, cp.size).unwrap();
    for n in [0u64, 1, 255, 256, 65_535, 65_536, 69_999] {
        let proof = ms_tlog::prove_record(cp.size, n, &r).unwrap();
        assert_eq!(
            proof,
            ms_tlog::prove_record(cp.size, n, &log.hashes).unwrap()
        );
        ms_tlog::check_record(
            &proof,
            cp.size,
            cp.root,
            n,
            ms_tlog::leaf_hash(&event(n + 1)),
        )
        .unwrap();
    }
    for old in [1u64, 256, 65_536, 69_999] {
        let proof = ms_tlog::prove_tree(cp.size, old, &r).unwrap();
        let old_root = ms_tlog::tree_hash(old, &log.hashes).unwrap();
        ms_tlog::check_tree(&proof, cp.size, cp.root, old, old_root).unwrap();
    }
    assert_eq!(ms_tlog::tree_hash(cp.size, &r).unwrap(), cp.root);
    // A tile that lies gives a proof that does not check.
    let mut lying = src.clone();
    lying.files.get_mut("tile/0/000").unwrap()[40] ^= 1;
    let r = ms_tlog::TileHashReader::new(&lying, cp.size).unwrap();
    let proof = ms_tlog::prove_record(cp.size, 0, &r).unwrap();
    assert!(
        ms_tlog::check_record(&proof, cp.size, cp.root, 0, ms_tlog::leaf_hash(&event(1))).is_err()
    );
}
