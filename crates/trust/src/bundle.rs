//! Sigstore bundle v0.3 JSON in key mode: a DSSE envelope plus `verificationMaterial.publicKey`
//! with a `hint` (hex SHA-256 of the signer's PEM public key), no certificate and no
//! transparency-log entry — byte for byte the shape `model_signing sign key` writes, so each
//! side reads the other's files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::codes::MT0101;
use crate::error::{Result, TrustError};
use crate::key::PublicKey;

/// The media type we write (and `model_signing` requires).
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The other spelling the bundle specification allows for v0.3; read, never written.
const MEDIA_TYPE_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// The largest bundle read: a manifest lists one line per file, so even a model of 100,000
/// files stays far below this.
pub const MAX_BYTES: usize = 64 << 20;

/// A DSSE envelope: the payload (raw bytes), its type, and the signatures over its PAE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature; `keyid` is optional in DSSE and empty in the bundles we write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A Sigstore bundle holding one DSSE envelope signed by a key (not a certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub envelope: Envelope,
    /// `verificationMaterial.publicKey.hint`; `None` in bundles of model_signing before 1.0.
    pub key_hint: Option<String>,
}

/// The hint `model_signing` puts in a bundle for `key`: lowercase hex SHA-256 of its PEM text
/// (64 columns, final newline: what both `cryptography` and [`PublicKey::to_pem`] write).
pub fn key_hint(key: &PublicKey) -> String {
    hex(&Sha256::digest(key.to_pem().as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn field<'a>(v: &'a Value, pointer: &str) -> Result<&'a Value> {
    v.pointer(pointer)
        .ok_or_else(|| TrustError::new(MT0101, format!("the bundle has no {pointer}")))
}

fn string<'a>(v: &'a Value, pointer: &str) -> Result<&'a str> {
    field(v, pointer)?
        .as_str()
        .ok_or_else(|| TrustError::new(MT0101, format!("the bundle's {pointer} is not a string")))
}

fn base64_field(v: &Value, pointer: &str) -> Result<Vec<u8>> {
    B64.decode(string(v, pointer)?)
        .map_err(|e| TrustError::new(MT0101, format!("the bundle's {pointer} is not base64: {e}")))
}

impl Bundle {
    /// Reads a bundle; every refusal names the field by JSON pointer.
    pub fn from_json(text: impl AsRef<[u8]>) -> Result<Self> {
        if text.as_ref().len() > MAX_BYTES {
            return Err(TrustError::new(
                MT0101,
                format!("the bundle is larger than {MAX_BYTES} bytes: not a signature"),
            ));
        }
        let v: Value = serde_json::from_slice(text.as_ref())
            .map_err(|e| TrustError::new(MT0101, format!("the bundle is not JSON: {e}")))?;
        let media = string(&v, "/mediaType")?;
        if media != MEDIA_TYPE && media != MEDIA_TYPE_ALT {
            return Err(TrustError::new(
                MT0101,
                format!("/mediaType is {media:?}; expected {MEDIA_TYPE:?}"),
            ));
        }
        let material = field(&v, "/verificationMaterial")?;
        if material.get("publicKey").is_none() {
            let what = ["x509CertificateChain", "certificate"]
                .into_iter()
                .find(|k| material.get(k).is_some())
                .unwrap_or("no publicKey");
            return Err(TrustError::new(
                MT0101,
                format!(
                    "/verificationMaterial has {what}: only key-mode bundles \
                     (verificationMaterial.publicKey) are verified here"
                ),
            ));
        }
        let key_hint = match v.pointer("/verificationMaterial/publicKey/hint") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(TrustError::new(
                    MT0101,
                    "/verificationMaterial/publicKey/hint is not a string",
                ));
            }
        };
        let payload = base64_field(&v, "/dsseEnvelope/payload")?;
        let payload_type = string(&v, "/dsseEnvelope/payloadType")?.to_string();
        let sigs = field(&v, "/dsseEnvelope/signatures")?
            .as_array()
            .ok_or_else(|| TrustError::new(MT0101, "/dsseEnvelope/signatures is not an array"))?;
        if sigs.len() != 1 {
            return Err(TrustError::new(
                MT0101,
                format!(
                    "/dsseEnvelope/signatures has {} entries; a Sigstore bundle has exactly one",
                    sigs.len()
                ),
            ));
        }
        let sig = base64_field(&v, "/dsseEnvelope/signatures/0/sig")?;
        let keyid = match v.pointer("/dsseEnvelope/signatures/0/keyid") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        Ok(Self {
            envelope: Envelope {
                payload_type,
                payload,
                signatures: vec![EnvelopeSignature { keyid, sig }],
            },
            key_hint,
        })
    }

    /// The bundle as compact JSON, fields in the order `model_signing` writes them.
    pub fn to_json(&self) -> String {
        let signatures: Vec<Value> = self
            .envelope
            .signatures
            .iter()
            .map(|s| json!({"sig": B64.encode(&s.sig), "keyid": s.keyid}))
            .collect();
        let v = json!({
            "mediaType": MEDIA_TYPE,
            "verificationMaterial": {
                "publicKey": {"hint": self.key_hint.clone().unwrap_or_default()},
                "tlogEntries": [],
            },
            "dsseEnvelope": {
                "payload": B64.encode(&self.envelope.payload),
                "payloadType": self.envelope.payload_type,
                "signatures": signatures,
            },
        });
        serde_json::to_string(&v).expect("a bundle is plain JSON")
    }

    /// `verificationMaterial.publicKey.hint`, if the bundle has one.
    pub fn key_hint(&self) -> Option<&str> {
        self.key_hint.as_deref()
    }

    /// `sha256:<hex>` of the signed payload (the statement's bytes): names what was signed, the
    /// same for every signature of the same statement (the manifest digest of a version).
    pub fn payload_digest(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.envelope.payload)))
    }

    /// `sha256:<hex>` of the PAE and the signatures (each length-prefixed): names this
    /// envelope — one signature by one key of one payload — however its JSON is formatted.
    pub fn envelope_digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(crate::dsse::pae(
            &self.envelope.payload_type,
            &self.envelope.payload,
        ));
        for s in &self.envelope.signatures {
            h.update((s.sig.len() as u64).to_be_bytes());
            h.update(&s.sig);
        }
        format!("sha256:{}", hex(&h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        Bundle {
            envelope: Envelope {
                payload_type: "application/vnd.in-toto+json".into(),
                payload: b"{}".to_vec(),
                signatures: vec![EnvelopeSignature {
                    keyid: String::new(),
                    sig: vec![1, 2, 3],
                }],
            },
            key_hint: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn bundles_round_trip_in_model_signing_shape() {
        let b = sample();
        let text = b.to_json();
        assert!(text.starts_with(
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"#
        ));
        assert_eq!(Bundle::from_json(text.as_bytes()).unwrap(), b);
        assert!(b.payload_digest().starts_with("sha256:"));
        assert_ne!(b.payload_digest(), b.envelope_digest());
    }

    #[test]
    fn bad_bundles_name_the_field() {
        let cases = [
            (r#"{"mediaType":"x"}"#, "/mediaType"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{}}}"#,
                "x509CertificateChain",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"!!","payloadType":"t","signatures":[]}}"#,
                "/dsseEnvelope/payload",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30=","payloadType":"t","signatures":[]}}"#,
                "exactly one",
            ),
            ("not json", "not JSON"),
        ];
        for (text, want) in cases {
            let err = Bundle::from_json(text.as_bytes()).unwrap_err();
            assert_eq!(err.code, MT0101);
            assert!(err.message.contains(want), "{want}: {err}");
        }
    }
}
