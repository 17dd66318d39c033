//! Public keys: Ed25519 and ECDSA P-256, held as SubjectPublicKeyInfo DER (what PEM `PUBLIC KEY`
//! files, Sigstore bundles and PKCS#11 exports reduce to), identified by a fingerprint, and
//! verified with aws-lc-rs (the crypto provider the TLS stack already brings).

use std::fmt;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::codes::{MT0001, MT0002};
use crate::error::{Result, TrustError};

/// The two signature algorithms we sign and verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// PureEdDSA over the whole message (RFC 8032); 64-byte signatures.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA over SHA-256 of the message; ASN.1 DER signatures (as Sigstore and OMS use).
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The name used in files, headers and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// DER prefixes of the two SubjectPublicKeyInfo shapes we accept (RFC 8410, RFC 5480).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A public key of either algorithm.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    algorithm: Algorithm,
    spki_der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.algorithm, self.fingerprint())
    }
}

impl PublicKey {
    /// An Ed25519 key from its 32 raw bytes.
    pub fn ed25519(raw: &[u8; 32]) -> Self {
        let mut spki_der = ED25519_SPKI_PREFIX.to_vec();
        spki_der.extend_from_slice(raw);
        Self {
            algorithm: Algorithm::Ed25519,
            spki_der,
        }
    }

    /// A P-256 key from its SEC1 uncompressed point (`0x04 ‖ x ‖ y`, 65 bytes).
    pub fn p256_sec1(point: &[u8]) -> Result<Self> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(TrustError::new(
                MT0001,
                format!(
                    "a P-256 public key must be an uncompressed SEC1 point of 65 bytes starting \
                     with 0x04; got {} bytes",
                    point.len()
                ),
            ));
        }
        let mut spki_der = P256_SPKI_PREFIX.to_vec();
        spki_der.extend_from_slice(point);
        Ok(Self {
            algorithm: Algorithm::EcdsaP256Sha256,
            spki_der,
        })
    }

    /// A key from SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        if der.len() == ED25519_SPKI_PREFIX.len() + 32 && der.starts_with(&ED25519_SPKI_PREFIX) {
            return Ok(Self {
                algorithm: Algorithm::Ed25519,
                spki_der: der.to_vec(),
            });
        }
        if der.len() == P256_SPKI_PREFIX.len() + 65 && der.starts_with(&P256_SPKI_PREFIX) {
            return Self::p256_sec1(&der[P256_SPKI_PREFIX.len()..]);
        }
        Err(TrustError::new(
            MT0001,
            format!(
                "a SubjectPublicKeyInfo of {} bytes is neither Ed25519 nor ECDSA P-256 \
                 (uncompressed); export the key as Ed25519 or P-256",
                der.len()
            ),
        ))
    }

    /// A key from a PEM `PUBLIC KEY` block (other text around it is ignored).
    pub fn from_pem(pem: &str) -> Result<Self> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let start = pem.find(BEGIN).ok_or_else(|| {
            TrustError::new(MT0001, format!("no `{BEGIN}` line: not a PEM public key"))
        })? + BEGIN.len();
        let len = pem[start..]
            .find(END)
            .ok_or_else(|| TrustError::new(MT0001, format!("no `{END}` line after `{BEGIN}`")))?;
        let body: String = pem[start..start + len]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = B64
            .decode(body)
            .map_err(|e| TrustError::new(MT0001, format!("the PEM body is not base64: {e}")))?;
        Self::from_spki_der(&der)
    }

    /// The key as a PEM `PUBLIC KEY` block, 64 columns, with a final newline.
    pub fn to_pem(&self) -> String {
        let b64 = B64.encode(&self.spki_der);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The raw key: 32 bytes for Ed25519, the 65-byte SEC1 point for P-256.
    pub fn raw(&self) -> &[u8] {
        match self.algorithm {
            Algorithm::Ed25519 => &self.spki_der[ED25519_SPKI_PREFIX.len()..],
            Algorithm::EcdsaP256Sha256 => &self.spki_der[P256_SPKI_PREFIX.len()..],
        }
    }

    /// `sha256:<hex>` of the SubjectPublicKeyInfo DER: how policies, records and headers name a
    /// key (the same value `openssl pkey -pubin -outform DER | sha256sum` prints).
    pub fn fingerprint(&self) -> String {
        let d = Sha256::digest(&self.spki_der);
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in d {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Checks `signature` over `message`: PureEdDSA for Ed25519, ECDSA-SHA256 with an ASN.1 DER
    /// signature for P-256.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let ok = match self.algorithm {
            Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, self.raw())
                .verify(message, signature)
                .is_ok(),
            Algorithm::EcdsaP256Sha256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, self.raw())
                    .verify(message, signature)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(TrustError::new(
                MT0002,
                format!(
                    "the {} signature does not verify with key {}",
                    self.algorithm,
                    self.fingerprint()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    };

    #[test]
    fn ed25519_keys_round_trip_pem_and_verify_only_their_message() {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let raw: [u8; 32] = kp.public_key().as_ref().try_into().unwrap();
        let key = PublicKey::ed25519(&raw);
        let back = PublicKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(back, key);
        let sig = kp.sign(b"hello");
        key.verify(b"hello", sig.as_ref()).unwrap();
        let err = key.verify(b"hellO", sig.as_ref()).unwrap_err();
        assert_eq!(err.code, MT0002);
    }

    #[test]
    fn p256_keys_round_trip_pem_and_verify_only_their_message() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let key = PublicKey::p256_sec1(kp.public_key().as_ref()).unwrap();
        assert_eq!(PublicKey::from_pem(&key.to_pem()).unwrap(), key);
        let sig = kp.sign(&rng, b"model").unwrap();
        key.verify(b"model", sig.as_ref()).unwrap();
        assert!(key.verify(b"modeL", sig.as_ref()).is_err());
        assert!(key.fingerprint().starts_with("sha256:") && key.fingerprint().len() == 71);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert_eq!(PublicKey::from_pem("nothing").unwrap_err().code, MT0001);
        assert_eq!(
            PublicKey::from_spki_der(&[0x30, 1, 2]).unwrap_err().code,
            MT0001
        );
        assert_eq!(PublicKey::p256_sec1(&[4; 33]).unwrap_err().code, MT0001);
    }
}
