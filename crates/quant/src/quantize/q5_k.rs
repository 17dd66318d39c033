//! Q5_K: super-blocks of 256 values in 8 sub-blocks of 32, like Q4_K with a fifth bit.
//! Layout (176 bytes): f16 `d`, f16 `dmin`, the same 12 bytes of 6-bit scales and mins,
//! 32 bytes of high bits, 128 bytes of low nibbles. A value is `d * sc * q - dmin * m`,
//! `q` in 0..32.
//!
//! The reference path is llama.cpp's `quantize_row_q5_K_ref` (search -0.5 + 0.1 * is for
//! is in 0..=15); the default path refines it like Q4_K.

use super::common::ScaleSearch;
use super::q4_k::{Encoded, encode_reference, improve, pack_scales};

pub(crate) const BLOCK: usize = 256;
pub(crate) const BYTES: usize = 176;
const NMAX: i32 = 31;
const SEARCH: ScaleSearch = ScaleSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
};

fn write(e: &Encoded, yb: &mut [u8]) {
    yb[0..2].copy_from_slice(&e.d.to_le_bytes());
    yb[2..4].copy_from_slice(&e.dmin.to_le_bytes());
    yb[4..16].copy_from_slice(&pack_scales(&e.ls, &e.lm));
    let (qh, ql) = yb[16..].split_at_mut(32);
    qh.fill(0);
    for (c, chunk) in e.l.chunks_exact(64).enumerate() {
        // Chunk c keeps its high bits in bits 2c (first 32 values) and 2c + 1 (next 32).
        let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
        for j in 0..32 {
            let (mut l1, mut l2) = (chunk[j], chunk[j + 32]);
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[32 * c + j] = l1 | (l2 << 4);
        }
    }
}

/// llama.cpp's reference Q5_K quantizer.
pub(crate) fn quantize_blocks_reference(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        write(&encode_reference(xb, NMAX, SEARCH), yb);
    }
}

/// The reference result with each sub-block's scale and min codes locally refined.
pub(crate) fn quantize_blocks(x: &[f32], out: &mut [u8]) {
    for (xb, yb) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BYTES)) {
        let mut e = encode_reference(xb, NMAX, SEARCH);
        improve(xb, &mut e, NMAX);
        write(&e, yb);
    }
}
