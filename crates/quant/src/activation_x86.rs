//! Q8_0 activations the way llama.cpp's x86 code quantizes them (`id = 127 / amax`, ties
//! rounded to even), rather than like its portable reference function ([`super::quantize_row_q8_0`]:
//! `id = 1 / d`, ties away from zero). The two disagree on a few values per row, and on
//! Gemma 3 that alone moves the log-probabilities against the llama.cpp oracle by several
//! hundredths of a nat (measured: mean 0.118 -> 0.085 together with the f16 GELU), so the
//! engine quantizes its Q8_0 activations with this one.

use half::f16;

use crate::GgmlType;
use crate::error::QuantError;

/// Quantizes `x` to Q8_0 as llama.cpp's x86 code does (see the module docs), with AVX2 when
/// the CPU has it (the same bytes either way). `x.len()` must be a multiple of 32 and `out`
/// exactly the row's bytes.
pub fn quantize_row_q8_0_x86(x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    crate::error::check_row(GgmlType::Q8_0, x.len(), out.len())?;
    #[cfg(target_arch = "x86_64")]
    if crate::dot::simd_level() >= crate::dot::SimdLevel::Avx2 {
        // SAFETY: AVX2 was detected just above.
        unsafe { q8_0_avx2::quantize(x, out) };
        return Ok(());
    }
    q8_0_scalar(x, out);
    Ok(())
}

/// [`quantize_row_q8_0_x86`] in plain Rust.
fn q8_0_scalar(x: &[f32], out: &mut [u8]) {
    for (o, xb) in out.chunks_exact_mut(34).zip(x.chunks_exact(32)) {
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        for (q, v) in o[2..].iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i8 as u8;
        }
    }
}

/// [`quantize_row_q8_0_x86`] with AVX2, eight values per instruction, with the same bits:
/// the maximum is exact in any order, the scale and its inverse are the same scalar
/// operations, each product is one rounding, and the conversion to i8 rounds half to even and
/// saturates like the scalar `round_ties_even() as i8` (NaN to 0).
#[cfg(target_arch = "x86_64")]
mod q8_0_avx2 {
    use half::f16;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn quantize(x: &[f32], out: &mut [u8]) {
        for (o, xb) in out.chunks_exact_mut(34).zip(x.chunks_exact(32)) {
            let Ok(xb) = <&[f32; 32]>::try_from(xb) else {
                unreachable!("chunks of 32")
            };
            let v: [__m256; 4] = std::array::from_fn(|k| {
                let c: &[f32; 8] = xb[8 * k..8 * k + 8].try_into().unwrap_or(&[0.0; 8]);
                // SAFETY: `c` is 8 readable f32.
                unsafe { _mm256_loadu_ps(c.as_ptr()) }
            });
            let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
            // `max(|v|, m)` keeps `m` where |v| is NaN, as f32::max does.
            let mut m = _mm256_setzero_ps();
            for v in v {
                m = _mm256_max_ps(_mm256_and_ps(v, abs_mask), m);
            }
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` is 8 writable f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
            let amax = lanes.iter().fold(0.0f32, |a, &b| a.max(b));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            let idv = _mm256_set1_ps(id);
            let q: [__m256i; 4] = std::array::from_fn(|k| {
                let p = _mm256_mul_ps(v[k], idv);
                // NaN to 0, then the saturation of `as i8`, then round half to even (exact:
                // the bounds are integers).
                let p = _mm256_and_ps(p, _mm256_cmp_ps::<_CMP_ORD_Q>(p, p));
                let p = _mm256_min_ps(
                    _mm256_max_ps(p, _mm256_set1_ps(-128.0)),
                    _mm256_set1_ps(127.0),
                );
                let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
                _mm256_cvtps_epi32(r)
            });
            // i32 -> i16 -> i8 (values already in range), then undo the lane interleaving of
            // the 256-bit packs.
            let w16a = _mm256_packs_epi32(q[0], q[1]);
            let w16b = _mm256_packs_epi32(q[2], q[3]);
            let b8 = _mm256_packs_epi16(w16a, w16b);
            let b8 = _mm256_permutevar8x32_epi32(b8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            let dst: &mut [u8; 32] = (&mut o[2..34])
                .try_into()
                .unwrap_or_else(|_| unreachable!());
            // SAFETY: `dst` is 32 writable bytes.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), b8) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_activations_are_the_same_bits_with_avx2() {
        #[cfg(target_arch = "x86_64")]
        if crate::dot::simd_level() >= crate::dot::SimdLevel::Avx2 {
            let mut s = 0x2545_f491_4f6c_dd1du64;
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let specials = [
                0.5,
                -0.5,
                1.5,
                -2.5,
                127.0,
                -127.0,
                1e30,
                -1e30,
                1e-40,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                f32::MAX,
                f32::MIN_POSITIVE,
            ];
            for round in 0..400 {
                let x: Vec<f32> = (0..256)
                    .map(|i| {
                        let r = next();
                        if round % 4 == 0 && r % 7 == 0 {
                            specials[(r >> 8) as usize % specials.len()]
                        } else if round % 4 == 1 {
                            // Exact halves after scaling by 127 / amax = 1.
                            ((r >> 40) % 255) as f32 - 127.0 + if i % 3 == 0 { 0.5 } else { 0.0 }
                        } else {
                            f32::from_bits(
                                (r >> 32) as u32 & 0x3fff_ffff | ((r as u32) & 0x8000_0000),
                            ) * if r % 5 == 0 { 1e-20 } else { 1.0 }
                        }
                    })
                    .collect();
                let mut want = vec![0u8; 8 * 34];
                let mut got = vec![0u8; 8 * 34];
                q8_0_scalar(&x, &mut want);
                // SAFETY: AVX2 was detected above.
                unsafe { q8_0_avx2::quantize(&x, &mut got) };
                assert_eq!(want, got, "round {round}: {x:?}");
            }
        }
    }
}
