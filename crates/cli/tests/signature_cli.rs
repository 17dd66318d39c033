//! `modelspec signer keygen|sign` and `modelspec verify-signature` end to end, against the real
//! `model_signing` 1.1.1 in both directions: a directory signed by modelspec verifies with
//! `model_signing verify key`, one signed by `model_signing sign key` (with a key file from
//! `modelspec signer keygen`) verifies with modelspec, and a tampered file fails both, named.
//! Trust policies decide per environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ms_test_support::python::module;

fn modelspec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(args)
        .env_remove("MODELSPEC_SIGNER")
        .output()
        .unwrap()
}

fn model_signing(args: &[&str]) -> Output {
    module("model_signing")
        .args(args)
        .output()
        .expect("model_signing runs")
}

fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn model(root: &Path) -> PathBuf {
    let dir = root.join("m");
    for (name, content) in [
        ("config.json", &b"{}"[..]),
        ("weights/w.bin", &[1u8; 5000][..]),
        (".gitignore", b"*.tmp"),
    ] {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn keygen(dir: &Path, alg: &str) -> (PathBuf, PathBuf, String) {
    let key = dir.join(format!("{alg}.pem"));
    let public = dir.join(format!("{alg}.pub.pem"));
    let o = modelspec(&[
        "signer",
        "keygen",
        "--algorithm",
        alg,
        "--out",
        s(&key),
        "--public",
        s(&public),
    ]);
    assert!(o.status.success(), "{}", all(&o));
    let fp = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
    // The public key a signer reports is the one keygen wrote.
    let o = modelspec(&[
        "signer",
        "public-key",
        "--signer",
        &format!("file:{}", s(&key)),
    ]);
    assert!(o.status.success(), "{}", all(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(&public).unwrap()
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&fp),
        "{}",
        all(&o)
    );
    (key, public, fp)
}

#[test]
fn modelspec_signs_model_signing_verifies_and_both_catch_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let (key, public, fp) = keygen(tmp.path(), "p256");

    let o = modelspec(&[
        "signer",
        "sign",
        s(&dir),
        "--signer",
        &format!("file:{}", s(&key)),
    ]);
    assert!(o.status.success(), "{}", all(&o));
    assert!(all(&o).contains(&fp), "{}", all(&o));
    let sig = dir.join("model.sig");
    let o = modelspec(&["verify-signature", s(&dir), "--key", s(&public)]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(all(&o).contains("verified"), "{}", all(&o));
    let o = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--public_key",
        s(&public),
    ]);
    assert!(o.status.success(), "{}", all(&o));

    // A signature written elsewhere: a file named model.sig in the model is then signed.
    let outside = dir.parent().unwrap().join("elsewhere.sig");
    let o = modelspec(&[
        "signer",
        "sign",
        s(&dir),
        "--signer",
        &format!("file:{}", s(&key)),
        "--signature",
        s(&outside),
    ]);
    assert!(o.status.success(), "{}", all(&o));
    assert!(all(&o).contains("signed 3 files"), "{}", all(&o));
    let o = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&outside),
        "--public_key",
        s(&public),
    ]);
    assert!(o.status.success(), "{}", all(&o));

    // A bundle alone: its signature and manifest, listed.
    let o = modelspec(&["verify-signature", s(&sig), "--key", s(&public)]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(all(&o).contains("weights/w.bin"), "{}", all(&o));

    std::fs::write(dir.join("config.json"), b"{ }").unwrap();
    let o = modelspec(&["verify-signature", s(&dir), "--key", s(&public)]);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(
        all(&o).contains("MT0106") && all(&o).contains("config.json: changed"),
        "{}",
        all(&o)
    );
    let o = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--public_key",
        s(&public),
    ]);
    assert!(
        !o.status.success() && all(&o).contains("config.json"),
        "{}",
        all(&o)
    );
}

#[test]
fn model_signing_signs_with_our_key_file_and_modelspec_verifies_under_a_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let (key, public, fp) = keygen(tmp.path(), "p256");
    let sig = tmp.path().join("m.sig");
    let o = model_signing(&[
        "sign",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--private_key",
        s(&key),
    ]);
    assert!(o.status.success(), "{}", all(&o));

    let o = modelspec(&[
        "verify-signature",
        s(&dir),
        "--signature",
        s(&sig),
        "--key",
        s(&public),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));

    let policy = tmp.path().join("trust.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: ci\n    publicKey: {}\n    fingerprint: {fp}\n    environments: [staging]\n",
            public.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let verify = |env: &str| {
        modelspec(&[
            "verify-signature",
            s(&dir),
            "--signature",
            s(&sig),
            "--policy",
            s(&policy),
            "--env",
            env,
        ])
    };
    let o = verify("staging");
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(all(&o).contains("ci ("), "{}", all(&o));
    let o = verify("prod");
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(all(&o).contains("MT0202"), "{}", all(&o));

    std::fs::write(dir.join("weights/extra.bin"), b"?").unwrap();
    let o = verify("staging");
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(all(&o).contains("weights/extra.bin: extra"), "{}", all(&o));
}

#[test]
fn usage_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let (key, _, _) = keygen(tmp.path(), "ed25519");
    // An existing key file is never overwritten.
    let o = modelspec(&[
        "signer",
        "keygen",
        "--algorithm",
        "ed25519",
        "--out",
        s(&key),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("exists"), "{}", all(&o));
    let o = modelspec(&["signer", "sign", s(&dir), "--signer", "s3://nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("MT0003"), "{}", all(&o));
    // No signature yet.
    let o = modelspec(&["verify-signature", s(&dir), "--key", s(&key)]);
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("model.sig"), "{}", all(&o));
    // A garbage bundle names itself and the field.
    std::fs::write(dir.join("model.sig"), b"{}").unwrap();
    let o = modelspec(&["verify-signature", s(&dir), "--key", s(&key)]);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(
        all(&o).contains("MT0101") && all(&o).contains("/mediaType"),
        "{}",
        all(&o)
    );
}
