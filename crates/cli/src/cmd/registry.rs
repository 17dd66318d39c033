//! `modelspec registry check|token|audit` (and `serve`, in its own file): looking after the
//! registry itself. `check` re-hashes every blob and resolves every reference (exit 1 with the
//! problems); tokens are shown once at creation and stored hashed; the audit trail is listed
//! in order.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use ms_registry::entity::{Role, TokenInfo, TokenRequest};

use super::connect::{self, Failure, RegistryArgs, emit};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// fsck: every blob re-hashed, every reference resolved, nothing half-written (exit 1
    /// with the list of problems).
    Check(CheckArgs),
    /// Bearer tokens for a remote registry: create (the secret is shown once), revoke, list.
    Token(TokenArgs),
    /// The audit trail: every change, who made it and when, oldest first.
    Audit(AuditArgs),
    /// Serve the registry over HTTP(S): the control plane other machines and CI talk to.
    Serve(super::registry_serve::Args),
}

#[derive(ClapArgs)]
pub struct CheckArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(ClapArgs)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Reader,
    Writer,
    Approver,
    Admin,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// A new token (its secret is printed once, stored only as a hash).
    Create {
        /// Who or what uses it (becomes `createdBy` of what it does).
        #[arg(long)]
        name: String,
        /// reader < writer < approver < admin.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke {
        id: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Every token (never a secret).
    List {
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(ClapArgs)]
pub struct AuditArgs {
    /// Events after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Check(a) => check(a),
        Command::Token(t) => match t.command {
            TokenCommand::Create {
                name,
                role,
                registry,
            } => token_create(name, role, registry),
            TokenCommand::Revoke { id, registry } => token_revoke(id, registry),
            TokenCommand::List { registry } => token_list(registry),
        },
        Command::Audit(a) => audit(a),
        Command::Serve(a) => super::registry_serve::run(a),
    }
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, location| async move {
        let report = registry.check().await?;
        emit(json, &report, || {
            let mut s = format!(
                "{location}: {} blobs re-hashed ({} bytes), {} rows checked\n",
                report.blobs_checked, report.bytes_hashed, report.rows_checked
            );
            if report.problems.is_empty() {
                s.push_str("no problems\n");
            }
            for p in &report.problems {
                s.push_str(&format!("{}  {}  {}\n", p.code, p.subject, p.message));
            }
            if !report.problems.is_empty() {
                s.push_str(&format!(
                    "{} problem(s); `modelspec explain CODE` tells what each means\n",
                    report.problems.len()
                ));
            }
            s
        });
        if report.problems.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(Failure::Printed(ExitCode::from(1)))
        }
    })
}

fn token_line(t: &TokenInfo) -> String {
    let role = serde_json::to_value(t.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let revoked = t
        .revoked_at
        .as_deref()
        .map(|r| format!("  revoked {r}"))
        .unwrap_or_default();
    format!(
        "{:<24} {:<24} {:<9} {} by {}{revoked}",
        t.token_id, t.name, role, t.created_at, t.created_by
    )
}

fn token_create(name: String, role: RoleArg, args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let role = match role {
        RoleArg::Reader => Role::Reader,
        RoleArg::Writer => Role::Writer,
        RoleArg::Approver => Role::Approver,
        RoleArg::Admin => Role::Admin,
    };
    connect::run(&args, |registry, _| async move {
        let created = registry.create_token(TokenRequest { name, role }).await?;
        emit(json, &created, || {
            format!(
                "{}\n\nsecret (shown this once; the registry keeps only its hash):\n{}\n\nuse it with --token or MODELSPEC_REGISTRY_TOKEN\n",
                token_line(&created.info),
                created.token
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn token_revoke(id: String, args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    connect::run(&args, |registry, _| async move {
        let info = registry.revoke_token(&id).await?;
        emit(json, &info, || token_line(&info));
        Ok(ExitCode::SUCCESS)
    })
}

fn token_list(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    connect::run(&args, |registry, _| async move {
        let tokens = registry.list_tokens().await?;
        emit(json, &tokens, || {
            tokens.iter().map(token_line).collect::<Vec<_>>().join("\n")
        });
        Ok(ExitCode::SUCCESS)
    })
}

fn audit(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let events = registry.audit_events(a.after, a.limit).await?;
        emit(json, &events, || {
            let mut s = String::new();
            for e in &events {
                s.push_str(&format!(
                    "{:>6}  {}  {:<20} {:<18} {}\n",
                    e.seq, e.at, e.actor, e.action, e.subject
                ));
            }
            s
        });
        Ok(ExitCode::SUCCESS)
    })
}
