//! DSSE (Dead Simple Signing Envelope) v1 over in-toto statements: the pre-authentication
//! encoding that is actually signed, and signing/verification of a statement into/from a
//! Sigstore bundle. Used by OMS manifests and SLSA provenance alike.

use serde_json::Value;

use crate::bundle::{self, Bundle, Envelope, EnvelopeSignature};
use crate::codes::{MT0102, MT0103};
use crate::error::{Result, TrustError};
use crate::intoto::{PAYLOAD_TYPE, Statement};
use crate::key::PublicKey;
use crate::signer::Signer;

/// PAE(type, body) = `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII
/// decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` of `payload_type` into a bundle carrying the signer's key hint.
pub fn sign_payload(payload_type: &str, payload: Vec<u8>, signer: &dyn Signer) -> Result<Bundle> {
    let sig = signer.sign(&pae(payload_type, &payload))?;
    Ok(Bundle {
        envelope: Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig,
            }],
        },
        key_hint: Some(bundle::key_hint(signer.public_key())),
    })
}

/// Signs an in-toto statement into a bundle; the payload is exactly `serde_json::to_vec(statement)`
/// (compact JSON: a stored canonical statement is the signed bytes).
pub fn sign_statement(statement: &Value, signer: &dyn Signer) -> Result<Bundle> {
    let payload = serde_json::to_vec(statement).expect("a JSON value serializes");
    sign_payload(PAYLOAD_TYPE, payload, signer)
}

/// Checks that `key` signed the bundle (its hint, when present, must be `key`'s) and returns
/// the in-toto statement it carries (its exact bytes are `bundle.envelope.payload`).
pub fn verify(bundle: &Bundle, key: &PublicKey) -> Result<Statement> {
    if let Some(hint) = bundle.key_hint() {
        let ours = bundle::key_hint(key);
        if hint != ours {
            return Err(TrustError::new(
                MT0102,
                format!(
                    "the bundle was signed by the key with hint {hint}, not by {} (hint {ours})",
                    key.fingerprint()
                ),
            ));
        }
    }
    let env = &bundle.envelope;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(TrustError::new(
            MT0103,
            format!(
                "/dsseEnvelope/payloadType is {:?}; expected {PAYLOAD_TYPE:?}",
                env.payload_type
            ),
        ));
    }
    let message = pae(&env.payload_type, &env.payload);
    let mut last = None;
    for s in &env.signatures {
        match key.verify(&message, &s.sig) {
            Ok(()) => return Statement::from_json(&env.payload),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| TrustError::new(MT0103, "the envelope has no signature")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // From the DSSE v1 protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
