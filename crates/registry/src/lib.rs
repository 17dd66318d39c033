//! The control plane's ground: which model versions exist, what they were built from and who
//! did what. A model version is immutable and content-addressed (its identity includes the
//! digest of its manifest: spec + artifacts + lineage); artifacts live in a content-addressed
//! blob store (local directory or S3); datasets are digested manifests; lineage is a graph of
//! models, their parents and their datasets; every change writes an audit event in the same
//! transaction.
//!
//! [`api::Registry`] is the one seam: the embedded registry (a database and a blob store used
//! directly) and the HTTP client of a remote control plane both implement it, and the same test
//! suite runs against both.

pub mod api;
pub mod audit;
pub mod auth;
pub mod blob;
pub mod canonical;
pub mod check;
pub mod client_codes;
pub mod codes;
pub mod dataset;
pub mod db;
pub mod digest;
pub mod embedded;
pub mod entity;
pub mod error;
pub mod lineage;
pub mod locate;
pub mod log;
pub mod model;
pub mod provenance;
pub mod provenance_chain;
pub mod remote;
pub mod run_codes;
pub mod signing;
pub mod time;
pub mod trust;

pub use api::Registry;
pub use digest::Digest;
pub use embedded::Embedded;
pub use error::{ErrorKind, RegistryError, Result};
