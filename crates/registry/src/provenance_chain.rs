//! The provenance chain of a model version or dataset, down to the datasets: every link (a
//! provenance record) fetched through the [`Registry`] trait (embedded or remote alike) and
//! checked on its own — the statement's bytes hash to the recorded digest, that digest is the
//! one the registration's audit event names, the statement describes this record (first
//! subject = the record and its current digest), each dependency (dataset, parent version) and
//! subject artifact still resolves to the digest the statement recorded, and the signature
//! bundle signs exactly these bytes with a trusted key. Every failure is a finding with its MG
//! code naming the link, never an early stop: one walk reports everything that is wrong.

use std::collections::{BTreeSet, VecDeque};

use ms_trust::PublicKey;
use ms_trust::bundle::Bundle;
use ms_trust::intoto::Statement;
use serde::{Deserialize, Serialize};

use crate::api::Registry;
use crate::codes;
use crate::digest::Digest;
use crate::entity::{CheckProblem, ProvenanceRecord};
use crate::error::{ErrorKind, Result};
use crate::provenance::{SubjectRef, parse_subject};

/// Most links one walk visits (a guard against a pathological graph).
pub const MAX_LINKS: usize = 10_000;

/// A key whose signatures the caller trusts, with a name to show.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
}

/// One link: a record and what was found about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// `model:NAME@N` or `dataset:sha256:…`.
    pub subject: String,
    /// Hops from the root.
    pub depth: u32,
    /// The links it depends on, as the statement names them, with their relation
    /// (`trainedOn`, `derivedFrom`, `sourcedFrom`).
    pub dependencies: Vec<Dependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_digest: Option<Digest>,
    /// The trusted key that signed it (its name), when the signature verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// Empty when the link verified.
    pub problems: Vec<CheckProblem>,
}

/// An edge of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub subject: String,
    pub relation: String,
}

/// The whole chain, root first (breadth first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    pub root: String,
    /// True when every link verified.
    pub verified: bool,
    pub links: Vec<Link>,
}

impl Chain {
    /// Every finding of every link.
    pub fn problems(&self) -> impl Iterator<Item = &CheckProblem> {
        self.links.iter().flat_map(|l| l.problems.iter())
    }
}

/// The registry's own keys as the trust root: every registered key that is not revoked (a
/// retired key's earlier signatures stay valid; a revoked key's never are).
pub async fn registry_keys(reg: &dyn Registry) -> Result<Vec<TrustedKey>> {
    Ok(reg
        .keys()
        .await?
        .into_iter()
        .filter(|k| k.status != crate::entity::KeyStatus::Revoked)
        .filter_map(|k| {
            PublicKey::from_pem(&k.public_key)
                .ok()
                .map(|key| TrustedKey { name: k.name, key })
        })
        .collect())
}

fn problem(code: &str, subject: &str, message: String) -> CheckProblem {
    CheckProblem {
        code: code.into(),
        subject: subject.into(),
        message,
    }
}

/// The digest `subject` has in the registry now, or a finding saying why there is none.
async fn current_digest(reg: &dyn Registry, subject: &str) -> std::result::Result<Digest, String> {
    let s = parse_subject(subject).map_err(|e| e.message)?;
    match s {
        SubjectRef::Model { name, selector } => reg
            .model_version(&name, &selector)
            .await
            .map(|v| v.digest)
            .map_err(|e| e.message),
        SubjectRef::Dataset(d) => reg
            .dataset(&d)
            .await
            .map(|ds| ds.dataset_id)
            .map_err(|e| e.message),
    }
}

/// Walks and checks the chain from `root` (a subject as `Registry::provenance` takes it).
/// `Err` only when the root itself has no record or the registry fails; everything else is a
/// finding in the returned chain.
pub async fn verify(reg: &dyn Registry, root: &str, trusted: &[TrustedKey]) -> Result<Chain> {
    let first = reg.provenance(root).await?;
    let root = first.subject.clone();
    let mut seen = BTreeSet::from([root.clone()]);
    let mut queue = VecDeque::from([(first.subject.clone(), 0u32, Some(first))]);
    let mut links = Vec::new();
    while let Some((subject, depth, record)) = queue.pop_front() {
        let record = match record {
            Some(r) => Ok(r),
            None => reg.provenance(&subject).await,
        };
        let link = match record {
            Ok(r) => check_link(reg, r, depth, trusted).await?,
            Err(e) if e.kind == ErrorKind::NotFound => Link {
                subject: subject.clone(),
                depth,
                dependencies: vec![],
                statement_digest: None,
                signed_by: None,
                signed_at: None,
                problems: vec![problem(codes::MG0901, &subject, e.message)],
            },
            Err(e) => return Err(e),
        };
        for d in &link.dependencies {
            if seen.len() < MAX_LINKS && seen.insert(d.subject.clone()) {
                queue.push_back((d.subject.clone(), depth + 1, None));
            }
        }
        links.push(link);
    }
    Ok(Chain {
        root,
        verified: links.iter().all(|l| l.problems.is_empty()),
        links,
    })
}

async fn check_link(
    reg: &dyn Registry,
    r: ProvenanceRecord,
    depth: u32,
    trusted: &[TrustedKey],
) -> Result<Link> {
    let subject = r.subject.clone();
    let mut problems = Vec::new();
    let mut dependencies = Vec::new();
    let mut p = |code: &str, message: String| problems.push(problem(code, &subject, message));

    // 1. The bytes are the ones recorded.
    let actual = Digest::of(r.statement.as_bytes());
    if actual != r.statement_digest {
        p(
            codes::MG0907,
            format!(
                "the statement of {subject} was changed: its bytes hash to {actual}, the record says {}",
                r.statement_digest
            ),
        );
    }
    // 2. The registration's audit event names this statement.
    let event = reg
        .audit_events(r.audit_seq.saturating_sub(1), 1)
        .await?
        .into_iter()
        .next()
        .filter(|e| e.seq == r.audit_seq);
    match event {
        None => p(
            codes::MG0911,
            format!(
                "the audit event {} of {subject}'s registration is missing",
                r.audit_seq
            ),
        ),
        Some(e) => {
            let logged = e.details.get("provenance").and_then(|v| v.as_str());
            if e.subject != subject {
                p(
                    codes::MG0911,
                    format!(
                        "audit event {} is about {}, not {subject}",
                        e.seq, e.subject
                    ),
                );
            } else if logged != Some(actual.to_string().as_str()) {
                p(
                    codes::MG0911,
                    format!(
                        "audit event {} recorded statement digest {}, the statement of {subject} hashes to {actual}",
                        e.seq,
                        logged.unwrap_or("(none)")
                    ),
                );
            }
        }
    }
    // 3. It is SLSA provenance about this record.
    let statement = Statement::from_json(r.statement.as_bytes()).and_then(|s| {
        let predicate = ms_trust::provenance::parse(&s)?;
        Ok((s, predicate))
    });
    match &statement {
        Err(e) => p(
            codes::MG0908,
            format!("the statement of {subject} is not SLSA provenance: {e}"),
        ),
        Ok((s, predicate)) => {
            let first = &s.subject[0];
            match current_digest(reg, &subject).await {
                Err(why) => p(
                    codes::MG0908,
                    format!("{subject} itself cannot be read: {why}"),
                ),
                Ok(now) => {
                    if first.name.as_deref() != Some(subject.as_str()) {
                        p(
                            codes::MG0908,
                            format!(
                                "the statement's first subject is {:?}, not {subject}",
                                first.name.as_deref().unwrap_or("")
                            ),
                        );
                    } else if first.sha256_hex() != Some(now.hex().as_str()) {
                        p(
                            codes::MG0908,
                            format!(
                                "the statement says {subject} has digest sha256:{}, the registry has {now}",
                                first.sha256_hex().unwrap_or("")
                            ),
                        );
                    }
                }
            }
            // 4. Subject artifacts and dependencies resolve to what was recorded.
            for a in &s.subject[1..] {
                let Some(id) = a.sha256_hex().and_then(|h| Digest::from_hex(h).ok()) else {
                    continue;
                };
                if let Err(e) = reg.artifact(&id).await {
                    p(
                        codes::MG0909,
                        format!(
                            "artifact {} ({id}) of {subject} does not resolve: {}",
                            a.name.as_deref().unwrap_or("?"),
                            e.message
                        ),
                    );
                }
            }
            for dep in &predicate.build_definition.resolved_dependencies {
                let Some(name) = dep.name.as_deref() else {
                    continue;
                };
                if !(name.starts_with("model:") || name.starts_with("dataset:")) {
                    continue;
                }
                let relation = dep
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("relation"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("dependsOn")
                    .to_string();
                let recorded = dep.sha256_hex().unwrap_or("");
                match current_digest(reg, name).await {
                    Err(why) => p(
                        codes::MG0909,
                        format!(
                            "dependency {name} of {subject} (recorded sha256:{recorded}) does not resolve: {why}"
                        ),
                    ),
                    Ok(now) if now.hex() != recorded => p(
                        codes::MG0909,
                        format!(
                            "dependency {name} of {subject} was recorded as sha256:{recorded}, the registry has {now}"
                        ),
                    ),
                    Ok(_) => {}
                }
                dependencies.push(Dependency {
                    subject: name.to_string(),
                    relation,
                });
            }
        }
    }
    // 5. Signed, over these bytes, by a trusted key.
    let mut signed_by = None;
    match &r.bundle {
        None => p(
            codes::MG0910,
            format!(
                "{subject} is unsigned: `modelspec provenance sign {subject} --signer REF` signs it"
            ),
        ),
        Some(v) => match Bundle::from_json(crate::canonical::to_string(v).as_bytes()) {
            Err(e) => p(
                codes::MG0903,
                format!("the signature bundle of {subject} cannot be read: {e}"),
            ),
            Ok(b) if b.envelope.payload != r.statement.as_bytes() => p(
                codes::MG0904,
                format!(
                    "the signature of {subject} covers a payload of digest {}, not its statement ({actual})",
                    b.payload_digest()
                ),
            ),
            Ok(b) => {
                let hint = b.key_hint().map(str::to_string);
                let key = trusted.iter().find(|t| match &hint {
                    Some(h) => *h == ms_trust::bundle::key_hint(&t.key),
                    None => ms_trust::dsse::verify(&b, &t.key).is_ok(),
                });
                match key {
                    None => p(
                        codes::MG0912,
                        format!(
                            "{subject} is signed by key {} ({}), which is not among the {} trusted key(s)",
                            r.key_id.as_deref().unwrap_or("?"),
                            hint.as_deref()
                                .map(|h| format!("hint {h}"))
                                .unwrap_or_else(|| "no hint".into()),
                            trusted.len()
                        ),
                    ),
                    Some(t) => match ms_trust::dsse::verify(&b, &t.key) {
                        Err(e) => p(
                            codes::MG0906,
                            format!(
                                "the signature of {subject} does not verify with {}: {e}",
                                t.name
                            ),
                        ),
                        Ok(_) => signed_by = Some(t.name.clone()),
                    },
                }
            }
        },
    }
    Ok(Link {
        subject: subject.clone(),
        depth,
        dependencies,
        statement_digest: Some(r.statement_digest),
        signed_by,
        signed_at: r.signed_at.clone(),
        problems,
    })
}
