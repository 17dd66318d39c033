//! The acceptance path with no private key outside the token: a model directory signed
//! (OMS v1.0, Sigstore bundle) by a SoftHSM2 P-256 key, directly through PKCS#11 and through the
//! signing proxy in front of it, verified by the real `model_signing` tool (PyPI
//! `model-signing`); a tampered file makes it fail, naming the file. Ed25519 tokens sign the
//! same DSSE envelope, verified by modelspec.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use ms_test_support::python::module;
use ms_test_support::softhsm::softhsm;
use ms_trust::proxy::ProxySigner;
use ms_trust::proxy::server::{self, ServeOptions};
use ms_trust::{Signer, oms, pkcs11};

const TOKEN: &str = "hsm-model-signing-token-0123456789abcdef";

fn model(root: &Path) -> std::path::PathBuf {
    let dir = root.join("tiny-model");
    for (name, content) in [
        ("config.json", &b"{\"layers\": 2}"[..]),
        ("weights/part-0.bin", &[7u8; 50_000][..]),
        ("tokenizer.json", b"{}"),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn model_signing_verify(dir: &Path, sig: &Path, public: &Path) -> Output {
    module("model_signing")
        .args(["verify", "key"])
        .arg(dir)
        .arg("--signature")
        .arg(sig)
        .arg("--public_key")
        .arg(public)
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

/// Signs `tiny-model` under `root` with `signer` and has `model_signing` verify it; then
/// tampers with a file and has it refuse.
fn signed_and_verified(root: &Path, signer: &dyn Signer) {
    let dir = model(root);
    let resources = oms::hash_directory(&dir).unwrap();
    let bundle = oms::sign(&oms::statement("tiny-model", &resources), signer).unwrap();
    let sig = root.join("model.sig");
    std::fs::write(&sig, bundle.to_json()).unwrap();
    let public = root.join("public.pem");
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();

    let ok = model_signing_verify(&dir, &sig, &public);
    assert!(ok.status.success(), "model_signing refused:\n{}", text(&ok));
    assert!(
        text(&ok).contains("Verification succeeded"),
        "{}",
        text(&ok)
    );

    std::fs::write(dir.join("weights/part-0.bin"), [8u8; 50_000]).unwrap();
    let bad = model_signing_verify(&dir, &sig, &public);
    assert!(
        !bad.status.success(),
        "accepted a tampered model:\n{}",
        text(&bad)
    );
    assert!(text(&bad).contains("weights/part-0.bin"), "{}", text(&bad));
}

#[test]
fn model_signing_verifies_a_model_signed_inside_softhsm2() {
    let token = softhsm().token();
    let tmp = tempfile::tempdir().unwrap();
    let signer = pkcs11::open(&token.uri("p256")).unwrap();
    signed_and_verified(tmp.path(), &signer);
}

#[test]
fn model_signing_verifies_a_model_signed_through_the_proxy() {
    let token = softhsm().token();
    let backend: Arc<dyn Signer> = Arc::new(pkcs11::open(&token.uri("p256")).unwrap());
    let options = ServeOptions {
        log: false,
        ..ServeOptions::new("127.0.0.1:0".parse().unwrap(), TOKEN)
    };
    let proxy = server::start(options, vec![backend]).unwrap();
    let client = ProxySigner::connect(&format!("http://{}", proxy.addr), TOKEN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    signed_and_verified(tmp.path(), &client);
}

#[test]
fn ed25519_tokens_sign_manifests_modelspec_verifies() {
    let token = softhsm().token();
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let signer = pkcs11::open(&token.uri("ed25519")).unwrap();
    let resources = oms::hash_directory(&dir).unwrap();
    let bundle = oms::sign(&oms::statement("tiny-model", &resources), &signer).unwrap();
    let manifest = oms::verify(&bundle, signer.public_key()).unwrap();
    assert_eq!(manifest.model_name, "tiny-model");
}
