//! `modelspec plan validate FILE...` and `modelspec plan show [FILE] [--model M]`: ExecutionPlan
//! documents and the effective plan (every decision written out, with its origin) that
//! `modelspec run --plan` uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use ms_runtime::load::{LoadProgress, PlanSource, resolve_plan};
use ms_spec::types::plan::PlanSpec;
use ms_spec::{LintConfig, report};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PlanCommand,
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Check ExecutionPlan files: schema, plan rules (MS08xx), file:line:col findings.
    Validate(ValidateArgs),
    /// Print the effective plan: the file's decisions, the model's limits and the engine's
    /// defaults and detections, each with its origin.
    Show(ShowArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The plan file (without it: the ModelSpec's default plan, else the defaults).
    pub file: Option<PathBuf>,
    /// Resolve against this model (GGUF file, ModelSpec, catalog name or address): its context
    /// length, its tensor types, a ModelSpec's default plan.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        PlanCommand::Validate(a) => validate(a),
        PlanCommand::Show(a) => show(a),
    }
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let run = ms_spec::validate_inputs(&args.files, LintConfig::default());
    let mut results = run.results;
    // A valid ModelSpec is not a plan: say so with the same kind of finding.
    for r in &mut results {
        let clean = r
            .diagnostics
            .iter()
            .all(|d| d.severity != ms_spec::Severity::Error);
        if clean
            && r.source.is_some()
            && let Err(diags) = ms_spec::plan::load(Path::new(&r.name))
        {
            r.diagnostics
                .extend(diags.into_iter().filter(|d| d.code == "MS0101"));
        }
    }
    let out = match args.format {
        Format::Text => report::text(&results, false),
        Format::Json => report::json(&results),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    let summary = report::summarize(&results);
    Ok(if run.io_error {
        ExitCode::from(2)
    } else if summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn show(args: ShowArgs) -> Result<ExitCode> {
    let plan = args.file.map(PlanSource::File);
    let resolved = resolve_plan(
        plan.as_ref(),
        args.model.as_deref(),
        PlanSpec::default(),
        &mut print_progress,
    )?;
    match args.format {
        Format::Text => print!("{}", resolved.plan.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&resolved.plan)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a load reports that people should see: plan findings and warnings (stderr).
pub fn print_progress(p: LoadProgress) {
    match p {
        LoadProgress::PlanWarnings { text, .. } => eprint!("{text}"),
        LoadProgress::Warning(w) => eprintln!("warning: {w}"),
        _ => {}
    }
}
