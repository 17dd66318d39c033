//! The dot kernels against (1) the documented arithmetic, recomputed from the independent spec
//! decoder's integer parts (bit-exact), and (2) the f64 dot product of the dequantized weights
//! with the dequantized activations (within a documented rounding bound).

mod dequant_spec;
mod dot_contract;

use dot_contract::{Rng, contract, exact_and_bound, random_weights};
use ms_quant::{GgmlType, QuantError, QuantizedRow, dot_type, vec_dot, vec_dot_rows};
use proptest::prelude::*;

const WEIGHT_TYPES: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

fn check(ty: GgmlType, blocks: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let n = blocks * ty.block_len().max(32);
    let blocks = n / ty.block_len();
    let w = random_weights(ty, blocks, &mut rng);
    let scale = [1e-3f32, 1.0, 100.0][(seed % 3) as usize];
    let x: Vec<f32> = (0..n).map(|_| rng.unit() * scale).collect();
    let mut act = QuantizedRow::new();
    act.quantize(ty, &x).unwrap();
    prop_assert_eq!(act.ty(), dot_type(ty).unwrap());
    let got = vec_dot(ty, &w, &act).unwrap();
    let want = contract(ty, &w, &act);
    prop_assert!(
        got.to_bits() == want.to_bits(),
        "{} n={}: kernel {} vs documented arithmetic {}",
        ty,
        n,
        got,
        want
    );
    let (exact, bound) = exact_and_bound(ty, &w, &act);
    prop_assert!(
        (got as f64 - exact).abs() <= bound,
        "{} n={}: {} vs exact {} (bound {})",
        ty,
        n,
        got,
        exact,
        bound
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn kernels_follow_the_documented_arithmetic_and_bound(
        ty in proptest::sample::select(WEIGHT_TYPES.to_vec()),
        blocks in 1usize..21,
        seed in any::<u64>(),
    ) {
        check(ty, blocks, seed)?;
    }
}

#[test]
fn every_type_at_real_row_lengths() {
    // 640 (Gemma 3 270M's width) for the 32-value types, 2048 for everything.
    for (i, ty) in WEIGHT_TYPES.into_iter().enumerate() {
        for n in [640usize, 2048] {
            if n % ty.block_len() == 0 {
                check(ty, n / ty.block_len().max(32), i as u64 * 7919 + n as u64).unwrap();
            }
        }
    }
}

#[test]
fn q8_0_dot_by_hand() {
    // Weights d = 0.5, q = 1..=32; activations exactly representable: d_a = 1 (amax 127).
    let mut w = half::f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
    w.extend((1..=32).map(|q: i8| q as u8));
    let mut x = vec![1.0f32; 32];
    x[0] = 127.0;
    let mut act = QuantizedRow::new();
    act.quantize(GgmlType::Q8_0, &x).unwrap();
    // 0.5 * (1 * 127 + sum(2..=32))
    let want = 0.5 * (127.0 + (2..=32).sum::<i32>() as f32);
    assert_eq!(vec_dot(GgmlType::Q8_0, &w, &act).unwrap(), want);
}

#[test]
fn rows_equal_single_dots_and_lengths_are_checked() {
    let mut rng = Rng(42);
    let ty = GgmlType::Q4K;
    let n = 512;
    let rows = 5;
    let w = random_weights(ty, rows * n / 256, &mut rng);
    let x: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
    let mut act = QuantizedRow::new();
    act.quantize(ty, &x).unwrap();
    let mut out = vec![0.0; rows];
    vec_dot_rows(ty, &w, &act, &mut out).unwrap();
    let row_bytes = 2 * 144;
    for (r, y) in out.iter().enumerate() {
        let single = vec_dot(ty, &w[r * row_bytes..(r + 1) * row_bytes], &act).unwrap();
        assert_eq!(y.to_bits(), single.to_bits());
    }
    assert!(matches!(
        vec_dot_rows(ty, &w, &act, &mut out[..4]),
        Err(QuantError::MatrixLength { .. })
    ));
    assert!(matches!(
        vec_dot_rows(ty, &w[1..], &act, &mut out),
        Err(QuantError::MatrixLength { .. })
    ));
    assert!(matches!(
        vec_dot(ty, &w[..row_bytes - 1], &act),
        Err(QuantError::ByteLength { .. })
    ));
    // Activations of the wrong type are refused with a message that says what to do.
    let mut q8 = QuantizedRow::new();
    q8.quantize(GgmlType::Q8_0, &x).unwrap();
    let err = vec_dot(ty, &w[..row_bytes], &q8).unwrap_err();
    assert!(
        err.to_string()
            .contains("need activations quantized as Q8_K"),
        "{err}"
    );
    assert!(matches!(
        vec_dot(GgmlType::Q2K, &w[..84], &act),
        Err(QuantError::Unsupported { .. })
    ));
}
