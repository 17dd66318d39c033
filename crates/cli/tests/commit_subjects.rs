//! `.ci/check-commits` on throwaway repositories: a subject over 72 characters after the
//! baseline fails and is named; older history, a shallow clone without the baseline and an
//! unrelated history never fail spuriously.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/check-commits")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with one empty commit per subject; returns each commit's hash.
fn repo(dir: &Path, subjects: &[&str]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    subjects
        .iter()
        .map(|s| {
            git(dir, &["commit", "-q", "--allow-empty", "-m", s]);
            git(dir, &["rev-parse", "HEAD"])
        })
        .collect()
}

/// Runs the script from inside `dir` (it checks the repository it lives in).
fn check(dir: &Path, baseline: &str) -> Output {
    std::fs::create_dir_all(dir.join(".ci")).unwrap();
    std::fs::copy(script(), dir.join(".ci/check-commits")).unwrap();
    Command::new("bash")
        .arg(dir.join(".ci/check-commits"))
        .env("MODELSPEC_COMMIT_BASELINE", baseline)
        .output()
        .expect("bash runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const LONG: &str = "ms-engine: a subject that goes on and on past the limit of seventy-two chars";

#[test]
fn long_subjects_after_the_baseline_fail_and_older_ones_do_not() {
    assert!(LONG.chars().count() > 72);
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let hashes = repo(dir, &[LONG, "baseline", "ms-quant: short and clear"]);
    let ok = check(dir, &hashes[1]);
    assert!(ok.status.success(), "{}", text(&ok));

    git(dir, &["commit", "-q", "--allow-empty", "-m", LONG]);
    let bad = check(dir, &hashes[1]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains(LONG), "{}", text(&bad));
    assert!(text(&bad).contains("76 characters"), "{}", text(&bad));

    // Characters, not bytes: 72 characters with multi-byte ones pass.
    let dir2 = t.path().join("utf8");
    let subject = format!("ms-spec: {}", "é".repeat(63));
    assert_eq!(subject.chars().count(), 72);
    let h = repo(&dir2, &["baseline", &subject]);
    let ok = check(&dir2, &h[0]);
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn shallow_clones_and_foreign_histories_never_fail_spuriously() {
    let t = tempfile::tempdir().unwrap();
    let origin = t.path().join("origin");
    let hashes = repo(&origin, &["baseline", LONG, "ms-cli: the newest commit"]);

    // Depth 2 holds the long subject but not the baseline: only HEAD is checked.
    let shallow = t.path().join("shallow");
    let url = format!("file://{}", origin.display());
    git(
        t.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "2",
            &url,
            shallow.to_str().unwrap(),
        ],
    );
    let o = check(&shallow, &hashes[0]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("checking HEAD only"), "{}", text(&o));

    // A full history that does not hold the baseline: skipped with a note.
    let o = check(&origin, "0123456789012345678901234567890123456789");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("skipped"), "{}", text(&o));
}
