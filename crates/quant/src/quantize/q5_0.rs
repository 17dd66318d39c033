//! Q5_0: blocks of 32 values, an f16 scale `d = max / -16` (max = the value of largest
//! magnitude, with its sign), 32 high bits and 16 bytes of low nibbles. Values 0..16 of the
//! block sit in the low nibbles, 16..32 in the high nibbles; `x = d * (q - 16)`.

use super::common::f16_bits;

pub(crate) const BLOCK: usize = 32;
pub(crate) const BYTES: usize = 22;

pub(crate) fn quantize_blocks(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb[..2].copy_from_slice(&f16_bits(d).to_le_bytes());
        let mut qh = 0u32;
        for j in 0..BLOCK / 2 {
            // x * id lies in [-16, 16], so the sum is positive and truncation is floor.
            let q0 = ((xb[j] * id + 16.5) as u8).min(31);
            let q1 = ((xb[j + BLOCK / 2] * id + 16.5) as u8).min(31);
            yb[6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from(q0 >> 4) << j;
            qh |= u32::from(q1 >> 4) << (j + BLOCK / 2);
        }
        yb[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}
