//! The audit log's Merkle tree in the database: the stored hashes of `audit_hashes` (the Go
//! checksum database's layout, one row per complete subtree), written with each event in its
//! transaction, backfilled for events written before the tree existed, and read to compute
//! roots, proofs and tiles.
//!
//! ms-tlog's algorithms read hashes through a synchronous `HashReader`; the index sets they
//! read do not depend on the hash values, so each operation runs once with a reader that only
//! records indexes, the hashes are fetched in one query, and the operation runs again on them.

use std::collections::HashMap;

use ms_tlog::{Hash, HashReader, TlogError};
use sqlx::{AnyConnection, Row};

use super::codes::BROKEN_TREE;
use super::entry::{COLUMNS, RawEvent};
use crate::db::{Db, Tx, db_err};
use crate::error::{ErrorKind, RegistryError, Result};

/// Hashes are stored as 64 lower-case hex digits.
pub use ms_tlog::hash::hex;

fn unhex(s: &str) -> Option<Hash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub(crate) fn broken(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorKind::Internal, BROKEN_TREE, msg)
        .hint("run `modelspec audit verify` to see what changed")
}

/// An ms-tlog failure on hashes the database gave: damage, not a caller's mistake.
pub(crate) fn tree_err(e: TlogError) -> RegistryError {
    broken(format!("the log's tree cannot be computed: {e}"))
}

/// Hashes fetched beforehand.
struct Fetched(HashMap<u64, Hash>);

impl HashReader for Fetched {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<Hash>, TlogError> {
        // Every index was fetched (the same operation asked for it a moment ago); a missing
        // row was refused by `fetch`.
        indexes
            .iter()
            .map(|i| {
                self.0.get(i).copied().ok_or_else(|| {
                    TlogError::new(BROKEN_TREE, format!("stored hash {i} was not fetched"))
                })
            })
            .collect()
    }
}

/// The stored hashes at `indexes`; a missing or malformed one is [`BROKEN_TREE`].
pub async fn fetch(conn: &mut AnyConnection, indexes: &[u64]) -> Result<HashMap<u64, Hash>> {
    let mut wanted: Vec<u64> = indexes.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(400) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT idx, hash FROM audit_hashes WHERE idx IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in chunk {
            q = q.bind(*i as i64);
        }
        for r in q.fetch_all(&mut *conn).await.map_err(db_err)? {
            let idx: i64 = r.try_get("idx").map_err(db_err)?;
            let text: String = r.try_get("hash").map_err(db_err)?;
            let h = unhex(&text)
                .ok_or_else(|| broken(format!("stored hash {idx} is not 64 hex digits")))?;
            out.insert(idx as u64, h);
        }
    }
    if let Some(missing) = wanted.iter().find(|i| !out.contains_key(i)) {
        return Err(broken(format!("stored hash {missing} is missing")));
    }
    Ok(out)
}

/// The stored hashes with `first <= idx < end`, in index order (a tile's rows).
pub async fn fetch_range(conn: &mut AnyConnection, first: u64, end: u64) -> Result<Vec<Hash>> {
    let rows =
        sqlx::query("SELECT idx, hash FROM audit_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(first as i64)
            .bind(end as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for (k, r) in rows.iter().enumerate() {
        let idx: i64 = r.try_get("idx").map_err(db_err)?;
        if idx as u64 != first + k as u64 {
            return Err(broken(format!(
                "stored hash {} is missing",
                first + k as u64
            )));
        }
        let text: String = r.try_get("hash").map_err(db_err)?;
        out.push(unhex(&text).ok_or_else(|| broken(format!("stored hash {idx} is malformed")))?);
    }
    if (out.len() as u64) < end - first {
        return Err(broken(format!(
            "stored hash {} is missing",
            first + out.len() as u64
        )));
    }
    Ok(out)
}

/// Runs the ms-tlog operation `op` over the stored hashes: once to learn the indexes it reads,
/// then on those hashes fetched in one go.
pub async fn with_hashes<T>(
    conn: &mut AnyConnection,
    op: impl Fn(&dyn HashReader) -> std::result::Result<T, TlogError>,
) -> Result<T> {
    // A failure here (sizes out of range) repeats below with the real hashes.
    let indexes = ms_tlog::indexes_read(|r| op(r));
    let hashes = fetch(conn, &indexes).await?;
    op(&Fetched(hashes)).map_err(tree_err)
}

/// Writes `hashes` at consecutive indexes from `first`.
async fn insert(conn: &mut AnyConnection, first: u64, hashes: &[Hash]) -> Result<()> {
    for (c, chunk) in hashes.chunks(200).enumerate() {
        let marks: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO audit_hashes (idx, hash) VALUES {}",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, h) in chunk.iter().enumerate() {
            q = q.bind((first + (c * 200 + i) as u64) as i64).bind(hex(h));
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// Adds the event `seq` (entry bytes `entry`) to the tree: its stored hashes, computed from
/// the ones before it, written in `tx` (the event's own transaction).
pub async fn append(tx: &mut Tx, seq: u64, entry: &[u8]) -> Result<()> {
    let n = seq - 1;
    let hashes = with_hashes(&mut *tx, |r| ms_tlog::stored_hashes_for_record(n, entry, r)).await?;
    insert(&mut *tx, ms_tlog::stored_hash_index(0, n), &hashes).await
}

/// The number of events: the log's size.
pub async fn size(conn: &mut AnyConnection) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(n as u64)
}

/// The records the stored hashes cover (0 when their count is no tree's: damage).
pub async fn hashed_records(conn: &mut AnyConnection) -> Result<u64> {
    // MAX, not COUNT: an index lookup, where COUNT scans millions of rows per tile served.
    let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(idx) FROM audit_hashes")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(max
        .and_then(|m| ms_tlog::record_count(m as u64 + 1))
        .unwrap_or(0))
}

async fn stored_count(conn: &mut AnyConnection) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_hashes")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(n as u64)
}

/// Computes the stored hashes of events that have none: databases written before the tree
/// existed (schema v3 adds it to registries with history). Runs at open, under the write
/// lock; a no-op when the tree covers every event.
pub async fn backfill(db: &Db) -> Result<u64> {
    {
        let mut conn = db.pool().acquire().await.map_err(db_err)?;
        let n = size(&mut conn).await?;
        if stored_count(&mut conn).await? == ms_tlog::stored_hash_count(n) {
            return Ok(0);
        }
    }
    let mut tx = db.begin_write().await?;
    let n = size(&mut tx).await?;
    let count = stored_count(&mut tx).await?;
    // More rows than the events need, or a count no tree has: the tables were damaged. The
    // registry still opens, so that `audit verify` can read the tiles and say what changed.
    let Some(done) = ms_tlog::record_count(count).filter(|&k| k < n) else {
        return Ok(0);
    };
    let mut after = done;
    while after < n {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 1000"
        )))
        .bind(after as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let raw = RawEvent::from_row(r)?;
            if raw.seq as u64 != after + 1 {
                return Err(broken(format!(
                    "audit event {} is missing: the tree cannot be built past it",
                    after + 1
                )));
            }
            append(&mut tx, raw.seq as u64, &raw.entry()).await?;
            after += 1;
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(n - done)
}

/// The root of the tree of the first `n` events.
pub async fn root(conn: &mut AnyConnection, n: u64) -> Result<Hash> {
    with_hashes(conn, |r| ms_tlog::tree_hash(n, r)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_as_hex() {
        let h: Hash = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }
}
