//! AVX2 (+ F16C) kernels. They compute exactly the arithmetic of the scalar reference (see
//! [`crate::dot`]): each block's integer sum exactly (in any order), then eight blocks at a
//! time the eight per-block f32 terms in one register, lane `b` being accumulator `b mod 8`,
//! with the same multiplications in the same order and no fused multiply-add.
//!
//! Integer products are formed so that no 16-bit intermediate can saturate for any input bytes
//! (not only for the values our quantizers produce): signed × signed bytes are widened to i16
//! first, unsigned nibbles go through `maddubs` with the offset subtracted as a second `maddubs`
//! of the activation bytes. So a kernel equals the scalar one on every input, except that a NaN
//! result may carry another NaN payload.
//!
//! Every function here requires AVX2 and F16C: the safe wrappers at the bottom are only handed
//! out by [`super::kernel_for`] after runtime detection ([`super::simd_level`]).

use std::arch::x86_64::*;

use super::{reduce8, reduce32};
use crate::half_float::f16_le;
use crate::layout::*;

/// 32 bytes of `b` from `at` (a compile-time checked range once inlined).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn ld32<const N: usize>(b: &[u8; N], at: usize) -> __m256i {
    let s: &[u8; 32] = b[at..at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `s` is 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn ld16<const N: usize>(b: &[u8; N], at: usize) -> __m128i {
    let s: &[u8; 16] = b[at..at + 16].try_into().unwrap_or(&[0; 16]);
    // SAFETY: `s` is 16 readable bytes; loadu has no alignment requirement.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// Lane `b` of the result is the sum of the eight i32 lanes of `v[b]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn hsum_8x8(v: [__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    let lo = _mm256_permute2x128_si256::<0x20>(h0123, h4567);
    let hi = _mm256_permute2x128_si256::<0x31>(h0123, h4567);
    _mm256_add_epi32(lo, hi)
}

/// The f16 at byte `at` of each block (up to eight; missing lanes 0.0) as f32 lanes. Built
/// in registers: eight small stores read back as one vector would stall store forwarding.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn gather_f16<const N: usize>(blocks: &[[u8; N]], at: usize) -> __m256 {
    let h = |i: usize| {
        blocks
            .get(i)
            .map_or(0, |b| i16::from_le_bytes([b[at], b[at + 1]]))
    };
    _mm256_cvtph_ps(_mm_setr_epi16(
        h(0),
        h(1),
        h(2),
        h(3),
        h(4),
        h(5),
        h(6),
        h(7),
    ))
}

/// The f32 at byte `at` of each block (up to eight; missing lanes 0.0).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn gather_f32<const N: usize>(blocks: &[[u8; N]], at: usize) -> __m256 {
    let f = |i: usize| {
        blocks.get(i).map_or(0.0, |b| {
            f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
        })
    };
    _mm256_setr_ps(f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7))
}

/// `[hsum_8x8]` of each of the `K` sums over the eight blocks.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn reduce_parts<const K: usize>(parts: &[[__m256i; K]; 8]) -> [__m256i; K] {
    let mut out = [_mm256_setzero_si256(); K];
    for (k, o) in out.iter_mut().enumerate() {
        let mut v = [_mm256_setzero_si256(); 8];
        for (v, p) in v.iter_mut().zip(parts) {
            *v = p[k];
        }
        *o = hsum_8x8(v);
    }
    out
}

/// All ones in lanes `0..m`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn lanes_below(m: usize) -> __m256 {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m as i32), idx))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn finish(acc: __m256) -> f32 {
    let mut a = [0f32; 8];
    // SAFETY: `a` is 8 writable f32.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc) };
    reduce8(a)
}

/// The per-block driver shared by the block types, over one weight row and `NA` activation
/// rows: `$decode(wb)` unpacks a weight block once, `$isums(&decoded, ab)` gives the block's
/// integer partial sums against one activation block (`[__m256i; K]`, each adding up over its
/// lanes to one integer of the block), `$wscales(wblocks)` the weights' f16 scales of a group
/// of (up to) eight blocks as f32 lanes, gathered once for all activation rows, and
/// `$terms(wscales, ablocks, sums)` the eight f32 terms from the reduced sums (lane `b` =
/// block `b` of the group). Output `j` is exactly the
/// single-row result for activation `j`. Written as a macro so that everything stays inside
/// one `target_feature` function and inlines.
macro_rules! block_kernel {
    ($name:ident, $wb:expr, $ab:expr, $k:expr, $decode:ident, $isums:ident, $wscales:ident, $terms:ident) => {
        #[target_feature(enable = "avx2,f16c")]
        fn $name<const NA: usize>(w: &[u8], a: [&[u8]; NA], out: &mut [f32; NA]) {
            let (wb, _) = w.as_chunks::<{ $wb }>();
            let mut ab: [&[[u8; $ab]]; NA] = [&[]; NA];
            let mut n = wb.len();
            for (ab, a) in ab.iter_mut().zip(a) {
                *ab = a.as_chunks::<{ $ab }>().0;
                n = n.min(ab.len());
            }
            let full = n / 8 * 8;
            let mut acc = [_mm256_setzero_ps(); NA];
            let mut parts = [[[_mm256_setzero_si256(); $k]; 8]; NA];
            for g in (0..full).step_by(8) {
                let wg: &[[u8; $wb]; 8] =
                    wb[g..g + 8].try_into().unwrap_or_else(|_| unreachable!());
                for (i, w) in wg.iter().enumerate() {
                    let d = $decode(w);
                    for (p, ab) in parts.iter_mut().zip(&ab) {
                        p[i] = $isums(&d, &ab[g + i]);
                    }
                }
                let ws = $wscales(wg);
                for ((acc, p), ab) in acc.iter_mut().zip(&parts).zip(&ab) {
                    let ag: &[[u8; $ab]; 8] =
                        ab[g..g + 8].try_into().unwrap_or_else(|_| unreachable!());
                    *acc = _mm256_add_ps(*acc, $terms(&ws, ag, reduce_parts(p)));
                }
            }
            if full < n {
                let m = n - full;
                // Lanes `m..8` of `parts` keep the last group's sums (or the zeros above): the
                // terms they give are masked to +0.0 below, so they need no re-zeroing.
                for (i, w) in wb[full..n].iter().enumerate() {
                    let d = $decode(w);
                    for (p, ab) in parts.iter_mut().zip(&ab) {
                        p[i] = $isums(&d, &ab[full + i]);
                    }
                }
                let ws = $wscales(&wb[full..n]);
                for ((acc, p), ab) in acc.iter_mut().zip(&parts).zip(&ab) {
                    // Missing lanes add +0.0, which leaves every accumulator unchanged (they
                    // start at +0.0 and so are never -0.0).
                    let t = $terms(&ws, &ab[full..n], reduce_parts(p));
                    *acc = _mm256_add_ps(*acc, _mm256_and_ps(t, lanes_below(m)));
                }
            }
            for (o, acc) in out.iter_mut().zip(acc) {
                *o = finish(acc);
            }
        }
    };
}

/// The weights' f16 scale at byte 0 (Q4_0, Q5_0, Q8_0): `[dw, unused]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn wscales_d<const WB: usize>(w: &[[u8; WB]]) -> [__m256; 2] {
    [gather_f16(w, 0), _mm256_setzero_ps()]
}

/// The weights' f16 pair at bytes 0 and 2 (Q4_1, Q5_1: `[dw, mw]`; Q4_K, Q5_K: `[d, dmin]`).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn wscales_d_m<const WB: usize>(w: &[[u8; WB]]) -> [__m256; 2] {
    [gather_f16(w, 0), gather_f16(w, 2)]
}

/// Q6_K's f16 scale: `[d, unused]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn wscales_q6_k(w: &[[u8; Q6_K_BYTES]]) -> [__m256; 2] {
    [gather_f16(w, Q6_K_D), _mm256_setzero_ps()]
}

/// `(dw · da) · isum` with f16 `dw` and `da` at byte 0: Q4_0, Q5_0, Q8_0.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q8_0(w: &[__m256; 2], a: &[[u8; Q8_0_BYTES]], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], gather_f16(a, 0));
    _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0]))
}

/// Σ (q - off)·y over 32 unsigned `q` (< 64) and signed bytes `y`, as sixteen i16 pair sums:
/// `maddubs(q, y) - maddubs(off, y)`, neither of which can saturate for q, off < 64.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn dot_u8_off_i16(q: __m256i, off: i8, y: __m256i) -> __m256i {
    _mm256_sub_epi16(
        _mm256_maddubs_epi16(q, y),
        _mm256_maddubs_epi16(_mm256_set1_epi8(off), y),
    )
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn widen_pairs(p: __m256i) -> __m256i {
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// The 32 nibbles of 16 bytes: values 0..16 from the low nibbles, 16..32 from the high.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn nibbles_32(qs: __m128i) -> __m256i {
    let hi = _mm_srli_epi16::<4>(qs);
    _mm256_and_si256(_mm256_set_m128i(hi, qs), _mm256_set1_epi8(0x0f))
}

/// Byte `j` is 0xff where bit `j` of `x` is set.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn bytes_from_bits_32(x: u32) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(x as i32),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let probe = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(probe, _mm256_set1_epi64x(-1))
}

/// Q8_0 weights widened to i16 (signed × signed bytes widened: exact for every byte). llama.cpp's
/// sign trick (`maddubs(|y|, sign(x, y))`, exact here only with a fallback for weight blocks
/// holding -128) measured 5-15% slower on this machine's AMD EPYC, so it is not used.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q8_0(w: &[u8; Q8_0_BYTES]) -> [__m256i; 2] {
    let x = ld32(w, 2);
    [
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x)),
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(x)),
    ]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q8_0(x: &[__m256i; 2], a: &[u8; Q8_0_BYTES]) -> [__m256i; 1] {
    let y = ld32(a, 2);
    let yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y));
    let yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(y));
    [_mm256_add_epi32(
        _mm256_madd_epi16(x[0], yl),
        _mm256_madd_epi16(x[1], yh),
    )]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_0(w: &[u8; Q4_0_BYTES]) -> __m256i {
    nibbles_32(ld16(w, 2))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q4_0(q: &__m256i, a: &[u8; Q8_0_BYTES]) -> [__m256i; 1] {
    [widen_pairs(dot_u8_off_i16(*q, 8, ld32(a, 2)))]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q5_0(w: &[u8; Q5_0_BYTES]) -> __m256i {
    let qh = u32::from_le_bytes([w[2], w[3], w[4], w[5]]);
    let high = _mm256_and_si256(bytes_from_bits_32(qh), _mm256_set1_epi8(0x10));
    _mm256_or_si256(nibbles_32(ld16(w, 6)), high)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q5_0(q: &__m256i, a: &[u8; Q8_0_BYTES]) -> [__m256i; 1] {
    [widen_pairs(dot_u8_off_i16(*q, 16, ld32(a, 2)))]
}

/// `(dw · da) · isum + mw · sa`: Q4_1, Q5_1 against Q8_1 (`sa` its stored sum term).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q8_1(w: &[__m256; 2], a: &[[u8; Q8_1_BYTES]], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], gather_f16(a, 0));
    _mm256_add_ps(
        _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0])),
        _mm256_mul_ps(w[1], gather_f16(a, 2)),
    )
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_1(w: &[u8; Q4_1_BYTES]) -> __m256i {
    nibbles_32(ld16(w, 4))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q5_1(w: &[u8; Q5_1_BYTES]) -> __m256i {
    let qh = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
    let high = _mm256_and_si256(bytes_from_bits_32(qh), _mm256_set1_epi8(0x10));
    _mm256_or_si256(nibbles_32(ld16(w, 8)), high)
}

/// Unsigned values (< 32) times signed bytes: pair sums within ±7936, no saturation.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q8_1(q: &__m256i, a: &[u8; Q8_1_BYTES]) -> [__m256i; 1] {
    [widen_pairs(_mm256_maddubs_epi16(*q, ld32(a, 4)))]
}

block_kernel!(
    q4_1_impl,
    Q4_1_BYTES,
    Q8_1_BYTES,
    1,
    decode_q4_1,
    isum_q8_1,
    wscales_d_m,
    terms_q8_1
);
block_kernel!(
    q5_1_impl,
    Q5_1_BYTES,
    Q8_1_BYTES,
    1,
    decode_q5_1,
    isum_q8_1,
    wscales_d_m,
    terms_q8_1
);
block_kernel!(
    q8_0_impl,
    Q8_0_BYTES,
    Q8_0_BYTES,
    1,
    decode_q8_0,
    isum_q8_0,
    wscales_d,
    terms_q8_0
);
block_kernel!(
    q4_0_impl,
    Q4_0_BYTES,
    Q8_0_BYTES,
    1,
    decode_q4_0,
    isum_q4_0,
    wscales_d,
    terms_q8_0
);
block_kernel!(
    q5_0_impl,
    Q5_0_BYTES,
    Q8_0_BYTES,
    1,
    decode_q5_0,
    isum_q5_0,
    wscales_d,
    terms_q8_0
);

/// A Q4_K block unpacked: the nibbles of sub-block `s` in `q[s]`, its scale broadcast to i16
/// lanes in `sc[s]`, and the mins spread to one i16 per 16-value Q8_K sum.
struct Q4K {
    q: [__m256i; 8],
    sc: [__m256i; 8],
    mins: __m256i,
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K / Q5_K block (GGML's
/// `get_scale_min_k4`, as [`k_scales_mins`]) with 32-bit masks: `(scales, mins)`, each as
/// bytes 0..8 of a vector.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn k_scales_mins_simd<const N: usize>(w: &[u8; N]) -> (__m128i, __m128i) {
    let word = |i: usize| {
        let at = K_SCALES + 4 * i;
        u32::from_le_bytes([w[at], w[at + 1], w[at + 2], w[at + 3]])
    };
    let (u0, u1, u2) = (word(0), word(1), word(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let sc_lo = u0 & LOW6;
    let sc_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let m_lo = u1 & LOW6;
    let m_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    (
        _mm_setr_epi32(sc_lo as i32, sc_hi as i32, 0, 0),
        _mm_setr_epi32(m_lo as i32, m_hi as i32, 0, 0),
    )
}

/// `v`'s i16 lane `k` of each 128-bit half broadcast over that half (a shuffle with a constant
/// control, where eight scalar broadcasts would cost two or three instructions each).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn bcast_word(v: __m256i, k: usize) -> __m256i {
    let k = k as i16;
    _mm256_shuffle_epi8(v, _mm256_set1_epi16(((2 * k + 1) << 8) | (2 * k)))
}

/// The eight scales as i16 in both halves, and the mins spread to one i16 per 16-value Q8_K sum.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn k_scales_vectors<const N: usize>(w: &[u8; N]) -> ([__m256i; 8], __m256i) {
    let (sc8, m8) = k_scales_mins_simd(w);
    let both = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
    let mut sc = [_mm256_setzero_si256(); 8];
    for (s, v) in sc.iter_mut().enumerate() {
        *v = bcast_word(both, s);
    }
    (sc, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q4_k(w: &[u8; Q4_K_BYTES]) -> Q4K {
    let low4 = _mm256_set1_epi8(0x0f);
    let mut q = [_mm256_setzero_si256(); 8];
    for c in 0..4 {
        let bytes = ld32(w, Q4_K_QS + 32 * c);
        q[2 * c] = _mm256_and_si256(bytes, low4);
        q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), low4);
    }
    let (sc, mins) = k_scales_vectors(w);
    Q4K { q, sc, mins }
}

/// Q4_K: `[isum, imin]`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q4_k(d: &Q4K, a: &[u8; Q8_K_BYTES]) -> [__m256i; 2] {
    let mut isum = _mm256_setzero_si256();
    for s in 0..8 {
        // Unsigned nibbles times signed bytes: pair sums within ±3840, no saturation.
        let p = _mm256_maddubs_epi16(d.q[s], ld32(a, Q8_K_QS + 32 * s));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, d.sc[s]));
    }
    [isum, _mm256_madd_epi16(ld32(a, Q8_K_BSUMS), d.mins)]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q4_k(w: &[__m256; 2], a: &[[u8; Q8_K_BYTES]], s: [__m256i; 2]) -> __m256 {
    let da = gather_f32(a, 0);
    let d = _mm256_mul_ps(w[0], da);
    let dmin = _mm256_mul_ps(w[1], da);
    _mm256_sub_ps(
        _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0])),
        _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(s[1])),
    )
}

/// A Q6_K block unpacked: the 6-bit values of values `32g..32g+32` in `q[g]`, and the scales
/// of their two 16-value halves spread over the matching i16 lanes in `sc[g]`.
struct Q6K {
    q: [__m256i; 8],
    sc: [__m256i; 8],
    /// The sixteen scales in the lane order of [`q6_k_scales_by_pairs`].
    pairs: __m256i,
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q6_k(w: &[u8; Q6_K_BYTES]) -> Q6K {
    let low4 = _mm256_set1_epi8(0x0f);
    let mut q = [_mm256_setzero_si256(); 8];
    for half in 0..2 {
        let ql0 = ld32(w, 64 * half);
        let ql1 = ld32(w, 64 * half + 32);
        let qh = ld32(w, Q6_K_QH + 32 * half);
        // Bits are masked before each 16-bit shift, so nothing crosses into a neighbour byte.
        q[4 * half] = _mm256_or_si256(
            _mm256_and_si256(ql0, low4),
            _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(0x03))),
        );
        q[4 * half + 1] = _mm256_or_si256(
            _mm256_and_si256(ql1, low4),
            _mm256_slli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c))),
        );
        q[4 * half + 2] = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low4),
            _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
        );
        q[4 * half + 3] = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low4),
            _mm256_srli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8))),
        );
    }
    let by_pairs = q6_k_scales_by_pairs(w);
    let mut sc = [_mm256_setzero_si256(); 8];
    for (g, v) in sc.iter_mut().enumerate() {
        *v = bcast_word(by_pairs, g);
    }
    Q6K {
        q,
        sc,
        pairs: by_pairs,
    }
}

/// The sixteen i8 scales of a Q6_K block as i16: scale `2g` in lane `g` of the low half,
/// `2g + 1` in lane `g` of the high half.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn q6_k_scales_by_pairs(w: &[u8; Q6_K_BYTES]) -> __m256i {
    let even_odd = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(ld16(w, Q6_K_SCALES), even_odd))
}

/// Q6_K: `Σ_16 scale · Σ (q - 32) · y`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn isum_q6_k(d: &Q6K, a: &[u8; Q8_K_BYTES]) -> [__m256i; 1] {
    let mut isum = _mm256_setzero_si256();
    for g in 0..8 {
        let p = dot_u8_off_i16(d.q[g], 32, ld32(a, Q8_K_QS + 32 * g));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, d.sc[g]));
    }
    [isum]
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn terms_q6_k(w: &[__m256; 2], a: &[[u8; Q8_K_BYTES]], s: [__m256i; 1]) -> __m256 {
    let d = _mm256_mul_ps(w[0], gather_f32(a, 0));
    _mm256_mul_ps(d, _mm256_cvtepi32_ps(s[0]))
}

/// Q5_K: Q4_K's nibbles with bit `s` of `qh[l]` as the fifth bit of value `l` of sub-block
/// `s`; same sums and terms as Q4_K.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn decode_q5_k(w: &[u8; Q5_K_BYTES]) -> Q4K {
    let low4 = _mm256_set1_epi8(0x0f);
    let fifth = _mm256_set1_epi8(0x10);
    let qh = ld32(w, Q5_K_QH);
    let mut q = [_mm256_setzero_si256(); 8];
    for c in 0..4 {
        let bytes = ld32(w, Q5_K_QS + 32 * c);
        let nib = [
            _mm256_and_si256(bytes, low4),
            _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), low4),
        ];
        for (k, nib) in nib.into_iter().enumerate() {
            let bit = _mm256_set1_epi8((1u8 << (2 * c + k)) as i8);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
            q[2 * c + k] = _mm256_or_si256(nib, _mm256_and_si256(set, fifth));
        }
    }
    let (sc, mins) = k_scales_vectors(w);
    Q4K { q, sc, mins }
}

block_kernel!(
    q5_k_impl,
    Q5_K_BYTES,
    Q8_K_BYTES,
    2,
    decode_q5_k,
    isum_q4_k,
    wscales_d_m,
    terms_q4_k
);
block_kernel!(
    q4_k_impl,
    Q4_K_BYTES,
    Q8_K_BYTES,
    2,
    decode_q4_k,
    isum_q4_k,
    wscales_d_m,
    terms_q4_k
);
block_kernel!(
    q6_k_impl,
    Q6_K_BYTES,
    Q8_K_BYTES,
    1,
    decode_q6_k,
    isum_q6_k,
    wscales_q6_k,
    terms_q6_k
);

/// Float rows: value `i` into accumulator `i mod 32` (four registers), products rounded
/// before the add, then the same fold as [`reduce32`]. `$load(bytes, at)` gives eight f32 from
/// eight values starting at value `at`; `$one(bytes, i)` value `i` for the tail.
macro_rules! float_kernel {
    ($name:ident, $size:expr, $load:ident, $one:ident) => {
        #[target_feature(enable = "avx2,f16c")]
        fn $name(w: &[u8], a: &[u8]) -> f32 {
            let n = (w.len() / $size).min(a.len() / $size);
            let full = n / 32;
            let mut acc = [_mm256_setzero_ps(); 4];
            for c in 0..full {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let at = 32 * c + 8 * k;
                    *acc = _mm256_add_ps(*acc, _mm256_mul_ps($load(w, at), $load(a, at)));
                }
            }
            let mut lanes = [0f32; 32];
            for (k, acc) in acc.iter().enumerate() {
                // SAFETY: lanes[8k..8k+8] is 8 writable f32.
                unsafe { _mm256_storeu_ps(lanes[8 * k..8 * k + 8].as_mut_ptr(), *acc) };
            }
            for i in 32 * full..n {
                lanes[i - 32 * full] += $one(w, i) * $one(a, i);
            }
            reduce32(&lanes)
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load8_f32(b: &[u8], at: usize) -> __m256 {
    let s: &[u8; 32] = b[4 * at..4 * at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `s` is 32 readable bytes.
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

#[inline]
fn one_f32(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load8_f16(b: &[u8], at: usize) -> __m256 {
    let s: &[u8; 16] = b[2 * at..2 * at + 16].try_into().unwrap_or(&[0; 16]);
    // SAFETY: `s` is 16 readable bytes.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
}

#[inline]
fn one_f16(b: &[u8], i: usize) -> f32 {
    f16_le(b, 2 * i)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load8_bf16(b: &[u8], at: usize) -> __m256 {
    let s: &[u8; 16] = b[2 * at..2 * at + 16].try_into().unwrap_or(&[0; 16]);
    // SAFETY: `s` is 16 readable bytes.
    let h = unsafe { _mm_loadu_si128(s.as_ptr().cast()) };
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
}

#[inline]
fn one_bf16(b: &[u8], i: usize) -> f32 {
    crate::half_float::bf16_to_f32(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]))
}

float_kernel!(f32_impl, 4, load8_f32, one_f32);
float_kernel!(f16_impl, 2, load8_f16, one_f16);
float_kernel!(bf16_impl, 2, load8_bf16, one_bf16);

// The safe entry points. Sound only on CPUs with AVX2 and F16C, which `super::kernel_for`
// checks before handing them out; they are not public for that reason.

macro_rules! entry_block {
    ($($one:ident, $four:ident, $eight:ident => $imp:ident;)*) => {$(
        pub(super) fn $eight(w: &[u8], a: [&[u8]; 8], out: &mut [f32; 8]) {
            // SAFETY: only reachable through `kernel8_for`, after AVX2 and F16C were detected.
            unsafe { $imp::<8>(w, a, out) }
        }
        pub(super) fn $one(w: &[u8], a: &[u8]) -> f32 {
            let mut out = [0.0];
            // SAFETY: only reachable through `kernel_for`, after AVX2 and F16C were detected.
            unsafe { $imp::<1>(w, [a], &mut out) };
            out[0]
        }
        pub(super) fn $four(w: &[u8], a: [&[u8]; 4], out: &mut [f32; 4]) {
            // SAFETY: only reachable through `kernel4_for`, after AVX2 and F16C were detected.
            unsafe { $imp::<4>(w, a, out) }
        }
    )*};
}

entry_block! {
    q8_0_q8_0, q8_0_q8_0_x4, q8_0_q8_0_x8 => q8_0_impl;
    q4_0_q8_0, q4_0_q8_0_x4, q4_0_q8_0_x8 => q4_0_impl;
    q5_0_q8_0, q5_0_q8_0_x4, q5_0_q8_0_x8 => q5_0_impl;
    q4_1_q8_1, q4_1_q8_1_x4, q4_1_q8_1_x8 => q4_1_impl;
    q5_1_q8_1, q5_1_q8_1_x4, q5_1_q8_1_x8 => q5_1_impl;
    q4_k_q8_k, q4_k_q8_k_x4, q4_k_q8_k_x8 => q4_k_impl;
    q5_k_q8_k, q5_k_q8_k_x4, q5_k_q8_k_x8 => q5_k_impl;
    q6_k_q8_k, q6_k_q8_k_x4, q6_k_q8_k_x8 => q6_k_impl;
}

macro_rules! entry_float {
    ($($one:ident, $four:ident, $eight:ident => $imp:ident;)*) => {$(
        pub(super) fn $eight(w: &[u8], a: [&[u8]; 8], out: &mut [f32; 8]) {
            for (o, a) in out.iter_mut().zip(a) {
                *o = $one(w, a);
            }
        }
        pub(super) fn $one(w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: only reachable through `kernel_for`, after AVX2 and F16C were detected.
            unsafe { $imp(w, a) }
        }
        pub(super) fn $four(w: &[u8], a: [&[u8]; 4], out: &mut [f32; 4]) {
            for (o, a) in out.iter_mut().zip(a) {
                *o = $one(w, a);
            }
        }
    )*};
}

entry_float! {
    f32_f32, f32_f32_x4, f32_f32_x8 => f32_impl;
    f16_f16, f16_f16_x4, f16_f16_x8 => f16_impl;
    bf16_bf16, bf16_bf16_x4, bf16_bf16_x8 => bf16_impl;
}

#[path = "rows.rs"]
mod rows;
pub(super) use rows::{
    bf16_bf16_rows_512, f16_f16_rows_512, f32_f32_rows_512, q4_0_q8_0_rows, q4_k_q8_k_rows,
    q4_k_q8_k_rows_512, q5_0_q8_0_rows, q5_0_q8_0_rows_512, q5_k_q8_k_rows, q6_k_q8_k_rows,
    q6_k_q8_k_rows_512, q8_0_q8_0_rows, q8_0_q8_0_rows_512,
};
