//! Model versions: registration (the spec parsed and validated by ms-spec, its declared
//! artifacts and the lineage it names checked to exist, the version manifest digested),
//! reading, search with keyset pagination, pointers and their history.
//!
//! A version's identity is the digest of its manifest: the spec's digest, the sorted artifact
//! ids, the lineage, codeRef, metrics and provenance. Registering the same manifest again finds
//! the existing version; anything else is a new version number. Rows are never updated except
//! a version's `status` and the pointers, both through promotion.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{self, Change};
use crate::canonical;
use crate::codes;
use crate::db::{Db, Tx, db_err};
use crate::digest::Digest;
use crate::entity::*;
use crate::error::{ErrorKind, RegistryError, Result};

/// A registration checked and digested, before anything is stored.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub model_id: String,
    pub family: String,
    pub declared_version: Option<String>,
    pub spec: String,
    pub spec_digest: Digest,
    /// Sorted, without duplicates.
    pub artifact_ids: Vec<Digest>,
    /// Where each artifact id was named (for error pointers).
    pub artifact_pointers: BTreeMap<Digest, String>,
    pub code_ref: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub lineage: Lineage,
    pub provenance: Option<Value>,
    pub digest: Digest,
}

/// `[a-z0-9][a-z0-9._-]{0,127}`: model ids go into URLs, node ids and file names unescaped.
pub fn validate_model_id(id: &str) -> std::result::Result<(), String> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "model id {:?} is not allowed: expected [a-z0-9][a-z0-9._-]{{0,127}}",
            id.escape_debug().to_string()
        ))
    }
}

/// Pointer names: `staging`, `prod`, or an alias `[a-z][a-z0-9-]{0,62}`.
pub fn validate_pointer(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok && name != "latest" {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        codes::MG0206,
        format!("pointer name {name:?} is not allowed"),
    )
    .at("/to")
    .hint("staging, prod, or an alias of [a-z][a-z0-9-]{0,62} (not `latest`)"))
}

fn invalid(code: &str, msg: impl Into<String>, pointer: impl Into<String>) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, code, msg).at(pointer)
}

/// Parses and validates the spec, checks the request's fields and computes the version
/// manifest digest. Touches neither the database nor the store.
pub fn prepare(req: &ModelRegistration) -> Result<Prepared> {
    let file = req.spec_file.clone().unwrap_or_else(|| "spec.yaml".into());
    if req.spec.len() as u64 > ms_spec::source::MAX_FILE_BYTES {
        return Err(RegistryError::new(
            ErrorKind::TooLarge,
            codes::MG0201,
            format!("the spec is {} bytes, above the limit", req.spec.len()),
        )
        .at("/spec"));
    }
    let spec = ms_spec::load_model_spec_str(&file, &req.spec).map_err(|diags| {
        let first = diags
            .iter()
            .find(|d| d.severity == ms_spec::Severity::Error)
            .or(diags.first());
        let mut msg = format!(
            "the spec is not a valid ModelSpec ({} finding(s))",
            diags.len()
        );
        let mut err_ptr = String::from("/spec");
        let mut hint = None;
        let errors = diags
            .iter()
            .filter(|d| d.severity == ms_spec::Severity::Error)
            .count();
        if let Some(d) = first {
            msg = format!(
                "{}:{}:{}: {} {}",
                d.file, d.line, d.column, d.code, d.message
            );
            if errors > 1 {
                msg.push_str(&format!(" (and {} more error(s))", errors - 1));
            }
            if !d.pointer.is_empty() {
                err_ptr = d.pointer.clone();
            }
            hint = d
                .hint
                .clone()
                .or_else(|| d.expected.clone().map(|e| format!("expected {e}")));
        }
        let mut e = RegistryError::new(ErrorKind::Invalid, codes::MG0201, msg).at(err_ptr);
        e.hint = Some(hint.unwrap_or_else(|| format!("run `modelspec validate {file}`")));
        e
    })?;
    let model_id = spec.metadata.name.clone();
    validate_model_id(&model_id).map_err(|m| invalid(codes::MG0202, m, "/metadata/name"))?;
    let family = spec.spec.identity.model.family.clone();
    let mut artifact_pointers = BTreeMap::new();
    for (i, a) in spec
        .spec
        .identity
        .model
        .artifacts
        .iter()
        .flatten()
        .enumerate()
    {
        if let Some(hex) = &a.sha256 {
            let ptr = format!("/spec/identity/model/artifacts/{i}/sha256");
            let d = Digest::from_hex(hex)
                .map_err(|e| invalid(codes::MG0201, e.to_string(), ptr.clone()))?;
            artifact_pointers.entry(d).or_insert(ptr);
        }
    }
    for (i, d) in req.artifact_ids.iter().enumerate() {
        artifact_pointers
            .entry(*d)
            .or_insert(format!("/artifactIds/{i}"));
    }
    let artifact_ids: Vec<Digest> = artifact_pointers.keys().copied().collect();
    if let Some(c) = &req.code_ref
        && (c.trim().is_empty() || c.len() > 2048 || c.chars().any(char::is_control))
    {
        return Err(invalid(
            codes::MG0209,
            "codeRef is empty, too long or has control characters",
            "/codeRef",
        ));
    }
    for (k, v) in &req.metrics {
        if !v.is_finite() || k.is_empty() || k.len() > 128 {
            return Err(invalid(
                codes::MG0209,
                format!("metric {k:?} = {v} is not a finite number with a short name"),
                format!("/metrics/{k}"),
            ));
        }
    }
    let mut lineage = req.lineage.clone();
    lineage.dataset_refs.sort();
    lineage.dataset_refs.dedup();
    for (i, p) in lineage.parent_models.iter().enumerate() {
        parse_ref(p)
            .map_err(|m| invalid(codes::MG0207, m, format!("/lineage/parentModels/{i}")))?;
    }
    lineage.parent_models.sort();
    lineage.parent_models.dedup();
    let spec_digest = Digest::of(req.spec.as_bytes());
    let manifest = json!({
        "specDigest": spec_digest,
        "artifactIds": artifact_ids,
        "lineage": lineage,
        "codeRef": req.code_ref,
        "metrics": req.metrics,
        "provenance": req.provenance,
    });
    let digest = Digest::of(canonical::to_string(&manifest).as_bytes());
    Ok(Prepared {
        model_id,
        family,
        declared_version: spec.metadata.version.clone(),
        spec: req.spec.clone(),
        spec_digest,
        artifact_ids,
        artifact_pointers,
        code_ref: req.code_ref.clone(),
        metrics: req.metrics.clone(),
        lineage,
        provenance: req.provenance.clone(),
        digest,
    })
}

/// `name@version` -> (name, version).
pub fn parse_ref(r: &str) -> std::result::Result<(String, u64), String> {
    let Some((name, v)) = r.rsplit_once('@') else {
        return Err(format!("{r:?} is not `name@version`"));
    };
    validate_model_id(name)?;
    let v: u64 = v
        .parse()
        .ok()
        .filter(|v| *v >= 1 && *v <= i64::MAX as u64)
        .ok_or_else(|| format!("{r:?}: the version must be a number from 1"))?;
    Ok((name.to_string(), v))
}

pub fn node_id(model_id: &str, version: u64) -> String {
    format!("model:{model_id}@{version}")
}

pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Draft => "draft",
        Status::Staging => "staging",
        Status::Prod => "prod",
        Status::Deprecated => "deprecated",
    }
}

fn parse_status(s: &str) -> Result<Status> {
    Ok(match s {
        "draft" => Status::Draft,
        "staging" => Status::Staging,
        "prod" => Status::Prod,
        "deprecated" => Status::Deprecated,
        _ => return Err(crate::dataset::internal(format!("status {s:?}"))),
    })
}

/// Stores a prepared registration (or finds the identical one) with its provenance record.
/// Call inside `begin_write`, after checking that the artifacts' blobs exist; `started` is
/// when the request arrived, `at` the transaction's time.
pub async fn register(
    tx: &mut Tx,
    who: &Principal,
    started: &str,
    at: &str,
    p: &Prepared,
) -> Result<(u64, bool)> {
    let existing =
        sqlx::query("SELECT version FROM model_versions WHERE model_id = $1 AND digest = $2")
            .bind(&p.model_id)
            .bind(p.digest.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    if let Some(row) = existing {
        return Ok((
            row.try_get::<i64, _>("version").map_err(db_err)? as u64,
            false,
        ));
    }
    for d in &p.artifact_ids {
        let found = sqlx::query("SELECT 1 FROM artifacts WHERE artifact_id = $1")
            .bind(d.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
        if found.is_none() {
            return Err(missing_artifact(d, &p.artifact_pointers[d]));
        }
    }
    for (i, d) in p.lineage.dataset_refs.iter().enumerate() {
        if !crate::dataset::exists(tx, d).await? {
            return Err(RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0307,
                format!("dataset {d} is not registered"),
            )
            .at(format!("/lineage/datasetRefs/{i}"))
            .hint("modelspec dataset register PATH --license SPDX registers it"));
        }
    }
    for (i, r) in p.lineage.parent_models.iter().enumerate() {
        let (name, v) = parse_ref(r).map_err(|m| invalid(codes::MG0207, m, "/lineage"))?;
        let found =
            sqlx::query("SELECT 1 FROM model_versions WHERE model_id = $1 AND version = $2")
                .bind(&name)
                .bind(v as i64)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_err)?;
        if found.is_none() {
            return Err(RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0207,
                format!("parent model {r} is not registered"),
            )
            .at(format!("/lineage/parentModels/{i}")));
        }
    }
    let latest = sqlx::query("SELECT latest_version FROM models WHERE model_id = $1")
        .bind(&p.model_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    let version = match latest {
        Some(r) => {
            let v = r.try_get::<i64, _>("latest_version").map_err(db_err)? + 1;
            sqlx::query("UPDATE models SET latest_version = $1, family = $2 WHERE model_id = $3")
                .bind(v)
                .bind(&p.family)
                .bind(&p.model_id)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            v
        }
        None => {
            sqlx::query(
                "INSERT INTO models (model_id, family, latest_version, created_at) VALUES ($1, $2, 1, $3)",
            )
            .bind(&p.model_id)
            .bind(&p.family)
            .bind(at)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            1
        }
    };
    let seq = audit::next_seq(tx).await?;
    let inv = crate::provenance::Invocation {
        who,
        started_on: started,
        finished_on: at,
        audit_seq: seq,
    };
    let statement =
        crate::provenance::model_statement(tx, p, version as u64, &p.digest, &inv).await?;
    let (statement, statement_digest) = crate::provenance::encode(&statement);
    let ev = audit::append(
        tx,
        who,
        at,
        Change {
            action: "model.register",
            subject: node_id(&p.model_id, version as u64),
            before: None,
            after: Some(p.digest),
            details: json!({"specDigest": p.spec_digest, "artifactIds": p.artifact_ids,
                "provenance": statement_digest}),
        },
    )
    .await?;
    sqlx::query(
        "INSERT INTO model_versions (model_id, version, digest, family, declared_version, \
         code_ref, artifact_ids, metrics, lineage, provenance, created_at, created_by, status, \
         spec_digest, spec, audit_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, 'draft', $13, $14, $15)",
    )
    .bind(&p.model_id)
    .bind(version)
    .bind(p.digest.to_string())
    .bind(&p.family)
    .bind(p.declared_version.clone())
    .bind(p.code_ref.clone())
    .bind(json!(p.artifact_ids).to_string())
    .bind(canonical::to_string(&json!(p.metrics)))
    .bind(canonical::to_string(&json!(p.lineage)))
    .bind(p.provenance.as_ref().map(canonical::to_string))
    .bind(at)
    .bind(&who.name)
    .bind(p.spec_digest.to_string())
    .bind(&p.spec)
    .bind(ev.seq as i64)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    for d in &p.artifact_ids {
        sqlx::query(
            "INSERT INTO version_artifacts (model_id, version, artifact_id) VALUES ($1, $2, $3)",
        )
        .bind(&p.model_id)
        .bind(version)
        .bind(d.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    let me = node_id(&p.model_id, version as u64);
    crate::provenance::insert(tx, &me, &statement, &statement_digest, ev.seq).await?;
    for d in &p.lineage.dataset_refs {
        crate::lineage::insert_edge(tx, &me, &crate::dataset::node_id(d), "trainedOn").await?;
    }
    for r in &p.lineage.parent_models {
        crate::lineage::insert_edge(tx, &me, &format!("model:{r}"), "derivedFrom").await?;
    }
    Ok((version as u64, true))
}

pub fn missing_artifact(d: &Digest, pointer: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0203,
        format!("artifact {d} is not in the registry's store"),
    )
    .at(pointer)
    .hint("upload it first: `modelspec artifact push FILE`, or `modelspec model register SPEC --artifact PATH`")
}

pub fn model_not_found(id: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0204,
        format!("no model {id:?}"),
    )
    .hint("modelspec model list shows the registered models")
}

const VERSION_COLS: &str = "model_id, version, digest, family, declared_version, code_ref, \
    artifact_ids, metrics, lineage, provenance, created_at, created_by, status, signer_id, \
    signature, spec_digest";

fn bad(e: impl std::fmt::Display) -> RegistryError {
    crate::dataset::internal(e.to_string())
}

fn version_from_row(r: &sqlx::any::AnyRow, spec: Option<String>) -> Result<ModelVersion> {
    let g = |c: &str| -> Result<String> { r.try_get::<String, _>(c).map_err(db_err) };
    let provenance: Option<String> = r.try_get("provenance").map_err(db_err)?;
    Ok(ModelVersion {
        model_id: g("model_id")?,
        version: r.try_get::<i64, _>("version").map_err(db_err)? as u64,
        digest: g("digest")?.parse().map_err(bad)?,
        family: g("family")?,
        declared_version: r.try_get("declared_version").map_err(db_err)?,
        code_ref: r.try_get("code_ref").map_err(db_err)?,
        artifact_ids: serde_json::from_str(&g("artifact_ids")?).map_err(bad)?,
        metrics: serde_json::from_str(&g("metrics")?).map_err(bad)?,
        created_at: g("created_at")?,
        created_by: g("created_by")?,
        status: parse_status(&g("status")?)?,
        pointers: Vec::new(),
        signer_id: r.try_get("signer_id").map_err(db_err)?,
        signature: r.try_get("signature").map_err(db_err)?,
        lineage: serde_json::from_str(&g("lineage")?).map_err(bad)?,
        provenance: provenance
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(bad)?,
        spec_digest: g("spec_digest")?.parse().map_err(bad)?,
        spec,
    })
}

async fn pointers_of(db: &Db, model_id: &str) -> Result<BTreeMap<String, u64>> {
    let rows = sqlx::query("SELECT name, version FROM pointers WHERE model_id = $1")
        .bind(model_id)
        .fetch_all(db.pool())
        .await
        .map_err(db_err)?;
    let mut out = BTreeMap::new();
    for r in rows {
        out.insert(
            r.try_get::<String, _>("name").map_err(db_err)?,
            r.try_get::<i64, _>("version").map_err(db_err)? as u64,
        );
    }
    Ok(out)
}

fn attach_pointers(v: &mut ModelVersion, pointers: &BTreeMap<String, u64>) {
    v.pointers = pointers
        .iter()
        .filter(|(_, ver)| **ver == v.version)
        .map(|(n, _)| n.clone())
        .collect();
}

/// Most versions a `Model` lists (newest first); `list_models` pages through all.
pub const MODEL_VERSIONS_SHOWN: i64 = 100;

pub async fn model(db: &Db, model_id: &str) -> Result<Model> {
    let row = sqlx::query("SELECT family, latest_version FROM models WHERE model_id = $1")
        .bind(model_id)
        .fetch_optional(db.pool())
        .await
        .map_err(db_err)?
        .ok_or_else(|| model_not_found(model_id))?;
    let pointers = pointers_of(db, model_id).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLS} FROM model_versions WHERE model_id = $1 ORDER BY version DESC LIMIT {MODEL_VERSIONS_SHOWN}"
    )))
    .bind(model_id)
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    let mut versions = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut v = version_from_row(r, None)?;
        attach_pointers(&mut v, &pointers);
        versions.push(v);
    }
    Ok(Model {
        model_id: model_id.to_string(),
        family: row.try_get("family").map_err(db_err)?,
        latest_version: row.try_get::<i64, _>("latest_version").map_err(db_err)? as u64,
        pointers,
        versions,
    })
}

/// Resolves a selector (number, pointer, digest) to a version number.
pub async fn resolve(db: &Db, model_id: &str, selector: &str) -> Result<u64> {
    let not_found = || {
        RegistryError::new(
            ErrorKind::NotFound,
            codes::MG0205,
            format!("model {model_id:?} has no version {selector:?}"),
        )
        .hint("a version number, a pointer (prod, staging, an alias), `latest` or a sha256: digest")
    };
    let row = if let Ok(n) = selector.parse::<u64>() {
        if n == 0 || n > i64::MAX as u64 {
            return Err(not_found());
        }
        sqlx::query("SELECT version FROM model_versions WHERE model_id = $1 AND version = $2")
            .bind(model_id)
            .bind(n as i64)
            .fetch_optional(db.pool())
            .await
    } else if selector.starts_with("sha256:") {
        sqlx::query("SELECT version FROM model_versions WHERE model_id = $1 AND digest = $2")
            .bind(model_id)
            .bind(selector)
            .fetch_optional(db.pool())
            .await
    } else if selector == "latest" {
        sqlx::query("SELECT latest_version AS version FROM models WHERE model_id = $1")
            .bind(model_id)
            .fetch_optional(db.pool())
            .await
    } else {
        sqlx::query("SELECT version FROM pointers WHERE model_id = $1 AND name = $2")
            .bind(model_id)
            .bind(selector)
            .fetch_optional(db.pool())
            .await
    }
    .map_err(db_err)?;
    match row {
        Some(r) => Ok(r.try_get::<i64, _>("version").map_err(db_err)? as u64),
        None => {
            let known = sqlx::query("SELECT 1 FROM models WHERE model_id = $1")
                .bind(model_id)
                .fetch_optional(db.pool())
                .await
                .map_err(db_err)?;
            Err(if known.is_none() {
                model_not_found(model_id)
            } else {
                not_found()
            })
        }
    }
}

pub async fn version(db: &Db, model_id: &str, selector: &str) -> Result<ModelVersion> {
    let v = resolve(db, model_id, selector).await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLS}, spec FROM model_versions WHERE model_id = $1 AND version = $2"
    )))
    .bind(model_id)
    .bind(v as i64)
    .fetch_one(db.pool())
    .await
    .map_err(db_err)?;
    let spec: String = r.try_get("spec").map_err(db_err)?;
    let mut mv = version_from_row(&r, Some(spec))?;
    attach_pointers(&mut mv, &pointers_of(db, model_id).await?);
    Ok(mv)
}

fn bad_query(msg: impl Into<String>, pointer: &str) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, codes::MG0210, msg).at(pointer)
}

fn encode_token(model_id: &str, version: u64) -> String {
    format!("{model_id}@{version}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(t: &str) -> Result<(String, u64)> {
    let err = || {
        bad_query(
            "page_token is not one this registry gave out",
            "/page_token",
        )
    };
    if !t.len().is_multiple_of(2) || t.len() > 400 {
        return Err(err());
    }
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| err())?;
    let s = String::from_utf8(bytes).map_err(|_| err())?;
    parse_ref(&s).map_err(|_| err())
}

/// Versions matching the query, ordered by model id then newest version first.
pub async fn list(db: &Db, q: &ModelQuery) -> Result<Page<ModelVersion>> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(bad_query(
            format!("limit {limit} is outside 1..=1000"),
            "/limit",
        ));
    }
    let mut sql = format!("SELECT {VERSION_COLS} FROM model_versions WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let arg = |v: Value, args: &mut Vec<Value>| {
        args.push(v);
        format!("${}", args.len())
    };
    if let Some(f) = &q.family {
        let a = arg(json!(f), &mut args);
        sql.push_str(&format!(" AND family = {a}"));
    }
    if let Some(s) = q.status {
        let a = arg(json!(status_str(s)), &mut args);
        sql.push_str(&format!(" AND status = {a}"));
    }
    if let Some(text) = &q.q {
        if text.len() > 256 {
            return Err(bad_query("q is longer than 256 bytes", "/q"));
        }
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let a = arg(json!(format!("%{escaped}%")), &mut args);
        sql.push_str(&format!(
            " AND (LOWER(model_id) LIKE {a} ESCAPE '\\' OR LOWER(family) LIKE {a} ESCAPE '\\')"
        ));
    }
    if let Some(t) = &q.page_token {
        let (m, v) = decode_token(t)?;
        let a = arg(json!(m), &mut args);
        let b = arg(json!(v), &mut args);
        sql.push_str(&format!(
            " AND (model_id > {a} OR (model_id = {a} AND version < {b}))"
        ));
    }
    sql.push_str(&format!(
        " ORDER BY model_id, version DESC LIMIT {}",
        limit + 1
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        query = match a {
            Value::String(s) => query.bind(s),
            Value::Number(n) => query.bind(n.as_i64().unwrap_or(i64::MAX)),
            _ => unreachable!("only strings and numbers are bound"),
        };
    }
    let rows = query.fetch_all(db.pool()).await.map_err(db_err)?;
    let mut items = Vec::new();
    let mut pointers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in rows.iter().take(limit as usize) {
        let mut v = version_from_row(r, None)?;
        if !pointers.contains_key(&v.model_id) {
            pointers.insert(v.model_id.clone(), pointers_of(db, &v.model_id).await?);
        }
        let ps = &pointers[&v.model_id];
        attach_pointers(&mut v, ps);
        items.push(v);
    }
    let next_page_token = (rows.len() > limit as usize)
        .then(|| items.last().map(|v| encode_token(&v.model_id, v.version)))
        .flatten();
    Ok(Page {
        items,
        next_page_token,
    })
}

/// Moves a pointer; records the move and its audit event; `staging`/`prod` set the status.
pub async fn promote(
    tx: &mut Tx,
    who: &Principal,
    at: &str,
    model_id: &str,
    req: &PromoteRequest,
) -> Result<PointerMove> {
    validate_pointer(&req.to)?;
    if let Some(r) = &req.reason
        && r.len() > 4096
    {
        return Err(invalid(
            codes::MG0209,
            "the reason is longer than 4096 bytes",
            "/reason",
        ));
    }
    let digest_of = |row: Option<sqlx::any::AnyRow>| -> Result<Option<(Digest, String)>> {
        row.map(|r| {
            Ok((
                r.try_get::<String, _>("digest")
                    .map_err(db_err)?
                    .parse()
                    .map_err(bad)?,
                r.try_get::<String, _>("status").map_err(db_err)?,
            ))
        })
        .transpose()
    };
    let target = sqlx::query(
        "SELECT digest, status FROM model_versions WHERE model_id = $1 AND version = $2",
    )
    .bind(model_id)
    .bind(req.version as i64)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    let Some((to_digest, to_status)) = digest_of(target)? else {
        let known = sqlx::query("SELECT 1 FROM models WHERE model_id = $1")
            .bind(model_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
        return Err(if known.is_none() {
            model_not_found(model_id)
        } else {
            RegistryError::new(
                ErrorKind::NotFound,
                codes::MG0205,
                format!("model {model_id:?} has no version {}", req.version),
            )
            .at("/version")
        });
    };
    let from: Option<u64> =
        sqlx::query("SELECT version FROM pointers WHERE model_id = $1 AND name = $2")
            .bind(model_id)
            .bind(&req.to)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?
            .map(|r| r.try_get::<i64, _>("version").map(|v| v as u64))
            .transpose()
            .map_err(db_err)?;
    if from == Some(req.version) {
        return Err(RegistryError::new(
            ErrorKind::Conflict,
            codes::MG0211,
            format!(
                "{} of {model_id} is at version {} already",
                req.to, req.version
            ),
        ));
    }
    let from_digest = match from {
        Some(v) => {
            let r = sqlx::query(
                "SELECT digest, status FROM model_versions WHERE model_id = $1 AND version = $2",
            )
            .bind(model_id)
            .bind(v as i64)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
            digest_of(r)?.map(|(d, _)| d)
        }
        None => None,
    };
    let ev = audit::append(
        tx,
        who,
        at,
        Change {
            action: "model.promote",
            subject: node_id(model_id, req.version),
            before: from_digest,
            after: Some(to_digest),
            details: json!({"pointer": req.to, "fromVersion": from, "toVersion": req.version, "reason": req.reason}),
        },
    )
    .await?;
    if from.is_some() {
        sqlx::query("UPDATE pointers SET version = $1 WHERE model_id = $2 AND name = $3")
            .bind(req.version as i64)
            .bind(model_id)
            .bind(&req.to)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    } else {
        sqlx::query("INSERT INTO pointers (model_id, name, version) VALUES ($1, $2, $3)")
            .bind(model_id)
            .bind(&req.to)
            .bind(req.version as i64)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    sqlx::query(
        "INSERT INTO pointer_moves (audit_seq, model_id, pointer, from_version, to_version, \
         moved_at, moved_by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(ev.seq as i64)
    .bind(model_id)
    .bind(&req.to)
    .bind(from.map(|v| v as i64))
    .bind(req.version as i64)
    .bind(at)
    .bind(&who.name)
    .bind(req.reason.clone())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    // Status follows the environment pointers: the new holder of `prod` is prod and the one it
    // replaced is deprecated; `staging` marks a draft as staging (never demotes prod).
    let set_status = |v: u64, s: &'static str| {
        sqlx::query("UPDATE model_versions SET status = $1 WHERE model_id = $2 AND version = $3")
            .bind(s)
            .bind(model_id.to_string())
            .bind(v as i64)
    };
    match req.to.as_str() {
        "prod" => {
            set_status(req.version, "prod")
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            if let Some(old) = from {
                set_status(old, "deprecated")
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        "staging" if to_status == "draft" => {
            set_status(req.version, "staging")
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
        }
        _ => {}
    }
    Ok(PointerMove {
        model_id: model_id.to_string(),
        pointer: req.to.clone(),
        from_version: from,
        to_version: req.version,
        moved_at: at.to_string(),
        moved_by: who.name.clone(),
        reason: req.reason.clone(),
        audit_seq: ev.seq,
    })
}

/// Registrations and pointer moves, in the order they happened (audit order).
pub async fn history(db: &Db, model_id: &str) -> Result<Vec<HistoryEntry>> {
    let known = sqlx::query("SELECT 1 FROM models WHERE model_id = $1")
        .bind(model_id)
        .fetch_optional(db.pool())
        .await
        .map_err(db_err)?;
    if known.is_none() {
        return Err(model_not_found(model_id));
    }
    let mut out: Vec<(i64, HistoryEntry)> = Vec::new();
    let rows = sqlx::query(
        "SELECT version, digest, created_at, created_by, audit_seq FROM model_versions WHERE model_id = $1",
    )
    .bind(model_id)
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    for r in rows {
        out.push((
            r.try_get("audit_seq").map_err(db_err)?,
            HistoryEntry::Registered {
                version: r.try_get::<i64, _>("version").map_err(db_err)? as u64,
                digest: r
                    .try_get::<String, _>("digest")
                    .map_err(db_err)?
                    .parse()
                    .map_err(bad)?,
                at: r.try_get("created_at").map_err(db_err)?,
                by: r.try_get("created_by").map_err(db_err)?,
            },
        ));
    }
    let rows = sqlx::query(
        "SELECT audit_seq, pointer, from_version, to_version, moved_at, moved_by, reason \
         FROM pointer_moves WHERE model_id = $1",
    )
    .bind(model_id)
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    for r in rows {
        let seq: i64 = r.try_get("audit_seq").map_err(db_err)?;
        out.push((
            seq,
            HistoryEntry::Moved(PointerMove {
                model_id: model_id.to_string(),
                pointer: r.try_get("pointer").map_err(db_err)?,
                from_version: r
                    .try_get::<Option<i64>, _>("from_version")
                    .map_err(db_err)?
                    .map(|v| v as u64),
                to_version: r.try_get::<i64, _>("to_version").map_err(db_err)? as u64,
                moved_at: r.try_get("moved_at").map_err(db_err)?,
                moved_by: r.try_get("moved_by").map_err(db_err)?,
                reason: r.try_get("reason").map_err(db_err)?,
                audit_seq: seq as u64,
            }),
        ));
    }
    out.sort_by_key(|(s, _)| *s);
    Ok(out.into_iter().map(|(_, e)| e).collect())
}
