//! The small operations the architectures share: RMS norm, RoPE, activations, attention.
//!
//! Where llama.cpp rounds through f16 (GELU table, KV cache, attention operands) we round the
//! same way, so that our logits track its outputs closely.

use half::f16;

use crate::kv_cache::LayerCache;
use crate::model::{Rope, RopeStyle};
use crate::parallel::run_chunks;

/// In place, for each row of `n` values: `x = x / rms(x) * w`.
pub(crate) fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let n = w.len();
    for row in x.chunks_exact_mut(n) {
        let sum: f64 = row.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let mean = (sum / n as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for (v, &g) in row.iter_mut().zip(w) {
            *v = (*v * scale) * g;
        }
    }
}

/// `x += y`, element-wise.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Adds `bias` to every row of `x`.
pub(crate) fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        add(row, bias);
    }
}

/// `gate = silu(gate) * up` (SwiGLU).
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `gate = gelu_tanh(gate) * up` (GeGLU), with llama.cpp's f16 GELU table: the input is
/// rounded to f16 and the result too, between -10 and 10.
pub(crate) fn geglu(gate: &mut [f32], up: &[f32]) {
    let table = gelu_f16_table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        let act = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x
        } else {
            table[f16::from_f32(x).to_bits() as usize]
        };
        *g = act * u;
    }
}

/// GELU (tanh form) of every f16 value, rounded to f16 and widened back: one lookup per
/// element instead of a `tanh`, with the same bits as computing it in place.
fn gelu_f16_table() -> &'static [f32; 1 << 16] {
    static TABLE: std::sync::OnceLock<Box<[f32; 1 << 16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        const COEF_A: f32 = 0.044715;
        let mut t = Box::new([0.0f32; 1 << 16]);
        for (bits, out) in t.iter_mut().enumerate() {
            let x = f16::from_bits(bits as u16).to_f32();
            let y = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh());
            *out = f16::from_f32(y).to_f32();
        }
        t
    })
}

/// Multiplies every value by `s`.
pub(crate) fn scale(x: &mut [f32], s: f32) {
    for v in x {
        *v *= s;
    }
}

/// Rotates every head of every token in place. `x` is `positions.len()` rows of `n_head`
/// heads of `head_dim` values; `freq_factors` divides each pair's angle (llama 3.1).
pub(crate) fn rope(
    x: &mut [f32],
    positions: std::ops::Range<usize>,
    head_dim: usize,
    r: &Rope,
    freq_factors: Option<&[f32]>,
) {
    let n_tok = positions.len();
    let row = x.len() / n_tok.max(1);
    let theta_scale = r.freq_base.powf(-2.0 / r.n_dims as f32);
    let mut cache = crate::buf::Buf::zeros(r.n_dims);
    for (t, xt) in x.chunks_exact_mut(row).enumerate() {
        // The angle is advanced by repeated multiplication in f32, as llama.cpp does.
        let mut theta = (positions.start + t) as f32;
        for i in 0..r.n_dims / 2 {
            let ff = freq_factors.and_then(|f| f.get(i)).copied().unwrap_or(1.0);
            let angle = r.freq_scale * (theta / ff);
            cache[2 * i] = angle.cos();
            cache[2 * i + 1] = angle.sin();
            theta *= theta_scale;
        }
        for head in xt.chunks_exact_mut(head_dim) {
            for i in 0..r.n_dims / 2 {
                let (a, b) = match r.style {
                    RopeStyle::Normal => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + r.n_dims / 2),
                };
                let (cos, sin) = (cache[2 * i], cache[2 * i + 1]);
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos - x1 * sin;
                head[b] = x0 * sin + x1 * cos;
            }
        }
    }
}

/// Shape of one attention call.
pub(crate) struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Multiplies Q·K before the softmax.
    pub scale: f32,
    /// Keys visible to a query: its own position and the `window - 1` before it.
    pub window: Option<usize>,
}

/// One sequence's rows of an attention call: its cache (already holding these tokens' keys and
/// values) and the position of its first query row, `first_row` in the call's `q`.
pub(crate) struct AttnSeq<'a> {
    pub cache: &'a LayerCache,
    pub pos0: usize,
    pub first_row: usize,
}

/// Causal attention of the queries `q` (one row of `n_head * head_dim` per token) of one or
/// more sequences, each over its own cache: `seqs` in row order, the first at row 0, each
/// running up to the next one's `first_row` (the last to the end of `q`).
///
/// The arithmetic is llama.cpp's CPU path (without flash attention) on x86, operation for
/// operation: Q rounded to f16; Q·K and P·V as 8-lane fused multiply-adds reduced like an AVX
/// horizontal sum; the softmax with its vectorised `exp`, sums of 8 in f64, and weights
/// rounded to f16. Lanes follow the cache position (`j mod 8`), so results do not depend on the
/// batch split, the other sequences of the call or the thread count.
pub(crate) fn attention(
    q: &[f32],
    seqs: &[AttnSeq<'_>],
    s: &AttnShape,
    out: &mut [f32],
    threads: usize,
) {
    attention_with(Kernel::detect(s.head_dim), q, seqs, s, out, threads)
}

/// The code path of an attention call. All give the same bits; they differ in speed only.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// Plain Rust, with `mul_add` in software where the CPU has no FMA.
    Portable,
    /// The portable code compiled with hardware FMA.
    #[cfg(target_arch = "x86_64")]
    Fma,
    /// AVX2 straight from the f16 cache, the heads of a KV head together ([`avx2`]).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest path this CPU runs for heads of `head_dim` values.
    fn detect(head_dim: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if head_dim.is_multiple_of(8) && has!("avx2") && has!("fma") && has!("f16c") {
                return Kernel::Avx2;
            }
            if has!("fma") {
                return Kernel::Fma;
            }
        }
        let _ = head_dim;
        Kernel::Portable
    }
}

fn attention_with(
    kernel: Kernel,
    q: &[f32],
    seqs: &[AttnSeq<'_>],
    s: &AttnShape,
    out: &mut [f32],
    threads: usize,
) {
    // One task per (token, head) output slice: later tokens see more keys, and the pool hands
    // tasks out one at a time, so the causal imbalance evens out; a single generated token
    // still spreads its heads over the threads, and so do the tokens of several sequences.
    // The AVX2 path reads each cached row once for all the query heads of its KV head, so
    // when there are tokens enough to keep the threads busy a task takes all those heads.
    let hd = s.head_dim;
    let group = s.n_head / s.n_head_kv.max(1);
    let rows = out.len() / (s.n_head * hd).max(1);
    #[cfg(target_arch = "x86_64")]
    let grouped = kernel == Kernel::Avx2 && rows * s.n_head_kv >= 4 * threads;
    #[cfg(not(target_arch = "x86_64"))]
    let grouped = false;
    let heads = if grouped { group.max(1) } else { 1 };
    run_chunks(out, heads * hd, threads, &|start, dst| {
        let job = AttnJob {
            q,
            seqs,
            s,
            first_head: start / hd,
        };
        ATTN_SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            // Room for the scores of the longest context the caches hold, taken once: a
            // sequence growing token by token never reallocates.
            let kv_row = (s.n_head_kv * hd).max(1);
            let n_ctx = seqs
                .iter()
                .map(|q| q.cache.k.len() / kv_row)
                .max()
                .unwrap_or(0);
            let need = group.max(1) * n_ctx.next_multiple_of(8);
            scratch
                .weights
                .reserve(need.saturating_sub(scratch.weights.len()));
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::detect` found AVX2, FMA and F16C, and the head size is a
                // multiple of 8 (tests pass `Avx2` only after the same checks).
                Kernel::Avx2 => unsafe { avx2::attend(&job, dst, scratch) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::detect` found FMA.
                Kernel::Fma => unsafe { attend_fma(&job, dst, scratch) },
                Kernel::Portable => attend(&job, dst, scratch),
            }
        })
    });
}

/// One task's share of an attention call: the (token, head) slices whose outputs are in its
/// `dst`, numbered `token * n_head + head` from `first_head`.
struct AttnJob<'a> {
    q: &'a [f32],
    seqs: &'a [AttnSeq<'a>],
    s: &'a AttnShape,
    first_head: usize,
}

/// Per-thread working memory of [`attend`], kept between calls so that a task allocates
/// nothing once it has seen the longest context.
#[derive(Default)]
struct AttnScratch {
    weights: Vec<f32>,
    q16: Vec<f32>,
    kv: Vec<f32>,
    /// acc[l * head_dim + d]: lane l (cache position mod 8) of output value d.
    acc: Vec<f32>,
}

impl AttnJob<'_> {
    /// The cache of query row `t`, its position and the first position it sees.
    #[inline(always)]
    fn locate(&self, t: usize) -> (&LayerCache, usize, usize) {
        // The sequence holding row t: the last one starting at or before it.
        let seq = &self.seqs[self.seqs.partition_point(|x| x.first_row <= t) - 1];
        let pos = seq.pos0 + t - seq.first_row;
        let first = match self.s.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        };
        (seq.cache, pos, first)
    }
}

thread_local! {
    static ATTN_SCRATCH: std::cell::RefCell<AttnScratch> =
        std::cell::RefCell::new(AttnScratch::default());
}

/// [`attend`] compiled with hardware FMA. `mul_add` is exactly rounded either way, so this only
/// changes the speed (software `fmaf` is many times slower), never the result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn attend_fma(job: &AttnJob, dst: &mut [f32], scratch: &mut AttnScratch) {
    attend(job, dst, scratch)
}

/// The (token, head) slices of `dst`. Called with the scratch already borrowed: the body must
/// be inlined into [`attend_fma`] (a closure passed to `LocalKey::with` would not be, and its
/// `mul_add` would become a software `fmaf` call).
#[inline(always)]
fn attend(job: &AttnJob, dst: &mut [f32], scratch: &mut AttnScratch) {
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

/// [`attend`] with AVX2, FMA and F16C, reading the f16 cache directly: every float operation
/// of the portable code, in the same order per output, so the same bits; what changes is that
/// rows are widened in registers instead of through a scratch row, several dot products run at
/// once (each with its own accumulator, instead of one chain of dependent multiply-adds), each
/// cached row is read once for all the query heads of its KV head, and `exp` takes 8 lanes.
/// Only for head sizes that are a multiple of 8.
#[cfg(target_arch = "x86_64")]
mod avx2 {
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

    /// [`super::hsum8`] of the lanes of `a`: halves first, then pairs.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum8(a: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
    }

    /// [`super::expf_avx`] of each lane, the same operations (including the choice of branch
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

    fn cache(values: &[f32]) -> LayerCache {
        let bits: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
        LayerCache {
            k: bits.clone(),
            v: bits,
        }
    }

    #[test]
    fn sliding_window_hides_positions_outside_it() {
        let shape = |window| AttnShape {
            n_head: 1,
            n_head_kv: 1,
            head_dim: 8,
            scale: 0.5,
            window,
        };
        let q: Vec<f32> = (0..8).map(|i| i as f32 * 0.1).collect();
        let a: Vec<f32> = (0..24).map(|i| (i % 7) as f32 * 0.3 - 0.5).collect();
        let mut b = a.clone();
        b[..8].copy_from_slice(&[9.0; 8]); // position 0 changed
        let run = |c: &LayerCache, w| {
            let mut out = vec![0.0f32; 8];
            let seq = AttnSeq {
                cache: c,
                pos0: 2,
                first_row: 0,
            };
            attention(&q, &[seq], &shape(w), &mut out, 1);
            out
        };
        // The query at position 2 with a window of 2 sees positions 1 and 2 only.
        assert_eq!(run(&cache(&a), Some(2)), run(&cache(&b), Some(2)));
        assert_ne!(run(&cache(&a), None), run(&cache(&b), None));
        // A window wider than the sequence changes nothing.
        assert_eq!(run(&cache(&a), Some(3)), run(&cache(&a), None));
        // A window of 1: the token attends to itself only, so the output is its value.
        let own: Vec<f32> = a[16..24]
            .iter()
            .map(|&v| f16::from_f32(v).to_f32())
            .collect();
        assert_eq!(run(&cache(&a), Some(1)), own);
    }

    #[test]
    fn rope_styles_rotate_different_pairs() {
        let rope = |style| Rope {
            style,
            n_dims: 4,
            freq_base: 10000.0,
            freq_scale: 1.0,
        };
        let x = [1.0f32, 0.0, 0.0, 0.0];
        let mut normal = x;
        super::rope(&mut normal, 1..2, 4, &rope(RopeStyle::Normal), None);
        let mut neox = x;
        super::rope(&mut neox, 1..2, 4, &rope(RopeStyle::Neox), None);
        // Position 1, first pair: angle 1 rad. Normal pairs (0, 1), NEOX pairs (0, 2).
        assert_eq!(normal, [1f32.cos(), 1f32.sin(), 0.0, 0.0]);
        assert_eq!(neox, [1f32.cos(), 0.0, 1f32.sin(), 0.0]);
        // Position 0 is the identity.
        let mut same = [0.3f32, -0.2, 0.7, 0.1];
        super::rope(&mut same, 0..1, 4, &rope(RopeStyle::Neox), None);
        assert_eq!(same, [0.3, -0.2, 0.7, 0.1]);
    }

    #[test]
    fn geglu_uses_the_f16_gelu_table() {
        let mut g = [-11.0f32, 11.0, 0.0, 1.0];
        geglu(&mut g, &[2.0; 4]);
        assert_eq!(g[0], 0.0);
        assert_eq!(g[1], 22.0);
        assert_eq!(g[2], 0.0);
        // gelu(1) = 0.841192, rounded to f16 = 0.84130859375.
        assert_eq!(g[3], 2.0 * 0.841_308_6);
    }

    #[test]
    fn geglu_table_equals_the_formula_on_every_f16_input() {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        const COEF_A: f32 = 0.044715;
        // Inputs that are not f16 values round first, like llama.cpp's table lookup.
        let xs: Vec<f32> = (0..200_000).map(|i| -10.0 + i as f32 * 1e-4).collect();
        let mut g = xs.clone();
        geglu(&mut g, &vec![1.0; xs.len()]);
        for (&x, &got) in xs.iter().zip(&g) {
            if x <= -10.0 || x >= 10.0 {
                continue;
            }
            let x = f16::from_f32(x).to_f32();
            let y = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh());
            assert_eq!(
                got.to_bits(),
                f16::from_f32(y).to_f32().to_bits(),
                "x = {x}"
            );
        }
    }

    #[test]
    fn hsum8_adds_halves_first() {
        assert_eq!(hsum8([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), 36.0);
        // (1e8 + -1e8) + ... differs from a left-to-right sum.
        let a = [1e8, 1.0, 0.0, 0.0, -1e8, 1.0, 0.0, 0.0];
        assert_eq!(hsum8(a), 2.0);
    }

    /// Xorshift: the tests need varied bits, not statistical quality.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Uniform in [-r, r).
        fn f32(&mut self, r: f32) -> f32 {
            ((self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * r
        }
    }

    /// Each kernel the CPU runs gives the portable code's bits, on random caches: head sizes
    /// with and without a tail of 8, GQA groups split into runs of 4, 3, 2 and 1 heads,
    /// windows, positions off multiples of 8, several sequences per call, one thread (every
    /// head in one task) and two (tasks of a head or of a KV head's group), and scores wide
    /// enough that `exp` takes its slow branch and underflows.
    #[test]
    fn attention_kernels_match_portable_bit_for_bit() {
        let mut kernels = vec![];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("fma") {
                kernels.push(Kernel::Fma);
            }
            if has!("avx2") && has!("fma") && has!("f16c") {
                kernels.push(Kernel::Avx2);
            } else {
                eprintln!("no AVX2 + FMA + F16C: the AVX2 kernel is not tested");
            }
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        for hd in [8, 16, 24, 40, 64, 256] {
            for (n_head, n_head_kv) in [
                (1, 1),
                (2, 2),
                (4, 1),
                (4, 2),
                (3, 1),
                (6, 1),
                (8, 2),
                (7, 1),
            ] {
                for window in [None, Some(1), Some(5), Some(19)] {
                    let range = [0.5f32, 2.0, 8.0][rng.below(3)];
                    let s = AttnShape {
                        n_head,
                        n_head_kv,
                        head_dim: hd,
                        scale: [0.125f32, 1.0, 16.0][rng.below(3)],
                        window,
                    };
                    // A decode step (one row) or a batch of 1 to 3 sequences.
                    let lens: Vec<usize> = if rng.below(4) == 0 {
                        vec![1]
                    } else {
                        (0..1 + rng.below(3)).map(|_| 1 + rng.below(21)).collect()
                    };
                    let kv_row = n_head_kv * hd;
                    let mut caches = vec![];
                    let mut starts = vec![];
                    for &rows in &lens {
                        let pos0 = rng.below(45);
                        let n = (pos0 + rows) * kv_row;
                        let mut half = || f16::from_f32(rng.f32(range)).to_bits();
                        let k = (0..n).map(|_| half()).collect();
                        let v = (0..n).map(|_| half()).collect();
                        caches.push(LayerCache { k, v });
                        starts.push(pos0);
                    }
                    let mut seqs = vec![];
                    let mut first_row = 0;
                    for ((cache, &pos0), &rows) in caches.iter().zip(&starts).zip(&lens) {
                        seqs.push(AttnSeq {
                            cache,
                            pos0,
                            first_row,
                        });
                        first_row += rows;
                    }
                    let q: Vec<f32> = (0..first_row * n_head * hd)
                        .map(|_| rng.f32(range))
                        .collect();
                    let run = |kernel, threads| {
                        let mut out = vec![f32::NAN; q.len()];
                        attention_with(kernel, &q, &seqs, &s, &mut out, threads);
                        out
                    };
                    let want = run(Kernel::Portable, 1);
                    for &kernel in &kernels {
                        // `Kernel::detect` never picks AVX2 for these head sizes.
                        #[cfg(target_arch = "x86_64")]
                        if kernel == Kernel::Avx2 && !hd.is_multiple_of(8) {
                            continue;
                        }
                        for threads in [1, 2] {
                            let got = run(kernel, threads);
                            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert_eq!(
                                    g.to_bits(),
                                    w.to_bits(),
                                    "{kernel:?}, {threads} threads, head_dim {hd}, heads \
                                     {n_head}/{n_head_kv}, window {window:?}, rows {lens:?} \
                                     from {starts:?}: value {i} is {g}, portable {w}"
                                );
                            }
                            compared += 1;
                        }
                    }
                }
            }
        }
        eprintln!("{compared} kernel runs compared");
    }
}
