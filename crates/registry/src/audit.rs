//! Audit events: one per change, written inside the change's own transaction (so both commit
//! or neither does), numbered gaplessly from 1 under the write lock that `Db::begin_write`
//! holds. `digest` = sha256 of the canonical JSON of every other field. Each event is also a
//! leaf of the verifiable log (`crate::log`): its stored Merkle hashes are written in the same
//! transaction, so no event exists outside the tree.

use serde_json::Value;
use sqlx::Row;

use crate::auth::{parse_role, role_str};
use crate::canonical;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::{AuditEvent, Principal};
use crate::error::Result;

/// What a change says about itself; `append` adds seq, time, actor and digest.
pub struct Change<'a> {
    pub action: &'a str,
    pub subject: String,
    pub before: Option<Digest>,
    pub after: Option<Digest>,
    pub details: Value,
}

/// The digest an event must carry: canonical JSON of the event without `digest`.
pub fn event_digest(e: &AuditEvent) -> Digest {
    let mut v = serde_json::to_value(e).expect("events serialize");
    if let Value::Object(m) = &mut v {
        m.remove("digest");
    }
    Digest::of(canonical::to_string(&v).as_bytes())
}

/// The seq the next event written in `tx` gets (stable inside `Db::begin_write`): what a
/// record that names its own event (a provenance statement's `invocationId`) needs before the
/// event, whose details name the record, is written.
pub async fn next_seq(tx: &mut Tx) -> Result<u64> {
    let (next,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events")
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(next as u64)
}

/// Writes the event for `change` in `tx`, at `at`. Call only inside `Db::begin_write`.
pub async fn append(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    change: Change<'_>,
) -> Result<AuditEvent> {
    let next = next_seq(tx).await? as i64;
    let mut ev = AuditEvent {
        seq: next as u64,
        at: at.to_string(),
        actor: who.name.clone(),
        actor_role: who.role,
        action: change.action.to_string(),
        subject: change.subject,
        before_digest: change.before,
        after_digest: change.after,
        details: change.details,
        digest: Digest([0; 32]),
    };
    ev.digest = event_digest(&ev);
    let entry = crate::log::entry::checked_entry(&ev)?;
    let details = if ev.details.is_null() {
        None
    } else {
        Some(canonical::to_string(&ev.details))
    };
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, actor_role, action, subject, before_digest, \
         after_digest, details, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(next)
    .bind(&ev.at)
    .bind(&ev.actor)
    .bind(role_str(ev.actor_role))
    .bind(&ev.action)
    .bind(&ev.subject)
    .bind(ev.before_digest.map(|d| d.to_string()))
    .bind(ev.after_digest.map(|d| d.to_string()))
    .bind(details)
    .bind(ev.digest.to_string())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    crate::log::tree::append(tx, ev.seq, &entry).await?;
    Ok(ev)
}

fn parse_digest(s: Option<String>) -> Result<Option<Digest>> {
    s.map(|s| {
        s.parse()
            .map_err(|e: crate::digest::BadDigest| bad_row(&e.to_string()))
    })
    .transpose()
}

fn bad_row(msg: &str) -> crate::RegistryError {
    crate::RegistryError::new(
        crate::ErrorKind::Internal,
        crate::codes::MG0608,
        format!("audit row unreadable: {msg}"),
    )
}

/// Reads events with `seq > after`, oldest first. The stored digest is returned as stored,
/// so that a check can compare it with `event_digest`.
pub async fn list(db: &Db, after: u64, limit: u32) -> Result<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, actor_role, action, subject, before_digest, after_digest, \
         details, digest FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after as i64)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let details: Option<String> = r.try_get("details").map_err(db_err)?;
            Ok(AuditEvent {
                seq: r.try_get::<i64, _>("seq").map_err(db_err)? as u64,
                at: r.try_get("at").map_err(db_err)?,
                actor: r.try_get("actor").map_err(db_err)?,
                actor_role: parse_role(&r.try_get::<String, _>("actor_role").map_err(db_err)?)?,
                action: r.try_get("action").map_err(db_err)?,
                subject: r.try_get("subject").map_err(db_err)?,
                before_digest: parse_digest(r.try_get("before_digest").map_err(db_err)?)?,
                after_digest: parse_digest(r.try_get("after_digest").map_err(db_err)?)?,
                details: match details {
                    Some(t) => serde_json::from_str(&t).map_err(|e| bad_row(&e.to_string()))?,
                    None => Value::Null,
                },
                digest: parse_digest(Some(r.try_get("digest").map_err(db_err)?))?.expect("some"),
            })
        })
        .collect()
}
