//! `modelspec plan validate FILE...` and `modelspec plan show [FILE] [--model M]`: ExecutionPlan
//! documents and the effective plan (every decision written out, with its origin) that
//! `modelspec run --plan` uses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::{Subcommand, ValueEnum};
use ms_runtime::plan::{Context, EffectivePlan, Layer, ModelFacts, Origin, resolve};
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
    let eff = effective_plan(
        args.file.as_deref(),
        args.model.as_deref(),
        PlanSpec::default(),
    )?;
    match args.format {
        Format::Text => print!("{}", eff.plan.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&eff.plan)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// An effective plan and the model file it was resolved against.
pub struct Resolved {
    pub plan: EffectivePlan,
    pub model: Option<PathBuf>,
}

/// Reads a plan file (with its warnings printed to stderr), a ModelSpec's default plan when
/// `model` is a ModelSpec, and resolves them with `flags` on top. Every problem is reported
/// before anything is loaded.
pub fn effective_plan(
    plan_file: Option<&Path>,
    model: Option<&str>,
    flags: PlanSpec,
) -> Result<Resolved> {
    let mut layers = Vec::new();
    let mut name = "default".to_string();
    if let Some(spec_plan) = model.and_then(|m| spec_default_plan(Path::new(m)).transpose()) {
        let path = spec_plan?;
        let plan = load_plan(&path)?;
        name = plan.metadata.name.clone();
        layers.push(Layer::from_plan(Origin::SpecPlan, &path, plan));
    }
    if let Some(path) = plan_file {
        let plan = load_plan(path)?;
        name = plan.metadata.name.clone();
        layers.push(Layer::from_plan(Origin::Plan, path, plan));
    }
    layers.push(Layer::flags(flags));
    let model_path = model.map(super::pull::resolve_model).transpose()?;
    let facts = model_path
        .as_deref()
        .map(ModelFacts::read)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let cache_root = ms_fetch::Cache::from_env()
        .ok()
        .map(|c| c.root().to_path_buf());
    let ctx = Context {
        model: facts,
        cache_root,
    };
    let plan = resolve(&name, &layers, &ctx)?;
    for w in &plan.status.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Resolved {
        plan,
        model: model_path,
    })
}

fn load_plan(path: &Path) -> Result<ms_spec::types::plan::ExecutionPlan> {
    match ms_spec::plan::load(path) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprint!("{}", render(path, &loaded.warnings));
            }
            Ok(loaded.plan)
        }
        Err(diags) => Err(anyhow!(
            "invalid execution plan {}:\n{}",
            path.display(),
            render(path, &diags)
        )),
    }
}

fn render(path: &Path, diags: &[ms_spec::Diagnostic]) -> String {
    let result = ms_spec::FileResult {
        name: path.display().to_string(),
        source: ms_spec::source::load(&path.display().to_string()).ok(),
        diagnostics: diags.to_vec(),
    };
    report::text(std::slice::from_ref(&result), false)
}

/// The default plan a ModelSpec names (`spec.executionPlan.ref`, relative to the spec).
fn spec_default_plan(path: &Path) -> Result<Option<PathBuf>> {
    let is_spec = path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
    if !is_spec {
        return Ok(None);
    }
    let doc = ms_spec::load_model_spec(path).map_err(|diags| {
        anyhow!(
            "invalid ModelSpec {}:\n{}",
            path.display(),
            render(path, &diags)
        )
    })?;
    Ok(doc
        .spec
        .execution_plan
        .map(|r| path.parent().unwrap_or(Path::new(".")).join(r.reference)))
}
