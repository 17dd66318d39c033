//! The portable attention path: plain Rust, one (token, head) output at a time, with f16 rows
//! widened through a scratch row; compiled a second time with hardware FMA ([`attend_fma`]).
//! Its arithmetic defines the results ([`super::attention`] says which); the AVX2 path
//! reproduces it bit for bit.

use half::f16;

use super::{AttnJob, AttnScratch};

/// [`attend`] compiled with hardware FMA. `mul_add` is exactly rounded either way, so this only
/// changes the speed (software `fmaf` is many times slower), never the result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
pub(super) unsafe fn attend_fma(job: &AttnJob, dst: &mut [f32], scratch: &mut AttnScratch) {
    attend(job, dst, scratch)
}

/// The (token, head) slices of `dst`. Called with the scratch already borrowed: the body must
/// be inlined into [`attend_fma`] (a closure passed to `LocalKey::with` would not be, and its
/// `mul_add` would become a software `fmaf` call).
#[inline(always)]
pub(super) fn attend(job: &AttnJob, dst: &mut [f32], scratch: &mut AttnScratch) {
    let AttnScratch {
        weights,
        q16,
        kv,
        acc,
    } = scratch;
    let hd = job.s.head_dim;
    q16.resize(hd, 0.0);
    kv.resize(hd, 0.0);
    acc.resize(8 * hd, 0.0);
    for (i, o) in dst.chunks_exact_mut(hd).enumerate() {
        attend_head(job, job.first_head + i, weights, q16, kv, acc, o);
    }
}

/// The output `o` of one head of one token (`index = token * n_head + head`).
#[inline(always)]
fn attend_head(
    job: &AttnJob,
    index: usize,
    weights: &mut Vec<f32>,
    q16: &mut [f32],
    kv: &mut [f32],
    acc: &mut [f32],
    o: &mut [f32],
) {
    let AttnJob { q, s, .. } = *job;
    let hd = s.head_dim;
    let row = s.n_head * hd;
    let group = s.n_head / s.n_head_kv;
    let kv_row = s.n_head_kv * hd;
    let (t, h) = (index / s.n_head, index % s.n_head);
    let (cache, pos, first) = job.locate(t);
    let kvh = h / group;
    let qh = &q[t * row + h * hd..t * row + (h + 1) * hd];
    for (a, &b) in q16.iter_mut().zip(qh) {
        *a = f16::from_f32(b).to_f32();
    }
    // Scores of the visible positions; masked ones (before the window) weigh 0.
    weights.clear();
    weights.resize(first, 0.0f32);
    let mut max = f32::NEG_INFINITY;
    for j in first..=pos {
        f16_row(&cache.k[j * kv_row + kvh * hd..][..hd], kv);
        let v = dot_lanes8(kv, q16) * s.scale;
        max = max.max(v);
        weights.push(v);
    }
    let mut sum = 0.0f64;
    for (c, chunk) in weights.chunks_mut(8).enumerate() {
        let mut lanes = [0.0f32; 8];
        for (l, v) in chunk.iter_mut().enumerate() {
            // Positions before the window are masked: exp(-inf) = 0.
            *v = if c * 8 + l < first {
                0.0
            } else {
                expf_avx(*v - max)
            };
            lanes[l] = *v;
        }
        sum += hsum8(lanes) as f64;
    }
    let inv = (1.0 / sum) as f32;
    acc.fill(0.0);
    for (j, &w) in weights.iter().enumerate().skip(first) {
        let p = f16::from_f32(w * inv).to_f32();
        f16_row(&cache.v[j * kv_row + kvh * hd..][..hd], kv);
        for (a, &v) in acc[(j % 8) * hd..][..hd].iter_mut().zip(kv.iter()) {
            *a = v.mul_add(p, *a);
        }
    }
    for (d, o) in o.iter_mut().enumerate() {
        *o = hsum8(std::array::from_fn(|l| acc[l * hd + d]));
    }
}

/// Converts a row of f16 bits to f32 (vectorised by `half` where the CPU allows).
#[inline(always)]
fn f16_row(bits: &[u16], out: &mut [f32]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    bits.reinterpret_cast::<f16>().convert_to_f32_slice(out);
}

/// `Σ a_i · b_i` as 8 lanes of fused multiply-adds (value `i` into lane `i mod 8`), reduced by
/// [`hsum8`]: the order of an 8-wide FMA loop.
#[inline(always)]
fn dot_lanes8(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for l in 0..8 {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        lanes[l] = x.mul_add(*y, lanes[l]);
    }
    hsum8(lanes)
}

/// The sum of 8 lanes in the order of an AVX horizontal add: halves first, then pairs.
#[inline(always)]
fn hsum8(a: [f32; 8]) -> f32 {
    let s = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (s[0] + s[2]) + (s[1] + s[3])
}

/// `exp(x)` as llama.cpp's AVX2 `ggml_v_expf` computes it (a polynomial with fused
/// multiply-adds, within about 1 ulp of the true value), lane by lane.
#[inline(always)]
fn expf_avx(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // 0x1.715476p+0 = log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),                  // 0x1.7f7d1cp-20
        (-n).mul_add(f32::from_bits(0x3f31_7200), x), // 0x1.62e4p-1
    );
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010) // 0x1.0e4020p-7
        .mul_add(b, f32::from_bits(0x3d2b_9f17)) // 0x1.573e2ep-5
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)), // 0x1.555e66p-3, 0x1.fffdb6p-2
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6) * b); // 0x1.ffffecp-1
    if n.abs() <= 126.0 {
        return j.mul_add(k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_avx_tracks_exp() {
        for i in -1000..=100 {
            let x = i as f32 * 0.0871;
            let (got, want) = (expf_avx(x), x.exp());
            assert!(
                (got - want).abs() <= want * 4e-7,
                "exp({x}) = {want}, emulation {got}"
            );
        }
        assert_eq!(expf_avx(0.0), 1.0);
        assert_eq!(expf_avx(-200.0), 0.0);
    }

    #[test]
    fn hsum8_adds_halves_first() {
        assert_eq!(hsum8([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), 36.0);
        // (1e8 + -1e8) + ... differs from a left-to-right sum.
        let a = [1e8, 1.0, 0.0, 0.0, -1e8, 1.0, 0.0, 0.0];
        assert_eq!(hsum8(a), 2.0);
    }
}
