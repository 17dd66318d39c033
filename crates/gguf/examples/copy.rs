//! Rewrites a GGUF file with ms-gguf's writer: `cargo run --example copy IN OUT`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        return Err("usage: copy IN.gguf OUT.gguf".into());
    };
    let f = ms_gguf::GgufFile::open(src)?;
    ms_gguf::copy(&f, dst)?;
    Ok(())
}
