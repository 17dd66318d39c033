//! `modelspec dump MODEL --prompts PROMPTS.json --out OURS.json`: our engine's tokenizations,
//! greedy continuations and per-position top-k logits, in the layout of llama.cpp's oracle
//! files, for `check_oracle.py ORACLE.json OURS.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use ms_engine::dump::{Prompts, dump};
use ms_engine::tokenizer::Tokenizer;
use ms_engine::{LoadOptions, Model};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, a ModelSpec file, a catalog name (e.g. gemma3-270m) or an address.
    model: String,
    /// Prompts file: {"gen_tokens", "top_k", "tokenize": [...], "generate": [...], "logits": [...]}.
    #[arg(long)]
    prompts: PathBuf,
    /// Where to write the JSON document (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (results are identical for any number).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Context length (the oracle files were made with 512).
    #[arg(long, default_value_t = 512)]
    ctx_size: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(args: Args) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.prompts)
        .with_context(|| format!("{}: cannot read the prompts file", args.prompts.display()))?;
    let prompts: Prompts = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a prompts file (expected {{\"gen_tokens\": N, \"top_k\": K, \"tokenize\": [..], \
             \"generate\": [..], \"logits\": [..]}})",
            args.prompts.display()
        )
    })?;
    let path = ms_runtime::load::resolve_model(&args.model)?.path;
    let options = LoadOptions {
        threads: args.threads,
        context_length: Some(args.ctx_size),
        ..LoadOptions::default()
    };
    let model = Model::load(&path, &options)?;
    let tokenizer = Tokenizer::from_gguf(model.gguf())
        .with_context(|| format!("{}: cannot build the tokenizer", path.display()))?;
    let doc = dump(&model, &tokenizer, &prompts)?;
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    write_atomically(&args.out, &bytes)?;
    eprintln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(out: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = out.file_name().context("--out must name a file")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot write", out.display())
    })
}
