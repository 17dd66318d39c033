//! `modelspec dataset register|show`: a file or a directory, digested as a sorted manifest of
//! per-file sha256 (built here, streaming; the registry recomputes the checksum), registered
//! with its license, PII flags, sources and transformations.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::entity::{Dataset, DatasetRegistration, Transformation};
use ms_registry::{Digest, RegistryError};

use super::connect::{self, RegistryArgs, bad_value, emit};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Register a file or directory as a dataset (every file hashed; the same files and
    /// facts again return the existing dataset).
    Register(RegisterArgs),
    /// A dataset's manifest and facts.
    Show(ShowArgs),
}

#[derive(ClapArgs)]
pub struct RegisterArgs {
    /// A file, or a directory (every regular file below it; symbolic links are refused).
    pub path: PathBuf,
    /// Its SPDX license id or expression (e.g. CC-BY-4.0, `MIT OR Apache-2.0`).
    #[arg(long)]
    pub license: String,
    /// Its name (default: the file or directory name).
    #[arg(long)]
    pub name: Option<String>,
    /// What personal data it holds (e.g. email, names, none).
    #[arg(long = "pii", value_name = "FLAG")]
    pub pii: Vec<String>,
    /// Where it came from: a URI, or sha256:… of a registered dataset.
    #[arg(long = "source", value_name = "URI")]
    pub sources: Vec<String>,
    /// A step that made it: the code's location and the sha256 of that code.
    #[arg(long = "transform", value_name = "CODEREF:SHA256")]
    pub transforms: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct ShowArgs {
    /// The dataset id (sha256:…).
    pub id: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Register(a) => register(a),
        Command::Show(a) => show(a),
    }
}

/// `CODEREF:HEX` or `CODEREF:sha256:HEX` (the code ref itself may hold colons: a URL).
fn parse_transform(t: &str) -> Result<Transformation, RegistryError> {
    let bad = || {
        bad_value(
            "--transform",
            t,
            "CODEREF:SHA256 (64 hex digits, optionally prefixed with sha256:)",
        )
    };
    let (code_ref, hex) = t.rsplit_once(':').ok_or_else(bad)?;
    let code_ref = code_ref.strip_suffix(":sha256").unwrap_or(code_ref);
    if code_ref.is_empty() {
        return Err(bad());
    }
    let checksum = Digest::from_hex(hex).map_err(|_| bad())?;
    Ok(Transformation {
        code_ref: code_ref.to_string(),
        checksum,
        description: None,
    })
}

/// The size of a file, or of every regular file under a directory (links not followed).
fn total_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

fn register(a: RegisterArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        if a.license.trim().is_empty() {
            return Err(bad_value(
                "--license",
                &a.license,
                "an SPDX license id or expression, e.g. CC-BY-4.0",
            )
            .into());
        }
        let transformations = a
            .transforms
            .iter()
            .map(|t| parse_transform(t))
            .collect::<Result<Vec<_>, _>>()?;
        let name = match a.name {
            Some(n) => n,
            None => std::path::absolute(&a.path)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
        };
        std::fs::symlink_metadata(&a.path)
            .map_err(|e| super::connect::local_io(&a.path, "cannot read", e))?;
        // The bytes to hash, for the bar (a quick walk of sizes; the manifest reads them).
        let total = total_size(&a.path);
        let bar = super::transfer::bar(json, total, &format!("hashing {}", a.path.display()));
        let files = ms_registry::dataset::manifest_of_with(&a.path, &mut |n| bar.inc(n));
        bar.finish_and_clear();
        let req = DatasetRegistration {
            name,
            files: files?,
            license: a.license,
            pii_flags: a.pii,
            source_refs: a.sources,
            transformations,
        };
        let registered = registry.register_dataset(req).await?;
        let d = &registered.record;
        emit(json, &registered, || {
            format!(
                "{}  {}  {} file{}, {} bytes  {}",
                d.dataset_id,
                d.name,
                d.file_count,
                if d.file_count == 1 { "" } else { "s" },
                d.total_size,
                if registered.created {
                    "registered"
                } else {
                    "existing (same files and facts)"
                }
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let id = super::artifact::parse_id("ID", &a.id)?;
        let d = registry.dataset(&id).await?;
        emit(json, &d, || describe(&d));
        Ok(ExitCode::SUCCESS)
    })
}

fn describe(d: &Dataset) -> String {
    let mut s = format!(
        "dataset    {}\nname       {}\nchecksum   {}\nlicense    {}\nfiles      {} ({} bytes)\ncreated    {} by {}\n",
        d.dataset_id,
        d.name,
        d.checksum,
        d.license,
        d.file_count,
        d.total_size,
        d.created_at,
        d.created_by
    );
    if !d.pii_flags.is_empty() {
        s.push_str(&format!("pii        {}\n", d.pii_flags.join(", ")));
    }
    for src in &d.source_refs {
        s.push_str(&format!("source     {src}\n"));
    }
    for t in &d.transformations {
        s.push_str(&format!("transform  {} ({})\n", t.code_ref, t.checksum));
    }
    if let Some(files) = &d.files {
        s.push('\n');
        for f in files {
            s.push_str(&format!(
                "{}  {:>12}  {}\n",
                super::connect::short(&f.sha256),
                f.size,
                f.path
            ));
        }
    }
    s
}
