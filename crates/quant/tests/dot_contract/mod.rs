//! The documented arithmetic of `ms_quant::dot`, restated independently from the spec
//! decoder's integer parts, and the rounding bound against the f64 dot product of the
//! dequantized rows. Shared by the `dot_*` tests.

#![allow(dead_code)]

use crate::dequant_spec::{self, parts, scales};
use ms_quant::{GgmlType, QuantizedRow, dequantize_to_vec};

/// A small deterministic generator, so a failing case prints one seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn put_f16(b: &mut [u8], at: usize, x: f32) {
    b[at..at + 2].copy_from_slice(&half::f16::from_f32(x).to_bits().to_le_bytes());
}

/// `blocks` random blocks of `ty`: random quant bits, finite scales of either sign.
pub fn random_weights(ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let n = blocks * ty.block_len();
    match ty {
        GgmlType::F32 => (0..n)
            .flat_map(|_| (rng.unit() * 3.0).to_le_bytes())
            .collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| {
                half::f16::from_f32(rng.unit() * 3.0)
                    .to_bits()
                    .to_le_bytes()
            })
            .collect(),
        GgmlType::Bf16 => (0..n)
            .flat_map(|_| {
                half::bf16::from_f32(rng.unit() * 3.0)
                    .to_bits()
                    .to_le_bytes()
            })
            .collect(),
        _ => {
            let mut w: Vec<u8> = (0..blocks * ty.block_bytes())
                .map(|_| rng.next() as u8)
                .collect();
            for b in w.chunks_exact_mut(ty.block_bytes()) {
                let (d, m) = (rng.unit() * 0.05, rng.unit() * 0.05);
                match ty {
                    GgmlType::Q6K => put_f16(b, 208, d),
                    GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => put_f16(b, 0, d),
                    _ => {
                        put_f16(b, 0, d);
                        put_f16(b, 2, m);
                    }
                }
            }
            w
        }
    }
}

fn reduce8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

fn float_value(ty: GgmlType, b: &[u8], i: usize) -> f32 {
    let s = if ty == GgmlType::F32 { 4 } else { 2 };
    dequant_spec::value(ty, &b[s * i..s * (i + 1)], 0)
}

/// The documented arithmetic of `ms_quant::dot`, restated from the spec decoder's parts.
pub fn contract(ty: GgmlType, w: &[u8], act: &QuantizedRow) -> f32 {
    let at = act.ty();
    let a = act.as_bytes();
    if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16) {
        let mut acc = [0.0f32; 32];
        for i in 0..act.len() {
            acc[i % 32] += float_value(ty, w, i) * float_value(at, a, i);
        }
        let mut eight = [0.0f32; 8];
        for l in 0..8 {
            eight[l] = (acc[l] + acc[l + 8]) + (acc[l + 16] + acc[l + 24]);
        }
        return reduce8(eight);
    }
    let (bl, wbb, abb) = (ty.block_len(), ty.block_bytes(), at.block_bytes());
    assert_eq!(bl, at.block_len());
    let mut lanes = [0.0f32; 8];
    for b in 0..act.len() / bl {
        let wb = &w[b * wbb..(b + 1) * wbb];
        let ab = &a[b * abb..(b + 1) * abb];
        let (mut isum, mut imin) = (0i64, 0i64);
        for i in 0..bl {
            let (p, q8) = (parts(ty, wb, i), parts(at, ab, i).q as i64);
            isum += p.scale as i64 * p.q as i64 * q8;
            imin += p.min as i64 * q8;
        }
        let isum = i32::try_from(isum).unwrap() as f32;
        let imin = i32::try_from(imin).unwrap() as f32;
        let (dw, mw) = scales(ty, wb);
        let (da, sa) = scales(at, ab);
        lanes[b % 8] += match ty {
            GgmlType::Q4_1 | GgmlType::Q5_1 => (dw * da) * isum + mw * sa,
            GgmlType::Q4K | GgmlType::Q5K => (dw * da) * isum - (mw * da) * imin,
            _ => (dw * da) * isum,
        };
    }
    reduce8(lanes)
}

/// `(exact, bound)`: the f64 dot product of the dequantized rows, and the largest distance the
/// f32 kernel may be from it: `(blocks + 8) · 2^-23` times the sum of the magnitudes of every
/// partial product (scale and min parts separately), plus, for Q4_1 / Q5_1, the block minimum
/// times the distance between Q8_1's stored sum `s` and the sum of the dequantized activations.
pub fn exact_and_bound(ty: GgmlType, w: &[u8], act: &QuantizedRow) -> (f64, f64) {
    let at = act.ty();
    let wd = dequantize_to_vec(ty, w).unwrap();
    let ad = dequantize_to_vec(at, act.as_bytes()).unwrap();
    let exact: f64 = wd.iter().zip(&ad).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = act.len();
    let (mut mag, mut extra) = (0.0f64, 0.0f64);
    if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16) {
        mag = wd
            .iter()
            .zip(&ad)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        let depth = n / 32 + 8;
        return (exact, depth as f64 * 2f64.powi(-23) * mag);
    }
    let (bl, wbb, abb) = (ty.block_len(), ty.block_bytes(), at.block_bytes());
    for b in 0..n / bl {
        let wb = &w[b * wbb..(b + 1) * wbb];
        let ab = &act.as_bytes()[b * abb..(b + 1) * abb];
        let (dw, mw) = scales(ty, wb);
        let (_, sa) = scales(at, ab);
        for i in 0..bl {
            let p = parts(ty, wb, i);
            let a = ad[b * bl + i].abs() as f64;
            mag += (dw as f64 * p.scale as f64 * p.q as f64).abs() * a;
            mag += (mw as f64 * p.min as f64).abs() * a;
        }
        if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
            // The kernel uses Q8_1's stored s = f16(Σq · d) (d before its own f16 rounding)
            // where the dequantized activations sum to Σ f16(d) · q.
            let sum_a: f64 = ad[b * bl..(b + 1) * bl].iter().map(|v| *v as f64).sum();
            mag += (mw as f64 * sa as f64).abs();
            extra += (mw as f64).abs() * (sa as f64 - sum_a).abs();
        }
    }
    let depth = (n / bl + 8) as f64;
    (exact, depth * 2f64.powi(-23) * mag + extra)
}
