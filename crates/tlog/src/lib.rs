//! A verifiable append-only log, as the Go checksum database and Rekor v2 run theirs: RFC 6962
//! Merkle hashing over the Go sumdb stored-hash layout, inclusion and consistency proofs, and
//! (in the modules that follow) the C2SP tlog-tiles layout, tlog-checkpoint, signed notes,
//! tlog-cosignature witnesses and an offline verifier. Depends only on `ms-trust` (keys and
//! the `Signer` seam).

pub mod error;
pub mod hash;
pub mod proof;
pub mod stored;

pub use error::{Result, TlogError};
pub use hash::{Hash, leaf_hash, node_hash};
pub use proof::{check_record, check_tree, prove_record, prove_tree};
pub use stored::{
    EMPTY_TREE_HASH, HashReader, append_entry, indexes_read, record_count, split_stored_hash_index,
    stored_hash_count, stored_hash_index, stored_hashes_for_leaf, stored_hashes_for_record,
    tree_hash,
};
