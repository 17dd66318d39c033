//! Byte layouts of GGML's blocks (all little-endian, packed, no padding):
//!
//! | type | values | bytes | layout |
//! |---|---|---|---|
//! | Q4_0 | 32 | 18 | f16 d, 16 B nibbles |
//! | Q4_1 | 32 | 20 | f16 d, f16 m, 16 B nibbles |
//! | Q5_0 | 32 | 22 | f16 d, u32 high bits, 16 B nibbles |
//! | Q5_1 | 32 | 24 | f16 d, f16 m, u32 high bits, 16 B nibbles |
//! | Q8_0 | 32 | 34 | f16 d, 32 i8 |
//! | Q8_1 | 32 | 36 | f16 d, f16 s (= d * sum of quants), 32 i8 |
//! | Q4_K | 256 | 144 | f16 d, f16 dmin, 12 B 6-bit scales and mins, 128 B nibbles |
//! | Q5_K | 256 | 176 | f16 d, f16 dmin, 12 B scales and mins, 32 B high bits, 128 B nibbles |
//! | Q6_K | 256 | 210 | 128 B low nibbles, 64 B high 2-bit pairs, 16 i8 scales, f16 d |
//! | Q8_K | 256 | 292 | f32 d, 256 i8, 16 i16 sums of 16 quants |
//!
//! In the 32-value formats, byte j holds value j in its low nibble and value j + 16 in its
//! high nibble; bit j of the u32 is the fifth bit of value j.

/// Values per K-quant super-block.
pub const QK_K: usize = 256;
/// Values per block of the 32-value formats.
pub const QK: usize = 32;

pub const Q4_0_BYTES: usize = 18;
pub const Q4_1_BYTES: usize = 20;
pub const Q5_0_BYTES: usize = 22;
pub const Q5_1_BYTES: usize = 24;
pub const Q8_0_BYTES: usize = 34;
pub const Q8_1_BYTES: usize = 36;
pub const Q4_K_BYTES: usize = 144;
pub const Q5_K_BYTES: usize = 176;
pub const Q6_K_BYTES: usize = 210;
pub const Q8_K_BYTES: usize = 292;

/// Byte offsets inside a Q4_K / Q5_K block.
pub const K_SCALES: usize = 4;
pub const Q4_K_QS: usize = 16;
pub const Q5_K_QH: usize = 16;
pub const Q5_K_QS: usize = 48;
/// Byte offsets inside a Q6_K block.
pub const Q6_K_QH: usize = 128;
pub const Q6_K_SCALES: usize = 192;
pub const Q6_K_D: usize = 208;
/// Byte offsets inside a Q8_K block.
pub const Q8_K_QS: usize = 4;
pub const Q8_K_BSUMS: usize = 260;

/// Unpacks the eight 6-bit scales and eight 6-bit mins of a Q4_K / Q5_K block.
///
/// Bytes 0..4 hold scales 0..4 and bytes 4..8 mins 0..4 in their low 6 bits; bytes 8..12 hold
/// the low 4 bits of scales 4..8 (low nibble) and mins 4..8 (high nibble), whose top 2 bits sit
/// in the top bits of bytes 0..4 (scales) and 4..8 (mins). This is GGML's `get_scale_min_k4`.
#[inline(always)]
pub fn k_scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, m)
}

/// The 12 scale bytes of a Q4_K / Q5_K block (both start them at byte 4).
#[inline(always)]
pub(crate) fn k_scale_bytes<const N: usize>(block: &[u8; N]) -> [u8; 12] {
    std::array::from_fn(|i| block[K_SCALES + i])
}
