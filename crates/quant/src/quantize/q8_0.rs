//! Q8_0: blocks of 32 values, an f16 scale `d = amax / 127` and 32 signed bytes
//! `round(x / d)` (halves away from zero, like C's `roundf`).

use super::common::f16_bits;

pub(crate) const BLOCK: usize = 32;
pub(crate) const BYTES: usize = 34;

pub(crate) fn quantize_blocks(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb[..2].copy_from_slice(&f16_bits(d).to_le_bytes());
        for (q, &v) in yb[2..].iter_mut().zip(xb) {
            *q = (v * id).round() as i8 as u8;
        }
    }
}
