//! The scalar reference kernels. They define the results (see the module docs of
//! [`crate::dot`] for the exact arithmetic); faster kernels must reproduce them bit for bit.
//!
//! Each takes one weight row and one activation row of the same number of values, already
//! checked by the caller; given shorter slices they stop at the last whole block of either.

use super::{reduce8, reduce32};
use crate::half_float::{bf16_to_f32, f16_le, f16_to_f32};
use crate::layout::*;

/// Sums one f32 term per block pair into eight accumulators, block `b` into `b mod 8`.
#[inline(always)]
fn per_block<const WB: usize, const AB: usize>(
    w: &[u8],
    a: &[u8],
    term: impl Fn(&[u8; WB], &[u8; AB]) -> f32,
) -> f32 {
    let mut acc = [0.0f32; 8];
    let (wb, _) = w.as_chunks::<WB>();
    let (ab, _) = a.as_chunks::<AB>();
    for (b, (wb, ab)) in wb.iter().zip(ab).enumerate() {
        acc[b % 8] += term(wb, ab);
    }
    reduce8(acc)
}

#[inline(always)]
fn i8_at<const N: usize>(b: &[u8; N], at: usize) -> i32 {
    b[at] as i8 as i32
}

/// `Σ w_i · a_i` over `N` signed weights and the `N` signed bytes of `a` starting at `at`.
/// Written as one flat loop so that the compiler vectorises it.
#[inline(always)]
fn dot_i8<const N: usize, const B: usize>(w: &[i8; N], a: &[u8; B], at: usize) -> i32 {
    let a: &[u8; N] = a[at..at + N].try_into().unwrap_or(&[0; N]);
    let mut sum = 0i32;
    for i in 0..N {
        sum += w[i] as i32 * a[i] as i8 as i32;
    }
    sum
}

/// For each byte value, eight bytes holding its bits `k` as `16 · bit` in byte `k`: the fifth
/// bits of eight Q5 values at once.
const FIFTH_BITS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut k = 0;
        while k < 8 {
            t[i] |= (((i >> k) & 1) as u64) << (8 * k + 4);
            k += 1;
        }
        i += 1;
    }
    t
};

/// The 32 values of a Q4_0 / Q5_0 style block as unsigned bytes (nibbles, plus fifth bits
/// from the little-endian u32 `qh` when given).
#[inline(always)]
fn unpack32(qs: &[u8], qh: Option<[u8; 4]>) -> [u8; 32] {
    let mut v = [0u8; 32];
    for j in 0..16 {
        v[j] = qs[j] & 0x0f;
        v[j + 16] = qs[j] >> 4;
    }
    if let Some(qh) = qh {
        let mut high = [0u8; 32];
        for k in 0..4 {
            high[8 * k..8 * k + 8].copy_from_slice(&FIFTH_BITS[qh[k] as usize].to_le_bytes());
        }
        for j in 0..32 {
            v[j] |= high[j];
        }
    }
    v
}

#[inline(always)]
fn offset32(v: [u8; 32], by: u8) -> [i8; 32] {
    std::array::from_fn(|i| v[i].wrapping_sub(by) as i8)
}

/// Q4_0 weights: `q - 8` from nibbles, value j low, j + 16 high.
pub fn q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q4_0_BYTES, Q8_0_BYTES>(w, a, |wb, ab| {
        let v = offset32(unpack32(&wb[2..18], None), 8);
        let isum = dot_i8(&v, ab, 2);
        (f16_le(wb, 0) * f16_le(ab, 0)) * isum as f32
    })
}

/// Q4_1 weights: unsigned nibbles plus a minimum folded in through Q8_1's `s`.
pub fn q4_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q4_1_BYTES, Q8_1_BYTES>(w, a, |wb, ab| {
        let v = offset32(unpack32(&wb[4..20], None), 0);
        let isum = dot_i8(&v, ab, 4);
        (f16_le(wb, 0) * f16_le(ab, 0)) * isum as f32 + f16_le(wb, 2) * f16_le(ab, 2)
    })
}

/// Q5_0 weights: nibble plus fifth bit from the u32, minus 16.
pub fn q5_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q5_0_BYTES, Q8_0_BYTES>(w, a, |wb, ab| {
        let qh = [wb[2], wb[3], wb[4], wb[5]];
        let v = offset32(unpack32(&wb[6..22], Some(qh)), 16);
        let isum = dot_i8(&v, ab, 2);
        (f16_le(wb, 0) * f16_le(ab, 0)) * isum as f32
    })
}

/// Q5_1 weights: unsigned 5-bit values plus a minimum folded in through Q8_1's `s`.
pub fn q5_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q5_1_BYTES, Q8_1_BYTES>(w, a, |wb, ab| {
        let qh = [wb[4], wb[5], wb[6], wb[7]];
        let v = offset32(unpack32(&wb[8..24], Some(qh)), 0);
        let isum = dot_i8(&v, ab, 4);
        (f16_le(wb, 0) * f16_le(ab, 0)) * isum as f32 + f16_le(wb, 2) * f16_le(ab, 2)
    })
}

pub fn q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q8_0_BYTES, Q8_0_BYTES>(w, a, |wb, ab| {
        let v: [i8; 32] = std::array::from_fn(|i| wb[2 + i] as i8);
        let isum = dot_i8(&v, ab, 2);
        (f16_le(wb, 0) * f16_le(ab, 0)) * isum as f32
    })
}

#[inline(always)]
fn q8_k_d(ab: &[u8; Q8_K_BYTES]) -> f32 {
    f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]])
}

/// `Σ_16 bsum_16 · min_(16 / 2)`: the minimums of a Q4_K / Q5_K block against Q8_K's sums.
#[inline(always)]
fn k_min_sum(ab: &[u8; Q8_K_BYTES], mins: &[u8; 8]) -> i32 {
    let mut imin = 0i32;
    for g in 0..16 {
        let at = Q8_K_BSUMS + 2 * g;
        let bsum = i16::from_le_bytes([ab[at], ab[at + 1]]) as i32;
        imin += bsum * mins[g / 2] as i32;
    }
    imin
}

/// `Σ_sub scale_sub · Σ q · q8` over the eight 32-value sub-blocks of a K block whose values
/// (in order) are `v`.
#[inline(always)]
fn k_scaled_sum(v: &[i8; QK_K], scales: &[u8; 8], ab: &[u8; Q8_K_BYTES]) -> i32 {
    let mut isum = 0i32;
    for (s, sc) in scales.iter().enumerate() {
        let sub: &[i8; 32] = v[32 * s..32 * s + 32].try_into().unwrap_or(&[0; 32]);
        isum += *sc as i32 * dot_i8(sub, ab, Q8_K_QS + 32 * s);
    }
    isum
}

/// Q4_K weights: sub-block `2c` is the low nibbles of bytes `32c..32c+32`, `2c + 1` the high.
pub fn q4_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q4_K_BYTES, Q8_K_BYTES>(w, a, |wb, ab| {
        let (sc, m) = k_scales_mins(&k_scale_bytes(wb));
        let mut v = [0i8; QK_K];
        for c in 0..4 {
            for l in 0..32 {
                let q = wb[Q4_K_QS + 32 * c + l];
                v[64 * c + l] = (q & 0x0f) as i8;
                v[64 * c + 32 + l] = (q >> 4) as i8;
            }
        }
        let isum = k_scaled_sum(&v, &sc, ab);
        let da = q8_k_d(ab);
        (f16_le(wb, 0) * da) * isum as f32 - (f16_le(wb, 2) * da) * k_min_sum(ab, &m) as f32
    })
}

/// Q5_K weights: Q4_K's nibbles plus bit `j` of `qh[l]` as the fifth bit of sub-block `j`.
pub fn q5_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q5_K_BYTES, Q8_K_BYTES>(w, a, |wb, ab| {
        let (sc, m) = k_scales_mins(&k_scale_bytes(wb));
        let mut v = [0i8; QK_K];
        for c in 0..4 {
            for l in 0..32 {
                let q = wb[Q5_K_QS + 32 * c + l];
                let h = wb[Q5_K_QH + l];
                v[64 * c + l] = ((q & 0x0f) | (((h >> (2 * c)) & 1) << 4)) as i8;
                v[64 * c + 32 + l] = ((q >> 4) | (((h >> (2 * c + 1)) & 1) << 4)) as i8;
            }
        }
        let isum = k_scaled_sum(&v, &sc, ab);
        let da = q8_k_d(ab);
        (f16_le(wb, 0) * da) * isum as f32 - (f16_le(wb, 2) * da) * k_min_sum(ab, &m) as f32
    })
}

/// Q6_K weights: 6-bit values minus 32, one i8 scale per 16 values.
pub fn q6_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    per_block::<Q6_K_BYTES, Q8_K_BYTES>(w, a, |wb, ab| {
        let mut v = [0i8; QK_K];
        for half in 0..2 {
            let (ql, qh, pos) = (64 * half, Q6_K_QH + 32 * half, 128 * half);
            for l in 0..32 {
                let h = wb[qh + l];
                v[pos + l] = ((wb[ql + l] & 0x0f) | ((h & 3) << 4)) as i8 - 32;
                v[pos + l + 32] = ((wb[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) as i8 - 32;
                v[pos + l + 64] = ((wb[ql + l] >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32;
                v[pos + l + 96] = ((wb[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        let mut isum = 0i32;
        for s in 0..16 {
            let sub: &[i8; 16] = v[16 * s..16 * s + 16].try_into().unwrap_or(&[0; 16]);
            isum += i8_at(wb, Q6_K_SCALES + s) * dot_i8(sub, ab, Q8_K_QS + 16 * s);
        }
        (f16_le(wb, Q6_K_D) * q8_k_d(ab)) * isum as f32
    })
}

/// Sums `w_i · a_i` into 32 accumulators, value `i` into `i mod 32`.
#[inline(always)]
fn per_value<const S: usize>(w: &[u8], a: &[u8], decode: impl Fn([u8; S]) -> f32) -> f32
where
    [u8; S]: Copy,
{
    let mut acc = [0.0f32; 32];
    let (wv, _) = w.as_chunks::<S>();
    let (av, _) = a.as_chunks::<S>();
    let n = wv.len().min(av.len());
    let (wv, av) = (&wv[..n], &av[..n]);
    let mut wc = wv.chunks_exact(32);
    let mut ac = av.chunks_exact(32);
    for (wc, ac) in (&mut wc).zip(&mut ac) {
        for l in 0..32 {
            acc[l] += decode(wc[l]) * decode(ac[l]);
        }
    }
    for (l, (wv, av)) in wc.remainder().iter().zip(ac.remainder()).enumerate() {
        acc[l] += decode(*wv) * decode(*av);
    }
    reduce32(&acc)
}

pub fn f32_f32(w: &[u8], a: &[u8]) -> f32 {
    per_value::<4>(w, a, f32::from_le_bytes)
}

/// F16 × F16: each product is exact in f32 (11-bit significands), so only the sums round.
pub fn f16_f16(w: &[u8], a: &[u8]) -> f32 {
    per_value::<2>(w, a, |b| f16_to_f32(u16::from_le_bytes(b)))
}

/// BF16 × BF16: each product is exact in f32 (8-bit significands).
pub fn bf16_bf16(w: &[u8], a: &[u8]) -> f32 {
    per_value::<2>(w, a, |b| bf16_to_f32(u16::from_le_bytes(b)))
}
