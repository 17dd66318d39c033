//! End-to-end tests of `modelspec validate`, `schema`, `explain` and `upgrade`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelspec(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .current_dir(dir)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const GOOD: &str = "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata: {name: m}\nspec:\n  identity:\n    model: {id: m, family: f, task: t, framework: llama.cpp}\n  runtime:\n    accelerator: {type: cpu, count: 1}\n";
const MIN_GT_MAX: &str = "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata: {name: m}\nspec:\n  identity:\n    model: {id: m, family: f, task: t, framework: llama.cpp}\n  runtime:\n    accelerator: {type: cpu, count: 1}\n  operations:\n    scaling: {minReplicas: 3, maxReplicas: 1}\n";

#[test]
fn examples_pass_with_exit_0() {
    let o = modelspec(&repo(), &["validate", "examples/"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The v1alpha1 copy of the prod example cannot pin digests: MS0303 warns, nothing else.
    let text = stdout(&o);
    assert!(text.contains(": 0 errors, 2 warnings"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("error") || l.starts_with("warning"))
            .all(|l| l.starts_with("warning[MS0303]")),
        "{text}"
    );
}

#[test]
fn findings_exit_1_and_io_errors_exit_2_without_hiding_other_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), MIN_GT_MAX).unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let o = modelspec(dir.path(), &["validate", "bad.yaml", "good.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("error[MS0203]")
            && out.contains("bad.yaml:10:")
            && out.contains("2 files checked"),
        "{out}"
    );

    let o = modelspec(dir.path(), &["validate", "missing.yaml", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.contains("missing.yaml")
            && out.contains("no such file")
            && out.contains("error[MS0203]"),
        "{out}"
    );
}

#[test]
fn bad_inputs_each_get_one_clear_finding() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("empty.yaml"), "").unwrap();
    std::fs::write(p.join("binary.yaml"), b"\x00\x01\x02GGUF").unwrap();
    std::fs::write(p.join("latin1.yaml"), b"name: caf\xe9\n").unwrap();
    let big = std::fs::File::create(p.join("huge.yaml")).unwrap();
    big.set_len(100 * 1024 * 1024).unwrap();
    std::fs::write(p.join("deep.json"), "[".repeat(1_000_000)).unwrap();
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    std::fs::write(p.join("bomb.yaml"), bomb).unwrap();
    std::fs::write(p.join("good.yaml"), GOOD).unwrap();
    let o = modelspec(p, &["validate", "--format", "json", "."]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["files"], 7);
    let mut found: Vec<(String, String)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("./")
                    .to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let expect = [
        ("binary.yaml", "MS0003"),
        ("bomb.yaml", "MS0008"),
        ("deep.json", "MS0007"),
        ("empty.yaml", "MS0004"),
        ("huge.yaml", "MS0002"),
        ("latin1.yaml", "MS0003"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(found, expect);
}

#[test]
fn directory_without_specs_and_unmatched_glob_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hi").unwrap();
    let o = modelspec(dir.path(), &["validate", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("directory contains no spec files"),
        "{}",
        stdout(&o)
    );
    let o = modelspec(dir.path(), &["validate", "*.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("pattern matches no files"));
}

#[test]
fn globs_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join("specs/a.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("specs/b.yml"), MIN_GT_MAX).unwrap();
    let o = modelspec(dir.path(), &["validate", "specs/*.y*ml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("specs/b.yml:10:"), "{}", stdout(&o));

    let mut child = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(MIN_GT_MAX.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("<stdin>:10:"), "{}", stdout(&o));
}

#[test]
fn colour_only_when_asked_or_on_a_tty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), MIN_GT_MAX).unwrap();
    // Not a TTY here: no escapes by default.
    let o = modelspec(dir.path(), &["validate", "bad.yaml"]);
    assert!(!stdout(&o).contains('\x1b'));
    let o = modelspec(dir.path(), &["validate", "--color", "always", "bad.yaml"]);
    assert!(stdout(&o).contains("\x1b[1;31merror[MS0203]:"));
    let o = Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .current_dir(dir.path())
        .args(["validate", "bad.yaml"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\x1b'));
}

#[test]
fn levels_from_flags_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), MIN_GT_MAX).unwrap();
    let o = modelspec(dir.path(), &["validate", "--warn", "MS0203", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("warning[MS0203]"));
    let o = modelspec(
        dir.path(),
        &[
            "validate",
            "--warn",
            "MS0203",
            "--deny-warnings",
            "bad.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let o = modelspec(
        dir.path(),
        &[
            "validate",
            "--allow",
            "min-replicas-exceeds-max",
            "bad.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("MS0203"));
    let o = modelspec(dir.path(), &["validate", "--deny", "MS0230", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean MS0203"));

    std::fs::write(
        dir.path().join(".modelspec.yaml"),
        "rules:\n  MS0203: off\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let o = modelspec(&dir.path().join("sub"), &["validate", "../bad.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = modelspec(dir.path(), &["validate", "--no-config", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    // Flags win over the file.
    let o = modelspec(dir.path(), &["validate", "--deny", "MS0203", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(dir.path().join(".modelspec.yaml"), "rules:\n  MS0203: of\n").unwrap();
    let o = modelspec(dir.path(), &["validate", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(".modelspec.yaml:2:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sarif_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), MIN_GT_MAX).unwrap();
    let o = modelspec(dir.path(), &["validate", "--format", "sarif", "bad.yaml"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "MS0203");
    let o = modelspec(dir.path(), &["validate", "--format", "json", "bad.yaml"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["diagnostics"][0]["pointer"],
        "/spec/operations/scaling/minReplicas"
    );
}

#[test]
fn schema_command_prints_the_committed_schemas() {
    for (api, draft, file) in [
        ("v1", "2020-12", "modelspec.v1.schema.json"),
        ("v1alpha1", "07", "modelspec.v1alpha1.draft-07.schema.json"),
        ("plan", "07", "executionplan.v1.draft-07.schema.json"),
    ] {
        let o = modelspec(&repo(), &["schema", "--api", api, "--draft", draft]);
        assert_eq!(o.status.code(), Some(0));
        let committed = std::fs::read_to_string(repo().join("schema").join(file)).unwrap();
        assert_eq!(stdout(&o), committed, "{file}");
    }
}

#[test]
fn explain_documents_rules() {
    let o = modelspec(&repo(), &["explain", "MS0203"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("minReplicas exceeds scaling.maxReplicas"));
    let o = modelspec(&repo(), &["explain", "--list"]);
    assert!(stdout(&o).lines().count() >= 45);
    let o = modelspec(&repo(), &["explain", "MS9999"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn upgrade_writes_v1_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("examples/v1alpha1/04-scaling.modelspec.yaml");
    std::fs::copy(&src, dir.path().join("a.yaml")).unwrap();
    let o = modelspec(dir.path(), &["upgrade", "a.yaml", "-o", "b.yaml"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let b = std::fs::read_to_string(dir.path().join("b.yaml")).unwrap();
    assert!(b.contains("apiVersion: modelspec/v1") && b.contains("- role: weights"));
    let o = modelspec(dir.path(), &["validate", "b.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = modelspec(dir.path(), &["upgrade", "--in-place", "a.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
        b
    );
    // Nothing but the target file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);
    // Invalid input is refused with exit 1 and the file is untouched.
    std::fs::write(
        dir.path().join("c.yaml"),
        "apiVersion: piqc.ai/v1alpha1\nkind: ModelSpec\nmetadata: {name: m, extra: 1}\n",
    )
    .unwrap();
    let o = modelspec(dir.path(), &["upgrade", "-i", "c.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        std::fs::read_to_string(dir.path().join("c.yaml"))
            .unwrap()
            .contains("v1alpha1")
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The finding codes of a text report (`error[MS0203]: ...` lines).
fn finding_codes(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("error[")
                .or_else(|| l.strip_prefix("warning["))?;
            Some(rest.split(']').next()?.to_owned())
        })
        .collect()
}

/// `upgrade FILE` checks its input as `validate FILE` does: the same finding codes and the same
/// exit code, for every document of the invalid corpus.
#[test]
fn upgrade_and_validate_agree_on_the_invalid_corpus() {
    let spec = repo().join("crates/spec");
    let out = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(spec.join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".expected"))
        .collect();
    names.sort();
    assert!(names.len() >= 40);
    for name in names {
        let file = format!("tests/fixtures/invalid/{name}");
        let v = modelspec(&spec, &["validate", "--color", "never", &file]);
        let target = out.path().join(&name);
        let u = modelspec(&spec, &["upgrade", &file, "-o", target.to_str().unwrap()]);
        assert_eq!(
            v.status.code(),
            u.status.code(),
            "{name}: validate and upgrade disagree on the exit code\n{}\n{}",
            stdout(&v),
            stderr(&u)
        );
        assert_eq!(
            finding_codes(&stdout(&v)),
            finding_codes(&stderr(&u)),
            "{name}: validate and upgrade report different findings\n{}\n{}",
            stdout(&v),
            stderr(&u)
        );
        // Refused input leaves nothing behind.
        assert_eq!(target.exists(), u.status.code() == Some(0), "{name}");
    }
}

/// Upstream-shaped documents (specRefs to specs not shipped, an owner annotation, one repository
/// for weights and tokenizer) validate with exit 0; their upgrades add no finding code.
#[test]
fn upstream_shaped_documents_validate_and_upgrade() {
    let dir = repo().join("crates/spec/tests/fixtures/upstream");
    let o = modelspec(&dir, &["validate", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("warning[MS0502]"), "{}", stdout(&o));
    // --strict-refs fails the run for required dependencies only.
    let o = modelspec(
        &dir,
        &[
            "validate",
            "--strict-refs",
            "06-unshipped-dependencies.modelspec.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("error[MS0502]: specRef `./query-embedder.modelspec.yaml`"));
    assert!(stdout(&o).contains("warning[MS0502]: specRef `./passage-reranker.modelspec.yaml`"));
    for name in [
        "01-shared-repository.modelspec.yaml",
        "06-unshipped-dependencies.modelspec.yaml",
        "08-production.modelspec.yaml",
    ] {
        let before = modelspec(&dir, &["validate", name]);
        // Written beside the input (specRefs resolve alike), removed afterwards.
        let out = format!(".{name}.upgraded.yaml");
        let u = modelspec(&dir, &["upgrade", name, "-o", &out]);
        let after = modelspec(&dir, &["validate", &out]);
        let _ = std::fs::remove_file(dir.join(&out));
        assert_eq!(u.status.code(), Some(0), "{name}: {}", stderr(&u));
        let new: Vec<_> = finding_codes(&stdout(&after))
            .difference(&finding_codes(&stdout(&before)))
            .cloned()
            .collect();
        assert!(
            new.is_empty(),
            "{name}: upgrade added {new:?}\n{}",
            stdout(&after)
        );
    }
    let o = modelspec(&dir, &["explain", "MS0502"]);
    assert!(stdout(&o).contains("--strict-refs"), "{}", stdout(&o));
}

/// A 1 MB scalar referenced 5,000 times is refused at the 64 MiB expansion limit, quickly and
/// with a finding that names the limit and the alias, instead of expanding to 5 GB.
#[test]
fn alias_expansion_is_bounded_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = format!(
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: m\n  description: &big \"{}\"\n  labels:\n    many:\n",
        "x".repeat(1 << 20)
    );
    for _ in 0..5_000 {
        doc.push_str("      - *big\n");
    }
    std::fs::write(dir.path().join("bomb.yaml"), doc).unwrap();
    let o = modelspec(dir.path(), &["validate", "bomb.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("error[MS0008]"), "{text}");
    assert!(text.contains("64 MiB"), "{text}");
    assert!(text.contains("the alias at "), "{text}");
}

/// A `.json` file is read as JSON: what YAML would accept is an error at its position.
#[test]
fn json_files_are_strict_json() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"apiVersion": "modelspec/v1", "kind": "ModelSpec", "metadata": {"name": "m"},
 "spec": {"identity": {"model": {"id": "m", "family": "f", "task": "t", "framework": "llama.cpp"}},
          "runtime": {"accelerator": {"type": "cpu", "count": 1}}}}
"#;
    std::fs::write(dir.path().join("good.json"), good).unwrap();
    let o = modelspec(dir.path(), &["validate", "good.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let comma = good.replace("\"count\": 1}", "\"count\": 1,}");
    std::fs::write(dir.path().join("comma.json"), &comma).unwrap();
    let o = modelspec(dir.path(), &["validate", "comma.json"]);
    assert_eq!(o.status.code(), Some(1));
    // The caret is on the comma to remove (1-based column).
    let col = comma.lines().nth(2).unwrap().find(",}").unwrap() + 1;
    assert!(
        stdout(&o).contains(&format!("comma.json:3:{col}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("trailing comma"), "{}", stdout(&o));
    let comment = good.replace("\"metadata\"", "// a comment\n \"metadata\"");
    std::fs::write(dir.path().join("comment.json"), &comment).unwrap();
    let o = modelspec(dir.path(), &["validate", "comment.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("comment.json:1:53"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("JSON has no comments"),
        "{}",
        stdout(&o)
    );
}
