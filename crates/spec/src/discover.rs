//! Turning command-line arguments (files, directories, globs, `-`) into the files to check.

use std::path::Path;

use crate::diag::{Diagnostic, codes};

pub const SPEC_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The files to check, in a stable order, and the arguments that named nothing.
#[derive(Debug, Default)]
pub struct Discovery {
    pub files: Vec<String>,
    pub errors: Vec<Diagnostic>,
}

fn is_spec_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SPEC_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Collects spec files under `dir`, sorted, skipping hidden entries (`.git`, `.modelspec.yaml`)
/// and not following symlinked directories (no loops).
fn walk(dir: &Path, out: &mut Vec<String>, errors: &mut Vec<Diagnostic>) {
    let mut stack = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                errors.push(Diagnostic::file_level(
                    codes::IO,
                    &d.display().to_string(),
                    format!("cannot read directory: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t)
                    if (t.is_file() || t.is_symlink()) && is_spec_file(&path) && path.is_file() =>
                {
                    found.push(path)
                }
                _ => {}
            }
        }
    }
    found.sort();
    out.extend(found.into_iter().map(|p| p.display().to_string()));
}

pub fn expand(args: &[String]) -> Discovery {
    let mut disc = Discovery::default();
    for arg in args {
        let before = disc.files.len();
        let path = Path::new(arg);
        if arg == "-" || path.is_file() {
            disc.files.push(arg.clone());
            continue;
        }
        if path.is_dir() {
            walk(path, &mut disc.files, &mut disc.errors);
            if disc.files.len() == before {
                disc.errors.push(
                    Diagnostic::file_level(codes::IO, arg, "directory contains no spec files")
                        .with_expected("*.yaml, *.yml or *.json files (hidden files are skipped)"),
                );
            }
            continue;
        }
        if arg.contains(['*', '?', '[']) {
            match glob::glob(arg) {
                Ok(paths) => {
                    let mut matched: Vec<_> = paths.flatten().collect();
                    matched.sort();
                    for m in matched {
                        if m.is_dir() {
                            walk(&m, &mut disc.files, &mut disc.errors);
                        } else if m.is_file() {
                            disc.files.push(m.display().to_string());
                        }
                    }
                    if disc.files.len() == before {
                        disc.errors.push(Diagnostic::file_level(
                            codes::IO,
                            arg,
                            "pattern matches no files",
                        ));
                    }
                }
                Err(e) => disc.errors.push(Diagnostic::file_level(
                    codes::IO,
                    arg,
                    format!("invalid glob pattern: {e}"),
                )),
            }
            continue;
        }
        let what = if path.exists() {
            "not a regular file or directory"
        } else {
            "no such file or directory"
        };
        disc.errors.push(Diagnostic::file_level(
            codes::IO,
            arg,
            format!("cannot read: {what}"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    disc.files.retain(|f| f == "-" || seen.insert(f.clone()));
    disc
}
