//! The portable path ([`super::portable`]) with AVX2, FMA and F16C, reading the f16 cache
//! directly: every float operation of the portable code, in the same order per output, so the
//! same bits; what changes is that rows are widened in registers instead of through a scratch
//! row, several dot products run at once (each with its own accumulator, instead of one chain
//! of dependent multiply-adds), each cached row is read once for all the query heads of its KV
//! head, and `exp` takes 8 lanes. Only for head sizes that are a multiple of 8.

use std::arch::x86_64::*;

use super::{AttnJob, AttnScratch};

/// The (token, head) slices of `dst`, up to four heads of one token sharing a KV head at a
/// time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn attend(job: &AttnJob, dst: &mut [f32], scratch: &mut AttnScratch) {
    let s = job.s;
    let hd = s.head_dim;
    let group = s.n_head / s.n_head_kv;
    let n = dst.len() / hd;
    let mut i = 0;
    while i < n {
        let index = job.first_head + i;
        let h = index % s.n_head;
        let m = ((h / group + 1) * group - h).min(n - i).min(4);
        let o = &mut dst[i * hd..(i + m) * hd];
        // More heads: fewer positions at once, to keep the accumulators in registers.
        match m {
            1 => heads::<1, 4, 4>(job, index, o, scratch),
            2 => heads::<2, 4, 4>(job, index, o, scratch),
            3 => heads::<3, 2, 3>(job, index, o, scratch),
            _ => heads::<4, 2, 2>(job, index, o, scratch),
        }
        i += m;
    }
}

/// The outputs `o` of the `N` heads from `index = token * n_head + head` on, which share a
/// KV head; scores `P` cache positions at a time, and sums values `B` chunks of 8 at a time.
#[target_feature(enable = "avx2,fma,f16c")]
fn heads<const N: usize, const P: usize, const B: usize>(
    job: &AttnJob,
    index: usize,
    o: &mut [f32],
    scratch: &mut AttnScratch,
) {
    let s = job.s;
    let hd = s.head_dim;
    let chunks = hd / 8;
    let (t, h) = (index / s.n_head, index % s.n_head);
    let (cache, pos, first) = job.locate(t);
    let kv_row = s.n_head_kv * hd;
    let kv_off = h / (s.n_head / s.n_head_kv) * hd;
    let AttnScratch {
        weights, q16, acc, ..
    } = scratch;

    let qh = &job.q[t * s.n_head * hd + h * hd..][..N * hd];
    q16.resize(N * hd, 0.0);
    for (d, x) in q16
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(qh.as_chunks::<8>().0)
    {
        store8(d, round_f16(load8(x)));
    }
    let q16 = q16.as_chunks::<8>().0;
    let mut qs: [&[[f32; 8]]; N] = [&[]; N];
    for (n, qs) in qs.iter_mut().enumerate() {
        *qs = &q16[n * chunks..][..chunks];
    }

    // Scores: head n's weights at n * stride, position j at j (those before `first` unused).
    let len = pos + 1;
    let stride = len.next_multiple_of(8);
    weights.resize(N * stride, 0.0);
    // K as chunks of 8: `kv_row` and `kv_off` are multiples of 8 as the head size is.
    let k = cache.k.as_chunks::<8>().0;
    let (kv_row8, kv_off8) = (kv_row / 8, kv_off / 8);
    let mut j = first;
    while j + P <= len {
        let mut ks: [&[[u16; 8]]; P] = [&[]; P];
        for (p, ks) in ks.iter_mut().enumerate() {
            *ks = &k[(j + p) * kv_row8 + kv_off8..][..chunks];
        }
        let d = dots::<N, P>(ks, &qs, chunks);
        for (p, d) in d.iter().enumerate() {
            for (n, &d) in d.iter().enumerate() {
                weights[n * stride + j + p] = d * s.scale;
            }
        }
        j += P;
    }
    for j in j..len {
        let [d] = dots::<N, 1>([&k[j * kv_row8 + kv_off8..][..chunks]], &qs, chunks);
        for (n, &d) in d.iter().enumerate() {
            weights[n * stride + j] = d * s.scale;
        }
    }

    // Softmax: chunks of 8 positions from 0 like the portable loop; the chunks wholly
    // before `first` are skipped, as adding their sum of zeros to `sum` (never -0) is exact.
    let lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for w in weights.chunks_exact_mut(stride) {
        let max = w[first..len]
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let maxv = _mm256_set1_ps(max);
        let (firstv, lenv) = (
            _mm256_set1_epi32(first as i32),
            _mm256_set1_epi32(len as i32),
        );
        let mut sum = 0.0f64;
        let w8 = w.as_chunks_mut::<8>().0;
        for (c, x) in w8.iter_mut().enumerate().skip(first / 8) {
            let idx = _mm256_add_epi32(_mm256_set1_epi32((c * 8) as i32), lane_index);
            // Masked positions and the lanes after the last position weigh +0.
            let keep = _mm256_andnot_si256(
                _mm256_cmpgt_epi32(firstv, idx),
                _mm256_cmpgt_epi32(lenv, idx),
            );
            let e = exp(_mm256_sub_ps(load8(x), maxv));
            let e = _mm256_and_ps(e, _mm256_castsi256_ps(keep));
            store8(x, e);
            sum += hsum8(e) as f64;
        }
        let inv = _mm256_set1_ps((1.0 / sum) as f32);
        for x in w8.iter_mut().skip(first / 8) {
            store8(x, round_f16(_mm256_mul_ps(load8(x), inv)));
        }
    }

    // P·V: acc[n][lane][chunk], lane = position mod 8. Each accumulator only ever takes
    // the positions of its lane, in increasing order, so a lane is summed alone: its
    // accumulators stay in registers over all its positions (one store each at the end,
    // instead of a load and a store per multiply-add).
    // Every entry is written below, so stale values need no clearing.
    acc.resize(N * 8 * hd, 0.0);
    let mut accs = acc.as_chunks_mut::<8>().0.chunks_exact_mut(8 * chunks);
    let mut accs: [&mut [[f32; 8]]; N] =
        std::array::from_fn(|_| accs.next().unwrap_or_else(|| unreachable!("N heads")));
    let ws: [&[f32]; N] = std::array::from_fn(|n| &weights[n * stride..][..len]);
    let v = &cache.v[..];
    for lane in 0..8 {
        // The lane's first visible position.
        let j0 = first + (lane + 8 - first % 8) % 8;
        let mut c = 0;
        while c + B <= chunks {
            let sums = lane_sums::<N, B>(v, kv_row, kv_off + c * 8, &ws, j0);
            for (a, sums) in accs.iter_mut().zip(&sums) {
                for (a, &x) in a[lane * chunks + c..][..B].iter_mut().zip(sums) {
                    store8(a, x);
                }
            }
            c += B;
        }
        for c in c..chunks {
            let sums = lane_sums::<N, 1>(v, kv_row, kv_off + c * 8, &ws, j0);
            for (a, [x]) in accs.iter_mut().zip(&sums) {
                store8(&mut a[lane * chunks + c], *x);
            }
        }
    }

    // Each output value: its 8 lanes summed in `hsum8`'s order.
    for (on, a) in o.chunks_exact_mut(hd).zip(&accs) {
        for (c, oc) in on.as_chunks_mut::<8>().0.iter_mut().enumerate() {
            let l: [__m256; 8] = std::array::from_fn(|l| load8(&a[l * chunks + c]));
            let s0 = _mm256_add_ps(l[0], l[4]);
            let s1 = _mm256_add_ps(l[1], l[5]);
            let s2 = _mm256_add_ps(l[2], l[6]);
            let s3 = _mm256_add_ps(l[3], l[7]);
            store8(
                oc,
                _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3)),
            );
        }
    }
}

/// For each of the `N` weight rows `w`: `Σ_j w[j] · v_j` over the positions `j` from `j0`
/// in steps of 8 up to `w.len()`, of the `B * 8` values from `off` of cached row `j`
/// (rows of `row` values), each lane a chain of multiply-adds from 0 in position order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lane_sums<const N: usize, const B: usize>(
    v: &[u16],
    row: usize,
    off: usize,
    w: &[&[f32]; N],
    j0: usize,
) -> [[__m256; B]; N] {
    let len = w.first().map_or(0, |w| w.len());
    let mut acc = [[_mm256_setzero_ps(); B]; N];
    let mut j = j0;
    while j < len {
        let x = v[j * row + off..][..B * 8].as_chunks::<8>().0;
        let mut xs = [_mm256_setzero_ps(); B];
        for (xs, x) in xs.iter_mut().zip(x) {
            *xs = widen(x);
        }
        for (acc, w) in acc.iter_mut().zip(w) {
            let p = _mm256_set1_ps(w[j]);
            for (a, &x) in acc.iter_mut().zip(&xs) {
                *a = _mm256_fmadd_ps(x, p, *a);
            }
        }
        j += 8;
    }
    acc
}

/// `dot_lanes8` of each of `P` cached K rows with each of `N` query rows (given as chunks
/// of 8), all at once.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dots<const N: usize, const P: usize>(
    k: [&[[u16; 8]]; P],
    q: &[&[[f32; 8]]; N],
    chunks: usize,
) -> [[f32; N]; P] {
    // Every row cut to `chunks` here, so that the loop below needs no bounds checks.
    let mut ks: [&[[u16; 8]]; P] = [&[]; P];
    for (ks, k) in ks.iter_mut().zip(k) {
        *ks = &k[..chunks];
    }
    let mut qs: [&[[f32; 8]]; N] = [&[]; N];
    for (qs, q) in qs.iter_mut().zip(q) {
        *qs = &q[..chunks];
    }
    let (k, q) = (ks, qs);
    let mut acc = [[_mm256_setzero_ps(); N]; P];
    for c in 0..chunks {
        for (acc, k) in acc.iter_mut().zip(&k) {
            let k = widen(&k[c]);
            for (a, q) in acc.iter_mut().zip(q) {
                *a = _mm256_fmadd_ps(k, load8(&q[c]), *a);
            }
        }
    }
    // A `#[target_feature]` fn is no closure value: reduce each accumulator in a loop.
    let mut out = [[0.0f32; N]; P];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, &a) in o.iter_mut().zip(a) {
            *o = hsum8(a);
        }
    }
    out
}

/// `portable::hsum8` of the lanes of `a`: halves first, then pairs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum8(a: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
}

/// `portable::expf_avx` of each lane, the same operations (including the choice of branch
/// for NaN, which takes the slow one there).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn exp(x: __m256) -> __m256 {
    let c = |bits: u32| _mm256_set1_ps(f32::from_bits(bits));
    let r = c(0x4b40_0000);
    let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm256_sub_ps(z, r);
    // fma(-n, a, b) and fnmadd(n, a, b) are the same exact product, negated, then rounded.
    let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
    let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
    let k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_set1_epi32(0x3f80_0000)));
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm256_mul_ps(c(0x3f7f_fff6), b),
    );
    let fast = _mm256_fmadd_ps(j, k, k);
    let abs_n = _mm256_and_ps(n, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)));
    let is_fast = _mm256_cmp_ps::<_CMP_LE_OQ>(abs_n, c(0x42fc_0000)); // 126
    if _mm256_movemask_ps(is_fast) == 0xff {
        return fast;
    }
    let g = _mm256_and_si256(
        _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps())),
        _mm256_set1_epi32(0x8200_0000u32 as i32),
    );
    let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
    let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    let huge = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, c(0x4340_0000)); // 192
    let slow = _mm256_blendv_ps(
        _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1),
        _mm256_mul_ps(s1, s1),
        huge,
    );
    _mm256_blendv_ps(slow, fast, is_fast)
}

/// The f32 values of 8 f16 bit patterns (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn widen(x: &[u16; 8]) -> __m256 {
    // SAFETY: `x` is 16 readable bytes.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(x.as_ptr().cast()) })
}

/// Each lane rounded to f16 (to nearest, ties to even, as `f16::from_f32`) and widened back.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn round_f16(x: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load8(x: &[f32; 8]) -> __m256 {
    // SAFETY: `x` is 8 readable f32.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn store8(x: &mut [f32; 8], v: __m256) {
    // SAFETY: `x` is 8 writable f32.
    unsafe { _mm256_storeu_ps(x.as_mut_ptr(), v) }
}
