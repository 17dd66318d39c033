//! 10,000 random tamperings of the registry's own audit log, all detected and named: the
//! honest checkpoint and tiles are read once from a registry (SQLite), then each case alters
//! them in memory as someone with the database could (a byte of an event, an event deleted,
//! two events' rows swapped, the log truncated and re-signed, history rewritten and re-signed,
//! a stored hash or a tile byte changed) and runs the verifier with the state a client kept.

mod audit;

use std::sync::{Arc, OnceLock};

use audit::{Backend, fixture};
use ms_registry::Registry;
use ms_registry::log::source::RegistrySource;
use ms_tlog::note::Verifier;
use ms_tlog::source::{MemoryLog, MemorySource, TileSource};
use ms_tlog::state::MemoryState;
use ms_tlog::tile::{entries_tiles_for_size, tiles_for_size};
use ms_tlog::verify::{Finding, Options, Trust, verify};
use proptest::prelude::*;

const EVENTS: usize = 260;

/// The registry's honest log: its entries, the served checkpoint and tiles, the log key, and
/// the state of a client that verified it.
struct Honest {
    entries: Vec<Vec<u8>>,
    served: MemorySource,
    signer: Arc<audit::TestSigner>,
    origin: String,
    trust: Trust,
    state: MemoryState,
}

fn honest() -> &'static Honest {
    static H: OnceLock<Honest> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let f = rt.block_on(async {
            let f = fixture(Backend::Sqlite).await;
            f.events(EVENTS).await;
            f
        });
        let reg: Arc<dyn Registry> = Arc::new(f.reg.clone());
        let source = RegistrySource::new(reg, rt.handle().clone());
        let checkpoint = source.checkpoint().unwrap();
        let mut served = MemorySource {
            checkpoint,
            files: Default::default(),
        };
        let size = EVENTS as u64;
        for t in tiles_for_size(size)
            .into_iter()
            .chain(entries_tiles_for_size(size))
        {
            served
                .files
                .insert(t.path(), source.tile(&t.path()).unwrap());
        }
        let mut entries = Vec::new();
        for t in entries_tiles_for_size(size) {
            entries.extend(ms_tlog::entries::decode_entries(&served.files[&t.path()]).unwrap());
        }
        let trust = Trust::log(Verifier::parse(&f.log_key()).unwrap());
        let mut state = MemoryState::default();
        let d = verify(&served, &mut state, &trust, &options()).unwrap();
        assert!(d.is_ok(), "{d}");
        Honest {
            entries,
            served,
            signer: f.signer.clone(),
            origin: f.origin.clone(),
            trust,
            state,
        }
    })
}

fn options() -> Options {
    Options {
        since: None,
        check_seq: true,
    }
}

/// The entry with its `seq` field set to `seq`, as the registry serves a row whose sequence
/// number column was changed.
fn with_seq(entry: &[u8], seq: u64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(entry).unwrap();
    v["seq"] = seq.into();
    ms_registry::canonical::to_string(&v).into_bytes()
}

/// Entries served in place of the honest ones, under the honest checkpoint and hash tiles:
/// `entries[i]` is what the row of seq `i + 1` now holds (`None`: deleted). As the registry
/// does, each entries tile holds the rows of its own seq range.
fn serve_entries(h: &Honest, entries: &[Option<Vec<u8>>]) -> MemorySource {
    let mut s = h.served.clone();
    for t in entries_tiles_for_size(EVENTS as u64) {
        let start = t.start() as usize;
        let end = start + t.width as usize;
        let rows: Vec<&Vec<u8>> = entries[start..end].iter().flatten().collect();
        s.files
            .insert(t.path(), ms_tlog::entries::encode_entries(&rows).unwrap());
    }
    s
}

/// A log of `entries` signed with the log key: what the registry signs once its checkpoints
/// are dropped.
fn resigned(h: &Honest, entries: &[Vec<u8>]) -> MemorySource {
    let mut log = MemoryLog::new(&h.origin);
    for e in entries {
        log.append(e).unwrap();
    }
    log.publish(log.size(), &h.origin, &*h.signer).unwrap()
}

#[derive(Debug, Clone)]
enum Tamper {
    /// Any bit of any byte of an event's served entry.
    EventByte { entry: usize, byte: usize, bit: u8 },
    /// A row deleted: the later events move up.
    Delete { entry: usize },
    /// Two rows' sequence numbers exchanged.
    SwapRows { a: usize, b: usize },
    /// The last events removed with their hashes and checkpoints; the registry re-signs.
    Truncate { to: usize },
    /// An event rewritten and the tree rebuilt; the registry re-signs.
    Rewrite { entry: usize, byte: usize, bit: u8 },
    /// A byte of any served tile (hashes or entries).
    TileByte { tile: usize, byte: usize, bit: u8 },
    /// A byte of the checkpoint note.
    NoteByte { byte: usize, bit: u8 },
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let n = EVENTS;
    prop_oneof![
        (0..n, any::<usize>(), 0u8..8).prop_map(|(entry, byte, bit)| Tamper::EventByte {
            entry,
            byte,
            bit
        }),
        (0..n).prop_map(|entry| Tamper::Delete { entry }),
        (0..n, 0..n)
            .prop_filter("two rows", |(a, b)| a != b)
            .prop_map(|(a, b)| Tamper::SwapRows { a, b }),
        (1..n).prop_map(|to| Tamper::Truncate { to }),
        (0..n, any::<usize>(), 0u8..8).prop_map(|(entry, byte, bit)| Tamper::Rewrite {
            entry,
            byte,
            bit
        }),
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(tile, byte, bit)| Tamper::TileByte {
            tile,
            byte,
            bit
        }),
        (any::<usize>(), 0u8..8).prop_map(|(byte, bit)| Tamper::NoteByte { byte, bit }),
    ]
}

fn flip(bytes: &mut [u8], byte: usize, bit: u8) {
    let i = byte % bytes.len();
    bytes[i] ^= 1 << bit;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn every_tampering_of_the_registry_log_is_found_and_named(t in tamper()) {
        let h = honest();
        let mut entries = h.entries.clone();
        let rows = |entries: Vec<Vec<u8>>| entries.into_iter().map(Some).collect::<Vec<_>>();
        let source = match &t {
            Tamper::EventByte { entry, byte, bit } => {
                flip(&mut entries[*entry], *byte, *bit);
                serve_entries(h, &rows(entries.clone()))
            }
            Tamper::Delete { entry } => {
                let mut rows = rows(entries.clone());
                rows[*entry] = None;
                serve_entries(h, &rows)
            }
            Tamper::SwapRows { a, b } => {
                entries.swap(*a, *b);
                entries[*a] = with_seq(&entries[*a], *a as u64 + 1);
                entries[*b] = with_seq(&entries[*b], *b as u64 + 1);
                serve_entries(h, &rows(entries.clone()))
            }
            Tamper::Truncate { to } => resigned(h, &entries[..*to]),
            Tamper::Rewrite { entry, byte, bit } => {
                flip(&mut entries[*entry], *byte, *bit);
                resigned(h, &entries)
            }
            Tamper::TileByte { tile, byte, bit } => {
                let mut s = h.served.clone();
                let path = s.files.keys().nth(tile % s.files.len()).unwrap().clone();
                flip(s.files.get_mut(&path).unwrap(), *byte, *bit);
                s
            }
            Tamper::NoteByte { byte, bit } => {
                let mut s = h.served.clone();
                let mut note = s.checkpoint.into_bytes();
                flip(&mut note, *byte, *bit);
                s.checkpoint = String::from_utf8_lossy(&note).into_owned();
                s
            }
        };
        let mut state = h.state.clone();
        let d = verify(&source, &mut state, &h.trust, &options()).unwrap();
        prop_assert!(!d.is_ok(), "{:?} not detected", t);
        let f = &d.findings;
        let named = match &t {
            Tamper::EventByte { entry, .. } => {
                let seq = *entry as u64 + 1;
                f.iter().any(|x| matches!(x, Finding::Changed { seq: s, .. } if *s == seq)
                    || matches!(x, Finding::Reordered { position, .. } if *position == seq))
            }
            Tamper::Delete { entry } => {
                let seq = *entry as u64 + 1;
                f.iter().any(|x| matches!(x, Finding::Removed { first, .. } if *first == seq))
            }
            Tamper::SwapRows { a, b } => {
                let (a, b) = (*a as u64 + 1, *b as u64 + 1);
                f.iter().any(|x| matches!(x, Finding::Reordered { position, carries } if *position == a && *carries == b))
                    && f.iter().any(|x| matches!(x, Finding::Reordered { position, carries } if *position == b && *carries == a))
            }
            Tamper::Truncate { to } => f.iter().any(|x| matches!(x,
                Finding::Truncated { kept_size, size } if *kept_size == EVENTS as u64 && *size == *to as u64)),
            Tamper::Rewrite { entry, .. } => f.iter().any(|x| match x {
                // Within the full tile the client kept, the entry is named; past it, the fork.
                Finding::Forked { size, first_difference, .. } => *size == EVENTS as u64
                    && (*entry >= 256 || *first_difference == Some(*entry as u64 + 1)),
                _ => false,
            }),
            Tamper::TileByte { .. } => true,
            Tamper::NoteByte { .. } => f.iter().any(|x| matches!(x,
                Finding::BadSignature { .. } | Finding::BadCheckpoint { .. })),
        };
        prop_assert!(named, "{:?} named as {:?}", t, f);
    }
}
