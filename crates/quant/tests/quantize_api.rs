//! The quantizers through the public API: errors, thread-count invariance, round trips through
//! the (independently written) dequantizer, edge-case blocks.

use ms_quant::GgmlType::{self, *};
use ms_quant::dequantize_to_vec;
use ms_quant::quantize::{
    Algorithm, QuantizeError, quantize_blocks, quantize_rows, quantized_size,
};

const TYPES: [GgmlType; 7] = [Q8_0, Q5_0, Q5_1, Q4K, Q5K, Q6K, Q8K];

/// Deterministic pseudo-normal values with a few outliers, like trained weights.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n)
        .map(|i| {
            let g = (next() + next() + next() + next()) * 0.05;
            if i % 97 == 0 { g * 8.0 } else { g }
        })
        .collect()
}

fn sse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum()
}

#[test]
fn bad_requests_are_errors() {
    let x = weights(512, 1);
    assert_eq!(
        quantize_rows(Q4_0, Algorithm::Refined, &x, 512, 1),
        Err(QuantizeError::Unsupported(Q4_0))
    );
    let err = quantize_rows(Q4K, Algorithm::Refined, &x[..500], 100, 1).unwrap_err();
    assert_eq!(
        err,
        QuantizeError::RowLength {
            ty: Q4K,
            row_len: 100
        }
    );
    assert!(err.to_string().contains("multiple of 256"), "{err}");
    assert!(matches!(
        quantize_rows(Q8_0, Algorithm::Refined, &x[..500], 256, 1),
        Err(QuantizeError::Size { .. })
    ));
    assert!(matches!(
        quantize_rows(Q8_0, Algorithm::Refined, &x, 0, 1),
        Err(QuantizeError::Size { .. })
    ));
    let mut small = vec![0u8; 10];
    assert!(matches!(
        quantize_blocks(Q8_0, Algorithm::Refined, &x[..32], &mut small),
        Err(QuantizeError::Size {
            expected: 34,
            found: 10,
            ..
        })
    ));
    assert_eq!(quantized_size(Q6K, 512, 3), Ok(3 * 2 * 210));
    assert!(Unsupported(Q4_0).to_string().contains("Q4_K"));
}

#[allow(non_snake_case)]
fn Unsupported(ty: GgmlType) -> QuantizeError {
    QuantizeError::Unsupported(ty)
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let row = 512;
    let x = weights(row * 13, 2);
    for ty in TYPES {
        for alg in [Algorithm::Reference, Algorithm::Refined] {
            let one = quantize_rows(ty, alg, &x, row, 1).unwrap();
            for threads in [2, 3, 7, 64] {
                assert!(
                    quantize_rows(ty, alg, &x, row, threads).unwrap() == one,
                    "{ty} {alg:?} with {threads} threads"
                );
            }
        }
    }
}

#[test]
fn round_trips_stay_within_each_format_s_resolution() {
    let x = weights(256 * 64, 3);
    let rms = (sse(&x, &vec![0.0; x.len()]) / x.len() as f64).sqrt();
    // Relative RMS error ceilings, about half a quantization step of each format (Q8_K
    // shares one scale across 256 values, so the outliers cost it more than Q8_0).
    for (ty, ceiling) in [
        (Q8_0, 0.01),
        (Q8K, 0.03),
        (Q6K, 0.03),
        (Q5_0, 0.1),
        (Q5_1, 0.1),
        (Q5K, 0.06),
        (Q4K, 0.12),
    ] {
        let q = quantize_rows(ty, Algorithm::Refined, &x, 256, 2).unwrap();
        let y = dequantize_to_vec(ty, &q).unwrap();
        let rel = (sse(&x, &y) / x.len() as f64).sqrt() / rms;
        assert!(rel < ceiling, "{ty}: relative rms error {rel}");
    }
    // Q8_K keeps an f32 scale: every value within half a step, and the stored sums of 16
    // quants are exact.
    let q = quantize_rows(Q8K, Algorithm::Refined, &x, 256, 1).unwrap();
    let y = dequantize_to_vec(Q8K, &q).unwrap();
    for (b, (xs, ys)) in q.chunks(292).zip(x.chunks(256).zip(y.chunks(256))) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (&a, &c) in xs.iter().zip(ys) {
            assert!((a - c).abs() <= d.abs() * 0.5001, "{a} {c} {d}");
        }
        for (j, sum) in b[260..].chunks(2).enumerate() {
            let want: i16 = b[4 + 16 * j..4 + 16 * (j + 1)]
                .iter()
                .map(|&v| i16::from(v as i8))
                .sum();
            assert_eq!(i16::from_le_bytes([sum[0], sum[1]]), want);
        }
    }
}

#[test]
fn refined_k_quants_are_never_worse_than_the_reference_block_by_block() {
    let x = weights(256 * 200, 4);
    for ty in [Q4K, Q5K, Q6K] {
        let r = quantize_rows(ty, Algorithm::Reference, &x, 256, 1).unwrap();
        let f = quantize_rows(ty, Algorithm::Refined, &x, 256, 1).unwrap();
        let (yr, yf) = (
            dequantize_to_vec(ty, &r).unwrap(),
            dequantize_to_vec(ty, &f).unwrap(),
        );
        let mut better = 0;
        for ((xs, a), b) in x.chunks(256).zip(yr.chunks(256)).zip(yf.chunks(256)) {
            let (er, ef) = (sse(xs, a), sse(xs, b));
            assert!(ef <= er, "{ty}: refined block error {ef} > reference {er}");
            better += usize::from(ef < er);
        }
        assert!(better > 150, "{ty}: only {better} of 200 blocks improved");
    }
}

#[test]
fn edge_case_blocks_quantize_to_finite_sensible_values() {
    let mut cases: Vec<(&str, Vec<f32>)> = vec![
        ("zeros", vec![0.0; 256]),
        ("constant", vec![0.25; 256]),
        ("negative constant", vec![-3.0; 256]),
        (
            "one spike",
            (0..256).map(|i| if i == 77 { 5.0 } else { 0.0 }).collect(),
        ),
        ("tiny", vec![1e-20; 256]),
        (
            "all positive",
            (0..256).map(|i| 1.0 + i as f32 / 256.0).collect(),
        ),
    ];
    cases.push((
        "alternating",
        (0..256)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect(),
    ));
    for (name, x) in &cases {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for ty in TYPES {
            for alg in [Algorithm::Reference, Algorithm::Refined] {
                let q = quantize_rows(ty, alg, x, 256, 1).unwrap();
                let y = dequantize_to_vec(ty, &q).unwrap();
                assert!(y.iter().all(|v| v.is_finite()), "{name} {ty}");
                // No value strays beyond the block's range by more than a coarse step.
                let worst = x
                    .iter()
                    .zip(&y)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst <= amax * 0.15 + 1e-6,
                    "{name} {ty} {alg:?}: error {worst}"
                );
                if *name == "zeros" {
                    assert!(y.iter().all(|&v| v == 0.0), "{name} {ty}");
                }
            }
        }
    }
}
