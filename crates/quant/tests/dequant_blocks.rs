//! Dequantization against values known from the format definitions: hand-built blocks, and
//! random blocks decoded by the independent one-value-at-a-time decoder in `dequant_spec/`.

mod dequant_spec;

use dequant_spec::{TYPES, decode_row, same};
use ms_quant::{GgmlType, QuantError, dequantize_row, dequantize_to_vec};
use proptest::prelude::*;

fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

fn deq(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    dequantize_to_vec(ty, bytes).unwrap()
}

#[test]
fn q4_0_block_by_hand() {
    // d = 0.5; byte j holds value j (low nibble, j) and value j + 16 (high nibble, 15 - j).
    let mut b = f16_bytes(0.5).to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = deq(GgmlType::Q4_0, &b);
    for j in 0..16 {
        assert_eq!(y[j], (j as f32 - 8.0) * 0.5);
        assert_eq!(y[j + 16], (7.0 - j as f32) * 0.5);
    }
}

#[test]
fn q4_1_block_by_hand() {
    let mut b = f16_bytes(0.25).to_vec();
    b.extend(f16_bytes(-1.0));
    b.extend((0..16u8).map(|j| j | (3 << 4)));
    let y = deq(GgmlType::Q4_1, &b);
    for j in 0..16 {
        assert_eq!(y[j], j as f32 * 0.25 - 1.0);
        assert_eq!(y[j + 16], -0.25);
    }
}

#[test]
fn q5_0_block_by_hand() {
    // Fifth bits set for values 0, 17 and 31 only.
    let qh: u32 = (1 << 0) | (1 << 17) | (1 << 31);
    let mut b = f16_bytes(1.0).to_vec();
    b.extend(qh.to_le_bytes());
    b.extend([0x0fu8; 16]); // low nibbles 15, high nibbles 0
    let y = deq(GgmlType::Q5_0, &b);
    assert_eq!(y[0], 15.0); // 15 | 16 - 16
    assert_eq!(y[1], -1.0); // 15 - 16
    assert_eq!(y[16], -16.0); // 0 - 16
    assert_eq!(y[17], 0.0); // 16 - 16
    assert_eq!(y[31], 0.0);
    assert_eq!(y[30], -16.0);
}

#[test]
fn q5_1_block_by_hand() {
    let qh: u32 = 1 << 20;
    let mut b = f16_bytes(2.0).to_vec();
    b.extend(f16_bytes(0.5));
    b.extend(qh.to_le_bytes());
    b.extend([0x21u8; 16]); // low 1, high 2
    let y = deq(GgmlType::Q5_1, &b);
    assert_eq!(y[0], 2.5);
    assert_eq!(y[16], 4.5);
    assert_eq!(y[20], (18.0 * 2.0) + 0.5);
}

#[test]
fn q8_0_and_q8_k_blocks_by_hand() {
    let mut b = f16_bytes(2.0).to_vec();
    b.extend((0..32i8).map(|i| (i - 16) as u8));
    let y = deq(GgmlType::Q8_0, &b);
    for (i, v) in y.iter().enumerate() {
        assert_eq!(*v, 2.0 * (i as f32 - 16.0));
    }
    let mut k = 0.125f32.to_le_bytes().to_vec();
    k.extend((0..256).map(|i| (i as u8).wrapping_sub(128)));
    k.extend([0u8; 32]);
    let y = deq(GgmlType::Q8K, &k);
    for (i, v) in y.iter().enumerate() {
        assert_eq!(*v, 0.125 * (i as f32 - 128.0));
    }
}

/// Packs eight 6-bit scales and mins the way the Q4_K / Q5_K definition lays them out.
fn pack_k_scales(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
    }
    s
}

const SC: [u8; 8] = [1, 2, 3, 4, 40, 50, 60, 63];
const MN: [u8; 8] = [0, 5, 10, 15, 20, 33, 47, 63];

#[test]
fn q4_k_block_by_hand() {
    let mut b = f16_bytes(1.0).to_vec();
    b.extend(f16_bytes(0.5));
    b.extend(pack_k_scales(SC, MN));
    // Value i has q = i % 16: chunk c's byte l holds values 64c + l (low) and 64c + 32 + l.
    let mut qs = [0u8; 128];
    for i in 0..256 {
        let (c, r) = (i / 64, i % 64);
        let at = 32 * c + r % 32;
        qs[at] |= ((i % 16) as u8) << (4 * (r / 32));
    }
    b.extend(qs);
    let y = deq(GgmlType::Q4K, &b);
    for (i, v) in y.iter().enumerate() {
        let s = i / 32;
        let want = SC[s] as f32 * (i % 16) as f32 - 0.5 * MN[s] as f32;
        assert_eq!(*v, want, "value {i}");
    }
}

#[test]
fn q5_k_block_by_hand() {
    let mut b = f16_bytes(0.5).to_vec();
    b.extend(f16_bytes(0.25));
    b.extend(pack_k_scales(SC, MN));
    let q = |i: usize| ((i * 5) % 32) as u8;
    let mut qh = [0u8; 32];
    let mut qs = [0u8; 128];
    for i in 0..256 {
        let (c, r) = (i / 64, i % 64);
        qs[32 * c + r % 32] |= (q(i) & 15) << (4 * (r / 32));
        qh[i % 32] |= (q(i) >> 4) << (i / 32);
    }
    b.extend(qh);
    b.extend(qs);
    let y = deq(GgmlType::Q5K, &b);
    for (i, v) in y.iter().enumerate() {
        let s = i / 32;
        let want = (0.5 * SC[s] as f32) * q(i) as f32 - 0.25 * MN[s] as f32;
        assert_eq!(*v, want, "value {i}");
    }
}

#[test]
fn q6_k_block_by_hand() {
    let q = |i: usize| ((i * 7) % 64) as u8;
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for i in 0..256 {
        let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
        ql[64 * h + 32 * (k % 2) + l] |= (q(i) & 15) << (4 * (k / 2));
        qh[32 * h + l] |= (q(i) >> 4) << (2 * k);
    }
    let scales: Vec<u8> = (0..16i32).map(|s| (s * 9 - 70) as i8 as u8).collect();
    let mut b = ql.to_vec();
    b.extend(qh);
    b.extend(&scales);
    b.extend(f16_bytes(0.25));
    let y = deq(GgmlType::Q6K, &b);
    for (i, v) in y.iter().enumerate() {
        let sc = scales[i / 16] as i8 as f32;
        let want = (0.25 * sc) * (q(i) as f32 - 32.0);
        assert_eq!(*v, want, "value {i}");
    }
}

#[test]
fn float_types_by_hand() {
    let f16s = [0x3c00u16, 0xc000, 0x0001, 0x7bff];
    let b: Vec<u8> = f16s.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(deq(GgmlType::F16, &b), [1.0, -2.0, 2f32.powi(-24), 65504.0]);
    let b: Vec<u8> = [0x3f80u16, 0xc0a0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(deq(GgmlType::Bf16, &b), [1.0, -5.0]);
    let b: Vec<u8> = [1.5f32, -0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(deq(GgmlType::F32, &b), [1.5, -0.0]);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let mut out = vec![0.0; 640];
    assert_eq!(
        dequantize_row(GgmlType::Q4K, &[0; 360], &mut out),
        Err(QuantError::PartialBlock {
            ty: GgmlType::Q4K,
            len: 640
        })
    );
    let err = dequantize_row(GgmlType::Q8_0, &[0; 679], &mut out).unwrap_err();
    assert!(
        err.to_string().contains("takes 680 bytes, but 679"),
        "{err}"
    );
    assert!(dequantize_row(GgmlType::Q8_0, &[0; 681], &mut out).is_err());
    assert!(matches!(
        dequantize_row(GgmlType::Q2K, &[0; 84], &mut out[..256]),
        Err(QuantError::Unsupported { .. })
    ));
    for ty in TYPES {
        for len in [0usize, 1, 31, 33, 255, 257] {
            let mut out = vec![0.0; len];
            for bytes in [0usize, 1, ty.block_bytes() - 1, ty.block_bytes() + 1] {
                let ok = ty.row_bytes(len as u64) == Some(bytes as u64);
                assert_eq!(
                    dequantize_row(ty, &vec![0; bytes], &mut out).is_ok(),
                    ok,
                    "{ty} {len} {bytes}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_blocks_match_the_spec_decoder(
        ty in proptest::sample::select(TYPES.to_vec()),
        blocks in 1usize..5,
        raw in proptest::collection::vec(any::<u8>(), 4 * 292),
    ) {
        // Random bytes cover every bit pattern of quants and scales, NaN and infinite scales
        // included; both decoders must agree bit for bit.
        let bytes = &raw[..blocks * ty.block_bytes()];
        let fast = dequantize_to_vec(ty, bytes).unwrap();
        let spec = decode_row(ty, bytes);
        prop_assert_eq!(fast.len(), spec.len());
        for (i, (a, b)) in fast.iter().zip(&spec).enumerate() {
            prop_assert!(same(*a, *b), "{} value {}: {} vs {}", ty, i, a, b);
        }
    }
}
