//! Scalar block kernels: dequantize a row, quantize activations, dot a weight row with
//! quantized activations.
//!
//! The numerics follow llama.cpp's CPU backend: activations are quantized to the weight type's
//! `vec_dot_type` (Q8_0 for Q4_0/Q5_0/Q8_0 weights, Q8_K for K-quants, F16 for F16 weights,
//! F32 for F32), the products of integer blocks are summed exactly in integers, and the block
//! scales are applied in f32. This is the reference backend; faster kernels must agree with it.

use half::f16;
use ms_gguf::GgmlType;

const QK8_0: usize = 32;
const QK_K: usize = 256;
/// Q8_K block: f32 d, 256 i8, 16 i16 sums of 16 values.
const Q8K_BYTES: usize = 4 + QK_K + 2 * (QK_K / 16);

/// The weight types the kernels handle.
pub(crate) const SUPPORTED_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
];

/// The type activations are converted to before a dot product with a `weight` row.
pub(crate) fn vec_dot_type(weight: GgmlType) -> GgmlType {
    match weight {
        GgmlType::F16 => GgmlType::F16,
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => GgmlType::Q8_0,
        GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K => GgmlType::Q8K,
        _ => GgmlType::F32,
    }
}

/// Bytes of one row of `n` activations of type `ty` (`n` a multiple of the block length).
pub(crate) fn act_row_bytes(ty: GgmlType, n: usize) -> usize {
    match ty {
        GgmlType::Q8K => n / QK_K * Q8K_BYTES,
        GgmlType::F32 => n * 4,
        _ => ty.row_bytes(n as u64).unwrap_or(0) as usize,
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Quantizes `x` to `ty` (one of the `vec_dot_type`s) into `out` (`act_row_bytes` long).
pub(crate) fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) {
    match ty {
        GgmlType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
        GgmlType::Q8_0 => {
            for (o, xb) in out.chunks_exact_mut(2 + QK8_0).zip(x.chunks_exact(QK8_0)) {
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
                for (q, v) in o[2..].iter_mut().zip(xb) {
                    *q = (v * id).round() as i8 as u8;
                }
            }
        }
        GgmlType::Q8K => {
            for (o, xb) in out.chunks_exact_mut(Q8K_BYTES).zip(x.chunks_exact(QK_K)) {
                let (mut amax, mut max) = (0.0f32, 0.0f32);
                for &v in xb {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                if amax == 0.0 {
                    o.fill(0);
                    continue;
                }
                let iscale = -127.0 / max;
                let (d, rest) = o.split_at_mut(4);
                let (qs, sums) = rest.split_at_mut(QK_K);
                for (q, v) in qs.iter_mut().zip(xb) {
                    *q = ((iscale * v).round() as i32).min(127) as i8 as u8;
                }
                for (s, qb) in sums.chunks_exact_mut(2).zip(qs.chunks_exact(16)) {
                    let sum: i16 = qb.iter().map(|&q| q as i8 as i16).sum();
                    s.copy_from_slice(&sum.to_le_bytes());
                }
                d.copy_from_slice(&(1.0 / iscale).to_le_bytes());
            }
        }
        other => unreachable!("{other} is not an activation type"),
    }
}

/// Dot product of one weight row (type `ty`, `n` values) with activations quantized to
/// `vec_dot_type(ty)`.
pub(crate) fn vec_dot(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    match ty {
        GgmlType::F32 => {
            let mut s = 0.0f32;
            for (wc, ac) in w.chunks_exact(4).zip(a.chunks_exact(4)).take(n) {
                s += f32::from_le_bytes([wc[0], wc[1], wc[2], wc[3]])
                    * f32::from_le_bytes([ac[0], ac[1], ac[2], ac[3]]);
            }
            s
        }
        GgmlType::F16 => {
            let mut s = 0.0f32;
            for (wc, ac) in w.chunks_exact(2).zip(a.chunks_exact(2)).take(n) {
                s += f16::from_le_bytes([wc[0], wc[1]]).to_f32()
                    * f16::from_le_bytes([ac[0], ac[1]]).to_f32();
            }
            s
        }
        GgmlType::Q8_0 => dot_q8_0_blocks(w, a, 34, |wb, q| {
            for (j, v) in q.iter_mut().enumerate() {
                *v = wb[2 + j] as i8 as i32;
            }
        }),
        GgmlType::Q4_0 => dot_q8_0_blocks(w, a, 18, |wb, q| {
            for j in 0..16 {
                q[j] = (wb[2 + j] & 0x0f) as i32 - 8;
                q[j + 16] = (wb[2 + j] >> 4) as i32 - 8;
            }
        }),
        GgmlType::Q5_0 => dot_q8_0_blocks(w, a, 22, |wb, q| {
            let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
            for j in 0..16 {
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                q[j] = ((wb[6 + j] as u32 & 0x0f) | h0) as i32 - 16;
                q[j + 16] = ((wb[6 + j] as u32 >> 4) | h1) as i32 - 16;
            }
        }),
        GgmlType::Q4K => dot_q4_k(w, a),
        GgmlType::Q6K => dot_q6_k(w, a),
        other => unreachable!("{other} has no dot kernel"),
    }
}

/// Blocks of 32 weights with one f16 scale first, dotted with Q8_0 activations. `unpack`
/// writes the block's 32 integer weights.
fn dot_q8_0_blocks(
    w: &[u8],
    a: &[u8],
    block: usize,
    unpack: impl Fn(&[u8], &mut [i32; 32]),
) -> f32 {
    let mut q = [0i32; 32];
    let mut s = 0.0f32;
    for (wb, ab) in w.chunks_exact(block).zip(a.chunks_exact(2 + QK8_0)) {
        unpack(wb, &mut q);
        let sumi: i32 = q
            .iter()
            .zip(&ab[2..])
            .map(|(&x, &y)| x * (y as i8 as i32))
            .sum();
        s += sumi as f32 * (f16_at(wb, 0) * f16_at(ab, 0));
    }
    s
}

fn q8k_parts(ab: &[u8]) -> (f32, &[u8], &[u8]) {
    let d = f32::from_le_bytes([ab[0], ab[1], ab[2], ab[3]]);
    (d, &ab[4..4 + QK_K], &ab[4 + QK_K..Q8K_BYTES])
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block (llama.cpp get_scale_min_k4).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn dot_q4_k(w: &[u8], a: &[u8]) -> f32 {
    let mut s = 0.0f32;
    for (wb, ab) in w.chunks_exact(144).zip(a.chunks_exact(Q8K_BYTES)) {
        let (dy, q8, bsums) = q8k_parts(ab);
        let d = f16_at(wb, 0) * dy;
        let dmin = f16_at(wb, 2) * dy;
        let scales = &wb[4..16];
        let qs = &wb[16..144];
        let mut sumi = 0i32;
        let mut summ = 0i32;
        for sub in 0..8 {
            let (sc, m) = scale_min_k4(sub, scales);
            let chunk = &qs[(sub / 2) * 32..(sub / 2) * 32 + 32];
            let shift = if sub % 2 == 0 { 0 } else { 4 };
            let y = &q8[sub * 32..sub * 32 + 32];
            let dot: i32 = chunk
                .iter()
                .zip(y)
                .map(|(&x, &y)| ((x >> shift) & 0x0f) as i32 * (y as i8 as i32))
                .sum();
            sumi += sc as i32 * dot;
            let bs = i16::from_le_bytes([bsums[sub * 4], bsums[sub * 4 + 1]]) as i32
                + i16::from_le_bytes([bsums[sub * 4 + 2], bsums[sub * 4 + 3]]) as i32;
            summ += m as i32 * bs;
        }
        s += d * sumi as f32 - dmin * summ as f32;
    }
    s
}

/// The 256 signed 6-bit values of a Q6_K block, in order.
fn unpack_q6_k(wb: &[u8], q: &mut [i32; QK_K]) {
    let (ql, rest) = wb.split_at(128);
    let qh = &rest[..64];
    for half in 0..2 {
        let ql = &ql[half * 64..];
        let qh = &qh[half * 32..];
        let out = &mut q[half * 128..];
        for l in 0..32 {
            out[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            out[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            out[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            out[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
        }
    }
}

fn dot_q6_k(w: &[u8], a: &[u8]) -> f32 {
    let mut q = [0i32; QK_K];
    let mut s = 0.0f32;
    for (wb, ab) in w.chunks_exact(210).zip(a.chunks_exact(Q8K_BYTES)) {
        let (dy, q8, _) = q8k_parts(ab);
        unpack_q6_k(wb, &mut q);
        let scales = &wb[192..208];
        let mut sumi = 0i32;
        for sub in 0..16 {
            let dot: i32 = q[sub * 16..sub * 16 + 16]
                .iter()
                .zip(&q8[sub * 16..sub * 16 + 16])
                .map(|(&x, &y)| x * (y as i8 as i32))
                .sum();
            sumi += scales[sub] as i8 as i32 * dot;
        }
        s += f16_at(wb, 208) * dy * sumi as f32;
    }
    s
}

/// Dequantizes one row of `out.len()` values of type `ty`.
pub(crate) fn dequantize_row(ty: GgmlType, b: &[u8], out: &mut [f32]) {
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (o, wb) in out.chunks_exact_mut(32).zip(b.chunks_exact(34)) {
                let d = f16_at(wb, 0);
                for (v, &q) in o.iter_mut().zip(&wb[2..]) {
                    *v = (q as i8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, wb) in out.chunks_exact_mut(32).zip(b.chunks_exact(18)) {
                let d = f16_at(wb, 0);
                for j in 0..16 {
                    o[j] = ((wb[2 + j] & 0x0f) as i32 - 8) as f32 * d;
                    o[j + 16] = ((wb[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q5_0 => {
            for (o, wb) in out.chunks_exact_mut(32).zip(b.chunks_exact(22)) {
                let d = f16_at(wb, 0);
                let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
                for j in 0..16 {
                    let h0 = ((qh >> j) << 4) & 0x10;
                    let h1 = (qh >> (j + 12)) & 0x10;
                    o[j] = (((wb[6 + j] as u32 & 0x0f) | h0) as i32 - 16) as f32 * d;
                    o[j + 16] = (((wb[6 + j] as u32 >> 4) | h1) as i32 - 16) as f32 * d;
                }
            }
        }
        GgmlType::Q4K => {
            for (o, wb) in out.chunks_exact_mut(QK_K).zip(b.chunks_exact(144)) {
                let d = f16_at(wb, 0);
                let dmin = f16_at(wb, 2);
                let scales = &wb[4..16];
                let qs = &wb[16..144];
                for sub in 0..8 {
                    let (sc, m) = scale_min_k4(sub, scales);
                    let (d1, m1) = (d * sc as f32, dmin * m as f32);
                    let shift = if sub % 2 == 0 { 0 } else { 4 };
                    let chunk = &qs[(sub / 2) * 32..(sub / 2) * 32 + 32];
                    for (v, &q) in o[sub * 32..sub * 32 + 32].iter_mut().zip(chunk) {
                        *v = d1 * ((q >> shift) & 0x0f) as f32 - m1;
                    }
                }
            }
        }
        GgmlType::Q6K => {
            let mut q = [0i32; QK_K];
            for (o, wb) in out.chunks_exact_mut(QK_K).zip(b.chunks_exact(210)) {
                unpack_q6_k(wb, &mut q);
                let d = f16_at(wb, 208);
                for (i, v) in o.iter_mut().enumerate() {
                    *v = d * (wb[192 + i / 16] as i8) as f32 * q[i] as f32;
                }
            }
        }
        other => unreachable!("{other} has no dequantize kernel"),
    }
}
