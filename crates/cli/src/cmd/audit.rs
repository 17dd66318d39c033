//! `modelspec audit verify|checkpoint|witness`: the verifiable audit log from the outside.
//! `verify` reads the registry's checkpoint and tiles (over HTTP, or from the database of a
//! local registry), recomputes every hash, checks the signatures against the trusted keys and
//! the tree against the checkpoint it kept from its last run (per log origin, under --state),
//! and names what changed; `checkpoint` prints the newest signed checkpoint and gets it
//! cosigned by witnesses; `witness` runs a C2SP tlog-witness.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::locate::Location;
use ms_registry::log::codes::{BAD_STATE, TAMPERED};
use ms_registry::log::key::{LogSettings, configure};
use ms_registry::log::source::RegistrySource;
use ms_registry::{ErrorKind, Registry, RegistryError};
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::note::Verifier;
use ms_tlog::state::DirState;
use ms_tlog::verify::{Diagnosis, Options, Trust, verify};

use super::connect::{self, Failure, RegistryArgs, bad_value, emit, local_io, report};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Verify the whole log offline from its tiles: every hash, the signatures, consistency
    /// with the checkpoint kept from the last run; name what changed (exit 1).
    Verify(VerifyArgs),
    /// Print the newest signed checkpoint (signing one if the log grew), optionally after
    /// getting it cosigned by witnesses.
    Checkpoint(CheckpointArgs),
    /// Run a witness: cosign a log's checkpoints after checking each extends the last.
    Witness(WitnessArgs),
}

#[derive(ClapArgs)]
pub struct VerifyArgs {
    /// The log's verifier key (`<origin>+<hex id>+<base64 key>`, as `audit checkpoint`
    /// prints it). Default: --policy's `log.key`; for a local registry, its own log key.
    #[arg(long, value_name = "VKEY")]
    pub log_key: Option<String>,
    /// A trust policy whose `log` and `witnesses` say which keys to trust.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A witness key whose cosignatures count (repeatable; added to the policy's).
    #[arg(long, value_name = "VKEY")]
    pub witness: Vec<String>,
    /// How many trusted witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    pub quorum: usize,
    /// A checkpoint (signed note file) you trust from elsewhere: the log must extend it.
    #[arg(long, value_name = "CHECKPOINT")]
    pub since: Option<PathBuf>,
    /// Where the last verified checkpoint and full tiles are kept, one directory per log.
    /// Default: `audit-state/` in the data directory.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct CheckpointArgs {
    /// A witness (`modelspec audit witness`) to send the checkpoint to; its cosignature is
    /// kept by the registry if the registry lists the witness's key (repeatable).
    #[arg(long, value_name = "URL")]
    pub witness_url: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct WitnessArgs {
    /// The witness's key (Ed25519): a PKCS#11 URI, a signing proxy URL or a key file.
    #[arg(long, value_name = "REF")]
    pub key: String,
    /// A log to witness, by its verifier key (repeatable).
    #[arg(long = "log", value_name = "VKEY", required = true)]
    pub logs: Vec<String>,
    /// The witness's name (its cosignature key name).
    #[arg(long, default_value = "modelspec-witness")]
    pub name: String,
    /// The last checkpoint cosigned per log. Default: `witness/state.json` in the data
    /// directory.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 8091)]
    pub port: u16,
    /// Bind a non-loopback address without TLS (behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(a) => verify_cmd(a),
        Command::Checkpoint(a) => checkpoint_cmd(a),
        Command::Witness(a) => witness_cmd(a),
    }
}

fn parse_vkey(option: &str, text: &str) -> Result<Verifier, RegistryError> {
    Verifier::parse(text.trim()).map_err(|e| {
        bad_value(
            option,
            text,
            &format!("a C2SP verifier key `<name>+<hex id>+<base64 key>` ({e})"),
        )
    })
}

/// The origin a note claims (its first line), before any signature is checked.
fn claimed_origin(note: &str) -> String {
    note.lines().next().unwrap_or_default().to_string()
}

/// The keys to trust: flags, then the policy, then (a local registry) its own log key.
fn trust(a: &VerifyArgs, location: &Location, note: &str) -> Result<Trust, RegistryError> {
    let mut log = a
        .log_key
        .as_deref()
        .map(|k| parse_vkey("--log-key", k))
        .transpose()?;
    let mut origin = None;
    let mut witnesses = a
        .witness
        .iter()
        .map(|w| parse_vkey("--witness", w))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &a.policy {
        let policy = ms_trust::policy::TrustPolicy::load(path)
            .map_err(|e| RegistryError::new(ErrorKind::Invalid, e.code, e.message.clone()))?;
        if let Some(l) = &policy.log {
            if log.is_none() {
                log = Some(parse_vkey("the policy's log.key", &l.key)?);
            }
            origin = Some(l.origin.clone());
        }
        for w in &policy.witnesses {
            witnesses.push(parse_vkey("the policy's witnesses[].key", &w.key)?);
        }
    }
    if log.is_none()
        && let Location::Embedded { db, .. } = location
    {
        // A local registry: trust its own key, found where the registry finds it.
        if let Some(cfg) = configure(&db.url(), &LogSettings::from_env())? {
            let vkey = cfg.verifier_key_text(&claimed_origin(note))?;
            eprintln!(
                "trusting the local registry's log key {}{}",
                cfg.public_key().fingerprint(),
                if cfg.development() {
                    " (a development key file)"
                } else {
                    ""
                }
            );
            log = Some(parse_vkey("the local log key", &vkey)?);
        }
    }
    let Some(log) = log else {
        return Err(RegistryError::new(
            ErrorKind::Invalid,
            ms_registry::log::codes::NO_TRUSTED_KEY,
            "no log key to trust: the checkpoint's signature cannot be checked",
        )
        .hint("give --log-key VKEY (the registry's operator has it: `modelspec audit checkpoint` prints it) or --policy FILE with `log: {origin, key}`"));
    };
    Ok(Trust {
        origin,
        log,
        witnesses,
        witness_quorum: a.quorum,
    })
}

fn state_dir(given: &Option<PathBuf>, leaf: &str) -> Result<PathBuf, RegistryError> {
    match given {
        Some(d) => Ok(d.clone()),
        None => Ok(ms_registry::locate::data_dir()?.join(leaf)),
    }
}

fn diagnosis_json(d: &Diagnosis) -> serde_json::Value {
    let cp = |c: &Option<Checkpoint>| {
        c.as_ref().map(|c| {
            serde_json::json!({"origin": c.origin, "size": c.size, "root": ms_tlog::hash::hex(&c.root)})
        })
    };
    serde_json::json!({
        "ok": d.is_ok(),
        "checkpoint": cp(&d.checkpoint),
        "previous": cp(&d.previous),
        "cosignedBy": d.cosigned_by,
        "entriesChecked": d.entries_checked,
        "evidence": d.evidence,
        "findings": d.findings.iter().map(|f| serde_json::json!({
            "code": f.code(),
            "kind": f.kind(),
            "message": f.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    let since = match &a.since {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t),
            Err(e) => return Ok(report(&local_io(p, "cannot read", e), json)),
        },
        None => None,
    };
    let state = match state_dir(&a.state, "audit-state") {
        Ok(s) => s,
        Err(e) => return Ok(report(&e, json)),
    };
    let registry_args = a.registry.clone();
    connect::run(&registry_args, |registry, location| async move {
        let registry: Arc<dyn Registry> = Arc::from(registry);
        let note = registry.audit_checkpoint().await?;
        let trust = trust(&a, &location, &note)?;
        let handle = tokio::runtime::Handle::current();
        let state_for_task = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let source = RegistrySource::new(registry, handle);
            let mut store = DirState::new(state_for_task);
            let options = Options {
                since,
                check_seq: true,
            };
            verify(&source, &mut store, &trust, &options)
        })
        .await
        .map_err(|e| RegistryError::new(ErrorKind::Internal, TAMPERED, e.to_string()))?;
        let d = outcome.map_err(|e| {
            let code = if e.code == ms_trust::codes::MT0613 {
                BAD_STATE
            } else {
                e.code
            };
            RegistryError::new(ErrorKind::Unavailable, code, e.message.clone())
                .hint(format!("the verifier's state is under {}", state.display()))
        })?;
        emit(json, &diagnosis_json(&d), || d.to_string());
        if d.is_ok() {
            Ok(ExitCode::SUCCESS)
        } else {
            if !json {
                eprintln!(
                    "error[{TAMPERED}]: the audit log does not verify ({} finding(s)); \
                     `modelspec explain CODE` tells what each means",
                    d.findings.len()
                );
            }
            Err(Failure::Printed(ExitCode::from(1)))
        }
    })
}

fn checkpoint_cmd(a: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    let registry_args = a.registry.clone();
    connect::run(&registry_args, |registry, location| async move {
        let mut receipts = Vec::new();
        for url in &a.witness_url {
            let r = ms_registry::log::witness_client::cosign(&*registry, url).await?;
            if !json {
                eprintln!(
                    "{url}: cosigned size {} ({})",
                    r.size,
                    r.witnesses.join(", ")
                );
            }
            receipts.push(r);
        }
        let note = registry.audit_checkpoint().await?;
        if let Location::Embedded { db, .. } = &location
            && let Some(cfg) = configure(&db.url(), &LogSettings::from_env())?
        {
            eprintln!(
                "log key: {}",
                cfg.verifier_key_text(&claimed_origin(&note))?
            );
        }
        emit(
            json,
            &serde_json::json!({"checkpoint": note, "cosigned": receipts}),
            || note.clone(),
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn witness_cmd(a: WitnessArgs) -> anyhow::Result<ExitCode> {
    let setup = || -> Result<ms_control::witness::WitnessConfig, RegistryError> {
        let signer: Arc<dyn ms_trust::Signer> = Arc::from(
            ms_trust::signer::open_signer(&a.key)
                .map_err(|e| RegistryError::new(ErrorKind::Invalid, e.code, e.message.clone()))?,
        );
        let logs = a
            .logs
            .iter()
            .map(|l| parse_vkey("--log", l))
            .collect::<Result<Vec<_>, _>>()?;
        let state = match &a.state {
            Some(s) => s.clone(),
            None => state_dir(&None, "witness")?.join("state.json"),
        };
        let mut config = ms_control::witness::WitnessConfig::new(&a.name, signer, logs, state);
        config.host = a.host;
        config.port = a.port;
        config.insecure = a.insecure;
        Ok(config)
    };
    let config = match setup() {
        Ok(c) => c,
        Err(e) => return Ok(report(&e, false)),
    };
    let key = match ms_control::witness::witness_key(&config.name, &*config.signer) {
        Ok(k) => k,
        Err(e) => return Ok(report(&e, false)),
    };
    let state = config.state.clone();
    let logs: Vec<String> = config.logs.iter().map(|l| l.name().to_string()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = match ms_control::witness::serve_witness(config).await {
            Ok(s) => s,
            Err(e) => return Ok(report(&e, false)),
        };
        eprintln!(
            "modelspec audit witness: listening on {} (POST /add-checkpoint)",
            server.url()
        );
        eprintln!("witness key: {key}");
        eprintln!("witnessing: {}", logs.join(", "));
        eprintln!("state: {}", state.display());
        eprintln!("Ctrl-C stops the witness.");
        super::registry_serve::stopped().await;
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
