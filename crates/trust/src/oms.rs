//! OpenSSF Model Signing (OMS v1.0) manifests: hashing a model directory into resources the way
//! `model_signing` does (method `files`, SHA-256 per file, names relative to the model root with
//! `/`, sorted by path components, git files at the root and the signature file ignored,
//! symbolic links refused), the in-toto statement over them, signing it into a Sigstore bundle
//! and verifying a bundle back into the list of signed files.

use std::cmp::Ordering;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::bundle::{Bundle, hex};
use crate::codes::{MT0104, MT0105, MT0106};
use crate::dsse;
use crate::error::{Result, TrustError};
use crate::intoto::{ResourceDescriptor, Statement};
use crate::key::PublicKey;
use crate::provenance::is_sha256_hex;
use crate::signer::Signer;

/// The predicate type of an OMS v1.0 model signature.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// Where `model_signing` (and `modelspec`) write a model's signature by default.
pub const DEFAULT_SIGNATURE_FILE: &str = "model.sig";
/// The paths `model_signing` ignores at the model root by default (`--ignore-git-paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// One signed file: its path relative to the model root (`/`-separated) and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    pub name: String,
    pub digest: [u8; 32],
}

impl Resource {
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }
}

/// The order of resources in a manifest: by path components, as Python compares `PurePosixPath`
/// (so `a/b` sorts before `a.txt`, unlike a byte-wise string sort).
pub fn name_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Sorts resources into manifest order.
pub fn sort_resources(resources: &mut [Resource]) {
    resources.sort_by(|a, b| name_order(&a.name, &b.name));
}

/// What to leave out when hashing a directory; paths are relative to the model root and cover
/// everything below them.
#[derive(Debug, Clone)]
pub struct HashOptions {
    pub ignore_paths: Vec<String>,
    /// Ignore [`GIT_PATHS`] (the default, as `model_signing`).
    pub ignore_git_paths: bool,
}

impl Default for HashOptions {
    /// The git paths and `model.sig`.
    fn default() -> Self {
        Self {
            ignore_paths: vec![DEFAULT_SIGNATURE_FILE.to_string()],
            ignore_git_paths: true,
        }
    }
}

impl HashOptions {
    /// Every ignored path, git paths included, as recorded in the manifest.
    pub fn all_ignored(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        if self.ignore_git_paths {
            all.extend(GIT_PATHS.iter().map(|s| s.to_string()));
        }
        for p in &self.ignore_paths {
            let p = normalize(p);
            if !p.is_empty() && !all.contains(&p) {
                all.push(p);
            }
        }
        all
    }
}

/// `./a//b/` → `a/b`.
fn normalize(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn is_ignored(name: &str, ignored: &[String]) -> bool {
    ignored.iter().any(|i| {
        name == i
            || (name.len() > i.len()
                && name.starts_with(i.as_str())
                && name.as_bytes()[i.len()] == b'/')
    })
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> TrustError {
    TrustError::new(MT0105, format!("cannot {what} {}: {e}", path.display()))
}

/// Hashes every file of `dir` with the default options (git paths and `model.sig` ignored).
pub fn hash_directory(dir: &Path) -> Result<Vec<Resource>> {
    hash_directory_with(dir, &HashOptions::default())
}

/// Hashes every regular file under `dir` except the ignored ones, in manifest order.
pub fn hash_directory_with(dir: &Path, options: &HashOptions) -> Result<Vec<Resource>> {
    let ignored = options.all_ignored();
    let meta = std::fs::metadata(dir).map_err(|e| io_err(dir, "read the model directory", e))?;
    if !meta.is_dir() {
        return Err(TrustError::new(
            MT0105,
            format!(
                "{} is not a directory: a model to sign is a directory",
                dir.display()
            ),
        ));
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    // An explicit stack: model trees are shallow, but a hostile one must not overflow ours.
    let mut stack: Vec<(String, PathBuf)> = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, path)) = stack.pop() {
        let entries = std::fs::read_dir(&path).map_err(|e| io_err(&path, "list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&path, "list", e))?;
            let file_name = entry.file_name();
            let child = entry.path();
            let Some(file_name) = file_name.to_str() else {
                return Err(TrustError::new(
                    MT0105,
                    format!(
                        "{} has a name that is not UTF-8; rename it",
                        child.display()
                    ),
                ));
            };
            let name = if prefix.is_empty() {
                file_name.to_string()
            } else {
                format!("{prefix}/{file_name}")
            };
            if is_ignored(&name, &ignored) {
                continue;
            }
            let ty = entry.file_type().map_err(|e| io_err(&child, "stat", e))?;
            if ty.is_symlink() {
                return Err(TrustError::new(
                    MT0105,
                    format!(
                        "{} is a symbolic link: links are not signed (they can point outside \
                         the model); replace it with the file, or ignore it",
                        child.display()
                    ),
                ));
            } else if ty.is_dir() {
                stack.push((name, child));
            } else if ty.is_file() {
                files.push((name, child));
            } else {
                return Err(TrustError::new(
                    MT0105,
                    format!("{} is not a regular file or a directory", child.display()),
                ));
            }
        }
    }
    let mut resources = files
        .into_iter()
        .map(|(name, path)| {
            Ok(Resource {
                digest: hash_file(&path)?,
                name,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    sort_resources(&mut resources);
    Ok(resources)
}

/// SHA-256 of a file, read in 1 MiB chunks.
pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, "open", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, "read", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// SHA-256 over the raw digests concatenated in manifest order: the statement's subject digest.
pub fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut sorted: Vec<&Resource> = resources.iter().collect();
    sorted.sort_by(|a, b| name_order(&a.name, &b.name));
    let mut h = Sha256::new();
    for r in sorted {
        h.update(r.digest);
    }
    h.finalize().into()
}

/// The OMS statement of `resources` with the default ignored paths (git paths, `model.sig`).
pub fn statement(model_name: &str, resources: &[Resource]) -> Statement {
    statement_with(model_name, resources, &HashOptions::default().all_ignored())
}

/// The OMS statement of `resources`, recording `ignore_paths` in its serialization (a verifier
/// ignores them too).
pub fn statement_with(
    model_name: &str,
    resources: &[Resource],
    ignore_paths: &[String],
) -> Statement {
    let mut sorted = resources.to_vec();
    sort_resources(&mut sorted);
    let list: Vec<Value> = sorted
        .iter()
        .map(|r| json!({"name": r.name, "algorithm": "sha256", "digest": r.digest_hex()}))
        .collect();
    let mut serialization = json!({
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": false,
    });
    if !ignore_paths.is_empty() {
        serialization["ignore_paths"] = json!(ignore_paths);
    }
    Statement::new(
        vec![ResourceDescriptor::sha256(
            model_name,
            hex(&root_digest(&sorted)),
        )],
        PREDICATE_TYPE,
        json!({"serialization": serialization, "resources": list}),
    )
}

/// Signs an OMS statement into a Sigstore bundle.
pub fn sign(statement: &Statement, signer: &dyn Signer) -> Result<Bundle> {
    dsse::sign_statement(&statement.to_value(), signer)
}

/// The manifest a bundle carries, once its signature and consistency are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest {
    /// The subject's name (informative: renaming a model does not invalidate it).
    pub model_name: String,
    /// The signed files, in manifest order.
    pub resources: Vec<Resource>,
    /// The paths the signer ignored (relative to the model root).
    pub ignore_paths: Vec<String>,
    /// `sha256:<hex>` of the signed statement (see [`Bundle::payload_digest`]).
    pub manifest_digest: String,
    /// The fingerprint of the key that signed.
    pub signer: String,
}

fn bad(msg: impl Into<String>) -> TrustError {
    TrustError::new(MT0104, msg)
}

/// Checks the bundle's signature with `key`, that it carries an OMS v1.0 statement, and that
/// the statement is consistent (subject digest = digest of the resources).
pub fn verify(bundle: &Bundle, key: &PublicKey) -> Result<VerifiedManifest> {
    let st = dsse::verify(bundle, key)?;
    st.expect_predicate_type(PREDICATE_TYPE)?;
    manifest_of(&st, bundle.payload_digest(), key.fingerprint())
}

fn manifest_of(
    st: &Statement,
    manifest_digest: String,
    signer: String,
) -> Result<VerifiedManifest> {
    let [subject] = st.subject.as_slice() else {
        return Err(bad(format!(
            "/subject has {} entries; OMS has exactly one",
            st.subject.len()
        )));
    };
    let expected = subject
        .sha256_hex()
        .filter(|h| is_sha256_hex(h))
        .ok_or_else(|| bad("/subject/0/digest/sha256 is missing or not 64 lowercase hex digits"))?;
    let p = &st.predicate;
    let ser = p
        .get("serialization")
        .ok_or_else(|| bad("/predicate/serialization is missing"))?;
    let method = ser.get("method").and_then(Value::as_str).unwrap_or("");
    if method != "files" {
        return Err(bad(format!(
            "/predicate/serialization/method is {method:?}; only \"files\" is verified here \
             (sign with `model_signing` without shard serialization)"
        )));
    }
    let hash_type = ser.get("hash_type").and_then(Value::as_str).unwrap_or("");
    if hash_type != "sha256" {
        return Err(bad(format!(
            "/predicate/serialization/hash_type is {hash_type:?}; only \"sha256\" is verified here"
        )));
    }
    let ignore_paths = match ser.get("ignore_paths") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(normalize).ok_or_else(|| {
                    bad(format!(
                        "/predicate/serialization/ignore_paths/{i} is not a string"
                    ))
                })
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad("/predicate/serialization/ignore_paths is not an array")),
    };
    let list = p
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("/predicate/resources is missing or not an array"))?;
    let mut resources = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let alg = r.get("algorithm").and_then(Value::as_str);
        let digest = r
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| is_sha256_hex(d));
        let (Some(name), Some("sha256"), Some(digest)) = (name, alg, digest) else {
            return Err(bad(format!(
                "/predicate/resources/{i} needs a name, algorithm \"sha256\" and a 64-hex digest"
            )));
        };
        // Names become paths in a verifier's hands: only plain relative paths below the model.
        if name.starts_with('/')
            || name.contains('\\')
            || name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(format!(
                "/predicate/resources/{i}/name {name:?} is not a relative path inside the model"
            )));
        }
        let mut d = [0u8; 32];
        for (k, byte) in d.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digest[2 * k..2 * k + 2], 16).expect("checked hex");
        }
        resources.push(Resource {
            name: name.to_string(),
            digest: d,
        });
    }
    // The subject digest is over the digests in the order listed, as model_signing checks it.
    let mut h = Sha256::new();
    for r in &resources {
        h.update(r.digest);
    }
    let actual = hex(&h.finalize());
    if actual != expected {
        return Err(bad(format!(
            "the subject digest is {expected} but the listed resources hash to {actual}: \
             the manifest was altered"
        )));
    }
    sort_resources(&mut resources);
    if let Some(w) = resources.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(bad(format!(
            "/predicate/resources lists {:?} twice",
            w[0].name
        )));
    }
    Ok(VerifiedManifest {
        model_name: subject.name.clone().unwrap_or_default(),
        resources,
        ignore_paths,
        manifest_digest,
        signer,
    })
}

/// How one file differs from the signed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Present in both, other content.
    Changed {
        name: String,
        signed: [u8; 32],
        actual: [u8; 32],
    },
    /// Signed, absent.
    Missing { name: String },
    /// Present, not signed.
    Extra { name: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Changed {
                name,
                signed,
                actual,
            } => write!(
                f,
                "{name}: changed (signed sha256 {}, found {})",
                hex(signed),
                hex(actual)
            ),
            Difference::Missing { name } => write!(f, "{name}: missing (signed, not found)"),
            Difference::Extra { name } => write!(f, "{name}: extra (found, not signed)"),
        }
    }
}

impl VerifiedManifest {
    /// Every difference between the signed files and `actual`, in name order.
    pub fn differences(&self, actual: &[Resource]) -> Vec<Difference> {
        let mut actual = actual.to_vec();
        sort_resources(&mut actual);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.resources.len() || j < actual.len() {
            let ord = match (self.resources.get(i), actual.get(j)) {
                (Some(s), Some(a)) => name_order(&s.name, &a.name),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match ord {
                Ordering::Less => {
                    out.push(Difference::Missing {
                        name: self.resources[i].name.clone(),
                    });
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(Difference::Extra {
                        name: actual[j].name.clone(),
                    });
                    j += 1;
                }
                Ordering::Equal => {
                    let (s, a) = (&self.resources[i], &actual[j]);
                    if s.digest != a.digest {
                        out.push(Difference::Changed {
                            name: s.name.clone(),
                            signed: s.digest,
                            actual: a.digest,
                        });
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        out
    }

    /// `Ok` when `actual` is exactly the signed set of files; otherwise an MT0106 error naming
    /// every changed, missing and extra file.
    pub fn compare(&self, actual: &[Resource]) -> Result<()> {
        let diffs = self.differences(actual);
        if diffs.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = diffs.iter().map(ToString::to_string).collect();
        Err(TrustError::new(
            MT0106,
            format!(
                "the model differs from its signed manifest ({}): {}",
                self.manifest_digest,
                list.join("; ")
            ),
        ))
    }

    /// Hashes `dir` ignoring what the signer ignored (plus the git paths and `extra_ignored`,
    /// e.g. where the signature file lies) and compares.
    pub fn verify_directory(&self, dir: &Path, extra_ignored: &[String]) -> Result<()> {
        let mut ignore_paths = self.ignore_paths.clone();
        ignore_paths.extend(extra_ignored.iter().cloned());
        let actual = hash_directory_with(
            dir,
            &HashOptions {
                ignore_paths,
                ignore_git_paths: true,
            },
        )?;
        self.compare(&actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use crate::keyfile::KeyFileSigner;

    fn model() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        std::fs::write(d.path().join("a.txt"), b"hello").unwrap();
        std::fs::write(d.path().join("a.b"), b"y").unwrap();
        std::fs::write(d.path().join("sub/b.bin"), b"x").unwrap();
        std::fs::write(d.path().join(".git/HEAD"), b"z").unwrap();
        std::fs::write(d.path().join("model.sig"), b"old").unwrap();
        d
    }

    #[test]
    fn directories_hash_like_model_signing() {
        let d = model();
        let r = hash_directory(d.path()).unwrap();
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a.b", "a.txt", "sub/b.bin"]);
        // The same model hashed by model_signing 1.1.1 (subject digest of its bundle).
        assert_eq!(
            hex(&root_digest(&r)),
            "d35f8b93b2a17dead9cccc02ba9a6c8014f9cf7499e9a0f6e09d4edb81fe02d2"
        );
        assert_eq!(name_order("a/b", "a.txt"), Ordering::Less);
    }

    #[test]
    fn sign_verify_and_name_the_tampered_file() {
        let d = model();
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let signer = KeyFileSigner::generate(alg).unwrap();
            let st = statement("m", &hash_directory(d.path()).unwrap());
            let bundle = sign(&st, &signer).unwrap();
            let bundle = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
            let m = verify(&bundle, signer.public_key()).unwrap();
            assert_eq!(m.resources.len(), 3);
            m.verify_directory(d.path(), &[]).unwrap();
            let other = KeyFileSigner::generate(alg).unwrap();
            assert_eq!(
                verify(&bundle, other.public_key()).unwrap_err().code,
                crate::codes::MT0102
            );
        }
        let signer = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let bundle = sign(&statement("m", &hash_directory(d.path()).unwrap()), &signer).unwrap();
        let m = verify(&bundle, signer.public_key()).unwrap();
        std::fs::write(d.path().join("sub/b.bin"), b"X").unwrap();
        std::fs::remove_file(d.path().join("a.b")).unwrap();
        std::fs::write(d.path().join("new"), b"").unwrap();
        let err = m.verify_directory(d.path(), &[]).unwrap_err();
        assert_eq!(err.code, MT0106);
        for want in ["sub/b.bin: changed", "a.b: missing", "new: extra"] {
            assert!(err.message.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn forged_payloads_and_inconsistent_manifests_are_refused() {
        let signer = KeyFileSigner::generate(Algorithm::Ed25519).unwrap();
        let r = vec![Resource {
            name: "w".into(),
            digest: [7; 32],
        }];
        let mut bundle = sign(&statement("m", &r), &signer).unwrap();
        bundle.envelope.payload[10] ^= 1;
        assert_eq!(
            verify(&bundle, signer.public_key()).unwrap_err().code,
            crate::codes::MT0002
        );
        let mut st = statement("m", &r);
        st.predicate["resources"][0]["digest"] = json!("00".repeat(32));
        let bundle = sign(&st, &signer).unwrap();
        assert_eq!(
            verify(&bundle, signer.public_key()).unwrap_err().code,
            MT0104
        );
    }

    #[test]
    fn links_and_non_directories_are_refused() {
        let d = model();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let err = hash_directory(d.path()).unwrap_err();
        assert_eq!(err.code, MT0105);
        assert!(err.message.contains("link"), "{err}");
        let err = hash_directory(&d.path().join("a.txt")).unwrap_err();
        assert!(err.message.contains("not a directory"), "{err}");
        // An ignored link is fine; special files and non-UTF-8 names are named.
        let options = HashOptions {
            ignore_paths: vec!["link".into()],
            ignore_git_paths: true,
        };
        assert_eq!(hash_directory_with(d.path(), &options).unwrap().len(), 4);
        let d = model();
        let _socket = std::os::unix::net::UnixListener::bind(d.path().join("sub/sock")).unwrap();
        let err = hash_directory(d.path()).unwrap_err();
        assert!(
            err.message.contains("sub/sock") && err.message.contains("not a regular file"),
            "{err}"
        );
        let d = model();
        use std::os::unix::ffi::OsStrExt as _;
        let odd = std::ffi::OsStr::from_bytes(b"bad\xffname");
        std::fs::write(d.path().join(odd), b"").unwrap();
        let err = hash_directory(d.path()).unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{err}");
    }
}
