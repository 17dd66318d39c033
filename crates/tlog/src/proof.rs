//! Inclusion ("record") and consistency ("tree") proofs, RFC 9162 §2.1.3–2.1.4, in the form
//! of the Go checksum database: a proof is the list of sibling subtree hashes, bottom-up.
//! Verification rejects a proof with a missing or an extra hash.

use ms_trust::codes::{MT0601, MT0603};

use crate::error::{Result, TlogError};
use crate::hash::{Hash, node_hash};
use crate::stored::{
    HashReader, MAX_TREE_SIZE, check_size, maxpow2, read_exact, sub_tree_hash, sub_tree_index,
};

fn failed(what: &str) -> TlogError {
    TlogError::new(
        MT0601,
        format!("the {what} proof does not verify: the log's hashes differ from the ones proved"),
    )
}

/// The inclusion proof of record `n` in the tree of `t` records.
pub fn prove_record(t: u64, n: u64, r: &dyn HashReader) -> Result<Vec<Hash>> {
    check_size("tree size", t)?;
    if n >= t {
        return Err(TlogError::new(
            MT0603,
            format!(
                "cannot prove record {n} in a tree of {t} records: the index must be below the size"
            ),
        ));
    }
    let mut indexes = Vec::new();
    leaf_proof_index(0, t, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let mut proof = Vec::new();
    let rest = leaf_proof(0, t, n, &hashes, &mut proof)?;
    if !rest.is_empty() {
        return Err(TlogError::new(
            MT0603,
            "prove_record: index arithmetic mismatch",
        ));
    }
    Ok(proof)
}

fn leaf_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if lo + 1 == hi {
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

/// Walks down towards leaf `n`, pushing the hash of the side not taken (bottom-up order).
fn leaf_proof<'a>(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &'a [Hash],
    proof: &mut Vec<Hash>,
) -> Result<&'a [Hash]> {
    if lo + 1 == hi {
        // The verifier knows the leaf hash.
        return Ok(hashes);
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        let rest = leaf_proof(lo, lo + k, n, hashes, proof)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        proof.push(th);
        Ok(rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let rest = leaf_proof(lo + k, hi, n, rest, proof)?;
        proof.push(th);
        Ok(rest)
    }
}

/// Checks that `proof` proves record `n` with leaf hash `h` in the tree of `t` records whose
/// root is `th`.
pub fn check_record(proof: &[Hash], t: u64, th: Hash, n: u64, h: Hash) -> Result<()> {
    if n >= t || t > MAX_TREE_SIZE {
        return Err(failed("inclusion"));
    }
    match run_record_proof(proof, 0, t, n, h) {
        Some(root) if root == th => Ok(()),
        _ => Err(failed("inclusion")),
    }
}

fn run_record_proof(p: &[Hash], lo: u64, hi: u64, n: u64, leaf: Hash) -> Option<Hash> {
    if lo + 1 == hi {
        return p.is_empty().then_some(leaf);
    }
    let (last, p) = p.split_last()?;
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        let th = run_record_proof(p, lo, lo + k, n, leaf)?;
        Some(node_hash(&th, last))
    } else {
        let th = run_record_proof(p, lo + k, hi, n, leaf)?;
        Some(node_hash(last, &th))
    }
}

/// The consistency proof between the tree of `n` records and the tree of `t` records
/// (`1 ≤ n ≤ t`).
pub fn prove_tree(t: u64, n: u64, r: &dyn HashReader) -> Result<Vec<Hash>> {
    check_size("tree size", t)?;
    if n < 1 || n > t {
        return Err(TlogError::new(
            MT0603,
            format!(
                "cannot prove the tree of {n} records consistent with the tree of {t}: need 1 ≤ old size ≤ new size"
            ),
        ));
    }
    let mut indexes = Vec::new();
    tree_proof_index(0, t, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let mut proof = Vec::new();
    let rest = tree_proof(0, t, n, &hashes, &mut proof)?;
    if !rest.is_empty() {
        return Err(TlogError::new(
            MT0603,
            "prove_tree: index arithmetic mismatch",
        ));
    }
    Ok(proof)
}

fn tree_proof_index(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) {
    if n == hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

fn tree_proof<'a>(
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &'a [Hash],
    proof: &mut Vec<Hash>,
) -> Result<&'a [Hash]> {
    if n == hi {
        if lo == 0 {
            // This subtree is the old tree: the verifier knows its hash.
            return Ok(hashes);
        }
        let (th, rest) = sub_tree_hash(lo, hi, hashes)?;
        proof.push(th);
        return Ok(rest);
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let rest = tree_proof(lo, lo + k, n, hashes, proof)?;
        let (th, rest) = sub_tree_hash(lo + k, hi, rest)?;
        proof.push(th);
        Ok(rest)
    } else {
        let (th, rest) = sub_tree_hash(lo, lo + k, hashes)?;
        let rest = tree_proof(lo + k, hi, n, rest, proof)?;
        proof.push(th);
        Ok(rest)
    }
}

/// Checks that `proof` proves the tree of `n` records with root `h` is a prefix of the tree of
/// `t` records with root `th`.
pub fn check_tree(proof: &[Hash], t: u64, th: Hash, n: u64, h: Hash) -> Result<()> {
    if n < 1 || n > t || t > MAX_TREE_SIZE {
        return Err(failed("consistency"));
    }
    match run_tree_proof(proof, 0, t, n, h) {
        Some((h2, th2)) if h2 == h && th2 == th => Ok(()),
        _ => Err(failed("consistency")),
    }
}

/// Returns (old tree hash, new tree hash) as the proof computes them.
fn run_tree_proof(p: &[Hash], lo: u64, hi: u64, n: u64, old: Hash) -> Option<(Hash, Hash)> {
    if n == hi {
        if lo == 0 {
            return p.is_empty().then_some((old, old));
        }
        return (p.len() == 1).then(|| (p[0], p[0]));
    }
    let (last, p) = p.split_last()?;
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (oh, th) = run_tree_proof(p, lo, lo + k, n, old)?;
        Some((oh, node_hash(&th, last)))
    } else {
        let (oh, th) = run_tree_proof(p, lo + k, hi, n, old)?;
        Some((node_hash(last, &oh), node_hash(last, &th)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::stored::{append_entry, tree_hash};

    fn log(n: u64) -> Vec<Hash> {
        let mut hashes = Vec::new();
        for i in 0..n {
            append_entry(&mut hashes, format!("entry {i}").as_bytes()).unwrap();
        }
        hashes
    }

    #[test]
    fn every_record_and_prefix_proves_in_small_trees() {
        let hashes = log(40);
        for t in 1..=40u64 {
            let th = tree_hash(t, &hashes).unwrap();
            for n in 0..t {
                let p = prove_record(t, n, &hashes).unwrap();
                let h = leaf_hash(format!("entry {n}").as_bytes());
                check_record(&p, t, th, n, h).unwrap();
                assert!(check_record(&p, t, th, n, leaf_hash(b"other")).is_err());
                let mut longer = p.clone();
                longer.push([0; 32]);
                assert!(check_record(&longer, t, th, n, h).is_err());
            }
            for n in 1..=t {
                let p = prove_tree(t, n, &hashes).unwrap();
                let h = tree_hash(n, &hashes).unwrap();
                check_tree(&p, t, th, n, h).unwrap();
                assert!(check_tree(&p, t, th, n, [7; 32]).is_err());
            }
        }
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let hashes = log(3);
        assert_eq!(prove_record(3, 3, &hashes).unwrap_err().code, MT0603);
        assert_eq!(prove_tree(3, 0, &hashes).unwrap_err().code, MT0603);
        assert_eq!(prove_tree(3, 4, &hashes).unwrap_err().code, MT0603);
        assert_eq!(
            check_tree(&[], 3, [0; 32], 0, [0; 32]).unwrap_err().code,
            MT0601
        );
        assert!(prove_record(10, 4, &hashes).is_err());
        // Sizes from a hostile checkpoint: errors, never an overflow panic.
        for t in [u64::MAX, u64::MAX / 2 + 1, (1 << 62) + 1] {
            assert!(check_record(&[[0; 32]; 3], t, [0; 32], 5, [0; 32]).is_err());
            assert!(check_tree(&[[0; 32]; 3], t, [0; 32], 5, [0; 32]).is_err());
            assert!(check_tree(&[[0; 32]; 3], t, [0; 32], t - 1, [0; 32]).is_err());
            assert_eq!(prove_record(t, 1, &hashes).unwrap_err().code, MT0603);
            assert_eq!(prove_tree(t, 1, &hashes).unwrap_err().code, MT0603);
            assert_eq!(tree_hash(t, &hashes).unwrap_err().code, MT0603);
        }
        assert!(tree_hash(1 << 62, &hashes).is_err());
        let _ = crate::stored::split_stored_hash_index(u64::MAX);
        let _ = crate::stored::stored_hash_index(63, u64::MAX);
        let _ = crate::stored::record_count(u64::MAX);
    }
}
