#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared() -> PathBuf {
    std::env::var_os("MODELSPEC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

pub fn tiny_f16() -> PathBuf {
    shared().join("oracle/models/llama-spm-tiny.f16.gguf")
}
