//! Q5_1: blocks of 32 values, f16 scale `d = (max - min) / 31`, f16 `m = min`, 32 high bits
//! and 16 bytes of low nibbles (values 0..16 in low nibbles, 16..32 in high nibbles);
//! `x = d * q + m`. llama.cpp's `quantize_row_q5_1_ref`.

use super::common::f16_bits;

pub(crate) const BLOCK: usize = 32;
pub(crate) const BYTES: usize = 24;

pub(crate) fn quantize_blocks(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in xb {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb[0..2].copy_from_slice(&f16_bits(d).to_le_bytes());
        yb[2..4].copy_from_slice(&f16_bits(min).to_le_bytes());
        let mut qh = 0u32;
        for j in 0..BLOCK / 2 {
            // (x - min) * id lies in [0, 31]: the cast truncates like GGML's.
            let q0 = ((xb[j] - min) * id + 0.5) as u8;
            let q1 = ((xb[j + BLOCK / 2] - min) * id + 0.5) as u8;
            yb[8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from((q0 & 0x10) >> 4) << j;
            qh |= u32::from((q1 & 0x10) >> 4) << (j + BLOCK / 2);
        }
        yb[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}
