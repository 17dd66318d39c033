//! Dot products of a weight row with a quantized activation row, the engine's inner loop.
//!
//! # Which activation type
//! Each weight type pairs with one activation type ([`dot_type`], GGML's `vec_dot_type`):
//! Q4_0, Q5_0 and Q8_0 with Q8_0; Q4_1 and Q5_1 with Q8_1; Q4_K, Q5_K and Q6_K with Q8_K;
//! F16 with F16, BF16 with BF16, F32 with F32.
//!
//! # Arithmetic, fixed once for every backend
//! Results must not depend on the kernel that computed them (the scalar reference, AVX2 or
//! AVX-512 VNNI, chosen at runtime), so the order of every float operation is part of the
//! contract:
//!
//! * **Block types.** Inside a block everything is integer, as in llama.cpp's scalar code:
//!   `isum = Σ q_w · q_a` (for K-quants `Σ_sub scale_sub · Σ q_w · q_a`, and for Q4_K / Q5_K
//!   `imin = Σ_16 bsum_16 · min_sub`). Integer sums are exact, so any kernel may compute them
//!   in any order. Each block then gives one f32 term, without fused multiply-add:
//!   - Q4_0, Q5_0, Q8_0: `t = (dw · da) · isum`
//!   - Q4_1, Q5_1: `t = (dw · da) · isum + mw · sa`
//!   - Q4_K, Q5_K: `t = (dw · da) · isum - (dminw · da) · imin`
//!   - Q6_K: `t = (dw · da) · isum`
//!
//!   Block `b`'s term is added to accumulator `b mod 8`; the eight accumulators start at +0.0
//!   and are reduced by [`reduce8`]. (Eight lanes are one AVX2 register of f32.)
//! * **Float types.** Value `i`'s product `w_i · a_i` (rounded to f32; exact for F16 and BF16)
//!   is added to accumulator `i mod 32`; the 32 accumulators are folded to 8 as
//!   `(acc[l] + acc[l+8]) + (acc[l+16] + acc[l+24])` and reduced by [`reduce8`].
//!
//! These sums differ from llama.cpp's own (which differ between its scalar and SIMD builds)
//! only in rounding.
//!
//! # Error bound (tested in `tests/dot_reference.rs` and `tests/dot_models.rs`)
//! Against the f64 dot product of the dequantized weights with the dequantized activations, a
//! kernel's result is within `(blocks + 8) · 2^-23 · Σ_i (|dw · sc_i · q_i| + |dminw · m_i|) ·
//! |a_i|` (block types; `blocks` = blocks per row) or `(n / 32 + 8) · 2^-23 · Σ_i |w_i · a_i|`
//! (float types). Q4_1 / Q5_1 add `|mw| · |s - Σ a_i|` per block: Q8_1 stores its sum `s`
//! rounded to f16 from the scale before the scale's own f16 rounding, as llama.cpp does.

//!
//! # Backends
//! [`kernel`] hands out the fastest kernel this CPU runs ([`Backend::Simd`]: AVX2 + F16C on
//! x86-64 for every type with a scalar kernel, detected once at runtime), the
//! scalar reference otherwise; [`kernel_for`] lets a caller force the scalar reference. Both
//! give the same bits (NaN payloads aside), tested in `tests/simd_dot.rs`. [`kernel4_for`]
//! multiplies one weight row with four activation rows at once (prefill), each output again
//! bit-identical to the single-row kernel; [`kernel8_for`] the same with eight rows.
//! Activation quantization dispatches the same way
//! (`activation::quantize_activation_row_for`). [`cpu_features`] reports what was detected.
//! With AVX-512 (F, BW, VL) and VNNI, the rows kernels of Q4_K, Q5_0, Q6_K and Q8_0 form their
//! exact integer sums with 512-bit VNNI instructions ([`SimdLevel::Avx512Vnni`]); the float
//! arithmetic, and so every bit, is the AVX2 kernels'. [`rows_kernel_at`] hands out each level's
//! kernels so that tests check every family the CPU runs.

// The x86-64 kernels live in `x86/`: `avx2.rs` (one weight row), `rows.rs` (many rows, AVX2)
// and `rows/avx512.rs` (AVX-512 VNNI); the module names say the instruction set.
#[cfg(target_arch = "x86_64")]
#[path = "x86/avx2.rs"]
mod avx2;
mod cpu;
pub mod scalar;

pub use cpu::{CpuFeatures, SimdLevel, cpu_features, simd_level};

use crate::GgmlType;
use crate::activation::QuantizedRow;
use crate::error::{QuantError, row_bytes};

/// The activation type weights of `weight_ty` are multiplied with.
pub fn dot_type(weight_ty: GgmlType) -> Result<GgmlType, QuantError> {
    use GgmlType::*;
    Ok(match weight_ty {
        F32 => F32,
        F16 => F16,
        Bf16 => Bf16,
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        Q4K | Q5K | Q6K => Q8K,
        ty => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dot product",
            });
        }
    })
}

/// A kernel over one weight row and one activation row of the same length, both already
/// checked to be whole rows of their types.
pub type DotKernel = fn(w: &[u8], a: &[u8]) -> f32;

/// Which family of kernels to run: the scalar reference, or the best SIMD kernels the CPU
/// supports (falling back to the scalar kernel for types without one, or without SIMD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Scalar,
    Simd,
}

/// The kernel for weights of `weight_ty`, the fastest this CPU runs (same results as
/// [`Backend::Scalar`]).
pub fn kernel(weight_ty: GgmlType) -> Result<DotKernel, QuantError> {
    kernel_for(weight_ty, Backend::Simd)
}

/// The kernel for weights of `weight_ty` from `backend`.
pub fn kernel_for(weight_ty: GgmlType, backend: Backend) -> Result<DotKernel, QuantError> {
    let reference = scalar_kernel(weight_ty)?;
    if backend == Backend::Scalar {
        return Ok(reference);
    }
    Ok(simd_kernel(weight_ty).unwrap_or(reference))
}

/// One weight row against four activation rows of the same length: `out[j]` is bit for bit
/// the [`DotKernel`] result for `a[j]`, but the weights are read and unpacked once (prefill's
/// matrix × matrix products stream the weights once per four tokens).
pub type DotKernel4 = fn(w: &[u8], a: [&[u8]; 4], out: &mut [f32; 4]);

/// The four-activation kernel for weights of `weight_ty` from `backend` (for types without a
/// fused SIMD kernel, four calls of the single-row kernel).
pub fn kernel4_for(weight_ty: GgmlType, backend: Backend) -> Result<DotKernel4, QuantError> {
    let reference = scalar_kernel4(weight_ty)?;
    if backend == Backend::Scalar {
        return Ok(reference);
    }
    Ok(simd_kernel4(weight_ty).unwrap_or(reference))
}

/// One weight row against eight activation rows of the same length, like [`DotKernel4`]:
/// `out[j]` is bit for bit the [`DotKernel`] result for `a[j]`, the weights unpacked once per
/// eight activations.
pub type DotKernel8 = fn(w: &[u8], a: [&[u8]; 8], out: &mut [f32; 8]);

/// The eight-activation kernel for weights of `weight_ty` from `backend` (for types without a
/// fused SIMD kernel, eight calls of the single-row kernel).
pub fn kernel8_for(weight_ty: GgmlType, backend: Backend) -> Result<DotKernel8, QuantError> {
    let reference = scalar_kernel8(weight_ty)?;
    if backend == Backend::Scalar {
        return Ok(reference);
    }
    Ok(simd_kernel8(weight_ty).unwrap_or(reference))
}

/// Consecutive weight rows (each `row_bytes` long, `w.len() / row_bytes` of them) against any
/// number of activation rows: `out[r * acts.len() + j]` is bit for bit the [`DotKernel`] result
/// of row `r` with `acts[j]`. What the activations contribute (scales, offset sums, widened
/// values) is prepared once per call for all the rows, and the weights are unpacked once for up
/// to eight activations: a matrix-vector product (generation) or a tile of a matrix product
/// (prefill) in one call. `out` must hold `rows * acts.len()` values.
pub type RowsKernel = fn(w: &[u8], row_bytes: usize, acts: &[&[u8]], out: &mut [f32]);

/// The many-rows kernel for weights of `weight_ty` from `backend` (for types without a fused
/// SIMD kernel, and for the scalar backend, the eight-, four- and one-activation kernels row by
/// row).
pub fn rows_kernel_for(weight_ty: GgmlType, backend: Backend) -> Result<RowsKernel, QuantError> {
    let fallback = generic_rows_kernel(weight_ty, backend)?;
    if backend == Backend::Scalar {
        return Ok(fallback);
    }
    Ok(simd_rows_kernel(weight_ty, simd_level()).unwrap_or(fallback))
}

/// The rows kernel of `weight_ty` of one SIMD `level` (the scalar one for [`SimdLevel::None`]),
/// or `None` when this CPU does not run that level: tests check every family the CPU has, not
/// only the best one.
pub fn rows_kernel_at(weight_ty: GgmlType, level: SimdLevel) -> Option<RowsKernel> {
    if level > simd_level() {
        return None;
    }
    let fallback = generic_rows_kernel(weight_ty, Backend::Scalar).ok()?;
    Some(simd_rows_kernel(weight_ty, level).unwrap_or(fallback))
}

#[cfg(target_arch = "x86_64")]
fn simd_rows_kernel(weight_ty: GgmlType, level: SimdLevel) -> Option<RowsKernel> {
    use GgmlType::*;
    if level < SimdLevel::Avx2 {
        return None;
    }
    if level >= SimdLevel::Avx512Vnni {
        match weight_ty {
            Q4K => return Some(avx2::q4_k_q8_k_rows_512),
            Q5_0 => return Some(avx2::q5_0_q8_0_rows_512),
            Q6K => return Some(avx2::q6_k_q8_k_rows_512),
            Q8_0 => return Some(avx2::q8_0_q8_0_rows_512),
            F32 => return Some(avx2::f32_f32_rows_512),
            F16 => return Some(avx2::f16_f16_rows_512),
            Bf16 => return Some(avx2::bf16_bf16_rows_512),
            _ => {}
        }
    }
    Some(match weight_ty {
        Q4_0 => avx2::q4_0_q8_0_rows,
        Q5_0 => avx2::q5_0_q8_0_rows,
        Q8_0 => avx2::q8_0_q8_0_rows,
        Q4K => avx2::q4_k_q8_k_rows,
        Q5K => avx2::q5_k_q8_k_rows,
        Q6K => avx2::q6_k_q8_k_rows,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_rows_kernel(_: GgmlType, _: SimdLevel) -> Option<RowsKernel> {
    None
}

/// Row by row with the eight-, four- and one-activation kernels of `backend`.
fn rows_with(
    ty: GgmlType,
    backend: Backend,
    w: &[u8],
    row_bytes: usize,
    acts: &[&[u8]],
    out: &mut [f32],
) {
    let (Ok(one), Ok(four), Ok(eight)) = (
        kernel_for(ty, backend),
        kernel4_for(ty, backend),
        kernel8_for(ty, backend),
    ) else {
        unreachable!("{ty} was checked by rows_kernel_for")
    };
    if row_bytes == 0 {
        return;
    }
    let stride = acts.len();
    let (octs, rest) = acts.as_chunks::<8>();
    let (quads, rest) = rest.as_chunks::<4>();
    for (wr, out) in w
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(stride.max(1)))
    {
        let (o8, o) = out.split_at_mut(8 * octs.len());
        let (o4, o1) = o.split_at_mut(4 * quads.len());
        for (a, o) in octs.iter().zip(o8.as_chunks_mut::<8>().0) {
            eight(wr, *a, o);
        }
        for (a, o) in quads.iter().zip(o4.as_chunks_mut::<4>().0) {
            four(wr, *a, o);
        }
        for (a, o) in rest.iter().zip(o1) {
            *o = one(wr, a);
        }
    }
}

/// [`rows_with`] as [`RowsKernel`]s, one per type and backend (`SIMD` false: the scalar
/// reference).
mod generic_rows {
    use super::{Backend, GgmlType, rows_with};

    macro_rules! generic {
        ($($name:ident => $ty:ident),*) => {$(
            pub fn $name<const SIMD: bool>(w: &[u8], row_bytes: usize, acts: &[&[u8]], out: &mut [f32]) {
                let backend = if SIMD { Backend::Simd } else { Backend::Scalar };
                rows_with(GgmlType::$ty, backend, w, row_bytes, acts, out)
            }
        )*};
    }
    generic!(
        f32_f32 => F32, f16_f16 => F16, bf16_bf16 => Bf16, q4_0_q8_0 => Q4_0,
        q4_1_q8_1 => Q4_1, q5_0_q8_0 => Q5_0, q5_1_q8_1 => Q5_1, q8_0_q8_0 => Q8_0,
        q4_k_q8_k => Q4K, q5_k_q8_k => Q5K, q6_k_q8_k => Q6K
    );
}

fn generic_rows_kernel(weight_ty: GgmlType, backend: Backend) -> Result<RowsKernel, QuantError> {
    use GgmlType::*;
    use generic_rows as g;
    macro_rules! pick {
        ($($ty:ident => $name:ident),*) => {
            match (weight_ty, backend) {
                $(
                    ($ty, Backend::Scalar) => g::$name::<false>,
                    ($ty, Backend::Simd) => g::$name::<true>,
                )*
                (ty, _) => {
                    return Err(QuantError::Unsupported {
                        ty,
                        op: "dot product",
                    });
                }
            }
        };
    }
    Ok(pick!(
        F32 => f32_f32, F16 => f16_f16, Bf16 => bf16_bf16, Q4_0 => q4_0_q8_0,
        Q4_1 => q4_1_q8_1, Q5_0 => q5_0_q8_0, Q5_1 => q5_1_q8_1, Q8_0 => q8_0_q8_0,
        Q4K => q4_k_q8_k, Q5K => q5_k_q8_k, Q6K => q6_k_q8_k
    ))
}

#[cfg(target_arch = "x86_64")]
fn simd_kernel8(weight_ty: GgmlType) -> Option<DotKernel8> {
    use GgmlType::*;
    if simd_level() < SimdLevel::Avx2 {
        return None;
    }
    Some(match weight_ty {
        F32 => avx2::f32_f32_x8,
        F16 => avx2::f16_f16_x8,
        Bf16 => avx2::bf16_bf16_x8,
        Q4_0 => avx2::q4_0_q8_0_x8,
        Q4_1 => avx2::q4_1_q8_1_x8,
        Q5_0 => avx2::q5_0_q8_0_x8,
        Q5_1 => avx2::q5_1_q8_1_x8,
        Q8_0 => avx2::q8_0_q8_0_x8,
        Q4K => avx2::q4_k_q8_k_x8,
        Q5K => avx2::q5_k_q8_k_x8,
        Q6K => avx2::q6_k_q8_k_x8,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_kernel8(_: GgmlType) -> Option<DotKernel8> {
    None
}

/// Eight calls of each scalar kernel, as [`DotKernel8`]s.
mod scalar8 {
    macro_rules! eight {
        ($($name:ident),*) => {$(
            pub fn $name(w: &[u8], a: [&[u8]; 8], out: &mut [f32; 8]) {
                for (o, a) in out.iter_mut().zip(a) {
                    *o = super::scalar::$name(w, a);
                }
            }
        )*};
    }
    eight!(
        f32_f32, f16_f16, bf16_bf16, q4_0_q8_0, q4_1_q8_1, q5_0_q8_0, q5_1_q8_1, q8_0_q8_0,
        q4_k_q8_k, q5_k_q8_k, q6_k_q8_k
    );
}

fn scalar_kernel8(weight_ty: GgmlType) -> Result<DotKernel8, QuantError> {
    use GgmlType::*;
    Ok(match weight_ty {
        F32 => scalar8::f32_f32,
        F16 => scalar8::f16_f16,
        Bf16 => scalar8::bf16_bf16,
        Q4_0 => scalar8::q4_0_q8_0,
        Q4_1 => scalar8::q4_1_q8_1,
        Q5_0 => scalar8::q5_0_q8_0,
        Q5_1 => scalar8::q5_1_q8_1,
        Q8_0 => scalar8::q8_0_q8_0,
        Q4K => scalar8::q4_k_q8_k,
        Q5K => scalar8::q5_k_q8_k,
        Q6K => scalar8::q6_k_q8_k,
        ty => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dot product",
            });
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn simd_kernel4(weight_ty: GgmlType) -> Option<DotKernel4> {
    use GgmlType::*;
    if simd_level() < SimdLevel::Avx2 {
        return None;
    }
    Some(match weight_ty {
        F32 => avx2::f32_f32_x4,
        F16 => avx2::f16_f16_x4,
        Bf16 => avx2::bf16_bf16_x4,
        Q4_0 => avx2::q4_0_q8_0_x4,
        Q4_1 => avx2::q4_1_q8_1_x4,
        Q5_0 => avx2::q5_0_q8_0_x4,
        Q5_1 => avx2::q5_1_q8_1_x4,
        Q8_0 => avx2::q8_0_q8_0_x4,
        Q4K => avx2::q4_k_q8_k_x4,
        Q5K => avx2::q5_k_q8_k_x4,
        Q6K => avx2::q6_k_q8_k_x4,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_kernel4(_: GgmlType) -> Option<DotKernel4> {
    None
}

/// Four calls of each scalar kernel, as [`DotKernel4`]s.
mod scalar4 {
    macro_rules! four {
        ($($name:ident),*) => {$(
            pub fn $name(w: &[u8], a: [&[u8]; 4], out: &mut [f32; 4]) {
                for (o, a) in out.iter_mut().zip(a) {
                    *o = super::scalar::$name(w, a);
                }
            }
        )*};
    }
    four!(
        f32_f32, f16_f16, bf16_bf16, q4_0_q8_0, q4_1_q8_1, q5_0_q8_0, q5_1_q8_1, q8_0_q8_0,
        q4_k_q8_k, q5_k_q8_k, q6_k_q8_k
    );
}

fn scalar_kernel4(weight_ty: GgmlType) -> Result<DotKernel4, QuantError> {
    use GgmlType::*;
    Ok(match weight_ty {
        F32 => scalar4::f32_f32,
        F16 => scalar4::f16_f16,
        Bf16 => scalar4::bf16_bf16,
        Q4_0 => scalar4::q4_0_q8_0,
        Q4_1 => scalar4::q4_1_q8_1,
        Q5_0 => scalar4::q5_0_q8_0,
        Q5_1 => scalar4::q5_1_q8_1,
        Q8_0 => scalar4::q8_0_q8_0,
        Q4K => scalar4::q4_k_q8_k,
        Q5K => scalar4::q5_k_q8_k,
        Q6K => scalar4::q6_k_q8_k,
        ty => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dot product",
            });
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn simd_kernel(weight_ty: GgmlType) -> Option<DotKernel> {
    use GgmlType::*;
    if simd_level() < SimdLevel::Avx2 {
        return None;
    }
    Some(match weight_ty {
        F32 => avx2::f32_f32,
        F16 => avx2::f16_f16,
        Bf16 => avx2::bf16_bf16,
        Q4_0 => avx2::q4_0_q8_0,
        Q4_1 => avx2::q4_1_q8_1,
        Q5_0 => avx2::q5_0_q8_0,
        Q5_1 => avx2::q5_1_q8_1,
        Q8_0 => avx2::q8_0_q8_0,
        Q4K => avx2::q4_k_q8_k,
        Q5K => avx2::q5_k_q8_k,
        Q6K => avx2::q6_k_q8_k,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_kernel(_: GgmlType) -> Option<DotKernel> {
    None
}

fn scalar_kernel(weight_ty: GgmlType) -> Result<DotKernel, QuantError> {
    use GgmlType::*;
    Ok(match weight_ty {
        F32 => scalar::f32_f32,
        F16 => scalar::f16_f16,
        Bf16 => scalar::bf16_bf16,
        Q4_0 => scalar::q4_0_q8_0,
        Q4_1 => scalar::q4_1_q8_1,
        Q5_0 => scalar::q5_0_q8_0,
        Q5_1 => scalar::q5_1_q8_1,
        Q8_0 => scalar::q8_0_q8_0,
        Q4K => scalar::q4_k_q8_k,
        Q5K => scalar::q5_k_q8_k,
        Q6K => scalar::q6_k_q8_k,
        ty => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dot product",
            });
        }
    })
}

fn check_pair(weight_ty: GgmlType, act: &QuantizedRow) -> Result<usize, QuantError> {
    let expected = dot_type(weight_ty)?;
    if act.ty() != expected {
        return Err(QuantError::ActivationType {
            weights: weight_ty,
            expected,
            got: act.ty(),
        });
    }
    row_bytes(weight_ty, act.len())
}

/// The dot product of one weight row (`w_row`, exactly one row of `act.len()` values of
/// `weight_ty`) with an activation row quantized for `weight_ty`.
pub fn vec_dot(weight_ty: GgmlType, w_row: &[u8], act: &QuantizedRow) -> Result<f32, QuantError> {
    let bytes = check_pair(weight_ty, act)?;
    if w_row.len() != bytes {
        return Err(QuantError::ByteLength {
            ty: weight_ty,
            len: act.len(),
            expected: bytes,
            bytes: w_row.len(),
        });
    }
    Ok(kernel(weight_ty)?(w_row, act.as_bytes()))
}

/// `out[j] = vec_dot(weight_ty, w_row, acts[j])` for four activation rows of the same type
/// and length, reading the weights once.
pub fn vec_dot4(
    weight_ty: GgmlType,
    w_row: &[u8],
    acts: [&QuantizedRow; 4],
    out: &mut [f32; 4],
) -> Result<(), QuantError> {
    let bytes = check_pair(weight_ty, acts[0])?;
    for act in &acts[1..] {
        check_pair(weight_ty, act)?;
        if act.len() != acts[0].len() {
            return Err(QuantError::ByteLength {
                ty: act.ty(),
                len: acts[0].len(),
                expected: acts[0].as_bytes().len(),
                bytes: act.as_bytes().len(),
            });
        }
    }
    if w_row.len() != bytes {
        return Err(QuantError::ByteLength {
            ty: weight_ty,
            len: acts[0].len(),
            expected: bytes,
            bytes: w_row.len(),
        });
    }
    kernel4_for(weight_ty, Backend::Simd)?(w_row, acts.map(|a| a.as_bytes()), out);
    Ok(())
}

/// Matrix × matrix (prefill): `out[t * rows + r] = vec_dot(weight_ty, row r of weights,
/// acts[t])`, bit for bit, for `rows` consecutive weight rows and activation rows of one type
/// and length. Each weight row is read once and multiplied with the activations eight, then
/// four at a time ([`kernel8_for`], [`kernel4_for`]), so the weights stream once per call
/// rather than once per token.
pub fn mat_mul_rows(
    weight_ty: GgmlType,
    backend: Backend,
    weights: &[u8],
    acts: &[QuantizedRow],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let Some(first) = acts.first() else {
        return if out.is_empty() {
            Ok(())
        } else {
            Err(QuantError::MatrixLength {
                ty: weight_ty,
                rows: 0,
                len: 0,
                expected: 0,
                bytes: weights.len(),
            })
        };
    };
    let bytes = check_pair(weight_ty, first)?;
    for act in &acts[1..] {
        check_pair(weight_ty, act)?;
        if act.len() != first.len() {
            return Err(QuantError::ByteLength {
                ty: act.ty(),
                len: first.len(),
                expected: first.as_bytes().len(),
                bytes: act.as_bytes().len(),
            });
        }
    }
    let rows = out.len() / acts.len();
    let expected = bytes.checked_mul(rows);
    if rows * acts.len() != out.len() || expected != Some(weights.len()) {
        return Err(QuantError::MatrixLength {
            ty: weight_ty,
            rows,
            len: first.len(),
            expected: expected.unwrap_or(usize::MAX),
            bytes: weights.len(),
        });
    }
    if bytes == 0 {
        out.fill(0.0);
        return Ok(());
    }
    let one = kernel_for(weight_ty, backend)?;
    let four = kernel4_for(weight_ty, backend)?;
    let eight = kernel8_for(weight_ty, backend)?;
    let (octs, rest) = acts.as_chunks::<8>();
    let (quads, rest) = rest.as_chunks::<4>();
    let (t4, t1) = (8 * octs.len(), 8 * octs.len() + 4 * quads.len());
    for (r, w) in weights.chunks_exact(bytes).enumerate() {
        for (o, oct) in octs.iter().enumerate() {
            let mut y = [0.0f32; 8];
            eight(w, oct.each_ref().map(|a| a.as_bytes()), &mut y);
            for (j, y) in y.into_iter().enumerate() {
                out[(8 * o + j) * rows + r] = y;
            }
        }
        for (q, quad) in quads.iter().enumerate() {
            let mut y = [0.0f32; 4];
            four(w, quad.each_ref().map(|a| a.as_bytes()), &mut y);
            for (j, y) in y.into_iter().enumerate() {
                out[(t4 + 4 * q + j) * rows + r] = y;
            }
        }
        for (j, act) in rest.iter().enumerate() {
            out[(t1 + j) * rows + r] = one(w, act.as_bytes());
        }
    }
    Ok(())
}

/// `out[r] = vec_dot(weight_ty, row r of weights, act)` for `out.len()` consecutive rows
/// stored in `weights` (a matrix-vector product; the lengths are checked once).
pub fn vec_dot_rows(
    weight_ty: GgmlType,
    weights: &[u8],
    act: &QuantizedRow,
    out: &mut [f32],
) -> Result<(), QuantError> {
    let bytes = check_pair(weight_ty, act)?;
    let expected = bytes.checked_mul(out.len());
    if expected != Some(weights.len()) {
        return Err(QuantError::MatrixLength {
            ty: weight_ty,
            rows: out.len(),
            len: act.len(),
            expected: expected.unwrap_or(usize::MAX),
            bytes: weights.len(),
        });
    }
    let k = kernel(weight_ty)?;
    let a = act.as_bytes();
    if bytes == 0 {
        out.fill(0.0);
        return Ok(());
    }
    for (y, w) in out.iter_mut().zip(weights.chunks_exact(bytes)) {
        *y = k(w, a);
    }
    Ok(())
}

/// Sum of eight accumulators in the order an AVX2 horizontal add takes them: halves first,
/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
#[inline(always)]
pub fn reduce8(a: [f32; 8]) -> f32 {
    let s = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let t = [s[0] + s[2], s[1] + s[3]];
    t[0] + t[1]
}

/// Folds 32 accumulators to 8 as `(acc[l] + acc[l+8]) + (acc[l+16] + acc[l+24])`, then
/// [`reduce8`].
#[inline(always)]
pub fn reduce32(a: &[f32; 32]) -> f32 {
    reduce8(std::array::from_fn(|l| {
        (a[l] + a[l + 8]) + (a[l + 16] + a[l + 24])
    }))
}
