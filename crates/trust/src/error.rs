//! One error type for the crate: a documented `MT` code (see `codes`) and a message that says
//! what failed, where, and how to fix it. Messages never contain PINs, tokens or key bytes.

/// An error with its `MT` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TrustError {
    pub code: &'static str,
    pub message: String,
}

impl TrustError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub type Result<T, E = TrustError> = std::result::Result<T, E>;
