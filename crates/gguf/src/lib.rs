//! GGUF files: reading (memory-mapped, zero-copy tensor views, typed metadata) and writing.
//!
//! This crate knows the container format only; what a tensor or key means to a model
//! architecture lives in the engine.

mod error;
mod metadata;
mod reader;
pub mod summary;
mod writer;

pub use error::{GgufError, MetaError};
pub use metadata::{Array, Metadata, Value, ValueType};
pub use ms_quant::GgmlType;
pub use reader::{DEFAULT_ALIGNMENT, GgufFile, MAX_DIMS, TensorInfo};
pub use writer::{GgufWriter, TensorDesc, WRITE_VERSION, copy};
