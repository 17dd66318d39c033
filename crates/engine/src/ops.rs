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
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        let act = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x
        } else {
            let x = f16::from_f32(x).to_f32();
            let y = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh());
            f16::from_f32(y).to_f32()
        };
        *g = act * u;
    }
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

/// Causal attention of the queries `q` (one row of `n_head * head_dim` per token, the first at
/// position `pos0`) over the cache, which already holds these tokens' keys and values.
/// As in llama.cpp: Q is rounded to f16 for Q·K, the softmax weights to f16 for the sum of V.
pub(crate) fn attention(
    q: &[f32],
    cache: &LayerCache,
    pos0: usize,
    s: &AttnShape,
    out: &mut [f32],
    threads: usize,
) {
    let row = s.n_head * s.head_dim;
    let n_tok = q.len() / row;
    let group = s.n_head / s.n_head_kv;
    let kv_row = s.n_head_kv * s.head_dim;
    let per_thread = n_tok.div_ceil(threads.max(1)).max(1) * row;
    run_chunks(out, per_thread, threads, &|start, dst| {
        let mut scores = Vec::new();
        let mut q16 = vec![0.0f32; s.head_dim];
        for (i, out_t) in dst.chunks_exact_mut(row).enumerate() {
            let t = start / row + i;
            let pos = pos0 + t;
            let first = match s.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            for h in 0..s.n_head {
                let kvh = h / group;
                let qh = &q[t * row + h * s.head_dim..t * row + (h + 1) * s.head_dim];
                for (a, &b) in q16.iter_mut().zip(qh) {
                    *a = f16::from_f32(b).to_f32();
                }
                scores.clear();
                let mut max = f32::NEG_INFINITY;
                for j in first..=pos {
                    let k = &cache.k[j * kv_row + kvh * s.head_dim..][..s.head_dim];
                    let mut dot = 0.0f32;
                    for (&kv, &qv) in k.iter().zip(&q16) {
                        dot += f16::from_bits(kv).to_f32() * qv;
                    }
                    let v = dot * s.scale;
                    max = max.max(v);
                    scores.push(v);
                }
                let mut sum = 0.0f64;
                for v in scores.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v as f64;
                }
                let inv = (1.0 / sum) as f32;
                let o = &mut out_t[h * s.head_dim..(h + 1) * s.head_dim];
                o.fill(0.0);
                for (j, &p) in (first..=pos).zip(&scores) {
                    let p = f16::from_f32(p * inv).to_f32();
                    let v = &cache.v[j * kv_row + kvh * s.head_dim..][..s.head_dim];
                    for (a, &b) in o.iter_mut().zip(v) {
                        *a += p * f16::from_bits(b).to_f32();
                    }
                }
            }
        }
    });
}
