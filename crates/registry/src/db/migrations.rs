//! Versioned schema migrations. Each is applied once, in a transaction, and recorded in
//! `schema_migrations` with the sha256 of its text; opening a database whose recorded
//! checksum differs from ours (someone edited a shipped migration) or that has versions we do
//! not know (a newer binary migrated it) is refused with a clear error rather than guessed at.

use sha2::{Digest as _, Sha256};

use super::{Db, db_err};
use crate::codes;
use crate::error::{ErrorKind, RegistryError, Result};

/// One schema change. Never edit a shipped one: add the next version.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry schema",
        sql: include_str!("schema_v1.sql"),
    },
    Migration {
        version: 2,
        name: "covering lineage indexes",
        sql: include_str!("schema_v2.sql"),
    },
    Migration {
        version: 3,
        name: "signatures, provenance, keys and the audit log's tree",
        sql: include_str!("schema_v3.sql"),
    },
];

fn checksum(sql: &str) -> String {
    let d: [u8; 32] = Sha256::digest(sql.as_bytes()).into();
    crate::Digest(d).to_string()
}

pub(super) async fn apply(db: &Db) -> Result<()> {
    // One writer migrates; the others wait on the write lock, then see it done. The table is
    // created under the lock too: concurrent CREATE TABLE IF NOT EXISTS races in PostgreSQL.
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
         name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
    let newest = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    for (version, sum) in &applied {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == *version) else {
            return Err(RegistryError::new(
                ErrorKind::Unavailable,
                codes::MG0003,
                format!(
                    "the database has schema version {version}, newer than this binary knows \
                     (up to {newest})"
                ),
            )
            .hint("use the modelspec release that migrated this database, or a newer one"));
        };
        if *sum != checksum(m.sql) {
            return Err(RegistryError::new(
                ErrorKind::Unavailable,
                codes::MG0002,
                format!(
                    "schema migration {version} ({}) applied to this database differs from \
                     this binary's (checksum {sum}, expected {})",
                    m.name,
                    checksum(m.sql)
                ),
            )
            .hint(
                "the database was migrated by a different build; do not edit shipped migrations",
            ));
        }
    }
    for m in MIGRATIONS {
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        for stmt in split_statements(m.sql) {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(checksum(m.sql))
        .bind(crate::time::now())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

/// Statements of a migration file (`;`-terminated; `--` comments dropped).
fn split_statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
