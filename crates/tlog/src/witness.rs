//! A witness as a library (C2SP tlog-witness): it keeps the latest checkpoint it cosigned per
//! log, and cosigns a new one only when the log's key signed it and a consistency proof shows it
//! extends the old one. The HTTP server around it (`POST /add-checkpoint`) is the caller's.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_trust::Signer;
use ms_trust::codes::MT0610;

use crate::checkpoint::Checkpoint;
use crate::cosignature;
use crate::error::TlogError;
use crate::hash::Hash;
use crate::note::{self, Note, NoteSignature, Verifier};
use crate::proof::check_tree;

/// Most proof lines an add-checkpoint request may carry (a proof has at most 63 hashes).
pub const MAX_PROOF_LINES: usize = 63;

/// The body of `POST add-checkpoint`: `old <size>`, the consistency proof (one base64 hash a
/// line), a blank line, and the signed checkpoint note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: String,
}

impl AddCheckpoint {
    pub fn parse(body: &str) -> Result<Self, WitnessError> {
        let bad = |why: &str| WitnessError::Malformed(why.to_string());
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_line = lines.next().unwrap_or_default();
        let old_text = old_line
            .strip_prefix("old ")
            .ok_or_else(|| bad("the first line must be `old <size>`"))?;
        let old: u64 = old_text
            .parse()
            .ok()
            .filter(|o: &u64| o.to_string() == old_text)
            .ok_or_else(|| bad("the old size is not a decimal number"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 proof lines"));
            }
            let h: Hash = B64
                .decode(l)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("a proof line is not the base64 of a 32-byte hash"))?;
            proof.push(h);
        }
        Ok(Self {
            old,
            proof,
            checkpoint: note.to_string(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("old {}\n", self.old);
        for h in &self.proof {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }
}

/// Why a witness refuses; `status()` is the C2SP tlog-witness HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessError {
    /// 400: the request cannot be parsed or its sizes are impossible.
    Malformed(String),
    /// 404: no log with this origin is configured.
    UnknownLog(String),
    /// 403: the checkpoint is not signed by the log's key.
    Unauthorized(String),
    /// 409: the old size is not the size this witness last cosigned (answer: that size).
    Conflict { latest: u64 },
    /// 422: the consistency proof does not verify.
    BadProof(String),
    /// 500: the witness's own signer failed.
    Signer(String),
}

impl WitnessError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::UnknownLog(_) => 404,
            Self::Unauthorized(_) => 403,
            Self::Conflict { .. } => 409,
            Self::BadProof(_) => 422,
            Self::Signer(_) => 500,
        }
    }

    /// The response body: for 409 the latest size and a newline (`text/x.tlog.size`).
    pub fn body(&self) -> String {
        match self {
            Self::Conflict { latest } => format!("{latest}\n"),
            other => format!("{}\n", TlogError::from(other.clone())),
        }
    }
}

impl fmt::Display for WitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed add-checkpoint request: {m}"),
            Self::UnknownLog(o) => write!(f, "this witness does not witness log `{o}`"),
            Self::Unauthorized(m) => write!(f, "the checkpoint is not signed by the log: {m}"),
            Self::Conflict { latest } => write!(
                f,
                "the old size does not match: this witness last cosigned size {latest}"
            ),
            Self::BadProof(m) => write!(f, "the consistency proof does not verify: {m}"),
            Self::Signer(m) => write!(f, "the witness cannot sign: {m}"),
        }
    }
}

impl From<WitnessError> for TlogError {
    fn from(e: WitnessError) -> Self {
        TlogError::new(MT0610, e.to_string())
    }
}

/// A witness: its key name, the logs it witnesses, and the latest checkpoint it cosigned of each.
pub struct Witness {
    name: String,
    logs: BTreeMap<String, Verifier>,
    latest: BTreeMap<String, Checkpoint>,
}

impl Witness {
    /// A witness named `name` (its cosignature key name) for logs `origin → log key`.
    pub fn new(
        name: &str,
        logs: impl IntoIterator<Item = (String, Verifier)>,
    ) -> Result<Self, TlogError> {
        note::check_key_name(name)?;
        Ok(Self {
            name: name.to_string(),
            logs: logs.into_iter().collect(),
            latest: BTreeMap::new(),
        })
    }

    /// Restores the latest cosigned checkpoint of a log (from the caller's storage).
    pub fn restore(&mut self, checkpoint: Checkpoint) {
        self.latest.insert(checkpoint.origin.clone(), checkpoint);
    }

    /// The latest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Option<&Checkpoint> {
        self.latest.get(origin)
    }

    /// This witness's verifier key (type 0x04) for `signer`.
    pub fn verifier(&self, signer: &dyn Signer) -> Result<Verifier, TlogError> {
        Verifier::cosignature(&self.name, signer.public_key())
    }

    /// Handles an add-checkpoint request at time `now` (Unix seconds): on success the
    /// cosignature (a note signature line) and the checkpoint now kept as the latest.
    pub fn add_checkpoint(
        &mut self,
        request: &AddCheckpoint,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<(NoteSignature, Checkpoint), WitnessError> {
        let parsed =
            Note::parse(&request.checkpoint).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let cp =
            Checkpoint::parse(&parsed.text).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let log = self
            .logs
            .get(&cp.origin)
            .ok_or_else(|| WitnessError::UnknownLog(cp.origin.clone()))?;
        let opened = note::open(&request.checkpoint, std::slice::from_ref(log))
            .map_err(|e| WitnessError::Unauthorized(e.to_string()))?;
        if !opened.signed_by(log) {
            return Err(WitnessError::Unauthorized(
                "no signature by the log key".into(),
            ));
        }
        let (latest_size, latest_root) = match self.latest.get(&cp.origin) {
            Some(l) => (l.size, Some(l.root)),
            None => (0, None),
        };
        if request.old != latest_size {
            return Err(WitnessError::Conflict {
                latest: latest_size,
            });
        }
        if cp.size < request.old {
            return Err(WitnessError::Malformed(format!(
                "the checkpoint's size {} is below the old size {}",
                cp.size, request.old
            )));
        }
        match latest_root {
            None => {
                if !request.proof.is_empty() {
                    return Err(WitnessError::Malformed(
                        "a proof from size 0 must be empty".into(),
                    ));
                }
            }
            Some(root) if cp.size == request.old => {
                if !request.proof.is_empty() {
                    return Err(WitnessError::Malformed(
                        "a proof between equal sizes must be empty".into(),
                    ));
                }
                if cp.root != root {
                    // Same size, other root: a fork. Never cosign it.
                    return Err(WitnessError::Conflict {
                        latest: latest_size,
                    });
                }
            }
            Some(root) => {
                if request.old > 0 {
                    check_tree(&request.proof, cp.size, cp.root, request.old, root)
                        .map_err(|e| WitnessError::BadProof(e.message))?;
                }
            }
        }
        let sig = cosignature::cosign(&cp.body(), &self.name, signer, now)
            .map_err(|e| WitnessError::Signer(e.to_string()))?;
        self.latest.insert(cp.origin.clone(), cp.clone());
        Ok((sig, cp))
    }
}
