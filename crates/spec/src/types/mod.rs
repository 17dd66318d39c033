//! Typed documents. Each type derives its JSON Schema (schemars), so the schema and the
//! types other crates deserialize into cannot disagree.

pub mod common;
pub mod plan;
pub mod v1;
pub mod v1alpha1;
