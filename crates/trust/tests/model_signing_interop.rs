//! Interoperability with the real, unmodified OpenSSF `model_signing` tool (PyPI
//! `model-signing==1.1.1`, installed by ms_test_support::python): it verifies our P-256
//! signatures of a model directory and we verify its signatures; a tampered file fails on both
//! sides, and ours names the file. Our Ed25519 bundles (which OMS does not list) are checked
//! with a plain DSSE verification in Python's `cryptography`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ms_test_support::python::{module, python};
use ms_trust::codes::MT0106;
use ms_trust::keyfile::KeyFileSigner;
use ms_trust::{Algorithm, Bundle, Signer as _, oms};

/// A small model: nested files, a name that sorts differently by components than by bytes
/// (`a/b` vs `a.txt`), an empty file, and git files at the root that both sides ignore.
fn model(root: &Path) -> PathBuf {
    let dir = root.join("tiny-model");
    for (name, content) in [
        ("config.json", &b"{\"layers\": 2}"[..]),
        ("a.txt", b"hello"),
        ("a/b", b"nested"),
        ("weights/part-0.bin", &[7u8; 70_000][..]),
        ("weights/empty", b""),
        (".gitattributes", b"*.bin filter=lfs"),
        (".git/HEAD", b"ref: refs/heads/main"),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn model_signing(args: &[&str]) -> Output {
    module("model_signing")
        .args(args)
        .output()
        .expect("model_signing runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn keypair(dir: &Path, alg: Algorithm) -> (KeyFileSigner, PathBuf, PathBuf) {
    let signer = KeyFileSigner::generate(alg).unwrap();
    let private = dir.join(format!("{alg}.key.pem"));
    let public = dir.join(format!("{alg}.pub.pem"));
    signer.save_pkcs8_pem(&private).unwrap();
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();
    (signer, private, public)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn model_signing_verifies_our_p256_signature_and_catches_a_tampered_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let (signer, _, public) = keypair(tmp.path(), Algorithm::EcdsaP256Sha256);
    let resources = oms::hash_directory(&dir).unwrap();
    let bundle = oms::sign(&oms::statement("tiny-model", &resources), &signer).unwrap();
    let sig = dir.join("model.sig");
    std::fs::write(&sig, bundle.to_json()).unwrap();

    let ok = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--public_key",
        s(&public),
    ]);
    assert!(
        ok.status.success(),
        "model_signing refused our signature:\n{}",
        text(&ok)
    );
    assert!(
        text(&ok).contains("Verification succeeded"),
        "{}",
        text(&ok)
    );

    std::fs::write(dir.join("weights/part-0.bin"), [8u8; 70_000]).unwrap();
    let bad = model_signing(&[
        "verify",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--public_key",
        s(&public),
    ]);
    assert!(
        !bad.status.success(),
        "model_signing accepted a tampered model:\n{}",
        text(&bad)
    );
    assert!(text(&bad).contains("weights/part-0.bin"), "{}", text(&bad));
}

#[test]
fn we_verify_model_signing_signatures_and_name_a_tampered_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    // model_signing signs with a key file we wrote: our PKCS#8 PEM is what `cryptography` reads.
    let (signer, private, _) = keypair(tmp.path(), Algorithm::EcdsaP256Sha256);
    let sig = tmp.path().join("tiny-model.sig");
    let out = model_signing(&[
        "sign",
        "key",
        s(&dir),
        "--signature",
        s(&sig),
        "--private_key",
        s(&private),
    ]);
    assert!(
        out.status.success(),
        "model_signing sign failed:\n{}",
        text(&out)
    );

    let bundle = Bundle::from_json(std::fs::read(&sig).unwrap()).unwrap();
    assert_eq!(
        bundle.key_hint(),
        Some(ms_trust::bundle::key_hint(signer.public_key()).as_str())
    );
    let manifest = oms::verify(&bundle, signer.public_key()).unwrap();
    assert_eq!(manifest.model_name, "tiny-model");
    // Both sides hash the same files the same way.
    assert_eq!(manifest.resources, oms::hash_directory(&dir).unwrap());
    manifest.verify_directory(&dir, &[]).unwrap();

    std::fs::write(dir.join("a/b"), b"nestee").unwrap();
    let err = manifest.verify_directory(&dir, &[]).unwrap_err();
    assert_eq!(err.code, MT0106);
    assert!(err.message.contains("a/b: changed"), "{err}");

    // Another key does not verify it.
    let other = KeyFileSigner::generate(Algorithm::EcdsaP256Sha256).unwrap();
    assert!(oms::verify(&bundle, other.public_key()).is_err());
}

/// Our Ed25519 bundles are ordinary DSSE: a verifier that knows nothing of modelspec checks
/// the signature over PAE(payloadType, payload) and reads the statement.
#[test]
fn our_ed25519_bundles_verify_as_plain_dsse_in_python() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let (signer, _, public) = keypair(tmp.path(), Algorithm::Ed25519);
    let bundle = oms::sign(
        &oms::statement("tiny-model", &oms::hash_directory(&dir).unwrap()),
        &signer,
    )
    .unwrap();
    let path = tmp.path().join("ed25519.sig");
    std::fs::write(&path, bundle.to_json()).unwrap();
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
b = json.load(open(sys.argv[1]))
env = b["dsseEnvelope"]
payload = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
key = load_pem_public_key(open(sys.argv[2], "rb").read())
key.verify(base64.b64decode(env["signatures"][0]["sig"]), pae)
st = json.loads(payload)
assert st["predicateType"] == "https://model_signing/signature/v1.0", st
print("verified", len(st["predicate"]["resources"]))
"#;
    let out = Command::new(python())
        .args(["-c", script, s(&path), s(&public)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified 5");
}
