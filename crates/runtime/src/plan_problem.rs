//! A problem of an effective plan, typed: its code, the JSON pointer of the field, the
//! message, and the expected and found values where they are numbers or names. [`PlanError`]
//! carries every problem that stops a plan; warnings are the same type.

use std::fmt;

use ms_spec::Severity;
use serde::Serialize;

/// One problem of a plan against the machine and the model.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanProblem {
    /// A runtime code ([`crate::codes`]); `modelspec explain CODE` documents it.
    pub code: &'static str,
    pub severity: Severity,
    /// The field, as a JSON pointer into the plan document (`/spec/threads`).
    pub pointer: String,
    /// The whole sentence, naming the field and what to do
    /// (`spec.threads: 0 threads cannot run anything; give at least 1`).
    pub message: String,
    /// What the field may be (`at most 2048`), when it is a value.
    pub expected: Option<String>,
    /// What it is.
    pub found: Option<String>,
}

impl PlanProblem {
    /// A problem that stops the plan.
    pub fn error(code: &'static str, pointer: &str, message: impl Into<String>) -> Self {
        PlanProblem {
            code,
            severity: Severity::Error,
            pointer: pointer.to_string(),
            message: message.into(),
            expected: None,
            found: None,
        }
    }

    /// A problem that does not stop the plan.
    pub fn warning(code: &'static str, pointer: &str, message: impl Into<String>) -> Self {
        PlanProblem {
            severity: Severity::Warning,
            ..PlanProblem::error(code, pointer, message)
        }
    }

    pub fn with_expected(mut self, expected: impl fmt::Display) -> Self {
        self.expected = Some(expected.to_string());
        self
    }

    pub fn with_found(mut self, found: impl fmt::Display) -> Self {
        self.found = Some(found.to_string());
        self
    }
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// In an effective plan's JSON (`status.warnings`) a problem is its message, as before the
/// problems were typed.
impl Serialize for PlanProblem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.message)
    }
}

/// Why a plan cannot run: every problem found, each naming the field and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    pub problems: Vec<PlanProblem>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the execution plan cannot run:")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}
