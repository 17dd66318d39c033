//! `ms_runtime::evaluate`: a candidate plan is checked before anything is loaded, then measured
//! beside the current plan on the same workload; both measurements are real and the token
//! comparison is truthful.

mod common;

use std::path::PathBuf;

use ms_engine::generate::{GenerateOptions, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_runtime::evaluate::{EvaluateError, Evaluation, PlanMeasurement, Workload, evaluate};
use ms_runtime::load::{LoadProgress, LoadRequest, Loaded, PlanSource, codes, load};
use ms_runtime::{CacheStatus, token_digest};
use ms_spec::Severity;
use ms_spec::types::plan::{PlanSpec, Quantization as PlanQuantization};

fn tiny() -> PathBuf {
    common::tiny_f16()
}

fn quiet(_: LoadProgress) {}

fn inline(name: &str, spec: &str) -> PlanSource {
    PlanSource::Inline {
        name: name.into(),
        yaml: format!(
            "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata:\n  name: {name}\nspec:\n{spec}"
        ),
    }
}

fn small_workload() -> Workload {
    Workload {
        prompts: vec!["Once upon a time".into(), "The weather today is".into()],
        max_tokens: 6,
    }
}

fn current_tiny(flags: PlanSpec) -> Loaded {
    let req = LoadRequest {
        flags,
        ..LoadRequest::new(tiny().to_str().unwrap())
    };
    load(&req, &mut quiet).unwrap()
}

fn one_thread() -> PlanSpec {
    PlanSpec {
        threads: Some(1),
        ..PlanSpec::default()
    }
}

/// The greedy tokens of each workload prompt, computed here without `evaluate`.
fn reference_tokens(model_file: &std::path::Path, w: &Workload) -> Vec<Vec<u32>> {
    let model = ms_engine::Model::load(model_file, &ms_engine::LoadOptions::default()).unwrap();
    let tok = ms_engine::tokenizer::Tokenizer::from_gguf(model.gguf()).unwrap();
    let opts = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: w.max_tokens,
        stop: Vec::new(),
    };
    w.prompts
        .iter()
        .map(|p| {
            let ids = encode_prompt(&tok, p, false).unwrap();
            Generator::new(&model)
                .generate(&tok, &ids, &opts, |_| true)
                .unwrap()
                .tokens
        })
        .collect()
}

fn plausible(m: &PlanMeasurement, w: &Workload) {
    assert_eq!(m.prompts, w.prompts.len());
    assert!(m.prompt_tokens >= w.prompts.len(), "{m:?}");
    assert!(
        m.generated_tokens >= w.prompts.len()
            && m.generated_tokens <= w.prompts.len() * w.max_tokens,
        "{m:?}"
    );
    for v in [
        m.prefill_tokens_per_second,
        m.generation_tokens_per_second,
        m.ttft_ms,
        m.wall_ms,
        m.joules,
        m.tokens_per_joule,
    ] {
        assert!(v.is_finite() && v > 0.0, "{m:?}");
    }
    let p50 = m.inter_token_p50_ms.unwrap();
    let p95 = m.inter_token_p95_ms.unwrap();
    assert!(p50 > 0.0 && p50 <= p95, "{m:?}");
    // Per-prompt times cannot exceed the whole measured pass.
    assert!(m.ttft_ms < m.wall_ms, "{m:?}");
    assert!((m.tokens_per_joule - m.generated_tokens as f64 / m.joules).abs() < 1e-9);
    assert!(
        m.energy_method == "rapl" || m.energy_method.starts_with("estimated: joules ="),
        "{}",
        m.energy_method
    );
    assert!(m.token_digest.starts_with("sha256:"));
    assert_eq!(m.prompt_digests.len(), w.prompts.len());
}

fn check_tokens(e: &Evaluation, current: &[Vec<u32>], candidate: &[Vec<u32>]) {
    let all = |t: &[Vec<u32>]| token_digest(&t.concat());
    assert_eq!(e.current.token_digest, all(current));
    assert_eq!(e.candidate.token_digest, all(candidate));
    for (i, t) in current.iter().enumerate() {
        assert_eq!(e.current.prompt_digests[i], token_digest(t));
    }
    assert_eq!(e.same_tokens, current == candidate);
    assert_eq!(e.same_tokens, e.first_difference.is_none());
    if let Some(d) = &e.first_difference {
        let (a, b) = (&current[d.prompt], &candidate[d.prompt]);
        assert_eq!(a[..d.token], b[..d.token]);
        assert_ne!(a.get(d.token), b.get(d.token));
    }
}

#[test]
fn a_requantized_candidate_is_measured_beside_the_current_plan() {
    let current = current_tiny(one_thread());
    let w = small_workload();
    let e = evaluate(
        &current,
        inline("q4", "  quantization: Q4_K_M\n  threads: 1\n"),
        &w,
    )
    .unwrap();
    plausible(&e.current, &w);
    plausible(&e.candidate, &w);
    assert_eq!(e.current.quantization, "source");
    assert_eq!(e.candidate.quantization, "Q4_K_M");
    assert_eq!(e.candidate.plan, "q4");
    assert_eq!(e.current.plan, "default");
    assert_eq!(e.candidate_plan.spec.quantization, "Q4_K_M");
    assert_ne!(e.candidate_load.cache, CacheStatus::Source);
    assert_ne!(e.candidate.loaded, e.current.loaded);
    let ratio = e.ratios.generation_tokens_per_second.unwrap();
    assert!(
        (ratio - e.candidate.generation_tokens_per_second / e.current.generation_tokens_per_second)
            .abs()
            < 1e-9
    );
    // Token comparison: both sides recomputed independently.
    check_tokens(
        &e,
        &reference_tokens(&tiny(), &w),
        &reference_tokens(&e.candidate.loaded, &w),
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["candidate"]["quantization"], "Q4_K_M");
    assert!(
        json["current"]["generationTokensPerSecond"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(json["candidatePlan"]["spec"]["quantization"], "Q4_K_M");
    assert_eq!(json["sameTokens"], e.same_tokens);
    assert_eq!(json["workload"]["maxTokens"], 6);

    // The same execution as a candidate gives the same tokens.
    let same = evaluate(&current, inline("same", "  threads: 1\n"), &w).unwrap();
    assert!(same.same_tokens);
    assert_eq!(same.current.token_digest, same.candidate.token_digest);
    assert_eq!(same.candidate_load.cache, CacheStatus::Source);
}

#[test]
fn a_q8_0_candidate_of_the_default_model_is_evaluated() {
    ms_fetch::default_model().unwrap();
    let current = load(&LoadRequest::new("gemma3-270m"), &mut quiet).unwrap();
    let w = Workload {
        prompts: vec!["The capital of France is".into()],
        max_tokens: 8,
    };
    let e = evaluate(&current, inline("q8", "  quantization: Q8_0\n"), &w).unwrap();
    plausible(&e.current, &w);
    plausible(&e.candidate, &w);
    assert_eq!(e.current.quantization, "source");
    assert_eq!(e.candidate.quantization, "Q8_0");
    assert!(e.candidate.loaded.to_string_lossy().contains("Q8_0"));
    check_tokens(
        &e,
        &reference_tokens(&current.artifact.loaded, &w),
        &reference_tokens(&e.candidate.loaded, &w),
    );
    // Q8_0 from a Q4_K_M file is no smaller: the quantizer's warning is passed on.
    assert!(
        e.findings
            .iter()
            .any(|f| f.severity == Severity::Warning && f.message.contains("gains nothing")),
        "{:#?}",
        e.findings
    );
}

#[test]
fn a_context_above_the_models_is_refused_before_loading() {
    let current = current_tiny(one_thread());
    let cache = ms_fetch::Cache::from_env().unwrap();
    let sha = ms_fetch::sha256_file(&tiny()).unwrap();
    // Q6_K of the tiny model: if the candidate were loaded, this entry would be built.
    let entry =
        ms_runtime::QuantCache::under(cache.root()).entry_path(&sha, ms_runtime::Quantization::Q6K);
    let existed = entry.exists();
    let err = evaluate(
        &current,
        inline(
            "huge",
            "  quantization: Q6_K\n  contextLength: 4096\n  threads: 1\n",
        ),
        &small_workload(),
    )
    .unwrap_err();
    let EvaluateError::Invalid { plan, findings } = &err else {
        panic!("{err}")
    };
    assert_eq!(plan, "<inline plan huge>");
    let f = findings
        .iter()
        .find(|f| f.pointer == "/spec/contextLength")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f.code, codes::CONTEXT_EXCEEDS_MODEL);
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("4096 exceeds the 2048 tokens"), "{f:?}");
    assert_eq!(f.source, "<inline plan huge>");
    assert_eq!((f.line, f.column), (7, 3));
    assert_eq!(entry.exists(), existed, "nothing was requantized");
    assert!(err.to_string().contains("<inline plan huge>:7:3"), "{err}");
}

#[test]
fn limits_of_the_machine_the_spec_the_current_plan_and_the_workload_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let sha = ms_fetch::sha256_file(&tiny()).unwrap();
    let spec = dir.path().join("tiny.modelspec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: tiny\nspec:\n  identity:\n    model:\n      id: tiny\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n      artifacts:\n        - role: weights\n          uri: file://{}\n          format: gguf\n          sha256: {sha}\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n    batch:\n      maxBatchSize: 2\n      maxSequenceLengthTokens: 256\n    resources:\n      cpuCores: 1\n",
            tiny().display()
        ),
    )
    .unwrap();
    let current = load(
        &LoadRequest {
            flags: PlanSpec {
                context_length: Some(128),
                ..PlanSpec::default()
            },
            ..LoadRequest::new(spec.to_str().unwrap())
        }
        .with_plan(inline(
            "cur",
            "  threads: 1\n  limits: {maxTokensPerRequest: 64}\n  sampling: {maxTokens: 32}\n",
        )),
        &mut quiet,
    )
    .unwrap();
    assert!(current.spec.is_some());
    let cores = std::thread::available_parallelism().unwrap().get();
    let candidate = format!(
        "  scheduler: {{maxBatch: 4}}\n  threads: {}\n  oversubscribe: true\n  limits: {{maxTokensPerRequest: 500, maxQueue: 8}}\n  sampling: {{maxTokens: 16}}\n",
        cores + 1
    );
    let err = evaluate(&current, inline("greedy", &candidate), &small_workload()).unwrap_err();
    let EvaluateError::Invalid { findings, .. } = &err else {
        panic!("{err}")
    };
    let has = |code: &str, pointer: &str| {
        findings
            .iter()
            .any(|f| f.code == code && f.pointer == pointer && f.severity == Severity::Error)
    };
    assert!(
        has(codes::EXCEEDS_MACHINE, "/spec/threads"),
        "{findings:#?}"
    );
    assert!(has(codes::EXCEEDS_SPEC, "/spec/threads"), "{findings:#?}");
    assert!(
        has(codes::EXCEEDS_SPEC, "/spec/scheduler/maxBatch"),
        "{findings:#?}"
    );
    assert!(
        has(codes::EXCEEDS_CURRENT, "/spec/limits/maxTokensPerRequest"),
        "{findings:#?}"
    );
    let batch = findings
        .iter()
        .find(|f| f.pointer == "/spec/scheduler/maxBatch")
        .unwrap();
    assert_eq!((batch.line, batch.column), (6, 15));
    assert_eq!(batch.found.as_deref(), Some("4"), "{batch:?}");
    assert!(
        batch
            .expected
            .as_deref()
            .is_some_and(|e| e.starts_with("at most ")),
        "{batch:?}"
    );
    // The context is a flag of the current deployment: it stays 128 (within the spec's
    // limit) whatever the candidate says, and the candidate is told so.
    let e = evaluate(
        &current,
        inline(
            "long",
            "  contextLength: 512\n  threads: 1\n  limits: {maxTokensPerRequest: 64}\n  sampling: {maxTokens: 32}\n",
        ),
        &small_workload(),
    )
    .unwrap();
    assert_eq!(e.candidate.context_length, Some(128));
    assert!(
        e.findings
            .iter()
            .any(|f| f.code == codes::OVERRIDDEN_BY_FLAG
                && f.pointer == "/spec/contextLength"
                && f.severity == Severity::Warning),
        "{:#?}",
        e.findings
    );

    // Without the flag the spec's limit refuses it.
    let current = load(
        &LoadRequest {
            flags: PlanSpec {
                threads: Some(1),
                ..PlanSpec::default()
            },
            ..LoadRequest::new(spec.to_str().unwrap())
        },
        &mut quiet,
    );
    // The model's default context (2048) is above the spec's 256: the current plan loads (the
    // spec limit is enforced on candidates).
    let current = current.unwrap();
    let err = evaluate(
        &current,
        inline("long", "  contextLength: 512\n  threads: 1\n"),
        &small_workload(),
    )
    .unwrap_err();
    let EvaluateError::Invalid { findings, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        findings
            .iter()
            .any(|f| f.code == codes::EXCEEDS_SPEC && f.pointer == "/spec/contextLength"),
        "{findings:#?}"
    );

    // The workload must fit the candidate's context.
    let err = evaluate(
        &current,
        inline(
            "short",
            "  contextLength: 8\n  threads: 1\n  sampling: {maxTokens: 4}\n",
        ),
        &small_workload(),
    )
    .unwrap_err();
    let EvaluateError::Invalid { findings, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        findings
            .iter()
            .any(|f| f.code == codes::WORKLOAD_EXCEEDS_CONTEXT),
        "{findings:#?}"
    );
}

#[test]
fn an_invalid_candidate_document_is_refused_with_its_findings() {
    let current = current_tiny(PlanSpec {
        threads: Some(1),
        quantization: Some(PlanQuantization::Source),
        ..PlanSpec::default()
    });
    let err = evaluate(
        &current,
        inline("typo", "  quantisation: Q8_0\n"),
        &small_workload(),
    )
    .unwrap_err();
    let EvaluateError::Invalid { findings, .. } = &err else {
        panic!("{err}")
    };
    let f = &findings[0];
    assert_eq!(
        (f.code.as_str(), f.pointer.as_str()),
        ("MS0102", "/spec/quantisation")
    );
    assert_eq!((f.line, f.column), (6, 3));
    assert_eq!(f.source, "<inline plan typo>");

    // A flag of the current deployment overrides the candidate's quantization: reported.
    let e = evaluate(
        &current,
        inline("q8", "  quantization: Q8_0\n  threads: 1\n"),
        &Workload {
            prompts: vec!["Hello".into()],
            max_tokens: 2,
        },
    )
    .unwrap();
    assert_eq!(e.candidate.quantization, "source");
    let o = e
        .findings
        .iter()
        .find(|f| f.code == codes::OVERRIDDEN_BY_FLAG)
        .unwrap_or_else(|| panic!("{:#?}", e.findings));
    assert_eq!(o.pointer, "/spec/quantization");
    assert_eq!((o.line, o.column), (6, 3));

    // An unusable workload.
    let err = evaluate(
        &current,
        inline("w", "  threads: 1\n"),
        &Workload {
            prompts: vec![],
            max_tokens: 4,
        },
    )
    .unwrap_err();
    assert!(matches!(err, EvaluateError::Workload(_)), "{err}");
}

#[test]
fn the_default_workload_is_documented_and_fixed() {
    let w = Workload::default();
    assert_eq!(w.prompts.len(), 3);
    assert_eq!(w.max_tokens, 32);
    assert_eq!(w, Workload::default());
}
