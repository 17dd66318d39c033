//! Hostile or mistaken input at the registry commands: traversal in names, files that do not
//! exist, an empty license, wrong digests, malformed values. Each gets a clear error (code,
//! what was given, what is expected) and an exit code, and changes nothing: the audit trail
//! stays empty and `registry check` stays clean.

mod registry_common;

use registry_common::{Reg, noise, sha256_hex, spec_with_artifact};

fn assert_unchanged(reg: &Reg) {
    let events = reg.json(&["registry", "audit"]);
    assert_eq!(events.as_array().map(Vec::len), Some(0), "{events:#}");
    reg.check_clean();
}

#[test]
fn hostile_input_is_refused_clearly_and_changes_nothing() {
    let reg = Reg::sqlite();
    let work = reg.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let file = work.join("f.bin");
    std::fs::write(&file, noise(1000, 1)).unwrap();
    let f = file.to_str().unwrap();

    // Traversal in an artifact name.
    for name in ["../../etc/passwd", "a/b", "..", ""] {
        let (_, err) = reg.fails(&["artifact", "push", f, "--name", name], 2);
        assert!(
            err.contains("MG0706") && err.contains("--name"),
            "{name}: {err}"
        );
    }
    // A file that does not exist; a directory where a file is expected.
    let (_, err) = reg.fails(&["artifact", "push", "/nonexistent/x.bin"], 2);
    assert!(
        err.contains("MG0707") && err.contains("/nonexistent/x.bin"),
        "{err}"
    );
    let (_, err) = reg.fails(&["artifact", "push", work.to_str().unwrap()], 2);
    assert!(err.contains("MG0707"), "{err}");
    // Malformed ids.
    for id in ["sha256:xyz", "../../etc/passwd", "sha256:../../x"] {
        let (_, err) = reg.fails(&["artifact", "show", id], 2);
        assert!(err.contains("MG0706"), "{id}: {err}");
    }
    // An id that does not exist: not found (exit 1), and pull writes nothing.
    let missing = format!("sha256:{}", sha256_hex(b"nothing"));
    let out = work.join("out.bin");
    reg.fails(
        &["artifact", "pull", &missing, "-o", out.to_str().unwrap()],
        1,
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        1,
        "no temp file left"
    );

    // Datasets: an empty license, a path that does not exist, a traversal name, bad transforms.
    let data = work.join("d");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    let d = data.to_str().unwrap();
    let (_, err) = reg.fails(&["dataset", "register", d, "--license", " "], 2);
    assert!(err.contains("--license"), "{err}");
    let (_, err) = reg.fails(
        &["dataset", "register", "/nonexistent/d", "--license", "MIT"],
        2,
    );
    assert!(err.contains("/nonexistent/d"), "{err}");
    let (_, err) = reg.fails(
        &[
            "dataset",
            "register",
            d,
            "--license",
            "MIT",
            "--name",
            "../evil",
        ],
        1,
    );
    assert!(err.contains("../evil"), "{err}");
    for t in ["prep.py", "prep.py:1234", ":sha256:00"] {
        let (_, err) = reg.fails(
            &[
                "dataset",
                "register",
                d,
                "--license",
                "MIT",
                "--transform",
                t,
            ],
            2,
        );
        assert!(
            err.contains("MG0706") && err.contains("--transform"),
            "{t}: {err}"
        );
    }

    // Models: a spec whose declared digest matches no file we have; an --artifact whose bytes
    // differ from the declared digest is not that artifact.
    let (spec, artifact, sha) = spec_with_artifact(&work, "victim", &noise(5000, 2));
    std::fs::write(&artifact, noise(5000, 3)).unwrap();
    let s = spec.to_str().unwrap();
    let (_, err) = reg.fails(&["model", "register", s], 1);
    assert!(err.contains("MG0705") && err.contains(&sha), "{err}");
    assert!(
        err.contains("/spec/identity/model/artifacts/0/sha256"),
        "{err}"
    );
    let (_, err) = reg.fails(&["model", "register", s, "--artifact", f], 1);
    assert!(err.contains("MG0705"), "{err}");
    // Malformed values.
    for args in [
        ["--metric", "accuracy"],
        ["--metric", "accuracy=high"],
        ["--metric", "x=NaN"],
        ["--parent", "victim"],
        ["--parent", "victim@zero"],
        ["--dataset", "sha256:nothex"],
    ] {
        let mut a = vec!["model", "register", s];
        a.extend(args);
        let (_, err) = reg.fails(&a, 2);
        assert!(
            err.contains("MG0706") && err.contains(args[0]),
            "{args:?}: {err}"
        );
    }
    // A spec that does not exist; a spec that does not validate; a traversal model name.
    let (_, err) = reg.fails(&["model", "register", "/nonexistent/spec.yaml"], 2);
    assert!(err.contains("/nonexistent/spec.yaml"), "{err}");
    let bad = work.join("bad.modelspec.yaml");
    std::fs::write(
        &bad,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata: {}\n",
    )
    .unwrap();
    reg.fails(&["model", "register", bad.to_str().unwrap()], 1);
    let evil = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("name: victim\n", "name: ../../evil\n");
    let evil_path = work.join("evil.modelspec.yaml");
    std::fs::write(&evil_path, evil).unwrap();
    reg.fails(&["model", "register", evil_path.to_str().unwrap()], 1);
    // Looking up what is not there.
    reg.fails(&["model", "show", "../../etc"], 1);
    reg.fails(&["model", "show", "victim@1"], 1);
    reg.fails(&["lineage", "victim@1"], 1);
    let (_, err) = reg.fails(&["model", "list", "--status", "live"], 2);
    assert!(err.contains("draft, staging, prod or deprecated"), "{err}");

    assert_unchanged(&reg);
}

/// A reader that closes the pipe early (`modelspec registry audit --json | head -1`) ends the
/// output, not the process with a panic.
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let reg = Reg::sqlite();
    reg.ok(&[
        "registry", "token", "create", "--name", "ci", "--role", "reader",
    ]);
    let mut child = reg
        .cmd(&["registry", "audit", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.code().is_some(), "{stderr}");
}
