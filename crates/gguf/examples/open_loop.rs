//! Times opening a GGUF file repeatedly: `open_loop FILE [N]` prints min and median.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: open_loop FILE [N]")?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let f = ms_gguf::GgufFile::open(&path)?;
        std::hint::black_box(f.tensors().len());
        drop(f);
        times.push(t.elapsed());
    }
    times.sort();
    println!("min {:?} median {:?}", times[0], times[n / 2]);
    Ok(())
}
