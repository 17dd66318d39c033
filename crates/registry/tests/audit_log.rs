//! The verifiable audit log on SQLite and PostgreSQL: stored hashes equal an in-memory tree
//! built from the served entries, checkpoints, inclusion and consistency proofs check, tiles
//! are what the tree says, the tree is backfilled for old databases, and the log refuses to
//! sign a tree inconsistent with one it signed.

mod audit;

use audit::{Backend, fixture};
use ms_registry::Registry;
use ms_tlog::Hash;
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::note::{self, Verifier};
use sqlx::Row;

fn b64(s: &str) -> Hash {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .try_into()
        .unwrap()
}

fn open_checkpoint(text: &str, vkey: &str) -> Checkpoint {
    let v = Verifier::parse(vkey).unwrap();
    let opened = note::open(text, &[v]).unwrap();
    Checkpoint::parse(opened.body()).unwrap()
}

async fn stored_hashes(f: &audit::Fixture) -> Vec<Hash> {
    let mut conn = f.reg.db().pool().acquire().await.unwrap();
    let rows = sqlx::query("SELECT idx, hash FROM audit_hashes ORDER BY idx")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.get::<i64, _>("idx"), i as i64);
            let text: String = r.get("hash");
            let bytes: Vec<u8> = (0..32)
                .map(|k| u8::from_str_radix(&text[2 * k..2 * k + 2], 16).unwrap())
                .collect();
            bytes.try_into().unwrap()
        })
        .collect()
}

/// The entries of the whole log, read back through the entries tiles.
async fn entries(f: &audit::Fixture, size: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while n * 256 < size {
        let width = (size - n * 256).min(256);
        let path = ms_tlog::tile::Tile::entries(n, width as u32).path();
        let bytes = f.reg.audit_tile(&path).await.unwrap();
        out.extend(ms_tlog::entries::decode_entries(&bytes).unwrap());
        n += 1;
    }
    out
}

async fn tree_matches_an_in_memory_log(backend: Backend) {
    let f = fixture(backend).await;
    f.events(300).await;
    let size = 300u64;
    let entries = entries(&f, size).await;
    assert_eq!(entries.len(), 300);
    for (i, e) in entries.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(e).unwrap();
        assert_eq!(v["seq"], i as u64 + 1, "entry {i} is event {}", i + 1);
    }
    let mut memory: Vec<Hash> = Vec::new();
    for e in &entries {
        ms_tlog::append_entry(&mut memory, e).unwrap();
    }
    assert_eq!(
        stored_hashes(&f).await,
        memory,
        "the stored hashes are the tree's"
    );

    let text = f.reg.audit_checkpoint().await.unwrap();
    let cp = open_checkpoint(&text, &f.log_key());
    assert_eq!(cp.origin, f.origin);
    assert_eq!(cp.size, size);
    assert_eq!(cp.root, ms_tlog::tree_hash(size, &memory).unwrap());
    assert_eq!(
        f.reg.audit_checkpoint().await.unwrap(),
        text,
        "nothing appended: the same checkpoint"
    );

    for seq in [1u64, 2, 128, 256, 257, 300] {
        let p = f.reg.audit_event(seq).await.unwrap();
        assert_eq!(p.event.seq, seq);
        assert_eq!(p.tree_size, size);
        let proof: Vec<Hash> = p.proof.iter().map(|h| b64(h)).collect();
        let leaf = ms_tlog::leaf_hash(p.entry.as_bytes());
        ms_tlog::check_record(&proof, size, cp.root, seq - 1, leaf).unwrap();
        assert_eq!(p.entry.as_bytes(), entries[seq as usize - 1].as_slice());
    }
    let e = f.reg.audit_event(301).await.unwrap_err();
    assert_eq!(e.code, "MG1005", "{e}");

    let old = ms_tlog::tree_hash(37, &memory).unwrap();
    let c = f.reg.audit_consistency(37, size).await.unwrap();
    let proof: Vec<Hash> = c.proof.iter().map(|h| b64(h)).collect();
    ms_tlog::check_tree(&proof, size, cp.root, 37, old).unwrap();
    assert_eq!(
        f.reg.audit_consistency(0, 5).await.unwrap_err().code,
        "MG1005"
    );

    // Hash tiles: level 0 tile 0 is full, tile 1 partial (44 hashes), level 1 partial.
    for (path, level, n, width) in [
        ("tile/0/000", 0u32, 0u64, 256u32),
        ("tile/0/001.p/44", 0, 1, 44),
        ("tile/1/000.p/1", 1, 0, 1),
    ] {
        let bytes = f.reg.audit_tile(path).await.unwrap();
        let t = ms_tlog::tile::Tile::parse(path).unwrap();
        assert_eq!((t.level, t.n, t.width, t.entries), (level, n, width, false));
        assert_eq!(
            bytes,
            ms_tlog::tile::tile_bytes(&t, &memory).unwrap(),
            "{path}"
        );
    }
    for bad in [
        "tile/0/001",
        "tile/0/001.p/45",
        "tile/entries/002.p/1",
        "tile/x/y",
        "../etc",
    ] {
        let e = f.reg.audit_tile(bad).await.unwrap_err();
        assert_eq!(e.code, "MG1004", "{bad}: {e}");
    }

    // More events: the next checkpoint is consistent with the first.
    f.events(3).await;
    let next = open_checkpoint(&f.reg.audit_checkpoint().await.unwrap(), &f.log_key());
    assert_eq!(next.size, 303);
    let c = f.reg.audit_consistency(size, 303).await.unwrap();
    let proof: Vec<Hash> = c.proof.iter().map(|h| b64(h)).collect();
    ms_tlog::check_tree(&proof, 303, next.root, size, cp.root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_matches_an_in_memory_log_sqlite() {
    tree_matches_an_in_memory_log(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_matches_an_in_memory_log_postgres() {
    tree_matches_an_in_memory_log(Backend::Postgres).await;
}

async fn never_signs_an_inconsistent_tree(backend: Backend) {
    let f = fixture(backend).await;
    f.events(20).await;
    let first = f.reg.audit_checkpoint().await.unwrap();
    // Someone with the database's password rewrites event 5 and every stored hash after it,
    // consistently: the tree is a valid tree, but not an extension of the signed one.
    f.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5")
        .await;
    f.sql("DELETE FROM audit_hashes").await;
    let db = ms_registry::db::Db::open(&f.db_url).await.unwrap();
    assert!(
        stored_hashes(&f).await.len() > 20,
        "the tree was backfilled"
    );
    drop(db);
    f.events(1).await;
    let cfg = f.reg.log_config().unwrap();
    let e = ms_registry::log::checkpoint::sign_current(f.reg.db(), &cfg)
        .await
        .unwrap_err();
    assert_eq!(e.code, "MG1003", "{e}");
    assert!(e.message.contains("not consistent"), "{e}");
    // Readers still get the last good checkpoint, for verifiers to compare against.
    assert_eq!(f.reg.audit_checkpoint().await.unwrap(), first);
    assert_eq!(f.reg.audit_event(3).await.unwrap().tree_size, 20);
    let mut conn = f.reg.db().pool().acquire().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_checkpoints")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 1, "nothing new was signed");

    // An edited stored checkpoint no longer verifies with the log key: refused too.
    let edited = first.replacen("\n20\n", "\n19\n", 1);
    f.sql(&format!(
        "UPDATE audit_checkpoints SET note = '{}'",
        edited.replace('\'', "''")
    ))
    .await;
    let e = f.reg.audit_checkpoint().await.unwrap_err();
    assert_eq!(e.code, "MG1003", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_signs_an_inconsistent_tree_sqlite() {
    never_signs_an_inconsistent_tree(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_signs_an_inconsistent_tree_postgres() {
    never_signs_an_inconsistent_tree(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_without_a_tree_get_one_at_open() {
    let f = fixture(Backend::Sqlite).await;
    f.events(40).await;
    let full = stored_hashes(&f).await;
    // A registry from before the tree, and one whose last events lack their hashes.
    for keep in [0usize, ms_tlog::stored_hash_count(30) as usize] {
        f.sql(&format!("DELETE FROM audit_hashes WHERE idx >= {keep}"))
            .await;
        ms_registry::db::Db::open(&f.db_url).await.unwrap();
        assert_eq!(stored_hashes(&f).await, full, "kept {keep}");
    }
    f.events(1).await;
    assert_eq!(
        stored_hashes(&f).await.len() as u64,
        ms_tlog::stored_hash_count(41)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_a_key_serves_tiles_and_signs_nothing() {
    let f = fixture(Backend::Sqlite).await;
    f.events(3).await;
    let plain = ms_registry::Embedded::open(&f.db_url, &f.store, audit::admin())
        .await
        .unwrap();
    let e = plain.audit_checkpoint().await.unwrap_err();
    assert_eq!(e.code, "MG1001", "{e}");
    assert_eq!(plain.audit_tile("tile/0/000.p/3").await.unwrap().len(), 96);
}
