//! What every registry command shares: the options that say where the registry is
//! (`--registry`, `--store`, `--token`, `--json`), opening it on a small tokio runtime, and
//! printing its errors (code, message, pointer, hint) with the exit code they mean.

use std::future::Future;
use std::process::ExitCode;

use ms_registry::client_codes::{MG0706, MG0707};
use ms_registry::locate::{self, Location, Secret, Settings};
use ms_registry::{ErrorKind, Registry, RegistryError};
use serde::Serialize;

/// Where the registry is; flattened into every registry command.
#[derive(clap::Args, Clone, Debug)]
pub struct RegistryArgs {
    /// The registry: http(s)://HOST:PORT (a `registry serve` control plane), sqlite://PATH or
    /// postgres://USER@HOST/DB (a database used directly). Default: the local registry under
    /// the data directory ($MODELSPEC_DATA_DIR, else ~/.local/share/modelspec/registry).
    #[arg(long, env = "MODELSPEC_REGISTRY", value_name = "URL")]
    pub registry: Option<String>,
    /// The blob store beside an embedded database: file://DIR or s3://BUCKET/PREFIX (AWS_*
    /// variables give the endpoint and credentials). Default: `blobs/` beside a SQLite file.
    #[arg(long, env = "MODELSPEC_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Bearer token for a remote registry (never printed).
    #[arg(
        long,
        env = "MODELSPEC_REGISTRY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print JSON (for scripts) instead of text; errors as `{"error": {...}}` on stdout.
    #[arg(long)]
    pub json: bool,
}

impl RegistryArgs {
    pub fn location(&self) -> Result<Location, RegistryError> {
        locate::resolve(&Settings {
            registry: self.registry.clone(),
            store: self.store.clone(),
            token: self.token.clone().map(Secret::new),
            data_dir: None,
        })
    }
}

/// A command's failure: a registry error (printed with its code), or a refusal/finding that
/// was already printed (exit 1).
pub enum Failure {
    Registry(RegistryError),
    Printed(ExitCode),
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Failure {
        Failure::Registry(e)
    }
}

pub type Outcome<T = ExitCode> = Result<T, Failure>;

/// Runs `body` against the registry `args` name, on a current-thread runtime, and turns its
/// outcome into an exit code (printing the error).
pub fn run<F, Fut>(args: &RegistryArgs, body: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Box<dyn Registry>, Location) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let location = args.location()?;
        let registry = open(&location).await?;
        body(registry, location).await
    });
    Ok(match outcome {
        Ok(code) => code,
        Err(Failure::Printed(code)) => code,
        Err(Failure::Registry(e)) => report(&e, args.json),
    })
}

/// Opens the registry at `location`: the HTTP client of a control plane, or the embedded
/// registry acting as the OS user (an admin of their own files).
pub async fn open(location: &Location) -> Result<Box<dyn Registry>, RegistryError> {
    locate::open(location).await
}

/// Prints `e` (stderr for people, stdout as `{"error": …}` with `--json`) and returns its exit
/// code: 2 for usage, local I/O and an unreachable or failing registry, 1 for a refusal.
pub fn report(e: &RegistryError, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({ "error": e }));
    } else {
        eprintln!("error[{}]: {}", e.code, e.message);
        if let Some(p) = &e.pointer {
            eprintln!("  at: {p}");
        }
        if let Some(h) = &e.hint {
            eprintln!("  hint: {h}");
        }
    }
    exit_code(e)
}

pub fn exit_code(e: &RegistryError) -> ExitCode {
    let usage = matches!(
        e.code.as_str(),
        "MG0701" | "MG0702" | "MG0703" | "MG0704" | "MG0706" | "MG0707"
    );
    if usage || matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Prints `value` as JSON with `--json`, else the text `text` makes.
pub fn emit<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => out_line(&s),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        let t = text();
        if !t.is_empty() {
            out_line(t.trim_end());
        }
    }
}

/// Prints a line on stdout. A reader that went away (`| head`) is not an error of ours: the
/// output is simply no longer wanted, where `println!` would panic.
fn out_line(s: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// A malformed command-line value (MG0706): `option` and `value` named, `expected` said.
pub fn bad_value(option: &str, value: &str, expected: &str) -> RegistryError {
    RegistryError::new(
        ErrorKind::Invalid,
        MG0706,
        format!("{option} {value:?}: expected {expected}"),
    )
}

/// A local file problem (MG0707) with the path and the OS's reason.
pub fn local_io(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(
        ErrorKind::Invalid,
        MG0707,
        format!("{what} {}: {e}", path.display()),
    )
}

/// A name that becomes a file name somewhere (an artifact's, a dataset's): one path
/// component, printable, at most 255 bytes.
pub fn check_file_name(option: &str, name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(bad_value(
            option,
            name,
            "a file name: one path component (no `/`, `\\`, `.` or `..`), no control characters, at most 255 bytes",
        ))
    }
}

/// The first 12 hex digits of a digest, for tables.
pub fn short(d: &ms_registry::Digest) -> String {
    let hex = d.hex();
    format!("sha256:{}", &hex[..12])
}
