//! `modelspec key`, `sign` and `verify-signature MODEL@VERSION` as a user runs them, embedded
//! (SQLite) and through `modelspec registry serve` (over SQLite, and over PostgreSQL +
//! SeaweedFS): a P-256 key file signs a version, the real `model_signing` (PyPI
//! `model-signing==1.1.1`) verifies the attached bundle over a directory of the version's
//! files and signs one we attach; a bundle for other bytes, an unregistered key and a revoked
//! key are refused with their codes.

mod registry_common;

use std::path::{Path, PathBuf};
use std::process::Output;

use ms_test_support::python::module;
use ms_trust::keyfile::KeyFileSigner;
use ms_trust::{Algorithm, Signer as _};
use registry_common::{Reg, noise, spec_with_artifact};

fn model_signing(args: &[&str]) -> Output {
    module("model_signing")
        .args(args)
        .output()
        .expect("model_signing runs")
}

fn out_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A key pair on disk: (signer, private PEM, public PEM).
fn keypair(dir: &Path, name: &str, alg: Algorithm) -> (KeyFileSigner, PathBuf, PathBuf) {
    let signer = KeyFileSigner::generate(alg).unwrap();
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    signer.save_pkcs8_pem(&private).unwrap();
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();
    (signer, private, public)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn scenario(reg: &Reg) {
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let weights = noise(40_000, 3);
    let (spec, artifact, _) = spec_with_artifact(&work, "signed-chat", &weights);
    let v1 = reg.json(&["model", "register", s(&spec)]);
    assert_eq!(v1["version"], 1, "{v1:#}");
    let (key, key_path, pub_path) = keypair(&work, "release", Algorithm::EcdsaP256Sha256);
    let (_, other_path, _) = keypair(&work, "other", Algorithm::Ed25519);
    let signer_ref = format!("file:{}", s(&key_path));

    // Endless or huge files are refused unread.
    let (_, err) = reg.fails(
        &[
            "key",
            "add",
            "x",
            "--public-key",
            "/dev/zero",
            "--env",
            "prod",
        ],
        2,
    );
    assert!(
        err.contains("MG0707") && err.contains("larger than"),
        "{err}"
    );
    let (_, err) = reg.fails(&["sign", "signed-chat@1", "--bundle", "/dev/zero"], 2);
    assert!(
        err.contains("MG0707") && err.contains("larger than"),
        "{err}"
    );

    // The key, registered by an admin.
    let added = reg.json(&[
        "key",
        "add",
        "release",
        "--public-key",
        s(&pub_path),
        "--env",
        "prod",
    ]);
    assert_eq!(added["created"], true, "{added:#}");
    let key_id = key.public_key().fingerprint();
    assert_eq!(added["keyId"], key_id);
    assert!(reg.ok(&["key", "list"]).contains(&key_id));

    // Signed through the signer, attached, shown on the version.
    let bundle_out = work.join("signed-chat-1.sig");
    let signed = reg.json(&[
        "sign",
        "signed-chat@1",
        "--signer",
        &signer_ref,
        "--out",
        s(&bundle_out),
    ]);
    assert_eq!(signed["created"], true, "{signed:#}");
    assert_eq!(signed["signerId"], "release");
    assert_eq!(signed["algorithm"], "ecdsa-p256-sha256");
    let shown = reg.ok(&["model", "show", "signed-chat@1"]);
    assert!(shown.contains("signed     by release"), "{shown}");

    // The unmodified model_signing verifies it over a directory of the version's files (named
    // as the registry names them), and refuses it once a byte changes.
    let dir = work.join("signed-chat-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&artifact, dir.join("signed-chat.gguf")).unwrap();
    let o = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&bundle_out),
        "--public_key",
        s(&pub_path),
    ]);
    assert!(
        o.status.success(),
        "model_signing verify:\n{}",
        out_text(&o)
    );
    let mut tampered = weights.clone();
    tampered[100] ^= 1;
    std::fs::write(dir.join("signed-chat.gguf"), &tampered).unwrap();
    let o = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&bundle_out),
        "--public_key",
        s(&pub_path),
    ]);
    assert!(
        !o.status.success(),
        "a tampered byte must fail:\n{}",
        out_text(&o)
    );

    // model_signing's own signature of that (tampered) directory is refused, naming the file;
    // of the true bytes it is attached.
    let theirs = work.join("theirs.sig");
    let o = model_signing(&[
        "sign",
        "key",
        s(&dir),
        "--signature",
        s(&theirs),
        "--private_key",
        s(&key_path),
    ]);
    assert!(o.status.success(), "model_signing sign:\n{}", out_text(&o));
    let (_, err) = reg.fails(&["sign", "signed-chat@1", "--bundle", s(&theirs)], 1);
    assert!(
        err.contains("MG0805") && err.contains("signed-chat.gguf"),
        "{err}"
    );
    std::fs::copy(&artifact, dir.join("signed-chat.gguf")).unwrap();
    let o = model_signing(&[
        "sign",
        "key",
        s(&dir),
        "--signature",
        s(&theirs),
        "--private_key",
        s(&key_path),
    ]);
    assert!(o.status.success(), "model_signing sign:\n{}", out_text(&o));
    let attached = reg.json(&["sign", "signed-chat@1", "--bundle", s(&theirs)]);
    assert_eq!(attached["created"], true, "{attached:#}");
    assert_eq!(attached["keyId"], key_id);

    // Verified on this side: the registry's view, then a policy per environment.
    let text = reg.ok(&["verify-signature", "signed-chat@1"]);
    assert!(
        text.contains("signature valid") && text.contains("release"),
        "{text}"
    );
    let policy = work.join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: release\n    publicKey: |\n      {}\n    environments: [prod]\n",
            key.public_key().to_pem().trim_end().replace('\n', "\n      ")
        ),
    )
    .unwrap();
    let v = reg.json(&[
        "verify-signature",
        "signed-chat@1",
        "--policy",
        s(&policy),
        "--env",
        "prod",
    ]);
    assert_eq!(v["keyId"], key_id, "{v:#}");
    assert_eq!(v["files"][0]["name"], "signed-chat.gguf");
    let (_, err) = reg.fails(
        &[
            "verify-signature",
            "signed-chat@1",
            "--policy",
            s(&policy),
            "--env",
            "staging",
        ],
        1,
    );
    assert!(err.contains("MG0809"), "{err}");

    // A key the registry does not know signs nothing.
    let (_, err) = reg.fails(
        &[
            "sign",
            "signed-chat@1",
            "--signer",
            &format!("file:{}", s(&other_path)),
        ],
        1,
    );
    assert!(err.contains("MG0802"), "{err}");

    // Revoked: every signature by it fails, and it signs nothing new.
    let revoked = reg.json(&["key", "revoke", &key_id, "--reason", "leaked in a CI log"]);
    assert_eq!(revoked["status"], "revoked", "{revoked:#}");
    let (_, err) = reg.fails(&["verify-signature", "signed-chat@1"], 1);
    assert!(err.contains("MG0808") && err.contains("revoked"), "{err}");
    let (_, err) = reg.fails(&["sign", "signed-chat@1", "--signer", &signer_ref], 1);
    assert!(err.contains("MG0803"), "{err}");

    let actions: Vec<String> = reg
        .audit_gapless()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("key.") || a == "model.sign")
        .collect();
    assert_eq!(
        actions,
        ["key.add", "model.sign", "model.sign", "key.revoke"]
    );
    reg.check_clean();
}

#[test]
fn embedded_sqlite() {
    scenario(&Reg::sqlite());
}

#[test]
fn remote_over_sqlite() {
    scenario(&Reg::remote(Reg::sqlite()));
}

#[test]
fn remote_over_postgres_and_seaweedfs() {
    scenario(&Reg::remote(Reg::postgres_s3()));
}
