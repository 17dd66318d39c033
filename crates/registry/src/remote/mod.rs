//! The HTTP client of a control plane (`modelspec registry serve`): [`Remote`] implements
//! [`crate::Registry`] over the API, so the CLI and the shared test suite use a remote
//! registry exactly as an embedded one. [`codes`] are the HTTP layer's codes (server and
//! client).

mod client;
pub mod codes;

pub use client::{Remote, TlsOptions};
