//! A log entry: the exact bytes of an audit event that the Merkle tree hashes and the entries
//! tiles serve — the canonical JSON of the event with every field, `digest` included. It is
//! built from the stored columns as text, never by parsing them first, so that a damaged row
//! (a byte changed in any column, even one that no longer parses) still yields an entry, whose
//! hash then differs from the stored one and is reported, instead of failing the whole log.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::codes::ENTRY_TOO_LARGE;
use crate::canonical;
use crate::db::db_err;
use crate::entity::AuditEvent;
use crate::error::{ErrorKind, RegistryError, Result};

/// The largest entry an entries tile can hold (16-bit length prefix).
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// The columns of `audit_events` an entry is made of, in `SELECT` order.
pub const COLUMNS: &str =
    "seq, at, actor, actor_role, action, subject, before_digest, after_digest, details, digest";

/// An event's columns as stored (text; `details` is canonical JSON text).
pub struct RawEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub subject: String,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub details: Option<String>,
    pub digest: String,
}

impl RawEvent {
    /// The columns of an `audit_events` row selected with [`COLUMNS`].
    pub fn from_row(r: &AnyRow) -> Result<RawEvent> {
        Ok(RawEvent {
            seq: r.try_get("seq").map_err(db_err)?,
            at: r.try_get("at").map_err(db_err)?,
            actor: r.try_get("actor").map_err(db_err)?,
            actor_role: r.try_get("actor_role").map_err(db_err)?,
            action: r.try_get("action").map_err(db_err)?,
            subject: r.try_get("subject").map_err(db_err)?,
            before_digest: r.try_get("before_digest").map_err(db_err)?,
            after_digest: r.try_get("after_digest").map_err(db_err)?,
            details: r.try_get("details").map_err(db_err)?,
            digest: r.try_get("digest").map_err(db_err)?,
        })
    }

    /// The columns `audit::append` writes for `e`.
    pub fn of(e: &AuditEvent) -> RawEvent {
        RawEvent {
            seq: e.seq as i64,
            at: e.at.clone(),
            actor: e.actor.clone(),
            actor_role: crate::auth::role_str(e.actor_role).to_string(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            before_digest: e.before_digest.map(|d| d.to_string()),
            after_digest: e.after_digest.map(|d| d.to_string()),
            details: (!e.details.is_null()).then(|| canonical::to_string(&e.details)),
            digest: e.digest.to_string(),
        }
    }

    /// The entry bytes: canonical JSON with the field names and shapes of [`AuditEvent`].
    /// `details` that no longer parse as JSON are kept as a string, so the entry still exists.
    pub fn entry(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("seq".into(), Value::from(self.seq));
        m.insert("at".into(), Value::from(self.at.as_str()));
        m.insert("actor".into(), Value::from(self.actor.as_str()));
        m.insert("actorRole".into(), Value::from(self.actor_role.as_str()));
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("subject".into(), Value::from(self.subject.as_str()));
        if let Some(d) = &self.before_digest {
            m.insert("beforeDigest".into(), Value::from(d.as_str()));
        }
        if let Some(d) = &self.after_digest {
            m.insert("afterDigest".into(), Value::from(d.as_str()));
        }
        if let Some(t) = &self.details {
            let v = serde_json::from_str(t).unwrap_or_else(|_| Value::from(t.as_str()));
            if !v.is_null() {
                m.insert("details".into(), v);
            }
        }
        m.insert("digest".into(), Value::from(self.digest.as_str()));
        canonical::to_string(&Value::Object(m)).into_bytes()
    }
}

/// The entry of a new event, refused when an entries tile cannot hold it.
pub fn checked_entry(e: &AuditEvent) -> Result<Vec<u8>> {
    let entry = RawEvent::of(e).entry();
    if entry.len() > MAX_ENTRY {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            ENTRY_TOO_LARGE,
            format!(
                "the audit event of this change is {} bytes of JSON, above the log's {MAX_ENTRY}",
                entry.len()
            ),
        )
        .hint("shorten the change's names, reasons or details"));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::entity::Role;

    #[test]
    fn an_entry_is_the_canonical_json_of_the_event() {
        let mut e = AuditEvent {
            seq: 7,
            at: "2026-12-07T01:02:03.004Z".into(),
            actor: "os:ana".into(),
            actor_role: Role::Admin,
            action: "model.promote".into(),
            subject: "model:m@2".into(),
            before_digest: Some(Digest::of(b"a")),
            after_digest: None,
            details: serde_json::json!({"to": "prod", "reason": "ok"}),
            digest: Digest([0; 32]),
        };
        e.digest = crate::audit::event_digest(&e);
        let expected = canonical::to_string(&serde_json::to_value(&e).unwrap());
        assert_eq!(RawEvent::of(&e).entry(), expected.into_bytes());
        e.details = Value::Null;
        let expected = canonical::to_string(&serde_json::to_value(&e).unwrap());
        assert_eq!(RawEvent::of(&e).entry(), expected.into_bytes());
    }

    #[test]
    fn a_damaged_row_still_has_an_entry() {
        let mut raw = RawEvent::of(&AuditEvent {
            seq: 1,
            at: "t".into(),
            actor: "a".into(),
            actor_role: Role::Reader,
            action: "x".into(),
            subject: "s".into(),
            before_digest: None,
            after_digest: None,
            details: Value::Null,
            digest: Digest([0; 32]),
        });
        raw.details = Some("{not json".into());
        raw.actor_role = "emperor".into();
        let text = String::from_utf8(raw.entry()).unwrap();
        assert!(text.contains(r#""details":"{not json""#), "{text}");
        assert!(text.contains(r#""actorRole":"emperor""#), "{text}");
    }
}
