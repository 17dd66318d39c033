//! Weight quantization: f32 rows to GGML block formats (Q8_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
//! Q8_K).
//!
//! Every block is quantized on its own, so a tensor may be split across threads at any row
//! boundary and the bytes are the same whatever the thread count.

pub(crate) mod common;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;

use std::fmt;

use crate::GgmlType;

/// How the K-quants (Q4_K, Q5_K, Q6_K) choose their scales. Other types have a single algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// llama.cpp's quantizer without an importance matrix, reproduced byte for byte.
    Reference,
    /// The reference result, then each sub-block's scale (and min) code moved to a
    /// neighbouring value when that lowers the squared error, and the super-block scales
    /// refitted by least squares when that helps: never worse than `Reference`, block by block.
    #[default]
    Refined,
}

/// Why a quantization request cannot be carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantizeError {
    /// No quantizer for this target type.
    Unsupported(GgmlType),
    /// The row length is not a whole number of blocks of the target type.
    RowLength { ty: GgmlType, row_len: usize },
    /// The input is not a whole number of rows, or the output buffer has the wrong size.
    Size {
        what: &'static str,
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizeError::Unsupported(ty) => write!(
                f,
                "no quantizer for {ty}; supported targets: {}",
                QUANTIZABLE
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            QuantizeError::RowLength { ty, row_len } => write!(
                f,
                "rows of {row_len} values cannot be stored as {ty}: it needs a multiple of {}",
                ty.block_len()
            ),
            QuantizeError::Size {
                what,
                expected,
                found,
            } => {
                write!(f, "{what} has {found} elements, expected {expected}")
            }
        }
    }
}

impl std::error::Error for QuantizeError {}

/// The types this module can produce.
pub const QUANTIZABLE: [GgmlType; 7] = [
    GgmlType::Q8_0,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
];

pub fn can_quantize(ty: GgmlType) -> bool {
    QUANTIZABLE.contains(&ty)
}

/// Bytes that `n_rows` rows of `row_len` values take as `ty`.
pub fn quantized_size(ty: GgmlType, row_len: usize, n_rows: usize) -> Result<usize, QuantizeError> {
    if !can_quantize(ty) {
        return Err(QuantizeError::Unsupported(ty));
    }
    if row_len == 0 || !row_len.is_multiple_of(ty.block_len()) {
        return Err(QuantizeError::RowLength { ty, row_len });
    }
    Ok(row_len / ty.block_len() * ty.block_bytes() * n_rows)
}

/// Quantizes whole blocks of `src` into `dst` on the calling thread. `src.len()` must be a
/// multiple of the block length and `dst` exactly the matching number of bytes.
pub fn quantize_blocks(
    ty: GgmlType,
    algorithm: Algorithm,
    src: &[f32],
    dst: &mut [u8],
) -> Result<(), QuantizeError> {
    if !can_quantize(ty) {
        return Err(QuantizeError::Unsupported(ty));
    }
    if !src.len().is_multiple_of(ty.block_len()) {
        return Err(QuantizeError::RowLength {
            ty,
            row_len: src.len(),
        });
    }
    let expected = src.len() / ty.block_len() * ty.block_bytes();
    check_len("the output buffer", expected, dst.len())?;
    match (ty, algorithm) {
        // Weights and activations share GGML's reference Q8_0 / Q8_K schemes: one
        // implementation, in `activation`. Lengths were checked above.
        (GgmlType::Q8_0, _) => {
            crate::activation::quantize_row_q8_0(src, dst).map_err(|_| QuantizeError::Size {
                what: "the output buffer",
                expected,
                found: dst.len(),
            })?
        }
        (GgmlType::Q5_0, _) => q5_0::quantize_blocks(src, dst),
        (GgmlType::Q5_1, _) => q5_1::quantize_blocks(src, dst),
        (GgmlType::Q8K, _) => {
            crate::activation::quantize_row_q8_k(src, dst).map_err(|_| QuantizeError::Size {
                what: "the output buffer",
                expected,
                found: dst.len(),
            })?
        }
        (GgmlType::Q5K, Algorithm::Reference) => q5_k::quantize_blocks_reference(src, dst),
        (GgmlType::Q5K, Algorithm::Refined) => q5_k::quantize_blocks(src, dst),
        (GgmlType::Q4K, Algorithm::Reference) => q4_k::quantize_blocks_reference(src, dst),
        (GgmlType::Q4K, Algorithm::Refined) => q4_k::quantize_blocks(src, dst),
        (GgmlType::Q6K, Algorithm::Reference) => q6_k::quantize_blocks_reference(src, dst),
        (GgmlType::Q6K, Algorithm::Refined) => q6_k::quantize_blocks(src, dst),
        _ => return Err(QuantizeError::Unsupported(ty)),
    }
    Ok(())
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), QuantizeError> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantizeError::Size {
            what,
            expected,
            found,
        })
    }
}

/// Quantizes a matrix of rows of `row_len` values to `ty`, splitting the rows into
/// `threads` contiguous ranges worked on in parallel. The result does not depend on
/// `threads`.
pub fn quantize_rows(
    ty: GgmlType,
    algorithm: Algorithm,
    src: &[f32],
    row_len: usize,
    threads: usize,
) -> Result<Vec<u8>, QuantizeError> {
    if row_len == 0 || !src.len().is_multiple_of(row_len) {
        return Err(QuantizeError::Size {
            what: "the input",
            expected: src.len().div_ceil(row_len.max(1)) * row_len,
            found: src.len(),
        });
    }
    let n_rows = src.len() / row_len;
    let row_bytes = quantized_size(ty, row_len, 1)?;
    let mut dst = vec![0u8; row_bytes * n_rows];
    let threads = threads.clamp(1, n_rows.max(1));
    let rows_per_thread = n_rows.div_ceil(threads);
    if threads == 1 {
        quantize_blocks(ty, algorithm, src, &mut dst)?;
        return Ok(dst);
    }
    let results: Vec<Result<(), QuantizeError>> = std::thread::scope(|s| {
        let handles: Vec<_> = src
            .chunks(rows_per_thread * row_len)
            .zip(dst.chunks_mut(rows_per_thread * row_bytes))
            .map(|(x, y)| s.spawn(move || quantize_blocks(ty, algorithm, x, y)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(dst)
}
