//! Conversions between f32 and the 16-bit float formats GGML stores (IEEE binary16 and bfloat16).
//!
//! f16 -> f32 is written out here rather than called through `half`, because `half` checks the
//! CPU at runtime on every call; this form is branch-free after compilation (selects), exact for
//! every input and lets the compiler vectorise whole rows.

/// Exact f16 -> f32 (every f16 value, including subnormals, infinities and NaNs, is
/// representable in f32).
///
/// No step does arithmetic on a subnormal f32: x86 takes a microcode assist of ~100 cycles
/// for that, even in unused vector lanes, which once made the dot kernels several times slower.
#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits & 0x8000) as u32) << 16;
    let exp = (bits >> 10) & 0x1f;
    let mant = (bits & 0x03ff) as u32;
    let magnitude = if exp == 0 {
        // Zero or subnormal: mant * 2^-24, an exact product of normal numbers.
        (mant as f32 * f32::from_bits(0x3380_0000)).to_bits()
    } else if exp == 0x1f {
        // Infinity or NaN: all-ones exponent, payload shifted into place.
        0x7f80_0000 | (mant << 13)
    } else {
        // Rebias the exponent from 15 to 127.
        (((exp as u32) + 112) << 23) | (mant << 13)
    };
    f32::from_bits(sign | magnitude)
}

/// f32 -> f16, rounding to nearest even as GGML's `GGML_FP32_TO_FP16` does.
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// Exact bf16 -> f32: bf16 is the top half of an f32.
#[inline(always)]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// f32 -> bf16, rounding to nearest even (NaNs stay NaN), as GGML's `GGML_FP32_TO_BF16`.
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// The little-endian f16 at `at` in a block, as f32.
#[inline(always)]
pub(crate) fn f16_le(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_is_exact_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let ours = f16_to_f32(bits);
            let theirs = half::f16::from_bits(bits).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{bits:#06x}");
                assert_eq!(ours.is_sign_negative(), theirs.is_sign_negative());
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        // Ties go to even: 1 + 2^-11 is halfway between 1 and the next f16.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
    }
}
