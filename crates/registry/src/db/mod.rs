//! The registry's database: one sqlx `Any` pool over SQLite (the default, a file) or
//! PostgreSQL (`postgres://…`), the same SQL text for both (`$1` placeholders work on SQLite
//! too), versioned migrations applied at open, and serialized write transactions.
//!
//! SQLite runs in WAL mode (readers never block the writer) with foreign keys on, a 30 s busy
//! timeout and `synchronous=FULL`: in WAL mode NORMAL may lose the last commits on power loss,
//! and a registration or an audit event the caller was told about must not vanish; FULL costs
//! one WAL fsync per commit, which the registry's write rate (people and CI jobs) affords.

pub mod migrations;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Transaction};

use crate::codes;
use crate::error::{ErrorKind, RegistryError, Result};

pub use migrations::{MIGRATIONS, Migration};

/// Which database is behind the pool: decides the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A write transaction: every mutation and its audit event go through one.
pub type Tx = Transaction<'static, sqlx::Any>;

/// The database handle: a connection pool and which backend it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// How many times a write transaction is retried when the database says it is busy.
const BUSY_RETRIES: u32 = 8;

impl Db {
    /// Opens (creating an SQLite file and its directory if missing) and migrates. `url`:
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path (SQLite; PATH as the file system spells
    /// it, not URL-encoded), or `postgres://…` / `postgresql://…`.
    pub async fn open(url: &str) -> Result<Db> {
        install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(60));
        let opts = if backend == Backend::Sqlite {
            opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; \
                         PRAGMA synchronous = FULL;",
                    )
                    .await?;
                    Ok(())
                })
            })
        } else {
            opts
        };
        let pool = opts.connect(&url).await.map_err(|e| {
            RegistryError::new(
                ErrorKind::Unavailable,
                codes::MG0001,
                format!("cannot open the database: {}", redact(&e.to_string())),
            )
            .hint("check --db / MODELSPEC_REGISTRY: sqlite://PATH or postgres://USER@HOST/DB")
        })?;
        if backend == Backend::Sqlite {
            // Persistent in the file: set once, every later connection sees WAL. Switching
            // needs a moment alone with the file, which processes opening a new database at
            // the same time contend for (SQLite answers busy without waiting): retry.
            let mut attempt = 0;
            loop {
                match sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await
                {
                    Ok(_) => break,
                    Err(e) if is_busy(&e) && attempt < 50 => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(db_err(e)),
                }
            }
        }
        let db = Db { pool, backend };
        migrations::apply(&db).await?;
        // Registries with history from before the log's tree get their stored hashes now.
        crate::log::tree::backfill(&db).await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction that excludes every other writer until it ends, so that
    /// audit sequence numbers stay gapless and version numbers never repeat: SQLite takes the
    /// write lock at `BEGIN IMMEDIATE`; PostgreSQL takes a transaction-level advisory lock.
    pub async fn begin_write(&self) -> Result<Tx> {
        let mut attempt = 0;
        loop {
            let res = match self.backend {
                Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => match self.pool.begin().await {
                    Ok(mut tx) => sqlx::query("SELECT pg_advisory_xact_lock(1515151515)")
                        .execute(&mut *tx)
                        .await
                        .map(|_| tx),
                    Err(e) => Err(e),
                },
            };
            match res {
                Ok(tx) => return Ok(tx),
                Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
                Err(e) => return Err(db_err(e)),
            }
        }
    }
}

/// Whether an error is the database saying "try again" (SQLite busy/locked, PostgreSQL
/// serialization failure or deadlock).
pub fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            matches!(code.as_str(), "5" | "6" | "517" | "261" | "40001" | "40P01")
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

fn normalize_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0001,
            format!("unsupported database URL {:?}", redact(url)),
        )
        .hint("use sqlite://PATH or postgres://USER@HOST:PORT/DB"));
    }
    if path.contains(":memory:") || path.contains("mode=memory") {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0001,
            "an in-memory SQLite database would vanish with each connection of the pool",
        )
        .hint("give a file path: sqlite:///path/to/registry.db"));
    }
    // The path is a file system path as typed (not URL-encoded): encode it for sqlx's URL
    // parser, which decodes it again, so that `%`, `?`, `#` and spaces in names work.
    let mut encoded = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            RegistryError::new(
                ErrorKind::Unavailable,
                codes::MG0001,
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    Ok((Backend::Sqlite, format!("sqlite://{encoded}?mode=rwc")))
}

/// Drops a password from anything that looks like a URL with credentials, so that errors never
/// carry secrets.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"')
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        match authority.rfind('@') {
            Some(at) => {
                let user = authority[..at].split(':').next().unwrap_or("");
                out.push_str(user);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A database error as a registry error: "try later" when busy or unreachable, else ours.
pub fn db_err(e: sqlx::Error) -> RegistryError {
    let kind = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        e if is_busy(e) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    RegistryError::new(
        kind,
        codes::MG0001,
        format!("database error: {}", redact(&e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_hide_passwords() {
        assert_eq!(
            normalize_url("/tmp/r.db").unwrap(),
            (Backend::Sqlite, "sqlite:///tmp/r.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("sqlite:///tmp/a b%#?.db").unwrap().1,
            "sqlite:///tmp/a%20b%25%23%3F.db?mode=rwc"
        );
        assert!(normalize_url("sqlite::memory:").is_err());
        assert_eq!(normalize_url("sqlite://x.db").unwrap().0, Backend::Sqlite);
        assert_eq!(
            normalize_url("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        assert!(normalize_url("mysql://x").is_err());
        assert_eq!(
            redact("error connecting to postgres://bob:s3cret@host:5432/db now"),
            "error connecting to postgres://bob:***@host:5432/db now"
        );
    }
}
