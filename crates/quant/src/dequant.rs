//! Dequantization to f32, bit-exact with GGML's `dequantize_row_*` reference functions: each
//! value is computed with the same float operations in the same order (no fused multiply-add),
//! so `x = d * q` or `x = (d * sc) * q - (dmin * m)` round exactly as llama.cpp's do.

use crate::GgmlType;
use crate::error::{QuantError, check_row};
use crate::half_float::{bf16_to_f32, f16_le, f16_to_f32};
use crate::layout::*;

/// Dequantizes one row of `dst.len()` values of type `ty` from `src`, which must hold exactly
/// that row's bytes.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_row(ty, dst.len(), src.len())?;
    let f: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => f32_row,
        GgmlType::F16 => f16_row,
        GgmlType::Bf16 => bf16_row,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q8_1 => q8_1,
        GgmlType::Q4K => q4_k,
        GgmlType::Q5K => q5_k,
        GgmlType::Q6K => q6_k,
        GgmlType::Q8K => q8_k,
        _ => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dequantization",
            });
        }
    };
    f(src, dst);
    Ok(())
}

/// Dequantizes a whole byte slice of `ty` (any number of whole blocks) into a new vector.
pub fn dequantize_to_vec(ty: GgmlType, src: &[u8]) -> Result<Vec<f32>, QuantError> {
    let blocks = src.len() / ty.block_bytes();
    let len = blocks * ty.block_len();
    let mut out = vec![0.0; len];
    dequantize_row(ty, src, &mut out)?;
    Ok(out)
}

/// Whether [`dequantize_row`] supports `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | Q4K | Q5K | Q6K | Q8K
    )
}

fn f32_row(src: &[u8], dst: &mut [f32]) {
    let (v, _) = src.as_chunks::<4>();
    for (y, b) in dst.iter_mut().zip(v) {
        *y = f32::from_le_bytes(*b);
    }
}

fn f16_row(src: &[u8], dst: &mut [f32]) {
    let (v, _) = src.as_chunks::<2>();
    for (y, b) in dst.iter_mut().zip(v) {
        *y = f16_to_f32(u16::from_le_bytes(*b));
    }
}

fn bf16_row(src: &[u8], dst: &mut [f32]) {
    let (v, _) = src.as_chunks::<2>();
    for (y, b) in dst.iter_mut().zip(v) {
        *y = bf16_to_f32(u16::from_le_bytes(*b));
    }
}

/// Pairs each block of `src` with its `L` output values.
#[inline(always)]
fn blocks<'a, const B: usize, const L: usize>(
    src: &'a [u8],
    dst: &'a mut [f32],
) -> impl Iterator<Item = (&'a [u8; B], &'a mut [f32; L])> {
    src.as_chunks::<B>()
        .0
        .iter()
        .zip(dst.as_chunks_mut::<L>().0)
}

fn q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q4_0_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        for j in 0..16 {
            let q = b[2 + j];
            y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

fn q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q4_1_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        let m = f16_le(b, 2);
        for j in 0..16 {
            let q = b[4 + j];
            y[j] = (q & 0x0f) as f32 * d + m;
            y[j + 16] = (q >> 4) as f32 * d + m;
        }
    }
}

fn q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q5_0_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..16 {
            let q = b[6 + j];
            let h0 = (((qh >> j) & 1) << 4) as u8;
            let h1 = (((qh >> (j + 16)) & 1) << 4) as u8;
            y[j] = (((q & 0x0f) | h0) as i32 - 16) as f32 * d;
            y[j + 16] = (((q >> 4) | h1) as i32 - 16) as f32 * d;
        }
    }
}

fn q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q5_1_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        let m = f16_le(b, 2);
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        for j in 0..16 {
            let q = b[8 + j];
            let h0 = (((qh >> j) & 1) << 4) as u8;
            let h1 = (((qh >> (j + 16)) & 1) << 4) as u8;
            y[j] = ((q & 0x0f) | h0) as f32 * d + m;
            y[j + 16] = ((q >> 4) | h1) as f32 * d + m;
        }
    }
}

fn q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q8_0_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        for j in 0..QK {
            y[j] = b[2 + j] as i8 as f32 * d;
        }
    }
}

/// Q8_1 values are `d * q`; the stored sum `s` only serves dot products.
fn q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q8_1_BYTES, QK>(src, dst) {
        let d = f16_le(b, 0);
        for j in 0..QK {
            y[j] = b[4 + j] as i8 as f32 * d;
        }
    }
}

fn q4_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q4_K_BYTES, QK_K>(src, dst) {
        let d = f16_le(b, 0);
        let dmin = f16_le(b, 2);
        let (sc, m) = k_scales_mins(&k_scale_bytes(b));
        for c in 0..4 {
            let d1 = d * sc[2 * c] as f32;
            let m1 = dmin * m[2 * c] as f32;
            let d2 = d * sc[2 * c + 1] as f32;
            let m2 = dmin * m[2 * c + 1] as f32;
            for l in 0..32 {
                let q = b[Q4_K_QS + 32 * c + l];
                y[64 * c + l] = d1 * (q & 0x0f) as f32 - m1;
                y[64 * c + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

fn q5_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q5_K_BYTES, QK_K>(src, dst) {
        let d = f16_le(b, 0);
        let dmin = f16_le(b, 2);
        let (sc, m) = k_scales_mins(&k_scale_bytes(b));
        for c in 0..4 {
            let d1 = d * sc[2 * c] as f32;
            let m1 = dmin * m[2 * c] as f32;
            let d2 = d * sc[2 * c + 1] as f32;
            let m2 = dmin * m[2 * c + 1] as f32;
            for l in 0..32 {
                let q = b[Q5_K_QS + 32 * c + l];
                let h = b[Q5_K_QH + l];
                let lo = (q & 0x0f) | (((h >> (2 * c)) & 1) << 4);
                let hi = (q >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
                y[64 * c + l] = d1 * lo as f32 - m1;
                y[64 * c + 32 + l] = d2 * hi as f32 - m2;
            }
        }
    }
}

fn q6_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q6_K_BYTES, QK_K>(src, dst) {
        let d = f16_le(b, Q6_K_D);
        for half in 0..2 {
            let ql = 64 * half;
            let qh = Q6_K_QH + 32 * half;
            let sc = Q6_K_SCALES + 8 * half;
            let out = 128 * half;
            for l in 0..32 {
                let is = l / 16;
                let h = b[qh + l];
                let q1 = ((b[ql + l] & 0x0f) | ((h & 3) << 4)) as i32 - 32;
                let q2 = ((b[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i32 - 32;
                y[out + l] = d * b[sc + is] as i8 as f32 * q1 as f32;
                y[out + l + 32] = d * b[sc + is + 2] as i8 as f32 * q2 as f32;
                y[out + l + 64] = d * b[sc + is + 4] as i8 as f32 * q3 as f32;
                y[out + l + 96] = d * b[sc + is + 6] as i8 as f32 * q4 as f32;
            }
        }
    }
}

fn q8_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in blocks::<Q8_K_BYTES, QK_K>(src, dst) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for j in 0..QK_K {
            y[j] = d * b[Q8_K_QS + j] as i8 as f32;
        }
    }
}
