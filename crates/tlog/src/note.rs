//! C2SP signed-note: a text ending in a newline, a blank line, and signature lines
//! `— <key name> <base64(4-byte key id ‖ signature)>`. Keys are Ed25519 (type byte 0x01) for the
//! log's own signature and tlog-cosignature/v1 (type 0x04, see `cosignature`) for witnesses; a
//! key id is the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ type ‖ public key)`. Signing goes
//! through `ms_trust::Signer`, so the private key stays in its HSM, proxy or key file.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_trust::codes::{MT0607, MT0608, MT0609};
use ms_trust::{Algorithm, PublicKey, Signer};
use sha2::{Digest, Sha256};

use crate::cosignature;
use crate::error::{Result, TlogError};

/// Signature type of a plain Ed25519 note signature.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type of a tlog-cosignature/v1 (timestamped Ed25519) signature.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Most signatures a note may carry before it is rejected.
pub const MAX_SIGNATURES: usize = 100;
/// Largest note accepted.
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// The key id: the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ type ‖ public key)`.
pub fn key_id(name: &str, alg: u8, raw_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(raw_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key name is non-empty UTF-8 without whitespace or `+`.
pub fn check_key_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(TlogError::new(
            MT0609,
            format!("`{name}` is not a note key name: it must be non-empty, without spaces or `+`"),
        ));
    }
    Ok(())
}

/// A public key that can check note signatures: its name, id, type and Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    alg: u8,
    key: PublicKey,
}

impl Verifier {
    /// The verifier of a log's Ed25519 note key.
    pub fn new(name: &str, key: &PublicKey) -> Result<Self> {
        Self::with_alg(name, ALG_ED25519, key)
    }

    /// The verifier of a witness's tlog-cosignature/v1 key.
    pub fn cosignature(name: &str, key: &PublicKey) -> Result<Self> {
        Self::with_alg(name, ALG_COSIGNATURE_V1, key)
    }

    fn with_alg(name: &str, alg: u8, key: &PublicKey) -> Result<Self> {
        check_key_name(name)?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(TlogError::new(
                MT0609,
                format!(
                    "note key `{name}` is {}; signed notes and cosignatures use Ed25519 keys",
                    key.algorithm()
                ),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, alg, key.raw()),
            alg,
            key: key.clone(),
        })
    }

    /// Parses verifier key text `<name>+<hex id>+<base64(type ‖ key)>`.
    pub fn parse(vkey: &str) -> Result<Self> {
        let vkey = vkey.trim();
        let bad = |why: &str| TlogError::new(MT0609, format!("verifier key `{vkey}`: {why}"));
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected `<name>+<8 hex digits>+<base64 key>`"));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key id is not 8 hex digits"));
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("the key id is not hex"))?;
        let key = B64
            .decode(key64)
            .map_err(|_| bad("the key is not base64"))?;
        let (alg, raw) = key.split_first().ok_or_else(|| bad("the key is empty"))?;
        if *alg != ALG_ED25519 && *alg != ALG_COSIGNATURE_V1 {
            return Err(bad(&format!(
                "key type 0x{alg:02x} is not supported (0x01 Ed25519, 0x04 cosignature/v1)"
            )));
        }
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        if key_id(name, *alg, &raw) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_string(),
            id,
            alg: *alg,
            key: PublicKey::ed25519(&raw),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Whether this is a witness (tlog-cosignature/v1) key.
    pub fn is_cosignature(&self) -> bool {
        self.alg == ALG_COSIGNATURE_V1
    }

    /// Whether `sig` claims to be by this key (same name and key id).
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.id == self.id
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![self.alg];
        key.extend_from_slice(self.key.raw());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(key))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    /// The bytes after the key id (for a cosignature: 8-byte time, then the signature).
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// Parses `— <name> <base64>` (with or without the final newline).
    pub fn parse_line(line: &str) -> Result<Self> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let bad = |why: &str| TlogError::new(MT0607, format!("signature line `{line}`: {why}"));
        let rest = line
            .strip_prefix("— ")
            .ok_or_else(|| bad("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("expected `— <name> <base64 signature>`"))?;
        check_key_name(name).map_err(|_| bad("the key name is empty or has `+` or spaces"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("the signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("the signature is shorter than a key id and one byte"));
        }
        Ok(Self {
            name: name.to_string(),
            id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            bytes: raw[4..].to_vec(),
        })
    }

    /// The signature line, ending in a newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("— {} {}\n", self.name, B64.encode(raw))
    }
}

/// A parsed (not yet verified) note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

fn check_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(TlogError::new(
            MT0607,
            "the note text must end with a newline",
        ));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(TlogError::new(
            MT0607,
            "the note contains control characters other than newlines",
        ));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note (text, blank line, signature lines).
    pub fn parse(note: &str) -> Result<Self> {
        if note.len() > MAX_NOTE_LEN {
            return Err(TlogError::new(MT0607, "the note is larger than 1 MiB"));
        }
        let (text, sigs) = note.rsplit_once("\n\n").ok_or_else(|| {
            TlogError::new(
                MT0607,
                "no blank line separates the text from its signatures",
            )
        })?;
        let text = format!("{text}\n");
        check_text(&text)?;
        let sigs = sigs.strip_suffix('\n').ok_or_else(|| {
            TlogError::new(MT0607, "the last signature line must end with a newline")
        })?;
        let signatures = sigs
            .split('\n')
            .map(NoteSignature::parse_line)
            .collect::<Result<Vec<_>>>()?;
        if signatures.len() > MAX_SIGNATURES {
            return Err(TlogError::new(
                MT0607,
                format!(
                    "the note has {} signatures; at most {MAX_SIGNATURES} are accepted",
                    signatures.len()
                ),
            ));
        }
        Ok(Self { text, signatures })
    }

    /// The note as text.
    pub fn to_text(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.to_line());
        }
        s
    }

    /// Adds a signature, replacing one by the same key.
    pub fn add(&mut self, sig: NoteSignature) {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.id == sig.id));
        self.signatures.push(sig);
    }
}

/// Signs `text` with an Ed25519 signer under `key_name`: one signature line.
pub fn signature(text: &str, key_name: &str, signer: &dyn Signer) -> Result<NoteSignature> {
    check_text(text)?;
    let v = Verifier::new(key_name, signer.public_key())?;
    let sig = signer.sign(text.as_bytes())?;
    if sig.len() != 64 {
        return Err(TlogError::new(
            MT0609,
            format!(
                "the signer returned {} bytes; an Ed25519 signature is 64",
                sig.len()
            ),
        ));
    }
    Ok(NoteSignature {
        name: key_name.to_string(),
        id: v.id,
        bytes: sig,
    })
}

/// Signs `text` and returns the whole signed note.
pub fn sign(text: &str, key_name: &str, signer: &dyn Signer) -> Result<String> {
    let sig = signature(text, key_name, signer)?;
    Ok(Note {
        text: text.to_string(),
        signatures: vec![sig],
    }
    .to_text())
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub name: String,
    pub id: u32,
    /// For a cosignature: the witness's timestamp (Unix seconds).
    pub cosigned_at: Option<u64>,
}

/// A note whose signatures were checked against a set of verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub note: Note,
    pub verified: Vec<Verified>,
    /// Signatures by keys not in the set, kept as they were.
    pub unverified: Vec<NoteSignature>,
}

impl Opened {
    /// The signed text.
    pub fn body(&self) -> &str {
        &self.note.text
    }

    pub fn signed_by(&self, v: &Verifier) -> bool {
        self.verified
            .iter()
            .any(|s| s.name == v.name && s.id == v.id)
    }
}

fn verify_one(v: &Verifier, text: &str, sig: &NoteSignature) -> Result<Option<u64>> {
    if v.is_cosignature() {
        cosignature::verify_signature(sig, text, v).map(Some)
    } else {
        v.key.verify(text.as_bytes(), &sig.bytes).map_err(|_| {
            TlogError::new(
                MT0608,
                format!(
                    "the signature by `{}+{:08x}` does not verify: the note was altered or another key signed it",
                    v.name, v.id
                ),
            )
        })?;
        Ok(None)
    }
}

/// Parses `note` and checks its signatures: a signature claiming a known key (name and id) must
/// verify (else the note is rejected: a forged signature is never skipped), signatures by
/// unknown keys are kept unverified, and at least one must verify.
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<Opened> {
    let note = Note::parse(note)?;
    let mut verified: Vec<Verified> = Vec::new();
    let mut unverified = Vec::new();
    for sig in &note.signatures {
        match verifiers.iter().find(|v| v.matches(sig)) {
            Some(v) => {
                if verified
                    .iter()
                    .any(|s| s.name == sig.name && s.id == sig.id)
                {
                    continue;
                }
                let cosigned_at = verify_one(v, &note.text, sig)?;
                verified.push(Verified {
                    name: sig.name.clone(),
                    id: sig.id,
                    cosigned_at,
                });
            }
            None => {
                if !unverified.contains(sig) {
                    unverified.push(sig.clone());
                }
            }
        }
    }
    if verified.is_empty() {
        let names: Vec<String> = verifiers
            .iter()
            .map(|v| format!("{}+{:08x}", v.name, v.id))
            .collect();
        let found: Vec<String> = note
            .signatures
            .iter()
            .map(|s| format!("{}+{:08x}", s.name, s.id))
            .collect();
        return Err(TlogError::new(
            MT0608,
            format!(
                "the note has no signature by a trusted key: trusted {}, signed by {}",
                names.join(", "),
                found.join(", ")
            ),
        ));
    }
    Ok(Opened {
        note,
        verified,
        unverified,
    })
}
