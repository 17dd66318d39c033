//! A test-only decoder written straight from the block format definitions, one value at a
//! time: given a block and a value index, find that value's bits and scale. It shares no code
//! with the crate's row decoders (which walk whole blocks), so that each checks the other.

#![allow(dead_code)]

use ms_quant::GgmlType;

fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Bit `bit` of the little-endian bit string starting at `b[at]`.
fn bit(b: &[u8], at: usize, bit: usize) -> u32 {
    ((b[at + bit / 8] >> (bit % 8)) & 1) as u32
}

/// The 4-bit group `which` (0 = low nibble, 1 = high) of byte `b[at]`.
fn nibble(b: &[u8], at: usize, which: usize) -> u32 {
    ((b[at] >> (4 * which)) & 0xf) as u32
}

/// Scale and min (6 bits each) of sub-block `s` (0..8) of a Q4_K / Q5_K block, from the 12
/// bytes at `at`. Sub-blocks 0..4: scale in bits 0..6 of byte s, min in bits 0..6 of byte
/// s + 4. Sub-blocks 4..8: low 4 bits in byte s + 4 (scale low nibble, min high nibble), high
/// 2 bits in bits 6..8 of byte s - 4 (scale) and byte s (min).
fn k_scale_min(b: &[u8], at: usize, s: usize) -> (u32, u32) {
    let byte = |k: usize| b[at + k] as u32;
    if s < 4 {
        (byte(s) % 64, byte(s + 4) % 64)
    } else {
        let sc = byte(s + 4) % 16 + 16 * (byte(s - 4) / 64);
        let m = byte(s + 4) / 16 + 16 * (byte(s) / 64);
        (sc, m)
    }
}

/// Value `i` of one block of `ty` (whole block bytes in `b`).
pub fn value(ty: GgmlType, b: &[u8], i: usize) -> f32 {
    match ty {
        GgmlType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => f16(b, 0),
        GgmlType::Bf16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        GgmlType::Q4_0 => {
            let q = nibble(b, 2 + i % 16, i / 16) as i32 - 8;
            q as f32 * f16(b, 0)
        }
        GgmlType::Q4_1 => {
            let q = nibble(b, 4 + i % 16, i / 16);
            q as f32 * f16(b, 0) + f16(b, 2)
        }
        GgmlType::Q5_0 => {
            let q = nibble(b, 6 + i % 16, i / 16) + 16 * bit(b, 2, i);
            (q as i32 - 16) as f32 * f16(b, 0)
        }
        GgmlType::Q5_1 => {
            let q = nibble(b, 8 + i % 16, i / 16) + 16 * bit(b, 4, i);
            q as f32 * f16(b, 0) + f16(b, 2)
        }
        GgmlType::Q8_0 => (b[2 + i] as i8) as f32 * f16(b, 0),
        GgmlType::Q8_1 => (b[4 + i] as i8) as f32 * f16(b, 0),
        GgmlType::Q4K | GgmlType::Q5K => {
            // Sub-block s = i / 32; sub-blocks 2c and 2c+1 share the 32 bytes of chunk c.
            let s = i / 32;
            let qs = if ty == GgmlType::Q4K { 16 } else { 48 };
            let mut q = nibble(b, qs + 32 * (s / 2) + i % 32, s % 2);
            if ty == GgmlType::Q5K {
                q += 16 * bit(b, 16 + i % 32, s);
            }
            let (sc, m) = k_scale_min(b, 4, s);
            (f16(b, 0) * sc as f32) * q as f32 - f16(b, 2) * m as f32
        }
        GgmlType::Q6K => {
            // 128-value halves; in each, quarter k of 32 values takes its low 4 bits from
            // ql byte (l + 32 * (k % 2)), nibble k / 2, and its high 2 bits from bits 2k..2k+2
            // of qh byte l.
            let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
            let lo = nibble(b, 64 * h + 32 * (k % 2) + l, k / 2);
            let hi = (b[128 + 32 * h + l] as u32 >> (2 * k)) & 3;
            let q = (lo + 16 * hi) as i32 - 32;
            let sc = b[192 + i / 16] as i8;
            (f16(b, 208) * sc as f32) * q as f32
        }
        GgmlType::Q8K => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * (b[4 + i] as i8) as f32,
        other => panic!("the spec decoder does not know {other}"),
    }
}

/// Every value of a row of `ty`, decoded one at a time.
pub fn decode_row(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let (bl, bb) = (ty.block_len(), ty.block_bytes());
    let mut out = Vec::with_capacity(bytes.len() / bb * bl);
    for block in bytes.chunks_exact(bb) {
        for i in 0..bl {
            out.push(value(ty, block, i));
        }
    }
    out
}

/// Bitwise equality, treating any two NaNs as equal.
pub fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The types the crate dequantizes.
pub const TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
];

/// The integer pieces of value `i` of a block: `x = f(d) · scale · q - f(dmin) · min` for the
/// K-quants, `x = d · q (+ m)` for the 32-value types (scale 1, min 0 there).
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    pub q: i32,
    pub scale: i32,
    pub min: i32,
}

pub fn parts(ty: GgmlType, b: &[u8], i: usize) -> Parts {
    let plain = |q: i32| Parts {
        q,
        scale: 1,
        min: 0,
    };
    match ty {
        GgmlType::Q4_0 => plain(nibble(b, 2 + i % 16, i / 16) as i32 - 8),
        GgmlType::Q4_1 => plain(nibble(b, 4 + i % 16, i / 16) as i32),
        GgmlType::Q5_0 => plain((nibble(b, 6 + i % 16, i / 16) + 16 * bit(b, 2, i)) as i32 - 16),
        GgmlType::Q5_1 => plain((nibble(b, 8 + i % 16, i / 16) + 16 * bit(b, 4, i)) as i32),
        GgmlType::Q8_0 => plain(b[2 + i] as i8 as i32),
        GgmlType::Q8_1 => plain(b[4 + i] as i8 as i32),
        GgmlType::Q8K => plain(b[4 + i] as i8 as i32),
        GgmlType::Q4K | GgmlType::Q5K => {
            let s = i / 32;
            let qs = if ty == GgmlType::Q4K { 16 } else { 48 };
            let mut q = nibble(b, qs + 32 * (s / 2) + i % 32, s % 2);
            if ty == GgmlType::Q5K {
                q += 16 * bit(b, 16 + i % 32, s);
            }
            let (sc, m) = k_scale_min(b, 4, s);
            Parts {
                q: q as i32,
                scale: sc as i32,
                min: m as i32,
            }
        }
        GgmlType::Q6K => {
            let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
            let lo = nibble(b, 64 * h + 32 * (k % 2) + l, k / 2);
            let hi = (b[128 + 32 * h + l] as u32 >> (2 * k)) & 3;
            Parts {
                q: (lo + 16 * hi) as i32 - 32,
                scale: b[192 + i / 16] as i8 as i32,
                min: 0,
            }
        }
        other => panic!("{other} has no integer parts"),
    }
}

/// The block's f16/f32 scales `(d, dmin or m or s)` as the format stores them.
pub fn scales(ty: GgmlType, b: &[u8]) -> (f32, f32) {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => (f16(b, 0), 0.0),
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => (f16(b, 0), f16(b, 2)),
        GgmlType::Q4K | GgmlType::Q5K => (f16(b, 0), f16(b, 2)),
        GgmlType::Q6K => (f16(b, 208), 0.0),
        GgmlType::Q8K => (f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 0.0),
        other => panic!("{other} has no block scales"),
    }
}
