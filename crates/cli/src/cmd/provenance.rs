//! `modelspec provenance SUBJECT`: the provenance chain of a model version (or a dataset) down to
//! the datasets, each link verified (exit 0 all verified, 1 findings, 2 usage or an unreachable
//! registry); `provenance show SUBJECT`: one record; `provenance sign SUBJECT --signer REF`:
//! sign a record's statement client-side and attach the bundle.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::entity::ProvenanceRecord;
use ms_registry::provenance_chain::{self, Chain, TrustedKey};

use super::connect::{self, Failure, RegistryArgs, emit, local_io};

#[derive(ClapArgs)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// NAME@VERSION (or NAME@prod, model:NAME@VERSION) or dataset:sha256:… (or sha256:…).
    #[arg(required = true)]
    pub subject: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// One record: the statement (SLSA Provenance v1), its digest, its signature.
    Show(ShowArgs),
    /// Sign a record's statement with a signer and attach the bundle (the registry checks it).
    Sign(SignArgs),
}

/// Which keys' signatures count. Without `--key` or `--policy`: the registry's registered keys
/// that are not revoked.
#[derive(ClapArgs, Clone, Debug)]
pub struct TrustArgs {
    /// A trusted public key (PEM); repeat for several.
    #[arg(long = "key", value_name = "PEM", conflicts_with = "policy")]
    pub keys: Vec<PathBuf>,
    /// A trust policy file (`kind: TrustPolicy`): its keys are the trusted ones.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// With --policy: only the keys it trusts for this environment now (e.g. prod).
    #[arg(long, value_name = "ENV", requires = "policy")]
    pub env: Option<String>,
}

#[derive(ClapArgs)]
pub struct ShowArgs {
    pub subject: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct SignArgs {
    pub subject: String,
    /// The signer: file:KEY.pem (development only), pkcs11:… (RFC 7512) or an
    /// http(s):// signing proxy.
    #[arg(long, env = "MODELSPEC_SIGNER", value_name = "REF")]
    pub signer: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    match a.command {
        Some(Command::Show(s)) => show(s),
        Some(Command::Sign(s)) => sign(s),
        None => chain(a.subject.unwrap_or_default(), a.trust, a.registry),
    }
}

fn policy_keys(path: &std::path::Path, env: Option<&str>) -> Result<Vec<TrustedKey>, Failure> {
    let policy = ms_trust::policy::TrustPolicy::load(path).map_err(|e| {
        ms_registry::RegistryError::new(
            ms_registry::ErrorKind::Invalid,
            ms_registry::client_codes::MG0707,
            format!("the trust policy cannot be used: {e}"),
        )
    })?;
    Ok(policy
        .keys
        .iter()
        .filter(|k| env.is_none_or(|env| policy.allows(&k.public_key, env).is_ok()))
        .map(|k| TrustedKey {
            name: k.name.clone(),
            key: k.public_key.clone(),
        })
        .collect())
}

/// The trusted keys the flags name; `None`: the registry's own.
fn trusted_keys(t: &TrustArgs) -> Result<Option<Vec<TrustedKey>>, Failure> {
    if let Some(p) = &t.policy {
        return policy_keys(p, t.env.as_deref()).map(Some);
    }
    if t.keys.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for path in &t.keys {
        let text = super::sign::read_limited(path, 16 * 1024, "the public key")?;
        let key = ms_trust::PublicKey::from_pem(&text)
            .map_err(|e| local_io(path, "is not a public key:", e))?;
        out.push(TrustedKey {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| key.fingerprint()),
            key,
        });
    }
    Ok(Some(out))
}

fn chain(subject: String, trust: TrustArgs, registry: RegistryArgs) -> anyhow::Result<ExitCode> {
    let json = registry.json;
    connect::run(&registry, |reg, _| async move {
        let keys = match trusted_keys(&trust)? {
            Some(k) => k,
            None => provenance_chain::registry_keys(reg.as_ref()).await?,
        };
        let chain = provenance_chain::verify(reg.as_ref(), &subject, &keys).await?;
        emit(json, &chain, || chain_text(&chain, keys.len()));
        Ok(if chain.verified {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// The chain as text: one block per link, indented by depth, its dependencies and findings.
pub fn chain_text(c: &Chain, trusted: usize) -> String {
    let mut out = String::new();
    for l in &c.links {
        let indent = "  ".repeat(l.depth as usize);
        let mark = if l.problems.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        let digest = l
            .statement_digest
            .as_ref()
            .map(|d| format!("  statement {}", connect::short(d)))
            .unwrap_or_default();
        let signed = match (&l.signed_by, &l.signed_at) {
            (Some(k), Some(at)) => format!("  signed by {k} at {at}"),
            (Some(k), None) => format!("  signed by {k}"),
            _ => String::new(),
        };
        out.push_str(&format!("{indent}{mark} {}{digest}{signed}\n", l.subject));
        for d in &l.dependencies {
            out.push_str(&format!("{indent}     {} {}\n", d.relation, d.subject));
        }
        for p in &l.problems {
            out.push_str(&format!("{indent}     error[{}]: {}\n", p.code, p.message));
        }
    }
    let problems = c.problems().count();
    if c.verified {
        out.push_str(&format!(
            "verified: {} link(s), each signed by one of {trusted} trusted key(s)\n",
            c.links.len()
        ));
    } else {
        let failing = c.links.iter().filter(|l| !l.problems.is_empty()).count();
        out.push_str(&format!(
            "NOT verified: {problems} finding(s) in {failing} of {} link(s) (modelspec explain CODE)\n",
            c.links.len()
        ));
    }
    out
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |reg, _| async move {
        let r = reg.provenance(&a.subject).await?;
        emit(json, &r, || record_text(&r));
        Ok(ExitCode::SUCCESS)
    })
}

fn record_text(r: &ProvenanceRecord) -> String {
    let statement = serde_json::from_str::<serde_json::Value>(&r.statement)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.statement.clone());
    let signature = match (&r.key_id, &r.signed_at) {
        (Some(k), Some(at)) => format!("signed by key {k} at {at}"),
        _ => "unsigned".into(),
    };
    format!(
        "{}\nstatement digest: {}\naudit event: {}\n{signature}\n{statement}\n",
        r.subject, r.statement_digest, r.audit_seq
    )
}

fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |reg, _| async move {
        let signer = ms_trust::signer::open_signer(&a.signer).map_err(|e| {
            ms_registry::RegistryError::new(
                ms_registry::ErrorKind::Invalid,
                ms_registry::codes::MG0913,
                format!("the signer {:?} cannot be opened: {e}", a.signer),
            )
        })?;
        let record = reg.provenance(&a.subject).await?;
        let signature = ms_registry::provenance::sign_record(&record, signer.as_ref())?;
        let signed = reg.sign_provenance(&record.subject, signature).await?;
        if signer.kind().development_only() && !json {
            eprintln!("warning: the signer holds a development-only key");
        }
        emit(json, &signed, || {
            format!(
                "signed {} (statement {}) with key {}",
                signed.subject,
                signed.statement_digest,
                signed.key_id.as_deref().unwrap_or("?")
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}
