//! Q8_K: blocks of 256 values, an f32 scale, 256 signed bytes and 16 i16 sums of 16 values
//! each (the sums let K-quant dot products fold the sub-block mins in cheaply).

use super::common::nearest_int;

pub(crate) const BLOCK: usize = 256;
pub(crate) const BYTES: usize = 292;

pub(crate) fn quantize_blocks(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            yb.fill(0);
            continue;
        }
        // -127 rather than -128 keeps every quant in -127..=127, as GGML does.
        let iscale = -127.0f32 / max;
        let mut qs = [0i8; BLOCK];
        for (q, &v) in qs.iter_mut().zip(xb) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        yb[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for (b, &q) in yb[4..4 + BLOCK].iter_mut().zip(&qs) {
            *b = q as u8;
        }
        for (j, sums) in qs.chunks_exact(16).enumerate() {
            let s: i16 = sums.iter().map(|&q| i16::from(q)).sum();
            yb[4 + BLOCK + 2 * j..4 + BLOCK + 2 * j + 2].copy_from_slice(&s.to_le_bytes());
        }
    }
}
