//! `modelspec upgrade FILE`: piqc.ai/v1alpha1 -> modelspec/v1, keeping comments.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ms_spec::{Checker, FileResult, LintConfig, Severity, Source, config, report, upgrade};

#[derive(clap::Args)]
#[command(
    after_help = "Only spec.identity.model.artifacts changes shape ({modelUri, tokenizerUri} becomes a list of \
{role, uri}) and apiVersion changes; everything else, comments included, is kept. The result is verified to \
round-trip back to the original before it is written.\n\
The input is checked first, as `modelspec validate FILE` checks it (same findings on stderr, same exit \
code: 1 when it has errors, 2 when it cannot be read); only a valid document is upgraded."
)]
pub struct Args {
    /// The v1alpha1 file (YAML or JSON), or `-` for stdin.
    pub file: String,
    /// Write the result here instead of standard output.
    #[arg(short, long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Replace FILE with the upgraded document (atomically).
    #[arg(short = 'i', long)]
    pub in_place: bool,
}

fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.upgrade-{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

/// The lint configuration `validate FILE` would use here (the nearest `.modelspec.yaml`), so
/// that both commands report the same findings for the same input.
fn lint_config() -> anyhow::Result<LintConfig> {
    match std::env::current_dir()
        .ok()
        .and_then(|d| config::discover(&d))
    {
        Some(p) => LintConfig::from_file(&p)
            .map_err(|e| anyhow::anyhow!("invalid lint configuration: {e}")),
        None => Ok(LintConfig::default()),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.in_place && args.file == "-" {
        anyhow::bail!("--in-place needs a file, not stdin");
    }
    if Path::new(&args.file).is_dir() {
        anyhow::bail!("{} is a directory; upgrade takes one file", args.file);
    }
    let cfg = lint_config()?;
    // The input is checked exactly as `modelspec validate FILE` checks it: same findings, same
    // exit code when it is refused.
    let run = ms_spec::validate_inputs(std::slice::from_ref(&args.file), cfg.clone());
    let summary = report::summarize(&run.results);
    if summary.errors + summary.warnings > 0 {
        eprint!("{}", report::text(&run.results, false));
    }
    if run.io_error {
        return Ok(ExitCode::from(2));
    }
    let [
        FileResult {
            source: Some(src),
            diagnostics: before,
            ..
        },
    ] = run.results.as_slice()
    else {
        if summary.errors > 0 {
            eprintln!("error: {} was not upgraded", args.file);
            return Ok(ExitCode::from(1));
        }
        anyhow::bail!("{} names more than one file; upgrade takes one", args.file);
    };
    if summary.errors > 0 {
        eprintln!(
            "error: {} was not upgraded: fix the errors above first",
            args.file
        );
        return Ok(ExitCode::from(1));
    }
    let up = match upgrade::upgrade_source(src) {
        Ok(u) => u,
        Err(diags) => {
            for d in &diags {
                eprintln!(
                    "{}:{}:{}: {} [{}]",
                    d.file, d.line, d.column, d.message, d.code
                );
            }
            eprintln!("error: {} was not upgraded", args.file);
            return Ok(ExitCode::from(1));
        }
    };
    if up.upgraded == 0 {
        eprintln!(
            "note: {} has no piqc.ai/v1alpha1 document; nothing to upgrade",
            args.file
        );
    }
    // The upgraded document is checked where the input lives, so specRefs resolve alike. It may
    // report more sharply what its input already had (v1 can hold digests, so MS0303 becomes an
    // error): worth a note. A reason its input did not have would be a defect of the upgrade.
    let upgraded_src = Source {
        text: up.text.clone(),
        ..src.clone()
    };
    let after = Checker::new(cfg).check(&upgraded_src);
    let known: HashSet<(&str, Severity)> = before.iter().map(|d| (d.code, d.severity)).collect();
    let codes: HashSet<&str> = before.iter().map(|d| d.code).collect();
    for d in after
        .iter()
        .filter(|d| !known.contains(&(d.code, d.severity)))
    {
        let was = before
            .iter()
            .find(|b| b.code == d.code)
            .map_or("new".to_owned(), |b| {
                format!("a {} in the input", b.severity.as_str())
            });
        eprintln!(
            "note: upgraded document, {}:{}: {}[{}] ({was}): {}",
            d.line,
            d.column,
            d.severity.as_str(),
            d.code,
            d.message
        );
    }
    if after
        .iter()
        .any(|d| d.severity == Severity::Error && !codes.contains(d.code))
    {
        eprintln!(
            "error: internal error: the upgraded document has a finding its input does not have; {} was not upgraded; please report this file",
            args.file
        );
        return Ok(ExitCode::from(1));
    }
    match (&args.output, args.in_place) {
        (Some(p), _) => write_atomic(p, &up.text)?,
        (None, true) => write_atomic(Path::new(&args.file), &up.text)?,
        (None, false) => {
            let _ = std::io::stdout().lock().write_all(up.text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}
