//! `registry check`'s part for signing: every key's PEM still hashes to its id, and every
//! stored signature still verifies with its key and lists exactly its version's artifacts (a
//! row edited after it was attached is found here; consumers re-verify anyway).

use sqlx::Row;

use super::{bundle, keys, signatures};
use crate::codes;
use crate::db::{Db, db_err};
use crate::entity::{CheckProblem, CheckReport};
use crate::error::Result;

fn problem(code: &str, subject: String, message: String) -> CheckProblem {
    CheckProblem {
        code: code.into(),
        subject,
        message,
    }
}

/// Adds the findings to `report`.
pub async fn run(db: &Db, report: &mut CheckReport) -> Result<()> {
    let all = keys::list(db).await?;
    report.rows_checked += all.len() as u64;
    for k in &all {
        match ms_trust::PublicKey::from_pem(&k.public_key) {
            Ok(pk) if pk.fingerprint() == k.key_id => {}
            Ok(pk) => report.problems.push(problem(
                codes::MG0811,
                format!("key:{}", k.key_id),
                format!("the stored public key hashes to {}", pk.fingerprint()),
            )),
            Err(e) => report.problems.push(problem(
                codes::MG0811,
                format!("key:{}", k.key_id),
                format!("the stored public key cannot be read: {e}"),
            )),
        }
    }
    let rows = sqlx::query(
        "SELECT model_id, version, envelope_digest, key_id, bundle FROM manifest_signatures \
         ORDER BY model_id, version, envelope_digest",
    )
    .fetch_all(db.pool())
    .await
    .map_err(db_err)?;
    report.rows_checked += rows.len() as u64;
    for r in rows {
        let model: String = r.try_get("model_id").map_err(db_err)?;
        let version = r.try_get::<i64, _>("version").map_err(db_err)? as u64;
        let envelope: String = r.try_get("envelope_digest").map_err(db_err)?;
        let key_id: String = r.try_get("key_id").map_err(db_err)?;
        let text: String = r.try_get("bundle").map_err(db_err)?;
        let subject = format!("signature:{model}@{version}/{envelope}");
        let Some(k) = all.iter().find(|k| k.key_id == key_id) else {
            report.problems.push(problem(
                codes::MG0810,
                subject,
                format!("its key {key_id} is not registered"),
            ));
            continue;
        };
        let files = signatures::version_files(db, &model, version).await?;
        let outcome = bundle::parse(&text).and_then(|b| {
            let pk = keys::parse_public_key(&k.public_key, "/publicKey")?;
            bundle::verify(&b, &pk, &files)?;
            Ok(bundle::envelope_digest(&b))
        });
        match outcome {
            Ok(d) if d == envelope => {}
            Ok(d) => report.problems.push(problem(
                codes::MG0810,
                subject,
                format!("the stored bundle's envelope digest is {d}"),
            )),
            Err(e) => report
                .problems
                .push(problem(codes::MG0810, subject, e.message)),
        }
    }
    Ok(())
}
