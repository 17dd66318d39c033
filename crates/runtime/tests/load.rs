//! `ms_runtime::load`: one path from a model reference (GGUF path, ModelSpec, catalog name)
//! and a plan (file or inline document) to a loaded model, with every decision's origin and
//! clear, located errors.

mod common;

use std::path::{Path, PathBuf};

use ms_engine::generate::{GenerateOptions, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_runtime::load::{
    LoadError, LoadProgress, LoadRequest, PlanSource, codes, load, load_with_plan, resolve_plan,
};
use ms_runtime::plan::Origin;
use ms_runtime::{CacheStatus, Quantization};
use ms_spec::Severity;
use ms_spec::types::plan::PlanSpec;

const DEFAULT_SHA: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

fn tiny() -> PathBuf {
    common::tiny_f16()
}

fn one_thread() -> PlanSpec {
    PlanSpec {
        threads: Some(1),
        ..PlanSpec::default()
    }
}

fn inline(name: &str, yaml: &str) -> PlanSource {
    PlanSource::Inline {
        name: name.into(),
        yaml: yaml.into(),
    }
}

fn quiet(_: LoadProgress) {}

/// Greedy continuation of `prompt`, `n` tokens.
fn greedy(l: &ms_runtime::Loaded, prompt: &str, n: usize) -> Vec<u32> {
    let ids = encode_prompt(&l.tokenizer, prompt, false).unwrap();
    let opts = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens: n,
        stop: Vec::new(),
    };
    Generator::new(&l.model)
        .generate(&l.tokenizer, &ids, &opts, |_| true)
        .unwrap()
        .tokens
}

#[test]
fn a_gguf_path_loads_with_every_decision_explained() {
    let req = LoadRequest {
        flags: one_thread(),
        ..LoadRequest::new(tiny().to_str().unwrap())
    };
    let mut planned = false;
    let l = load(&req, &mut |p| {
        if let LoadProgress::Planned(plan) = p {
            planned = plan.spec.threads == 1;
        }
    })
    .unwrap();
    assert!(planned, "the plan is announced before loading");
    assert_eq!(l.plan.metadata.name, "default");
    assert_eq!(l.plan.spec.threads, 1);
    assert_eq!(l.plan.status.origins["/threads"], Origin::Flag);
    assert_eq!(l.plan.status.origins["/contextLength"], Origin::Model);
    assert_eq!(l.plan.spec.context_length, Some(2048));
    assert_eq!(l.model.info().threads, 1);
    assert_eq!(l.artifact.cache, CacheStatus::Source);
    assert_eq!(l.artifact.quantization, Quantization::Source);
    assert_eq!(l.artifact.loaded, tiny());
    // Not a cache blob: no digest computed when nothing needs it.
    assert_eq!(l.artifact.artifact_sha256, None);
    assert!(l.spec.is_none());
    assert_eq!(l.request, req);
    assert_eq!(greedy(&l, "Once upon a time", 4).len(), 4);
}

#[test]
fn the_catalog_name_loads_the_default_model_from_the_cache() {
    let path = ms_fetch::default_model().unwrap();
    let l = load(&LoadRequest::new("gemma3-270m"), &mut quiet).unwrap();
    assert_eq!(l.artifact.artifact, path);
    // A cache blob's name is its verified digest: known for free.
    assert_eq!(l.artifact.artifact_sha256.as_deref(), Some(DEFAULT_SHA));
    assert_eq!(l.artifact.loaded_sha256.as_deref(), Some(DEFAULT_SHA));
    assert_eq!(l.model.info().architecture.name(), "gemma3");
    assert_eq!(l.plan.spec.quantization, "source");
    // The model's 32K context is capped by default.
    assert_eq!(l.plan.status.model_context_length, Some(32768));
    assert_eq!(l.plan.spec.context_length, Some(4096));
}

#[test]
fn a_modelspec_example_loads_with_its_default_plan_and_typed_fields() {
    ms_fetch::default_model().unwrap();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/08-full-production.modelspec.yaml");
    let mut warnings = Vec::new();
    let req = LoadRequest {
        flags: PlanSpec {
            threads: Some(1),
            context_length: Some(256),
            ..PlanSpec::default()
        },
        ..LoadRequest::new(spec.to_str().unwrap())
    };
    let l = load(&req, &mut |p| {
        if let LoadProgress::Warning(w) = p {
            warnings.push(w.to_string());
        }
    })
    .unwrap();
    // The spec's default plan (examples/plans/cpu-latency.plan.yaml), flags over it.
    assert_eq!(l.plan.metadata.name, "cpu-latency");
    assert_eq!(l.plan.spec.seed, 42);
    assert_eq!(l.plan.status.origins["/seed"], Origin::SpecPlan);
    assert_eq!(l.plan.spec.threads, 1);
    assert_eq!(l.plan.status.origins["/threads"], Origin::Flag);
    assert_eq!(l.plan.spec.scheduler.policy, "latency");
    assert_eq!(l.plan.spec.scheduler.max_batch, 8);
    assert!(
        l.plan.status.files[0].ends_with("plans/cpu-latency.plan.yaml"),
        "{:?}",
        l.plan.status.files
    );
    assert_eq!(l.model.info().context_length, 256);
    assert_eq!(l.artifact.artifact_sha256.as_deref(), Some(DEFAULT_SHA));
    // The plan's token counts against the smaller context are warnings, and the flags'
    // single thread raises none.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("exceeds the context length 256")),
        "{warnings:?}"
    );

    let s = l.spec.as_deref().expect("the typed spec");
    assert_eq!(s.path, spec);
    assert_eq!(s.name, "support-chat-prod");
    assert_eq!(s.model_id, "gemma-3-270m");
    assert_eq!(s.precision.as_deref(), Some("q4_k_m"));
    assert_eq!(s.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(s.artifacts.len(), 1);
    assert_eq!(s.artifacts[0].name, "weights");
    assert_eq!(s.artifacts[0].role, "weights");
    assert_eq!(s.artifacts[0].format.as_deref(), Some("gguf"));
    assert_eq!(s.artifacts[0].sha256.as_deref(), Some(DEFAULT_SHA));
    assert_eq!(s.artifacts[0].size_bytes, Some(253113024));
    assert_eq!(s.serving.port, Some(8080));
    assert_eq!(s.serving.readiness_path.as_deref(), Some("/health"));
    assert_eq!(s.serving.readiness_timeout_seconds, Some(2));
    assert_eq!(s.serving.liveness_path.as_deref(), Some("/health"));
    assert_eq!(s.serving.liveness_timeout_seconds, Some(5));
    assert_eq!(s.serving.max_concurrency, Some(32));
    assert_eq!(s.serving.timeout_seconds, Some(60));
    assert_eq!(s.batch.max_batch_size, Some(8));
    assert_eq!(s.batch.max_sequence_length_tokens, Some(8192));
    assert_eq!(s.scaling.target_latency_ms_p95, Some(800.0));
    assert_eq!(s.scaling.target_rps, Some(50.0));
    assert_eq!(s.scaling.min_replicas, Some(2));
    assert_eq!(s.resources.memory_gb, Some(4.0));
    assert_eq!(s.resources.cpu_cores, Some(8));
    assert_eq!(s.metrics.enabled, Some(true));
    assert_eq!(s.metrics.port, Some(9090));
    assert_eq!(s.metrics.provider.as_deref(), Some("prometheus"));
    assert_eq!(s.cost.target_cost_per_1k_tokens_usd, Some(0.002));
    assert_eq!(s.cost.cloud_provider.as_deref(), Some("aws"));
    assert_eq!(s.cost.instance_type.as_deref(), Some("c7i.2xlarge"));
    assert_eq!(s.cost.spot_allowed, Some(false));
    assert_eq!(s.document.metadata.name, "support-chat-prod");
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["serving"]["maxConcurrency"], 32);
    assert_eq!(json["cost"]["targetCostPer1kTokensUsd"], 0.002);
}

const Q8_PLAN: &str = "apiVersion: modelspec/v1
kind: ExecutionPlan
metadata:
  name: agent-q8
spec:
  quantization: Q8_0
  threads: 1
  sampling: {temperature: 0, maxTokens: 8}
";

#[test]
fn an_inline_plan_is_validated_and_applied_like_a_file() {
    let req = LoadRequest::new(tiny().to_str().unwrap()).with_plan(inline("agent", Q8_PLAN));
    let l = load(&req, &mut quiet).unwrap();
    assert_eq!(l.plan.metadata.name, "agent-q8");
    assert_eq!(l.plan.spec.quantization, "Q8_0");
    assert_eq!(l.plan.status.origins["/quantization"], Origin::Plan);
    assert_eq!(l.plan.status.files, [PathBuf::from("<inline plan agent>")]);
    assert_eq!(l.artifact.quantization, Quantization::Q8_0);
    assert!(
        matches!(
            l.artifact.cache,
            CacheStatus::Built | CacheStatus::Hit | CacheStatus::Rebuilt(_)
        ),
        "{:?}",
        l.artifact.cache
    );
    assert_ne!(l.artifact.loaded, tiny());
    assert_eq!(
        l.artifact.artifact_sha256.as_deref(),
        Some(ms_fetch::sha256_file(&tiny()).unwrap().as_str())
    );
    assert_eq!(
        l.artifact.loaded_sha256.as_deref(),
        Some(ms_fetch::sha256_file(&l.artifact.loaded).unwrap().as_str())
    );

    // The same plan from a file: the same decisions.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q8.plan.yaml");
    std::fs::write(&file, Q8_PLAN).unwrap();
    let from_file = load(
        &LoadRequest::new(tiny().to_str().unwrap()).with_plan(PlanSource::File(file.clone())),
        &mut quiet,
    )
    .unwrap();
    assert_eq!(from_file.plan.spec, l.plan.spec);
    assert_eq!(from_file.plan.status.files, [file]);
    assert_eq!(from_file.artifact.loaded, l.artifact.loaded);
    assert_eq!(greedy(&from_file, "Once", 6), greedy(&l, "Once", 6));

    // Applying another plan keeps the model and the flags, replaces the plan.
    let req = LoadRequest {
        flags: PlanSpec {
            seed: Some(7),
            ..PlanSpec::default()
        },
        ..req
    };
    let swapped = load_with_plan(
        &req,
        inline(
            "src",
            "apiVersion: modelspec/v1\nkind: ExecutionPlan\nmetadata: {name: src}\nspec: {quantization: source, threads: 1}\n",
        ),
        &mut quiet,
    )
    .unwrap();
    assert_eq!(swapped.plan.metadata.name, "src");
    assert_eq!(swapped.artifact.loaded, tiny());
    assert_eq!(swapped.plan.spec.seed, 7);
    assert_eq!(swapped.plan.status.origins["/seed"], Origin::Flag);
    assert_eq!(swapped.request.flags.seed, Some(7));
}

#[test]
fn an_invalid_inline_plan_gives_located_findings() {
    let yaml = "apiVersion: modelspec/v1
kind: ExecutionPlan
metadata: {name: bad}
spec:
  thread: 2
  contextLength: lots
  sampling: {maxTokens: 900}
  limits: {maxTokensPerRequest: 100}
";
    let err = load(
        &LoadRequest::new(tiny().to_str().unwrap()).with_plan(inline("bad", yaml)),
        &mut quiet,
    )
    .unwrap_err();
    assert!(err.is_invalid_plan());
    let LoadError::Plan {
        source_name,
        findings,
        text,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(source_name, "<inline plan bad>");
    let by_pointer = |p: &str| {
        findings
            .iter()
            .find(|f| f.pointer == p)
            .unwrap_or_else(|| panic!("no finding at {p}: {findings:#?}"))
    };
    let unknown = by_pointer("/spec/thread");
    assert_eq!(unknown.code, "MS0102");
    assert_eq!((unknown.line, unknown.column), (5, 3));
    assert_eq!(unknown.source, "<inline plan bad>");
    assert!(
        unknown
            .hint
            .as_deref()
            .unwrap_or_default()
            .contains("threads"),
        "{unknown:?}"
    );
    let ctx = by_pointer("/spec/contextLength");
    assert_eq!(ctx.severity, Severity::Error);
    assert_eq!(ctx.line, 6);
    let max = by_pointer("/spec/sampling/maxTokens");
    assert_eq!(max.code, "MS0802");
    assert_eq!(max.line, 7);
    // The message shows the findings as `modelspec plan validate` does, naming the document.
    let msg = err.to_string();
    assert!(
        msg.starts_with("invalid execution plan <inline plan bad>:"),
        "{msg}"
    );
    assert!(msg.contains("<inline plan bad>:5:3"), "{msg}");
    assert!(text.contains("error[MS0102]"), "{text}");
    let json = serde_json::to_value(findings).unwrap();
    assert_eq!(json[0]["pointer"], "/spec/thread");
    assert_eq!(json[0]["severity"], "error");

    // Text a file could not hold either.
    for (yaml, code) in [("kind: ExecutionPlan\0", "MS0003"), ("", "MS0004")] {
        let err = load(
            &LoadRequest::new(tiny().to_str().unwrap()).with_plan(inline("odd", yaml)),
            &mut quiet,
        )
        .unwrap_err();
        assert_eq!(err.findings()[0].code, code, "{err}");
        assert_eq!(err.findings()[0].source, "<inline plan odd>");
    }

    // A document that is not a plan.
    let err = load(
        &LoadRequest::new(tiny().to_str().unwrap()).with_plan(inline(
            "spec",
            "apiVersion: modelspec/v1\nkind: ModelSpec\n",
        )),
        &mut quiet,
    )
    .unwrap_err();
    assert!(err.is_invalid_plan(), "{err}");
    assert!(err.to_string().contains("<inline plan spec>"), "{err}");
}

#[test]
fn a_plan_that_cannot_run_is_refused_before_loading_with_located_problems() {
    let yaml = "apiVersion: modelspec/v1
kind: ExecutionPlan
metadata: {name: big}
spec:
  threads: 1
  contextLength: 4096
";
    let err = resolve_plan(
        Some(&inline("big", yaml)),
        tiny().to_str(),
        PlanSpec {
            threads: Some(0),
            ..PlanSpec::default()
        },
        &mut quiet,
    )
    .unwrap_err();
    let LoadError::CannotRun { findings, .. } = &err else {
        panic!("{err}")
    };
    assert!(err.is_invalid_plan());
    let msg = err.to_string();
    assert!(
        msg.contains("spec.contextLength: 4096 exceeds the 2048 tokens"),
        "{msg}"
    );
    assert!(msg.contains("spec.threads: 0 threads"), "{msg}");
    let ctx = findings
        .iter()
        .find(|f| f.pointer == "/spec/contextLength")
        .unwrap();
    assert_eq!(ctx.code, codes::CONTEXT_EXCEEDS_MODEL);
    assert_eq!(
        (ctx.expected.as_deref(), ctx.found.as_deref()),
        (Some("at most 2048"), Some("4096"))
    );
    assert_eq!(ctx.source, "<inline plan big>");
    assert_eq!((ctx.line, ctx.column), (6, 3));
    // The thread count came from a flag, not from the document.
    let threads = findings
        .iter()
        .find(|f| f.pointer == "/spec/threads")
        .unwrap();
    assert_eq!(threads.code, codes::NO_THREADS);
    assert_eq!(threads.source, "command-line flags");
    assert_eq!(threads.line, 0);
}

#[test]
fn bad_model_references_name_the_model() {
    let err = load(&LoadRequest::new("/nonexistent/model.gguf"), &mut quiet).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/model.gguf"), "{msg}");
    assert!(!err.is_invalid_plan());
    let err = load(&LoadRequest::new("no-such-model"), &mut quiet).unwrap_err();
    assert!(err.to_string().contains("unknown model name"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "just some text\n").unwrap();
    let err = load(&LoadRequest::new(notes.to_str().unwrap()), &mut quiet).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("is neither a GGUF file nor a valid ModelSpec"),
        "{msg}"
    );
    assert!(msg.contains("notes.txt"), "{msg}");
    assert!(!err.findings().is_empty());

    // A spec without a runnable artifact says what to add.
    let spec = dir.path().join("empty.modelspec.yaml");
    std::fs::write(
        &spec,
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: e\nspec:\n  identity:\n    model:\n      id: e\n      family: llama\n      task: text-generation\n      framework: llama.cpp\n  runtime:\n    accelerator:\n      type: cpu\n      count: 1\n",
    )
    .unwrap();
    let err = load(&LoadRequest::new(spec.to_str().unwrap()), &mut quiet).unwrap_err();
    assert!(
        err.to_string()
            .contains("no artifact with role weights and format gguf"),
        "{err}"
    );
}

#[test]
fn plan_problems_are_typed_with_their_code_and_field() {
    use ms_runtime::plan::{Context, Layer, resolve};
    use ms_spec::types::plan::{Limits, Sampling};
    let flags = PlanSpec {
        threads: Some(0),
        context_length: Some(0),
        limits: Some(Limits {
            max_tokens_per_request: Some(5),
            ..Limits::default()
        }),
        sampling: Some(Sampling {
            max_tokens: Some(10),
            ..Sampling::default()
        }),
        ..PlanSpec::default()
    };
    let err = resolve("p", &[Layer::flags(flags)], &Context::default()).unwrap_err();
    let found: Vec<(&str, &str)> = err
        .problems
        .iter()
        .map(|p| (p.code, p.pointer.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (codes::NO_THREADS, "/spec/threads"),
            (codes::EMPTY_CONTEXT, "/spec/contextLength"),
            (codes::MAX_TOKENS_EXCEED_LIMIT, "/spec/sampling/maxTokens"),
        ]
    );
    let max_tokens = &err.problems[2];
    assert_eq!(max_tokens.expected.as_deref(), Some("1 to 5"));
    assert_eq!(max_tokens.found.as_deref(), Some("10"));
    // Every code the runtime gives is documented.
    for p in &err.problems {
        assert!(codes::lookup(p.code).is_some(), "{}", p.code);
    }
}
