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
    let mut cache = vec![0.0f32; r.n_dims];
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
    // One task per (token, head) output slice: later tokens see more keys, and the pool hands
    // tasks out one at a time, so the causal imbalance evens out; a single generated token
    // still spreads its heads over the threads, and so do the tokens of several sequences.
    let hd = s.head_dim;
    run_chunks(out, hd, threads, &|start, dst| {
        let job = AttnJob {
            q,
            seqs,
            s,
            first_head: start / hd,
        };
        ATTN_SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has FMA, checked just above.
                unsafe { attend_fma(&job, dst, scratch) };
                return;
            }
            attend(&job, dst, scratch);
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
    let AttnJob { q, seqs, s, .. } = *job;
    let hd = s.head_dim;
    let row = s.n_head * hd;
    let group = s.n_head / s.n_head_kv;
    let kv_row = s.n_head_kv * hd;
    let (t, h) = (index / s.n_head, index % s.n_head);
    // The sequence holding row t: the last one starting at or before it.
    let seq = &seqs[seqs.partition_point(|x| x.first_row <= t) - 1];
    let (cache, pos) = (seq.cache, seq.pos0 + t - seq.first_row);
    let first = match s.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
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
}
