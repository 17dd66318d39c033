//! The one seam through which anything is signed. The registry and the log hold no private key:
//! they hold a `Signer`, opened from a reference — a PKCS#11 URI (an HSM or a cloud KMS's PKCS#11
//! library), a signing proxy URL, or a key file for development only.

use crate::codes::MT0401;
use crate::error::{Result, TrustError};
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

/// Opens the signer a reference names: `pkcs11:…` (an RFC 7512 URI: a key in an HSM or a cloud
/// KMS's PKCS#11 library), `http://…` / `https://…` (a signing proxy), or `file:PATH` / a bare
/// path (a development key file, PEM PKCS#8).
pub fn open_signer(reference: &str) -> Result<Box<dyn Signer>> {
    if reference.starts_with("pkcs11:") {
        return Ok(Box::new(crate::pkcs11::open(reference)?));
    }
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return Ok(Box::new(crate::proxy::open(reference)?));
    }
    let path = reference.strip_prefix("file:").unwrap_or(reference);
    if path.is_empty() || path.contains("://") {
        return Err(crate::error::TrustError::new(
            crate::codes::MT0003,
            format!(
                "{reference:?} is not a signer reference: write `file:KEY.pem`, `pkcs11:…` or \
                 an `https://` signing proxy URL"
            ),
        ));
    }
    let signer = crate::keyfile::KeyFileSigner::load(std::path::Path::new(path))?;
    Ok(Box::new(signer))
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

    /// ECDSA over a SHA-256 digest computed elsewhere, DER out: what a signing proxy does when
    /// its client sends the digest instead of the message ("digest in, signature out"). Ed25519
    /// (PureEdDSA) cannot sign a digest; signers that cannot keep this default.
    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        let _ = digest;
        Err(TrustError::new(
            MT0401,
            format!(
                "the {} key {} signs whole messages only, not a SHA-256 digest",
                self.public_key().algorithm(),
                self.public_key().fingerprint()
            ),
        ))
    }
}
