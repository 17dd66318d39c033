//! Test helpers: an Ed25519 `Signer` from a fixed seed (aws-lc-rs), and a small JSON log.
#![allow(dead_code)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use ms_tlog::MemoryLog;
use ms_trust::{PublicKey, Signer, SignerKind, TrustError};

/// A development key in memory, from a 32-byte seed (deterministic: notes are reproducible).
pub struct SeedSigner {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl SeedSigner {
    pub fn new(seed: &[u8; 32]) -> Self {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("seed");
        let raw: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        Self {
            pair,
            public: PublicKey::ed25519(&raw),
        }
    }
}

impl Signer for SeedSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

pub const ORIGIN: &str = "modelspec.test/log";

/// The entry of event `seq`: canonical JSON with a `seq` field, as the registry's audit log.
pub fn event(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"action":"model.register","actor":"alice","details":{{"n":{}}},"seq":{seq}}}"#,
        seq * 7
    )
    .into_bytes()
}

/// A log of `n` events.
pub fn json_log(n: u64) -> MemoryLog {
    let mut log = MemoryLog::new(ORIGIN);
    for seq in 1..=n {
        log.append(&event(seq)).unwrap();
    }
    log
}
