//! Rendering findings: compiler-style text, JSON, and SARIF 2.1.0 for code-scanning UIs.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::catalog;
use crate::diag::{Diagnostic, Severity};
use crate::source::Source;

/// One checked input: its findings and, when it could be read, its text for snippets.
pub struct FileResult {
    pub name: String,
    pub source: Option<Source>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
}

pub fn summarize(results: &[FileResult]) -> Summary {
    let mut s = Summary {
        files: results.len(),
        ..Summary::default()
    };
    for d in results.iter().flat_map(|r| &r.diagnostics) {
        match d.severity {
            Severity::Error => s.errors += 1,
            Severity::Warning => s.warnings += 1,
            Severity::Off => {}
        }
    }
    s
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Text for a terminal or a log. `color` adds ANSI colours (the caller decides: TTY, NO_COLOR).
pub fn text(results: &[FileResult], color: bool) -> String {
    let st = Style { on: color };
    let mut out = String::new();
    for r in results {
        for d in &r.diagnostics {
            write_diag(&mut out, &st, d, r.source.as_ref());
        }
    }
    let s = summarize(results);
    let files = format!("{} file{}", s.files, if s.files == 1 { "" } else { "s" });
    if s.errors == 0 && s.warnings == 0 {
        let _ = writeln!(
            out,
            "{} {files} checked, no problems found",
            st.paint("1;32", "ok:")
        );
    } else {
        let _ = writeln!(
            out,
            "{} {files} checked: {} error{}, {} warning{}",
            st.paint("1", "summary:"),
            s.errors,
            if s.errors == 1 { "" } else { "s" },
            s.warnings,
            if s.warnings == 1 { "" } else { "s" }
        );
    }
    out
}

fn write_diag(out: &mut String, st: &Style, d: &Diagnostic, src: Option<&Source>) {
    let (label, color) = match d.severity {
        Severity::Error => ("error", "1;31"),
        _ => ("warning", "1;33"),
    };
    let _ = writeln!(
        out,
        "{} {}",
        st.paint(color, &format!("{label}[{}]:", d.code)),
        st.paint("1", &d.message)
    );
    let doc = if d.document > 0 {
        format!(" (document {})", d.document + 1)
    } else {
        String::new()
    };
    let arrow = st.paint("1;34", "-->");
    if d.line == 0 {
        let _ = writeln!(out, "  {arrow} {}{doc}", d.file);
    } else {
        let _ = writeln!(out, "  {arrow} {}:{}:{}{doc}", d.file, d.line, d.column);
    }
    let width = d.line.to_string().len();
    let bar = st.paint("1;34", "|");
    if let Some(line) = src.and_then(|s| s.line_text(d.line)) {
        // One column per character, and no control character reaches the terminal (an ESC in
        // a hostile file must not drive it).
        let line: String = line
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{fffd}',
                c => c,
            })
            .collect();
        let pad = " ".repeat(width);
        let len = line.chars().count();
        let caret_at = usize::try_from(d.column.saturating_sub(1))
            .unwrap_or(0)
            .min(len);
        // The whole token is underlined when its end is known and on the same line.
        let carets = if d.end_line == d.line && d.end_column > d.column {
            usize::try_from(d.end_column - d.column)
                .unwrap_or(1)
                .min(len.saturating_sub(caret_at))
                .max(1)
        } else {
            1
        };
        let (line, caret_at, carets) = snippet_window(&line, caret_at, carets);
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(
            out,
            "{} {bar} {line}",
            st.paint("1;34", &d.line.to_string())
        );
        let _ = writeln!(
            out,
            "{pad} {bar} {}{}",
            " ".repeat(caret_at),
            st.paint(color, &"^".repeat(carets))
        );
    }
    let pad = " ".repeat(width.max(1));
    let eq = st.paint("1;34", "=");
    if !d.pointer.is_empty() {
        let _ = writeln!(out, "{pad} {eq} at: {}", d.pointer);
    }
    if let Some(e) = &d.expected {
        let _ = writeln!(out, "{pad} {eq} expected: {e}");
    }
    if let Some(f) = &d.found {
        let _ = writeln!(out, "{pad} {eq} found: {f}");
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "{pad} {eq} {} {h}", st.paint("1;36", "hint:"));
    }
    let _ = writeln!(out);
}

/// The most characters of a source line a finding shows: a minified or hostile file (one line
/// of megabytes) must not flood the terminal.
const SNIPPET_CHARS: usize = 120;

/// The part of `line` to print around the caret, with `…` where it was cut, and the caret's
/// column and width within it.
fn snippet_window(line: &str, caret_at: usize, carets: usize) -> (String, usize, usize) {
    let len = line.chars().count();
    if len <= SNIPPET_CHARS {
        return (line.to_owned(), caret_at, carets);
    }
    // Some context before the caret, the rest after it.
    let start = caret_at
        .saturating_sub(SNIPPET_CHARS / 3)
        .min(len - SNIPPET_CHARS);
    let end = start + SNIPPET_CHARS;
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(line.chars().skip(start).take(SNIPPET_CHARS));
    if end < len {
        shown.push('…');
    }
    let at = caret_at - start + usize::from(start > 0);
    let width = carets.min(end - caret_at.min(end)).max(1);
    (shown, at, width)
}

/// `{"files":N,"errors":E,"warnings":W,"diagnostics":[...]}`.
pub fn json(results: &[FileResult]) -> String {
    let s = summarize(results);
    // Each finding also carries its rule's name, so consumers need not keep the catalog.
    let diags: Vec<Value> = results
        .iter()
        .flat_map(|r| &r.diagnostics)
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            if let (Value::Object(m), Some(rule)) = (&mut v, catalog::lookup(d.code)) {
                m.insert("rule".into(), Value::String(rule.name.into()));
            }
            v
        })
        .collect();
    let v = json!({
        "files": s.files,
        "errors": s.errors,
        "warnings": s.warnings,
        "diagnostics": diags,
    });
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_default();
    out.push('\n');
    out
}

/// SARIF 2.1.0: one run, every rule in the catalog, one result per finding.
pub fn sarif(results: &[FileResult]) -> String {
    let rules: Vec<Value> = catalog::RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.doc},
                "defaultConfiguration": {"level": sarif_level(r.default)},
            })
        })
        .collect();
    let res: Vec<Value> = results
        .iter()
        .flat_map(|r| &r.diagnostics)
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(e) = &d.expected {
                let _ = write!(text, "; expected {e}");
            }
            if let Some(f) = &d.found {
                let _ = write!(text, "; found {f}");
            }
            if let Some(h) = &d.hint {
                let _ = write!(text, "; hint: {h}");
            }
            let mut phys = json!({"artifactLocation": {"uri": d.file.replace('\\', "/")}});
            if d.line > 0 {
                phys["region"] = json!({"startLine": d.line, "startColumn": d.column});
                if d.end_line > 0 {
                    phys["region"]["endLine"] = json!(d.end_line);
                    phys["region"]["endColumn"] = json!(d.end_column);
                }
            }
            json!({
                "ruleId": d.code,
                "ruleIndex": catalog::RULES.iter().position(|r| r.code == d.code).unwrap_or(0),
                "level": sarif_level(d.severity),
                "message": {"text": text},
                "locations": [{"physicalLocation": phys}],
                "properties": {"pointer": d.pointer, "document": d.document},
            })
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "modelspec",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": res,
        }],
    });
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_default();
    out.push('\n');
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Off => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("{}key: {}", "a".repeat(5_000), "b".repeat(20_000));
        let (shown, at, width) = snippet_window(&line, 5_000, 3);
        assert!(
            shown.chars().count() <= SNIPPET_CHARS + 2,
            "{}",
            shown.len()
        );
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        let under: String = shown.chars().skip(at).take(width).collect();
        assert_eq!(under, "key");
        // Short lines are shown whole; a caret at the start of a long line keeps its column.
        assert_eq!(snippet_window("a: b", 3, 1), ("a: b".to_owned(), 3, 1));
        let (shown, at, _) = snippet_window(&line, 0, 1);
        assert_eq!((shown.chars().next(), at), (Some('a'), 0));
        // A caret past the end of the window (at the end of the line) stays visible.
        let (shown, at, width) = snippet_window(&line, line.chars().count(), 1);
        assert!(at <= shown.chars().count() && width == 1, "{at} {shown}");
    }
}
