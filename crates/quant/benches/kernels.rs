//! Dot kernels, scalar reference against SIMD, per weight type: bytes of weights streamed per
//! second over a matrix-vector product (one thread), for a matrix that fits in the L2 cache
//! (compute bound) and one of 64 MiB (memory bound, as generation is). Also activation
//! quantization per backend. `SimdX4` runs the four-activation kernel (prefill), counting
//! the weights once per activation row; `SimdRows1` / `SimdRows8` the many-rows kernel with one
//! and eight activation rows.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ms_quant::activation::quantize_activation_row_for;
use ms_quant::dot::{self, Backend};
use ms_quant::{GgmlType, QuantizedRow};

const ROW: usize = 2048;

const TYPES: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
    GgmlType::Bf16,
    GgmlType::Q4_1,
    GgmlType::Q5_1,
    GgmlType::Q5K,
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

/// `bytes` (rounded down to whole rows of `ROW` values) of random weights of `ty` with small
/// finite scales.
fn weights(ty: GgmlType, bytes: usize) -> Vec<u8> {
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let row_bytes = ty.row_bytes(ROW as u64).unwrap() as usize;
    let n = bytes / row_bytes * ROW;
    let mut small = move || ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
    match ty {
        GgmlType::F32 => (0..n).flat_map(|_| small().to_le_bytes()).collect(),
        GgmlType::F16 => (0..n)
            .flat_map(|_| half::f16::from_f32(small()).to_bits().to_le_bytes())
            .collect(),
        GgmlType::Bf16 => (0..n)
            .flat_map(|_| half::bf16::from_f32(small()).to_bits().to_le_bytes())
            .collect(),
        _ => {
            let bb = ty.block_bytes();
            let mut bits = rng(7);
            let mut w: Vec<u8> = (0..n / ty.block_len() * bb).map(|_| bits() as u8).collect();
            for b in w.chunks_exact_mut(bb) {
                let d = half::f16::from_f32(small()).to_bits().to_le_bytes();
                match ty {
                    GgmlType::Q6K => b[208..210].copy_from_slice(&d),
                    GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q4_1 | GgmlType::Q5_1 => {
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

fn matvec(c: &mut Criterion, name: &str, bytes: usize) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let x = activations();
    let mut act = QuantizedRow::with_capacity(ROW);
    for ty in TYPES {
        let w = weights(ty, bytes);
        let row_bytes = ty.row_bytes(ROW as u64).unwrap() as usize;
        let mut out = vec![0.0f32; w.len() / row_bytes];
        act.quantize(ty, &x).unwrap();
        g.throughput(Throughput::Bytes(w.len() as u64));
        for backend in [Backend::Scalar, Backend::Simd] {
            let k = dot::kernel_for(ty, backend).unwrap();
            let id = BenchmarkId::new(format!("{backend:?}"), ty.name());
            g.bench_function(id, |b| {
                b.iter(|| {
                    for (y, w) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                        *y = k(w, act.as_bytes());
                    }
                })
            });
        }
        // Four activation rows per weight row; the throughput counts the weights once per
        // activation row, so that it compares with the single-row figures.
        g.throughput(Throughput::Bytes(4 * w.len() as u64));
        let k4 = dot::kernel4_for(ty, Backend::Simd).unwrap();
        let a = act.as_bytes();
        let mut out4 = vec![[0.0f32; 4]; out.len()];
        g.bench_function(BenchmarkId::new("SimdX4", ty.name()), |b| {
            b.iter(|| {
                for (y, w) in out4.iter_mut().zip(w.chunks_exact(row_bytes)) {
                    k4(w, [a, a, a, a], y);
                }
            })
        });
        // The rows kernels: every row of the matrix in one call, against one activation row
        // (generation) and eight (prefill).
        g.throughput(Throughput::Bytes(w.len() as u64));
        let rows = dot::rows_kernel_for(ty, Backend::Simd).unwrap();
        g.bench_function(BenchmarkId::new("SimdRows1", ty.name()), |b| {
            b.iter(|| rows(&w, row_bytes, &[a], &mut out))
        });
        g.throughput(Throughput::Bytes(8 * w.len() as u64));
        let mut out_rows8 = vec![0.0f32; 8 * out.len()];
        g.bench_function(BenchmarkId::new("SimdRows8", ty.name()), |b| {
            b.iter(|| rows(&w, row_bytes, &[a; 8], &mut out_rows8))
        });
        g.throughput(Throughput::Bytes(8 * w.len() as u64));
        let k8 = dot::kernel8_for(ty, Backend::Simd).unwrap();
        let mut out8 = vec![[0.0f32; 8]; out.len()];
        g.bench_function(BenchmarkId::new("SimdX8", ty.name()), |b| {
            b.iter(|| {
                for (y, w) in out8.iter_mut().zip(w.chunks_exact(row_bytes)) {
                    k8(w, [a; 8], y);
                }
            })
        });
    }
    g.finish();
}

fn activations_quantize(c: &mut Criterion) {
    let mut g = c.benchmark_group("quantize_activations");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes((ROW * 4) as u64));
    let x = activations();
    for ty in [GgmlType::Q8_0, GgmlType::Q8K] {
        let mut out = vec![0u8; ty.row_bytes(ROW as u64).unwrap() as usize];
        for backend in [Backend::Scalar, Backend::Simd] {
            let id = BenchmarkId::new(format!("{backend:?}"), ty.name());
            g.bench_function(id, |b| {
                b.iter(|| quantize_activation_row_for(ty, backend, &x, &mut out).unwrap())
            });
        }
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    matvec(c, "dot_l2_256KiB", 256 << 10);
    matvec(c, "dot_dram_64MiB", 64 << 20);
    activations_quantize(c);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
