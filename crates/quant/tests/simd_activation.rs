//! SIMD activation quantization (Q8_0, Q8_K) against the reference functions, byte for byte:
//! random rows of many magnitudes, exact ties (halves), equal magnitudes of both signs,
//! zeros, subnormals, huge values, infinities and NaNs.

use ms_quant::GgmlType;
use ms_quant::activation::quantize_activation_row_for;
use ms_quant::dot::Backend;
use proptest::prelude::*;

fn both(ty: GgmlType, x: &[f32]) -> (Vec<u8>, Vec<u8>) {
    let bytes = ty.row_bytes(x.len() as u64).unwrap() as usize;
    let (mut s, mut v) = (vec![0xaa; bytes], vec![0x55; bytes]);
    quantize_activation_row_for(ty, Backend::Scalar, x, &mut s).unwrap();
    quantize_activation_row_for(ty, Backend::Simd, x, &mut v).unwrap();
    (s, v)
}

fn check(ty: GgmlType, x: &[f32]) -> Result<(), TestCaseError> {
    let (s, v) = both(ty, x);
    if let Some(i) = s.iter().zip(&v).position(|(a, b)| a != b) {
        let block = i / ty.block_bytes();
        let xs = &x[block * ty.block_len()..(block + 1) * ty.block_len()];
        return Err(TestCaseError::fail(format!(
            "{ty}: byte {i} (block {block}) scalar {:#04x} simd {:#04x}; block values {xs:?}",
            s[i], v[i]
        )));
    }
    Ok(())
}

/// A value from `r`: the kind of value picked by `r % 16`.
fn value(r: u64, scale: f32) -> f32 {
    let u = (r >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
    match r % 16 {
        0 => (u * 254.0).round() / 2.0, // a half-integer or integer in [-127, 127]
        1 => -127.0,
        2 => 127.0,
        3 => 0.0,
        4 => -0.0,
        5 => f32::from_bits((r >> 8) as u32 & 0x807f_ffff), // subnormal
        _ => u * scale,
    }
}

fn row(n: usize, seed: u64, scale: f32, special: bool) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = s ^ (s >> 29);
            if special && i % 41 == 7 {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX][(r % 4) as usize]
            } else {
                value(r, scale)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn simd_activation_quantization_equals_the_reference(
        ty in proptest::sample::select(vec![GgmlType::Q8_0, GgmlType::Q8K]),
        blocks in 1usize..6,
        seed in any::<u64>(),
        scale_exp in -130i32..128,
        special in proptest::bool::weighted(0.2),
    ) {
        let x = row(blocks * ty.block_len(), seed, 2f32.powi(scale_exp), special);
        check(ty, &x)?;
    }
}

#[test]
fn ties_signs_and_degenerate_blocks() {
    for ty in [GgmlType::Q8_0, GgmlType::Q8K] {
        let n = ty.block_len();
        // amax 127: quants are the values themselves, halves are exact ties.
        let halves: Vec<f32> = (0..n)
            .map(|i| {
                if i == 3 {
                    127.0
                } else {
                    (i as f32 - 128.0) / 2.0
                }
            })
            .collect();
        // The same magnitude with both signs: the first one sets Q8_K's sign.
        let mut signs = vec![0.25f32; n];
        signs[5] = -3.0;
        signs[9] = 3.0;
        let mut signs2 = signs.clone();
        signs2.swap(5, 9);
        let zeros = vec![0.0f32; n];
        let neg_zeros = vec![-0.0f32; n];
        let tiny = vec![f32::from_bits(1); n];
        let mut tiny_mixed = vec![f32::from_bits(3); n];
        tiny_mixed[1] = -f32::from_bits(7);
        let huge: Vec<f32> = (0..n).map(|i| f32::MAX / (i + 1) as f32).collect();
        let mut nan = halves.clone();
        nan[0] = f32::NAN;
        let mut inf = halves.clone();
        inf[n - 1] = f32::NEG_INFINITY;
        for x in [
            halves, signs, signs2, zeros, neg_zeros, tiny, tiny_mixed, huge, nan, inf,
        ] {
            check(ty, &x).unwrap();
        }
    }
}

#[test]
fn lengths_are_checked_for_both_backends() {
    let x = vec![1.0f32; 40];
    let mut out = vec![0u8; 34];
    for backend in [Backend::Scalar, Backend::Simd] {
        let err = quantize_activation_row_for(GgmlType::Q8_0, backend, &x, &mut out).unwrap_err();
        assert!(err.to_string().contains("40"), "{err}");
        let err = quantize_activation_row_for(GgmlType::Q8_0, backend, &x[..32], &mut out[..33])
            .unwrap_err();
        assert!(err.to_string().contains("33"), "{err}");
    }
}
