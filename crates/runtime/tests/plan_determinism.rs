//! The same plan gives the same tokens (and token digest) with 1, 2 and 3
//! threads and on both CPU backends (the SIMD kernels are bit-identical to the scalar
//! reference), with sampling on, for weights in F16, Q8_0 and Q4_K_M.

mod common;

use ms_engine::Model;
use ms_engine::backend::BackendKind;
use ms_engine::generate::{Generator, encode_prompt};
use ms_engine::tokenizer::Tokenizer;
use ms_runtime::plan::{Context, Layer, ModelFacts, Origin, resolve};
use ms_runtime::token_digest;
use ms_spec::types::plan::{Backend, PlanSpec};

const PLAN: &str = "apiVersion: modelspec/v1
kind: ExecutionPlan
metadata: {name: determinism}
spec:
  contextLength: 96
  sampling: {temperature: 0.9, topK: 40, topP: 0.95, maxTokens: 20}
  seed: 1234
  determinism: strict
";

fn digest(model_file: &str, backend: Backend, threads: u64) -> (String, usize) {
    let path = ms_test_support::oracle_dir()
        .join("models")
        .join(model_file);
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("p.plan.yaml");
    std::fs::write(&plan_file, PLAN).unwrap();
    let plan = ms_spec::plan::load(&plan_file).unwrap().plan;
    let flags = PlanSpec {
        backend: Some(backend),
        threads: Some(threads),
        // Thread counts above this machine's cores are part of the comparison.
        oversubscribe: Some(true),
        ..PlanSpec::default()
    };
    let ctx = Context {
        model: Some(ModelFacts::read(&path).unwrap()),
        cache_root: None,
        spec_max_sequence: None,
        spec_max_batch: None,
        watermark_keys: Default::default(),
    };
    let layers = [
        Layer::from_plan(Origin::Plan, &plan_file, plan),
        Layer::flags(flags),
    ];
    let eff = resolve("determinism", &layers, &ctx).unwrap();
    assert_eq!(eff.status.origins["/seed"], Origin::Plan);
    assert_eq!(eff.status.origins["/threads"], Origin::Flag);
    let model = Model::load(&path, &eff.load_options()).unwrap();
    assert_eq!(model.info().backend.name(), backend.name());
    assert_eq!(model.info().threads as u64, threads);
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    let ids = encode_prompt(&tok, "Once upon a time, in a small village", true).unwrap();
    let out = Generator::new(&model)
        .generate(&tok, &ids, &eff.generate_options(), |_| true)
        .unwrap();
    (token_digest(&out.tokens), out.tokens.len())
}

#[test]
fn same_plan_same_tokens_for_any_thread_count_and_cpu_backend() {
    let mut backends = vec![Backend::CpuScalar];
    // The build machine and CI have AVX2; elsewhere only the reference runs.
    if BackendKind::CpuSimd.is_available() {
        backends.push(Backend::CpuSimd);
    }
    for file in [
        "llama-spm-tiny.f16.gguf",
        "llama-spm-tiny.q8_0.gguf",
        "llama-spm-tiny.q4_k_m.gguf",
    ] {
        let (reference, n) = digest(file, Backend::CpuScalar, 1);
        assert_eq!(n, 20, "{file}: the plan's maxTokens");
        for &backend in &backends {
            for threads in [1, 2, 3] {
                assert_eq!(
                    digest(file, backend, threads),
                    (reference.clone(), n),
                    "{file}: {} with {threads} threads differs from cpu-scalar with 1",
                    backend.name()
                );
            }
        }
    }
}

#[test]
fn an_unavailable_backend_is_refused_before_loading() {
    let path = common::tiny_f16();
    let ctx = Context {
        model: Some(ModelFacts::read(&path).unwrap()),
        cache_root: None,
        spec_max_sequence: None,
        spec_max_batch: None,
        watermark_keys: Default::default(),
    };
    let flags = PlanSpec {
        backend: Some(Backend::Cuda),
        ..PlanSpec::default()
    };
    let err = resolve("p", &[Layer::flags(flags)], &ctx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("backend `cuda` is not available on this machine; available: cpu-scalar"),
        "{err}"
    );
    assert!(err.contains("CPU features detected: "), "{err}");
}
