//! Signatures of model versions: a client-made Sigstore bundle is attached only after the
//! registry has checked it (the key is registered and active, the signature verifies with it,
//! the manifest lists exactly the version's artifacts); the row, the version's
//! `signerId`/`signature` (the newest signature) and a `model.sign` audit event are written in
//! one transaction. The registry holds no private key and signs nothing.

use serde_json::{Value, json};
use sqlx::Row;

use super::bundle;
use super::keys;
use super::types::{KeyStatus, ManifestSignature, SignatureRequest, SigningKey, VersionFile};
use crate::api::Registered;
use crate::audit::{self, Change};
use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::Principal;
use crate::error::{ErrorKind, RegistryError, Result};

/// The files of version `version` of `model_id`: each artifact's registered name and digest,
/// sorted by name (the order of an OMS manifest).
pub async fn version_files(db: &Db, model_id: &str, version: u64) -> Result<Vec<VersionFile>> {
    let rows = sqlx::query(
        "SELECT a.name, a.artifact_id FROM version_artifacts v JOIN artifacts a \
         ON a.artifact_id = v.artifact_id WHERE v.model_id = $1 AND v.version = $2",
    )
    .bind(model_id)
    .bind(version as i64)
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("artifact_id").map_err(db_err)?;
        out.push(VersionFile {
            name: r.try_get("name").map_err(db_err)?,
            sha256: id
                .parse()
                .map_err(|e: crate::digest::BadDigest| crate::dataset::internal(e.to_string()))?,
        });
    }
    out.sort();
    Ok(out)
}

/// Which registered key signed `b`: the request's `keyId`, else the bundle's key hint when it
/// names a registered key, else the one active key the signature verifies with.
async fn signing_key(db: &Db, b: &ms_trust::Bundle, req: &SignatureRequest) -> Result<SigningKey> {
    if let Some(id) = &req.key_id {
        return keys::get(db, id)
            .await?
            .ok_or_else(|| keys::not_found(id).at("/keyId"));
    }
    let all = keys::list(db).await?;
    // model_signing's hint: hex sha256 of the PEM text (the stored PEM is that canonical text).
    if let Some(hint) = bundle::key_hint(b)
        && let Some(k) = all.iter().find(|k| {
            k.key_id == hint
                || Digest::of(k.public_key.as_bytes()).hex() == hint.to_ascii_lowercase()
        })
    {
        return Ok(k.clone());
    }
    for k in all.iter().filter(|k| k.status == KeyStatus::Active) {
        let Ok(pk) = ms_trust::PublicKey::from_pem(&k.public_key) else {
            continue;
        };
        if bundle::check_signature(b, &pk).is_ok() {
            return Ok(k.clone());
        }
    }
    Err(RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0802,
        "no registered active key verifies this bundle",
    )
    .at("/bundle")
    .hint("an admin registers the signer's public key with `modelspec key add`; or pass keyId"))
}

fn refused_key(k: &SigningKey) -> RegistryError {
    let what = match k.status {
        KeyStatus::Retired => format!(
            "retired (replaced by {}): it signs nothing new",
            k.replaced_by.as_deref().unwrap_or("?")
        ),
        _ => format!(
            "revoked at {} ({})",
            k.revoked_at.as_deref().unwrap_or("?"),
            k.revoke_reason.as_deref().unwrap_or("")
        ),
    };
    RegistryError::new(
        ErrorKind::Forbidden,
        codes::MG0803,
        format!("signing key {} ({}) is {what}", k.key_id, k.name),
    )
    .hint("sign with an active key (`modelspec key list`)")
}

/// Checks `req` against version `version` of `model_id` and attaches it (`model.sign`), or
/// finds the same envelope attached already.
pub async fn attach(
    db: &Db,
    who: &Principal,
    model_id: &str,
    version: u64,
    req: &SignatureRequest,
) -> Result<Registered<ManifestSignature>> {
    let text =
        serde_json::to_string(&req.bundle).map_err(|e| crate::dataset::internal(e.to_string()))?;
    let b = bundle::parse(&text)?;
    let key = signing_key(db, &b, req).await?;
    if key.status != KeyStatus::Active {
        return Err(refused_key(&key));
    }
    let pk = keys::parse_public_key(&key.public_key, "/keyId")?;
    let files = version_files(db, model_id, version).await?;
    bundle::verify(&b, &pk, &files)?;
    let envelope = bundle::envelope_digest(&b);
    let at = crate::time::now();
    let mut tx = db.begin_write().await?;
    if let Some(existing) = get_tx(&mut tx, model_id, version, &envelope).await? {
        return Ok(Registered {
            created: false,
            record: existing,
        });
    }
    // A revocation may have committed since the check above.
    match keys::get_tx(&mut tx, &key.key_id).await? {
        Some(k) if k.status == KeyStatus::Active => {}
        Some(k) => return Err(refused_key(&k)),
        None => return Err(keys::not_found(&key.key_id)),
    }
    let version_digest: String = sqlx::query_scalar(
        "SELECT digest FROM model_versions WHERE model_id = $1 AND version = $2",
    )
    .bind(model_id)
    .bind(version as i64)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let ev = audit::append(
        &mut tx,
        who,
        &at,
        Change {
            action: "model.sign",
            subject: crate::model::node_id(model_id, version),
            before: None,
            after: version_digest.parse::<Digest>().ok(),
            details: json!({
                "keyId": key.key_id,
                "signer": key.name,
                "algorithm": key.algorithm,
                "envelopeDigest": envelope,
            }),
        },
    )
    .await?;
    let sig = ManifestSignature {
        model_id: model_id.to_string(),
        version,
        envelope_digest: envelope,
        signer_id: key.name.clone(),
        key_id: key.key_id.clone(),
        algorithm: key.algorithm.clone(),
        signed_at: at,
        bundle: req.bundle.clone(),
        audit_seq: ev.seq,
    };
    sqlx::query(
        "INSERT INTO manifest_signatures (model_id, version, envelope_digest, signer_id, key_id, \
         algorithm, signed_at, bundle, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&sig.model_id)
    .bind(version as i64)
    .bind(&sig.envelope_digest)
    .bind(&sig.signer_id)
    .bind(&sig.key_id)
    .bind(&sig.algorithm)
    .bind(&sig.signed_at)
    .bind(&text)
    .bind(ev.seq as i64)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    // The version shows its newest signature: who signed, and the envelope's digest.
    sqlx::query(
        "UPDATE model_versions SET signer_id = $1, signature = $2 WHERE model_id = $3 AND version = $4",
    )
    .bind(&sig.signer_id)
    .bind(&sig.envelope_digest)
    .bind(model_id)
    .bind(version as i64)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Registered {
        created: true,
        record: sig,
    })
}

const COLS: &str = "model_id, version, envelope_digest, signer_id, key_id, algorithm, signed_at, bundle, audit_seq";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ManifestSignature> {
    let bundle: String = r.try_get("bundle").map_err(db_err)?;
    Ok(ManifestSignature {
        model_id: r.try_get("model_id").map_err(db_err)?,
        version: r.try_get::<i64, _>("version").map_err(db_err)? as u64,
        envelope_digest: r.try_get("envelope_digest").map_err(db_err)?,
        signer_id: r.try_get("signer_id").map_err(db_err)?,
        key_id: r.try_get("key_id").map_err(db_err)?,
        algorithm: r.try_get("algorithm").map_err(db_err)?,
        signed_at: r.try_get("signed_at").map_err(db_err)?,
        bundle: serde_json::from_str::<Value>(&bundle)
            .map_err(|e| crate::dataset::internal(format!("signature row: {e}")))?,
        audit_seq: r.try_get::<i64, _>("audit_seq").map_err(db_err)? as u64,
    })
}

async fn get_tx(
    tx: &mut Tx,
    model_id: &str,
    version: u64,
    envelope: &str,
) -> Result<Option<ManifestSignature>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM manifest_signatures WHERE model_id = $1 AND version = $2 \
         AND envelope_digest = $3"
    )))
    .bind(model_id)
    .bind(version as i64)
    .bind(envelope)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.as_ref().map(from_row).transpose()
}

/// The signatures of a version, newest first.
pub async fn list(db: &Db, model_id: &str, version: u64) -> Result<Vec<ManifestSignature>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM manifest_signatures WHERE model_id = $1 AND version = $2 \
         ORDER BY audit_seq DESC"
    )))
    .bind(model_id)
    .bind(version as i64)
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    rows.iter().map(from_row).collect()
}
