//! `modelspec signer keygen|public-key|sign|serve`: development key files, a signer's public
//! key, the signing proxy's server (`signer_serve`), and signing a model directory
//! into an OMS signature (`model.sig`, a Sigstore bundle `model_signing verify key` accepts)
//! through any signer reference (`file:KEY.pem`, `pkcs11:…`, `https://` signing proxy).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use ms_trust::keyfile::KeyFileSigner;
use ms_trust::oms::{self, HashOptions};
use ms_trust::{Algorithm, Signer as _};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Make a development key file (PEM PKCS#8, mode 0600; never for prod) and print its
    /// fingerprint.
    Keygen(KeygenArgs),
    /// Print a signer's public key (PEM) on stdout and its fingerprint on stderr: what a trust
    /// policy or `--key` needs.
    PublicKey(PublicKeyArgs),
    /// Sign a model directory: an OMS v1.0 manifest of its files in a Sigstore bundle
    /// (default DIR/model.sig), verifiable by `modelspec verify-signature` and `model_signing`.
    Sign(SignArgs),
    /// Serve keys over the signing proxy protocol (PKCS#11 keys, or development key files
    /// labelled so) behind a bearer token: `--signer http://HOST:PORT` elsewhere.
    Serve(super::signer_serve::Args),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    Ed25519,
    P256,
}

#[derive(ClapArgs)]
pub struct KeygenArgs {
    /// ed25519 (the audit log's and the seed's algorithm) or p256 (what `model_signing` reads).
    #[arg(long, value_enum)]
    pub algorithm: AlgorithmArg,
    /// The private key file to create (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the public key (PEM) here.
    #[arg(long)]
    pub public: Option<PathBuf>,
}

#[derive(ClapArgs)]
pub struct PublicKeyArgs {
    /// `file:KEY.pem`, `pkcs11:…` (RFC 7512) or an `https://` signing proxy.
    #[arg(long, env = "MODELSPEC_SIGNER")]
    pub signer: String,
}

#[derive(ClapArgs)]
pub struct SignArgs {
    /// The model directory.
    pub dir: PathBuf,
    /// Who signs: `file:KEY.pem`, `pkcs11:…` (RFC 7512) or an `https://` signing proxy.
    #[arg(long, env = "MODELSPEC_SIGNER")]
    pub signer: String,
    /// Where to write the signature (default DIR/model.sig; never signed itself).
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// A path (relative to DIR) to leave out; repeatable. Git files at the root are always
    /// left out, as `model_signing` does.
    #[arg(long = "ignore-path")]
    pub ignore_paths: Vec<String>,
    /// The model's name in the manifest (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Keygen(a) => keygen(a),
        Command::Serve(a) => super::signer_serve::run(a),
        Command::PublicKey(a) => {
            let signer = ms_trust::signer::open_signer(&a.signer)?;
            print!("{}", signer.public_key().to_pem());
            eprintln!(
                "{} ({}, {:?})",
                signer.public_key().fingerprint(),
                signer.public_key().algorithm(),
                signer.kind()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign(a) => sign(a),
    }
}

fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    let alg = match a.algorithm {
        AlgorithmArg::Ed25519 => Algorithm::Ed25519,
        AlgorithmArg::P256 => Algorithm::EcdsaP256Sha256,
    };
    let signer = KeyFileSigner::generate(alg)?;
    signer.save_pkcs8_pem(&a.out)?;
    if let Some(p) = &a.public {
        ms_trust::keyfile::write_new_file(p, signer.public_key().to_pem().as_bytes(), 0o644)?;
    }
    println!("{}", signer.public_key().fingerprint());
    eprintln!(
        "wrote {} ({alg}, development only: never accepted for prod)",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The signature's path relative to `dir` when it lies inside it (so it is left out).
pub fn inside(dir: &std::path::Path, file: &std::path::Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let file = parent.canonicalize().ok()?.join(file.file_name()?);
    file.strip_prefix(&dir)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let signer = ms_trust::signer::open_signer(&a.signer)?;
    let signature = a
        .signature
        .unwrap_or_else(|| a.dir.join(oms::DEFAULT_SIGNATURE_FILE));
    // As `model_signing sign`: the git files and the signature itself (wherever it is written)
    // are left out, nothing else unless asked.
    let mut options = HashOptions {
        ignore_paths: a.ignore_paths,
        ignore_git_paths: true,
    };
    if let Some(rel) = inside(&a.dir, &signature) {
        options.ignore_paths.push(rel);
    }
    let resources = oms::hash_directory_with(&a.dir, &options)?;
    let name = match a.name {
        Some(n) => n,
        None => a
            .dir
            .canonicalize()
            .with_context(|| format!("reading {}", a.dir.display()))?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    let statement = oms::statement_with(&name, &resources, &options.all_ignored());
    let bundle = oms::sign(&statement, signer.as_ref())?;
    write_atomic(&signature, bundle.to_json().as_bytes())?;
    println!(
        "signed {} files of {name} with {} ({}): {}",
        resources.len(),
        signer.public_key().fingerprint(),
        signer.public_key().algorithm(),
        signature.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Replaces `path` atomically (a temporary file beside it, renamed over it).
fn write_atomic(path: &std::path::Path, content: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
