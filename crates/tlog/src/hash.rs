//! RFC 6962 hashing (RFC 9162 §2.1.1): a leaf is `SHA-256(0x00 ‖ entry)`, an interior node
//! `SHA-256(0x01 ‖ left ‖ right)`; the prefixes keep a leaf from passing for a node.

use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf or of a subtree.
pub type Hash = [u8; 32];

/// The hash of a log entry: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Lower-case hex of a hash, for messages.
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_leaf_matches_rfc6962_test_vector() {
        // SHA-256 of the single byte 0x00 (RFC 6962's empty-entry leaf).
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
