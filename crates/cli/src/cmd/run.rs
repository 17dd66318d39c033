//! `modelspec run MODEL`: generate text, streamed to stdout as it is produced.
//!
//! The prompt comes from `--prompt`, `--file`, or stdin when it is not a terminal. It is a
//! plain completion unless `--chat` is given: then it is one user message rendered with the
//! model's chat template, and without a prompt `--chat` starts a conversation (a REPL on a
//! terminal; one message per line when stdin is piped) that keeps the whole history.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args as ClapArgs;
use ms_engine::chat::{CHAT_FORMAT_NAMES, ChatFormat, ChatMessage, ChatTemplate};
use ms_engine::generate::{GenerateOptions, Generation, Generator, StopReason, encode_prompt};
use ms_engine::sampler::SamplingParams;
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};

#[derive(ClapArgs)]
pub struct Args {
    /// A GGUF file, a ModelSpec file, a catalog name or an address (see `modelspec pull`).
    #[arg(default_value = "gemma3-270m")]
    pub model: String,
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
    /// Most tokens to generate (0: until the end of generation or a full context).
    #[arg(long, short = 'n', default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = SamplingParams::default().temperature)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = SamplingParams::default().top_k)]
    pub top_k: usize,
    /// 1 = off.
    #[arg(long, default_value_t = SamplingParams::default().top_p)]
    pub top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = SamplingParams::default().min_p)]
    pub min_p: f32,
    /// 1 = off.
    #[arg(long, default_value_t = SamplingParams::default().repeat_penalty)]
    pub repeat_penalty: f32,
    /// Tokens the penalties look back over.
    #[arg(long, default_value_t = SamplingParams::default().penalty_last_n)]
    pub repeat_last_n: usize,
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// RNG seed: the same seed gives the same text.
    #[arg(long, default_value_t = SamplingParams::default().seed)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Context length in tokens (default: the model's, at most 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print timings and the stop reason to stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let sampling = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        frequency_penalty: args.frequency_penalty,
        presence_penalty: args.presence_penalty,
        penalty_last_n: args.repeat_last_n,
        seed: args.seed,
    };
    sampling
        .validate()
        .map_err(|e| anyhow!("invalid sampling option: {e}"))?;
    let format = chat_format_choice(&args.chat_format)?;
    // Read the prompt before loading anything: bad input fails fast.
    let prompt = read_prompt(&args)?;

    let path = super::pull::resolve_model(&args.model)?;
    let mut load = LoadOptions::default();
    if let Some(t) = args.threads {
        load.threads = t;
    }
    load.context_length = args.ctx;
    let model = Model::load(&path, &load).with_context(|| format!("loading {}", path.display()))?;
    if args.verbose {
        let info = model.info();
        eprintln!(
            "model: {} ({}, {} layers, context {}, {} threads)",
            path.display(),
            info.architecture.name(),
            info.n_layer,
            info.context_length,
            info.threads
        );
    }
    let tok = Tokenizer::from_gguf(model.gguf())
        .with_context(|| format!("{}: reading the tokenizer", path.display()))?;
    let opts = GenerateOptions {
        sampling,
        max_tokens: args.max_tokens,
        stop: args.stop.clone(),
    };
    let mut generator = Generator::new(&model);

    if !args.chat {
        let Some(text) = prompt else {
            bail!("no prompt: pass --prompt TEXT, --file PATH, pipe text on stdin, or use --chat");
        };
        let ids = encode_prompt(&tok, &text, true)?;
        let out = stream(&mut generator, &tok, &ids, &opts)?;
        report(&args, &out);
        return Ok(ExitCode::SUCCESS);
    }

    let template = chat_template(&model, &tok, format, args.verbose)?;
    let mut opts = opts;
    opts.stop.extend(template.stop_strings());
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system.clone()));
    }
    if let Some(text) = prompt {
        messages.push(ChatMessage::new("user", text));
        let rendered = template.render(&messages, true)?;
        let ids = encode_prompt(&tok, &rendered, true)?;
        let out = stream(&mut generator, &tok, &ids, &opts)?;
        report(&args, &out);
        return Ok(ExitCode::SUCCESS);
    }
    converse(&mut generator, &tok, &template, messages, &opts, &args)
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
    let stop = match &g.stop {
        StopReason::EndOfGeneration(id) => format!("end of generation (token {id})"),
        StopReason::MaxTokens => "max tokens".into(),
        StopReason::StopString(s) => format!("stop string {s:?}"),
        StopReason::ContextFull => "context full".into(),
        StopReason::Cancelled => "cancelled".into(),
    };
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
    tok: &Tokenizer,
    choice: Option<ChatFormat>,
    verbose: bool,
) -> Result<ChatTemplate> {
    let meta = model.gguf().metadata();
    let source = meta.get_str_opt("tokenizer.chat_template").ok().flatten();
    let arch = model.info().architecture.name();
    let auto = ChatTemplate::for_model(source, arch, tok);
    let template = match choice {
        None => {
            if source.is_none() {
                eprintln!(
                    "note: {} has no chat template; using the built-in {} format (--chat-format to choose)",
                    model.path().display(),
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
