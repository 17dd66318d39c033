//! Numeric helpers shared by the block quantizers. They reproduce GGML's float operations in
//! the same order, so that our reference paths give the same bytes as llama.cpp's.

use half::f16;

/// Rounds to the nearest integer, ties to even, the way GGML does it (adding 1.5 * 2^23 and
/// reading the mantissa). Valid for |x| <= 4194303; callers clamp the result.
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0f32;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

#[inline(always)]
pub(crate) fn f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

#[inline(always)]
pub(crate) fn f16_value(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// Values smaller than this in a whole group are treated as an all-zero group.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Whether a candidate's error `err` beats `best` by more than float summation noise, so that
/// an accepted refinement lowers the true error, however it is summed.
#[inline(always)]
pub(crate) fn improves(err: f32, best: f32) -> bool {
    err < best * (1.0 - 1e-5)
}

/// Candidate inverse scales of [`make_qkx2_quants`]: `(rmin + rdelta * is + nmax) / range`
/// for `is` in `0..=nstep`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScaleSearch {
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
}

/// Fits `x ≈ scale * L + min` with `L` in `0..=nmax` and `min <= 0`, minimising the
/// `weights`-weighted squared error. Starts from the min/max grid, then tries `nstep + 1`
/// candidate inverse scales `(rmin + rdelta * is + nmax) / (max - min)`, refitting scale and
/// min of each by weighted least squares and keeping the best. Returns `(scale, -min)`.
/// This is GGML's `make_qkx2_quants` (squared-error variant).
pub(crate) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
    search: ScaleSearch,
) -> (f32, f32) {
    let ScaleSearch {
        rmin,
        rdelta,
        nstep,
    } = search;
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    // Candidates are tried in order and each starts from the best min so far, so they cannot
    // be evaluated independently.
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            l_aux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * l_aux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&l_aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Fits `x ≈ scale * (L - nmax)` with `L - nmax` in `-nmax..nmax`, weighting errors by `x^2`,
/// searching 19 inverse scales `-(nmax + 0.1 * is) / max` for `is` in -9..=9 and keeping the
/// one with the best least-squares fit. Returns the scale. GGML's `make_qx_quants` with
/// `rmse_type = 1` and no importance weights.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l_out[i] = (l + nmax) as i8;
        let w = x[i] * x[i];
        let lf = l as f32;
        sumlx += w * x[i] * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            let lf = l as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
                l_out[i] = (nmax + l) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-2.6), -3);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
        assert_eq!(nearest_int(-4_194_303.0), -4_194_303);
        for i in -1000..1000 {
            let x = i as f32 * 0.37;
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn qkx2_fits_an_exact_grid_exactly() {
        // Values on a grid 0.5 * L - 1 are representable: the fit must find a zero error.
        let x: Vec<f32> = (0..32).map(|i| 0.5 * (i % 16) as f32 - 1.0).collect();
        let w = vec![1.0f32; 32];
        let (mut l, mut aux) = ([0u8; 32], [0u8; 32]);
        let (scale, neg_min) = make_qkx2_quants(
            15,
            &x,
            &w,
            &mut l,
            &mut aux,
            ScaleSearch {
                rmin: -1.0,
                rdelta: 0.1,
                nstep: 20,
            },
        );
        for i in 0..32 {
            let y = scale * l[i] as f32 - neg_min;
            assert!((y - x[i]).abs() < 1e-6, "{i}: {y} vs {}", x[i]);
        }
    }
}
