//! A verifiable append-only log, as the Go checksum database and Rekor v2 run theirs: RFC 6962
//! Merkle hashing over the Go sumdb stored-hash layout, inclusion and consistency proofs, and
//! the C2SP tlog-tiles layout, tlog-checkpoint, signed notes, tlog-cosignature witnesses and an
//! offline verifier. Depends only on `ms-trust` (keys and the `Signer` seam).
//!
//! A log is an append-only array of stored hashes; each record appends its own:
//!
//! ```
//! use ms_tlog::{append_entry, check_record, check_tree, leaf_hash, prove_record, prove_tree, tree_hash};
//!
//! let mut hashes = Vec::new();
//! for seq in 1..=10u64 {
//!     append_entry(&mut hashes, format!(r#"{{"seq":{seq}}}"#).as_bytes())?;
//! }
//! let root = tree_hash(10, &hashes)?;
//! // Event 4 (index 3) is in the tree of 10 …
//! let proof = prove_record(10, 3, &hashes)?;
//! check_record(&proof, 10, root, 3, leaf_hash(br#"{"seq":4}"#))?;
//! // … and the tree of 6 is a prefix of it.
//! let proof = prove_tree(10, 6, &hashes)?;
//! check_tree(&proof, 10, root, 6, tree_hash(6, &hashes)?)?;
//! # Ok::<(), ms_tlog::TlogError>(())
//! ```

pub mod checkpoint;
pub mod cosignature;
pub mod entries;
pub mod error;
pub mod hash;
pub mod note;
pub mod proof;
pub mod source;
pub mod state;
pub mod stored;
pub mod tile;
pub mod verify;
pub mod witness;

pub use checkpoint::Checkpoint;
pub use entries::{decode_entries, encode_entries};
pub use error::{Result, TlogError};
pub use hash::{Hash, leaf_hash, node_hash};
pub use note::{Note, NoteSignature, Opened, Verifier};
pub use proof::{check_record, check_tree, prove_record, prove_tree};
pub use source::{DirSource, MemoryLog, MemorySource, TileHashReader, TileSource};
pub use state::{DirState, MemoryState, StateStore};
pub use stored::{
    EMPTY_TREE_HASH, HashReader, append_entry, indexes_read, record_count, split_stored_hash_index,
    stored_hash_count, stored_hash_index, stored_hashes_for_leaf, stored_hashes_for_record,
    tree_hash,
};
pub use tile::{Tile, tile_bytes};
pub use verify::{Diagnosis, Finding, Options, Trust, verify};
pub use witness::{AddCheckpoint, Witness, WitnessError};
