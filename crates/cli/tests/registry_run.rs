//! `modelspec run|serve registry://MODEL[@VERSION|POINTER]` as a user runs them, against a real
//! registry (the embedded SQLite one, and a `registry serve` control plane in front of it):
//! the version's GGUF (`ms_test_support::tiny_llama`, a runnable synthetic GGUF of a few
//! kilobytes) fetched from the
//! registry's store, hashed before loading, and served with the version in headers; a changed
//! byte in the cached file or in the store refused with the file named; a `prod` version
//! refused without a trust policy, without a signature, with a signature by a key the policy
//! does not trust for prod or by a revoked key, and run and served when its signature checks
//! out (the signer in the headers).

mod registry_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use registry_common::{Reg, sha256_hex, spec_with_artifact};

/// The synthetic tiny llama's bytes (a runnable GGUF of a few kilobytes).
fn tiny_bytes() -> Vec<u8> {
    ms_test_support::tiny_llama::tiny_llama(1).bytes()
}

/// The same bytes as a local file, to compare a registry run with a direct one.
fn tiny_file(reg: &Reg) -> String {
    let path = reg.path("direct.gguf");
    std::fs::write(&path, tiny_bytes()).unwrap();
    path.display().to_string()
}

/// Registers `name` with the tiny llama as its weights; returns the artifact's sha256 hex.
fn register(reg: &Reg, name: &str) -> String {
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let (spec, _, sha) = spec_with_artifact(&work, name, &tiny_bytes());
    let v = reg.json(&["model", "register", spec.to_str().unwrap()]);
    assert_eq!(v["artifactIds"][0], format!("sha256:{sha}"), "{v:#}");
    sha
}

const RUN: [&str; 8] = [
    "-p",
    "Once upon a time",
    "-n",
    "4",
    "--temperature",
    "0",
    "--threads",
    "2",
];

fn run_args(model: &str) -> Vec<&str> {
    let mut a = vec!["run", model];
    a.extend(RUN);
    a
}

/// The cached copy of an artifact (the model cache is per test registry).
fn cached(reg: &Reg, sha: &str) -> PathBuf {
    PathBuf::from(reg.var("MODELSPEC_CACHE").unwrap())
        .join("blobs/sha256")
        .join(sha)
}

/// Flips one byte in the middle of `path`.
fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    // The file may be read-only (a store's blob): replace it.
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// The value of header `name` in a raw response.
fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `modelspec serve MODEL --port 0` with the registry's environment; (child, address).
fn serve(reg: &Reg, model: &str, extra: &[&str]) -> (Child, String) {
    let mut args = vec!["serve", model, "--port", "0", "--threads", "2"];
    args.extend(extra);
    let mut child = reg
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let banner = ms_test_support::serve_banner(&mut child);
    let addr = banner
        .addr
        .unwrap_or_else(|| panic!("no address printed:\n{}", banner.printed));
    (child, addr)
}

/// Run and serve a draft version: the same text as the file itself gives, the version in
/// every response's headers, signer `none`.
fn runs_and_serves_a_draft_version(reg: &Reg) {
    let sha = register(reg, "tiny");
    let from_registry = reg.ok(&run_args("registry://tiny"));
    let direct = reg.ok(&run_args(&tiny_file(reg)));
    assert_eq!(from_registry, direct, "[{}]", reg.label);
    assert_eq!(
        sha256_hex(&std::fs::read(cached(reg, &sha)).unwrap()),
        sha,
        "[{}] the cached copy",
        reg.label
    );
    let mut verbose = run_args("registry://tiny@1");
    verbose.push("-v");
    let o = reg.run(&verbose);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("generated: 4 tokens"), "[{}] {err}", reg.label);
    assert!(
        err.contains("registry: tiny@1") && err.contains("not verified"),
        "[{}] {err}",
        reg.label
    );

    let (mut child, addr) = serve(reg, "registry://tiny@latest", &[]);
    let (status, raw) = http(
        &addr,
        "POST",
        "/v1/completions",
        r#"{"model": "tiny", "prompt": "Hello", "max_tokens": 2}"#,
    );
    assert_eq!(status, 200, "[{}] {raw}", reg.label);
    assert_eq!(header(&raw, "x-modelspec-model-version"), Some("tiny@1"));
    assert_eq!(
        header(&raw, "x-modelspec-manifest-digest"),
        Some(manifest_of_one(&sha).as_str())
    );
    assert_eq!(header(&raw, "x-modelspec-signer"), Some("none"));
    let (status, raw) = http(&addr, "GET", "/v1/models", "");
    assert_eq!(status, 200);
    assert!(raw.contains("\"id\":\"tiny\""), "{raw}");
    assert_eq!(header(&raw, "x-modelspec-model-version"), Some("tiny@1"));
    let _ = child.kill();
    let _ = child.wait();
}

/// A byte changed in the cached copy, then in the store's blob: both refused before loading,
/// the file named; deleting the cached copy fetches it again.
fn refuses_a_changed_byte(reg: &Reg, store_blob: Option<PathBuf>) {
    let sha = register(reg, "tiny");
    reg.ok(&run_args("registry://tiny"));
    let copy = cached(reg, &sha);
    flip_a_byte(&copy);
    for cmd in [
        run_args("registry://tiny"),
        vec!["serve", "registry://tiny"],
    ] {
        let (_, err) = reg.fails(&cmd, 1);
        assert!(err.contains("error[MG1105]"), "[{}] {err}", reg.label);
        assert!(
            err.contains(&copy.display().to_string()) && err.contains("tiny.gguf"),
            "[{}] the file is named: {err}",
            reg.label
        );
        assert!(err.contains("nothing was loaded"), "{err}");
        assert!(!err.contains("listening"), "{err}");
    }
    std::fs::remove_file(&copy).unwrap();
    reg.ok(&run_args("registry://tiny"));

    if let Some(blob) = store_blob {
        flip_a_byte(&blob);
        std::fs::remove_file(&copy).unwrap();
        let (_, err) = reg.fails(&run_args("registry://tiny"), 1);
        assert!(
            err.contains(&sha) && err.contains("tiny@1's artifact tiny.gguf"),
            "[{}] the artifact is named: {err}",
            reg.label
        );
        assert!(!copy.exists(), "nothing half-written in the cache");
    }
}

/// A prod version without a trust policy: refused before anything is fetched.
fn refuses_prod_without_a_policy(reg: &Reg) {
    let sha = register(reg, "tiny");
    reg.json(&["model", "promote", "tiny", "1", "--to", "prod"]);
    for cmd in [
        run_args("registry://tiny@prod"),
        vec!["serve", "registry://tiny"],
    ] {
        let (_, err) = reg.fails(&cmd, 1);
        assert!(err.contains("error[MG1102]"), "[{}] {err}", reg.label);
        assert!(err.contains("tiny@1 has status prod"), "{err}");
        assert!(err.contains("--policy"), "{err}");
    }
    assert!(!cached(reg, &sha).exists(), "nothing fetched");
}

/// The store's own file of an artifact in the embedded registry's default local store.
fn store_blob(reg: &Reg, sha: &str) -> PathBuf {
    reg.data_dir()
        .join("blobs/blobs/sha256")
        .join(&sha[..2])
        .join(sha)
}

#[test]
fn embedded_registry_draft_version() {
    runs_and_serves_a_draft_version(&Reg::sqlite());
}

#[test]
fn remote_registry_draft_version() {
    runs_and_serves_a_draft_version(&Reg::remote(Reg::sqlite()));
}

#[test]
fn a_changed_byte_is_refused_naming_the_file() {
    let reg = Reg::sqlite();
    let sha = sha256_hex(&tiny_bytes());
    refuses_a_changed_byte(&reg, Some(store_blob(&reg, &sha)));
}

#[test]
fn a_prod_version_needs_a_trust_policy() {
    refuses_prod_without_a_policy(&Reg::sqlite());
    refuses_prod_without_a_policy(&Reg::remote(Reg::sqlite()));
}

#[test]
fn malformed_references_and_missing_versions_say_what_was_wrong() {
    let reg = Reg::sqlite();
    let (_, err) = reg.fails(&run_args("registry://Tiny@1"), 1);
    assert!(err.contains("error[MG1101]"), "{err}");
    assert!(err.contains("registry://MODEL@VERSION"), "{err}");
    register(&reg, "tiny");
    let (_, err) = reg.fails(&run_args("registry://tiny@7"), 1);
    assert!(err.contains("tiny") && err.contains('7'), "{err}");
}

/// A development Ed25519 key pair in `dir`: (private key file, public key file).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    use ms_trust::Signer as _;
    let signer = ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap();
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    signer.save_pkcs8_pem(&private).unwrap();
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();
    (private, public)
}

/// A trust policy `file` trusting `public` (as `name`) for `envs`.
fn policy(dir: &Path, file: &str, name: &str, public: &Path, envs: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: {name}\n    publicKey: {}\n    environments: [{envs}]\n",
            public.display()
        ),
    )
    .unwrap();
    path
}

/// The OMS manifest digest of one file: sha256 of its raw sha256.
fn manifest_of_one(sha_hex: &str) -> String {
    let raw: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&sha_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    format!("sha256:{}", sha256_hex(&raw))
}

/// A signed prod version runs and serves with its signer in the headers; a changed byte is
/// refused naming the file; an unsigned prod version, a signature by a key the policy does not
/// trust for prod, and a revoked key are each refused before anything is loaded.
fn verifies_prod_versions(reg: &Reg) {
    let keys = reg.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let sha = register(reg, "tiny");
    let (private, public) = key_pair(&keys, "release");
    let (_, stranger) = key_pair(&keys, "stranger");
    let trusted = policy(&keys, "trusted.yaml", "release", &public, "prod, staging");
    let staging_only = policy(&keys, "staging.yaml", "release", &public, "staging");
    let untrusted = policy(&keys, "stranger.yaml", "stranger", &stranger, "prod");
    let trusted = trusted.to_str().unwrap();

    // Prod without a signature.
    reg.json(&["model", "promote", "tiny", "1", "--to", "prod"]);
    let mut cmd = run_args("registry://tiny@prod");
    cmd.extend(["--policy", trusted]);
    let (_, err) = reg.fails(&cmd, 1);
    assert!(
        err.contains("error[MG0808]") && err.contains("tiny@1 has no signature"),
        "[{}] {err}",
        reg.label
    );
    assert!(!cached(reg, &sha).exists(), "nothing fetched");

    // Signed with a registered key the policy trusts for prod.
    reg.json(&[
        "key",
        "add",
        "release",
        "--public-key",
        public.to_str().unwrap(),
        "--env",
        "prod",
        "--env",
        "staging",
    ]);
    reg.json(&[
        "sign",
        "tiny@1",
        "--signer",
        &format!("file:{}", private.display()),
    ]);
    let o = reg.run(&cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "[{}] {err}", reg.label);
    assert!(
        err.contains("registry: tiny@1") && err.contains("signed by release sha256:"),
        "{err}"
    );
    let direct = reg.ok(&run_args(&tiny_file(reg)));
    assert_eq!(String::from_utf8_lossy(&o.stdout), direct);

    let (mut child, addr) = serve(reg, "registry://tiny@prod", &["--policy", trusted]);
    let (status, raw) = http(
        &addr,
        "POST",
        "/v1/chat/completions",
        r#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}"#,
    );
    assert_eq!(status, 200, "{raw}");
    assert_eq!(header(&raw, "x-modelspec-model-version"), Some("tiny@1"));
    assert_eq!(
        header(&raw, "x-modelspec-manifest-digest"),
        Some(manifest_of_one(&sha).as_str())
    );
    let signer = header(&raw, "x-modelspec-signer").unwrap().to_string();
    assert!(signer.starts_with("release sha256:"), "{signer}");
    let _ = child.kill();
    let _ = child.wait();

    // A changed byte in the file to load.
    let copy = cached(reg, &sha);
    flip_a_byte(&copy);
    let (_, err) = reg.fails(&cmd, 1);
    assert!(
        err.contains("error[MG1105]") && err.contains(&copy.display().to_string()),
        "{err}"
    );
    assert!(err.contains("its signed manifest"), "{err}");
    std::fs::remove_file(&copy).unwrap();

    // The policy does not trust this key for prod, or trusts another key only.
    for p in [&staging_only, &untrusted] {
        let mut cmd = run_args("registry://tiny@prod");
        cmd.extend(["--policy", p.to_str().unwrap()]);
        let (_, err) = reg.fails(&cmd, 1);
        assert!(
            err.contains("error[MG0809]") || err.contains("error[MG0808]"),
            "{err}"
        );
        assert!(err.contains("is valid for prod"), "{err}");
    }
    assert!(!copy.exists(), "nothing fetched after a failed check");

    // A revoked key's signatures are worth nothing.
    let listed = reg.json(&["key", "list"]);
    let key_id = listed[0]["keyId"].as_str().unwrap().to_string();
    reg.json(&["key", "revoke", &key_id, "--reason", "leaked"]);
    let (_, err) = reg.fails(&cmd, 1);
    assert!(
        err.contains("error[MG0808]") && err.contains("revoked"),
        "{err}"
    );
}

#[test]
fn a_signed_prod_version_on_the_embedded_registry() {
    verifies_prod_versions(&Reg::sqlite());
}

#[test]
fn a_signed_prod_version_through_a_control_plane() {
    verifies_prod_versions(&Reg::remote(Reg::sqlite()));
}

/// A signature whose bytes were changed in the database after it was attached (the registry
/// checked it then; the consumer checks it again): refused before anything is loaded.
#[test]
fn a_forged_signature_in_the_database_is_refused() {
    let reg = Reg::sqlite();
    let keys = reg.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let sha = register(&reg, "tiny");
    let (private, public) = key_pair(&keys, "release");
    let trusted = policy(&keys, "trusted.yaml", "release", &public, "prod");
    reg.json(&[
        "key",
        "add",
        "release",
        "--public-key",
        public.to_str().unwrap(),
        "--env",
        "prod",
    ]);
    reg.json(&[
        "sign",
        "tiny@1",
        "--signer",
        &format!("file:{}", private.display()),
    ]);
    reg.json(&["model", "promote", "tiny", "1", "--to", "prod"]);
    // One bit of the DSSE signature flipped, straight in SQLite (Python's standard library).
    let db = reg.data_dir().join("registry.db");
    let script = r#"
import base64, json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
(bundle,) = con.execute("SELECT bundle FROM manifest_signatures").fetchone()
b = json.loads(bundle)
sig = b["dsseEnvelope"]["signatures"][0]
raw = bytearray(base64.b64decode(sig["sig"]))
raw[0] ^= 1
sig["sig"] = base64.b64encode(bytes(raw)).decode()
con.execute("UPDATE manifest_signatures SET bundle = ?", (json.dumps(b),))
con.commit()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = run_args("registry://tiny@prod");
    cmd.extend(["--policy", trusted.to_str().unwrap()]);
    let (_, err) = reg.fails(&cmd, 1);
    assert!(err.contains("error[MG0808]"), "{err}");
    assert!(
        err.contains("no signature of tiny@1 is valid for prod"),
        "{err}"
    );
    assert!(!cached(&reg, &sha).exists(), "nothing fetched");
}

/// The same checks on PostgreSQL and an S3 store (SeaweedFS), the artifact streamed from S3.
#[test]
fn a_signed_prod_version_on_postgres_and_s3() {
    verifies_prod_versions(&Reg::postgres_s3());
}

/// A version replaced in prod is deprecated: it still runs (unverified without --policy), with
/// a warning.
#[test]
fn a_deprecated_version_runs_with_a_warning() {
    let reg = Reg::sqlite();
    register(&reg, "tiny");
    let work = reg.path("work2");
    std::fs::create_dir_all(&work).unwrap();
    let other = ms_test_support::tiny_llama::tiny_llama(2).bytes();
    let (spec, _, _) = spec_with_artifact(&work, "tiny", &other);
    let v2 = reg.json(&["model", "register", spec.to_str().unwrap()]);
    assert_eq!(v2["version"], 2, "{v2:#}");
    reg.json(&["model", "promote", "tiny", "1", "--to", "prod"]);
    reg.json(&["model", "promote", "tiny", "2", "--to", "prod"]);
    let o = reg.run(&run_args("registry://tiny@1"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: tiny@1 is deprecated"), "{err}");
    // Version 2 is prod now: no policy, no run.
    let (_, err) = reg.fails(&run_args("registry://tiny@prod"), 1);
    assert!(
        err.contains("error[MG1102]") && err.contains("tiny@2"),
        "{err}"
    );
}

/// With --policy, a staging version is checked against the keys the policy trusts for staging.
#[test]
fn a_policy_checks_a_staging_version_for_staging() {
    let reg = Reg::sqlite();
    let keys = reg.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    register(&reg, "tiny");
    let (private, public) = key_pair(&keys, "ci");
    let for_staging = policy(&keys, "staging.yaml", "ci", &public, "staging");
    let for_prod = policy(&keys, "prod.yaml", "ci", &public, "prod");
    reg.json(&[
        "key",
        "add",
        "ci",
        "--public-key",
        public.to_str().unwrap(),
        "--env",
        "staging",
    ]);
    reg.json(&[
        "sign",
        "tiny@1",
        "--signer",
        &format!("file:{}", private.display()),
    ]);
    reg.json(&["model", "promote", "tiny", "1", "--to", "staging"]);
    let mut ok = run_args("registry://tiny@staging");
    ok.extend(["--policy", for_staging.to_str().unwrap()]);
    let o = reg.run(&ok);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("signed by ci sha256:"), "{err}");
    let mut refused = run_args("registry://tiny@staging");
    refused.extend(["--policy", for_prod.to_str().unwrap()]);
    let (_, err) = reg.fails(&refused, 1);
    assert!(
        err.contains("error[MG0809]") && err.contains("valid for staging"),
        "{err}"
    );
    // Without a policy a staging version runs unverified.
    let o = reg.run(&run_args("registry://tiny@staging"));
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not verified"));
}
