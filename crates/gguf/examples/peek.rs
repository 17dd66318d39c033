fn main() {
    for p in std::env::args().skip(1) {
        let t = std::time::Instant::now();
        let f = ms_gguf::GgufFile::open(&p).unwrap();
        let el = t.elapsed();
        println!(
            "{p}: v{} {} kv {} tensors in {:?}",
            f.version(),
            f.metadata().len(),
            f.tensors().len(),
            el
        );
        for (k, v) in f.metadata().iter() {
            let s = format!("{v:?}");
            println!("  {k} = {}", &s[..s.len().min(120)]);
        }
        let mut types = std::collections::BTreeMap::new();
        for t in f.tensors() {
            *types.entry(t.ty.name()).or_insert(0) += 1;
        }
        println!("  {types:?}");
        for t in f.tensors().iter().take(40) {
            println!("  {} {:?} {}", t.name, t.dims, t.ty);
        }
    }
}
