//! `modelspec run MODEL`: generate text, streamed to stdout as it is produced.
//!
//! The prompt comes from `--prompt`, `--file`, or stdin when it is not a terminal. It is a
//! plain completion unless `--chat` is given: then it is one user message rendered with the
//! model's chat template, and without a prompt `--chat` starts a conversation (a REPL on a
//! terminal; one message per line when stdin is piped) that keeps the whole history.
//!
//! `registry://MODEL[@VERSION|POINTER]` runs a registry version (see `registry_model`): a
//! `prod` one only after its signature checks out against `--policy`, and any one only after
//! its GGUF file hashes to the signed (or registered) digest.
//!
//! `--quantization Q8_0|Q6_K|Q4_K_M` runs the model requantized at load, through the cache of
//! ms-runtime (built once per artifact, quantization and quantizer version; the artifact is
//! never changed). `--metrics-json FILE` writes the run report of a single generation: the
//! effective settings, the machine, the model's digests, the metrics with energy, and the
//! digest of the generated tokens.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args as ClapArgs;
use ms_engine::Model;
use ms_engine::chat::{CHAT_FORMAT_NAMES, ChatFormat, ChatMessage, ChatTemplate};
use ms_engine::generate::{GenerateOptions, Generation, Generator, StopReason, encode_prompt};
use ms_engine::tokenizer::Tokenizer;
use ms_runtime::load::{
    LoadProgress, LoadRequest, LoadSettings, Loaded, PlanSource, PreparedArtifact, load_with,
};
use ms_runtime::report::{ModelRecord, TokenRecord};
use ms_runtime::requantize::Progress;
use ms_runtime::{EffectivePlan, EnergyMeter, Metrics, Quantization, RunReport};
use ms_spec::types::plan::{
    Backend as PlanBackend, PlanSpec, Quantization as PlanQuantization, Sampling,
};

#[derive(ClapArgs)]
pub struct Args {
    /// A GGUF file, a ModelSpec file, a catalog name, an address (see `modelspec pull`) or a
    /// registry version: registry://MODEL, registry://MODEL@VERSION or registry://MODEL@POINTER
    /// (a prod version is verified against --policy before it is loaded).
    #[arg(default_value = "gemma3-270m")]
    pub model: String,
    /// Where a registry:// model comes from and the policy that verifies it.
    #[command(flatten)]
    pub from_registry: super::registry_model::RegistryModelArgs,
    /// The prompt text.
    #[arg(long, short = 'p', conflicts_with = "file")]
    pub prompt: Option<String>,
    /// Read the prompt from this file (UTF-8).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Chat: render the prompt as a user message with the chat template; without a prompt,
    /// a conversation on stdin.
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Chat format: auto (the model's template, else a built-in one by architecture),
    /// template, gemma, chatml, llama3, llama2 or plain.
    #[arg(long, default_value = "auto")]
    pub chat_format: String,
    /// An ExecutionPlan file; the flags below override its fields (and those of a ModelSpec's
    /// default plan). Defaults are those `modelspec plan show` prints.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Print the effective plan (every decision, with its origin) to stderr before running.
    #[arg(long)]
    pub explain: bool,
    /// Where matrix products run: cpu-scalar (reference kernels) or cpu-simd (default: the
    /// fastest this CPU runs).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<PlanBackend>,
    /// Sampling settings (over the plan's).
    #[command(flatten)]
    pub sampling: Box<SamplingFlags>,
    /// RNG seed: the same seed gives the same text.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<u64>,
    /// Allow more threads than cores (up to 4 per core); the plan's `oversubscribe: true`.
    #[arg(long)]
    pub oversubscribe: bool,
    /// Context length in tokens (default: the model's, at most 4096).
    #[arg(long)]
    pub ctx: Option<u64>,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print timings and the stop reason to stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Run the model as stored (source) or requantized at load: Q8_0, Q6_K or Q4_K_M (cached
    /// in the modelspec cache, built on first use).
    #[arg(long = "quantization", value_parser = parse_quantization)]
    pub quantization_flag: Option<PlanQuantization>,
    /// Write the run report (settings, machine, model digests, metrics with energy, token
    /// digest) as JSON to this file. Needs a single generation (a prompt).
    #[arg(long, value_name = "FILE")]
    pub metrics_json: Option<PathBuf>,
}

/// The sampling flags, boxed: they are most of `Args`.
#[derive(ClapArgs)]
pub struct SamplingFlags {
    /// Most tokens to generate (0: until the end of generation or a full context) [default: 256].
    #[arg(long, short = 'n')]
    pub max_tokens: Option<u64>,
    /// 0 = greedy [default: 0.8].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// 0 = off [default: 40].
    #[arg(long)]
    pub top_k: Option<u64>,
    /// 1 = off [default: 0.95].
    #[arg(long)]
    pub top_p: Option<f64>,
    /// 0 = off [default: 0.05].
    #[arg(long)]
    pub min_p: Option<f64>,
    /// 1 = off [default: 1].
    #[arg(long)]
    pub repeat_penalty: Option<f64>,
    /// Tokens the penalties look back over [default: 64].
    #[arg(long)]
    pub repeat_last_n: Option<u64>,
    /// [default: 0]
    #[arg(long)]
    pub frequency_penalty: Option<f64>,
    /// [default: 0]
    #[arg(long)]
    pub presence_penalty: Option<f64>,
}

fn parse_quantization(s: &str) -> Result<PlanQuantization, String> {
    let q = Quantization::from_name(s).ok_or_else(|| {
        format!(
            "unknown quantization '{s}'; expected one of {}",
            Quantization::names()
        )
    })?;
    Ok(match q {
        Quantization::Source => PlanQuantization::Source,
        Quantization::Q8_0 => PlanQuantization::Q8_0,
        Quantization::Q6K => PlanQuantization::Q6K,
        Quantization::Q4KM => PlanQuantization::Q4KM,
    })
}

fn parse_backend(s: &str) -> Result<PlanBackend, String> {
    [
        PlanBackend::CpuScalar,
        PlanBackend::CpuSimd,
        PlanBackend::Cuda,
    ]
    .into_iter()
    .find(|b| b.name() == s)
    .ok_or_else(|| format!("unknown backend '{s}'; expected cpu-scalar, cpu-simd or cuda"))
}

/// The plan fields the command line sets.
fn flag_plan(args: &Args) -> PlanSpec {
    let sampling = Sampling {
        temperature: args.sampling.temperature,
        top_k: args.sampling.top_k,
        top_p: args.sampling.top_p,
        min_p: args.sampling.min_p,
        repeat_penalty: args.sampling.repeat_penalty,
        repeat_last_n: args.sampling.repeat_last_n,
        frequency_penalty: args.sampling.frequency_penalty,
        presence_penalty: args.sampling.presence_penalty,
        max_tokens: args.sampling.max_tokens,
        stop: (!args.stop.is_empty()).then(|| args.stop.clone()),
    };
    PlanSpec {
        backend: args.backend,
        quantization: args.quantization_flag,
        threads: args.threads,
        oversubscribe: args.oversubscribe.then_some(true),
        context_length: args.ctx,
        sampling: (sampling != Sampling::default()).then_some(sampling),
        seed: args.seed,
        ..PlanSpec::default()
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = chat_format_choice(&args.chat_format)?;
    // Read the prompt before loading anything: bad input fails fast.
    let prompt = read_prompt(&args)?;
    if let Some(report) = &args.metrics_json {
        check_report_path(report)?;
        if prompt.is_none() {
            bail!(
                "--metrics-json reports one generation: give a prompt (--prompt, --file or stdin)"
            );
        }
    }

    // A registry version is resolved, verified, fetched and hashed before anything is loaded.
    let (model, from_registry) =
        match super::registry_model::model_to_load(&args.model, &args.from_registry)? {
            Ok(m) => m,
            Err(code) => return Ok(code),
        };

    // Every decision is made and checked before anything is loaded.
    let request = LoadRequest {
        model,
        plan: args.plan.clone().map(PlanSource::File),
        flags: flag_plan(&args),
    };
    let settings = LoadSettings {
        digests: args.metrics_json.is_some(),
    };
    let (explain, verbose) = (args.explain, args.verbose);
    let loaded = load_with(&request, settings, &mut |p| match p {
        LoadProgress::Planned(plan) if explain => eprint!("{}", plan.to_text()),
        LoadProgress::Quantize {
            quantization,
            progress: Progress::Start { input, .. },
        } if verbose => eprintln!(
            "quantizing {} to {quantization} (cached for the next runs)",
            input.display()
        ),
        LoadProgress::Prepared(a) if verbose && a.quantization != Quantization::Source => {
            eprintln!(
                "quantization {}: {}: {}",
                a.quantization,
                a.cache,
                a.loaded.display()
            )
        }
        other => super::plan::print_progress(other),
    })?;
    // The file mapped is the file hashed: not replaced or written in between.
    if let Some(Err(e)) = from_registry.as_ref().map(|m| m.check_unchanged()) {
        return Ok(super::connect::report(&e, false));
    }
    let Loaded {
        plan,
        model,
        tokenizer,
        artifact: prepared,
        load_time,
        ..
    } = loaded;
    let tok = &*tokenizer;
    if args.verbose {
        let info = model.info();
        eprintln!(
            "model: {} ({}, {} layers, context {}, {} threads, {} backend with {} kernels)",
            prepared.artifact.display(),
            info.architecture.name(),
            info.n_layer,
            info.context_length,
            info.threads,
            info.backend,
            info.kernels
        );
    }
    let opts = plan.generate_options();
    let mut generator = Generator::new(&model);

    if !args.chat {
        let Some(text) = prompt else {
            bail!("no prompt: pass --prompt TEXT, --file PATH, pipe text on stdin, or use --chat");
        };
        let ids = encode_prompt(tok, &text, true)?;
        let meter = EnergyMeter::start();
        let out = stream(&mut generator, tok, &ids, &opts)?;
        let energy = meter.finish();
        report(&args, &out);
        report_energy(&args, &out, &energy);
        if let Some(file) = &args.metrics_json {
            let metrics = Metrics::new(&out, load_time, energy);
            write_run_report(file, &plan, &model, &prepared, &ids, &out, metrics)?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let template = chat_template(&model, &args.model, tok, format, args.verbose)?;
    let mut opts = opts;
    opts.stop.extend(template.stop_strings());
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system.clone()));
    }
    if let Some(text) = prompt {
        messages.push(ChatMessage::new("user", text));
        let rendered = template.render(&messages, true)?;
        let ids = encode_prompt(tok, &rendered, true)?;
        let meter = EnergyMeter::start();
        let out = stream(&mut generator, tok, &ids, &opts)?;
        let energy = meter.finish();
        report(&args, &out);
        report_energy(&args, &out, &energy);
        if let Some(file) = &args.metrics_json {
            let metrics = Metrics::new(&out, load_time, energy);
            write_run_report(file, &plan, &model, &prepared, &ids, &out, metrics)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    converse(&mut generator, tok, &template, messages, &opts, &args)
}

/// `--chat` without a prompt: one user message per line of stdin, answers streamed, the whole
/// conversation kept (and its evaluated prefix reused).
fn converse(
    generator: &mut Generator,
    tok: &Tokenizer,
    template: &ChatTemplate,
    mut messages: Vec<ChatMessage>,
    opts: &GenerateOptions,
    args: &Args,
) -> Result<ExitCode> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprintln!(
            "chat with {} — /reset forgets the conversation, /exit or Ctrl-D ends",
            args.model
        );
    }
    let base = messages.len();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin (chat messages must be UTF-8 text)")?;
        let text = line.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.truncate(base);
                generator.reset();
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", text));
        let turn = template
            .render(&messages, true)
            .map_err(anyhow::Error::from)
            .and_then(|rendered| Ok(encode_prompt(tok, &rendered, true)?))
            .and_then(|ids| {
                if ids.len() >= generator.context_length() {
                    bail!(
                        "the conversation has {} tokens, the context holds {}: /reset or raise --ctx",
                        ids.len(),
                        generator.context_length()
                    );
                }
                stream(generator, tok, &ids, opts)
            });
        let out = match turn {
            Ok(out) => out,
            Err(e) if interactive => {
                // One failed turn does not end the conversation.
                eprintln!("error: {e:#}");
                messages.pop();
                continue;
            }
            Err(e) => return Err(e),
        };
        report(args, &out);
        messages.push(ChatMessage::new("assistant", out.text.clone()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates, writing text to stdout as it comes (flushed per piece), then a newline.
fn stream(
    generator: &mut Generator,
    tok: &Tokenizer,
    ids: &[u32],
    opts: &GenerateOptions,
) -> Result<Generation> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write_error = None;
    let generation = generator.generate(tok, ids, opts, |piece| {
        let r = out.write_all(piece.as_bytes()).and_then(|_| out.flush());
        match r {
            Ok(()) => true,
            Err(e) => {
                // A closed pipe (`| head`) ends generation quietly.
                write_error = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(generation);
        }
        return Err(e).context("writing to stdout");
    }
    let _ = writeln!(out);
    let _ = out.flush();
    Ok(generation)
}

fn report_energy(args: &Args, g: &Generation, e: &ms_runtime::Energy) {
    if !args.verbose {
        return;
    }
    let source = match e.source {
        ms_runtime::EnergySource::Rapl => "RAPL",
        ms_runtime::EnergySource::Estimated => "estimated from CPU time",
    };
    let per_joule = if e.joules > 0.0 {
        g.tokens.len() as f64 / e.joules
    } else {
        0.0
    };
    eprintln!(
        "energy: {:.2} J ({source}), {:.1} W average, {per_joule:.2} generated tokens per joule",
        e.joules, e.average_watts
    );
}

/// Fails before any work when the report could not be written.
fn check_report_path(file: &Path) -> Result<()> {
    if file.is_dir() {
        bail!(
            "--metrics-json {}: is a directory; give a file name such as {}",
            file.display(),
            file.join("run.json").display()
        );
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "--metrics-json {}: the directory {} does not exist",
            file.display(),
            dir.display()
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_run_report(
    file: &Path,
    plan: &EffectivePlan,
    model: &Model,
    prepared: &PreparedArtifact,
    prompt: &[u32],
    out: &Generation,
    metrics: Metrics,
) -> Result<()> {
    let record = ModelRecord {
        artifact: prepared.artifact.clone(),
        artifact_sha256: prepared.artifact_sha256.clone().unwrap_or_default(),
        quantization: plan.spec.quantization.to_string(),
        loaded: prepared.loaded.clone(),
        loaded_sha256: prepared.loaded_sha256.clone().unwrap_or_default(),
        cache: prepared.cache.clone(),
        architecture: model.info().architecture.name().to_string(),
    };
    let tokens = TokenRecord::new(prompt, &out.tokens, stop_reason(&out.stop));
    let plan = serde_json::to_value(plan).context("recording the effective plan")?;
    let report = RunReport::new(plan, record, tokens, metrics);
    report
        .write(file)
        .with_context(|| format!("writing the run report {}", file.display()))
}

fn stop_reason(stop: &StopReason) -> String {
    match stop {
        StopReason::EndOfGeneration(id) => format!("end of generation (token {id})"),
        StopReason::MaxTokens => "max tokens".into(),
        StopReason::StopString(s) => format!("stop string {s:?}"),
        StopReason::ContextFull => "context full".into(),
        StopReason::Cancelled => "cancelled".into(),
    }
}

fn report(args: &Args, g: &Generation) {
    if !args.verbose {
        return;
    }
    let rate = |n: usize, d: std::time::Duration| {
        if d.as_secs_f64() > 0.0 {
            n as f64 / d.as_secs_f64()
        } else {
            0.0
        }
    };
    let evaluated = g.prompt_tokens - g.reused_tokens;
    let steps = g.tokens.len().saturating_sub(1);
    let stop = stop_reason(&g.stop);
    eprintln!(
        "prompt: {} tokens ({} reused) in {:.0} ms ({:.1} tok/s); generated: {} tokens, {:.1} tok/s; stop: {stop}",
        g.prompt_tokens,
        g.reused_tokens,
        g.prompt_time.as_secs_f64() * 1e3,
        rate(evaluated, g.prompt_time),
        g.tokens.len(),
        rate(steps, g.generation_time),
    );
}

/// `None` = auto.
fn chat_format_choice(name: &str) -> Result<Option<ChatFormat>> {
    match name {
        "auto" => Ok(None),
        "template" => Ok(Some(ChatFormat::Template(String::new()))),
        other => ChatFormat::from_name(other).map(Some).ok_or_else(|| {
            anyhow!(
                "unknown chat format {other:?}; choose auto, template, {}",
                CHAT_FORMAT_NAMES.join(", ")
            )
        }),
    }
}

fn chat_template(
    model: &Model,
    name: &str,
    tok: &Tokenizer,
    choice: Option<ChatFormat>,
    verbose: bool,
) -> Result<ChatTemplate> {
    let meta = model.gguf().metadata();
    let source = meta.get_str_opt("tokenizer.chat_template").ok().flatten();
    let arch = model.info().architecture.name();
    let auto = ChatTemplate::for_model(source, arch, tok);
    if source.is_none() && !matches!(choice, Some(ChatFormat::Template(_))) {
        // A base model continues a chat prompt as text (llama.cpp echoes it just the same):
        // say so once, rather than let its answers look like our bug.
        eprintln!(
            "warning: {} has no chat template, so it is probably a base model: it continues text rather than answering; for chat, use an instruction-tuned model such as `modelspec run {} --chat`",
            name,
            ms_fetch::catalog::CHAT_MODEL
        );
    }
    let template = match choice {
        None => {
            if source.is_none() {
                eprintln!(
                    "note: {} has no chat template; using the built-in {} format (--chat-format to choose)",
                    name,
                    auto.format.name()
                );
            }
            auto
        }
        Some(ChatFormat::Template(_)) => {
            let Some(src) = source else {
                bail!(
                    "{} has no chat template (tokenizer.chat_template); choose a built-in format: {}",
                    model.path().display(),
                    CHAT_FORMAT_NAMES.join(", ")
                );
            };
            ChatTemplate {
                format: ChatFormat::Template(src.to_string()),
                ..auto
            }
        }
        Some(format) => ChatTemplate { format, ..auto },
    };
    if verbose {
        eprintln!("chat format: {}", template.format.name());
    }
    Ok(template)
}

/// The prompt from --prompt, --file or piped stdin; None when there is none (a terminal).
fn read_prompt(args: &Args) -> Result<Option<String>> {
    let text = if let Some(p) = &args.prompt {
        p.clone()
    } else if let Some(path) = &args.file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the prompt file {}", path.display()))?;
        utf8(bytes, &path.display().to_string())?
    } else if args.chat || std::io::stdin().is_terminal() {
        // --chat reads its messages from stdin line by line.
        return Ok(None);
    } else {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the prompt from stdin")?;
        utf8(bytes, "stdin")?
    };
    if text.trim().is_empty() {
        bail!("the prompt is empty; give some text to continue");
    }
    Ok(Some(text))
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        anyhow!("the prompt in {what} is not valid UTF-8 (invalid byte at offset {at}); save it as UTF-8")
    })
}
