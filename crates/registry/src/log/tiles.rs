//! What the log serves from the database (C2SP tlog-tiles): hash tiles from the stored hashes,
//! entries tiles from the event rows (each entry built from its columns as stored, so a changed
//! row is served changed and found by any verifier), an event with its inclusion proof, and
//! consistency proofs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::tile::Tile;

use super::codes::{BAD_RANGE, BAD_TILE};
use super::entry::{COLUMNS, RawEvent};
use super::tree;
use super::{ConsistencyProof, EventProof};
use crate::db::{Db, db_err};
use crate::error::{ErrorKind, RegistryError, Result};

fn no_tile(path: &str, why: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        BAD_TILE,
        format!("no tile {path:?}: {why}"),
    )
    .hint("GET /audit/checkpoint gives the size; tiles follow C2SP tlog-tiles")
}

fn out_of_range(msg: String) -> RegistryError {
    RegistryError::new(ErrorKind::NotFound, BAD_RANGE, msg)
        .hint("GET /audit/checkpoint gives the log's size")
}

/// The bytes of the tile at `path` (`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`).
pub async fn tile(db: &Db, path: &str) -> Result<Vec<u8>> {
    let t = Tile::parse(path).map_err(|e| no_tile(path, &e.to_string()))?;
    let mut conn = db.pool().acquire().await.map_err(db_err)?;
    // What is there to serve: the records the stored hashes cover, and the events. A damaged
    // log (events deleted, hashes kept) is still served as it is, for a verifier to diagnose.
    let hashed = tree::hashed_records(&mut conn).await?;
    let size = tree::size(&mut conn).await?.max(hashed);
    // Records a tile needs: each of its hashes covers 256^L records (entries: one each).
    let needed =
        t.n.checked_mul(256)
            .and_then(|x| x.checked_add(u64::from(t.width)))
            .and_then(|x| x.checked_mul(1u64.checked_shl(8 * t.level)?))
            .unwrap_or(u64::MAX);
    let have = if t.is_entries() { size } else { hashed };
    if needed > have {
        return Err(no_tile(
            path,
            &format!("the log has {have} entries, this tile needs {needed}"),
        ));
    }
    if t.is_entries() {
        // The events whose seq falls in the tile's range, in seq order: a deleted row makes
        // this tile shorter (and no other tile different), which the verifier names.
        let first = t.n * 256;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq"
        )))
        .bind(first as i64)
        .bind((first + u64::from(t.width)) as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        let entries = rows
            .iter()
            .map(|r| RawEvent::from_row(r).map(|e| e.entry()))
            .collect::<Result<Vec<_>>>()?;
        return ms_tlog::entries::encode_entries(&entries).map_err(tree::tree_err);
    }
    tree::with_hashes(&mut conn, |r| ms_tlog::tile::tile_bytes(&t, r)).await
}

/// The signed checkpoint `note` parsed (its signature was checked when it was read).
fn checkpoint_of(note: &str) -> Result<Checkpoint> {
    let body = note.split("\n\n").next().unwrap_or_default();
    Checkpoint::parse(&format!("{body}\n")).map_err(|e| tree::broken(e.to_string()))
}

/// Event `seq` and its inclusion proof in the checkpoint `note`.
pub async fn event(db: &Db, note: &str, seq: u64) -> Result<EventProof> {
    let cp = checkpoint_of(note)?;
    if seq == 0 || seq > cp.size {
        return Err(out_of_range(format!(
            "event {seq} is outside the log's 1..={}",
            cp.size
        )));
    }
    let mut conn = db.pool().acquire().await.map_err(db_err)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq = $1"
    )))
    .bind(seq as i64)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| tree::broken(format!("audit event {seq} is missing")))?;
    let entry = RawEvent::from_row(&row)?.entry();
    let event = serde_json::from_slice(&entry).map_err(|e| {
        RegistryError::new(
            ErrorKind::Internal,
            crate::codes::MG0608,
            format!("audit event {seq} is unreadable: {e}"),
        )
    })?;
    let size = cp.size;
    let proof = tree::with_hashes(&mut conn, |r| ms_tlog::prove_record(size, seq - 1, r)).await?;
    Ok(EventProof {
        event,
        entry: String::from_utf8_lossy(&entry).into_owned(),
        leaf_index: seq - 1,
        tree_size: size,
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
        checkpoint: note.to_string(),
    })
}

/// A consistency proof from the tree of `from` events to the tree of `to`.
pub async fn consistency(db: &Db, from: u64, to: u64) -> Result<ConsistencyProof> {
    let mut conn = db.pool().acquire().await.map_err(db_err)?;
    let size = tree::size(&mut conn).await?;
    if from == 0 || from > to || to > size {
        return Err(out_of_range(format!(
            "a consistency proof needs 1 <= from <= to <= {size}: from={from}, to={to}"
        )));
    }
    let proof = tree::with_hashes(&mut conn, |r| ms_tlog::prove_tree(to, from, r)).await?;
    Ok(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    })
}
