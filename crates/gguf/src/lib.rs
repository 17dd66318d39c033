//! GGUF files: reading (memory-mapped, zero-copy tensor views, typed metadata) and writing.
//!
//! - [`GgufFile::open`] maps a v2 or v3 file and checks every count, length, offset and size
//!   against the file before use: bad input is a [`GgufError`] naming the file, the byte
//!   offset or key or tensor, and what was expected. Long string arrays (vocabularies) are
//!   validated at open and turned into `String`s on first access.
//! - [`GgufWriter`] writes metadata and the tensor index first, then takes tensor data in
//!   index order, whole or in pieces, so a quantizer holds one tensor at a time; the file is
//!   renamed into place only by [`GgufWriter::finish`].
//! - [`summary`] reads the `{general.architecture}.` key convention for `modelspec inspect`.
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
