//! Our hashes, stored-hash layout, proofs, tiles, checkpoints and notes against independent
//! implementations: `tlog_tiles` (a port of Go's sumdb/tlog), `signed_note` (of Go's
//! sumdb/note) and `ct-merkle` (RFC 6962 from scratch).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof};
use ms_tlog::{
    Checkpoint, Hash, HashReader, Tile, Verifier, append_entry, check_record, check_tree, note,
    prove_record, prove_tree, split_stored_hash_index, stored_hash_count, stored_hash_index,
    tile_bytes, tree_hash,
};
use signed_note::{Note, VerifierList};

struct Theirs<'a>(&'a [Hash]);

impl tlog_tiles::HashReader for Theirs<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes
            .iter()
            .map(|&i| tlog_tiles::Hash(self.0[i as usize]))
            .collect())
    }
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "x".repeat((i % 13) as usize)).into_bytes()
}

fn our_log(n: u64) -> Vec<Hash> {
    let mut hashes = Vec::new();
    for i in 0..n {
        append_entry(&mut hashes, &entry(i)).unwrap();
    }
    hashes
}

#[test]
fn stored_hash_layout_matches_tlog_tiles() {
    for i in 0..5000u64 {
        let (l, n) = split_stored_hash_index(i);
        let (tl, tn) = tlog_tiles::split_stored_hash_index(i);
        assert_eq!((l, n), (u32::from(tl), tn), "index {i}");
        assert_eq!(
            stored_hash_index(l, n),
            tlog_tiles::stored_hash_index(tl, tn)
        );
        assert_eq!(stored_hash_count(i), tlog_tiles::stored_hash_count(i));
    }
    let hashes = our_log(600);
    let mut theirs: Vec<Hash> = Vec::new();
    for i in 0..600u64 {
        let new = tlog_tiles::stored_hashes(i, &entry(i), &Theirs(&theirs)).unwrap();
        theirs.extend(new.into_iter().map(|h| h.0));
    }
    assert_eq!(hashes, theirs);
    for n in 0..600u64 {
        assert_eq!(
            tree_hash(n, &hashes).unwrap(),
            tlog_tiles::tree_hash(n, &Theirs(&hashes)).unwrap().0,
            "size {n}"
        );
    }
}

#[test]
fn proofs_match_tlog_tiles_and_each_side_checks_the_others() {
    let hashes = our_log(300);
    for t in [1u64, 2, 3, 7, 8, 9, 100, 255, 256, 257, 300] {
        let th = tree_hash(t, &hashes).unwrap();
        for n in (0..t).step_by(7).chain([t - 1]) {
            let ours = prove_record(t, n, &hashes).unwrap();
            let theirs = tlog_tiles::prove_record(t, n, &Theirs(&hashes)).unwrap();
            assert_eq!(ours, theirs.iter().map(|h| h.0).collect::<Vec<_>>());
            let leaf = hashes[stored_hash_index(0, n) as usize];
            tlog_tiles::check_record(
                &ours.iter().map(|h| tlog_tiles::Hash(*h)).collect(),
                t,
                tlog_tiles::Hash(th),
                n,
                tlog_tiles::Hash(leaf),
            )
            .unwrap();
            check_record(&ours, t, th, n, leaf).unwrap();
        }
        for n in (1..=t).step_by(5).chain([t]) {
            let ours = prove_tree(t, n, &hashes).unwrap();
            let theirs = tlog_tiles::prove_tree(t, n, &Theirs(&hashes)).unwrap();
            assert_eq!(ours, theirs.iter().map(|h| h.0).collect::<Vec<_>>());
            let h = tree_hash(n, &hashes).unwrap();
            tlog_tiles::check_tree(
                &ours.iter().map(|h| tlog_tiles::Hash(*h)).collect(),
                t,
                tlog_tiles::Hash(th),
                n,
                tlog_tiles::Hash(h),
            )
            .unwrap();
            check_tree(&ours, t, th, n, h).unwrap();
        }
    }
}

#[test]
fn roots_and_proofs_match_ct_merkle() {
    let hashes = our_log(300);
    let mut tree = MemoryBackedTree::<sha2_next::Sha256, Vec<u8>>::new();
    for i in 0..300u64 {
        tree.push(entry(i));
        let t = i + 1;
        let root = tree.root();
        let th = tree_hash(t, &hashes).unwrap();
        assert_eq!(root.as_bytes().as_slice(), th.as_slice(), "size {t}");
        if t % 37 == 0 || t == 300 {
            for n in (0..t).step_by(11) {
                let theirs = tree.prove_inclusion(n as usize);
                let ours = prove_record(t, n, &hashes).unwrap();
                assert_eq!(theirs.as_bytes(), ours.concat().as_slice());
                root.verify_inclusion(&entry(n), n, &InclusionProof::from_bytes(ours.concat()))
                    .unwrap();
            }
            for old in (1..t).step_by(13) {
                let theirs = tree.prove_consistency((t - old) as usize);
                let ours = prove_tree(t, old, &hashes).unwrap();
                assert_eq!(theirs.as_bytes(), ours.concat().as_slice(), "{old} -> {t}");
                let old_root = ct_merkle::RootHash::<sha2_next::Sha256>::new(
                    tree_hash(old, &hashes).unwrap().into(),
                    old,
                );
                root.verify_consistency(
                    &old_root,
                    &ConsistencyProof::try_from_bytes(ours.concat()).unwrap(),
                )
                .unwrap();
            }
        }
    }
}

/// tlog_tiles writes Go sumdb paths `tile/<H>/<L>/…` and `tile/<H>/data/…`; C2SP drops the
/// height (always 8) and calls data tiles `entries`.
fn c2sp_path(go_path: &str) -> String {
    go_path
        .strip_prefix("tile/8/")
        .map(|rest| format!("tile/{}", rest.replacen("data/", "entries/", 1)))
        .unwrap()
}

#[test]
fn tiles_match_tlog_tiles() {
    for (l, n, w) in [
        (0u32, 0u64, 256u32),
        (1, 1_234_067, 256),
        (2, 999, 1),
        (0, 1000, 255),
        (5, u64::MAX / 1000, 17),
    ] {
        let theirs = tlog_tiles::Tile::new(8, l as u8, n, w, false);
        let ours = Tile::hashes(l, n, w);
        assert_eq!(ours.path(), c2sp_path(&theirs.path()));
        let data = tlog_tiles::Tile::new(8, 0, n, w, true);
        assert_eq!(Tile::entries(n, w).path(), c2sp_path(&data.path()));
    }
    let hashes = our_log(3000);
    let size = 3000u64;
    let ours = ms_tlog::tile::tiles_for_size(size);
    let theirs = tlog_tiles::Tile::new_tiles(8, 0, size);
    assert_eq!(
        ours.iter().map(Tile::path).collect::<Vec<_>>(),
        theirs
            .iter()
            .map(|t| c2sp_path(&t.path()))
            .collect::<Vec<_>>()
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(
            tile_bytes(o, &hashes).unwrap(),
            t.read_data(&Theirs(&hashes)).unwrap()
        );
    }
    for index in (0..hashes.len() as u64).step_by(17) {
        let (o, _, _) = ms_tlog::tile::tile_for_index(index);
        let t = tlog_tiles::Tile::from_index(8, index);
        assert_eq!(o.path(), c2sp_path(&t.path()), "index {index}");
    }
    for old in [0u64, 1, 255, 256, 1000] {
        let ours = ms_tlog::tile::new_tiles(old, size);
        let theirs = tlog_tiles::Tile::new_tiles(8, old, size);
        assert_eq!(
            ours.iter().map(Tile::path).collect::<Vec<_>>(),
            theirs
                .iter()
                .map(|t| c2sp_path(&t.path()))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn checkpoints_match_tlog_tiles() {
    let root = ms_tlog::leaf_hash(b"hello");
    let ours = Checkpoint {
        origin: "example.com/origin".into(),
        size: 123,
        root,
        extension: "abc\ndef\n".into(),
    };
    let theirs = tlog_tiles::Checkpoint::new(
        "example.com/origin",
        123,
        tlog_tiles::Hash(root),
        "abc\ndef\n",
    )
    .unwrap();
    assert_eq!(ours.body().as_bytes(), theirs.to_bytes().as_slice());
    assert_eq!(Checkpoint::parse(&ours.body()).unwrap(), ours);
    for bad in [
        "o\n01\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "o\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=",
        "o\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40Hmuw\n",
        "o\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n\n",
    ] {
        assert!(
            tlog_tiles::Checkpoint::from_bytes(bad.as_bytes()).is_err(),
            "{bad:?}"
        );
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}

/// The example of Go's sumdb/note and signed_note: the same key and text give the same note.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

fn peter_signer() -> common::SeedSigner {
    let key = B64
        .decode(PETER_SKEY.splitn(5, '+').nth(4).unwrap())
        .unwrap();
    common::SeedSigner::new(&key[1..].try_into().unwrap())
}

#[test]
fn notes_match_signed_note() {
    let signer = peter_signer();
    let ours = note::sign(PETER_TEXT, "PeterNeumann", &signer).unwrap();
    let mut theirs = Note::new(PETER_TEXT.as_bytes(), &[]).unwrap();
    theirs
        .add_sigs(&[&signed_note::StandardSigner::new(PETER_SKEY).unwrap()])
        .unwrap();
    assert_eq!(ours.as_bytes(), theirs.to_bytes().as_slice());

    let v = Verifier::new("PeterNeumann", ms_trust::Signer::public_key(&signer)).unwrap();
    assert_eq!(v.to_string(), PETER_VKEY);
    assert_eq!(Verifier::parse(PETER_VKEY).unwrap(), v);
    assert_eq!(
        v.id(),
        signed_note::key_id(
            "PeterNeumann",
            &B64.decode(PETER_VKEY.splitn(3, '+').nth(2).unwrap())
                .unwrap()
        )
    );

    // Each side opens the other's notes, keeping signatures by unknown keys.
    let other = common::SeedSigner::new(&[9; 32]);
    let mut two = note::Note::parse(&ours).unwrap();
    two.add(note::signature(PETER_TEXT, "other.example", &other).unwrap());
    let text = two.to_text();
    let list = VerifierList::new(vec![Box::new(
        signed_note::StandardVerifier::new(PETER_VKEY).unwrap(),
    )]);
    let (verified, unverified) = Note::from_bytes(text.as_bytes())
        .unwrap()
        .verify(&list)
        .unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 1));
    let opened = note::open(&text, std::slice::from_ref(&v)).unwrap();
    assert!(opened.signed_by(&v));
    assert_eq!(opened.unverified.len(), 1);
    assert_eq!(opened.body(), PETER_TEXT);

    // A changed text fails on both sides.
    let forged = text.replacen("problem", "Problem", 1);
    assert!(
        Note::from_bytes(forged.as_bytes())
            .unwrap()
            .verify(&list)
            .is_err()
    );
    assert_eq!(note::open(&forged, &[v]).unwrap_err().code, "MT0608");
}

#[test]
fn vkeys_of_signed_note_generate_key_parse() {
    let other = common::SeedSigner::new(&[3; 32]);
    let v = Verifier::new("log.example/a", ms_trust::Signer::public_key(&other)).unwrap();
    let theirs = signed_note::StandardVerifier::new(&v.to_string()).unwrap();
    assert_eq!(signed_note::Verifier::key_id(&theirs), v.id());
    let sig = note::signature("hello\n", "log.example/a", &other).unwrap();
    assert!(signed_note::Verifier::verify(
        &theirs, b"hello\n", &sig.bytes
    ));
}

#[test]
fn a_stored_hash_reader_is_object_safe() {
    let hashes = our_log(10);
    let r: &dyn HashReader = &hashes;
    assert_eq!(
        r.read_hashes(&[0]).unwrap()[0],
        ms_tlog::leaf_hash(&entry(0))
    );
}
