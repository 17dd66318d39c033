//! `modelspec sign MODEL@VERSION` through a real PKCS#11 token (SoftHSM2, from
//! ms_test_support::softhsm): an Ed25519 and a P-256 key that never leave the token sign a
//! registry version; the registry verifies and attaches each signature; `verify-signature`
//! passes under a trust policy for prod; the unmodified `model_signing` verifies the P-256
//! bundle over a directory of the version's files and fails once a byte changes.

mod registry_common;

use std::path::Path;
use std::process::Output;

use ms_test_support::python::module;
use ms_test_support::softhsm::softhsm;
use registry_common::{Reg, noise, spec_with_artifact};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn model_signing(args: &[&str]) -> Output {
    module("model_signing")
        .args(args)
        .output()
        .expect("model_signing runs")
}

#[test]
fn a_version_signed_inside_softhsm_verifies_here_and_with_model_signing() {
    let hsm = softhsm();
    let token = hsm.token();
    let mut reg = Reg::sqlite();
    reg.env
        .push(("SOFTHSM2_CONF".into(), hsm.conf().display().to_string()));
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let weights = noise(30_000, 11);
    let (spec, artifact, _) = spec_with_artifact(&work, "hsm-chat", &weights);
    reg.json(&["model", "register", s(&spec)]);

    for (object, algorithm) in [("ed25519", "ed25519"), ("p256", "ecdsa-p256-sha256")] {
        let uri = token.uri(object);
        // The public key, read from the token (the private key never leaves it).
        let signer = ms_trust::signer::open_signer(&uri).expect("the token's key");
        let public = work.join(format!("{object}.pub.pem"));
        std::fs::write(&public, signer.public_key().to_pem()).unwrap();
        let name = format!("hsm-{object}");
        reg.json(&[
            "key",
            "add",
            &name,
            "--public-key",
            s(&public),
            "--env",
            "prod",
        ]);

        let out = work.join(format!("{object}.sig"));
        let signed = reg.json(&["sign", "hsm-chat@1", "--signer", &uri, "--out", s(&out)]);
        assert_eq!(signed["created"], true, "{signed:#}");
        assert_eq!(signed["algorithm"], algorithm);
        assert_eq!(signed["keyId"], signer.public_key().fingerprint());

        let policy = work.join(format!("{object}.policy.yaml"));
        std::fs::write(
            &policy,
            format!(
                "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: {name}\n    publicKey: {}\n    environments: [prod]\n",
                s(&public)
            ),
        )
        .unwrap();
        let v = reg.json(&[
            "verify-signature",
            "hsm-chat@1",
            "--policy",
            s(&policy),
            "--env",
            "prod",
        ]);
        assert_eq!(v["signer"], name, "{v:#}");

        if object == "p256" {
            let dir = work.join("hsm-chat-dir");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&artifact, dir.join("hsm-chat.gguf")).unwrap();
            let verify = || {
                model_signing(&[
                    "verify",
                    "key",
                    s(&dir),
                    "--signature",
                    s(&out),
                    "--public_key",
                    s(&public),
                ])
            };
            let o = verify();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let mut tampered = weights.clone();
            tampered[7] ^= 0x80;
            std::fs::write(dir.join("hsm-chat.gguf"), tampered).unwrap();
            assert!(!verify().status.success(), "a changed byte must fail");
        }
    }
    let signatures = reg.json(&["verify-signature", "hsm-chat@1"]);
    assert!(signatures["keyId"].as_str().is_some());
}
