//! Findings: where (file, line, column, JSON pointer), which rule, what was expected and found,
//! and how to fix it.

use serde::Serialize;

/// How serious a finding is. `Off` findings are dropped before reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Off,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses the levels accepted by the config file and flags (`deny`/`warn`/`allow` as aliases).
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "error" | "deny" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "off" | "allow" => Some(Severity::Off),
            _ => None,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    /// Where the offending token ends (exclusive; same conventions as `line`/`column`); 0 when
    /// only the start is known. Text output underlines `column..end_column` on `line`.
    #[serde(skip_serializing_if = "is_zero")]
    pub end_line: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub end_column: u32,
    /// 0-based index of the YAML document inside the file.
    pub document: usize,
    /// JSON pointer (RFC 6901) of the offending node inside its document.
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A finding at a position; severity is the rule's default until configuration re-levels it.
    pub fn new(
        code: &'static str,
        file: &str,
        pos: crate::yaml::Pos,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: crate::catalog::default_severity(code),
            file: file.to_owned(),
            line: pos.line,
            column: pos.col,
            end_line: 0,
            end_column: 0,
            document: 0,
            pointer: String::new(),
            message: message.into(),
            expected: None,
            found: None,
            hint: None,
        }
    }

    /// A finding about a whole file (I/O, encoding, size).
    pub fn file_level(code: &'static str, file: &str, message: impl Into<String>) -> Self {
        Diagnostic::new(code, file, crate::yaml::Pos::default(), message)
    }

    /// Marks where the offending token ends, so that the report underlines all of it.
    pub fn with_end(mut self, end: crate::yaml::Pos) -> Self {
        self.set_end(end);
        self
    }
    pub fn set_end(&mut self, end: crate::yaml::Pos) {
        if end.line > 0 && (end.line, end.col) > (self.line, self.column) {
            self.end_line = end.line;
            self.end_column = end.col;
        }
    }
    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = pointer.into();
        self
    }
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
    pub fn with_found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_document(mut self, document: usize) -> Self {
        self.document = document;
        self
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Stable rule codes. Never renumber: users put them in configs and CI logs.
pub mod codes {
    pub const IO: &str = "MS0001";
    pub const TOO_LARGE: &str = "MS0002";
    pub const NOT_TEXT: &str = "MS0003";
    pub const EMPTY: &str = "MS0004";
    pub const SYNTAX: &str = "MS0005";
    pub const DUPLICATE_KEY: &str = "MS0006";
    pub const TOO_DEEP: &str = "MS0007";
    pub const ALIAS_LIMIT: &str = "MS0008";
    pub const UNSUPPORTED_YAML: &str = "MS0009";

    pub const API_VERSION: &str = "MS0100";
    pub const KIND: &str = "MS0101";
    pub const UNKNOWN_KEY: &str = "MS0102";
    pub const MISSING_KEY: &str = "MS0103";
    pub const WRONG_TYPE: &str = "MS0104";
    pub const INVALID_VALUE: &str = "MS0105";
    pub const OUT_OF_RANGE: &str = "MS0106";
    pub const INVALID_FORMAT: &str = "MS0107";
    pub const SCHEMA_OTHER: &str = "MS0108";
}
