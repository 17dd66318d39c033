//! Where the log key comes from: a signer reference (`--log-signer` / MODELSPEC_LOG_SIGNER: a
//! PKCS#11 URI, a signing proxy URL or a key file), else, for a SQLite registry, a development
//! key file beside the database (`log-key.dev.pem`, made on first use, labelled development
//! wherever it is reported). A PostgreSQL registry without a reference has no log key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ms_trust::Signer;
use ms_trust::keyfile::KeyFileSigner;

use super::LogConfig;
use super::codes::BAD_LOG_SIGNER;
use crate::error::{ErrorKind, RegistryError, Result};

/// The file name of a SQLite registry's development log key.
pub const DEV_KEY_FILE: &str = "log-key.dev.pem";

/// What the log key is made of, as given on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    pub signer: Option<String>,
    pub origin: Option<String>,
    /// C2SP verifier keys of accepted witnesses.
    pub witnesses: Vec<String>,
}

impl LogSettings {
    /// MODELSPEC_LOG_SIGNER, MODELSPEC_LOG_ORIGIN and MODELSPEC_LOG_WITNESSES (verifier keys
    /// separated by commas).
    pub fn from_env() -> LogSettings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        LogSettings {
            signer: var("MODELSPEC_LOG_SIGNER"),
            origin: var("MODELSPEC_LOG_ORIGIN"),
            witnesses: var("MODELSPEC_LOG_WITNESSES")
                .map(|v| {
                    v.split(',')
                        .map(|w| w.trim().to_string())
                        .filter(|w| !w.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

fn signer_error(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(
        ErrorKind::Unavailable,
        BAD_LOG_SIGNER,
        format!("the log signer {what} cannot be used: {e}"),
    )
}

/// The SQLite file of a database URL (`sqlite://PATH`, `sqlite:PATH`, a bare path), if it is
/// one.
fn sqlite_path(db_url: &str) -> Option<PathBuf> {
    if db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") {
        return None;
    }
    let path = db_url
        .strip_prefix("sqlite://")
        .or_else(|| db_url.strip_prefix("sqlite:"))
        .unwrap_or(db_url);
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The log configuration of the registry whose database is `db_url`.
pub fn configure(db_url: &str, settings: &LogSettings) -> Result<Option<Arc<LogConfig>>> {
    let signer: Arc<dyn Signer> = match &settings.signer {
        Some(reference) => Arc::from(
            ms_trust::signer::open_signer(reference)
                .map_err(|e| signer_error(&format!("{reference:?}"), e))?,
        ),
        None => match sqlite_path(db_url) {
            Some(db) => {
                let dir = db.parent().unwrap_or(Path::new("."));
                Arc::new(development_key(&dir.join(DEV_KEY_FILE))?)
            }
            None => return Ok(None),
        },
    };
    let config = LogConfig::new(signer, settings.origin.clone(), &settings.witnesses)?;
    Ok(Some(Arc::new(config)))
}

/// The development key at `path`, made if missing. Two processes making it at once both try
/// to link a complete file into place without replacing (`KeyFileSigner::save_pkcs8_pem`):
/// one key wins and both use it, so no checkpoint is ever signed by a key that is then lost.
pub fn development_key(path: &Path) -> Result<KeyFileSigner> {
    let load =
        || KeyFileSigner::load(path).map_err(|e| signer_error(&path.display().to_string(), e));
    if path.exists() {
        return load();
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| signer_error(&dir.display().to_string(), e))?;
    let key = KeyFileSigner::generate(ms_trust::Algorithm::Ed25519)
        .map_err(|e| signer_error("generation", e))?;
    match key.save_pkcs8_pem(path) {
        Ok(()) => Ok(key),
        // Another process linked its key first: use that one.
        Err(_) if path.exists() => load(),
        Err(e) => Err(signer_error(&path.display().to_string(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///a/r.db"), Some("/a/r.db".into()));
        assert_eq!(sqlite_path("/a/r.db"), Some("/a/r.db".into()));
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }
}
