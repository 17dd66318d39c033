//! The one seam through which anything is signed. The registry and the log hold no private key:
//! they hold a `Signer`, opened from a reference — a PKCS#11 URI (an HSM or a cloud KMS's PKCS#11
//! library), a signing proxy URL, or a key file for development only.

use crate::error::Result;
use crate::key::PublicKey;

/// Where a signer's key lives; decides what it may sign for (a development key never for `prod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    /// A private key in a local file: development only.
    KeyFile,
    /// A key inside a PKCS#11 token; it never leaves the token.
    Pkcs11,
    /// A signing proxy over HTTP; `development_only` is what the proxy says of its own key.
    Proxy { development_only: bool },
}

impl SignerKind {
    /// True when signatures by this signer must not be accepted for `prod`.
    pub fn development_only(self) -> bool {
        match self {
            SignerKind::KeyFile => true,
            SignerKind::Pkcs11 => false,
            SignerKind::Proxy { development_only } => development_only,
        }
    }
}

/// Signs messages with one key.
///
/// `sign` receives the whole message: Ed25519 (PureEdDSA) is defined over it, and the messages we
/// sign are small (a DSSE pre-authentication encoding, a checkpoint). ECDSA signers hash it with
/// SHA-256 themselves. Signatures are returned as `PublicKey::verify` accepts them: 64 bytes for
/// Ed25519, ASN.1 DER for ECDSA.
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    fn kind(&self) -> SignerKind;
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}
