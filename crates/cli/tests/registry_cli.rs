//! The registry commands as a user runs them, one scenario against every way of reaching a
//! registry: the default embedded one (SQLite + local files under the data directory),
//! embedded PostgreSQL + SeaweedFS (`--registry postgres://… --store s3://…`), and a
//! `modelspec registry serve` child in front of each. Same commands, same answers.

mod registry_common;

use registry_common::{Reg, noise, sha256_hex, spec_with_artifact};

/// Register a model (its artifact pushed from the spec's local file), again (same version),
/// a dataset, a second version trained on it and derived from the first; lineage both ways;
/// list, show, promote, history; push/pull/show an artifact; tokens; audit; check.
fn scenario(reg: &Reg) {
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let weights = noise(300_000, 1);
    let (spec, _artifact, sha) = spec_with_artifact(&work, "tiny-chat", &weights);
    let spec = spec.to_str().unwrap();

    let v1 = reg.json(&["model", "register", spec]);
    assert_eq!(v1["created"], true, "{v1:#}");
    assert_eq!(v1["modelId"], "tiny-chat");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["artifactIds"][0], format!("sha256:{sha}"));
    assert_eq!(v1["createdBy"].as_str().map(|s| !s.is_empty()), Some(true));
    // The same spec, artifacts and lineage again: the existing version, nothing new.
    let again = reg.json(&["model", "register", spec]);
    assert_eq!(again["created"], false, "{again:#}");
    assert_eq!(again["version"], 1);
    assert_eq!(again["digest"], v1["digest"]);
    let text = reg.ok(&["model", "register", spec]);
    assert!(
        text.contains("tiny-chat@1") && text.contains("existing"),
        "{text}"
    );

    // A dataset: a directory of two files.
    let data = work.join("corpus");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), "hello\n").unwrap();
    std::fs::write(data.join("sub/b.txt"), "world\n").unwrap();
    let prep = sha256_hex(b"prep.py");
    let transform = format!("git+https://example.org/prep.py@abc123:sha256:{prep}");
    let ds = reg.json(&[
        "dataset",
        "register",
        data.to_str().unwrap(),
        "--license",
        "CC-BY-4.0",
        "--pii",
        "none",
        "--source",
        "https://example.org/raw",
        "--transform",
        &transform,
    ]);
    assert_eq!(ds["created"], true, "{ds:#}");
    assert_eq!(ds["fileCount"], 2);
    assert_eq!(ds["name"], "corpus");
    let ds_id = ds["datasetId"].as_str().unwrap().to_string();
    let shown = reg.json(&["dataset", "show", &ds_id]);
    assert_eq!(shown["license"], "CC-BY-4.0");
    assert_eq!(
        shown["transformations"][0]["checksum"],
        format!("sha256:{prep}")
    );
    let text = reg.ok(&["dataset", "show", &ds_id]);
    assert!(text.contains("sub/b.txt"), "{text}");

    // Version 2: trained on the dataset, derived from version 1, with a metric and code ref.
    let v2 = reg.json(&[
        "model",
        "register",
        spec,
        "--dataset",
        &ds_id,
        "--parent",
        "tiny-chat@1",
        "--metric",
        "accuracy=0.91",
        "--code-ref",
        "git+https://example.org/train.py@def456",
    ]);
    assert_eq!(v2["created"], true, "{v2:#}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["metrics"]["accuracy"], 0.91);
    assert_ne!(v2["digest"], v1["digest"]);

    let up = reg.json(&["lineage", "tiny-chat@2"]);
    let ids: Vec<&str> = up["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"model:tiny-chat@1"), "{up:#}");
    assert!(ids.contains(&format!("dataset:{ds_id}").as_str()), "{up:#}");
    let tree = reg.ok(&["lineage", "tiny-chat@2"]);
    assert!(tree.starts_with("model:tiny-chat@2"), "{tree}");
    assert!(tree.contains("model:tiny-chat@1"), "{tree}");
    assert!(tree.contains(&ds_id), "{tree}");
    let down = reg.json(&["lineage", &ds_id, "--direction", "down"]);
    assert!(
        down["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == "model:tiny-chat@2"),
        "{down:#}"
    );

    // Listing follows page tokens with --all; one version per page here.
    let page = reg.json(&["model", "list", "--limit", "1"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page:#}");
    assert!(page["nextPageToken"].is_string(), "{page:#}");
    let all = reg.json(&["model", "list", "--limit", "1", "--all"]);
    let mut versions: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, [1, 2], "{all:#}");
    let listed = reg.ok(&["model", "list", "-q", "TINY"]);
    assert!(listed.contains("tiny-chat"), "{listed}");
    let none = reg.json(&["model", "list", "--family", "nope"]);
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    // Promotion moves a pointer and is kept in the history.
    let moved = reg.json(&[
        "model",
        "promote",
        "tiny-chat",
        "2",
        "--to",
        "prod",
        "--reason",
        "evals passed",
    ]);
    assert_eq!(moved["pointer"], "prod");
    assert_eq!(moved["toVersion"], 2);
    let prod = reg.json(&["model", "show", "tiny-chat@prod"]);
    assert_eq!(prod["version"], 2);
    assert!(prod["spec"].as_str().unwrap().contains("tiny-chat"));
    let model = reg.json(&["model", "show", "tiny-chat"]);
    assert_eq!(model["latestVersion"], 2);
    assert_eq!(model["pointers"]["prod"], 2);
    let text = reg.ok(&["model", "show", "tiny-chat"]);
    assert!(text.contains("prod -> 2"), "{text}");
    let history = reg.ok(&["model", "history", "tiny-chat"]);
    assert!(history.contains("registered tiny-chat@1"), "{history}");
    assert!(
        history.contains("moved prod to 2: evals passed"),
        "{history}"
    );

    // Artifacts: push (stored, then already stored), show, pull (verified, atomic).
    let extra = work.join("notes.bin");
    let bytes = noise(1_500_000, 2);
    std::fs::write(&extra, &bytes).unwrap();
    let pushed = reg.json(&["artifact", "push", extra.to_str().unwrap()]);
    assert_eq!(pushed["created"], true, "{pushed:#}");
    let id = pushed["artifactId"].as_str().unwrap().to_string();
    assert_eq!(id, format!("sha256:{}", sha256_hex(&bytes)));
    let text = reg.ok(&["artifact", "push", extra.to_str().unwrap()]);
    assert!(text.contains("already stored"), "{text}");
    let shown = reg.json(&["artifact", "show", &id]);
    assert_eq!(shown["size"], 1_500_000);
    assert_eq!(shown["name"], "notes.bin");
    let out = work.join("pulled.bin");
    reg.ok(&["artifact", "pull", &id, "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);

    // Tokens: the secret is printed once and never listed.
    let created = reg.json(&[
        "registry", "token", "create", "--name", "ci-bot", "--role", "writer",
    ]);
    let secret = created["token"].as_str().unwrap().to_string();
    let token_id = created["info"]["tokenId"].as_str().unwrap().to_string();
    let listed = reg.ok(&["registry", "token", "list"]);
    assert!(
        listed.contains("ci-bot") && !listed.contains(&secret),
        "{listed}"
    );
    let revoked = reg.json(&["registry", "token", "revoke", &token_id]);
    assert!(revoked["revokedAt"].is_string(), "{revoked:#}");

    // Every change audited, in order, without a gap; the registry is healthy.
    let events = reg.audit_gapless();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "model.register",
        "dataset.register",
        "model.promote",
        "token.create",
    ] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    reg.check_clean();
    let text = reg.ok(&["registry", "check"]);
    assert!(text.contains("no problems"), "{text}");
}

#[test]
fn embedded_sqlite_and_local_files_by_default() {
    let reg = Reg::sqlite();
    scenario(&reg);
    // Nothing given: the registry is under the data directory, created on first use.
    assert!(reg.data_dir().join("registry.db").is_file());
    assert!(reg.data_dir().join("blobs").is_dir());
}

#[test]
fn embedded_postgres_and_seaweedfs() {
    scenario(&Reg::postgres_s3());
}

#[test]
fn remote_over_sqlite() {
    scenario(&Reg::remote(Reg::sqlite()));
}

#[test]
fn remote_over_postgres_and_seaweedfs() {
    scenario(&Reg::remote(Reg::postgres_s3()));
}

#[test]
fn flags_name_the_registry_like_the_environment() {
    let reg = Reg::sqlite();
    let db = reg.path("elsewhere/reg.db");
    let url = format!("sqlite://{}", db.display());
    let file = reg.path("x.bin");
    std::fs::write(&file, b"x").unwrap();
    let out = reg.ok(&[
        "artifact",
        "push",
        file.to_str().unwrap(),
        "--registry",
        &url,
    ]);
    assert!(out.contains("stored"), "{out}");
    // The SQLite file was created with its directory, and the blobs beside it.
    assert!(db.is_file());
    assert!(reg.path("elsewhere/blobs").is_dir());
    // …and not in the default place.
    assert!(!reg.data_dir().join("registry.db").exists());
}

#[test]
fn bad_locations_say_what_was_given_and_what_is_accepted() {
    let reg = Reg::sqlite();
    let (_, err) = reg.fails(&["model", "list", "--registry", "mysql://db/x"], 2);
    assert!(
        err.contains("MG0701") && err.contains("mysql://db/x"),
        "{err}"
    );
    assert!(
        err.contains("sqlite://PATH") && err.contains("http(s)://"),
        "{err}"
    );
    let (_, err) = reg.fails(&["model", "list", "--store", "ftp://h/blobs"], 2);
    assert!(
        err.contains("MG0702") && err.contains("s3://BUCKET"),
        "{err}"
    );
    let (_, err) = reg.fails(
        &["model", "list", "--registry", "postgres://u:hunter2@h/db"],
        2,
    );
    assert!(err.contains("MG0703") && !err.contains("hunter2"), "{err}");
    // JSON errors for scripts.
    let (out, _) = reg.fails(&["model", "list", "--registry", "ftp://x", "--json"], 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "MG0701");
    // A remote registry that is not there: unavailable, exit 2, the token never printed.
    let (_, err) = reg.fails(
        &[
            "model",
            "list",
            "--registry",
            "http://127.0.0.1:9",
            "--token",
            "tok-secret-123",
        ],
        2,
    );
    assert!(!err.contains("tok-secret-123"), "{err}");
}
