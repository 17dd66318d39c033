//! The GGML tensor type table: on-disk ids, block sizes and block byte sizes.
//!
//! The ids are part of the GGUF file format; removed ids (4, 5, 31..=33) are never reused
//! upstream, so they are rejected like any unknown id.

use std::fmt;

/// A tensor element type as stored in GGUF files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    Bf16,
    Tq1_0,
    Tq2_0,
    Mxfp4,
}

/// A type id that this build does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownType(pub u32);

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown tensor type id {}", self.0)
    }
}

impl std::error::Error for UnknownType {}

use GgmlType::*;

/// (type, id, name, values per block, bytes per block)
const TABLE: &[(GgmlType, u32, &str, usize, usize)] = &[
    (F32, 0, "F32", 1, 4),
    (F16, 1, "F16", 1, 2),
    (Q4_0, 2, "Q4_0", 32, 18),
    (Q4_1, 3, "Q4_1", 32, 20),
    (Q5_0, 6, "Q5_0", 32, 22),
    (Q5_1, 7, "Q5_1", 32, 24),
    (Q8_0, 8, "Q8_0", 32, 34),
    (Q8_1, 9, "Q8_1", 32, 36),
    (Q2K, 10, "Q2_K", 256, 84),
    (Q3K, 11, "Q3_K", 256, 110),
    (Q4K, 12, "Q4_K", 256, 144),
    (Q5K, 13, "Q5_K", 256, 176),
    (Q6K, 14, "Q6_K", 256, 210),
    (Q8K, 15, "Q8_K", 256, 292),
    (Iq2Xxs, 16, "IQ2_XXS", 256, 66),
    (Iq2Xs, 17, "IQ2_XS", 256, 74),
    (Iq3Xxs, 18, "IQ3_XXS", 256, 98),
    (Iq1S, 19, "IQ1_S", 256, 50),
    (Iq4Nl, 20, "IQ4_NL", 32, 18),
    (Iq3S, 21, "IQ3_S", 256, 110),
    (Iq2S, 22, "IQ2_S", 256, 82),
    (Iq4Xs, 23, "IQ4_XS", 256, 136),
    (I8, 24, "I8", 1, 1),
    (I16, 25, "I16", 1, 2),
    (I32, 26, "I32", 1, 4),
    (I64, 27, "I64", 1, 8),
    (F64, 28, "F64", 1, 8),
    (Iq1M, 29, "IQ1_M", 256, 56),
    (Bf16, 30, "BF16", 1, 2),
    (Tq1_0, 34, "TQ1_0", 256, 54),
    (Tq2_0, 35, "TQ2_0", 256, 66),
    (Mxfp4, 39, "MXFP4", 32, 17),
];

impl GgmlType {
    fn entry(self) -> &'static (GgmlType, u32, &'static str, usize, usize) {
        TABLE
            .iter()
            .find(|e| e.0 == self)
            .expect("every variant is in TABLE")
    }

    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|e| e.0)
    }

    pub fn from_id(id: u32) -> Result<Self, UnknownType> {
        TABLE
            .iter()
            .find(|e| e.1 == id)
            .map(|e| e.0)
            .ok_or(UnknownType(id))
    }

    /// Parses the name used by llama.cpp (`Q4_K`, `q8_0`, `BF16`...), case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|e| e.2.eq_ignore_ascii_case(name))
            .map(|e| e.0)
    }

    pub fn id(self) -> u32 {
        self.entry().1
    }

    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// Number of values one block holds (1 for plain scalar types).
    pub fn block_len(self) -> usize {
        self.entry().3
    }

    /// Bytes one block takes on disk.
    pub fn block_bytes(self) -> usize {
        self.entry().4
    }

    /// Bytes needed for a row of `n` values, or `None` when `n` is not a whole number of
    /// blocks (GGML requires rows to be made of whole blocks) or the size overflows.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let bl = self.block_len() as u64;
        if !n.is_multiple_of(bl) {
            return None;
        }
        (n / bl).checked_mul(self.block_bytes() as u64)
    }

    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.block_len() as f64
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in GgmlType::all() {
            assert_eq!(GgmlType::from_id(t.id()), Ok(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), Err(UnknownType(4)));
        assert_eq!(GgmlType::from_id(31), Err(UnknownType(31)));
    }

    #[test]
    fn block_sizes_match_the_format_definitions() {
        // Q8_0: f16 scale + 32 i8; Q4_K: 2 f16 + 12 scale bytes + 128 nibble bytes;
        // Q6_K: 128 + 64 + 16 + f16; Q8_K: f32 + 256 i8 + 16 i16; Q5_0: f16 + 4 + 16.
        assert_eq!(GgmlType::Q8_0.block_bytes(), 2 + 32);
        assert_eq!(GgmlType::Q4K.block_bytes(), 2 * 2 + 12 + 128);
        assert_eq!(GgmlType::Q6K.block_bytes(), 128 + 64 + 16 + 2);
        assert_eq!(GgmlType::Q8K.block_bytes(), 4 + 256 + 2 * 16);
        assert_eq!(GgmlType::Q5_0.block_bytes(), 2 + 4 + 16);
        assert_eq!(GgmlType::Q4K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4K.row_bytes(640), None);
    }
}
