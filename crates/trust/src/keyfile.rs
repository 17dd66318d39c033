//! Development key files: an Ed25519 or P-256 private key in an unencrypted PEM file (PKCS#8
//! `PRIVATE KEY` as `openssl genpkey`, Python's `cryptography` and `model_signing` use it, or
//! SEC1 `EC PRIVATE KEY`). A key on a disk is for development: the signer says so through its
//! kind, and trust policies refuse it for `prod`.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::codes::MT0004;
use crate::error::{Result, TrustError};
use crate::key::{Algorithm, PublicKey};
use crate::signer::{Signer, SignerKind};

enum Pair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// A signer whose private key is a local file (development only).
pub struct KeyFileSigner {
    pair: Pair,
    public: PublicKey,
}

impl fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        write!(f, "KeyFileSigner({:?})", self.public)
    }
}

fn err(msg: impl Into<String>) -> TrustError {
    TrustError::new(MT0004, msg)
}

/// The DER of the first PEM block labelled `label` in `text`, if any.
fn pem_block(text: &str, label: &str) -> Result<Option<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        return Ok(None);
    };
    let body_start = start + begin.len();
    let len = text[body_start..]
        .find(&end)
        .ok_or_else(|| err(format!("no `{end}` line after `{begin}`")))?;
    let body: String = text[body_start..body_start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    B64.decode(body)
        .map(Some)
        .map_err(|e| err(format!("the `{label}` PEM body is not base64: {e}")))
}

impl KeyFileSigner {
    /// A new random key.
    pub fn generate(algorithm: Algorithm) -> Result<Self> {
        let rng = SystemRandom::new();
        let der = match algorithm {
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8v1(&rng),
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
        }
        .map_err(|_| err("the system random generator failed to make a key"))?;
        Self::from_pkcs8_der(der.as_ref(), "a generated key")
    }

    /// Reads a key file; errors name the file but never show its content.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read the key file {}: {e}", path.display())))?;
        Self::from_pem(&text, &path.display().to_string())
    }

    /// A key from PEM text; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<Self> {
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(err(format!(
                "{origin} is an encrypted private key; decrypt it for development use \
                 (`openssl pkey -in {origin} -out plain.pem`)"
            )));
        }
        if let Some(der) = pem_block(text, "PRIVATE KEY")? {
            return Self::from_pkcs8_der(&der, origin);
        }
        if let Some(der) = pem_block(text, "EC PRIVATE KEY")? {
            let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                .map_err(|e| err(format!("{origin} is not a P-256 EC private key: {e}")))?;
            return Self::from_p256(pair);
        }
        Err(err(format!(
            "{origin} has no `-----BEGIN PRIVATE KEY-----` (PKCS#8) or \
             `-----BEGIN EC PRIVATE KEY-----` block"
        )))
    }

    fn from_pkcs8_der(der: &[u8], origin: &str) -> Result<Self> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let raw: [u8; 32] = pair
                .public_key()
                .as_ref()
                .try_into()
                .map_err(|_| err(format!("{origin}: an Ed25519 public key is 32 bytes")))?;
            return Ok(Self {
                public: PublicKey::ed25519(&raw),
                pair: Pair::Ed25519(pair),
            });
        }
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| {
            err(format!(
                "{origin} is a PKCS#8 key but neither Ed25519 nor ECDSA P-256 ({e}); \
                 make one with `modelspec signer keygen`"
            ))
        })?;
        Self::from_p256(pair)
    }

    fn from_p256(pair: EcdsaKeyPair) -> Result<Self> {
        Ok(Self {
            public: PublicKey::p256_sec1(pair.public_key().as_ref())?,
            pair: Pair::P256(pair),
        })
    }

    /// The private key as PEM PKCS#8 v1 (`-----BEGIN PRIVATE KEY-----`, 64 columns), the form
    /// openssl and `cryptography` write.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        let der = match &self.pair {
            Pair::Ed25519(p) => p.to_pkcs8v1(),
            Pair::P256(p) => p.to_pkcs8v1(),
        }
        .map_err(|_| err("the key cannot be encoded as PKCS#8"))?;
        let b64 = B64.encode(der.as_ref());
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        Ok(out)
    }

    /// ECDSA over a SHA-256 digest computed elsewhere (a signing proxy's digest requests); only
    /// P-256 keys can, Ed25519 signs whole messages.
    pub fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        let Pair::P256(p) = &self.pair else {
            return Err(err(
                "an Ed25519 key signs whole messages only, not a SHA-256 digest",
            ));
        };
        let d = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
            .map_err(|_| err("a SHA-256 digest is 32 bytes"))?;
        p.sign_digest(&d)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| err("ECDSA signing failed"))
    }

    /// Writes the key to a new file readable by its owner only (mode 0600). Atomic and never
    /// overwriting: the key is written beside `path`, then linked to `path`, which fails if
    /// `path` exists.
    pub fn save_pkcs8_pem(&self, path: &Path) -> Result<()> {
        write_new_file(path, self.to_pkcs8_pem()?.as_bytes(), 0o600)
    }
}

/// Creates `path` with `content` and `mode`, atomically, refusing to replace an existing file.
pub fn write_new_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| err(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            err(format!(
                "{} exists; choose another path (an existing key is never overwritten)",
                path.display()
            ))
        } else {
            err(format!("cannot write {}: {e}", path.display()))
        }
    })
}

impl Signer for KeyFileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.pair {
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::P256(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| err("ECDSA signing failed (the random generator failed)")),
        }
    }

    /// The inherent method for P-256; Ed25519 keeps the trait's MT0401 answer (the signing
    /// proxy maps it to 422).
    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        match &self.pair {
            Pair::P256(_) => KeyFileSigner::sign_sha256_digest(self, digest),
            Pair::Ed25519(_) => Err(crate::error::TrustError::new(
                crate::codes::MT0401,
                format!(
                    "the Ed25519 key file {} signs whole messages only, not a SHA-256 digest",
                    self.public.fingerprint()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn generated_keys_sign_save_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let s = KeyFileSigner::generate(alg).unwrap();
            assert_eq!(s.public_key().algorithm(), alg);
            assert!(s.kind().development_only());
            let sig = s.sign(b"m").unwrap();
            s.public_key().verify(b"m", &sig).unwrap();
            let digest: [u8; 32] = sha2::Sha256::digest(b"m").into();
            match alg {
                Algorithm::EcdsaP256Sha256 => {
                    let sig = s.sign_sha256_digest(&digest).unwrap();
                    s.public_key().verify(b"m", &sig).unwrap();
                }
                Algorithm::Ed25519 => assert!(s.sign_sha256_digest(&digest).is_err()),
            }
            let path = dir.path().join(format!("{alg}.pem"));
            s.save_pkcs8_pem(&path).unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let back = KeyFileSigner::load(&path).unwrap();
            assert_eq!(back.public_key(), s.public_key());
            let again = s.save_pkcs8_pem(&path).unwrap_err();
            assert!(again.message.contains("exists"), "{again}");
            assert!(!format!("{back:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn open_signer_reads_key_files_and_names_unknown_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let s = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
        s.save_pkcs8_pem(&path).unwrap();
        for r in [
            format!("file:{}", path.display()),
            path.display().to_string(),
        ] {
            let opened = crate::signer::open_signer(&r).unwrap();
            assert_eq!(opened.public_key(), s.public_key());
            assert_eq!(opened.kind(), SignerKind::KeyFile);
        }
        for r in ["", "s3://bucket/key", "file:"] {
            let e = crate::signer::open_signer(r).err().unwrap();
            assert_eq!(e.code, crate::codes::MT0003, "{r}");
        }
        let e = crate::signer::open_signer("file:/nonexistent/k.pem")
            .err()
            .unwrap();
        assert!(e.message.contains("/nonexistent/k.pem"), "{e}");
    }

    #[test]
    fn openssl_written_keys_load() {
        // `openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt`.
        let p256 = "-----BEGIN PRIVATE KEY-----\n\
            MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3Gsl8GuaaSdGzLVa\n\
            A3aNtGMY81pzX7fBA03DXej2vfuhRANCAARLvhYqq3P1dUQSegsS2Y5FLern+s7D\n\
            Nb/PsrILJX3IdrcPBS7OSGfEcG2+WzKChsVZJlBM39vjY+kr1JI4Ljyl\n\
            -----END PRIVATE KEY-----\n";
        let s = KeyFileSigner::from_pem(p256, "k.pem").unwrap();
        assert_eq!(s.public_key().algorithm(), Algorithm::EcdsaP256Sha256);
        // `openssl genpkey -algorithm ed25519`.
        let ed = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEICUtc/VRf7oJTSMp1uV0Tf5OVSc3KTq9wVbUW9hW4aj8\n\
            -----END PRIVATE KEY-----\n";
        let s = KeyFileSigner::from_pem(ed, "e.pem").unwrap();
        assert_eq!(s.public_key().algorithm(), Algorithm::Ed25519);
    }

    #[test]
    fn bad_key_files_are_clear_errors() {
        for (text, want) in [
            ("nothing", "no `-----BEGIN PRIVATE KEY-----`"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
                "base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "neither Ed25519",
            ),
        ] {
            let e = KeyFileSigner::from_pem(text, "x.pem").unwrap_err();
            assert_eq!(e.code, MT0004);
            assert!(e.message.contains(want), "{want}: {e}");
        }
    }
}
