//! `modelspec key add|rotate|revoke|list`: the public keys whose signatures the registry
//! attaches to model versions. Each change is an audit event (`key.add`, `key.rotate`,
//! `key.revoke`); keys are named by fingerprint (`sha256:` of the SubjectPublicKeyInfo DER).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use ms_registry::entity::{KeyRequest, KeyStatus, RevokeKeyRequest, RotateKeyRequest, SigningKey};

use super::connect::{self, RegistryArgs, emit};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Register a public key for some environments (admin).
    Add {
        /// A name for people (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// The PEM public key file (Ed25519 or ECDSA P-256).
        #[arg(long, value_name = "PEM")]
        public_key: PathBuf,
        /// An environment it signs for (repeat: --env staging --env prod).
        #[arg(long = "env", value_name = "ENV", required = true)]
        environments: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Replace an active key by a new one; the old one is retired (its earlier signatures
    /// stay valid, it signs nothing new) (admin).
    Rotate {
        /// The old key's id (sha256:…).
        key_id: String,
        /// The new PEM public key file.
        #[arg(long, value_name = "PEM")]
        public_key: PathBuf,
        /// The new key's name (default: the old one's).
        #[arg(long)]
        name: Option<String>,
        /// The new key's environments (default: the old one's).
        #[arg(long = "env", value_name = "ENV")]
        environments: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Revoke a key: none of its signatures is valid any more, old or new (admin).
    Revoke {
        key_id: String,
        /// Why (kept in the key's record and the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Every key: active, retired, revoked.
    List {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

fn read_pem(path: &std::path::Path) -> Result<String, ms_registry::RegistryError> {
    // A PEM public key is a few hundred bytes; the registry takes at most 16 KiB.
    super::sign::read_limited(path, 16 * 1024, "the public key")
}

fn status(k: &SigningKey) -> &'static str {
    match k.status {
        KeyStatus::Active => "active",
        KeyStatus::Retired => "retired",
        KeyStatus::Revoked => "revoked",
    }
}

fn line(k: &SigningKey) -> String {
    format!(
        "{}  {:<8} {:<18} {:<24} {}",
        k.key_id,
        status(k),
        k.algorithm,
        k.name,
        k.environments.join(",")
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Add {
            name,
            public_key,
            environments,
            registry,
        } => {
            let json = registry.json;
            connect::run(&registry, |reg, _| async move {
                let req = KeyRequest {
                    name,
                    public_key: read_pem(&public_key)?,
                    environments,
                };
                let r = reg.add_key(req).await?;
                emit(json, &r, || {
                    let how = if r.created {
                        "added"
                    } else {
                        "registered already"
                    };
                    format!("{how}: {}", line(&r.record))
                });
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Rotate {
            key_id,
            public_key,
            name,
            environments,
            registry,
        } => {
            let json = registry.json;
            connect::run(&registry, |reg, _| async move {
                let req = RotateKeyRequest {
                    public_key: read_pem(&public_key)?,
                    name,
                    environments: (!environments.is_empty()).then_some(environments),
                };
                let r = reg.rotate_key(&key_id, req).await?;
                emit(json, &r, || {
                    format!(
                        "retired: {}\nadded:   {}\naudit #{}",
                        line(&r.retired),
                        line(&r.added),
                        r.audit_seq
                    )
                });
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Revoke {
            key_id,
            reason,
            registry,
        } => {
            let json = registry.json;
            connect::run(&registry, |reg, _| async move {
                let k = reg.revoke_key(&key_id, RevokeKeyRequest { reason }).await?;
                emit(json, &k, || format!("revoked: {}", line(&k)));
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::List { registry } => {
            let json = registry.json;
            connect::run(&registry, |reg, _| async move {
                let keys = reg.keys().await?;
                emit(json, &keys, || {
                    if keys.is_empty() {
                        return "no signing keys (an admin adds one: modelspec key add NAME --public-key PEM --env prod)".into();
                    }
                    keys.iter().map(line).collect::<Vec<_>>().join("\n")
                });
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}
