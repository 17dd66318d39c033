//! Where the registry is, like MLflow's tracking URI: `--registry URL` / `MODELSPEC_REGISTRY`
//! names a control plane (`http(s)://…`) or a database used directly (`sqlite://PATH`,
//! `postgres://…`) with its blob store (`--store` / `MODELSPEC_STORE`: `file://DIR`,
//! `s3://bucket/prefix`); nothing given means the embedded local registry under the data
//! directory (SQLite + blobs, created on first use). Every `modelspec` command that touches the
//! registry resolves its location here, so they all accept the same forms.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::client_codes::{MG0701, MG0702, MG0703, MG0704};
use crate::error::{ErrorKind, RegistryError, Result};

/// The SQLite file of the default registry, inside the data directory.
pub const DEFAULT_DB_FILE: &str = "registry.db";

/// A bearer token is held as the blob store's [`Secret`]: kept out of `Debug` so that it
/// never lands in a log or an error.
pub use crate::blob::Secret;

/// What the user gave (flags, else environment); `None` everywhere is the default registry.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--registry` / `MODELSPEC_REGISTRY`.
    pub registry: Option<String>,
    /// `--store` / `MODELSPEC_STORE`.
    pub store: Option<String>,
    /// `--token` / `MODELSPEC_REGISTRY_TOKEN`.
    pub token: Option<Secret>,
    /// The data directory; [`data_dir`] when `None`.
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// The three `MODELSPEC_*` variables (empty ones count as unset).
    pub fn from_env() -> Settings {
        Settings {
            registry: env("MODELSPEC_REGISTRY"),
            store: env("MODELSPEC_STORE"),
            token: env("MODELSPEC_REGISTRY_TOKEN").map(Secret::new),
            data_dir: None,
        }
    }
}

/// Which database an embedded registry uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created with its directory on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, as given (it may carry a password: [`Location`]'s `Display` hides it).
    Postgres(String),
}

impl Database {
    /// The URL to connect with (`sqlite://` + absolute path, or the PostgreSQL URL).
    pub fn url(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite://{}", p.display()),
            Database::Postgres(u) => u.clone(),
        }
    }
}

/// A resolved registry location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A control plane (`modelspec registry serve`) over HTTP.
    Remote { url: String, token: Option<Secret> },
    /// A database and a blob store used in-process, acting as the OS user.
    Embedded {
        db: Database,
        /// `file:///abs/dir` or `s3://bucket/prefix`.
        store: String,
    },
}

impl fmt::Display for Location {
    /// For people: where the registry is, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Remote { url, .. } => write!(f, "{}", redact_userinfo(url)),
            Location::Embedded { db, store } => {
                write!(
                    f,
                    "{} + {}",
                    redact_userinfo(&db.url()),
                    redact_userinfo(store)
                )
            }
        }
    }
}

impl Location {
    /// A stable key for this location (state files of resumable uploads are kept per
    /// registry), without credentials.
    pub fn key(&self) -> String {
        self.to_string()
    }
}

/// The forms `--registry` accepts, for error messages.
const REGISTRY_FORMS: &str = "`http(s)://HOST[:PORT]` (a `modelspec registry serve` control plane), `sqlite://PATH` or `postgres://USER@HOST/DB` (a database used directly)";
/// The forms `--store` accepts.
const STORE_FORMS: &str = "`file://DIR` or a directory path (local) or `s3://BUCKET[/PREFIX]` (endpoint and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)";

/// Resolves what the user gave to a location. Relative SQLite and `file://` paths are made
/// absolute against the current directory, so that the location means the same thing to a
/// child process and in a state file.
pub fn resolve(settings: &Settings) -> Result<Location> {
    let registry = settings.registry.as_deref().map(str::trim);
    let store = settings.store.as_deref().map(str::trim);
    let Some(registry) = registry.filter(|r| !r.is_empty()) else {
        let dir = match &settings.data_dir {
            Some(d) => d.clone(),
            None => data_dir()?,
        };
        let store = match store.filter(|s| !s.is_empty()) {
            Some(s) => parse_store(s)?,
            None => file_url(&dir.join("blobs")),
        };
        return Ok(Location::Embedded {
            db: Database::Sqlite(dir.join(DEFAULT_DB_FILE)),
            store,
        });
    };
    let scheme = registry
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => {
            let rest = &registry[registry.find("://").unwrap_or(0) + 3..];
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad_registry(registry, "the URL has no host"));
            }
            if store.is_some_and(|s| !s.is_empty()) {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    MG0703,
                    "--store (MODELSPEC_STORE) was given with a remote registry; the control plane chooses its own blob store",
                )
                .hint("drop --store, or give `registry serve` its --store"));
            }
            Ok(Location::Remote {
                url: registry.trim_end_matches('/').to_string(),
                token: settings.token.clone(),
            })
        }
        Some("sqlite") => {
            let path = &registry["sqlite://".len()..];
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(bad_registry(registry, "no file path after `sqlite://`"));
            }
            let path = absolute(Path::new(path))?;
            let store = match store.filter(|s| !s.is_empty()) {
                Some(s) => parse_store(s)?,
                None => file_url(&path.parent().unwrap_or(Path::new("/")).join("blobs")),
            };
            Ok(Location::Embedded {
                db: Database::Sqlite(path),
                store,
            })
        }
        Some("postgres" | "postgresql") => {
            let Some(store) = store.filter(|s| !s.is_empty()) else {
                return Err(RegistryError::new(
                    ErrorKind::Invalid,
                    MG0703,
                    "a PostgreSQL registry needs a blob store: none was given",
                )
                .hint(format!("give --store (or MODELSPEC_STORE): {STORE_FORMS}")));
            };
            Ok(Location::Embedded {
                db: Database::Postgres(registry.to_string()),
                store: parse_store(store)?,
            })
        }
        _ => Err(bad_registry(registry, "unknown scheme")),
    }
}

/// Opens the registry at `location`: the HTTP client of a control plane (with its token), or
/// the embedded registry acting as the OS user ([`os_principal_name`], role admin: the files
/// are theirs). A SQLite file's directory is created on first use.
pub async fn open(location: &Location) -> Result<Box<dyn crate::Registry>> {
    match location {
        Location::Remote { url, token } => {
            let token = token.as_ref().map(Secret::expose).unwrap_or_default();
            Ok(Box::new(crate::remote::Remote::new(url, token)?))
        }
        Location::Embedded { db, store } => {
            if let Database::Sqlite(path) = db
                && let Some(dir) = path.parent()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    RegistryError::new(
                        ErrorKind::Invalid,
                        MG0704,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
            }
            let registry =
                crate::Embedded::open(&db.url(), store, crate::auth::os_principal()).await?;
            registry.configure_log(&db.url(), &crate::log::key::LogSettings::from_env());
            Ok(Box::new(registry))
        }
    }
}

/// Checks a `--store` value and makes a local path (`file://DIR` or a bare path) absolute.
pub fn parse_store(store: &str) -> Result<String> {
    let bad = |why: &str| {
        RegistryError::new(
            ErrorKind::Invalid,
            MG0702,
            format!("--store {:?}: {why}", redact_userinfo(store)),
        )
        .hint(format!("give {STORE_FORMS}"))
    };
    if let Some(path) = store.strip_prefix("file://") {
        if path.is_empty() {
            return Err(bad("no directory after `file://`"));
        }
        return Ok(file_url(&absolute(Path::new(path))?));
    }
    if let Some(rest) = store.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or_default();
        if bucket.is_empty() {
            return Err(bad("no bucket after `s3://`"));
        }
        return Ok(store.trim_end_matches('/').to_string());
    }
    if store.contains("://") {
        return Err(bad("unknown scheme"));
    }
    // A bare path is a local directory, as `file://` would name it.
    Ok(file_url(&absolute(Path::new(store))?))
}

fn bad_registry(given: &str, why: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Invalid,
        MG0701,
        format!("--registry {:?}: {why}", redact_userinfo(given)),
    )
    .hint(format!(
        "give {REGISTRY_FORMS}, or nothing for the local registry under the data directory"
    ))
}

/// `file://` + an absolute path.
fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| {
        RegistryError::new(
            ErrorKind::Invalid,
            MG0704,
            format!("cannot make {} absolute: {e}", p.display()),
        )
    })
}

/// `scheme://user:password@host…` -> `scheme://user:***@host…`, so that a URL can be printed.
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The local registry's directory: `$MODELSPEC_DATA_DIR`, else
/// `$XDG_DATA_HOME/modelspec/registry`, else `~/.local/share/modelspec/registry`.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(d) = env("MODELSPEC_DATA_DIR") {
        return absolute(Path::new(&d));
    }
    if let Some(d) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(d).join("modelspec").join("registry"));
    }
    if let Some(home) = env("HOME") {
        return Ok(PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("modelspec")
            .join("registry"));
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        MG0704,
        "no data directory: MODELSPEC_DATA_DIR, XDG_DATA_HOME and HOME are all unset",
    )
    .hint("set MODELSPEC_DATA_DIR, or give --registry"))
}

/// The OS user the embedded registry acts as: `os:<user>` (`$USER`, else `$LOGNAME`, else
/// the name /etc/passwd gives the process's uid, else `uid<n>`).
pub fn os_principal_name() -> String {
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(user_of_uid);
    format!("os:{user}")
}

fn user_of_uid() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_string();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| format!("uid{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(registry: Option<&str>, store: Option<&str>) -> Settings {
        Settings {
            registry: registry.map(str::to_string),
            store: store.map(str::to_string),
            token: Some(Secret::new("s3cr3t")),
            data_dir: Some(PathBuf::from("/data/reg")),
        }
    }

    #[test]
    fn default_is_sqlite_and_blobs_under_the_data_dir() {
        let l = resolve(&settings(None, None)).unwrap();
        assert_eq!(
            l,
            Location::Embedded {
                db: Database::Sqlite("/data/reg/registry.db".into()),
                store: "file:///data/reg/blobs".into()
            }
        );
    }

    #[test]
    fn sqlite_store_defaults_beside_the_file() {
        let l = resolve(&settings(Some("sqlite:///x/y/r.db"), None)).unwrap();
        assert_eq!(
            l,
            Location::Embedded {
                db: Database::Sqlite("/x/y/r.db".into()),
                store: "file:///x/y/blobs".into()
            }
        );
        let l = resolve(&settings(Some("sqlite:///x/r.db"), Some("s3://b/p/"))).unwrap();
        assert!(matches!(l, Location::Embedded { store, .. } if store == "s3://b/p"));
    }

    #[test]
    fn remote_keeps_the_token_out_of_debug_and_display() {
        let l = resolve(&settings(Some("http://127.0.0.1:9000/"), None)).unwrap();
        assert!(matches!(&l, Location::Remote { url, .. } if url == "http://127.0.0.1:9000"));
        assert!(!format!("{l:?}{l}").contains("s3cr3t"));
        assert!(resolve(&settings(Some("https://h"), Some("file:///x"))).is_err());
    }

    #[test]
    fn postgres_needs_a_store_and_hides_its_password() {
        let e = resolve(&settings(Some("postgres://u:pw@h/db"), None)).unwrap_err();
        assert_eq!(e.code, MG0703);
        let l = resolve(&settings(Some("postgres://u:pw@h/db"), Some("s3://b"))).unwrap();
        assert_eq!(l.to_string(), "postgres://u:***@h/db + s3://b");
    }

    #[test]
    fn bad_urls_say_what_was_given_and_what_is_accepted() {
        for bad in ["mysql://h/db", "./reg.db", "http://", "sqlite://"] {
            let e = resolve(&settings(Some(bad), None)).unwrap_err();
            assert_eq!(e.code, MG0701, "{bad}");
            assert!(e.to_string().contains("sqlite://PATH"), "{e}");
        }
        let e = resolve(&settings(None, Some("ftp://h/x"))).unwrap_err();
        assert_eq!(e.code, MG0702);
        let l = resolve(&settings(None, Some("/tmp/x"))).unwrap();
        assert!(matches!(l, Location::Embedded { store, .. } if store == "file:///tmp/x"));
        assert!(e.to_string().contains("s3://BUCKET"), "{e}");
        let e = resolve(&settings(None, Some("s3://"))).unwrap_err();
        assert_eq!(e.code, MG0702);
    }
}
