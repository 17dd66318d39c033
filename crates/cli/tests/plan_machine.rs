//! `run` and `serve` check a plan's threads against the machine before loading or binding
//! anything: more threads than cores only with `oversubscribe: true`, never past the ceiling;
//! the refusal points at the plan file's line and column.

use std::process::{Command, Output};

use ms_test_support::oracle_model;

fn tiny() -> String {
    oracle_model("llama-spm-tiny.q4_k_m").display().to_string()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn modelspec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(args)
        .output()
        .unwrap()
}

fn plan_file(dir: &tempfile::TempDir, spec: &str) -> String {
    let path = dir.path().join("p.plan.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {{name: p}}\nspec:\n{spec}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn more_threads_than_cores_are_refused_with_the_pointer_the_cores_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let over = plan_file(&dir, &format!("  threads: {}\n", cores() + 1));
    let model = tiny();
    for args in [
        vec!["run", model.as_str(), "--plan", over.as_str(), "-p", "hi"],
        vec![
            "serve",
            model.as_str(),
            "--port",
            "0",
            "--plan",
            over.as_str(),
        ],
    ] {
        let out = modelspec(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("/spec/threads"), "{stderr}");
        // Compiler-style, as `modelspec validate` prints: where in the plan file, and the code.
        assert!(stderr.contains(&format!("{over}:5:3")), "{stderr}");
        assert!(stderr.contains("error[MR0110]"), "{stderr}");
        assert!(stderr.contains(&format!("{} cores", cores())), "{stderr}");
        assert!(stderr.contains("oversubscribe: true"), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
    // On purpose: runs (with the flag, or the plan's field).
    let out = modelspec(&[
        "run",
        &model,
        "--plan",
        &over,
        "--oversubscribe",
        "-p",
        "hi",
        "-n",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let huge = plan_file(&dir, "  threads: 100000\n  oversubscribe: true\n");
    let out = modelspec(&["run", &model, "--plan", &huge, "-p", "hi"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ceiling"), "{stderr}");
    assert!(stderr.contains(&format!("{huge}:5:3")), "{stderr}");
    assert!(stderr.contains("error[MR0111]"), "{stderr}");
}
