//! `modelspec explain CODE`: a rule's documentation.

use std::process::ExitCode;

use ms_spec::{catalog, suggest};

#[derive(clap::Args)]
pub struct Args {
    /// Rule code (MS0203) or name (min-replicas-exceeds-max).
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,
    /// List every rule with its default level and summary.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.list {
        for r in catalog::RULES {
            println!(
                "{}  {:<7}  {:<40} {}",
                r.code,
                r.default.as_str(),
                r.name,
                r.summary
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let code = args.code.unwrap_or_default();
    let Some(r) = catalog::lookup(&code) else {
        let all = catalog::RULES
            .iter()
            .map(|r| r.code)
            .chain(catalog::RULES.iter().map(|r| r.name));
        let hint = suggest::closest(&code, all)
            .map(|c| format!(" (did you mean {c}?)"))
            .unwrap_or_default();
        anyhow::bail!("unknown rule `{code}`{hint}; `modelspec explain --list` lists all rules");
    };
    println!(
        "{} {} ({} by default{})",
        r.code,
        r.name,
        r.default.as_str(),
        if r.configurable {
            ""
        } else {
            ", cannot be re-levelled"
        }
    );
    println!();
    println!("{}", r.summary);
    println!();
    println!("{}", r.doc);
    Ok(ExitCode::SUCCESS)
}
