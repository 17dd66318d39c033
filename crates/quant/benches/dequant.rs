//! Dequantize throughput per type (bytes of f32 output per second), dot-product throughput
//! per weight type (bytes of weights streamed per second, one thread, scalar kernels) and
//! activation quantization throughput (bytes of f32 input per second).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ms_quant::{GgmlType, QuantizedRow, dequantize_row, vec_dot_rows};

const ROW: usize = 2048;
const ROWS: usize = 512;

const TYPES: [GgmlType; 12] = [
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
    GgmlType::Q8K,
];

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// `ROWS` rows of `ROW` values of `ty`: random quant bits with small finite scales (the
/// kernels' speed does not depend on the values, only NaN-free scales keep it realistic).
fn weights(ty: GgmlType) -> Vec<u8> {
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let n = ROW * ROWS;
    let small = |r: u64| ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
    match ty {
        GgmlType::F32 => (0..n).flat_map(|_| small(next()).to_le_bytes()).collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| half::f16::from_f32(small(next())).to_bits().to_le_bytes())
            .collect(),
        GgmlType::Bf16 => (0..n)
            .flat_map(|_| half::bf16::from_f32(small(next())).to_bits().to_le_bytes())
            .collect(),
        _ => {
            let bb = ty.block_bytes();
            let mut w: Vec<u8> = (0..n / ty.block_len() * bb).map(|_| next() as u8).collect();
            for b in w.chunks_exact_mut(bb) {
                let d = half::f16::from_f32(small(next())).to_bits().to_le_bytes();
                match ty {
                    GgmlType::Q6K => b[208..210].copy_from_slice(&d),
                    GgmlType::Q8K => b[..4].copy_from_slice(&small(next()).to_le_bytes()),
                    GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                        b[..2].copy_from_slice(&d);
                        b[2..4].copy_from_slice(&d);
                    }
                    _ => b[..2].copy_from_slice(&d),
                }
            }
            w
        }
    }
}

fn activations() -> Vec<f32> {
    let mut next = rng(12345);
    (0..ROW)
        .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
        .collect()
}

fn dequantize(c: &mut Criterion) {
    let mut g = c.benchmark_group("dequantize");
    g.sample_size(10).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes((ROW * ROWS * 4) as u64));
    let mut out = vec![0.0f32; ROW * ROWS];
    for ty in TYPES {
        let w = weights(ty);
        g.bench_function(BenchmarkId::from_parameter(ty.name()), |b| {
            b.iter(|| dequantize_row(ty, &w, &mut out).unwrap())
        });
    }
    g.finish();
}

fn dot(c: &mut Criterion) {
    let mut g = c.benchmark_group("vec_dot_rows");
    g.sample_size(10).measurement_time(Duration::from_secs(1));
    let x = activations();
    let mut act = QuantizedRow::with_capacity(ROW);
    let mut out = vec![0.0f32; ROWS];
    for ty in TYPES.into_iter().filter(|t| *t != GgmlType::Q8K) {
        let w = weights(ty);
        act.quantize(ty, &x).unwrap();
        g.throughput(Throughput::Bytes(w.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(ty.name()), |b| {
            b.iter(|| vec_dot_rows(ty, &w, &act, &mut out).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("quantize_activations");
    g.sample_size(10).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes((ROW * 4) as u64));
    for ty in [
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q8K,
        GgmlType::F16,
        GgmlType::Bf16,
    ] {
        g.bench_function(BenchmarkId::from_parameter(ty.name()), |b| {
            b.iter(|| act.quantize_as(ty, &x).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, dequantize, dot);
criterion_main!(benches);
