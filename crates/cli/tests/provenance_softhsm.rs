//! `modelspec provenance sign` through a real PKCS#11 token (SoftHSM2, from
//! ms_test_support::softhsm): an Ed25519 and a P-256 key that never leave the token sign every
//! link of a version's chain; the registry verifies each on attach; `modelspec provenance`
//! verifies the chain under a trust policy for prod, and names the links a key it does not
//! trust signed.

mod registry_common;

use std::path::Path;

use ms_test_support::softhsm::softhsm;
use registry_common::{Reg, noise, spec_with_artifact};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_chain_signed_inside_softhsm_verifies_under_a_prod_policy() {
    let hsm = softhsm();
    let token = hsm.token();
    let mut reg = Reg::sqlite();
    reg.env
        .push(("SOFTHSM2_CONF".into(), hsm.conf().display().to_string()));
    let work = reg.path("work");
    std::fs::create_dir_all(work.join("corpus")).unwrap();
    std::fs::write(work.join("corpus/a.txt"), "hello\n").unwrap();
    let ds = reg.json(&[
        "dataset",
        "register",
        s(&work.join("corpus")),
        "--license",
        "MIT",
    ]);
    let dataset = format!("dataset:{}", ds["datasetId"].as_str().unwrap());
    let (spec, _, _) = spec_with_artifact(&work, "hsm-prov", &noise(20_000, 5));
    reg.json(&["model", "register", s(&spec), "--dataset", &dataset[8..]]);

    for object in ["ed25519", "p256"] {
        let uri = token.uri(object);
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
        for subject in ["model:hsm-prov@1", dataset.as_str()] {
            let signed = reg.json(&["provenance", "sign", subject, "--signer", &uri]);
            assert_eq!(signed["keyId"], signer.public_key().fingerprint());
        }
        let policy = work.join(format!("{object}.policy.yaml"));
        std::fs::write(
            &policy,
            format!(
                "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: {name}\n    publicKey: {}\n    environments: [prod]\n",
                s(&public)
            ),
        )
        .unwrap();
        let chain = reg.json(&[
            "provenance",
            "hsm-prov@1",
            "--policy",
            s(&policy),
            "--env",
            "prod",
        ]);
        assert_eq!(chain["verified"], true, "{chain:#}");
        let signers: Vec<&str> = chain["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["signedBy"].as_str().unwrap())
            .collect();
        assert_eq!(signers, [name.as_str(), name.as_str()]);
    }
    // The policy of the first key does not trust the second one's signatures (the newest).
    let (out, _) = reg.fails(
        &[
            "provenance",
            "hsm-prov@1",
            "--policy",
            s(&work.join("ed25519.policy.yaml")),
            "--json",
        ],
        1,
    );
    let chain: Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = chain["links"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["problems"].as_array().unwrap())
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["MG0912", "MG0912"], "{chain:#}");
}
