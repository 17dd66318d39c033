//! Whatever the reader accepts, the writer writes back so that it reads the same: same
//! metadata, same tensor index and bytes; and writing that again gives the same file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ms_gguf::{GgufFile, TensorDesc};

fn write(f: &GgufFile, path: &std::path::Path) {
    let descs: Vec<TensorDesc> = f.tensors().iter().map(TensorDesc::from).collect();
    let mut w = ms_gguf::GgufWriter::create(path, f.metadata(), &descs).expect("create");
    for t in f.tensors() {
        w.write_tensor(&t.name, f.tensor_data(t))
            .expect("write tensor");
    }
    w.finish().expect("finish");
}

fuzz_target!(|data: &[u8]| {
    let Ok(a) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    // The architecture-agnostic summary `modelspec inspect` prints must not panic or hang.
    let arch = ms_gguf::summary::ArchSummary::of(a.metadata());
    std::hint::black_box(arch.kv_cache_bytes(1 << 20, 4));
    std::hint::black_box(ms_gguf::summary::SizeSummary::of(&a).bits_per_weight());
    // Huge alignments make huge (sparse-free) files in memory; the reader accepts them,
    // the round trip is not interesting for them.
    if a.alignment() > 4096 {
        return;
    }
    let dir = std::env::temp_dir();
    let p1 = dir.join(format!("ms-gguf-fuzz-{}-1.gguf", std::process::id()));
    let p2 = dir.join(format!("ms-gguf-fuzz-{}-2.gguf", std::process::id()));
    write(&a, &p1);
    let b = GgufFile::open(&p1).expect("written file reads");
    // Debug output compares floats by their printed form, so NaN equals NaN here.
    assert_eq!(format!("{:?}", a.metadata()), format!("{:?}", b.metadata()));
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!(
            (&x.name, &x.dims, x.ty, x.size),
            (&y.name, &y.dims, y.ty, y.size)
        );
        assert_eq!(a.tensor_data(x), b.tensor_data(y));
    }
    write(&b, &p2);
    let again = std::fs::read(&p2).expect("read back");
    assert!(again == b.bytes(), "writing a written file changes it");
    let _ = std::fs::remove_file(&p1);
    let _ = std::fs::remove_file(&p2);
});
