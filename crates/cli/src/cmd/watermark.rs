//! `modelspec watermark keygen|detect`: make a watermark key; score a text for the watermark
//! of a key (z-score and verdict; exit 0 watermarked, 1 not, 2 error).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use ms_engine::watermark::{DEFAULT_GAMMA, DEFAULT_Z_THRESHOLD, WatermarkKey};
use ms_runtime::watermark::{
    KeyLookup, KeyProblem, detect_text, generate, key_dir, read_key_file, tokenizer_of,
    tokens_needed, write_key_file,
};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: WatermarkCommand,
}

#[derive(Subcommand)]
pub enum WatermarkCommand {
    /// Make a key (256 random bits) in a file readable by its owner only.
    Keygen(KeygenArgs),
    /// Score a text for a key's watermark: z-score and verdict (exit 0 watermarked, 1 not).
    Detect(DetectArgs),
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The key's id, which plans name (`watermark: {keyId: ID}`).
    #[arg(long)]
    pub id: String,
    /// Where to write it. Default: `<key dir>/<ID>.key`, where a plan's lookup finds it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DetectArgs {
    /// The text: `-` reads stdin, an existing file's path reads the file, anything else is the
    /// text itself.
    pub input: String,
    /// The key file. Without it, the key `--key-id` (or the plan's keyId) names is looked up
    /// as a run looks it up (MODELSPEC_WATERMARK_KEY, MODELSPEC_WATERMARK_KEY_FILE, the key
    /// directory).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The key's id, looked up in the environment when `--key` is not given.
    #[arg(long)]
    pub key_id: Option<String>,
    /// The plan the text was generated under: its watermark's keyId and gamma.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The green fraction the text was generated with. Default: the plan's, else 0.25.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// The model whose tokenizer splits the text (GGUF path, ModelSpec, catalog name or
    /// address).
    #[arg(long, short = 'm', default_value = "gemma3-270m")]
    pub model: String,
    /// The z-score from which the text is called watermarked.
    #[arg(long, default_value_t = DEFAULT_Z_THRESHOLD)]
    pub threshold: f64,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        WatermarkCommand::Keygen(a) => keygen(a),
        WatermarkCommand::Detect(a) => detect(a),
    }
}

fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let key = generate(&args.id).map_err(anyhow::Error::msg)?;
    let out = match args.out {
        Some(p) => p,
        None => key_dir(&|k| std::env::var(k).ok())
            .context("no key directory: set MODELSPEC_WATERMARK_KEY_DIR or HOME, or give --out")?
            .join(format!("{}.key", args.id)),
    };
    write_key_file(&out, &key).map_err(anyhow::Error::msg)?;
    println!(
        "wrote watermark key {} ({}) to {}",
        key.id(),
        key.fingerprint(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The plan's watermark (key id, gamma), if the plan has one.
fn plan_watermark(path: &Path) -> Result<Option<(String, Option<f64>)>> {
    let loaded = ms_spec::plan::load(path).map_err(|diags| {
        let text: Vec<String> = diags
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}: {}[{}]: {}",
                    d.file,
                    d.line,
                    d.column,
                    d.severity.as_str(),
                    d.code,
                    d.message
                )
            })
            .collect();
        anyhow::anyhow!("{}", text.join("\n"))
    })?;
    Ok(loaded.plan.spec.watermark.map(|w| (w.key_id, w.gamma)))
}

fn detect(args: DetectArgs) -> Result<ExitCode> {
    let from_plan = match &args.plan {
        Some(p) => Some(plan_watermark(p)?.with_context(|| {
            format!(
                "{} switches no watermark on (no spec.watermark)",
                p.display()
            )
        })?),
        None => None,
    };
    let gamma = args
        .gamma
        .or(from_plan.as_ref().and_then(|(_, g)| *g))
        .unwrap_or(DEFAULT_GAMMA);
    if !(gamma > 0.0 && gamma < 1.0) {
        bail!("--gamma must be between 0 and 1 (both excluded), got {gamma}");
    }
    let key = load_key(&args, from_plan.as_ref().map(|(id, _)| id.as_str()))?;
    let text = read_input(&args.input)?;
    let tok = tokenizer_of(&args.model)?;
    let d = detect_text(&tok, &key, gamma, &text);
    let watermarked = d.is_watermarked(args.threshold);
    let needed = tokens_needed(gamma, args.threshold);
    if args.json {
        let doc = json!({
            "verdict": if watermarked { "watermarked" } else { "not-watermarked" },
            "z": d.z,
            "threshold": args.threshold,
            "tokens": d.tokens,
            "scored": d.scored,
            "green": d.green,
            "gamma": gamma,
            "keyId": key.id(),
            "keyFingerprint": key.fingerprint(),
            "model": args.model,
            "tokensNeeded": needed,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}: z = {:.2} (threshold {})",
            if watermarked {
                "watermarked"
            } else {
                "not watermarked"
            },
            d.z,
            args.threshold
        );
        println!(
            "key {} ({}), gamma {gamma}: {} of {} scored tokens green ({:.1}%, {:.1}% expected without the watermark); {} tokens with {}'s tokenizer",
            key.id(),
            key.fingerprint(),
            d.green,
            d.scored,
            100.0 * d.green_fraction(),
            100.0 * gamma,
            d.tokens,
            args.model
        );
        if d.scored < needed {
            println!(
                "too short to tell: at least {needed} distinct token pairs are needed to reach z {}",
                args.threshold
            );
        }
    }
    Ok(if watermarked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn load_key(args: &DetectArgs, plan_key_id: Option<&str>) -> Result<WatermarkKey> {
    let want = args.key_id.as_deref().or(plan_key_id);
    if let Some(path) = &args.key {
        let key = read_key_file(path).map_err(anyhow::Error::msg)?;
        if let Some(id) = want
            && id != key.id()
        {
            bail!(
                "{} holds key {:?}, not {id:?} (the key the plan or --key-id names)",
                path.display(),
                key.id()
            );
        }
        return Ok(key);
    }
    let Some(id) = want else {
        bail!("give the key: --key FILE, or --key-id ID (or --plan PLAN) to look it up");
    };
    match KeyLookup::Environment.find(id) {
        Ok(found) => Ok(found.key),
        Err(KeyProblem::Missing(m) | KeyProblem::Invalid(m)) => bail!("{m}"),
    }
}

fn read_input(input: &str) -> Result<String> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the text from stdin")?;
        return Ok(text);
    }
    let path = Path::new(input);
    if path.is_file() {
        return std::fs::read_to_string(path)
            .with_context(|| format!("{}: not readable as UTF-8 text", path.display()));
    }
    Ok(input.to_string())
}
