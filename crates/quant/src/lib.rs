//! Block quantization formats as GGML stores them: the type table, dequantization,
//! quantization and the dot-product kernels the engine runs on them.

pub mod quantize;
pub mod recipe;
mod types;

pub use types::{GgmlType, UnknownType};
