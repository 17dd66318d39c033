//! Activation quantization: hand-computed blocks, llama.cpp's own Q8_0 output, properties of
//! Q8_K, and buffer reuse.

use ms_test_support::shared_dir;

use ms_gguf::GgufFile;
use ms_quant::activation::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k};
use ms_quant::{GgmlType, QuantError, QuantizedRow, dequantize_row, dequantize_to_vec};
use proptest::prelude::*;

fn f16_of(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

#[test]
fn q8_0_by_hand_rounds_halves_away_from_zero() {
    // amax = 127 gives d = 1 and 1/d = 1, so q = roundf(x).
    let mut x = vec![0.0f32; 32];
    x[0] = -127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.49;
    x[4] = 100.5;
    let mut out = [0u8; 34];
    quantize_row_q8_0(&x, &mut out).unwrap();
    assert_eq!(f16_of(&out), 1.0);
    let q: Vec<i8> = out[2..].iter().map(|b| *b as i8).collect();
    assert_eq!(&q[..6], &[-127, 3, -3, 0, 101, 0]);
    // An all-zero block has d = 0 and zero quants.
    quantize_row_q8_0(&[0.0; 32], &mut out).unwrap();
    assert_eq!(out, [0u8; 34]);
}

#[test]
fn q8_1_stores_the_scaled_sum() {
    let mut x = vec![1.0f32; 32];
    x[0] = 127.0;
    let mut out = [0u8; 36];
    quantize_row_q8_1(&x, &mut out).unwrap();
    assert_eq!(f16_of(&out), 1.0);
    assert_eq!(f16_of(&out[2..]), 127.0 + 31.0);
}

#[test]
fn q8_k_by_hand_uses_the_signed_max_and_ties_to_even() {
    // The value of largest magnitude is -127, so iscale = 1 and d = 1: q = nearest_int(x),
    // ties to even (2.5 -> 2, -3.5 -> -4), unlike Q8_0's roundf.
    let mut x = vec![0.0f32; 256];
    x[0] = 2.5;
    x[1] = -3.5;
    x[2] = 126.6;
    x[17] = -127.0;
    x[40] = 0.5;
    let mut out = vec![0u8; 292];
    quantize_row_q8_k(&x, &mut out).unwrap();
    assert_eq!(f32::from_le_bytes([out[0], out[1], out[2], out[3]]), 1.0);
    let q: Vec<i8> = out[4..260].iter().map(|b| *b as i8).collect();
    assert_eq!(&q[..3], &[2, -4, 127]);
    assert_eq!(q[17], -127);
    assert_eq!(q[40], 0);
    let bsum = |g: usize| i16::from_le_bytes([out[260 + 2 * g], out[261 + 2 * g]]);
    assert_eq!(bsum(0), 2 - 4 + 127);
    assert_eq!(bsum(1), -127);
    assert_eq!(bsum(2), 0);

    // A positive max flips the sign of the scale: d = 1 / (-127 / 2) = -2/127.
    let mut y = vec![0.0f32; 256];
    y[5] = 2.0;
    y[6] = -1.0;
    quantize_row_q8_k(&y, &mut out).unwrap();
    assert_eq!(
        f32::from_le_bytes([out[0], out[1], out[2], out[3]]),
        1.0 / (-127.0f32 / 2.0)
    );
    assert_eq!(out[4 + 5] as i8, -127);
    assert_eq!(out[4 + 6] as i8, 64); // 63.5 ties to even
    // All zeros stay all zeros.
    quantize_row_q8_k(&[0.0; 256], &mut out).unwrap();
    assert!(out.iter().all(|b| *b == 0));
}

#[test]
fn q8_0_equals_llama_cpp_on_the_oracle_model() {
    // llama.cpp made llama-spm-tiny.q8_0.gguf from the F16 file with quantize_row_q8_0_ref,
    // the same function its CPU backend's reference applies to activations.
    let dir = shared_dir().join("oracle/models");
    let f16 = GgufFile::open(dir.join("llama-spm-tiny.f16.gguf")).unwrap();
    let q8 = GgufFile::open(dir.join("llama-spm-tiny.q8_0.gguf")).unwrap();
    let mut checked = 0;
    for info in q8.tensors().iter().filter(|t| t.ty == GgmlType::Q8_0) {
        let src = f16.tensor(&info.name).unwrap();
        let x = dequantize_to_vec(src.ty, f16.tensor_data(src)).unwrap();
        let mut ours = vec![0u8; info.size as usize];
        quantize_row_q8_0(&x, &mut ours).unwrap();
        assert!(
            ours == q8.tensor_data(info),
            "{} differs from llama.cpp's Q8_0",
            info.name
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} Q8_0 tensors");
}

#[test]
fn quantized_row_reuses_its_buffer_and_reports_errors() {
    let x: Vec<f32> = (0..2048).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut row = QuantizedRow::with_capacity(2048);
    row.quantize(GgmlType::Q4K, &x).unwrap();
    assert_eq!((row.ty(), row.len()), (GgmlType::Q8K, 2048));
    let ptr = row.as_bytes().as_ptr();
    for ty in [GgmlType::Q8_0, GgmlType::F16, GgmlType::Q6K, GgmlType::F32] {
        row.quantize(ty, &x).unwrap();
        assert_eq!(row.as_bytes().as_ptr(), ptr, "reallocated for {ty}");
    }
    assert_eq!(row.ty(), GgmlType::F32);
    assert_eq!(row.as_bytes().len(), 2048 * 4);

    assert_eq!(
        row.quantize(GgmlType::Q4K, &x[..640]),
        Err(QuantError::PartialBlock {
            ty: GgmlType::Q8K,
            len: 640
        })
    );
    assert!(row.is_empty());
    assert!(matches!(
        row.quantize(GgmlType::Q2K, &x),
        Err(QuantError::Unsupported { .. })
    ));
    assert!(quantize_row_q8_0(&x[..32], &mut [0u8; 33]).is_err());
    assert!(QuantizedRow::from_bytes(GgmlType::Q8_0, 32, &[0; 33]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quantized_activations_are_within_half_a_step(
        x in proptest::collection::vec(-1000.0f32..1000.0, 256),
        scale_pow in -20i32..10,
    ) {
        let x: Vec<f32> = x.iter().map(|v| v * 2f32.powi(scale_pow)).collect();
        let mut row = QuantizedRow::new();
        for ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K] {
            row.quantize_as(ty, &x).unwrap();
            let mut back = vec![0.0f32; 256];
            dequantize_row(ty, row.as_bytes(), &mut back).unwrap();
            let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // Q8_0 / Q8_1 per 32, Q8_K per 256: |x - d q| <= d / 2, plus the f16 rounding of
            // d for Q8_0 / Q8_1 (2^-11 relative on values up to 127 d) and subnormal f16 steps.
            for (i, (a, b)) in x.iter().zip(&back).enumerate() {
                let bl = ty.block_len();
                let block_amax = x[i / bl * bl..][..bl].iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let step = block_amax / 127.0;
                // Q8_K: x * iscale is rounded in f32 before nearest_int (up to 127 * 2^-24 of a
                // step) and d = 1/iscale is rounded too, so allow a few ulps of 127 steps.
                let slack = if ty == GgmlType::Q8K { 2e-5 * step } else {
                    block_amax * 2f32.powi(-10) + 2f32.powi(-24) * 128.0
                };
                prop_assert!((a - b).abs() <= step / 2.0 + slack,
                    "{} value {}: {} -> {} (amax {})", ty, i, a, b, amax);
            }
        }
        // Q8_K block sums are the sums of their 16 quants.
        row.quantize_as(GgmlType::Q8K, &x).unwrap();
        let b = row.as_bytes();
        for g in 0..16 {
            let want: i32 = b[4 + 16 * g..4 + 16 * (g + 1)].iter().map(|q| *q as i8 as i32).sum();
            prop_assert_eq!(i16::from_le_bytes([b[260 + 2 * g], b[261 + 2 * g]]) as i32, want);
        }
    }
}
