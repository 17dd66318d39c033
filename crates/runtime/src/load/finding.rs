//! One finding about a plan or spec document as an API returns it, and the text rendering of
//! findings as `modelspec validate` prints them.

use ms_spec::{Diagnostic, Severity, Source};
use serde::Serialize;

use crate::plan::PlanProblem;

/// One finding about a plan or spec document, as an API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanFinding {
    /// A rule code (`MS0102`, `MS0803`, ... see `modelspec explain`), or for what only the
    /// runtime knows (the machine, the model, the spec's limits) one of [`codes`](super::codes).
    pub code: String,
    pub severity: Severity,
    /// The document: a path or `<inline plan NAME>`.
    pub source: String,
    /// 1-based; 0 when not known (a field set elsewhere than in a document).
    pub line: u32,
    pub column: u32,
    /// JSON pointer into the document.
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What the field may be, when the finding is about a value (also in `message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl PlanFinding {
    /// A problem of the effective plan, located at `source` (`line:column` when known).
    pub fn from_problem(p: &PlanProblem, source: String, pos: Option<(u32, u32)>) -> Self {
        PlanFinding {
            code: p.code.to_string(),
            severity: p.severity,
            source,
            line: pos.map_or(0, |p| p.0),
            column: pos.map_or(0, |p| p.1),
            pointer: p.pointer.clone(),
            message: p.message.clone(),
            hint: None,
            expected: p.expected.clone(),
            found: p.found.clone(),
        }
    }
}

impl From<&Diagnostic> for PlanFinding {
    fn from(d: &Diagnostic) -> Self {
        let mut message = d.message.clone();
        if let Some(e) = &d.expected {
            message.push_str(&format!("; expected {e}"));
        }
        if let Some(f) = &d.found {
            message.push_str(&format!(", found {f}"));
        }
        PlanFinding {
            code: d.code.to_string(),
            severity: d.severity,
            source: d.file.clone(),
            line: d.line,
            column: d.column,
            pointer: d.pointer.clone(),
            message,
            hint: d.hint.clone(),
            expected: d.expected.clone(),
            found: d.found.clone(),
        }
    }
}

/// The problems of a plan that cannot run, located (`findings`, in the same order), as
/// `modelspec validate` prints findings: `file:line:col`, code, message, the line with a caret,
/// expected and found. `sources` are the texts of the documents the findings point into.
pub(crate) fn render_problems(
    problems: &[PlanProblem],
    findings: &[PlanFinding],
    sources: &[Option<Source>],
) -> String {
    let mut results: Vec<ms_spec::FileResult> = Vec::new();
    for (p, f) in problems.iter().zip(findings) {
        let diag = Diagnostic {
            code: p.code,
            severity: p.severity,
            file: f.source.clone(),
            line: f.line,
            column: f.column,
            end_line: 0,
            end_column: 0,
            document: 0,
            pointer: f.pointer.clone(),
            message: f.message.clone(),
            expected: f.expected.clone(),
            found: f.found.clone(),
            hint: f.hint.clone(),
        };
        match results.iter_mut().find(|r| r.name == f.source) {
            Some(r) => r.diagnostics.push(diag),
            None => results.push(ms_spec::FileResult {
                name: f.source.clone(),
                source: sources
                    .iter()
                    .flatten()
                    .find(|s| {
                        s.name == f.source
                            || s.path
                                .as_ref()
                                .is_some_and(|p| p.display().to_string() == f.source)
                    })
                    .cloned(),
                diagnostics: vec![diag],
            }),
        }
    }
    ms_spec::report::text(&results, false)
}

/// Findings as `modelspec validate` prints them (with source snippets when the text is known).
pub(crate) fn render(name: &str, source: Option<Source>, diags: &[Diagnostic]) -> String {
    let result = ms_spec::FileResult {
        name: name.to_string(),
        source,
        diagnostics: diags.to_vec(),
    };
    ms_spec::report::text(std::slice::from_ref(&result), false)
}
