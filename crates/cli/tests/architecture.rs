//! ARCHITECTURE.md against the workspace: its crate graph equals `cargo metadata`'s, every
//! source file has its line and every line a file; and the house rules that a script can
//! check: every `.rs` file starts with `//!`, and each crate's manifest takes its versions from
//! `[workspace.dependencies]` and lists a dependency once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn architecture() -> String {
    let path = root().join("ARCHITECTURE.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace crates: name -> (directory, normal dependencies on workspace crates).
fn metadata() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = m["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|n| names.contains(n))
                .collect();
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap().to_path_buf();
            (p["name"].as_str().unwrap().to_string(), (dir, deps))
        })
        .collect()
}

/// The ```crate-graph block: `crate -> dep, dep` per line.
fn documented_graph(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let block = doc
        .split("```crate-graph\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```crate-graph block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, deps) = l
                .split_once("->")
                .unwrap_or_else(|| panic!("crate-graph line without '->': {l:?}"));
            let deps = deps
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect();
            (name.trim().to_string(), deps)
        })
        .collect()
}

/// The module lines of each `### crate` section: "- `src/path.rs` — what it holds".
fn documented_modules(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            section = Some(h.trim().to_string());
        } else if line.starts_with("## ") {
            section = None;
        } else if let (Some(s), Some(rest)) = (&section, line.strip_prefix("- `"))
            && let Some((path, _)) = rest.split_once('`')
        {
            out.entry(s.clone()).or_default().insert(path.to_string());
        }
    }
    out
}

fn rust_files(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, base, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(base).unwrap();
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn crate_graph_matches_cargo_metadata() {
    let actual = metadata();
    let documented = documented_graph(&architecture());
    let mut problems = Vec::new();
    for (name, (_, deps)) in &actual {
        let Some(doc) = documented.get(name) else {
            problems.push(format!(
                "crate {name} has no line in the crate-graph block (add `{name} -> {}`)",
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        for d in deps.difference(doc) {
            problems.push(format!(
                "missing edge {name} -> {d} (Cargo.toml has it, ARCHITECTURE.md does not)"
            ));
        }
        for d in doc.difference(deps) {
            problems.push(format!(
                "extra edge {name} -> {d} (ARCHITECTURE.md has it, Cargo.toml does not)"
            ));
        }
    }
    for name in documented.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!(
            "crate-graph names {name}, which is not a workspace crate"
        ));
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's crate graph is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_source_file_has_its_line() {
    let doc = architecture();
    let documented = documented_modules(&doc);
    let mut problems = Vec::new();
    for (name, (dir, _)) in metadata() {
        let mut files = BTreeSet::new();
        rust_files(&dir.join("src"), &dir, &mut files);
        let Some(lines) = documented.get(&name) else {
            problems.push(format!(
                "no `### {name}` section listing its modules ({} files)",
                files.len()
            ));
            continue;
        };
        for f in files.difference(lines) {
            problems.push(format!(
                "{name}: `{f}` has no line (add \"- `{f}` — what it holds\" under ### {name})"
            ));
        }
        for f in lines.difference(&files) {
            problems.push(format!("{name}: `{f}` is listed but does not exist"));
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's module index is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let mut problems = Vec::new();
    for (_, (dir, _)) in metadata() {
        let mut files = BTreeSet::new();
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&dir.join(sub), &dir, &mut files);
        }
        for f in files {
            let path = dir.join(&f);
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.starts_with("//!") {
                problems.push(path.display().to_string());
            }
        }
    }
    assert!(
        problems.is_empty(),
        "files that do not start with a `//!` line saying what they are for:\n  {}",
        problems.join("\n  ")
    );
}

/// Dependency sections of a manifest: (section, name, the entry's text), line by line (our
/// manifests keep one entry per line).
fn dependency_entries(manifest: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        if !section.ends_with("dependencies") || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let name = key.trim().trim_end_matches(".workspace").to_string();
            out.push((section.clone(), name, value.trim().to_string()));
        }
    }
    out
}

#[test]
fn manifests_take_versions_from_the_workspace_and_list_each_dependency_once() {
    let mut problems = Vec::new();
    for (name, (dir, _)) in metadata() {
        let path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let entries = dependency_entries(&text);
        for (section, dep, value) in &entries {
            let inherited = value == "true" || value.contains("workspace = true");
            if !inherited {
                problems.push(format!(
                    "{name}: [{section}] {dep} = {value}: take it from [workspace.dependencies]"
                ));
            }
        }
        let normal: BTreeSet<&str> = entries
            .iter()
            .filter(|(s, ..)| s == "dependencies")
            .map(|(_, d, _)| d.as_str())
            .collect();
        for (section, dep, value) in &entries {
            // A dev-dependency entry may add features for the tests, nothing else.
            if section == "dev-dependencies"
                && normal.contains(dep.as_str())
                && !value.contains("features")
            {
                problems.push(format!(
                    "{name}: {dep} is in [dependencies] and again in [dev-dependencies]"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "Cargo manifests:\n  {}",
        problems.join("\n  ")
    );
}
