//! End to end with the official `openai` Python package against the real server on loopback,
//! serving the default model (Gemma 3 270M): models, chat and completions, streaming and not,
//! stop strings, errors. The interpreter comes from MODELSPEC_E2E_PYTHON (CI sets it); without
//! it the test makes a venv at target/e2e-venv with `openai` pinned at [`OPENAI_VERSION`].

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::start_with;

const OPENAI_VERSION: &str = "3.54.0";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
}

fn has_openai(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            &format!("import openai, sys; sys.exit(openai.__version__ != {OPENAI_VERSION:?})"),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// MODELSPEC_E2E_PYTHON, or a venv with the pinned client (made once).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MODELSPEC_E2E_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = target_dir().join("e2e-venv");
    let python = venv.join("bin/python");
    if has_openai(&python) {
        return python;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs (needed for the openai client test)");
    assert!(made.success(), "python3 -m venv {} failed", venv.display());
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("openai=={OPENAI_VERSION}"))
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip install openai=={OPENAI_VERSION} failed"
    );
    python
}

#[test]
fn the_official_openai_client_works_against_the_server() {
    let python = python();
    let model = ms_fetch::default_model().expect("the default model");
    let server = start_with(&model.display().to_string(), |c| {
        c.model_id = "gemma3-270m".into()
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/openai_client.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(format!("http://{}", server.addr))
        .arg("gemma3-270m")
        .output()
        .expect("the e2e script runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    eprintln!("{stdout}");
}
