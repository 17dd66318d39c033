//! C2SP tlog-cosignature/v1: a witness signs `cosignature/v1\ntime <unix>\n<checkpoint body>`
//! with Ed25519; the note signature carries the 8-byte big-endian time before the 64-byte
//! signature, under a key id computed with type byte 0x04.

use ms_trust::Signer;
use ms_trust::codes::MT0608;

use crate::checkpoint::Checkpoint;
use crate::error::{Result, TlogError};
use crate::note::{NoteSignature, Verifier};

/// The message a witness signs for `body` at `time`.
pub fn message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// Cosigns a checkpoint body at `time` (Unix seconds) with an Ed25519 signer.
pub fn cosign(body: &str, key_name: &str, signer: &dyn Signer, time: u64) -> Result<NoteSignature> {
    let v = Verifier::cosignature(key_name, signer.public_key())?;
    let sig = signer.sign(message(body, time).as_bytes())?;
    if sig.len() != 64 {
        return Err(TlogError::new(
            MT0608,
            format!(
                "the signer returned {} bytes; an Ed25519 signature is 64",
                sig.len()
            ),
        ));
    }
    let mut bytes = time.to_be_bytes().to_vec();
    bytes.extend_from_slice(&sig);
    Ok(NoteSignature {
        name: key_name.to_string(),
        id: v.id(),
        bytes,
    })
}

/// Checks a parsed cosignature over `body`; returns its time.
pub fn verify_signature(sig: &NoteSignature, body: &str, v: &Verifier) -> Result<u64> {
    let fail = |why: &str| {
        TlogError::new(
            MT0608,
            format!("the cosignature by `{}+{:08x}` {why}", v.name(), v.id()),
        )
    };
    if !v.is_cosignature() || !v.matches(sig) {
        return Err(fail("is not by this witness key"));
    }
    if sig.bytes.len() != 8 + 64 {
        return Err(fail("is not 8 bytes of time and a 64-byte signature"));
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&sig.bytes[..8]);
    let time = u64::from_be_bytes(t);
    v.public_key()
        .verify(message(body, time).as_bytes(), &sig.bytes[8..])
        .map_err(|_| fail("does not verify: the checkpoint or the time was altered"))?;
    Ok(time)
}

/// Checks a cosignature line for `checkpoint` by witness `v`; returns its time.
pub fn verify(line: &str, checkpoint: &Checkpoint, v: &Verifier) -> Result<u64> {
    let sig = NoteSignature::parse_line(line)?;
    verify_signature(&sig, &checkpoint.body(), v)
}
