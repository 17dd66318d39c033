//! Checkpoints of the audit log: C2SP signed notes (`<origin>\n<size>\n<base64 root>\n`, then
//! the log key's signature line) made through an `ms_trust::Signer`, and the witnesses'
//! cosignatures kept beside them.
//!
//! A checkpoint is signed on demand, when a reader asks for the newest one and the log grew
//! since the last (signing in every write would put the signer — an HSM or a proxy — in every
//! registration's path). Before signing, under the write lock, the stored note of the last
//! checkpoint is verified with the log key and the current tree is proved consistent with it
//! (RFC 9162 §2.1.4, from the stored hashes): if that fails the tables were changed behind the
//! registry's back and nothing is signed. So the log never signs two inconsistent trees.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::note::{self, Verifier};
use ms_trust::{PublicKey, Signer};
use sqlx::{AnyConnection, Row};

use super::codes::{BAD_COSIGNATURE, BAD_LOG_SIGNER, INCONSISTENT, NO_LOG_SIGNER};
use super::tree;
use super::{CosignatureReceipt, Cosignatures};
use crate::db::{Db, db_err};
use crate::error::{ErrorKind, RegistryError, Result};

/// The log's key, name and witnesses.
pub struct LogConfig {
    signer: Arc<dyn Signer>,
    /// The log's origin (also the key's name in its signature lines), fixed by the first
    /// checkpoint: `None` takes the last checkpoint's, or `modelspec.local/<key id>` for a new
    /// log.
    origin: Option<String>,
    verifier_key: PublicKey,
    witnesses: Vec<Verifier>,
    development: bool,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("key", &self.verifier_key.fingerprint())
            .field("origin", &self.origin)
            .field("witnesses", &self.witnesses.len())
            .field("development", &self.development)
            .finish()
    }
}

impl LogConfig {
    /// A log signed by `signer` (an Ed25519 key), with the witnesses whose cosignatures it
    /// accepts, given as C2SP verifier keys (`<name>+<hex id>+<base64 key>`).
    pub fn new(
        signer: Arc<dyn Signer>,
        origin: Option<String>,
        witnesses: &[String],
    ) -> Result<LogConfig> {
        let key = signer.public_key().clone();
        if key.algorithm() != ms_trust::Algorithm::Ed25519 {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                BAD_LOG_SIGNER,
                format!(
                    "the log signer holds a {} key; checkpoints (C2SP signed notes) need Ed25519",
                    key.algorithm()
                ),
            )
            .hint(
                "give --log-signer an Ed25519 key (`modelspec signer keygen --algorithm ed25519`)",
            ));
        }
        if let Some(o) = &origin {
            check_origin(o)?;
        }
        let witnesses = witnesses
            .iter()
            .map(|w| {
                Verifier::parse(w).map_err(|e| {
                    RegistryError::new(
                        ErrorKind::Invalid,
                        BAD_COSIGNATURE,
                        format!("witness key {w:?} is not a C2SP verifier key: {e}"),
                    )
                    .hint("give `<name>+<hex id>+<base64 key>`, as `modelspec audit witness` prints it")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LogConfig {
            development: signer.kind().development_only(),
            signer,
            origin,
            verifier_key: key,
            witnesses,
        })
    }

    /// The log's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.verifier_key
    }

    /// Whether the log key is a development key (a key file): fine for a laptop, not for a
    /// registry others rely on.
    pub fn development(&self) -> bool {
        self.development
    }

    /// The origin a new log takes when none is configured: `modelspec.local/` and the first 16
    /// hex digits of the log key's fingerprint.
    pub fn default_origin(&self) -> String {
        let fp = self.verifier_key.fingerprint();
        let hex = fp.trim_start_matches("sha256:");
        format!("modelspec.local/{}", &hex[..16.min(hex.len())])
    }

    /// The C2SP verifier key text of the log for `origin`, which `audit verify --log-key` and
    /// witnesses take.
    pub fn verifier_key_text(&self, origin: &str) -> Result<String> {
        Ok(self.note_verifier(origin)?.to_string())
    }

    fn note_verifier(&self, origin: &str) -> Result<Verifier> {
        Verifier::new(origin, &self.verifier_key)
            .map_err(|e| RegistryError::new(ErrorKind::Invalid, BAD_LOG_SIGNER, e.to_string()))
    }
}

fn check_origin(o: &str) -> Result<()> {
    let ok = !o.is_empty()
        && o.len() <= 255
        && !o.contains('+')
        && o.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        BAD_LOG_SIGNER,
        format!("log origin {o:?} is not allowed"),
    )
    .hint("an origin is printable ASCII without spaces or `+`, e.g. `registry.example.com/audit`"))
}

/// The error when the log has no key.
pub fn no_signer() -> RegistryError {
    RegistryError::new(
        ErrorKind::Unavailable,
        NO_LOG_SIGNER,
        "this registry has no log key: its checkpoints cannot be signed",
    )
    .hint("start `modelspec registry serve` with --log-signer REF (or MODELSPEC_LOG_SIGNER)")
}

fn inconsistent(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorKind::Integrity, INCONSISTENT, msg).hint(
        "run `modelspec audit verify` to find what changed; restore the database from a backup",
    )
}

/// The newest stored checkpoint: size and note.
async fn newest(conn: &mut AnyConnection) -> Result<Option<(u64, String)>> {
    let row = sqlx::query("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.map(|r| {
        Ok((
            r.try_get::<i64, _>("size").map_err(db_err)? as u64,
            r.try_get::<String, _>("note").map_err(db_err)?,
        ))
    })
    .transpose()
}

/// The checkpoint a stored note carries, after checking the log key's signature on it.
fn open_own(cfg: &LogConfig, size: u64, text: &str) -> Result<Checkpoint> {
    let body = text.split("\n\n").next().unwrap_or_default();
    let origin = body.lines().next().unwrap_or_default();
    let verifier = cfg.note_verifier(origin)?;
    let opened = note::open(text, std::slice::from_ref(&verifier)).map_err(|e| {
        inconsistent(format!(
            "the stored checkpoint of size {size} does not verify with the log key: {e}"
        ))
    })?;
    let cp = Checkpoint::parse(opened.body()).map_err(|e| {
        inconsistent(format!(
            "the stored checkpoint of size {size} is malformed: {e}"
        ))
    })?;
    if cp.size != size {
        return Err(inconsistent(format!(
            "the stored checkpoint in row {size} says size {}",
            cp.size
        )));
    }
    Ok(cp)
}

/// The newest checkpoint's note with its cosignature lines, signing a new one first when the
/// log has grown since. When the tree is inconsistent with the last signed checkpoint, that
/// checkpoint is returned (nothing is signed); `sign_current` reports the inconsistency.
pub async fn latest(db: &Db, cfg: &LogConfig) -> Result<String> {
    let mut conn = db.pool().acquire().await.map_err(db_err)?;
    let n = tree::size(&mut conn).await?;
    if let Some((size, note)) = newest(&mut conn).await?
        && size == n
    {
        open_own(cfg, size, &note)?;
        return with_cosignatures(&mut conn, size, note).await;
    }
    drop(conn);
    match sign_current(db, cfg).await {
        Ok(note) => Ok(note),
        // The tables disagree with what was signed: nothing new is signed, and the last good
        // checkpoint is still served, so that verifiers can name what changed since.
        Err(e) if e.code == INCONSISTENT => {
            let mut conn = db.pool().acquire().await.map_err(db_err)?;
            match newest(&mut conn).await? {
                Some((size, note)) if open_own(cfg, size, &note).is_ok() => {
                    with_cosignatures(&mut conn, size, note).await
                }
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Signs a checkpoint of the current tree (under the write lock), after proving it consistent
/// with the last one; returns the newest note (the existing one when nothing was appended).
pub async fn sign_current(db: &Db, cfg: &LogConfig) -> Result<String> {
    let mut tx = db.begin_write().await?;
    let n = tree::size(&mut tx).await?;
    let last = newest(&mut tx).await?;
    let root = tree::root(&mut tx, n).await?;
    let mut origin = cfg.origin.clone();
    if let Some((size, note)) = &last {
        let cp = open_own(cfg, *size, note)?;
        if let Some(o) = &origin
            && *o != cp.origin
        {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                BAD_LOG_SIGNER,
                format!(
                    "the log's origin is {:?} (its checkpoints say so); {o:?} was configured",
                    cp.origin
                ),
            )
            .hint("a log keeps its origin for life: drop --log-origin or give the same one"));
        }
        origin = Some(cp.origin.clone());
        if *size == n {
            if cp.root != root {
                return Err(inconsistent(format!(
                    "the tree of {n} events has root {}, the signed checkpoint {}",
                    B64.encode(root),
                    B64.encode(cp.root)
                )));
            }
            let note = note.clone();
            let out = with_cosignatures(&mut tx, n, note).await;
            tx.commit().await.map_err(db_err)?;
            return out;
        }
        if *size > n {
            return Err(inconsistent(format!(
                "the log has {n} events but a checkpoint of {size} was signed: events were removed"
            )));
        }
        // Every tree extends the empty one.
        if *size > 0 {
            let proof = tree::with_hashes(&mut tx, |r| ms_tlog::prove_tree(n, *size, r)).await?;
            ms_tlog::check_tree(&proof, n, root, *size, cp.root).map_err(|e| {
                inconsistent(format!(
                    "the tree of {n} events is not consistent with the signed checkpoint of \
                     {size}: {e}"
                ))
            })?;
        }
    }
    let origin = origin.unwrap_or_else(|| cfg.default_origin());
    check_origin(&origin)?;
    let body = Checkpoint::new(origin.clone(), n, root).body();
    let note = note::sign(&body, &origin, &*cfg.signer).map_err(|e| {
        RegistryError::new(
            ErrorKind::Unavailable,
            BAD_LOG_SIGNER,
            format!("the log signer failed: {e}"),
        )
    })?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(n as i64)
    .bind(tree::hex(&root))
    .bind(&note)
    .bind(crate::time::now())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(note)
}

/// `note` with the stored cosignature lines of checkpoint `size` appended.
async fn with_cosignatures(conn: &mut AnyConnection, size: u64, note: String) -> Result<String> {
    let rows = sqlx::query(
        "SELECT signature_line FROM audit_cosignatures WHERE size = $1 ORDER BY witness",
    )
    .bind(size as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut out = note;
    for r in rows {
        let line: String = r.try_get("signature_line").map_err(db_err)?;
        out.push_str(line.trim_end_matches('\n'));
        out.push('\n');
    }
    Ok(out)
}

fn bad_cosignature(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, BAD_COSIGNATURE, msg)
}

/// Verifies and keeps witness cosignatures of a checkpoint the log signed.
pub async fn add_cosignatures(
    db: &Db,
    cfg: &LogConfig,
    req: &Cosignatures,
) -> Result<CosignatureReceipt> {
    let body = req.checkpoint.split("\n\n").next().unwrap_or_default();
    let cp = Checkpoint::parse(&format!("{body}\n")).map_err(|e| {
        bad_cosignature(format!("the checkpoint is not a C2SP checkpoint: {e}")).at("/checkpoint")
    })?;
    let mut tx = db.begin_write().await?;
    let stored: Option<(String,)> =
        sqlx::query_as("SELECT note FROM audit_checkpoints WHERE size = $1")
            .bind(cp.size as i64)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
    let Some((stored,)) = stored else {
        return Err(
            bad_cosignature(format!("the log signed no checkpoint of size {}", cp.size))
                .at("/checkpoint"),
        );
    };
    let signed = open_own(cfg, cp.size, &stored)?;
    if signed != cp {
        return Err(bad_cosignature(format!(
            "the checkpoint of size {} differs from the one the log signed",
            cp.size
        ))
        .at("/checkpoint"));
    }
    if req.signatures.is_empty() {
        return Err(bad_cosignature("no signature lines").at("/signatures"));
    }
    let mut kept = Vec::new();
    for (i, line) in req.signatures.iter().enumerate() {
        let at = format!("/signatures/{i}");
        let line = line.trim_end_matches('\n');
        let witness = self::witness_of(cfg, line).ok_or_else(|| {
            bad_cosignature(format!("{line:?} is not signed by a configured witness"))
                .at(&at)
                .hint("the registry accepts cosignatures only from its --witness keys")
        })?;
        ms_tlog::cosignature::verify(line, &signed, witness).map_err(|e| {
            bad_cosignature(format!(
                "the cosignature of {} does not verify: {e}",
                witness.name()
            ))
            .at(&at)
        })?;
        sqlx::query(
            "INSERT INTO audit_cosignatures (size, witness, signature_line, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (size, witness) DO UPDATE SET \
             signature_line = excluded.signature_line, received_at = excluded.received_at",
        )
        .bind(cp.size as i64)
        .bind(witness.name())
        .bind(line)
        .bind(crate::time::now())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        kept.push(witness.name().to_string());
    }
    tx.commit().await.map_err(db_err)?;
    Ok(CosignatureReceipt {
        size: cp.size,
        witnesses: kept,
    })
}

/// The configured witness whose name and key id a signature line carries.
fn witness_of<'a>(cfg: &'a LogConfig, line: &str) -> Option<&'a Verifier> {
    let sig = note::NoteSignature::parse_line(line).ok()?;
    cfg.witnesses.iter().find(|w| w.matches(&sig))
}
