//! AVX2 activation quantization, writing the same bytes as the reference functions of
//! [`super`]. Blocks the vector code cannot reproduce exactly (a NaN or infinity among the
//! values, whose handling depends on the reference's comparison order; or a scale whose
//! reciprocal overflows) go to the reference block functions.
//!
//! Only called after AVX2 and F16C were detected (see `quantize_activation_row_for`).

use std::arch::x86_64::*;

use super::{q8_0_block, q8_d_id, q8_k_block, q8_k_sums_and_scale};
use crate::half_float::f32_to_f16;
use crate::layout::*;

pub(super) fn quantize_row_q8_0(x: &[f32], out: &mut [u8]) {
    // SAFETY: only called after AVX2 and F16C were detected.
    unsafe { q8_0_avx2(x, out) }
}

pub(super) fn quantize_row_q8_k(x: &[f32], out: &mut [u8]) {
    // SAFETY: only called after AVX2 and F16C were detected.
    unsafe { q8_k_avx2(x, out) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load8(x: &[f32], at: usize) -> __m256 {
    let s: &[f32; 8] = x[at..at + 8].try_into().unwrap_or(&[0.0; 8]);
    // SAFETY: `s` is 8 readable f32.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn abs(v: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
}

/// The largest lane (all lanes finite).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// All lanes of `a` are finite.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn finite(a: __m256) -> bool {
    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(
        a,
        _mm256_set1_ps(f32::INFINITY),
    )) == 0xff
}

/// `f32::round` (halves away from zero) of finite lanes: truncate, then step away from zero
/// where the exact remainder is at least one half.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn round_away(p: __m256) -> __m256 {
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(p);
    let sign = _mm256_set1_ps(-0.0);
    let half = _mm256_cmp_ps::<_CMP_GE_OQ>(abs(_mm256_sub_ps(p, t)), _mm256_set1_ps(0.5));
    let step = _mm256_or_ps(_mm256_and_ps(p, sign), _mm256_set1_ps(1.0));
    _mm256_add_ps(t, _mm256_and_ps(half, step))
}

/// Four vectors of eight i32 (each within i8 range) as 32 bytes in order.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn pack_i8(v: [__m256i; 4]) -> __m256i {
    let ab = _mm256_packs_epi32(v[0], v[1]);
    let cd = _mm256_packs_epi32(v[2], v[3]);
    let abcd = _mm256_packs_epi16(ab, cd);
    // packs works per 128-bit lane: restore the order of the 32-bit groups.
    _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn store32(out: &mut [u8], at: usize, v: __m256i) {
    let s: &mut [u8; 32] = (&mut out[at..at + 32])
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    // SAFETY: `s` is 32 writable bytes.
    unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) }
}

#[target_feature(enable = "avx2,f16c")]
fn q8_0_avx2(x: &[f32], out: &mut [u8]) {
    let (xs, _) = x.as_chunks::<QK>();
    let (ys, _) = out.as_chunks_mut::<Q8_0_BYTES>();
    for (xb, yb) in xs.iter().zip(ys) {
        let v: [__m256; 4] = [load8(xb, 0), load8(xb, 8), load8(xb, 16), load8(xb, 24)];
        let a = [abs(v[0]), abs(v[1]), abs(v[2]), abs(v[3])];
        // Each vector is checked: max_ps drops NaNs.
        let ok = finite(a[0]) & finite(a[1]) & finite(a[2]) & finite(a[3]);
        let all = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
        if !ok {
            q8_0_block(xb, yb);
            continue;
        }
        let (d, id) = q8_d_id(hmax(all));
        if !id.is_finite() {
            q8_0_block(xb, yb);
            continue;
        }
        yb[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        let idv = _mm256_set1_ps(id);
        let mut q = [_mm256_setzero_si256(); 4];
        for (q, v) in q.iter_mut().zip(v) {
            // |x · id| <= 127 (and a hair), so the integers fit in i8 as the reference's.
            *q = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v, idv)));
        }
        store32(yb, 2, pack_i8(q));
    }
}

#[target_feature(enable = "avx2,f16c")]
fn q8_k_avx2(x: &[f32], out: &mut [u8]) {
    let (xs, _) = x.as_chunks::<QK_K>();
    let (ys, _) = out.as_chunks_mut::<Q8_K_BYTES>();
    for (xb, yb) in xs.iter().zip(ys) {
        let mut all = _mm256_setzero_ps();
        let mut ok = true;
        for k in 0..32 {
            let a = abs(load8(xb, 8 * k));
            ok &= finite(a);
            all = _mm256_max_ps(all, a);
        }
        if !ok {
            q8_k_block(xb, yb);
            continue;
        }
        let amax = hmax(all);
        if amax == 0.0 {
            yb.fill(0);
            continue;
        }
        // The reference keeps the first value of largest magnitude, with its sign.
        let amaxv = _mm256_set1_ps(amax);
        let mut max = amax;
        for k in 0..32 {
            let hit = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(abs(load8(xb, 8 * k)), amaxv));
            if hit != 0 {
                max = xb[8 * k + hit.trailing_zeros() as usize];
                break;
            }
        }
        let iscale = -127.0f32 / max;
        if !iscale.is_finite() {
            q8_k_block(xb, yb);
            continue;
        }
        let s = _mm256_set1_ps(iscale);
        let magic = _mm256_set1_ps(12_582_912.0);
        for c in 0..8 {
            let mut q = [_mm256_setzero_si256(); 4];
            for (i, q) in q.iter_mut().enumerate() {
                // GGML's nearest_int: add 1.5 · 2^23 and read the mantissa.
                let v = _mm256_add_ps(_mm256_mul_ps(s, load8(xb, 32 * c + 8 * i)), magic);
                let n = _mm256_sub_epi32(
                    _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x007f_ffff)),
                    _mm256_set1_epi32(0x0040_0000),
                );
                *q = _mm256_min_epi32(n, _mm256_set1_epi32(127));
            }
            store32(yb, Q8_K_QS + 32 * c, pack_i8(q));
        }
        q8_k_sums_and_scale(yb, iscale);
    }
}
