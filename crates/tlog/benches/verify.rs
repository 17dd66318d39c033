//! How long the offline verifier takes for a log of N events (default 1,000,000; `-- N` to
//! change): build the log in memory, publish its tiles, verify from scratch, verify again with
//! the kept state. Run with `cargo bench -p ms-tlog --bench verify [-- N]`.

use std::time::Instant;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use ms_tlog::{MemoryLog, MemoryState, Options, Trust, Verifier, verify};
use ms_trust::{PublicKey, Signer, SignerKind, TrustError};

struct SeedSigner(Ed25519KeyPair, PublicKey);

impl Signer for SeedSigner {
    fn public_key(&self) -> &PublicKey {
        &self.1
    }
    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        Ok(self.0.sign(message).as_ref().to_vec())
    }
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let pair = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
    let raw: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
    let signer = SeedSigner(pair, PublicKey::ed25519(&raw));
    let origin = "bench.modelspec/log";

    let t = Instant::now();
    let mut log = MemoryLog::new(origin);
    for seq in 1..=n {
        // About the size of a registry audit event's canonical JSON.
        let e = format!(
            r#"{{"action":"model.promote","actor":"alice@example.com","at":"2026-12-07T02:00:00Z","details":{{"model":"m{}","status":"prod","version":{}}},"digest":"sha256:{:064x}","seq":{seq}}}"#,
            seq % 97,
            seq % 13,
            seq
        );
        log.append(e.as_bytes()).unwrap();
    }
    let append = t.elapsed();
    let t = Instant::now();
    let src = log.publish(n, origin, &signer).unwrap();
    let publish = t.elapsed();
    let trust = Trust::log(Verifier::new(origin, signer.public_key()).unwrap());
    let options = Options {
        since: None,
        check_seq: true,
    };
    let mut state = MemoryState::default();
    let t = Instant::now();
    let d = verify(&src, &mut state, &trust, &options).unwrap();
    let first = t.elapsed();
    assert!(d.is_ok(), "{d}");
    let t = Instant::now();
    let d = verify(&src, &mut state, &trust, &options).unwrap();
    let again = t.elapsed();
    assert!(d.is_ok(), "{d}");
    println!(
        "{n} events: append {:.2?} ({:.0} events/s), publish tiles {:.2?}, verify {:.2?} ({:.0} events/s), verify with kept state {:.2?}",
        append,
        n as f64 / append.as_secs_f64(),
        publish,
        first,
        n as f64 / first.as_secs_f64(),
        again
    );
}
