//! One error shape for the embedded registry, the HTTP API and its client: a kind (which maps
//! to an HTTP status), a stable `MG` code, a message that says what was wrong, and where
//! (`pointer`, a JSON pointer into the request or the spec) and how to fix it (`hint`). The
//! remote client rebuilds the same value from the JSON body, so a user sees the same error
//! embedded or remote.

use serde::{Deserialize, Serialize};

/// What kind of failure: decides the HTTP status and the CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or violates a rule (400).
    Invalid,
    /// No credentials, or unknown/revoked ones (401).
    Unauthenticated,
    /// The principal's role does not allow the call (403).
    Forbidden,
    /// The subject does not exist (404).
    NotFound,
    /// The call conflicts with what exists (409), e.g. an upload offset that moved on.
    Conflict,
    /// A declared or streamed size above a limit (413).
    TooLarge,
    /// A byte range outside the blob (416).
    RangeNotSatisfiable,
    /// Bytes that do not match their digest (422 on write; on read the store is damaged).
    Integrity,
    /// The database or blob store cannot be reached right now (503).
    Unavailable,
    /// A defect of ours (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status the API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::RangeNotSatisfiable => 416,
            ErrorKind::Integrity => 422,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// A registry error; `Display` is the message with its pointer and hint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryError {
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    /// A stable `MG` + 4 digits code, documented by `modelspec explain`.
    pub code: String,
    pub message: String,
    /// A JSON pointer into the request body or the spec, when the error has a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// How to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl RegistryError {
    pub fn new(kind: ErrorKind, code: &str, message: impl Into<String>) -> RegistryError {
        RegistryError {
            kind,
            code: code.to_string(),
            message: message.into(),
            pointer: None,
            hint: None,
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> RegistryError {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> RegistryError {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(p) = &self.pointer {
            write!(f, " (at {p})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RegistryError {}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
