//! Provenance records: for every model version and dataset, an in-toto Statement v1 with an
//! SLSA Provenance v1 predicate, built and stored in the registration's own transaction (so a
//! version never exists without its statement), its digest written into the registration's
//! audit event (`details.provenance`), so the verifiable log vouches for it. The statement's
//! bytes are canonical JSON: what a signature made client-side ([`sign_record`]) and attached
//! later ([`attach`]) covers; [`check`] is `registry check`'s part.
//!
//! The mapping (no standard ML profile exists): `externalParameters` = the registration's
//! inputs; `resolvedDependencies` = the spec, the code ref, the parent versions (`model:NAME@V`)
//! and the datasets (`dataset:sha256:…`) with the digests they had; `runDetails.builder` = this
//! registry and its version; `metadata.invocationId` = `audit:<seq>` of the registration's
//! event. A model version's subjects are the version itself (its manifest digest) and its
//! artifacts; a dataset's subject is the dataset (its `datasetId`).

use std::collections::BTreeMap;

use ms_trust::PublicKey;
use ms_trust::bundle::Bundle;
use ms_trust::dsse;
use ms_trust::intoto::{ResourceDescriptor, Statement};
use ms_trust::provenance::{
    self as slsa, BuildDefinition, BuildMetadata, Builder, Provenance, RunDetails,
};
use serde_json::{Value, json};
use sqlx::Row;

use crate::canonical;
use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::{Dataset, KeyStatus, Principal, ProvenanceRecord, SigningKey};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::model::Prepared;

/// `runDetails.builder.id` of every statement this registry writes.
pub const BUILDER_ID: &str = "https://modelspec.dev/registry/v1";
/// `buildDefinition.buildType` of a model version's registration.
pub const MODEL_BUILD_TYPE: &str = "https://modelspec.dev/registration/model/v1";
/// `buildDefinition.buildType` of a dataset's registration.
pub const DATASET_BUILD_TYPE: &str = "https://modelspec.dev/registration/dataset/v1";

/// When a registration ran and which audit event records it.
pub struct Invocation<'a> {
    pub who: &'a Principal,
    pub started_on: &'a str,
    pub finished_on: &'a str,
    pub audit_seq: u64,
}

fn run_details(inv: &Invocation<'_>) -> RunDetails {
    RunDetails {
        builder: Builder {
            id: BUILDER_ID.into(),
            version: BTreeMap::from([("modelspec".into(), env!("CARGO_PKG_VERSION").into())]),
            builder_dependencies: vec![],
        },
        metadata: Some(BuildMetadata {
            invocation_id: Some(format!("audit:{}", inv.audit_seq)),
            started_on: Some(inv.started_on.into()),
            finished_on: Some(inv.finished_on.into()),
        }),
        byproducts: vec![],
    }
}

fn internal_parameters(who: &Principal) -> Value {
    json!({"actor": who.name, "actorRole": who.role})
}

/// A descriptor of a lineage node with the digest it has now.
pub fn node_descriptor(node: &str, digest: &Digest, relation: &str) -> ResourceDescriptor {
    let mut d = ResourceDescriptor::sha256(node, digest.hex());
    d.uri = Some(node.into());
    d.annotations = Some(serde_json::Map::from_iter([(
        "relation".to_string(),
        Value::from(relation),
    )]));
    d
}

/// A `…@<40 or 64 hex>` code ref's commit, as a `gitCommit` digest.
fn code_descriptor(code_ref: &str) -> ResourceDescriptor {
    let mut d = ResourceDescriptor {
        name: Some("code".into()),
        uri: Some(code_ref.into()),
        ..Default::default()
    };
    if let Some((_, commit)) = code_ref.rsplit_once('@')
        && matches!(commit.len(), 40 | 64)
        && commit.bytes().all(|b| b.is_ascii_hexdigit())
    {
        d.digest
            .insert("gitCommit".into(), commit.to_ascii_lowercase());
    }
    d
}

/// The statement of a new model version. Reads, in `tx`, the names of its artifacts and the
/// digests of its parent versions (which registration has just checked exist).
pub async fn model_statement(
    tx: &mut Tx,
    p: &Prepared,
    version: u64,
    version_digest: &Digest,
    inv: &Invocation<'_>,
) -> Result<Statement> {
    let me = crate::model::node_id(&p.model_id, version);
    let mut subjects = vec![ResourceDescriptor::sha256(&me, version_digest.hex())];
    for a in &p.artifact_ids {
        let row = sqlx::query("SELECT name, media_type FROM artifacts WHERE artifact_id = $1")
            .bind(a.to_string())
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?;
        let mut d =
            ResourceDescriptor::sha256(row.try_get::<String, _>("name").map_err(db_err)?, a.hex());
        d.uri = Some(format!("artifact:{a}"));
        d.media_type = Some(row.try_get("media_type").map_err(db_err)?);
        subjects.push(d);
    }
    let mut deps = vec![ResourceDescriptor::sha256("spec", p.spec_digest.hex())];
    if let Some(c) = &p.code_ref {
        deps.push(code_descriptor(c));
    }
    for r in &p.lineage.parent_models {
        let (name, v) = crate::model::parse_ref(r).map_err(|m| {
            RegistryError::new(ErrorKind::Invalid, codes::MG0207, m).at("/lineage/parentModels")
        })?;
        let digest: String =
            sqlx::query("SELECT digest FROM model_versions WHERE model_id = $1 AND version = $2")
                .bind(&name)
                .bind(v as i64)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_err)?
                .try_get("digest")
                .map_err(db_err)?;
        let digest: Digest = digest
            .parse()
            .map_err(|e: crate::digest::BadDigest| crate::dataset::internal(e.to_string()))?;
        deps.push(node_descriptor(
            &crate::model::node_id(&name, v),
            &digest,
            "derivedFrom",
        ));
    }
    for ds in &p.lineage.dataset_refs {
        deps.push(node_descriptor(
            &crate::dataset::node_id(ds),
            ds,
            "trainedOn",
        ));
    }
    Ok(slsa::statement(
        subjects,
        &Provenance {
            build_definition: BuildDefinition {
                build_type: MODEL_BUILD_TYPE.into(),
                external_parameters: json!({
                    "modelId": p.model_id,
                    "specDigest": p.spec_digest,
                    "artifactIds": p.artifact_ids,
                    "codeRef": p.code_ref,
                    "metrics": p.metrics,
                    "lineage": p.lineage,
                    "provenance": p.provenance,
                }),
                internal_parameters: Some(internal_parameters(inv.who)),
                resolved_dependencies: deps,
            },
            run_details: run_details(inv),
        },
    ))
}

/// The statement of a new dataset.
pub fn dataset_statement(d: &Dataset, inv: &Invocation<'_>) -> Statement {
    let me = crate::dataset::node_id(&d.dataset_id);
    let mut deps = Vec::new();
    for s in &d.source_refs {
        match s.parse::<Digest>() {
            Ok(src) => deps.push(node_descriptor(
                &crate::dataset::node_id(&src),
                &src,
                "sourcedFrom",
            )),
            Err(_) => deps.push(ResourceDescriptor {
                name: Some("source".into()),
                uri: Some(s.clone()),
                ..Default::default()
            }),
        }
    }
    for t in &d.transformations {
        let mut r = ResourceDescriptor::sha256("transformation", t.checksum.hex());
        r.uri = Some(t.code_ref.clone());
        deps.push(r);
    }
    slsa::statement(
        vec![ResourceDescriptor::sha256(&me, d.dataset_id.hex())],
        &Provenance {
            build_definition: BuildDefinition {
                build_type: DATASET_BUILD_TYPE.into(),
                external_parameters: json!({
                    "name": d.name,
                    "checksum": d.checksum,
                    "fileCount": d.file_count,
                    "totalSize": d.total_size,
                    "license": d.license,
                    "piiFlags": d.pii_flags,
                    "sourceRefs": d.source_refs,
                    "transformations": d.transformations,
                }),
                internal_parameters: Some(internal_parameters(inv.who)),
                resolved_dependencies: deps,
            },
            run_details: run_details(inv),
        },
    )
}

/// The stored text of a statement (canonical JSON) and its digest.
pub fn encode(s: &Statement) -> (String, Digest) {
    let text = canonical::to_string(&serde_json::to_value(s).expect("statements serialize"));
    let digest = Digest::of(text.as_bytes());
    (text, digest)
}

/// Stores a new record (unsigned). Call after the audit event `audit_seq` is written.
pub async fn insert(
    tx: &mut Tx,
    subject: &str,
    text: &str,
    digest: &Digest,
    audit_seq: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO provenance_records (subject, statement_digest, statement, audit_seq) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(subject)
    .bind(digest.to_string())
    .bind(text)
    .bind(audit_seq as i64)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

const COLS: &str = "subject, statement_digest, statement, bundle, key_id, signed_at, audit_seq";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ProvenanceRecord> {
    let bad = |e: String| crate::dataset::internal(format!("provenance record: {e}"));
    let bundle: Option<String> = r.try_get("bundle").map_err(db_err)?;
    Ok(ProvenanceRecord {
        subject: r.try_get("subject").map_err(db_err)?,
        statement_digest: r
            .try_get::<String, _>("statement_digest")
            .map_err(db_err)?
            .parse()
            .map_err(|e: crate::digest::BadDigest| bad(e.to_string()))?,
        statement: r.try_get("statement").map_err(db_err)?,
        bundle: bundle
            .map(|b| serde_json::from_str(&b))
            .transpose()
            .map_err(|e| bad(e.to_string()))?,
        key_id: r.try_get("key_id").map_err(db_err)?,
        signed_at: r.try_get("signed_at").map_err(db_err)?,
        audit_seq: r.try_get::<i64, _>("audit_seq").map_err(db_err)? as u64,
    })
}

pub fn not_found(subject: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0901,
        format!("{subject} has no provenance record"),
    )
    .hint("records are written at registration; versions and datasets registered before provenance existed have none")
}

/// The record of a normalized subject (`model:NAME@N`, `dataset:sha256:…`).
pub async fn get(db: &Db, subject: &str) -> Result<ProvenanceRecord> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM provenance_records WHERE subject = $1"
    )))
    .bind(subject)
    .fetch_optional(db.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(subject))?;
    from_row(&row)
}

/// Most records `GET /artifact/{id}` lists.
pub const ARTIFACT_RECORDS_SHOWN: i64 = 100;

/// The records of the versions made of artifact `id`, oldest first.
pub async fn for_artifact(db: &Db, id: &Digest) -> Result<Vec<ProvenanceRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT p.subject, p.statement_digest, p.statement, p.bundle, p.key_id, p.signed_at, \
         p.audit_seq FROM version_artifacts va JOIN provenance_records p \
         ON p.subject = 'model:' || va.model_id || '@' || CAST(va.version AS TEXT) \
         WHERE va.artifact_id = $1 ORDER BY p.audit_seq LIMIT {ARTIFACT_RECORDS_SHOWN}"
    )))
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    rows.iter().map(from_row).collect()
}

/// A subject as the API accepts it (`model:NAME@SELECTOR`, `NAME@SELECTOR`,
/// `dataset:sha256:…`, `sha256:…`), split before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    Model { name: String, selector: String },
    Dataset(Digest),
}

/// Parses a subject; errors point at `/subject`.
pub fn parse_subject(s: &str) -> Result<SubjectRef> {
    let bad = |why: String| {
        RegistryError::new(ErrorKind::Invalid, codes::MG0902, why)
            .at("/subject")
            .hint("model:NAME@VERSION (or NAME@VERSION, NAME@prod) or dataset:sha256:<hex>")
    };
    let rest = s.strip_prefix("dataset:").unwrap_or(s);
    if rest.starts_with("sha256:") {
        return rest
            .parse()
            .map(SubjectRef::Dataset)
            .map_err(|e: crate::digest::BadDigest| bad(format!("{s:?}: {e}")));
    }
    let m = s.strip_prefix("model:").unwrap_or(s);
    let Some((name, selector)) = m.rsplit_once('@') else {
        return Err(bad(format!("{s:?} names no version (`@`)")));
    };
    crate::model::validate_model_id(name).map_err(bad)?;
    if selector.is_empty() {
        return Err(bad(format!("{s:?} has an empty version")));
    }
    Ok(SubjectRef::Model {
        name: name.into(),
        selector: selector.into(),
    })
}

/// The subject's normalized id (`model:NAME@N`, `dataset:sha256:…`) and the digest its record
/// has now (the version's manifest digest, the `datasetId`).
pub async fn resolve(db: &Db, s: &SubjectRef) -> Result<(String, Digest)> {
    match s {
        SubjectRef::Model { name, selector } => {
            let v = crate::model::version(db, name, selector).await?;
            Ok((crate::model::node_id(name, v.version), v.digest))
        }
        SubjectRef::Dataset(d) => {
            let ds = crate::dataset::get(db, d, false).await?;
            Ok((crate::dataset::node_id(&ds.dataset_id), ds.dataset_id))
        }
    }
}

fn parse_bundle(bundle: &Value) -> Result<(Bundle, String)> {
    let text = canonical::to_string(bundle);
    let max = crate::signing::bundle::MAX_BUNDLE_BYTES;
    if text.len() > max {
        return Err(RegistryError::new(
            ErrorKind::TooLarge,
            codes::MG0903,
            format!("the bundle is {} bytes, above {max}", text.len()),
        )
        .at("/bundle"));
    }
    let b = Bundle::from_json(text.as_bytes()).map_err(|e| {
        RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0903,
            format!("the bundle cannot be read: {e}"),
        )
        .at(format!("/bundle{}", pointer_of(&e.message)))
        .hint("modelspec provenance sign SUBJECT --signer REF makes one")
    })?;
    Ok((b, text))
}

/// The JSON pointer a trust error's message starts its complaint with, if any.
fn pointer_of(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .map(|w| w.trim_end_matches([',', ':', ';']).to_string())
        .unwrap_or_default()
}

/// The registered key a bundle names (its hint: model_signing's hex sha256 of the PEM text, or
/// a key id), else the one active key its signature verifies with.
async fn named_key(db: &Db, b: &Bundle) -> Result<SigningKey> {
    let all = crate::signing::keys::list(db).await?;
    if let Some(hint) = b.key_hint()
        && let Some(k) = all.iter().find(|k| {
            k.key_id == hint
                || Digest::of(k.public_key.as_bytes()).hex() == hint.to_ascii_lowercase()
        })
    {
        return Ok(k.clone());
    }
    for k in all.iter().filter(|k| k.status == KeyStatus::Active) {
        if let Ok(pk) = PublicKey::from_pem(&k.public_key)
            && dsse::verify(b, &pk).is_ok()
        {
            return Ok(k.clone());
        }
    }
    Err(RegistryError::new(
        ErrorKind::Forbidden,
        codes::MG0905,
        match b.key_hint() {
            Some(h) => format!("no registered signing key has the bundle's key hint {h}"),
            None => "no registered active key verifies the bundle".into(),
        },
    )
    .at("/bundle")
    .hint("an admin registers the signer's public key with `modelspec key add`"))
}

fn signs_another(subject: &str, b: &Bundle, statement_digest: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Integrity,
        codes::MG0904,
        format!(
            "the bundle signs a payload of digest {}, not the statement of {subject} ({statement_digest})",
            b.payload_digest()
        ),
    )
    .at("/bundle/dsseEnvelope/payload")
    .hint("sign exactly the bytes of `statement` from GET /provenance/{subject}")
}

/// Attaches `bundle` to `subject`'s record after checking it: its payload is the stored
/// statement byte for byte, its key is registered and not revoked, its signature verifies.
/// Writes the audit event `provenance.sign`, in its own write transaction.
pub async fn attach(
    db: &Db,
    who: &Principal,
    at: &str,
    subject: &str,
    bundle: &Value,
) -> Result<()> {
    let (b, text) = parse_bundle(bundle)?;
    // What it signs first (no key lookup for a bundle of something else); checked again below
    // under the write lock.
    let record = get(db, subject).await?;
    if b.envelope.payload != record.statement.as_bytes() {
        return Err(signs_another(
            subject,
            &b,
            &record.statement_digest.to_string(),
        ));
    }
    let named = named_key(db, &b).await?;
    let mut tx = db.begin_write().await?;
    attach_in(&mut tx, who, at, subject, &b, &text, &named).await?;
    tx.commit().await.map_err(db_err)
}

async fn attach_in(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    subject: &str,
    b: &Bundle,
    text: &str,
    named: &SigningKey,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT statement, statement_digest, bundle FROM provenance_records WHERE subject = $1",
    )
    .bind(subject)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(subject))?;
    let statement: String = row.try_get("statement").map_err(db_err)?;
    let statement_digest: String = row.try_get("statement_digest").map_err(db_err)?;
    let old: Option<String> = row.try_get("bundle").map_err(db_err)?;
    if b.envelope.payload != statement.as_bytes() {
        return Err(signs_another(subject, b, &statement_digest));
    }
    // The key as it stands now, under the write lock: a revocation that commits first wins.
    let k = crate::signing::keys::get_tx(tx, &named.key_id)
        .await?
        .ok_or_else(|| crate::signing::keys::not_found(&named.key_id))?;
    if k.status != KeyStatus::Active {
        let why = match k.status {
            KeyStatus::Retired => format!(
                "retired (replaced by {}): it signs nothing new",
                k.replaced_by.as_deref().unwrap_or("?")
            ),
            _ => format!("revoked at {}", k.revoked_at.as_deref().unwrap_or("?")),
        };
        return Err(RegistryError::new(
            ErrorKind::Forbidden,
            codes::MG0905,
            format!("the signing key {} ({}) is {why}", k.key_id, k.name),
        )
        .hint("sign with an active registered key (`modelspec key list`)"));
    }
    let key_id = k.key_id.clone();
    let key = PublicKey::from_pem(&k.public_key)
        .map_err(|e| crate::dataset::internal(format!("signing key {key_id}: {e}")))?;
    dsse::verify(b, &key).map_err(|e| {
        RegistryError::new(
            ErrorKind::Integrity,
            codes::MG0906,
            format!("the signature of {subject} does not verify with key {key_id}: {e}"),
        )
        .at("/bundle/dsseEnvelope/signatures")
    })?;
    let envelope = |b: &Bundle| b.envelope_digest().parse::<Digest>().ok();
    let before = old
        .and_then(|t| Bundle::from_json(t.as_bytes()).ok())
        .and_then(|b| envelope(&b));
    crate::audit::append(
        tx,
        who,
        at,
        crate::audit::Change {
            action: "provenance.sign",
            subject: subject.to_string(),
            before,
            after: envelope(b),
            details: json!({"statementDigest": statement_digest, "keyId": key_id}),
        },
    )
    .await?;
    sqlx::query(
        "UPDATE provenance_records SET bundle = $1, key_id = $2, signed_at = $3 WHERE subject = $4",
    )
    .bind(text)
    .bind(&key_id)
    .bind(at)
    .bind(subject)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Client side: the signature of `record`'s statement by `signer`, ready for
/// [`crate::Registry::sign_provenance`]. Refuses a statement whose bytes no longer hash to its
/// recorded digest (MG0907): a signature vouches for what it covers, so never for damage.
pub fn sign_record(
    record: &ProvenanceRecord,
    signer: &dyn ms_trust::Signer,
) -> Result<crate::entity::ProvenanceSignature> {
    let actual = Digest::of(record.statement.as_bytes());
    if actual != record.statement_digest {
        return Err(RegistryError::new(
            ErrorKind::Integrity,
            codes::MG0907,
            format!(
                "the statement of {} hashes to {actual}, its record says {}: not signing it",
                record.subject, record.statement_digest
            ),
        )
        .hint("run `modelspec provenance SUBJECT` to see what changed"));
    }
    let bundle = dsse::sign_payload(
        ms_trust::intoto::PAYLOAD_TYPE,
        record.statement.as_bytes().to_vec(),
        signer,
    )
    .map_err(|e| {
        RegistryError::new(
            ErrorKind::Unavailable,
            codes::MG0913,
            format!("the signer failed: {e}"),
        )
    })?;
    let bundle = serde_json::from_str(&bundle.to_json())
        .map_err(|e| crate::dataset::internal(e.to_string()))?;
    Ok(crate::entity::ProvenanceSignature { bundle })
}

/// `registry check`'s part: every stored statement hashes to its recorded digest (MG0907), and
/// every registration whose audit event names a statement (`logged`: subject -> digest) has
/// that record (MG0901, MG0911). Versions and datasets registered before provenance have no
/// such event and are not findings. Returns the rows read.
pub async fn check(
    db: &Db,
    logged: &BTreeMap<String, String>,
    out: &mut Vec<crate::entity::CheckProblem>,
) -> Result<u64> {
    let finding = |code: &str, subject: &str, message: String| crate::entity::CheckProblem {
        code: code.into(),
        subject: subject.into(),
        message,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT subject, statement_digest, statement FROM provenance_records \
             WHERE subject > $1 ORDER BY subject LIMIT 1000",
        )
        .bind(&after)
        .fetch_all(db.pool())
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get("subject").map_err(db_err)?;
        for r in &rows {
            let subject: String = r.try_get("subject").map_err(db_err)?;
            let recorded: String = r.try_get("statement_digest").map_err(db_err)?;
            let statement: String = r.try_get("statement").map_err(db_err)?;
            let actual = Digest::of(statement.as_bytes()).to_string();
            if actual != recorded {
                out.push(finding(
                    codes::MG0907,
                    &subject,
                    format!("the statement hashes to {actual}, its record says {recorded}"),
                ));
            }
            if let Some(l) = logged.get(&subject)
                && *l != actual
            {
                out.push(finding(
                    codes::MG0911,
                    &subject,
                    format!("the registration's audit event names statement {l}, the stored one hashes to {actual}"),
                ));
            }
            seen.insert(subject);
        }
    }
    for (subject, d) in logged {
        if !seen.contains(subject) {
            out.push(finding(
                codes::MG0901,
                subject,
                format!(
                    "the registration's audit event names statement {d}, but the record is gone"
                ),
            ));
        }
    }
    Ok(seen.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_read_in_every_spelling() {
        let d = Digest::of(b"x");
        for s in [format!("dataset:{d}"), d.to_string()] {
            assert_eq!(parse_subject(&s).unwrap(), SubjectRef::Dataset(d));
        }
        for s in ["model:m@2", "m@2"] {
            assert_eq!(
                parse_subject(s).unwrap(),
                SubjectRef::Model {
                    name: "m".into(),
                    selector: "2".into()
                }
            );
        }
        for bad in ["m", "m@", "Model@1", "dataset:sha256:12", "model:../x@1"] {
            let e = parse_subject(bad).unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.pointer.as_deref()),
                ("MG0902", Some("/subject"))
            );
        }
    }

    #[test]
    fn a_pinned_code_ref_is_a_git_commit() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        let d = code_descriptor(&format!("git+https://h/r@{c}"));
        assert_eq!(d.digest.get("gitCommit").map(String::as_str), Some(c));
        assert!(code_descriptor("git+https://h/r@main").digest.is_empty());
        assert_eq!(
            code_descriptor("git+https://h/r@main").uri.as_deref(),
            Some("git+https://h/r@main")
        );
    }

    #[test]
    fn trust_error_pointers_are_found() {
        assert_eq!(
            pointer_of("the bundle has no /dsseEnvelope/payload"),
            "/dsseEnvelope/payload"
        );
        assert_eq!(pointer_of("/mediaType is \"x\", expected"), "/mediaType");
        assert_eq!(pointer_of("not JSON"), "");
    }
}
