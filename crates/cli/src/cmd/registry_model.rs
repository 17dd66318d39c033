//! `registry://MODEL[@VERSION|POINTER]` for `run` and `serve`: the version is resolved in the
//! registry (`--registry`, else the local one), its signature is checked against the trust
//! policy when its status is `prod` (or whenever `--policy` is given), its GGUF artifact is
//! fetched from the registry's store into the local model cache (verified as it streams), and
//! the file is hashed again against the signed digest just before it is loaded: a changed byte
//! is refused with the file named, and nothing is loaded. What was verified becomes the
//! server's `x-modelspec-*` headers.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ms_registry::entity::{Artifact, ModelVersion, Status};
use ms_registry::locate::{self, Secret, Settings};
use ms_registry::run_codes::{MG1101, MG1102, MG1103, MG1104, MG1105};
use ms_registry::trust;
use ms_registry::{Digest, ErrorKind, Registry, RegistryError};
use ms_server::VersionHeaders;

use super::connect::local_io;
use super::transfer;

/// The prefix of a registry model reference.
pub const SCHEME: &str = "registry://";

/// Where the registry is and which trust policy verifies its versions; flattened into `run`
/// and `serve` (used only for a `registry://` model).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryModelArgs {
    /// For a registry:// model: the registry, http(s)://HOST:PORT, sqlite://PATH or
    /// postgres://USER@HOST/DB [default: the local registry under the data directory].
    #[arg(long, env = "MODELSPEC_REGISTRY", value_name = "URL")]
    pub registry: Option<String>,
    /// For a registry:// model: the blob store beside an embedded database (file://DIR,
    /// s3://BUCKET/PREFIX).
    #[arg(long, env = "MODELSPEC_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// For a registry:// model: bearer token of a remote registry (never printed).
    #[arg(
        long,
        env = "MODELSPEC_REGISTRY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// For a registry:// model: the trust policy its signature is checked against. Required
    /// for a version whose status is prod; given for another status, that version is checked
    /// too (against the policy's keys for that status).
    #[arg(long, env = "MODELSPEC_TRUST_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// A registry version ready to load.
#[derive(Debug, Clone)]
pub struct RegistryModel {
    /// The GGUF file, hashed against its signed (or registered) digest just now.
    pub path: PathBuf,
    /// The model id, as clients name it in requests.
    pub model_id: String,
    /// `MODEL@VERSION`, the manifest digest and the signer (`none` when not verified).
    pub headers: VersionHeaders,
    /// The artifact's name in the registry, for messages.
    pub artifact_name: String,
    /// The version's status when it was resolved.
    pub status: Status,
    /// The file as it was when hashed: [`RegistryModel::check_unchanged`] after loading.
    pub stamp: FileStamp,
}

/// One line on stderr: what is about to be loaded and who signed it.
pub fn announce(m: &RegistryModel) {
    let h = &m.headers;
    let signer = if h.signer == "none" {
        "not verified (its status is not prod and no --policy was given)".to_string()
    } else {
        format!("signed by {}", h.signer)
    };
    eprintln!(
        "registry: {} (manifest {}), {signer}; {} hashed: {}",
        h.model_version,
        h.manifest_digest,
        m.artifact_name,
        m.path.display()
    );
    if m.status == Status::Deprecated {
        eprintln!(
            "warning: {} is deprecated (a newer version replaced it in prod)",
            h.model_version
        );
    }
}

/// Whether `model` names a registry model.
pub fn is_registry_ref(model: &str) -> bool {
    model.starts_with(SCHEME)
}

/// `registry://MODEL[@SELECTOR]` into (model id, selector); the selector defaults to `latest`.
pub fn parse(reference: &str) -> Result<(String, String), RegistryError> {
    let bad = |why: &str| {
        RegistryError::new(
            ErrorKind::Invalid,
            MG1101,
            format!("{reference:?} is not a registry model reference: {why}"),
        )
        .hint("registry://MODEL, registry://MODEL@VERSION, registry://MODEL@POINTER (prod, staging, an alias) or registry://MODEL@sha256:HEX")
    };
    let Some(rest) = reference.strip_prefix(SCHEME) else {
        return Err(bad("it does not start with `registry://`"));
    };
    let (model, selector) = match rest.split_once('@') {
        Some((m, s)) => (m, s),
        None => (rest, "latest"),
    };
    ms_registry::model::validate_model_id(model).map_err(|why| bad(&why))?;
    let selector_ok = !selector.is_empty()
        && selector.len() <= 80
        && selector
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-:".contains(&c));
    if !selector_ok {
        return Err(bad(&format!(
            "the version {selector:?} is not a number, a pointer name or a sha256: digest"
        )));
    }
    Ok((model.to_string(), selector.to_string()))
}

/// What `run` and `serve` load: `model` itself, or for a `registry://` reference the verified
/// local copy (announced on stderr) and the version it came from. `Err(code)`: the registry
/// refused, and the refusal was reported.
pub fn model_to_load(
    model: &str,
    args: &RegistryModelArgs,
) -> anyhow::Result<Result<(String, Option<RegistryModel>), ExitCode>> {
    if !is_registry_ref(model) {
        return Ok(Ok((model.to_string(), None)));
    }
    Ok(match prepare(model, args)? {
        Ok(m) => {
            announce(&m);
            Ok((m.path.display().to_string(), Some(m)))
        }
        Err(e) => Err(super::connect::report(&e, false)),
    })
}

/// Resolves, verifies, fetches and hashes `reference` (see the module note): the outer error
/// is the process's own (no runtime), the inner one the registry's or a refusal, with its
/// code. Runs on its own small runtime: call it before any other runtime is entered.
pub fn prepare(
    reference: &str,
    args: &RegistryModelArgs,
) -> anyhow::Result<Result<RegistryModel, RegistryError>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(prepare_async(reference, args)))
}

async fn prepare_async(
    reference: &str,
    args: &RegistryModelArgs,
) -> Result<RegistryModel, RegistryError> {
    let (model_id, selector) = parse(reference)?;
    let location = locate::resolve(&Settings {
        registry: args.registry.clone(),
        store: args.store.clone(),
        token: args.token.clone().map(Secret::new),
        data_dir: None,
    })?;
    let registry = locate::open(&location).await?;
    let registry = &*registry;
    let version = registry.model_version(&model_id, &selector).await?;
    let label = format!("{}@{}", version.model_id, version.version);
    let signed = match (&args.policy, version.status) {
        (None, Status::Prod) => {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                MG1102,
                format!(
                    "{label} has status prod: its signature must be checked against a trust policy before it is loaded, and none was given"
                ),
            )
            .hint("give --policy FILE (or MODELSPEC_TRUST_POLICY); nothing was fetched or loaded"));
        }
        (None, _) => None,
        (Some(policy), status) => Some(
            verify(
                registry,
                &version,
                policy,
                ms_registry::model::status_str(status),
            )
            .await?,
        ),
    };
    let artifact = gguf_artifact(registry, &version).await?;
    let expected = match &signed {
        Some(s) => {
            let Some(resource) = s
                .resources
                .iter()
                .find(|r| r.digest == artifact.artifact_id)
            else {
                return Err(RegistryError::new(
                    ErrorKind::Integrity,
                    MG1104,
                    format!(
                        "{label}: the artifact {} ({}) is not among the signed resources ({}); refusing to load bytes nobody signed",
                        artifact.name,
                        artifact.artifact_id,
                        s.resources
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .hint("sign the version again (`modelspec sign MODEL@VERSION`) after finding out why its artifacts and its signature disagree"));
            };
            resource.digest
        }
        None => artifact.artifact_id,
    };
    let path = fetch_into_cache(registry, &artifact)
        .await
        .map_err(|mut e| {
            e.message = format!(
                "fetching {label}'s artifact {} from the registry: {}",
                artifact.name, e.message
            );
            e
        })?;
    let stamp = check_file(&path, &artifact.name, &label, &expected, signed.is_some())?;
    let headers = match signed {
        Some(s) => VersionHeaders {
            model_version: label,
            manifest_digest: s.manifest_digest,
            signer: s.signer,
        },
        None => VersionHeaders {
            model_version: label,
            // The same digest a signature would cover: of the version's files, by name.
            manifest_digest: trust::manifest_digest(
                &trust::version_files(registry, &version).await?,
            )
            .to_string(),
            signer: "none".into(),
        },
    };
    Ok(RegistryModel {
        path,
        model_id: version.model_id,
        headers,
        artifact_name: artifact.name,
        status: version.status,
        stamp,
    })
}

/// What a verified signature says: the manifest digest, who signed, the signed files.
struct Signed {
    manifest_digest: String,
    /// The signing key's name in the registry and its fingerprint.
    signer: String,
    resources: Vec<SignedResource>,
}

struct SignedResource {
    name: String,
    digest: Digest,
}

/// Checks the version's signature against the policy for `env` through the registry's
/// `trust::verify_version` (a signature by a key the policy allows for `env`, registered and
/// not revoked, whose manifest lists exactly the version's artifacts), re-done here on the
/// consumer's side.
async fn verify(
    registry: &dyn Registry,
    version: &ModelVersion,
    policy: &Path,
    env: &str,
) -> Result<Signed, RegistryError> {
    let policy = ms_trust::policy::TrustPolicy::load(policy).map_err(|e| {
        RegistryError::new(ErrorKind::Invalid, e.code, e.message)
            .hint("fix the trust policy file (`modelspec explain` the code for its format)")
    })?;
    let at = version.version.to_string();
    let v = trust::verify_version(registry, &version.model_id, &at, &policy, env).await?;
    Ok(Signed {
        manifest_digest: v.manifest_digest.to_string(),
        signer: format!("{} {}", v.signer, v.key_id),
        resources: v
            .files
            .into_iter()
            .map(|f| SignedResource {
                name: f.name,
                digest: f.sha256,
            })
            .collect(),
    })
}

/// The version's first GGUF artifact (registration keeps the spec's order, weights first).
async fn gguf_artifact(
    registry: &dyn Registry,
    version: &ModelVersion,
) -> Result<Artifact, RegistryError> {
    let mut seen = Vec::new();
    for id in &version.artifact_ids {
        let a = registry.artifact(id).await?;
        let gguf =
            a.media_type == "application/x-gguf" || a.name.to_ascii_lowercase().ends_with(".gguf");
        if gguf {
            return Ok(a);
        }
        seen.push(format!("{} ({})", a.name, a.media_type));
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        MG1103,
        format!(
            "{}@{} has no GGUF artifact to run (its artifacts: {})",
            version.model_id,
            version.version,
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ),
    )
    .hint(
        "register a version whose ModelSpec declares its GGUF weights (role weights, format gguf)",
    ))
}

/// The artifact's bytes in the local model cache (`blobs/sha256/<hex>`), pulled from the
/// registry's store when missing: streamed into a temporary file, verified against the
/// digest, renamed into place, made read-only.
async fn fetch_into_cache(
    registry: &dyn Registry,
    artifact: &Artifact,
) -> Result<PathBuf, RegistryError> {
    let cache = ms_fetch::Cache::from_env().map_err(|e| {
        RegistryError::new(
            ErrorKind::Invalid,
            ms_registry::client_codes::MG0704,
            format!("no model cache: {e}"),
        )
        .hint("set MODELSPEC_CACHE")
    })?;
    let path = cache.blob_path(&artifact.artifact_id.hex());
    if path.is_file() {
        return Ok(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| local_io(dir, "cannot create", e))?;
    }
    transfer::pull(registry, &artifact.artifact_id, &path, quiet()).await?;
    // Read-only: a tool of ours or the user's does not change it by accident (the check
    // before every load is what catches a change on purpose).
    if let Ok(meta) = std::fs::metadata(&path) {
        let mut perms = meta.permissions();
        perms.set_readonly(true);
        let _ = std::fs::set_permissions(&path, perms);
    }
    Ok(path)
}

/// Which file a path names, as the OS knows it: device, inode, size, modification time. The
/// same stamp before and after a load means the file loaded is the file hashed (a rename puts
/// another inode there, a write moves the modification time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    fn of(path: &Path) -> Result<FileStamp, RegistryError> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| local_io(path, "cannot read", e))?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

impl RegistryModel {
    /// After loading: the file is still the one hashed (see [`FileStamp`]); else MG1105.
    pub fn check_unchanged(&self) -> Result<(), RegistryError> {
        if FileStamp::of(&self.path)? == self.stamp {
            return Ok(());
        }
        Err(changed(
            &self.path,
            &self.headers.model_version,
            "while it was loaded",
        ))
    }
}

fn changed(path: &Path, label: &str, when: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Integrity,
        MG1105,
        format!(
            "{label}: the file {} changed {when} (replaced or written after it was hashed): refused",
            path.display()
        ),
    )
    .hint("something is writing to the model cache; make it writable by its owner only, then run again")
}

/// Hashes the file about to be loaded and compares it with the digest it must have; returns
/// its stamp, unchanged while it was hashed.
fn check_file(
    path: &Path,
    name: &str,
    label: &str,
    expected: &Digest,
    signed: bool,
) -> Result<FileStamp, RegistryError> {
    let before = FileStamp::of(path)?;
    let (actual, size) = transfer::hash_file(path, quiet())?;
    if FileStamp::of(path)? != before {
        return Err(changed(path, label, "while it was hashed"));
    }
    if actual == *expected {
        return Ok(before);
    }
    let source = if signed {
        "its signed manifest"
    } else {
        "the registry"
    };
    Err(RegistryError::new(
        ErrorKind::Integrity,
        MG1105,
        format!(
            "{label}: the file {} (artifact {name}, {size} bytes) hashes to {actual}, but {source} says {expected}: refused, nothing was loaded",
            path.display()
        ),
    )
    .hint(format!(
        "the file was changed after it was fetched; delete {} to fetch it again from the registry, and find out who changed it",
        path.display()
    )))
}

fn quiet() -> bool {
    !std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_after_its_hash_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, b"GGUF one").unwrap();
        let digest = Digest::of(b"GGUF one");
        let stamp = check_file(&path, "m.gguf", "m@1", &digest, true).unwrap();
        let m = RegistryModel {
            path: path.clone(),
            model_id: "m".into(),
            headers: VersionHeaders {
                model_version: "m@1".into(),
                manifest_digest: digest.to_string(),
                signer: "none".into(),
            },
            artifact_name: "m.gguf".into(),
            status: Status::Prod,
            stamp,
        };
        m.check_unchanged().unwrap();
        // Replaced by another file through a rename: another inode.
        let other = dir.path().join("other");
        std::fs::write(&other, b"GGUF two").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let e = m.check_unchanged().unwrap_err();
        assert_eq!(e.code, MG1105);
        assert!(e.message.contains("changed while it was loaded"), "{e:?}");
        assert!(e.message.contains(&path.display().to_string()), "{e:?}");
        // A wrong digest names the file and both digests.
        let e = check_file(&path, "m.gguf", "m@1", &digest, true).unwrap_err();
        assert!(e.message.contains("its signed manifest says"), "{e:?}");
    }

    #[test]
    fn references_parse_or_say_what_is_accepted() {
        assert_eq!(
            parse("registry://tiny").unwrap(),
            ("tiny".to_string(), "latest".to_string())
        );
        assert_eq!(parse("registry://tiny@3").unwrap().1, "3");
        assert_eq!(parse("registry://tiny@prod").unwrap().1, "prod");
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            parse(&format!("registry://tiny@{digest}")).unwrap().1,
            digest
        );
        for bad in [
            "registry://",
            "registry://Tiny",
            "registry://tiny@",
            "registry://tiny@Prod",
            "registry://a/b",
            "registry://tiny@1/x",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, MG1101, "{bad}");
            assert!(e.hint.unwrap().contains("registry://MODEL@VERSION"));
        }
        assert!(is_registry_ref("registry://x") && !is_registry_ref("x.gguf"));
    }
}
