//! The GGUF reader on arbitrary bytes: it must return an error or an index whose every
//! tensor view and metadata value can be touched, never panic or read out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ms_gguf::{Array, GgufFile, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    let mut acc = 0u64;
    for (key, value) in f.metadata().iter() {
        acc = acc.wrapping_add(key.len() as u64);
        acc = acc.wrapping_add(touch(value));
        // The typed getters must agree with the iteration and never panic.
        let _ = f.metadata().get_u32(key);
        let _ = f.metadata().get_f32(key);
        let _ = f.metadata().get_str(key);
        let _ = f.metadata().get_str_array(key);
        let _ = f.metadata().get_f32_array(key);
        let _ = f.metadata().get_int_array(key);
        assert!(f.metadata().get(key).is_some());
    }
    for t in f.tensors() {
        let bytes = f.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.size);
        assert_eq!(t.offset % f.alignment(), 0);
        acc = acc.wrapping_add(bytes.iter().map(|&b| b as u64).sum::<u64>());
        acc = acc
            .wrapping_add(t.n_elements())
            .wrapping_add(t.n_rows())
            .wrapping_add(t.row_len());
        assert_eq!(f.tensor(&t.name).map(|x| x.offset), Some(t.offset));
    }
    std::hint::black_box(acc);
});

fn touch(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        Value::Array(a) => touch_array(a),
        other => other.as_f64().map(|x| x.to_bits()).unwrap_or(1),
    }
}

fn touch_array(a: &Array) -> u64 {
    let mut acc = a.len() as u64;
    if let Array::Array(inner) = a {
        for x in inner {
            acc = acc.wrapping_add(touch_array(x));
        }
    } else if let Some(first) = a.get(0) {
        acc = acc.wrapping_add(touch(&first));
        let _ = a.get(a.len() - 1);
        let _ = a.to_i64_vec();
    }
    acc
}
