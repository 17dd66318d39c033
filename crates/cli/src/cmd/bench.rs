//! `modelspec bench MODEL`: prompt processing and generation speed, like llama-bench (the
//! measuring is `ms_engine::bench`). `--json` prints one JSON object, the input of
//! `shared/bench/compare.sh`.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use ms_engine::backend::{BackendKind, cpu_features_text};
use ms_engine::bench::{BenchOptions, bench};
use ms_runtime::load::{LoadError, LoadRequest, load};
use ms_spec::types::plan::{Backend as PlanBackend, PlanSpec, Sampling};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, a ModelSpec file or a catalog name (e.g. gemma3-270m).
    #[arg(default_value = "gemma3-270m")]
    model: String,
    /// Worker threads [default: the number of CPU cores].
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// Allow more threads than cores (up to 4 per core), to measure oversubscription.
    #[arg(long)]
    oversubscribe: bool,
    /// Prompt tokens evaluated at once (BOS included).
    #[arg(long, default_value_t = 128)]
    pp: usize,
    /// Tokens generated one at a time after the prompt.
    #[arg(long, default_value_t = 64)]
    tg: usize,
    /// Measured repetitions, after one warm-up; the medians are reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Where matrix products run: cpu-scalar or cpu-simd [default: the fastest this CPU runs].
    #[arg(long)]
    backend: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (this machine has {cores} cores)");
    }
    for (name, v) in [("--pp", args.pp), ("--tg", args.tg), ("--reps", args.reps)] {
        if v == 0 {
            bail!("{name} must be at least 1");
        }
    }
    let backend = match &args.backend {
        Some(name) => Some(plan_backend(BackendKind::select(name)?)),
        None => None,
    };
    // The same load as `run`: a ModelSpec's default plan applies, the flags over it.
    let request = LoadRequest {
        model: args.model.clone(),
        plan: None,
        flags: PlanSpec {
            threads: args.threads.map(|t| t as u64),
            oversubscribe: args.oversubscribe.then_some(true),
            context_length: Some((args.pp + args.tg) as u64),
            backend,
            // What the benchmark generates (no sampling happens: the tokens are fixed).
            sampling: Some(Sampling {
                max_tokens: Some(args.tg as u64),
                ..Sampling::default()
            }),
            ..PlanSpec::default()
        },
    };
    let loaded = load(&request, &mut super::plan::print_progress).map_err(|e| match e {
        LoadError::CannotRun { .. } => anyhow!(e).context(format!(
            "{}: cannot load the model with a context of pp + tg = {} positions",
            args.model,
            args.pp + args.tg
        )),
        other => anyhow!(other),
    })?;
    let (model, tokenizer) = (&loaded.model, &*loaded.tokenizer);
    let path = &loaded.artifact.artifact;
    let threads = loaded.plan.spec.threads;
    let load_before = load_average();
    let r = bench(
        model,
        tokenizer,
        &BenchOptions {
            pp: args.pp,
            tg: args.tg,
            reps: args.reps,
        },
    )?;
    let info = model.info();
    if args.json {
        let doc = json!({
            "engine": format!("modelspec {}", env!("CARGO_PKG_VERSION")),
            "model": path.display().to_string(),
            "architecture": info.architecture.name(),
            "threads": threads,
            "cores": cores,
            "backend": info.backend.name(),
            "kernels": info.kernels,
            "cpu_features": cpu_features_text(),
            "pp_tokens": r.pp_tokens,
            "tg_tokens": r.tg_tokens,
            "reps": args.reps,
            "pp_tok_s_median": r.pp_tok_s_median(),
            "tg_tok_s_median": r.tg_tok_s_median(),
            "pp_tok_s_all": r.pp_tok_s,
            "tg_tok_s_all": r.tg_tok_s,
            "load_average_1m_before": load_before,
        });
        println!("{doc}");
    } else {
        println!(
            "model {} ({}), backend {} ({}), {threads} threads, {} reps after a warm-up",
            path.display(),
            info.architecture.name(),
            info.backend.name(),
            info.kernels,
            args.reps
        );
        println!("{:>8} {:>12} {:>12}", "test", "tok/s", "all");
        for (name, n, median, all) in [
            ("pp", r.pp_tokens, r.pp_tok_s_median(), &r.pp_tok_s),
            ("tg", r.tg_tokens, r.tg_tok_s_median(), &r.tg_tok_s),
        ] {
            let all: Vec<String> = all.iter().map(|v| format!("{v:.1}")).collect();
            println!(
                "{:>8} {median:>12.2} {:>12}",
                format!("{name}{n}"),
                all.join(" ")
            );
        }
        if let Some(l) = load_before {
            println!("(machine load average before the run: {l:.2})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_backend(b: BackendKind) -> PlanBackend {
    match b {
        BackendKind::CpuScalar => PlanBackend::CpuScalar,
        BackendKind::CpuSimd => PlanBackend::CpuSimd,
    }
}

/// The 1-minute load average, where the system shows it (the machine's other work skews
/// speeds; reports carry it).
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
