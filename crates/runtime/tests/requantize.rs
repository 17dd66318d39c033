//! The file-level quantization pipeline on a copy of the shared tiny F16 model: what it
//! reports, that its output does not depend on the thread count, and what it refuses.
//! (`crates/cli/tests/quantize_cli.rs` compares its output with llama.cpp's, byte for byte.)

mod common;

use std::fs;

use ms_gguf::{GgmlType, GgufFile};
use ms_quant::quantize::Algorithm;
use ms_quant::recipe::Target;
use ms_runtime::requantize::{Progress, QuantizeError, quantize_file, quantize_file_with_progress};

#[test]
fn q4_k_m_reports_its_progress_and_is_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tiny.f16.gguf");
    fs::copy(common::tiny_f16(), &input).unwrap();
    let one = dir.path().join("one.gguf");
    let two = dir.path().join("two.gguf");

    let (mut total, mut advanced, mut tensors, mut finished) = (0, 0, Vec::new(), 0);
    let report = quantize_file_with_progress(
        &input,
        &one,
        Target::Q4KM,
        Algorithm::Refined,
        1,
        &mut |p| match p {
            Progress::Start { total_bytes, .. } => total = total_bytes,
            Progress::Tensor(name) => tensors.push(name.to_string()),
            Progress::Advance(n) => advanced += n,
            Progress::Finish => finished += 1,
        },
    )
    .unwrap();
    assert_eq!(
        (total, advanced, finished),
        (report.bytes_in, report.bytes_in, 1)
    );
    assert_eq!(tensors.len(), report.n_tensors);

    let out = GgufFile::open(&one).unwrap();
    let names: Vec<&str> = out.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, tensors, "progress names the tensors in output order");
    let types: Vec<GgmlType> = out.tensors().iter().map(|t| t.ty).collect();
    assert_eq!(types, report.types);
    assert_eq!(
        out.metadata().get_u32_opt("general.file_type").unwrap(),
        Some(Target::Q4KM.file_type())
    );
    assert!(report.bytes_out < report.bytes_in / 2, "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    quantize_file(&input, &two, Target::Q4KM, Algorithm::Refined, 2).unwrap();
    assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());
}

#[test]
fn refuses_to_overwrite_its_input_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tiny.f16.gguf");
    fs::copy(common::tiny_f16(), &input).unwrap();
    let before = fs::read(&input).unwrap();
    let err = quantize_file(&input, &input, Target::Q8_0, Algorithm::Refined, 1).unwrap_err();
    assert!(matches!(err, QuantizeError::SameFile { .. }), "{err}");
    assert_eq!(fs::read(&input).unwrap(), before);

    let missing = dir.path().join("no").join("o.gguf");
    let err = quantize_file(&input, &missing, Target::Q8_0, Algorithm::Refined, 1).unwrap_err();
    assert!(
        err.to_string().contains("cannot create the output file"),
        "{err}"
    );
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}
