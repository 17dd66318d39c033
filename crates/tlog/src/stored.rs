//! The stored-hash layout of the Go checksum database (`golang.org/x/mod/sumdb/tlog`): every hash
//! of the tree (leaves and complete subtrees) gets one index in the order the hashes become
//! known while records are appended, so a log is an append-only array of hashes. Record `n`
//! appends its leaf hash, then the hash of every subtree it completes (one per trailing 1 bit
//! of `n`). Tree hashes of any size are computed from at most `1 + log₂ n` stored hashes.

use std::cell::RefCell;

use ms_trust::codes::{MT0602, MT0603};

use crate::error::{Result, TlogError};
use crate::hash::{Hash, leaf_hash, node_hash};

/// Reads stored hashes by index (a database table, an in-memory vector, a set of tiles).
///
/// Must return exactly one hash per index, in the order asked.
pub trait HashReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>>;
}

impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or_else(|| {
                        TlogError::new(
                            MT0602,
                            format!(
                                "stored hash {i} is not there: the log holds {} stored hashes",
                                self.len()
                            ),
                        )
                    })
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
        self.as_slice().read_hashes(indexes)
    }
}

/// Reads through `r` and checks that it answered one hash per index.
pub(crate) fn read_exact(r: &dyn HashReader, indexes: &[u64]) -> Result<Vec<Hash>> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::new(
            MT0602,
            format!(
                "the hash reader returned {} hashes for {} indexes",
                hashes.len(),
                indexes.len()
            ),
        ));
    }
    Ok(hashes)
}

/// The index of the `n`-th hash at `level` (level 0 = leaves; level `l` = subtrees of `2^l`
/// leaves) in the stored-hash array.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // Level L's n-th hash is written right after level L+1's (2n+1)-th hash: go down to
    // level 0, where record n's leaf hash sits at n + n/2 + n/4 + …, then add the levels back.
    // Wrapping: sizes come from untrusted checkpoints and paths; an index beyond any real log
    // must give "no such hash", never a panic.
    let mut n = n;
    for _ in 0..level {
        n = n.wrapping_mul(2).wrapping_add(1);
    }
    let mut i = 0u64;
    while n > 0 {
        i = i.wrapping_add(n);
        n >>= 1;
    }
    i.wrapping_add(u64::from(level))
}

/// The inverse of [`stored_hash_index`]: `(level, n)` of the hash stored at `index`.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // stored_hash_index(0, n) < 2n, so the record that wrote `index` is in
    // [index/2, index/2 + log₂ index].
    let index = index.min(MAX_STORED_INDEX);
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    loop {
        // Record n adds 1 + trailing_zeros(n + 1) hashes.
        let next = index_n + 1 + u64::from((n + 1).trailing_zeros());
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// The largest tree size the operations accept (2^62 records): larger sizes in a checkpoint or
/// request are refused instead of overflowing.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// The largest stored-hash index [`split_stored_hash_index`] handles (that of a tree of
/// [`MAX_TREE_SIZE`] records).
pub const MAX_STORED_INDEX: u64 = (MAX_TREE_SIZE - 1) * 2 + 62;

/// Refuses a size beyond [`MAX_TREE_SIZE`].
pub(crate) fn check_size(what: &str, n: u64) -> Result<()> {
    if n > MAX_TREE_SIZE {
        return Err(TlogError::new(
            MT0603,
            format!("{what} {n} is beyond the largest log this library handles (2^62 records)"),
        ));
    }
    Ok(())
}

/// How many hashes a tree of `n` records stores.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // The hashes up to the last leaf, and one per subtree completed by that leaf.
    stored_hash_index(0, n - 1) + 1 + u64::from((n - 1).trailing_ones())
}

/// The hashes to append to the store when adding record number `n` (0-based) with bytes
/// `entry`: its leaf hash, then the hashes of the subtrees it completes. Reads the
/// left siblings it needs from `r` (the hashes stored for records `0..n`).
pub fn stored_hashes_for_record(n: u64, entry: &[u8], r: &dyn HashReader) -> Result<Vec<Hash>> {
    stored_hashes_for_leaf(n, leaf_hash(entry), r)
}

/// [`stored_hashes_for_record`] from the record's leaf hash.
pub fn stored_hashes_for_leaf(n: u64, leaf: Hash, r: &dyn HashReader) -> Result<Vec<Hash>> {
    check_size("record index", n)?;
    // Each trailing 1 bit of n completes a subtree whose left half is already stored.
    let m = (n + 1).trailing_zeros();
    let indexes: Vec<u64> = (0..m)
        .rev()
        .map(|i| stored_hash_index(i, (n >> i) - 1))
        .collect();
    let old = read_exact(r, &indexes)?;
    let mut hashes = Vec::with_capacity(1 + m as usize);
    let mut h = leaf;
    hashes.push(h);
    for i in 0..m as usize {
        h = node_hash(&old[m as usize - 1 - i], &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// Appends record `entry` to an in-memory store of a log of `hashes` (a helper for tests and
/// small tools); returns the record's index.
pub fn append_entry(hashes: &mut Vec<Hash>, entry: &[u8]) -> Result<u64> {
    let n = record_count(hashes.len() as u64).ok_or_else(|| {
        TlogError::new(
            MT0602,
            format!(
                "{} stored hashes is not the size of a complete log",
                hashes.len()
            ),
        )
    })?;
    let new = stored_hashes_for_record(n, entry, &*hashes)?;
    hashes.extend(new);
    Ok(n)
}

/// The number of records of a log that stores `count` hashes, if `count` is such a size.
pub fn record_count(count: u64) -> Option<u64> {
    if count == 0 {
        return Some(0);
    }
    if count > MAX_STORED_INDEX {
        return None;
    }
    // The last stored hash, (level, n), covers records up to (n + 1)·2^level − 1 and was
    // written with the last of them; the log holds that many records only if every hash that
    // record wrote is there.
    let (level, n) = split_stored_hash_index(count - 1);
    let records = (n + 1) << level;
    (stored_hash_count(records) == count).then_some(records)
}

/// The largest power of two strictly below `n` (1 for n ≤ 2), with its log₂.
pub(crate) fn maxpow2(n: u64) -> (u64, u32) {
    let mut l = 0u32;
    while l < 63 && (1u64 << (l + 1)) < n {
        l += 1;
    }
    (1u64 << l, l)
}

/// Appends the stored-hash indexes that make up the subtree of records `lo..hi` (its complete
/// power-of-two parts, left to right).
pub(crate) fn sub_tree_index(mut lo: u64, hi: u64, need: &mut Vec<u64>) {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// The hash of the subtree of records `lo..hi` from the hashes `sub_tree_index` asked for; returns
/// the hashes left over.
pub(crate) fn sub_tree_hash(mut lo: u64, hi: u64, hashes: &[Hash]) -> Result<(Hash, &[Hash])> {
    let mut parts = 0usize;
    while lo < hi {
        let (k, _) = maxpow2(hi - lo + 1);
        parts += 1;
        lo += k;
    }
    if parts == 0 || hashes.len() < parts {
        return Err(TlogError::new(
            MT0602,
            "too few stored hashes for a subtree (a bug in the hash reader)",
        ));
    }
    let mut h = hashes[parts - 1];
    for i in (0..parts - 1).rev() {
        h = node_hash(&hashes[i], &h);
    }
    Ok((h, &hashes[parts..]))
}

/// The RFC 6962 hash of the empty tree, `SHA-256("")`.
pub const EMPTY_TREE_HASH: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The root hash of the tree of the first `n` records, from at most `1 + log₂ n` stored hashes.
/// The empty tree's hash is RFC 6962's `SHA-256("")` (Go's sumdb returns zeros there).
pub fn tree_hash(n: u64, r: &dyn HashReader) -> Result<Hash> {
    if n == 0 {
        return Ok(EMPTY_TREE_HASH);
    }
    check_size("tree size", n)?;
    let mut indexes = Vec::new();
    sub_tree_index(0, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let (h, rest) = sub_tree_hash(0, n, &hashes)?;
    if !rest.is_empty() {
        return Err(TlogError::new(
            MT0603,
            "tree_hash: index arithmetic mismatch",
        ));
    }
    Ok(h)
}

/// The stored-hash indexes an operation reads. The indexes the operations of this crate read
/// depend only on sizes, never on hash values, so an async caller runs the operation once with
/// `indexes_read`, fetches those hashes, and runs it again with a reader over them.
pub fn indexes_read<F, R>(f: F) -> Vec<u64>
where
    F: FnOnce(&dyn HashReader) -> R,
{
    struct Recorder(RefCell<Vec<u64>>);
    impl HashReader for Recorder {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>> {
            self.0.borrow_mut().extend_from_slice(indexes);
            Ok(vec![[0u8; 32]; indexes.len()])
        }
    }
    let recorder = Recorder(RefCell::new(Vec::new()));
    let _ = f(&recorder);
    recorder.0.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_index_matches_the_go_layout() {
        // From golang.org/x/mod/sumdb/tlog: records 0..4 store
        // [L0 0] [L0 1, L1 0] [L0 2] [L0 3, L1 1, L2 0] …
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(0, 3), 4);
        assert_eq!(stored_hash_index(1, 1), 5);
        assert_eq!(stored_hash_index(2, 0), 6);
        assert_eq!(stored_hash_index(0, 4), 7);
        for i in 0..10_000 {
            let (level, n) = split_stored_hash_index(i);
            assert_eq!(stored_hash_index(level, n), i, "index {i}");
        }
    }

    #[test]
    fn counts_and_record_counts_agree() {
        let mut hashes = Vec::new();
        for n in 0..600u64 {
            assert_eq!(stored_hash_count(n), hashes.len() as u64);
            assert_eq!(record_count(hashes.len() as u64), Some(n));
            assert_eq!(append_entry(&mut hashes, &n.to_be_bytes()).unwrap(), n);
        }
        assert_eq!(record_count(2), None);
    }

    #[test]
    fn indexes_read_records_what_tree_hash_reads() {
        let idx = indexes_read(|r| tree_hash(7, r));
        assert_eq!(
            idx,
            vec![
                stored_hash_index(2, 0),
                stored_hash_index(1, 2),
                stored_hash_index(0, 6)
            ]
        );
    }
}
