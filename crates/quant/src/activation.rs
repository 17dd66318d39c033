//! Activation quantization: the f32 row a weight row is multiplied with is first brought to
//! the block type the weights pair with (GGML's `vec_dot_type`), exactly as llama.cpp's
//! reference C functions do it, so that the dot product runs on integers.
//!
//! Note: llama.cpp's x86 SIMD build quantizes Q8_0 activations slightly differently from its
//! own reference (`id = 127 / amax` instead of `1 / (amax / 127)`, and ties rounded to even
//! instead of away from zero), so its runtime Q8_0 activations can differ from these by one
//! step on rare values; [`quantize_row_q8_0_x86`] reproduces that x86 code. (Whether its x86
//! Q8_K path equals its reference was not checked.)

#[cfg(target_arch = "x86_64")]
#[path = "activation_simd.rs"]
mod simd;
#[path = "activation_x86.rs"]
mod x86;

pub use x86::quantize_row_q8_0_x86;

use crate::GgmlType;
use crate::dot::Backend;
use crate::error::{QuantError, row_bytes};
use crate::half_float::{f32_to_bf16, f32_to_f16};
use crate::layout::*;
use crate::quantize::common::nearest_int;

/// GGML's `quantize_row_q8_0_ref`: per block of 32, `d = amax / 127` (stored as f16),
/// `q = roundf(x * (1 / d))` with halves away from zero. `x.len()` must be a multiple of 32 and
/// `out` exactly the row's bytes.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::Q8_0, x.len(), out.len())?;
    let (xs, _) = x.as_chunks::<QK>();
    let (ys, _) = out.as_chunks_mut::<Q8_0_BYTES>();
    for (xb, yb) in xs.iter().zip(ys) {
        q8_0_block(xb, yb);
    }
    Ok(())
}

#[inline(always)]
fn q8_0_block(xb: &[f32; QK], yb: &mut [u8; Q8_0_BYTES]) {
    let (d, id) = q8_scale(xb);
    yb[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    for j in 0..QK {
        yb[2 + j] = (xb[j] * id).round() as i8 as u8;
    }
}

/// GGML's `quantize_row_q8_1_ref`: Q8_0's scheme plus `s = f16(sum(q) * d)`, the term that
/// folds Q4_1 / Q5_1 minimums into their dot product.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::Q8_1, x.len(), out.len())?;
    let (xs, _) = x.as_chunks::<QK>();
    let (ys, _) = out.as_chunks_mut::<Q8_1_BYTES>();
    for (xb, yb) in xs.iter().zip(ys) {
        let (d, id) = q8_scale(xb);
        let mut sum = 0i32;
        for j in 0..QK {
            let q = (xb[j] * id).round() as i8;
            yb[4 + j] = q as u8;
            sum += q as i32;
        }
        yb[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        yb[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
    }
    Ok(())
}

/// `(amax / 127, 1 / d or 0)` of a 32-value block.
#[inline(always)]
fn q8_scale(xb: &[f32; QK]) -> (f32, f32) {
    // C's MAX(amax, fabsf(v)) keeps amax unless the new value is larger.
    let amax = xb
        .iter()
        .fold(0.0f32, |m, v| if m > v.abs() { m } else { v.abs() });
    q8_d_id(amax)
}

/// `(amax / 127, 1 / d or 0)`.
#[inline(always)]
fn q8_d_id(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    (d, id)
}

/// GGML's `quantize_row_q8_K_ref`: per block of 256, take the value `max` of largest
/// magnitude (the first one on ties), `iscale = -127 / max`, `q = min(127, nearest_int(iscale *
/// x))`, `d = 1 / iscale` stored as f32, and the sums of each 16 quants as i16. An all-zero
/// block is stored as zeros.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::Q8K, x.len(), out.len())?;
    let (xs, _) = x.as_chunks::<QK_K>();
    let (ys, _) = out.as_chunks_mut::<Q8_K_BYTES>();
    for (xb, yb) in xs.iter().zip(ys) {
        q8_k_block(xb, yb);
    }
    Ok(())
}

#[inline(always)]
fn q8_k_block(xb: &[f32; QK_K], yb: &mut [u8; Q8_K_BYTES]) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in xb {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        yb.fill(0);
        return;
    }
    let iscale = -127.0f32 / max;
    for j in 0..QK_K {
        yb[Q8_K_QS + j] = nearest_int(iscale * xb[j]).min(127) as i8 as u8;
    }
    q8_k_sums_and_scale(yb, iscale);
}

/// The 16 sums of 16 quants and `d = 1 / iscale` of a Q8_K block whose quants are stored.
#[inline(always)]
fn q8_k_sums_and_scale(yb: &mut [u8; Q8_K_BYTES], iscale: f32) {
    for g in 0..16 {
        let mut sum = 0i16;
        for j in 0..16 {
            sum += yb[Q8_K_QS + 16 * g + j] as i8 as i16;
        }
        yb[Q8_K_BSUMS + 2 * g..Q8_K_BSUMS + 2 * g + 2].copy_from_slice(&sum.to_le_bytes());
    }
    yb[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}

/// f32 -> f16, round to nearest even (llama.cpp's activations for F16 weights).
pub fn quantize_row_f16(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::F16, x.len(), out.len())?;
    for (b, &v) in out.as_chunks_mut::<2>().0.iter_mut().zip(x) {
        *b = f32_to_f16(v).to_le_bytes();
    }
    Ok(())
}

/// f32 -> bf16, round to nearest even (activations for BF16 weights).
pub fn quantize_row_bf16(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::Bf16, x.len(), out.len())?;
    for (b, &v) in out.as_chunks_mut::<2>().0.iter_mut().zip(x) {
        *b = f32_to_bf16(v).to_le_bytes();
    }
    Ok(())
}

fn quantize_row_f32(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    check(GgmlType::F32, x.len(), out.len())?;
    for (b, &v) in out.as_chunks_mut::<4>().0.iter_mut().zip(x) {
        *b = v.to_le_bytes();
    }
    Ok(())
}

fn check(ty: GgmlType, len: usize, bytes: usize) -> Result<(), QuantError> {
    crate::error::check_row(ty, len, bytes)
}

/// Quantizes `x` as `ty` (an activation type: F32, F16, BF16, Q8_0, Q8_1 or Q8_K) into `out`,
/// with the fastest code this CPU runs (the same bytes as [`Backend::Scalar`]).
pub fn quantize_activation_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    quantize_activation_row_for(ty, Backend::Simd, x, out)
}

/// [`quantize_activation_row`] with the given backend: Q8_0 and Q8_K have AVX2 versions that
/// write the same bytes as the reference functions above (tested in
/// `tests/simd_activation.rs`); blocks holding a non-finite value, or whose scale overflows,
/// are left to the reference code.
pub fn quantize_activation_row_for(
    ty: GgmlType,
    backend: Backend,
    x: &[f32],
    out: &mut [u8],
) -> Result<(), QuantError> {
    #[cfg(target_arch = "x86_64")]
    if backend == Backend::Simd && crate::dot::simd_level() >= crate::dot::SimdLevel::Avx2 {
        match ty {
            GgmlType::Q8_0 => {
                check(ty, x.len(), out.len())?;
                simd::quantize_row_q8_0(x, out);
                return Ok(());
            }
            GgmlType::Q8K => {
                check(ty, x.len(), out.len())?;
                simd::quantize_row_q8_k(x, out);
                return Ok(());
            }
            _ => {}
        }
    }
    let _ = backend;
    match ty {
        GgmlType::F32 => quantize_row_f32(x, out),
        GgmlType::F16 => quantize_row_f16(x, out),
        GgmlType::Bf16 => quantize_row_bf16(x, out),
        GgmlType::Q8_0 => quantize_row_q8_0(x, out),
        GgmlType::Q8_1 => quantize_row_q8_1(x, out),
        GgmlType::Q8K => quantize_row_q8_k(x, out),
        _ => Err(QuantError::Unsupported {
            ty,
            op: "activation quantization",
        }),
    }
}

/// One activation row, quantized to the block type its weights pair with. The buffer is kept
/// between calls: quantizing rows of the same or a smaller size allocates nothing.
#[derive(Clone, Debug)]
pub struct QuantizedRow {
    ty: GgmlType,
    len: usize,
    data: Vec<u8>,
}

impl Default for QuantizedRow {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantizedRow {
    /// An empty F32 row.
    pub fn new() -> Self {
        Self {
            ty: GgmlType::F32,
            len: 0,
            data: Vec::new(),
        }
    }

    /// An empty row whose buffer already fits `len` values of any activation type.
    pub fn with_capacity(len: usize) -> Self {
        Self {
            ty: GgmlType::F32,
            len: 0,
            data: Vec::with_capacity(len.saturating_mul(4)),
        }
    }

    /// Quantizes `x` for a dot product with weights of `weight_ty` (as [`crate::dot_type`]).
    pub fn quantize(&mut self, weight_ty: GgmlType, x: &[f32]) -> Result<(), QuantError> {
        self.quantize_as(crate::dot_type(weight_ty)?, x)
    }

    /// Quantizes `x` as the activation type `ty`.
    pub fn quantize_as(&mut self, ty: GgmlType, x: &[f32]) -> Result<(), QuantError> {
        // On error the row is left empty, never holding a stale or half-written row.
        self.len = 0;
        let bytes = row_bytes(ty, x.len()).inspect_err(|_| self.data.clear())?;
        self.data.resize(bytes, 0);
        quantize_activation_row(ty, x, &mut self.data).inspect_err(|_| self.data.clear())?;
        self.ty = ty;
        self.len = x.len();
        Ok(())
    }

    /// Wraps already quantized bytes (e.g. a row read from a file) as an activation row.
    pub fn from_bytes(ty: GgmlType, len: usize, bytes: &[u8]) -> Result<Self, QuantError> {
        crate::error::check_row(ty, len, bytes.len())?;
        Ok(Self {
            ty,
            len,
            data: bytes.to_vec(),
        })
    }

    /// The block type of the stored row.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Number of values in the row.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The row in GGML's block layout of [`Self::ty`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
}
