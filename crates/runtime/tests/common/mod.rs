//! What the runtime tests share: the tiny F16 oracle model.

#![allow(dead_code)]

use std::path::PathBuf;

use ms_test_support::oracle_model;

pub fn tiny_f16() -> PathBuf {
    oracle_model("llama-spm-tiny.f16")
}
