//! The small operations the architectures share: RMS norm, RoPE, activations (attention is
//! in [`crate::attention`]).
//!
//! Where llama.cpp rounds through f16 (GELU table) we round the same way, so that our logits
//! track its outputs closely.

use half::f16;

use crate::model::{Rope, RopeStyle};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
