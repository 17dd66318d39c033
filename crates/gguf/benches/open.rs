//! Opening and indexing the default model (Gemma 3 270M: 33 metadata keys including a
//! 262,144-entry vocabulary, 236 tensors), warm in the page cache.

use criterion::{Criterion, criterion_group, criterion_main};
use ms_gguf::GgufFile;

fn open(c: &mut Criterion) {
    let path = ms_fetch::default_model().expect("default model");
    c.bench_function("open_default_model", |b| {
        b.iter(|| {
            let f = GgufFile::open(&path).expect("open");
            std::hint::black_box(f.tensors().len())
        })
    });
}

criterion_group!(benches, open);
criterion_main!(benches);
