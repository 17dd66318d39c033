//! Plan evaluation: the engine side of `POST /v1/plans/evaluate`. A candidate plan is checked,
//! loaded beside the current one and measured on the same short workload, so an agent can
//! compare plans (another quantization, thread count, context) without touching the running
//! deployment.
//!
//! What [`evaluate`] does, in order:
//! 1. Reads the candidate like `modelspec plan validate` (schema + MS08xx rules) and resolves
//!    its effective plan the way [`crate::load::load_with_plan`] would apply it: the candidate
//!    takes the place of the current plan document; the ModelSpec's default plan stays below
//!    it and the current command-line flags stay above it (a field a flag overrides is
//!    reported with [`codes::OVERRIDDEN_BY_FLAG`]).
//! 2. Checks the limits before loading anything: the model's context and everything else
//!    [`crate::plan::resolve`] checks (`MR01xx` codes, [`crate::codes`]); threads at most the machine's
//!    cores ([`codes::EXCEEDS_MACHINE`]); the ModelSpec's `batch.maxSequenceLengthTokens`,
//!    `batch.maxBatchSize` and `resources.cpuCores` ([`codes::EXCEEDS_SPEC`]); the current
//!    plan's `limits.maxTokensPerRequest` and `limits.maxWatts`, which a candidate may lower
//!    but not raise ([`codes::EXCEEDS_CURRENT`]); and that every workload prompt plus its
//!    tokens fits the candidate's context ([`codes::WORKLOAD_EXCEEDS_CONTEXT`]). Any error
//!    finding refuses the candidate ([`EvaluateError::Invalid`], HTTP 422) with every finding,
//!    each with its JSON pointer and line:column in the candidate document.
//! 3. Loads the candidate (requantized through the [`crate::QuantCache`] when its
//!    quantization differs: built once, reused afterwards).
//! 4. Runs the [`Workload`] under the current plan and the candidate one after the other on
//!    the calling thread (each with its own plan's threads and backend), interleaved prompt by
//!    prompt (current, candidate, next prompt...) so that a change in the machine's load
//!    affects both alike, and returns both measurements side by side with the ratios
//!    candidate / current.
//!
//! The workload is greedy (temperature 0, no penalties: the plans' sampling settings are not
//! used, so that the tokens compare the execution, not the sampler), each prompt from an empty
//! context, `max_tokens` new tokens at most (fewer when the model ends its answer). Before the
//! measured pass each model generates 2 tokens of the first prompt, unmeasured, so both sides
//! start with their weights paged in.
//!
//! Measurement definitions (per plan, over all prompts): prefill tok/s = prompt tokens / total
//! prompt time; generation tok/s = tokens after each prompt's first / total time after the
//! first tokens; TTFT = mean over prompts of the time from the start of a generation to its
//! first token; inter-token p50/p95 = nearest-rank percentiles of every gap between
//! consecutive tokens of all prompts; wall = the sum of the plan's measured generations;
//! joules from [`EnergyMeter`] around each of the plan's generations, summed (RAPL when
//! readable, else the documented CPU-time estimate: in a busy server the process's other
//! threads count too); tokens/J = generated tokens / joules; token digest =
//! [`token_digest`] of all generated tokens, prompt after prompt.
//!
//! The candidate model is dropped when `evaluate` returns (its requantized file stays in the
//! cache, so applying it afterwards with [`crate::load::load_with_plan`] only maps it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ms_engine::generate::{GenerateOptions, Generator, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_spec::Severity;
use serde::Serialize;

use crate::energy::{Energy, EnergyMeter, EnergySource, EstimateModel};
use crate::load::{
    LoadError, LoadProgress, LoadRequest, LoadSettings, Loaded, PlanFinding, PlanSource, codes,
    load_resolved, locate, resolve_plan,
};
use crate::metrics::percentile;
use crate::plan::{EffectivePlan, Origin, PlanProblem};
use crate::quant_cache::CacheStatus;
use crate::report::token_digest;

/// The fixed workload both plans run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Plain completion prompts, each run from an empty context.
    pub prompts: Vec<String>,
    /// New tokens per prompt at most (greedy).
    pub max_tokens: usize,
}

/// The built-in prompts: short, different in kind (prose, code, a list), so that prefill and
/// generation both show.
pub const DEFAULT_PROMPTS: [&str; 3] = [
    "The three most important ideas in the history of science are",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "A short list of things to check before a long hike:\n1.",
];

/// New tokens per prompt in the default workload.
pub const DEFAULT_MAX_TOKENS: usize = 32;

impl Default for Workload {
    /// [`DEFAULT_PROMPTS`], [`DEFAULT_MAX_TOKENS`] new tokens each.
    fn default() -> Self {
        Workload {
            prompts: DEFAULT_PROMPTS.iter().map(|p| p.to_string()).collect(),
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// What one plan measured on the workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanMeasurement {
    /// The plan's `metadata.name`.
    pub plan: String,
    pub quantization: String,
    pub backend: String,
    pub threads: u64,
    pub context_length: Option<u64>,
    /// The model file that ran.
    pub loaded: PathBuf,
    pub prompts: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tokens_per_second: f64,
    pub generation_tokens_per_second: f64,
    /// Mean time to first token over the prompts.
    pub ttft_ms: f64,
    pub inter_token_p50_ms: Option<f64>,
    pub inter_token_p95_ms: Option<f64>,
    /// Wall time of the measured pass.
    pub wall_ms: f64,
    pub joules: f64,
    /// Generated tokens per joule.
    pub tokens_per_joule: f64,
    /// `rapl`, or `estimated: <formula>`.
    pub energy_method: String,
    pub energy: Energy,
    /// [`token_digest`] of every generated token, prompt after prompt.
    pub token_digest: String,
    /// [`token_digest`] per prompt.
    pub prompt_digests: Vec<String>,
}

/// Candidate / current; `None` where the current value is 0 or missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratios {
    pub prefill_tokens_per_second: Option<f64>,
    pub generation_tokens_per_second: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub inter_token_p50_ms: Option<f64>,
    pub inter_token_p95_ms: Option<f64>,
    pub joules: Option<f64>,
    pub tokens_per_joule: Option<f64>,
}

/// Where the two plans' tokens first differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Index into the workload's prompts.
    pub prompt: usize,
    /// Index of the first differing generated token.
    pub token: usize,
}

/// How the candidate was loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateLoad {
    /// `source`, `hit`, `built` or `rebuilt` (requantization cache).
    pub cache: CacheStatus,
    pub loaded_sha256: Option<String>,
    /// Requantizing (or reusing the cached copy) and mapping.
    pub load_ms: f64,
}

/// Both measurements side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub workload: Workload,
    /// How the two ran: `interleaved`, each prompt under the current plan then the candidate.
    pub order: &'static str,
    pub current: PlanMeasurement,
    pub candidate: PlanMeasurement,
    pub ratios: Ratios,
    /// Whether both plans generated exactly the same tokens for every prompt.
    pub same_tokens: bool,
    pub first_difference: Option<Difference>,
    pub candidate_plan: EffectivePlan,
    pub candidate_load: CandidateLoad,
    /// Warnings about the candidate (nothing here refused it).
    pub findings: Vec<PlanFinding>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The candidate is invalid or exceeds a limit (HTTP 422): every finding.
    #[error("the candidate plan {plan} is refused:{}", list(findings))]
    Invalid {
        plan: String,
        findings: Vec<PlanFinding>,
    },
    /// The workload itself is unusable (no prompts, 0 tokens, an empty prompt).
    #[error("invalid evaluation workload: {0}")]
    Workload(String),
    /// The candidate could not be loaded (model file, cache, engine).
    #[error("loading the candidate plan {plan}: {error}")]
    Load { plan: String, error: Box<LoadError> },
    /// Generation failed while measuring.
    #[error("running the workload under plan {plan}: {message}")]
    Run { plan: String, message: String },
    /// The caller cancelled (e.g. the HTTP client went away): the work stopped at the next
    /// token.
    #[error("the evaluation of {plan} was cancelled after {tokens} generated tokens")]
    Cancelled { plan: String, tokens: usize },
}

fn list(findings: &[PlanFinding]) -> String {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| {
            let at = if f.line > 0 {
                format!("{}:{}:{}: ", f.source, f.line, f.column)
            } else if !f.source.is_empty() {
                format!("{}: ", f.source)
            } else {
                String::new()
            };
            format!("\n  - {at}[{}] {} ({})", f.code, f.message, f.pointer)
        })
        .collect()
}

fn finding(code: &str, severity: Severity, pointer: &str, message: String) -> PlanFinding {
    PlanFinding {
        code: code.to_string(),
        severity,
        source: String::new(),
        line: 0,
        column: 0,
        pointer: pointer.to_string(),
        message,
        hint: None,
        expected: None,
        found: None,
    }
}

fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Validates, loads and measures `candidate` beside `current` (see the module documentation).
pub fn evaluate(
    current: &Loaded,
    candidate: PlanSource,
    workload: &Workload,
) -> Result<Evaluation, EvaluateError> {
    evaluate_until(current, candidate, workload, &AtomicBool::new(false))
}

/// [`evaluate`] that stops with [`EvaluateError::Cancelled`] once `cancel` is set: checked
/// before the load, before each prompt and at every generated token.
pub fn evaluate_until(
    current: &Loaded,
    candidate: PlanSource,
    workload: &Workload,
    cancel: &AtomicBool,
) -> Result<Evaluation, EvaluateError> {
    let name = candidate.display_name();
    let cancelled = |tokens: usize| EvaluateError::Cancelled {
        plan: name.clone(),
        tokens,
    };
    let prompts = encode_workload(current, workload)?;

    // 1. Validate and resolve, collecting warnings.
    let mut findings = Vec::new();
    let resolved = {
        let mut progress = |p: LoadProgress| match p {
            LoadProgress::PlanWarnings { findings: f, .. } => findings.extend_from_slice(f),
            LoadProgress::Warning(w) => {
                findings.push(PlanFinding::from_problem(w, String::new(), None))
            }
            _ => {}
        };
        resolve_plan(
            Some(&candidate),
            Some(&current.request.model),
            current.request.flags.clone(),
            &mut progress,
        )
    };
    let resolved = match resolved {
        Ok(r) => r,
        Err(e) if e.is_invalid_plan() => {
            let mut all = e.findings().to_vec();
            all.extend(findings);
            return Err(EvaluateError::Invalid {
                plan: name,
                findings: all,
            });
        }
        Err(error) => {
            return Err(EvaluateError::Load {
                plan: name,
                error: Box::new(error),
            });
        }
    };

    // 2. Limits.
    findings.extend(
        check_limits(current, &resolved.plan, &prompts, workload)
            .iter()
            .map(|p| PlanFinding::from_problem(p, String::new(), None)),
    );
    for f in &mut findings {
        if f.line == 0 && f.pointer.starts_with("/spec") {
            let (source, pos) = locate(&f.pointer, &resolved.layers, &resolved.documents);
            if f.source.is_empty() {
                f.source = source;
            }
            if let Some((line, column)) = pos {
                f.line = line;
                f.column = column;
            }
        }
    }
    findings.extend(flag_overrides(&resolved));
    if findings.iter().any(|f| f.severity == Severity::Error) {
        return Err(EvaluateError::Invalid {
            plan: name,
            findings,
        });
    }
    let Some(model_ref) = resolved.model else {
        return Err(EvaluateError::Load {
            plan: name,
            error: Box::new(LoadError::Model {
                model: current.request.model.clone(),
                message: "no model to run".into(),
            }),
        });
    };

    if cancel.load(Ordering::Acquire) {
        return Err(cancelled(0));
    }

    // 3. Load.
    let request = LoadRequest {
        plan: Some(candidate),
        ..current.request.clone()
    };
    let mut warnings = Vec::new();
    let loaded = load_resolved(
        &request,
        resolved.plan,
        model_ref,
        LoadSettings::default(),
        &mut |p| {
            if let LoadProgress::Warning(w) = p {
                warnings.push(PlanFinding::from_problem(w, String::new(), None));
            }
        },
    )
    .map_err(|error| EvaluateError::Load {
        plan: name.clone(),
        error: Box::new(error),
    })?;
    findings.extend(warnings);

    // 4. Measure, prompt by prompt: current, then candidate.
    let [(cur, cur_tokens), (cand, cand_tokens)] =
        measure_both(current, &loaded, &prompts, workload.max_tokens, cancel)?
            .map_err(cancelled)?;
    let first_difference =
        cur_tokens
            .iter()
            .zip(&cand_tokens)
            .enumerate()
            .find_map(|(prompt, (a, b))| {
                (a != b).then(|| Difference {
                    prompt,
                    token: a.iter().zip(b).take_while(|(x, y)| x == y).count(),
                })
            });
    Ok(Evaluation {
        workload: workload.clone(),
        order: "interleaved",
        ratios: ratios(&cur, &cand),
        same_tokens: first_difference.is_none(),
        first_difference,
        current: cur,
        candidate: cand,
        candidate_load: CandidateLoad {
            cache: loaded.artifact.cache.clone(),
            loaded_sha256: loaded.artifact.loaded_sha256.clone(),
            load_ms: loaded.load_time.as_secs_f64() * 1e3,
        },
        candidate_plan: loaded.plan.clone(),
        findings,
    })
}

/// The workload's prompts as tokens (the tokenizer does not depend on the quantization).
fn encode_workload(current: &Loaded, w: &Workload) -> Result<Vec<Vec<u32>>, EvaluateError> {
    if w.prompts.is_empty() {
        return Err(EvaluateError::Workload("no prompts".into()));
    }
    if w.max_tokens == 0 {
        return Err(EvaluateError::Workload(
            "max_tokens must be at least 1".into(),
        ));
    }
    w.prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            encode_prompt(&current.tokenizer, p, false)
                .map_err(|e| EvaluateError::Workload(format!("prompt {i}: {e}")))
        })
        .collect()
}

/// Limits only the runtime knows; errors refuse the candidate.
fn check_limits(
    current: &Loaded,
    plan: &EffectivePlan,
    prompts: &[Vec<u32>],
    workload: &Workload,
) -> Vec<PlanProblem> {
    let mut out = Vec::new();
    let s = &plan.spec;
    let cores = cores();
    if s.threads > cores {
        out.push(
            PlanProblem::error(
                codes::EXCEEDS_MACHINE,
                "/spec/threads",
                format!(
                    "threads {} exceeds the {cores} cores of this machine: the measurement would only show oversubscription; give at most {cores}",
                    s.threads
                ),
            )
            .with_expected(format!("at most {cores}"))
            .with_found(s.threads),
        );
    }
    if let Some(spec) = &current.spec {
        let file = spec.path.display();
        if let (Some(ctx), Some(max)) = (s.context_length, spec.batch.max_sequence_length_tokens)
            && ctx > max
        {
            out.push(
                PlanProblem::error(
                    codes::EXCEEDS_SPEC,
                    "/spec/contextLength",
                    format!(
                        "contextLength {ctx} exceeds spec.runtime.batch.maxSequenceLengthTokens {max} of {file}; give at most {max}"
                    ),
                )
                .with_expected(format!("at most {max}"))
                .with_found(ctx),
            );
        }
        if let Some(max) = spec.batch.max_batch_size
            && s.scheduler.max_batch > max
        {
            out.push(
                PlanProblem::error(
                    codes::EXCEEDS_SPEC,
                    "/spec/scheduler/maxBatch",
                    format!(
                        "scheduler.maxBatch {} exceeds spec.runtime.batch.maxBatchSize {max} of {file}; give at most {max}",
                        s.scheduler.max_batch
                    ),
                )
                .with_expected(format!("at most {max}"))
                .with_found(s.scheduler.max_batch),
            );
        }
        if let Some(max) = spec.resources.cpu_cores
            && s.threads > max
        {
            out.push(
                PlanProblem::error(
                    codes::EXCEEDS_SPEC,
                    "/spec/threads",
                    format!(
                        "threads {} exceeds spec.runtime.resources.cpuCores {max} of {file}; give at most {max}",
                        s.threads
                    ),
                )
                .with_expected(format!("at most {max}"))
                .with_found(s.threads),
            );
        }
    }
    let now = &current.plan.spec.limits;
    if let Some(limit) = now.max_tokens_per_request
        && s.limits.max_tokens_per_request.is_none_or(|n| n > limit)
    {
        out.push(
            PlanProblem::error(
                codes::EXCEEDS_CURRENT,
                "/spec/limits/maxTokensPerRequest",
                format!(
                    "limits.maxTokensPerRequest {} is above the current plan's {limit}: a candidate may lower limits, not raise them",
                    s.limits
                        .max_tokens_per_request
                        .map_or("(none)".to_string(), |n| n.to_string())
                ),
            )
            .with_expected(format!("at most {limit}"))
            .with_found(s.limits.max_tokens_per_request.map_or("(none)".to_string(), |n| n.to_string())),
        );
    }
    if let Some(limit) = now.max_watts
        && s.limits.max_watts.is_none_or(|w| w > limit)
    {
        out.push(
            PlanProblem::error(
                codes::EXCEEDS_CURRENT,
                "/spec/limits/maxWatts",
                format!(
                    "limits.maxWatts {} is above the current plan's {limit}: a candidate may lower limits, not raise them",
                    s.limits
                        .max_watts
                        .map_or("(none)".to_string(), |n| n.to_string())
                ),
            )
            .with_expected(format!("at most {limit}"))
            .with_found(s.limits.max_watts.map_or("(none)".to_string(), |n| n.to_string())),
        );
    }
    if let Some(ctx) = s.context_length {
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let need = longest as u64 + workload.max_tokens as u64;
        if need > ctx {
            out.push(
                PlanProblem::error(
                    codes::WORKLOAD_EXCEEDS_CONTEXT,
                    "/spec/contextLength",
                    format!(
                        "the evaluation workload needs {need} positions ({longest} prompt tokens + {} new tokens) and contextLength is {ctx}; raise contextLength or evaluate with a smaller workload",
                        workload.max_tokens
                    ),
                )
                .with_expected(format!("at least {need}"))
                .with_found(ctx),
            );
        }
    }
    out
}

/// Fields the candidate sets that a command-line flag of the current deployment overrides.
fn flag_overrides(resolved: &crate::load::ResolvedPlan) -> Vec<PlanFinding> {
    let Some(candidate) = resolved
        .layers
        .iter()
        .rposition(|l| l.origin == Origin::Plan)
    else {
        return Vec::new();
    };
    let set = serde_json::to_value(&resolved.layers[candidate].spec).unwrap_or_default();
    let mut out = Vec::new();
    for (pointer, origin) in &resolved.plan.status.origins {
        if *origin == Origin::Flag && set.pointer(pointer).is_some() {
            let full = format!("/spec{pointer}");
            let mut f = finding(
                codes::OVERRIDDEN_BY_FLAG,
                Severity::Warning,
                &full,
                format!(
                    "{} is set by a command-line flag of the current deployment, which overrides the candidate's value",
                    full.trim_start_matches('/').replace('/', ".")
                ),
            );
            let (source, pos) = locate(
                &full,
                &resolved.layers[candidate..=candidate],
                &resolved.documents[candidate..=candidate],
            );
            f.source = source;
            if let Some((line, column)) = pos {
                f.line = line;
                f.column = column;
            }
            out.push(f);
        }
    }
    out
}

/// A plan's measurement and its generated tokens, prompt by prompt.
type Measured = (PlanMeasurement, Vec<Vec<u32>>);

/// One plan's side of the measurement, accumulated prompt by prompt.
struct Side<'a> {
    loaded: &'a Loaded,
    generator: Generator,
    tokens: Vec<Vec<u32>>,
    prompt_tokens: usize,
    prompt_time: Duration,
    steps: usize,
    generation_time: Duration,
    ttfts_ms: Vec<f64>,
    gaps_ms: Vec<f64>,
    wall: Duration,
    energy: Vec<Energy>,
}

impl<'a> Side<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        Side {
            loaded,
            generator: Generator::new(&loaded.model),
            tokens: Vec::new(),
            prompt_tokens: 0,
            prompt_time: Duration::ZERO,
            steps: 0,
            generation_time: Duration::ZERO,
            ttfts_ms: Vec::new(),
            gaps_ms: Vec::new(),
            wall: Duration::ZERO,
            energy: Vec::new(),
        }
    }

    fn fail(&self, e: ms_engine::generate::GenerateError) -> EvaluateError {
        EvaluateError::Run {
            plan: self.loaded.plan.metadata.name.clone(),
            message: e.to_string(),
        }
    }

    /// Generates without measuring (pages the weights in, starts the thread pool).
    fn warm_up(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        cancel: &AtomicBool,
    ) -> Result<(), EvaluateError> {
        let opts = GenerateOptions {
            max_tokens: 2,
            ..opts.clone()
        };
        self.generator.reset();
        let r = self
            .generator
            .generate(&self.loaded.tokenizer, prompt, &opts, |_| {
                !cancel.load(Ordering::Acquire)
            });
        r.map(|_| ()).map_err(|e| self.fail(e))
    }

    /// One measured prompt from an empty context.
    fn run(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        cancel: &AtomicBool,
    ) -> Result<(), EvaluateError> {
        self.generator.reset();
        let meter = EnergyMeter::start();
        let start = Instant::now();
        let out = self
            .generator
            .generate(&self.loaded.tokenizer, prompt, opts, |_| {
                !cancel.load(Ordering::Acquire)
            });
        let wall = start.elapsed();
        let energy = meter.finish();
        let out = out.map_err(|e| self.fail(e))?;
        self.wall += wall;
        self.energy.push(energy);
        self.prompt_tokens += out.prompt_tokens - out.reused_tokens;
        self.prompt_time += out.prompt_time;
        self.steps += out.tokens.len().saturating_sub(1);
        self.generation_time += out.generation_time;
        self.ttfts_ms.push(out.prompt_time.as_secs_f64() * 1e3);
        self.gaps_ms.extend(
            out.token_times
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]).as_secs_f64() * 1e3),
        );
        self.tokens.push(out.tokens);
        Ok(())
    }

    fn finish(mut self) -> Measured {
        self.gaps_ms.sort_by(f64::total_cmp);
        let all: Vec<u32> = self.tokens.iter().flatten().copied().collect();
        let generated = all.len();
        let energy = total_energy(&self.energy, self.wall);
        let rate = |n: usize, d: Duration| {
            let s = d.as_secs_f64();
            if s > 0.0 { n as f64 / s } else { 0.0 }
        };
        let energy_method = match energy.source {
            EnergySource::Rapl => "rapl".to_string(),
            EnergySource::Estimated => format!(
                "estimated: {}",
                energy.model.as_ref().map_or("", |m| m.formula)
            ),
        };
        let l = self.loaded;
        let s = &l.plan.spec;
        let m = PlanMeasurement {
            plan: l.plan.metadata.name.clone(),
            quantization: s.quantization.to_string(),
            backend: s.backend.to_string(),
            threads: s.threads,
            context_length: s.context_length,
            loaded: l.artifact.loaded.clone(),
            prompts: self.tokens.len(),
            prompt_tokens: self.prompt_tokens,
            generated_tokens: generated,
            prefill_tokens_per_second: rate(self.prompt_tokens, self.prompt_time),
            generation_tokens_per_second: rate(self.steps, self.generation_time),
            ttft_ms: self.ttfts_ms.iter().sum::<f64>() / self.ttfts_ms.len().max(1) as f64,
            inter_token_p50_ms: percentile(&self.gaps_ms, 50.0),
            inter_token_p95_ms: percentile(&self.gaps_ms, 95.0),
            wall_ms: self.wall.as_secs_f64() * 1e3,
            joules: energy.joules,
            tokens_per_joule: if energy.joules > 0.0 {
                generated as f64 / energy.joules
            } else {
                0.0
            },
            energy_method,
            energy,
            token_digest: token_digest(&all),
            prompt_digests: self.tokens.iter().map(|t| token_digest(t)).collect(),
        };
        (m, self.tokens)
    }
}

/// The energy of several measured spans as one: joules and CPU seconds add up, the average
/// power is over the spans' total wall time.
fn total_energy(parts: &[Energy], wall: Duration) -> Energy {
    let joules: f64 = parts.iter().map(|e| e.joules).sum();
    let model = parts.first().and_then(|e| e.model.as_ref()).map(|m| {
        let cpu_seconds = parts
            .iter()
            .filter_map(|e| e.model.as_ref())
            .map(|m| m.cpu_seconds)
            .sum();
        EstimateModel::new(m.tdp_watts, m.logical_cores, cpu_seconds)
    });
    Energy {
        source: parts.first().map_or(EnergySource::Estimated, |e| e.source),
        joules,
        average_watts: if wall > Duration::ZERO {
            joules / wall.as_secs_f64()
        } else {
            0.0
        },
        model,
        domains: parts.first().map(|e| e.domains.clone()).unwrap_or_default(),
    }
}

/// Runs the workload on both sides, prompt by prompt: current, then candidate (so that a
/// change in the machine's load hits both alike). `Ok(Err(tokens))` when `cancel` was set:
/// the tokens generated until then.
fn measure_both(
    current: &Loaded,
    candidate: &Loaded,
    prompts: &[Vec<u32>],
    max_tokens: usize,
    cancel: &AtomicBool,
) -> Result<Result<[Measured; 2], usize>, EvaluateError> {
    let opts = GenerateOptions {
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
    };
    let mut sides = [Side::new(current), Side::new(candidate)];
    let generated = |sides: &[Side<'_>; 2]| {
        sides
            .iter()
            .map(|s| s.tokens.iter().map(Vec::len).sum::<usize>())
            .sum::<usize>()
    };
    if let Some(first) = prompts.first() {
        for side in &mut sides {
            side.warm_up(first, &opts, cancel)?;
        }
    }
    for p in prompts {
        for side in &mut sides {
            if cancel.load(Ordering::Acquire) {
                return Ok(Err(generated(&sides)));
            }
            side.run(p, &opts, cancel)?;
        }
    }
    if cancel.load(Ordering::Acquire) {
        return Ok(Err(generated(&sides)));
    }
    Ok(Ok(sides.map(Side::finish)))
}

fn ratios(cur: &PlanMeasurement, cand: &PlanMeasurement) -> Ratios {
    let r = |a: f64, b: f64| (a > 0.0 && b.is_finite()).then(|| b / a);
    let ro = |a: Option<f64>, b: Option<f64>| r(a?, b?);
    Ratios {
        prefill_tokens_per_second: r(
            cur.prefill_tokens_per_second,
            cand.prefill_tokens_per_second,
        ),
        generation_tokens_per_second: r(
            cur.generation_tokens_per_second,
            cand.generation_tokens_per_second,
        ),
        ttft_ms: r(cur.ttft_ms, cand.ttft_ms),
        inter_token_p50_ms: ro(cur.inter_token_p50_ms, cand.inter_token_p50_ms),
        inter_token_p95_ms: ro(cur.inter_token_p95_ms, cand.inter_token_p95_ms),
        joules: r(cur.joules, cand.joules),
        tokens_per_joule: r(cur.tokens_per_joule, cand.tokens_per_joule),
    }
}
