//! Block quantization formats as GGML stores them: the type table, dequantization,
//! quantization and the dot-product kernels the engine runs on them.

pub mod activation;
pub mod dequant;
pub mod dot;
mod error;
pub mod half_float;
pub mod layout;
pub mod quantize;
pub mod recipe;
mod types;

pub use activation::{QuantizedRow, quantize_activation_row};
pub use dequant::{can_dequantize, dequantize_row, dequantize_to_vec};
pub use dot::{dot_type, vec_dot, vec_dot_rows};
pub use error::QuantError;
pub use types::{GgmlType, UnknownType};

/// Names the bytes this crate's quantizers write. Bump it whenever the quantized output for
/// the same input changes (a block format, rounding, the refinement, a tensor mix in
/// [`recipe`]): caches of requantized models (ms-runtime's) key their entries with it, so a
/// changed quantizer never reuses an old entry.
pub const QUANTIZER_VERSION: &str = "1";
