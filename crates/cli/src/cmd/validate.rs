//! `modelspec validate PATH...`: schema and semantic checks with compiler-style findings.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use ms_spec::{LintConfig, Severity, config, report};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage or I/O error.\n\
Rule levels come from the nearest .modelspec.yaml (`rules: {MS0203: warning}`), then these flags.\n\
`modelspec explain CODE` documents each rule."
)]
pub struct Args {
    /// Files, directories (searched for *.yaml, *.yml, *.json), glob patterns, or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Make rules errors (comma-separated codes or names; repeatable).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub deny: Vec<String>,
    /// Make rules warnings: reported, but they do not fail the run.
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub warn: Vec<String>,
    /// Switch rules off.
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Lint configuration file [default: nearest .modelspec.yaml in the current directory or above].
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Ignore .modelspec.yaml files.
    #[arg(long)]
    pub no_config: bool,
    /// Make an unresolved specRef of a required dependency an error (MS0502 is a warning
    /// otherwise; `required: false` dependencies stay warnings).
    #[arg(long)]
    pub strict_refs: bool,
    /// Colour in text output (auto: only on a terminal, and never when NO_COLOR is set).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

fn lint_config(args: &Args) -> anyhow::Result<LintConfig> {
    let path = match (&args.config, args.no_config) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => std::env::current_dir()
            .ok()
            .and_then(|d| config::discover(&d)),
    };
    let mut cfg = match path {
        Some(p) => LintConfig::from_file(&p)
            .map_err(|e| anyhow::anyhow!("invalid lint configuration: {e}"))?,
        None => LintConfig::default(),
    };
    for (rules, level) in [
        (&args.deny, Severity::Error),
        (&args.warn, Severity::Warning),
        (&args.allow, Severity::Off),
    ] {
        for r in rules.iter().filter(|r| !r.trim().is_empty()) {
            cfg.set(r, level).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    cfg.strict_refs = args.strict_refs;
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = lint_config(&args)?;
    let run = ms_spec::validate_inputs(&args.paths, cfg);
    let out = match args.format {
        Format::Text => {
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            report::text(&run.results, color)
        }
        Format::Json => report::json(&run.results),
        Format::Sarif => report::sarif(&run.results),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    let summary = report::summarize(&run.results);
    Ok(if run.io_error {
        ExitCode::from(2)
    } else if summary.errors > 0 || (args.deny_warnings && summary.warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
