//! Quantize throughput per type, in bytes of f32 input per second, on 1 and 2 threads
//! (`cargo bench -p ms-quant --bench quantize`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ms_quant::GgmlType;
use ms_quant::quantize::{Algorithm, quantize_rows};

/// Deterministic pseudo-normal weights (sum of uniforms), like a trained layer's spread.
fn weights(n: usize) -> Vec<f32> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n)
        .map(|_| (next() + next() + next() + next()) * 0.05)
        .collect()
}

fn bench(c: &mut Criterion) {
    let row = 2048;
    let rows = 256;
    let x = weights(row * rows);
    let mut g = c.benchmark_group("quantize");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    g.sample_size(10);
    let cases = [
        (GgmlType::Q8_0, Algorithm::Refined, "Q8_0"),
        (GgmlType::Q5_0, Algorithm::Refined, "Q5_0"),
        (GgmlType::Q5_1, Algorithm::Refined, "Q5_1"),
        (GgmlType::Q8K, Algorithm::Refined, "Q8_K"),
        (GgmlType::Q4K, Algorithm::Reference, "Q4_K reference"),
        (GgmlType::Q4K, Algorithm::Refined, "Q4_K refined"),
        (GgmlType::Q5K, Algorithm::Reference, "Q5_K reference"),
        (GgmlType::Q5K, Algorithm::Refined, "Q5_K refined"),
        (GgmlType::Q6K, Algorithm::Reference, "Q6_K reference"),
        (GgmlType::Q6K, Algorithm::Refined, "Q6_K refined"),
    ];
    for threads in [1, 2] {
        for (ty, alg, name) in cases {
            g.bench_with_input(BenchmarkId::new(name, format!("{threads}t")), &x, |b, x| {
                b.iter(|| quantize_rows(ty, alg, x, row, threads).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
