//! `modelspec explain CODE`: the documentation of every finding code the tool prints.
//!
//! One scheme, five tables, each kept beside the code that emits it: `MS` findings about a
//! spec or plan document (`ms_spec::catalog`), `MR` findings of the runtime about a plan
//! against a model and a machine (`ms_runtime::codes`), `MV` checks of `modelspec verify`
//! (`ms_verify::check`), `MG` errors and findings of the registry (`ms_registry::codes`), `MT`
//! errors of signing and trust (`ms_trust::codes`). This command reads all five ([`all`]).

use std::process::ExitCode;

use ms_spec::{catalog, suggest};

#[derive(clap::Args)]
pub struct Args {
    /// Code (MS0203, MR0106, MV0401, MG0203, MT0106) or name (min-replicas-exceeds-max).
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,
    /// List every code with its default level and summary.
    #[arg(long)]
    pub list: bool,
}

/// One documented code, whichever table it comes from.
pub struct Entry {
    pub code: &'static str,
    pub name: &'static str,
    /// `error`, `warning`, or `check` for a verify check (its verdict decides).
    pub level: &'static str,
    /// Who gives it, for the heading.
    pub origin: &'static str,
    /// Whether config files and flags may change the level.
    pub configurable: bool,
    pub summary: &'static str,
    pub doc: &'static str,
}

/// Every code the tool can print: MS, then MR, then MV, then MG, then MT.
pub fn all() -> Vec<Entry> {
    let documents = catalog::RULES.iter().map(|r| Entry {
        code: r.code,
        name: r.name,
        level: r.default.as_str(),
        origin: "validate",
        configurable: r.configurable,
        summary: r.summary,
        doc: r.doc,
    });
    let runtime = ms_runtime::codes::RULES.iter().map(|r| Entry {
        code: r.code,
        name: r.name,
        level: r.default.as_str(),
        origin: "runtime",
        configurable: false,
        summary: r.summary,
        doc: r.doc,
    });
    let verify = ms_verify::check::RULES.iter().map(|r| Entry {
        code: r.code,
        name: r.name,
        level: "check",
        origin: "verify",
        configurable: false,
        summary: r.title,
        doc: r.summary,
    });
    documents
        .chain(runtime)
        .chain(verify)
        .chain(registry_codes().into_iter().map(|c| Entry {
            code: c.code,
            name: slug(c.title),
            level: "error",
            origin: "registry",
            configurable: false,
            summary: c.title,
            doc: c.explanation,
        }))
        .chain(ms_trust::codes::TABLE.iter().map(|c| Entry {
            code: c.code,
            name: slug(c.title),
            level: "error",
            origin: "trust",
            configurable: false,
            summary: c.title,
            doc: c.explanation,
        }))
        .collect()
}

/// A name from a title, as the other tables have (`declared-artifact-not-in-the-store`);
/// leaked: made once per process for a short-lived command.
fn slug(title: &str) -> &'static str {
    let words: Vec<String> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    Box::leak(words.join("-").into_boxed_str())
}

/// The registry's catalog (every MG table it concatenates) and the client-side MG07xx table,
/// each code once, in code order.
fn registry_codes() -> Vec<ms_registry::codes::CodeInfo> {
    let mut all = ms_registry::codes::all();
    for c in ms_registry::client_codes::TABLE {
        if !all.iter().any(|x| x.code == c.code) {
            all.push(*c);
        }
    }
    all.sort_by_key(|c| c.code);
    all
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let entries = all();
    if args.list {
        for e in &entries {
            println!("{}  {:<7}  {:<40} {}", e.code, e.level, e.name, e.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let code = args.code.unwrap_or_default();
    let Some(e) = entries
        .iter()
        .find(|e| e.code.eq_ignore_ascii_case(&code) || e.name == code)
    else {
        let all = entries.iter().flat_map(|e| [e.code, e.name]);
        let hint = suggest::closest(&code, all)
            .map(|c| format!(" (did you mean {c}?)"))
            .unwrap_or_default();
        anyhow::bail!("unknown code `{code}`{hint}; `modelspec explain --list` lists all codes");
    };
    let level = match (e.origin, e.configurable) {
        ("verify", _) => "a check of `modelspec verify`: held, violated or not-checked".to_string(),
        ("registry", _) => "an error or `registry check` finding of the model registry".to_string(),
        ("trust", _) => {
            "an error of signing and trust: keys, signatures, trust policies".to_string()
        }
        ("runtime", _) => format!(
            "{} given by the runtime when it resolves a plan against the model and the machine",
            e.level
        ),
        (_, true) => format!("{} by default", e.level),
        (_, false) => format!("{} by default, cannot be re-levelled", e.level),
    };
    println!("{} {} ({level})", e.code, e.name);
    println!();
    println!("{}", e.summary);
    println!();
    println!("{}", e.doc);
    Ok(ExitCode::SUCCESS)
}
