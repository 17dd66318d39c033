//! `registry check` (fsck): every blob re-hashed, every artifact row backed by a blob of the
//! right size, every reference (version artifacts, lineage edges, pointers) resolving, the
//! audit log gapless with digests that recompute, no half-written record, and every provenance
//! statement intact and named by its registration's event. Problems are findings with MG06xx
//! codes (MG09xx for provenance); the check itself changes nothing.

use std::collections::HashSet;

use sqlx::Row;

use crate::blob::BlobStore;
use crate::codes;
use crate::db::{Db, db_err};
use crate::digest::Digest;
use crate::entity::{CheckProblem, CheckReport};
use crate::error::Result;

fn problem(code: &str, subject: impl Into<String>, message: impl Into<String>) -> CheckProblem {
    CheckProblem {
        code: code.into(),
        subject: subject.into(),
        message: message.into(),
    }
}

/// Runs every check.
pub async fn run(db: &Db, blobs: &BlobStore) -> Result<CheckReport> {
    let b = blobs.check().await?;
    let mut report = CheckReport {
        blobs_checked: b.blobs_checked,
        bytes_hashed: b.bytes_hashed,
        rows_checked: 0,
        problems: b.problems,
    };
    let p = &mut report.problems;
    let pool = db.pool();

    // Artifacts and their blobs.
    let rows = sqlx::query("SELECT artifact_id, size FROM artifacts ORDER BY artifact_id")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    for r in rows {
        let id: String = r.try_get("artifact_id").map_err(db_err)?;
        let size = r.try_get::<i64, _>("size").map_err(db_err)? as u64;
        let Ok(d) = id.parse::<Digest>() else {
            p.push(problem(
                codes::MG0609,
                format!("artifact:{id}"),
                "the artifact id is not a digest",
            ));
            continue;
        };
        match blobs.stat(&d).await? {
            None => p.push(problem(
                codes::MG0601,
                format!("artifact:{id}"),
                "the artifact is registered but its blob is not in the store",
            )),
            Some(s) if s != size => p.push(problem(
                codes::MG0602,
                format!("artifact:{id}"),
                format!("the blob has {s} bytes, the artifact row says {size}"),
            )),
            Some(_) => {}
        }
    }

    // Version -> artifact references, and the artifact list agreeing with its rows.
    let rows = sqlx::query(
        "SELECT va.model_id, va.version, va.artifact_id FROM version_artifacts va \
         LEFT JOIN artifacts a ON a.artifact_id = va.artifact_id WHERE a.artifact_id IS NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    for r in rows {
        let m: String = r.try_get("model_id").map_err(db_err)?;
        let v: i64 = r.try_get("version").map_err(db_err)?;
        let a: String = r.try_get("artifact_id").map_err(db_err)?;
        p.push(problem(
            codes::MG0603,
            format!("model:{m}@{v}"),
            format!("the version lists artifact {a}, which is not registered"),
        ));
    }
    let rows = sqlx::query(
        "SELECT model_id, version, artifact_ids, lineage FROM model_versions ORDER BY model_id, version",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    let mut versions: HashSet<String> = HashSet::with_capacity(rows.len());
    let mut listed: Vec<(String, usize)> = Vec::new();
    for r in &rows {
        let m: String = r.try_get("model_id").map_err(db_err)?;
        let v: i64 = r.try_get("version").map_err(db_err)?;
        let ids: String = r.try_get("artifact_ids").map_err(db_err)?;
        let n = serde_json::from_str::<Vec<Digest>>(&ids).map(|v| v.len());
        match n {
            Ok(n) => listed.push((format!("{m}@{v}"), n)),
            Err(_) => p.push(problem(
                codes::MG0609,
                format!("model:{m}@{v}"),
                "artifact_ids is unreadable",
            )),
        }
        versions.insert(format!("{m}@{v}"));
    }
    let counts = sqlx::query(
        "SELECT model_id, version, COUNT(*) AS n FROM version_artifacts GROUP BY model_id, version",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    let mut have = std::collections::HashMap::new();
    for r in counts {
        let m: String = r.try_get("model_id").map_err(db_err)?;
        let v: i64 = r.try_get("version").map_err(db_err)?;
        have.insert(
            format!("{m}@{v}"),
            r.try_get::<i64, _>("n").map_err(db_err)? as usize,
        );
    }
    for (key, n) in listed {
        let rows_n = have.get(&key).copied().unwrap_or(0);
        if rows_n != n {
            p.push(problem(
                codes::MG0609,
                format!("model:{key}"),
                format!("the version lists {n} artifacts but has {rows_n} artifact rows"),
            ));
        }
    }

    // Models: at least one version, latest_version the highest.
    let rows = sqlx::query(
        "SELECT m.model_id, m.latest_version, MAX(v.version) AS top, COUNT(v.version) AS n \
         FROM models m LEFT JOIN model_versions v ON v.model_id = m.model_id \
         GROUP BY m.model_id, m.latest_version",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    for r in rows {
        let m: String = r.try_get("model_id").map_err(db_err)?;
        let latest: i64 = r.try_get("latest_version").map_err(db_err)?;
        let top: Option<i64> = r.try_get("top").map_err(db_err)?;
        let n: i64 = r.try_get("n").map_err(db_err)?;
        if top != Some(latest) || n != latest {
            p.push(problem(
                codes::MG0609,
                format!("model:{m}"),
                format!("latest_version is {latest} but the versions are {n}, up to {top:?}"),
            ));
        }
    }

    // Datasets: file rows match the count.
    let rows = sqlx::query(
        "SELECT d.dataset_id, d.file_count, COUNT(f.path) AS n FROM datasets d \
         LEFT JOIN dataset_files f ON f.dataset_id = d.dataset_id \
         GROUP BY d.dataset_id, d.file_count",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    let mut datasets: HashSet<String> = HashSet::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("dataset_id").map_err(db_err)?;
        let want: i64 = r.try_get("file_count").map_err(db_err)?;
        let n: i64 = r.try_get("n").map_err(db_err)?;
        if want != n {
            p.push(problem(
                codes::MG0609,
                format!("dataset:{id}"),
                format!("the dataset says {want} files but has {n} file rows"),
            ));
        }
        datasets.insert(id);
    }

    // Lineage edges resolve (sources are external and always resolve).
    let rows = sqlx::query("SELECT child, parent FROM lineage_edges")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    for r in rows {
        let child: String = r.try_get("child").map_err(db_err)?;
        let parent: String = r.try_get("parent").map_err(db_err)?;
        for node in [&child, &parent] {
            if let Some(m) = node.strip_prefix("model:") {
                if !versions.contains(m) {
                    p.push(problem(
                        codes::MG0605,
                        node.clone(),
                        format!("lineage edge {child} -> {parent} names a missing model version"),
                    ));
                }
            } else if let Some(d) = node.strip_prefix("dataset:")
                && !datasets.contains(d)
            {
                p.push(problem(
                    codes::MG0604,
                    node.clone(),
                    format!("lineage edge {child} -> {parent} names a missing dataset"),
                ));
            }
        }
    }

    // Pointers.
    let rows = sqlx::query("SELECT model_id, name, version FROM pointers")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    for r in rows {
        let m: String = r.try_get("model_id").map_err(db_err)?;
        let name: String = r.try_get("name").map_err(db_err)?;
        let v: i64 = r.try_get("version").map_err(db_err)?;
        if !versions.contains(&format!("{m}@{v}")) {
            p.push(problem(
                codes::MG0606,
                format!("pointer:{m}/{name}"),
                format!("{name} points at version {v}, which does not exist"),
            ));
        }
    }

    // The audit log: gapless, digests recompute; registrations name their provenance.
    let mut expected = 1u64;
    let mut logged = std::collections::BTreeMap::new();
    loop {
        let page = crate::audit::list(db, expected - 1, 1000).await?;
        if page.is_empty() {
            break;
        }
        for ev in &page {
            report.rows_checked += 1;
            if ev.seq != expected {
                p.push(problem(
                    codes::MG0607,
                    format!("audit:{expected}"),
                    format!("audit events {expected}..{} are missing", ev.seq - 1),
                ));
            }
            if crate::audit::event_digest(ev) != ev.digest {
                p.push(problem(
                    codes::MG0608,
                    format!("audit:{}", ev.seq),
                    "the event's digest does not match its content",
                ));
            }
            if matches!(ev.action.as_str(), "model.register" | "dataset.register")
                && let Some(d) = ev.details.get("provenance").and_then(|v| v.as_str())
            {
                logged.insert(ev.subject.clone(), d.to_string());
            }
            expected = ev.seq + 1;
        }
    }
    report.rows_checked += crate::provenance::check(db, &logged, p).await?;
    crate::signing::check::run(db, &mut report).await?;
    Ok(report)
}
