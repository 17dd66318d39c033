//! The Python interpreter of the server's end-to-end tests, with the packages they use pinned:
//! the official `openai` client, and `opentelemetry-proto` (with `protobuf`) to decode the
//! spans the server exports. MODELSPEC_E2E_PYTHON names it when set (CI sets it, and
//! `.ci/run` installs the same pins); otherwise a venv at target/e2e-venv is made or completed
//! once.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Keep in step with the pip line of `.ci/run`.
pub const PACKAGES: &[(&str, &str)] = &[
    ("openai", "3.54.0"),
    ("opentelemetry-proto", "1.45.2"),
    ("protobuf", "7.36.2"),
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
}

fn has_packages(python: &Path) -> bool {
    let wanted: Vec<String> = PACKAGES
        .iter()
        .map(|(n, v)| format!("({n:?}, {v:?})"))
        .collect();
    let script = format!(
        "import importlib.metadata as m, sys\nsys.exit(any(m.version(n) != v for n, v in [{}]))",
        wanted.join(", ")
    );
    Command::new(python)
        .args(["-c", &script])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// MODELSPEC_E2E_PYTHON, or the venv with the pinned packages.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MODELSPEC_E2E_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = target_dir().join("e2e-venv");
    let python = venv.join("bin/python");
    if has_packages(&python) {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs (needed for the end-to-end tests)");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
    }
    let pins: Vec<String> = PACKAGES.iter().map(|(n, v)| format!("{n}=={v}")).collect();
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&pins)
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip install {} failed", pins.join(" "));
    python
}
