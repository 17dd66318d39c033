//! `modelspec artifact push|pull|show`: put a file into the content-addressed store (hashed
//! first, skipped when present, resumable), get one back (verified, atomic), show what is known
//! about one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::Digest;
use ms_registry::entity::{Artifact, ArtifactUpload};

use super::connect::{self, RegistryArgs, bad_value, check_file_name, emit};
use super::transfer;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Store a file (hashed first; nothing is sent if the store has it; an interrupted push of
    /// a large file continues where it stopped when run again).
    Push(PushArgs),
    /// Write an artifact to a file, verified against its id (temp file + rename).
    Pull(PullArgs),
    /// An artifact's size, media type, name, who stored it and when.
    Show(ShowArgs),
}

#[derive(ClapArgs)]
pub struct PushArgs {
    /// The file to store.
    pub file: PathBuf,
    /// Its name in the registry (default: the file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Its media type (default: from the name, e.g. application/x-gguf).
    #[arg(long)]
    pub media_type: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct PullArgs {
    /// The artifact id (sha256:…).
    pub id: String,
    /// Where to write it (default: its name, in the current directory).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct ShowArgs {
    /// The artifact id (sha256:…).
    pub id: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Push(a) => push(a),
        Command::Pull(a) => pull(a),
        Command::Show(a) => show(a),
    }
}

/// Parses an artifact or dataset id argument.
pub fn parse_id(option: &str, id: &str) -> Result<Digest, ms_registry::RegistryError> {
    id.parse()
        .map_err(|_| bad_value(option, id, "`sha256:` followed by 64 lowercase hex digits"))
}

fn push(a: PushArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, location| async move {
        let name = match a.name {
            Some(n) => n,
            None => a
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        check_file_name("--name", &name)?;
        let (digest, size) = transfer::hash_file(&a.file, json)?;
        let req = ArtifactUpload {
            name,
            media_type: a.media_type,
            ..Default::default()
        };
        let pushed =
            transfer::push(&*registry, &location, &a.file, digest, size, req, json).await?;
        let how = if pushed.skipped || !pushed.artifact.created {
            "already stored"
        } else if pushed.resumed_at.is_some() {
            "stored (resumed)"
        } else {
            "stored"
        };
        emit(json, &pushed.artifact, || {
            format!(
                "{}  {}  {} bytes  {how}",
                pushed.artifact.record.artifact_id,
                pushed.artifact.record.name,
                pushed.artifact.record.size
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn pull(a: PullArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let id = parse_id("ID", &a.id)?;
        let out = match a.output {
            Some(o) => o,
            None => {
                let artifact = registry.artifact(&id).await?;
                // A stored name is checked at upload; checked again here, since it becomes a
                // path: anything but one plain component falls back to the digest.
                match check_file_name("name", &artifact.name) {
                    Ok(()) => PathBuf::from(&artifact.name),
                    Err(_) => PathBuf::from(id.hex()),
                }
            }
        };
        let artifact = transfer::pull(&*registry, &id, &out, json).await?;
        emit(
            json,
            &serde_json::json!({ "artifact": artifact, "path": out }),
            || {
                format!(
                    "{}  {} bytes  -> {}",
                    artifact.artifact_id,
                    artifact.size,
                    out.display()
                )
            },
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let id = parse_id("ID", &a.id)?;
        let artifact = registry.artifact(&id).await?;
        emit(json, &artifact, || describe(&artifact));
        Ok(ExitCode::SUCCESS)
    })
}

fn describe(a: &Artifact) -> String {
    let mut s = format!(
        "artifact    {}\nname        {}\nsize        {} bytes\nmedia type  {}\ncreated     {} by {}\n",
        a.artifact_id, a.name, a.size, a.media_type, a.created_at, a.created_by
    );
    if let Some(p) = &a.provenance {
        s.push_str(&format!("provenance  {p}\n"));
    }
    for r in &a.provenance_records {
        let signed = r
            .key_id
            .as_deref()
            .map(|k| format!(", signed by {k}"))
            .unwrap_or_else(|| ", unsigned".into());
        s.push_str(&format!(
            "used by     {} (statement {}{signed})\n",
            r.subject, r.statement_digest
        ));
    }
    s
}
