//! Errors of the row-level entry points. Every length a caller passes is checked once per
//! row, so the kernels behind them can never read past a block or leave output unwritten.

use std::fmt;

use crate::GgmlType;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// A row of `len` values is not made of whole blocks of `ty`.
    PartialBlock { ty: GgmlType, len: usize },
    /// `bytes` does not hold exactly the `expected` bytes of a row of `len` values of `ty`.
    ByteLength {
        ty: GgmlType,
        len: usize,
        expected: usize,
        bytes: usize,
    },
    /// `ty` has no implementation of `op` in this crate.
    Unsupported { ty: GgmlType, op: &'static str },
    /// The activations were quantized as `got`, but weights of `weights` pair with `expected`.
    ActivationType {
        weights: GgmlType,
        expected: GgmlType,
        got: GgmlType,
    },
    /// Weights and activations disagree on the row length.
    RowLength { weights: usize, activations: usize },
    /// `bytes` is not `rows` rows of `len` values of `ty` (`expected` bytes).
    MatrixLength {
        ty: GgmlType,
        rows: usize,
        len: usize,
        expected: usize,
        bytes: usize,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::PartialBlock { ty, len } => write!(
                f,
                "a row of {len} values is not a whole number of {ty} blocks ({} values each)",
                ty.block_len()
            ),
            QuantError::ByteLength {
                ty,
                len,
                expected,
                bytes,
            } => write!(
                f,
                "a {ty} row of {len} values takes {expected} bytes, but {bytes} bytes were given"
            ),
            QuantError::Unsupported { ty, op } => {
                write!(f, "{op} is not implemented for tensor type {ty}")
            }
            QuantError::ActivationType {
                weights,
                expected,
                got,
            } => write!(
                f,
                "{weights} weights need activations quantized as {expected}, got {got} \
                 (quantize them with QuantizedRow::quantize for {weights})"
            ),
            QuantError::RowLength {
                weights,
                activations,
            } => write!(
                f,
                "weight rows have {weights} values but the activation row has {activations}"
            ),
            QuantError::MatrixLength {
                ty,
                rows,
                len,
                expected,
                bytes,
            } => write!(
                f,
                "{rows} {ty} rows of {len} values (one per output) take {expected} bytes, \
                 but {bytes} bytes were given"
            ),
        }
    }
}

impl std::error::Error for QuantError {}

/// Bytes of a row of `len` values of `ty`, checking that the row is made of whole blocks.
pub(crate) fn row_bytes(ty: GgmlType, len: usize) -> Result<usize, QuantError> {
    if !len.is_multiple_of(ty.block_len()) {
        return Err(QuantError::PartialBlock { ty, len });
    }
    (len / ty.block_len())
        .checked_mul(ty.block_bytes())
        .ok_or(QuantError::PartialBlock { ty, len })
}

/// Checks that `bytes` is exactly one row of `len` values of `ty`.
pub(crate) fn check_row(ty: GgmlType, len: usize, bytes: usize) -> Result<(), QuantError> {
    let expected = row_bytes(ty, len)?;
    if expected != bytes {
        return Err(QuantError::ByteLength {
            ty,
            len,
            expected,
            bytes,
        });
    }
    Ok(())
}
