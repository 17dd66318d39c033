//! `modelspec upgrade FILE`: piqc.ai/v1alpha1 -> modelspec/v1, keeping comments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ms_spec::{Checker, Severity, source, upgrade};

#[derive(clap::Args)]
#[command(
    after_help = "Only spec.identity.model.artifacts changes shape ({modelUri, tokenizerUri} becomes a list of \
{role, uri}) and apiVersion changes; everything else, comments included, is kept. The result is verified to \
round-trip back to the original before it is written."
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.in_place && args.file == "-" {
        anyhow::bail!("--in-place needs a file, not stdin");
    }
    let src = match source::load(&args.file) {
        Ok(s) => s,
        Err(e) => anyhow::bail!("{}: {}", args.file, e.diagnostic().message),
    };
    let up = match upgrade::upgrade_source(&src) {
        Ok(u) => u,
        Err(diags) => {
            for d in &diags {
                eprintln!(
                    "{}:{}:{}: {} [{}]",
                    d.file, d.line, d.column, d.message, d.code
                );
            }
            eprintln!(
                "error: {} was not upgraded; run `modelspec validate {}` for details",
                args.file, args.file
            );
            return Ok(ExitCode::from(1));
        }
    };
    if up.upgraded == 0 {
        eprintln!(
            "note: {} has no piqc.ai/v1alpha1 document; nothing to upgrade",
            args.file
        );
    }
    // Findings the new version adds (e.g. prod artifacts now need a sha256) are worth knowing.
    let mut checker = Checker::default();
    let mut upgraded_src = src.clone();
    upgraded_src.text.clone_from(&up.text);
    let findings = checker.check(&upgraded_src);
    for d in findings.iter().filter(|d| d.severity >= Severity::Warning) {
        eprintln!(
            "note: upgraded document: {}:{}: {} [{}]",
            d.line, d.column, d.message, d.code
        );
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
