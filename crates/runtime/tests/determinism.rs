//! Same input and settings give the same tokens (and token digest) with 1, 2 and 3 threads,
//! and a real run's report carries every field, on the shared tiny model.

mod common;

use std::path::Path;
use std::time::Instant;

use ms_engine::generate::{GenerateOptions, Generation, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};
use ms_runtime::report::{ModelRecord, TokenRecord};
use ms_runtime::{CacheStatus, EnergyMeter, Metrics, RunReport, token_digest};

fn run(threads: usize, sampling: SamplingParams) -> (Vec<u32>, Generation, Metrics) {
    run_model(&common::tiny_f16(), threads, sampling)
}

fn run_model(
    path: &Path,
    threads: usize,
    sampling: SamplingParams,
) -> (Vec<u32>, Generation, Metrics) {
    let start = Instant::now();
    let model = Model::load(
        path,
        &LoadOptions {
            threads,
            context_length: Some(128),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
    let load = start.elapsed();
    let ids = encode_prompt(&tok, "Once upon a time, in a small village", true).unwrap();
    let opts = GenerateOptions {
        sampling,
        max_tokens: 24,
        stop: Vec::new(),
    };
    let meter = EnergyMeter::start();
    let out = Generator::new(&model)
        .generate(&tok, &ids, &opts, |_| true)
        .unwrap();
    let metrics = Metrics::new(&out, load, meter.finish());
    (ids, out, metrics)
}

#[test]
fn token_digest_is_the_same_for_1_2_and_3_threads() {
    for sampling in [
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        SamplingParams {
            temperature: 0.9,
            seed: 1234,
            ..SamplingParams::default()
        },
    ] {
        let digests: Vec<String> = [1, 2, 3]
            .into_iter()
            .map(|t| {
                let (_, out, _) = run(t, sampling.clone());
                assert_eq!(out.tokens.len(), 24);
                token_digest(&out.tokens)
            })
            .collect();
        assert_eq!(digests[0], digests[1], "{sampling:?}");
        assert_eq!(digests[0], digests[2], "{sampling:?}");
    }
}

#[test]
fn token_digest_is_the_same_for_any_thread_count_on_k_quants_too() {
    let path = ms_test_support::oracle_model("llama-spm-tiny.q4_k_m");
    let sampling = SamplingParams {
        temperature: 0.7,
        seed: 99,
        ..SamplingParams::default()
    };
    let digests: Vec<String> = [1, 2, 3]
        .into_iter()
        .map(|t| token_digest(&run_model(&path, t, sampling.clone()).1.tokens))
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

#[test]
fn a_real_run_fills_the_report() {
    let (ids, out, metrics) = run(2, SamplingParams::default());
    assert_eq!(metrics.prompt_tokens, ids.len());
    assert_eq!(metrics.generated_tokens, 24);
    assert!(metrics.load_ms > 0.0);
    assert!(metrics.time_to_first_token_ms > 0.0);
    assert!(metrics.prompt_tokens_per_second > 0.0);
    assert!(metrics.generation_tokens_per_second > 0.0);
    let itl = &metrics.inter_token_latency;
    assert_eq!(itl.count, 23);
    let (p50, p95, p99) = (
        itl.p50_ms.unwrap(),
        itl.p95_ms.unwrap(),
        itl.p99_ms.unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{itl:?}");
    assert!(metrics.energy.joules > 0.0 && metrics.energy.average_watts > 0.0);
    assert!(metrics.tokens_per_joule > 0.0);

    let sha = ms_fetch::sha256_file(&common::tiny_f16()).unwrap();
    let model = ModelRecord {
        artifact: common::tiny_f16(),
        artifact_sha256: sha.clone(),
        quantization: "source".into(),
        loaded: common::tiny_f16(),
        loaded_sha256: sha.clone(),
        cache: CacheStatus::Source,
        architecture: "llama".into(),
    };
    let plan = serde_json::json!({"kind": "ExecutionPlan", "spec": {"threads": 2}});
    let tokens = TokenRecord::new(&ids, &out.tokens, "max tokens".into());
    let report = RunReport::new(plan, model, tokens, metrics);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.json");
    report.write(&file).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["format"], "modelspec.run-report/v1");
    assert_eq!(json["plan"]["spec"]["threads"], 2);
    assert_eq!(json["model"]["artifact_sha256"], sha.as_str());
    assert_eq!(json["model"]["cache"]["status"], "source");
    assert_eq!(
        json["tokens"]["generated_digest"],
        token_digest(&out.tokens)
    );
    assert_eq!(json["tokens"]["generated_count"], 24);
    assert!(json["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(json["machine"]["cpu_model"].as_str().is_some());
    let m = &json["metrics"];
    for key in [
        "load_ms",
        "time_to_first_token_ms",
        "prompt_tokens_per_second",
        "generation_tokens_per_second",
        "tokens_per_joule",
    ] {
        assert!(m[key].as_f64().unwrap() > 0.0, "{key}");
    }
    for key in ["p50_ms", "p95_ms", "p99_ms"] {
        assert!(
            m["inter_token_latency"][key].as_f64().unwrap() > 0.0,
            "{key}"
        );
    }
    let source = m["energy"]["source"].as_str().unwrap();
    assert!(source == "rapl" || source == "estimated", "{source}");
    if source == "estimated" {
        assert!(m["energy"]["model"]["tdp_watts"].as_f64().unwrap() > 0.0);
        assert!(m["energy"]["model"]["cpu_seconds"].as_f64().unwrap() > 0.0);
    }
}
