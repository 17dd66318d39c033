//! One error type for the crate: a documented `MT06xx` code (in `ms_trust::codes`) and a message
//! that says what failed, where, and how to fix it.

use ms_trust::TrustError;

/// An error with its `MT` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TlogError {
    pub code: &'static str,
    pub message: String,
}

impl TlogError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<TrustError> for TlogError {
    fn from(e: TrustError) -> Self {
        Self {
            code: e.code,
            message: e.message,
        }
    }
}

pub type Result<T, E = TlogError> = std::result::Result<T, E>;
