//! Signing keys: the public keys whose signatures the registry attaches to versions. Adding,
//! rotating and revoking one is an audit event (`key.add`, `key.rotate`, `key.revoke`) in the
//! same transaction. A key is named by its fingerprint, so the same key cannot be registered
//! twice under two names; a revoked key never comes back.
//!
//! A rotation retires the old key and adds the new one in one event: the retired key's stored
//! revocation reason is `rotated to <new key id>` (how a retired key is told from a revoked
//! one without another column), and a revocation's reason may not start with those words.

use serde_json::json;
use sqlx::Row;

use super::types::{
    KeyRequest, KeyRotation, KeyStatus, RevokeKeyRequest, RotateKeyRequest, SigningKey,
};
use crate::api::Registered;
use crate::audit::{self, Change};
use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::entity::Principal;
use crate::error::{ErrorKind, RegistryError, Result};

/// The reason prefix that marks a retired (rotated) key.
const ROTATED: &str = "rotated to ";

/// Largest PEM text accepted for a public key.
const MAX_PEM_BYTES: usize = 16 * 1024;

fn invalid(msg: impl Into<String>, pointer: &str) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, codes::MG0806, msg).at(pointer)
}

/// The key a PEM text holds.
pub fn parse_public_key(pem: &str, pointer: &str) -> Result<ms_trust::PublicKey> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(invalid(
            format!(
                "the public key is {} bytes, above {MAX_PEM_BYTES}",
                pem.len()
            ),
            pointer,
        ));
    }
    ms_trust::PublicKey::from_pem(pem).map_err(|e| {
        invalid(format!("the public key cannot be read: {e}"), pointer)
            .hint("give a PEM `PUBLIC KEY` (Ed25519 or P-256): `openssl pkey -pubout`")
    })
}

fn validate_name(name: &str, pointer: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            invalid(format!("key name {name:?} is not allowed"), pointer)
                .hint("1 to 128 letters, digits, `.`, `_`, `-`, `@`"),
        )
    }
}

/// Sorted, without duplicates; 1 to 16 names of `[a-z][a-z0-9-]{0,62}`.
fn validate_environments(envs: &[String], pointer: &str) -> Result<Vec<String>> {
    if envs.is_empty() || envs.len() > 16 {
        return Err(invalid(
            format!("{} environments: a key names 1 to 16", envs.len()),
            pointer,
        )
        .hint("e.g. [\"prod\"] or [\"staging\", \"prod\"]"));
    }
    for (i, e) in envs.iter().enumerate() {
        let b = e.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if !ok {
            return Err(invalid(
                format!("environment {e:?} is not allowed"),
                &format!("{pointer}/{i}"),
            )
            .hint("environment names match [a-z][a-z0-9-]{0,62}, e.g. prod, staging"));
        }
    }
    let mut out = envs.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

const COLS: &str = "key_id, name, algorithm, public_key, environments, added_at, added_by, \
    revoked_at, revoked_by, revoke_reason, audit_seq";

fn from_row(r: &sqlx::any::AnyRow) -> Result<SigningKey> {
    let bad = |e: &dyn std::fmt::Display| crate::dataset::internal(format!("signing key row: {e}"));
    let envs: String = r.try_get("environments").map_err(db_err)?;
    let revoked_at: Option<String> = r.try_get("revoked_at").map_err(db_err)?;
    let reason: Option<String> = r.try_get("revoke_reason").map_err(db_err)?;
    let replaced_by = reason
        .as_deref()
        .and_then(|r| r.strip_prefix(ROTATED))
        .map(str::to_string);
    let status = match (&revoked_at, &replaced_by) {
        (None, _) => KeyStatus::Active,
        (Some(_), Some(_)) => KeyStatus::Retired,
        (Some(_), None) => KeyStatus::Revoked,
    };
    Ok(SigningKey {
        key_id: r.try_get("key_id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        algorithm: r.try_get("algorithm").map_err(db_err)?,
        public_key: r.try_get("public_key").map_err(db_err)?,
        environments: serde_json::from_str(&envs).map_err(|e| bad(&e))?,
        status,
        added_at: r.try_get("added_at").map_err(db_err)?,
        added_by: r.try_get("added_by").map_err(db_err)?,
        revoked_at,
        revoked_by: r.try_get("revoked_by").map_err(db_err)?,
        revoke_reason: reason,
        replaced_by,
        audit_seq: r.try_get::<i64, _>("audit_seq").map_err(db_err)? as u64,
    })
}

pub(crate) fn not_found(key_id: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0802,
        format!("no signing key {key_id:?}"),
    )
    .hint(
        "modelspec key list shows the registered keys; an admin adds one with `modelspec key add`",
    )
}

/// The key `key_id`, inside a transaction.
pub(crate) async fn get_tx(tx: &mut Tx, key_id: &str) -> Result<Option<SigningKey>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM signing_keys WHERE key_id = $1"
    )))
    .bind(key_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.as_ref().map(from_row).transpose()
}

/// Every key, oldest first.
pub async fn list(db: &Db) -> Result<Vec<SigningKey>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM signing_keys ORDER BY added_at, key_id"
    )))
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    rows.iter().map(from_row).collect()
}

/// The key `key_id`, if registered.
pub async fn get(db: &Db, key_id: &str) -> Result<Option<SigningKey>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM signing_keys WHERE key_id = $1"
    )))
    .bind(key_id)
    .fetch_optional(db.pool())
    .await
    .map_err(db_err)?;
    row.as_ref().map(from_row).transpose()
}

async fn insert(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    key: &ms_trust::PublicKey,
    name: &str,
    envs: &[String],
    seq: u64,
) -> Result<SigningKey> {
    let k = SigningKey {
        key_id: key.fingerprint(),
        name: name.to_string(),
        algorithm: key.algorithm().as_str().to_string(),
        public_key: key.to_pem(),
        environments: envs.to_vec(),
        status: KeyStatus::Active,
        added_at: at.to_string(),
        added_by: who.name.clone(),
        revoked_at: None,
        revoked_by: None,
        revoke_reason: None,
        replaced_by: None,
        audit_seq: seq,
    };
    sqlx::query(
        "INSERT INTO signing_keys (key_id, name, algorithm, public_key, environments, added_at, \
         added_by, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.key_id)
    .bind(&k.name)
    .bind(&k.algorithm)
    .bind(&k.public_key)
    .bind(json!(k.environments).to_string())
    .bind(&k.added_at)
    .bind(&k.added_by)
    .bind(seq as i64)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(k)
}

fn already(k: &SigningKey, why: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Conflict,
        codes::MG0807,
        format!(
            "key {} is registered already as {:?}: {why}",
            k.key_id, k.name
        ),
    )
}

/// Registers a key (`key.add`), or finds the identical active record.
pub async fn add(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    req: &KeyRequest,
) -> Result<Registered<SigningKey>> {
    validate_name(&req.name, "/name")?;
    let envs = validate_environments(&req.environments, "/environments")?;
    let key = parse_public_key(&req.public_key, "/publicKey")?;
    if let Some(k) = get_tx(tx, &key.fingerprint()).await? {
        return match k.status {
            KeyStatus::Active if k.name == req.name && k.environments == envs => Ok(Registered {
                created: false,
                record: k,
            }),
            KeyStatus::Active => Err(already(&k, "with another name or other environments")),
            _ => Err(
                already(&k, "and revoked or retired; a key never comes back")
                    .hint("generate a new key and add it"),
            ),
        };
    }
    let ev = audit::append(
        tx,
        who,
        at,
        Change {
            action: "key.add",
            subject: format!("key:{}", key.fingerprint()),
            before: None,
            after: None,
            details: json!({"name": req.name, "algorithm": key.algorithm().as_str(), "environments": envs}),
        },
    )
    .await?;
    let k = insert(tx, who, at, &key, &req.name, &envs, ev.seq).await?;
    Ok(Registered {
        created: true,
        record: k,
    })
}

fn inactive(k: &SigningKey) -> RegistryError {
    let what = match k.status {
        KeyStatus::Retired => format!(
            "retired (replaced by {})",
            k.replaced_by.as_deref().unwrap_or("?")
        ),
        _ => format!(
            "revoked at {}: {}",
            k.revoked_at.as_deref().unwrap_or("?"),
            k.revoke_reason.as_deref().unwrap_or("")
        ),
    };
    RegistryError::new(
        ErrorKind::Conflict,
        codes::MG0803,
        format!("signing key {} ({}) is {what}", k.key_id, k.name),
    )
}

/// Replaces active key `key_id` by a new one (`key.rotate`): the new key is added, the old
/// one retired, in one event.
pub async fn rotate(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    key_id: &str,
    req: &RotateKeyRequest,
) -> Result<KeyRotation> {
    let old = get_tx(tx, key_id).await?.ok_or_else(|| not_found(key_id))?;
    if old.status != KeyStatus::Active {
        return Err(inactive(&old));
    }
    let name = req.name.clone().unwrap_or_else(|| old.name.clone());
    validate_name(&name, "/name")?;
    let envs = match &req.environments {
        Some(e) => validate_environments(e, "/environments")?,
        None => old.environments.clone(),
    };
    let key = parse_public_key(&req.public_key, "/publicKey")?;
    if let Some(k) = get_tx(tx, &key.fingerprint()).await? {
        return Err(already(&k, "a rotation needs a new key").at("/publicKey"));
    }
    let ev = audit::append(
        tx,
        who,
        at,
        Change {
            action: "key.rotate",
            subject: format!("key:{key_id}"),
            before: None,
            after: None,
            details: json!({
                "from": key_id,
                "to": key.fingerprint(),
                "name": name,
                "algorithm": key.algorithm().as_str(),
                "environments": envs,
            }),
        },
    )
    .await?;
    let added = insert(tx, who, at, &key, &name, &envs, ev.seq).await?;
    let reason = format!("{ROTATED}{}", added.key_id);
    mark_revoked(tx, who, at, key_id, &reason).await?;
    let retired = get_tx(tx, key_id).await?.ok_or_else(|| not_found(key_id))?;
    Ok(KeyRotation {
        retired,
        added,
        audit_seq: ev.seq,
    })
}

async fn mark_revoked(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    key_id: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE signing_keys SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
         WHERE key_id = $4",
    )
    .bind(at)
    .bind(&who.name)
    .bind(reason)
    .bind(key_id)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Revokes `key_id` (`key.revoke`): no signature by it is valid any more. Revoking a revoked
/// key changes nothing; a retired key can be revoked (its old signatures then fail too).
pub async fn revoke(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    key_id: &str,
    req: &RevokeKeyRequest,
) -> Result<SigningKey> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 4096 || reason.starts_with(ROTATED.trim_end()) {
        return Err(invalid(
            "the reason must be 1 to 4096 bytes and not start with `rotated to`",
            "/reason",
        ));
    }
    let k = get_tx(tx, key_id).await?.ok_or_else(|| not_found(key_id))?;
    if k.status == KeyStatus::Revoked {
        return Ok(k);
    }
    audit::append(
        tx,
        who,
        at,
        Change {
            action: "key.revoke",
            subject: format!("key:{key_id}"),
            before: None,
            after: None,
            details: json!({"name": k.name, "reason": reason, "wasRetired": k.status == KeyStatus::Retired}),
        },
    )
    .await?;
    mark_revoked(tx, who, at, key_id, reason).await?;
    get_tx(tx, key_id).await?.ok_or_else(|| not_found(key_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_environments_are_checked() {
        assert!(validate_name("release-key@ci", "/name").is_ok());
        assert_eq!(
            validate_name("a b", "/name").unwrap_err().code,
            codes::MG0806
        );
        assert_eq!(
            validate_environments(&["prod".into(), "staging".into(), "prod".into()], "/e").unwrap(),
            vec!["prod".to_string(), "staging".to_string()]
        );
        let e = validate_environments(&["prod".into(), "Prod".into()], "/e").unwrap_err();
        assert_eq!(e.pointer.as_deref(), Some("/e/1"));
        assert!(validate_environments(&[], "/e").is_err());
        assert_eq!(
            parse_public_key("not a key", "/publicKey")
                .unwrap_err()
                .code,
            codes::MG0806
        );
    }
}
