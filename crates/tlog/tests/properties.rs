//! Property tests: proofs verify for every size and position and fail for any altered hash;
//! every random tampering of a served log is found and named; garbage never panics.

mod common;

use std::sync::OnceLock;

use common::{ORIGIN, SeedSigner, json_log};
use ms_tlog::entries::encode_entries;
use ms_tlog::tile::{entries_tiles_for_size, tile_bytes, tiles_for_size};
use ms_tlog::{
    Finding, Hash, MemoryLog, MemorySource, MemoryState, Options, Trust, Verifier, check_record,
    check_tree, leaf_hash, prove_record, prove_tree, stored_hash_index, tree_hash, verify,
};
use ms_trust::Signer;
use proptest::prelude::*;

fn big_log() -> &'static MemoryLog {
    static LOG: OnceLock<MemoryLog> = OnceLock::new();
    LOG.get_or_init(|| json_log(3000))
}

fn signer() -> &'static SeedSigner {
    static S: OnceLock<SeedSigner> = OnceLock::new();
    S.get_or_init(|| SeedSigner::new(&[1; 32]))
}

fn trust() -> Trust {
    Trust {
        origin: Some(ORIGIN.into()),
        log: Verifier::new(ORIGIN, signer().public_key()).unwrap(),
        witnesses: Vec::new(),
        witness_quorum: 0,
    }
}

fn serve(entries: &[Vec<u8>], hashes: &[Hash], size: u64, note: &str) -> MemorySource {
    let mut s = MemorySource {
        checkpoint: note.to_string(),
        ..Default::default()
    };
    let hashes = hashes.to_vec();
    for t in tiles_for_size(size) {
        s.files.insert(t.path(), tile_bytes(&t, &hashes).unwrap());
    }
    for t in entries_tiles_for_size(size) {
        let start = (t.start() as usize).min(entries.len());
        let end = (start + t.width as usize).min(entries.len());
        s.files
            .insert(t.path(), encode_entries(&entries[start..end]).unwrap());
    }
    s
}

fn opts() -> Options {
    Options {
        since: None,
        check_seq: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_reject_any_altered_hash(
        t in 1u64..3000, n_frac in 0.0f64..1.0, which in any::<prop::sample::Index>(), bit in 0u8..8,
    ) {
        let log = big_log();
        let n = ((t as f64) * n_frac) as u64 % t;
        let th = tree_hash(t, &log.hashes).unwrap();
        let leaf = leaf_hash(&log.entries[n as usize]);
        prop_assert_eq!(log.hashes[stored_hash_index(0, n) as usize], leaf);
        let p = prove_record(t, n, &log.hashes).unwrap();
        prop_assert!(check_record(&p, t, th, n, leaf).is_ok());
        if !p.is_empty() {
            let mut bad = p.clone();
            let i = which.index(bad.len());
            bad[i][(bit as usize * 3) % 32] ^= 1 << bit;
            prop_assert!(check_record(&bad, t, th, n, leaf).is_err());
            prop_assert!(check_record(&p[..p.len() - 1], t, th, n, leaf).is_err());
        }
        prop_assert!(check_record(&p, t, th, (n + 1) % t, leaf).is_err() || t == 1);
    }

    #[test]
    fn consistency_proofs_verify_and_reject_any_altered_hash(
        t in 1u64..3000, old_frac in 0.0f64..1.0, which in any::<prop::sample::Index>(), bit in 0u8..8,
    ) {
        let log = big_log();
        let old = 1 + ((t - 1) as f64 * old_frac) as u64;
        let th = tree_hash(t, &log.hashes).unwrap();
        let oh = tree_hash(old, &log.hashes).unwrap();
        let p = prove_tree(t, old, &log.hashes).unwrap();
        prop_assert!(check_tree(&p, t, th, old, oh).is_ok());
        if !p.is_empty() {
            let mut bad = p.clone();
            let i = which.index(bad.len());
            bad[i][(bit as usize * 5) % 32] ^= 1 << bit;
            prop_assert!(check_tree(&bad, t, th, old, oh).is_err());
        }
        let mut other = oh;
        other[0] ^= 1;
        prop_assert!(check_tree(&p, t, th, old, other).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ms_tlog::Checkpoint::parse(&text);
        let _ = ms_tlog::note::open(&text, &[trust().log]);
        let _ = ms_tlog::Verifier::parse(&text);
        let _ = ms_tlog::Tile::parse(&text);
        let _ = ms_tlog::decode_entries(&bytes);
        let _ = ms_tlog::AddCheckpoint::parse(&text);
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    FlipEntryByte { entry: usize, byte: usize, bit: u8 },
    Delete { entry: usize },
    Swap { a: usize, b: usize },
    Truncate { to: usize },
    FlipHash { index: usize, bit: u8 },
    FlipBundleByte { byte: usize, bit: u8 },
}

fn tamper() -> impl Strategy<Value = (usize, Tamper)> {
    (2usize..700).prop_flat_map(|n| {
        let t =
            prop_oneof![
                (0..n, any::<usize>(), 0u8..8)
                    .prop_map(|(entry, byte, bit)| Tamper::FlipEntryByte { entry, byte, bit }),
                (0..n).prop_map(|entry| Tamper::Delete { entry }),
                (0..n, 0..n)
                    .prop_filter("two entries", |(a, b)| a != b)
                    .prop_map(|(a, b)| Tamper::Swap { a, b }),
                (1..n).prop_map(|to| Tamper::Truncate { to }),
                (any::<usize>(), 0u8..8).prop_map(|(index, bit)| Tamper::FlipHash { index, bit }),
                (any::<usize>(), 0u8..8)
                    .prop_map(|(byte, bit)| Tamper::FlipBundleByte { byte, bit }),
            ];
        (Just(n), t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// A verifier that verified the honest log of `n` events finds every tampering of it, and
    /// names the entry when the tampering is of entries.
    #[test]
    fn every_tampering_is_found_and_named((n, t) in tamper()) {
        let log = &big_log();
        let entries = &log.entries[..n];
        let n64 = n as u64;
        let honest = serve(entries, &log.hashes, n64, &{
            let mut l = MemoryLog::new(ORIGIN);
            l.entries = entries.to_vec();
            l.hashes = log.hashes[..ms_tlog::stored_hash_count(n64) as usize].to_vec();
            l.publish(n64, ORIGIN, signer()).unwrap().checkpoint
        });
        let mut state = MemoryState::default();
        prop_assert!(verify(&honest, &mut state, &trust(), &opts()).unwrap().is_ok());
        let mut served = entries.to_vec();
        let mut hashes = log.hashes[..ms_tlog::stored_hash_count(n64) as usize].to_vec();
        let mut source = None;
        match &t {
            Tamper::FlipEntryByte { entry, byte, bit } => {
                let e = &mut served[*entry];
                let i = byte % e.len();
                e[i] ^= 1 << bit;
            }
            Tamper::Delete { entry } => {
                served.remove(*entry);
            }
            Tamper::Swap { a, b } => served.swap(*a, *b),
            Tamper::Truncate { to } => {
                let mut l = MemoryLog::new(ORIGIN);
                l.entries = entries[..*to].to_vec();
                l.hashes = hashes[..ms_tlog::stored_hash_count(*to as u64) as usize].to_vec();
                source = Some(l.publish(*to as u64, ORIGIN, signer()).unwrap());
            }
            Tamper::FlipHash { index, bit } => {
                // A hash the tiles serve (levels 0, 8, 16…), not one only the server keeps.
                let tiles = tiles_for_size(n64);
                let tile = &tiles[index % tiles.len()];
                let k = (index / 7) % tile.width as usize;
                let i = stored_hash_index(8 * tile.level, tile.start() + k as u64) as usize;
                hashes[i][index % 32] ^= 1 << bit;
            }
            Tamper::FlipBundleByte { byte, bit } => {
                let mut s = honest.clone();
                let paths: Vec<String> = s.files.keys().filter(|p| p.starts_with("tile/entries/")).cloned().collect();
                let p = &paths[byte % paths.len()];
                let b = s.files.get_mut(p).unwrap();
                let i = (byte / 7) % b.len();
                b[i] ^= 1 << bit;
                source = Some(s);
            }
        }
        let source = source.unwrap_or_else(|| serve(&served, &hashes, n64, &honest.checkpoint));
        let d = verify(&source, &mut state, &trust(), &opts()).unwrap();
        let f = &d.findings;
        match t {
            Tamper::FlipEntryByte { entry, .. } => {
                let seq = entry as u64 + 1;
                prop_assert_eq!(f, &vec![Finding::Changed { seq, position: seq }]);
            }
            Tamper::Delete { entry } => {
                let seq = entry as u64 + 1;
                prop_assert_eq!(f, &vec![Finding::Removed { first: seq, last: seq }]);
            }
            Tamper::Swap { a, b } => {
                let (a, b) = (a.min(b) as u64 + 1, a.max(b) as u64 + 1);
                prop_assert_eq!(f, &vec![
                    Finding::Reordered { position: a, carries: b },
                    Finding::Reordered { position: b, carries: a },
                ]);
            }
            Tamper::Truncate { to } => {
                prop_assert_eq!(f, &vec![Finding::Truncated { kept_size: n64, size: to as u64 }]);
            }
            Tamper::FlipHash { .. } => {
                prop_assert!(matches!(f.as_slice(), [Finding::TileChanged { .. }]), "{:?}", f);
            }
            Tamper::FlipBundleByte { .. } => {
                prop_assert!(!d.is_ok());
            }
        }
        // A failed run keeps nothing new.
        prop_assert_eq!(state.checkpoints.values().next().unwrap(), &honest.checkpoint);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// An honest log that grows between runs always verifies, from any kept size.
    #[test]
    fn honest_growth_always_verifies(m in 0u64..1500, grow in 0u64..1500) {
        let log = big_log();
        let n = m + grow;
        let publish = |size: u64| {
            let mut l = MemoryLog::new(ORIGIN);
            l.entries = log.entries[..size as usize].to_vec();
            l.hashes = log.hashes[..ms_tlog::stored_hash_count(size) as usize].to_vec();
            l.publish(size, ORIGIN, signer()).unwrap()
        };
        let mut state = MemoryState::default();
        let d = verify(&publish(m), &mut state, &trust(), &opts()).unwrap();
        prop_assert!(d.is_ok(), "{}", d);
        let d = verify(&publish(n), &mut state, &trust(), &opts()).unwrap();
        prop_assert!(d.is_ok(), "{}", d);
        prop_assert_eq!(d.entries_checked, n);
    }

    /// Several tamperings at once are still found (each kind is named in the test above).
    #[test]
    fn several_tamperings_are_found(
        n in 2usize..700,
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), 0u8..3), 1..6),
    ) {
        let log = big_log();
        let n64 = n as u64;
        let entries = &log.entries[..n];
        let hashes = &log.hashes[..ms_tlog::stored_hash_count(n64) as usize];
        let mut l = MemoryLog::new(ORIGIN);
        l.entries = entries.to_vec();
        l.hashes = hashes.to_vec();
        let honest = l.publish(n64, ORIGIN, signer()).unwrap();
        let mut served = entries.to_vec();
        for (a, b, kind) in edits {
            if served.is_empty() {
                break;
            }
            let i = a % served.len();
            match kind {
                0 => {
                    let k = b % served[i].len();
                    served[i][k] ^= 0x20;
                }
                1 => {
                    served.remove(i);
                }
                _ => {
                    let j = b % served.len();
                    served.swap(i, j);
                }
            }
        }
        prop_assume!(served.as_slice() != entries);
        let src = serve(&served, hashes, n64, &honest.checkpoint);
        let d = verify(&src, &mut MemoryState::default(), &trust(), &opts()).unwrap();
        prop_assert!(!d.is_ok());
        prop_assert!(d.findings.iter().all(|f| f.code() == "MT0612"), "{}", d);
    }
}
