//! Hostile and broken files: every one is a clear error naming the file and the problem,
//! never a panic. The files are built byte by byte here so each test controls exactly what
//! is wrong.

use ms_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Metadata, TensorDesc, Value};

const NAME: &str = "synthetic.gguf";

/// A little-endian GGUF byte builder.
#[derive(Clone, Default)]
struct B(Vec<u8>);

impl B {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> B {
        let mut b = B(b"GGUF".to_vec());
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(4).u32(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Zero padding up to the 32-byte boundary where tensor data starts, then `n` data bytes.
    fn data(&mut self, n: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(32) {
            self.0.push(0);
        }
        self.0.extend((0..n).map(|i| i as u8));
        self
    }
    fn open(&self) -> Result<GgufFile, GgufError> {
        GgufFile::from_bytes(NAME, self.0.clone())
    }
}

/// Opens `b`, expects an error whose message names the file and contains `needle`.
#[track_caller]
fn expect_err(b: &B, needle: &str) -> GgufError {
    let e = b.open().expect_err("the file must be rejected");
    let msg = e.to_string();
    assert!(msg.starts_with(NAME), "error does not name the file: {msg}");
    assert!(msg.contains(needle), "expected '{needle}' in: {msg}");
    e
}

fn valid() -> B {
    let mut b = B::header(3, 1, 1);
    b.kv_u32("general.k", 7).tensor("w", &[4, 2], 0, 0).data(32);
    b
}

#[test]
fn the_valid_base_file_reads() {
    let f = valid().open().unwrap();
    assert_eq!(f.metadata().get_u32("general.k"), Ok(7));
    let t = f.tensor("w").unwrap();
    assert_eq!((t.ty, t.size, t.offset), (GgmlType::F32, 32, 96));
    assert_eq!(f.tensor_data(t), (0..32).collect::<Vec<u8>>());
}

#[test]
fn every_truncation_is_an_error() {
    let full = valid();
    for len in 0..full.0.len() {
        let b = B(full.0[..len].to_vec());
        let e = b
            .open()
            .expect_err(&format!("prefix of {len} bytes must fail"));
        let msg = e.to_string();
        assert!(msg.starts_with(NAME), "{msg}");
        assert!(
            msg.contains("truncated") || msg.contains("past the end") || msg.contains("cannot fit"),
            "{len}: {msg}"
        );
    }
    expect_err(
        &B::default(),
        "truncated at byte 0: needed 4 more bytes for the magic",
    );
}

#[test]
fn wrong_magic() {
    let mut b = valid();
    b.0[..4].copy_from_slice(b"GGML");
    let e = expect_err(&b, "not a GGUF file");
    assert!(matches!(e, GgufError::BadMagic { .. }));
}

#[test]
fn unknown_versions() {
    for v in [0, 1, 4, 0xffff_ffff] {
        let mut b = valid();
        b.0[4..8].copy_from_slice(&u32::to_le_bytes(v));
        let e = expect_err(&b, &format!("version {v} is not supported"));
        assert!(matches!(e, GgufError::UnsupportedVersion { version, .. } if version == v));
    }
    let mut b = valid();
    b.0[4..8].copy_from_slice(&3u32.to_be_bytes());
    expect_err(&b, "big-endian GGUF v3 file");
}

#[test]
fn version_2_reads_like_version_3() {
    let mut b = valid();
    b.0[4..8].copy_from_slice(&2u32.to_le_bytes());
    let f2 = b.open().unwrap();
    let f3 = valid().open().unwrap();
    assert_eq!(f2.version(), 2);
    assert_eq!(f2.metadata(), f3.metadata());
    assert_eq!(f2.tensors(), f3.tensors());
}

#[test]
fn counts_that_cannot_fit() {
    let mut b = B::header(3, u64::MAX, 0);
    b.0.extend([0; 64]);
    expect_err(&b, "tensor entries cannot fit");
    let mut b = B::header(3, 0, 1 << 60);
    b.0.extend([0; 64]);
    expect_err(&b, "metadata entries cannot fit");
    // An array claiming more elements than the file holds.
    let mut b = B::header(3, 0, 1);
    b.str("a").u32(9).u32(4).u64(1 << 40).u32(1);
    expect_err(&b, "array elements cannot fit");
}

#[test]
fn dimensions_that_overflow() {
    for dims in [
        &[u64::MAX, 2][..],
        &[1 << 32, 1 << 32, 1 << 32],
        // A zero dimension must not hide an overflow of the others.
        &[1, 1 << 40, 1 << 40, 0],
        &[1 << 63],
    ] {
        let mut b = B::header(3, 1, 0);
        b.tensor("big", dims, 0, 0).data(64);
        expect_err(&b, "overflow");
    }
    let mut b = B::header(3, 1, 0);
    b.tensor("five", &[1, 1, 1, 1, 1], 0, 0).data(64);
    expect_err(&b, "tensor 'five': has 5 dimensions");
    let mut b = B::header(3, 1, 0);
    b.tensor("none", &[], 0, 0).data(64);
    expect_err(&b, "has 0 dimensions");
}

#[test]
fn offsets_and_sizes_past_the_end() {
    let mut b = B::header(3, 1, 0);
    b.tensor("w", &[8], 0, 0).data(31);
    expect_err(&b, "tensor 'w': data (offset 0 + 32 bytes");
    let mut b = B::header(3, 1, 0);
    b.tensor("w", &[8], 0, u64::MAX - 31).data(32);
    expect_err(&b, "runs past the end of the file");
    // The data section itself starts past the end.
    let mut b = B::header(3, 1, 0);
    b.tensor("w", &[8], 0, 0);
    expect_err(&b, "truncated");
}

#[test]
fn misaligned_data() {
    let mut b = B::header(3, 1, 0);
    b.tensor("w", &[2], 0, 8).data(64);
    expect_err(&b, "data offset 8 is not a multiple of the alignment 32");
    let mut b = B::header(3, 1, 1);
    b.kv_u32("general.alignment", 48)
        .tensor("w", &[2], 0, 0)
        .data(64);
    expect_err(&b, "general.alignment must be a power of two");
}

#[test]
fn string_lengths_past_eof() {
    let mut b = B::header(3, 0, 1);
    b.u64(1000).0.extend(b"short");
    expect_err(&b, "a metadata key of 1000 bytes");
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(8).u64(u64::MAX);
    expect_err(
        &b,
        "a string value of 18446744073709551615 bytes of metadata key 'k'",
    );
    let mut b = B::header(3, 1, 0);
    b.u64(1 << 20).0.extend([0u8; 40]);
    expect_err(&b, "a tensor name");
}

#[test]
fn unknown_types() {
    let mut b = B::header(3, 1, 0);
    b.tensor("w", &[2], 99, 0).data(64);
    expect_err(&b, "tensor 'w': unknown tensor type id 99");
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(13).u32(0);
    expect_err(&b, "metadata key 'k': unknown value type 13");
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(7).0.push(2);
    expect_err(&b, "metadata key 'k': bool byte is 2");
    let mut b = B::header(3, 1, 0);
    b.tensor("q", &[33], GgmlType::Q8_0.id(), 0).data(64);
    expect_err(
        &b,
        "row length 33 is not a multiple of the Q8_0 block size 32",
    );
}

#[test]
fn duplicates() {
    let mut b = B::header(3, 2, 0);
    b.tensor("w", &[2], 0, 0).tensor("w", &[2], 0, 32).data(64);
    expect_err(&b, "duplicate tensor name 'w'");
    let mut b = B::header(3, 0, 2);
    b.kv_u32("k", 1).kv_u32("k", 2);
    expect_err(&b, "duplicate metadata key 'k'");
}

#[test]
fn invalid_utf8_and_deep_nesting() {
    let mut b = B::header(3, 0, 1);
    b.u64(2).0.extend([0xff, 0xfe]);
    b.u32(4).u32(0);
    expect_err(&b, "a metadata key is not valid UTF-8");
    let mut b = B::header(3, 0, 1);
    b.str("deep").u32(9);
    for _ in 0..20 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    expect_err(&b, "arrays nested deeper than");
}

#[test]
fn files_on_disk_name_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = GgufFile::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
    let missing = dir.path().join("missing.gguf");
    let e = GgufFile::open(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&missing.display().to_string()), "{e}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let e = GgufFile::open(&empty).unwrap_err().to_string();
    assert!(e.contains("empty.gguf") && e.contains("truncated"), "{e}");
}

#[test]
fn written_files_can_be_corrupted_into_each_error() {
    // The writer's output, with the first tensor's type id replaced: proves the writer and
    // the reader agree on where the index lives.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.gguf");
    let mut m = Metadata::default();
    m.insert("general.architecture", Value::String("x".into()));
    let mut w =
        GgufWriter::create(&path, &m, &[TensorDesc::new("t", [4u64], GgmlType::F32)]).unwrap();
    w.write_tensor("t", &[0; 16]).unwrap();
    w.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // header 24 + key (8 + 20) + type 4 + value (8 + 1) + name (8 + 1) + n_dims 4 + dim 8
    let ty_at = 24 + 28 + 4 + 9 + 9 + 4 + 8;
    assert_eq!(&bytes[ty_at..ty_at + 4], &0u32.to_le_bytes());
    bytes[ty_at..ty_at + 4].copy_from_slice(&1000u32.to_le_bytes());
    expect_err(&B(bytes), "unknown tensor type id 1000");
}

/// A key holding an array of `n` strings "t0", "t1", ... (long enough to be read lazily).
fn string_array(b: &mut B, key: &str, n: usize) {
    b.str(key).u32(9).u32(8).u64(n as u64);
    for i in 0..n {
        b.str(&format!("t{i}"));
    }
}

#[test]
fn long_string_arrays_are_fully_validated_at_open() {
    let mut ok = B::header(3, 0, 2);
    string_array(&mut ok, "tokenizer.ggml.tokens", 3000);
    ok.kv_u32("after", 5);
    let f = ok.open().unwrap();
    let tokens = f.metadata().get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 3000);
    assert_eq!(tokens[2999], "t2999");
    assert_eq!(f.metadata().get_u32("after"), Ok(5));

    // Invalid UTF-8 deep inside the array.
    let mut b = B::header(3, 0, 1);
    string_array(&mut b, "tokens", 2000);
    let pos = b.0.len() - 3; // inside the last string, "t1999"
    b.0[pos] = 0xff;
    expect_err(
        &b,
        "metadata key 'tokens': an array string is not valid UTF-8",
    );

    // The last string runs past the end.
    let mut b = B::header(3, 0, 1);
    string_array(&mut b, "tokens", 2000);
    b.0.truncate(b.0.len() - 1);
    expect_err(&b, "truncated");

    // More strings claimed than could fit.
    let mut b = B::header(3, 0, 1);
    string_array(&mut b, "tokens", 2000);
    let count_at = 24 + 8 + "tokens".len() + 4 + 4;
    b.0[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_err(&b, "array elements cannot fit");
}
