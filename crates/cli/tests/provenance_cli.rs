//! `modelspec provenance` end to end with the real binary: the chain of a version down to its
//! dataset (text and JSON), unsigned links reported, each link signed with `provenance sign`
//! through a key file, verified against the registry's keys, `--key` and `--policy`, and an
//! untrusted key named; embedded SQLite and a `registry serve` in front of it; and a signed
//! record checked as plain DSSE by Python's `cryptography`.

mod registry_common;

use ms_trust::Signer as _;
use ms_trust::keyfile::KeyFileSigner;
use registry_common::{Reg, noise, spec_with_artifact};
use serde_json::Value;

/// (code, subject) of every finding of a chain in `--json` form, sorted.
fn findings(chain: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = chain["links"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["problems"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn keypair(reg: &Reg, name: &str) -> (KeyFileSigner, String, String) {
    let signer = KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap();
    let private = reg.path(&format!("{name}.key.pem"));
    signer.save_pkcs8_pem(&private).unwrap();
    let public = reg.path(&format!("{name}.pub.pem"));
    std::fs::write(&public, signer.public_key().to_pem()).unwrap();
    (
        signer,
        private.display().to_string(),
        public.display().to_string(),
    )
}

fn scenario(reg: &Reg) {
    let work = reg.path("work");
    std::fs::create_dir_all(work.join("corpus")).unwrap();
    std::fs::write(work.join("corpus/a.txt"), "hello\n").unwrap();
    let ds = reg.json(&[
        "dataset",
        "register",
        work.join("corpus").to_str().unwrap(),
        "--license",
        "CC-BY-4.0",
    ]);
    let ds_id = ds["datasetId"].as_str().unwrap().to_string();
    let (spec, _, sha) = spec_with_artifact(&work, "prov-chat", &noise(10_000, 7));
    let spec = spec.to_str().unwrap();
    reg.json(&["model", "register", spec]);
    reg.json(&[
        "model",
        "register",
        spec,
        "--dataset",
        &ds_id,
        "--parent",
        "prov-chat@1",
    ]);
    let dataset = format!("dataset:{ds_id}");
    let subjects = ["model:prov-chat@2", "model:prov-chat@1", dataset.as_str()];

    // Unsigned: every link says so, with its code, and the exit code is 1.
    let (out, _) = reg.fails(&["provenance", "prov-chat@2", "--json"], 1);
    let chain: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(chain["root"], "model:prov-chat@2");
    assert_eq!(chain["verified"], false);
    let mut want: Vec<(String, String)> = subjects
        .iter()
        .map(|s| ("MG0910".to_string(), s.to_string()))
        .collect();
    want.sort();
    assert_eq!(findings(&chain), want, "[{}] {chain:#}", reg.label);
    let (text, _) = reg.fails(&["provenance", "prov-chat@2"], 1);
    assert!(text.contains("error[MG0910]"), "{text}");
    assert!(text.contains("trainedOn"), "{text}");
    assert!(
        text.contains("NOT verified: 3 finding(s) in 3 of 3 link(s)"),
        "{text}"
    );

    // The record, and the artifact listing it.
    let record = reg.json(&["provenance", "show", "prov-chat@2"]);
    let statement: Value = serde_json::from_str(record["statement"].as_str().unwrap()).unwrap();
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let artifact = reg.json(&["artifact", "show", &format!("sha256:{sha}")]);
    let listed: Vec<&str> = artifact["provenanceRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["model:prov-chat@1", "model:prov-chat@2"]);
    let text = reg.ok(&["artifact", "show", &format!("sha256:{sha}")]);
    assert!(text.contains("used by     model:prov-chat@2"), "{text}");

    // Signed with a registered key: verified against the registry's keys, --key, --policy.
    let (_, private, public) = keypair(reg, "release");
    let (_, _, other) = keypair(reg, "other");
    reg.ok(&[
        "key",
        "add",
        "release",
        "--public-key",
        &public,
        "--env",
        "dev",
    ]);
    for s in subjects {
        let signed = reg.json(&[
            "provenance",
            "sign",
            s,
            "--signer",
            &format!("file:{private}"),
        ]);
        assert_eq!(signed["subject"], s);
        assert!(signed["bundle"].is_object(), "{signed:#}");
    }
    let text = reg.ok(&["provenance", "prov-chat@2"]);
    assert!(text.contains("verified: 3 link(s)"), "{text}");
    assert!(text.contains("signed by release"), "{text}");
    reg.ok(&["provenance", "prov-chat@2", "--key", &public]);
    let policy = reg.path("policy.yaml");
    let pem = std::fs::read_to_string(&public).unwrap();
    let indented: String = pem.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        &policy,
        format!(
            "apiVersion: modelspec.dev/v1\nkind: TrustPolicy\nkeys:\n  - name: release\n    \
             publicKey: |\n{indented}    environments: [dev]\n"
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    reg.ok(&[
        "provenance",
        "prov-chat@2",
        "--policy",
        policy,
        "--env",
        "dev",
    ]);
    let (out, _) = reg.fails(
        &[
            "provenance",
            "prov-chat@2",
            "--policy",
            policy,
            "--env",
            "prod",
            "--json",
        ],
        1,
    );
    let chain: Value = serde_json::from_str(&out).unwrap();
    assert!(
        findings(&chain).iter().all(|(c, _)| c == "MG0912"),
        "a key trusted for dev only is not trusted for prod: {chain:#}"
    );
    let (out, _) = reg.fails(&["provenance", "prov-chat@2", "--key", &other, "--json"], 1);
    let chain: Value = serde_json::from_str(&out).unwrap();
    let mut want: Vec<(String, String)> = subjects
        .iter()
        .map(|s| ("MG0912".to_string(), s.to_string()))
        .collect();
    want.sort();
    assert_eq!(findings(&chain), want);

    // An unknown version is an error of the registry, exit 1, with its code.
    let (_, err) = reg.fails(&["provenance", "prov-chat@9"], 1);
    assert!(err.contains("MG0205"), "{err}");
    let (_, err) = reg.fails(&["provenance", "no-version"], 1);
    assert!(err.contains("MG0902"), "{err}");
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
fn the_codes_are_explained() {
    let reg = Reg::sqlite();
    for code in ["MG0907", "MG0909", "MG0910", "MG0911", "MG0912"] {
        let text = reg.ok(&["explain", code]);
        assert!(text.contains(code), "{text}");
    }
}

/// A signed provenance record is ordinary DSSE over the statement's bytes: Python's
/// `cryptography`, knowing nothing of modelspec, verifies it and reads SLSA provenance whose
/// bytes hash to the recorded digest.
#[test]
fn a_signed_record_verifies_as_plain_dsse_in_python() {
    let reg = Reg::sqlite();
    let data = reg.path("corpus");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "hello\n").unwrap();
    let ds = reg.json(&[
        "dataset",
        "register",
        data.to_str().unwrap(),
        "--license",
        "MIT",
    ]);
    let subject = format!("dataset:{}", ds["datasetId"].as_str().unwrap());
    let (_, private, public) = keypair(&reg, "py");
    reg.ok(&["key", "add", "py", "--public-key", &public, "--env", "dev"]);
    reg.ok(&["provenance", "sign", &subject, "--signer", &private]);
    let record = reg.json(&["provenance", "show", &subject]);
    let bundle = reg.path("bundle.json");
    std::fs::write(&bundle, record["bundle"].to_string()).unwrap();
    let script = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
env = json.load(open(sys.argv[1]))["dsseEnvelope"]
payload = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
load_pem_public_key(open(sys.argv[2], "rb").read()).verify(
    base64.b64decode(env["signatures"][0]["sig"]), pae)
st = json.loads(payload)
assert st["predicateType"] == "https://slsa.dev/provenance/v1", st
print(st["subject"][0]["name"], "sha256:" + hashlib.sha256(payload).hexdigest())
"#;
    let out = std::process::Command::new(ms_test_support::python::python())
        .args(["-c", script, bundle.to_str().unwrap(), &public])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{subject} {}", record["statementDigest"].as_str().unwrap())
    );
}
