//! `modelspec explain` documents every finding code the tool prints: each code of the five
//! typed tables (MS documents, MR runtime, MV verify, MG registry, MT trust), and every code-shaped literal in the
//! workspace's sources (so a code emitted outside a table cannot go undocumented).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelspec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelspec"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The codes `explain --list` lists.
fn listed() -> BTreeSet<String> {
    let o = modelspec(&["explain", "--list"]);
    assert_eq!(o.status.code(), Some(0));
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn explain_documents_every_code_of_the_five_tables() {
    let tables: Vec<(&str, &str)> = ms_spec::catalog::RULES
        .iter()
        .map(|r| (r.code, r.summary))
        .chain(ms_runtime::codes::RULES.iter().map(|r| (r.code, r.summary)))
        .chain(ms_verify::check::RULES.iter().map(|r| (r.code, r.title)))
        .chain(
            ms_registry::codes::all()
                .into_iter()
                .map(|c| (c.code, c.title)),
        )
        .chain(
            ms_registry::client_codes::TABLE
                .iter()
                .filter(|c| ms_registry::codes::lookup(c.code).is_none())
                .map(|c| (c.code, c.title)),
        )
        .chain(ms_trust::codes::TABLE.iter().map(|c| (c.code, c.title)))
        .collect();
    let listed = listed();
    let mut seen = BTreeSet::new();
    for (code, summary) in tables {
        assert!(seen.insert(code), "{code} is in two tables");
        assert!(listed.contains(code), "`explain --list` misses {code}");
        let o = modelspec(&["explain", code]);
        assert_eq!(o.status.code(), Some(0), "explain {code}");
        let text = stdout(&o);
        assert!(text.starts_with(code), "{text}");
        assert!(text.contains(summary), "{text}");
    }
    // Runtime codes say who gives them; names work like codes; an unknown code is refused.
    let o = modelspec(&["explain", "context-exceeds-model"]);
    assert!(stdout(&o).contains("MR0106"), "{}", stdout(&o));
    assert!(stdout(&o).contains("runtime"), "{}", stdout(&o));
    let o = modelspec(&["explain", "mv0401"]);
    assert!(stdout(&o).contains("modelspec verify"), "{}", stdout(&o));
    let o = modelspec(&["explain", "mg0705"]);
    assert!(stdout(&o).contains("--artifact PATH"), "{}", stdout(&o));
    assert!(stdout(&o).contains("registry"), "{}", stdout(&o));
    let o = modelspec(&["explain", "mt0106"]);
    assert!(stdout(&o).contains("changed"), "{}", stdout(&o));
    assert!(stdout(&o).contains("trust"), "{}", stdout(&o));
    let o = modelspec(&["explain", "MR9999"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Every `MS`/`MR`/`MV`/`MG`/`MT` + 4 digits word in `text`.
fn codes_in(text: &str, out: &mut BTreeSet<String>) {
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(5) {
        let boundary_before = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let boundary_after = b.get(i + 6).is_none_or(|c| !c.is_ascii_alphanumeric());
        if boundary_before
            && boundary_after
            && b[i] == b'M'
            && matches!(b[i + 1], b'S' | b'R' | b'V' | b'G' | b'T')
            && b[i + 2..i + 6].iter().all(u8::is_ascii_digit)
        {
            out.insert(text[i..i + 6].to_string());
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_code_in_the_sources_is_documented() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(repo().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "{} source files", files.len());
    let mut found = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests (at the end of a file) name codes that do not exist on purpose.
        let emitted = text.split("#[cfg(test)]").next().unwrap_or_default();
        codes_in(emitted, &mut found);
    }
    // The three families all occur, so the scan itself works.
    for family in ["MS", "MR", "MV", "MG", "MT"] {
        assert!(
            found.iter().any(|c| c.starts_with(family)),
            "no {family} code found"
        );
    }
    let listed = listed();
    let missing: Vec<&String> = found.iter().filter(|c| !listed.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "codes in the sources that `modelspec explain` does not know: {missing:?}"
    );
}
