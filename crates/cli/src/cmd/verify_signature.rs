//! `modelspec verify-signature DIR|BUNDLE`: checks an OMS signature (ours or `model_signing`'s)
//! against a public key or a trust policy and, for a directory, every file against the signed
//! manifest. Exit 0 verified, 1 not (the message names the file or the key), 2 usage or I/O.
//! A `MODEL@VERSION` target is a registry version (verified by the registry's signatures).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use ms_trust::oms::{self, VerifiedManifest};
use ms_trust::policy::TrustPolicy;
use ms_trust::{Bundle, PublicKey, TrustError};

#[derive(ClapArgs)]
pub struct Args {
    /// A model directory, a signature bundle file, or MODEL@VERSION in the registry.
    pub target: String,
    /// The signature bundle of a directory (default DIR/model.sig).
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// The signer's public key (PEM); a directory or bundle needs it or --policy.
    #[arg(long, conflicts_with = "policy")]
    pub key: Option<PathBuf>,
    /// A trust policy: the signing key must be trusted for --env.
    #[arg(long, requires = "env")]
    pub policy: Option<PathBuf>,
    /// The environment the policy must trust the key for (prod, staging, …).
    #[arg(long, requires = "policy")]
    pub env: Option<String>,
    /// A path (relative to DIR) to leave out, besides those the signer left out; repeatable.
    #[arg(long = "ignore-path")]
    pub ignore_paths: Vec<String>,
    /// Where the registry is, for a MODEL@VERSION target.
    #[command(flatten)]
    pub registry: super::connect::RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = PathBuf::from(&args.target);
    if !target.exists() && args.target.contains('@') {
        return verify_version(&args);
    }
    anyhow::ensure!(
        args.key.is_some() || args.policy.is_some(),
        "verifying {} needs --key PEM or --policy FILE --env ENV",
        args.target
    );
    let (dir, bundle_path) = if target.is_dir() {
        let sig = args
            .signature
            .clone()
            .unwrap_or_else(|| target.join(oms::DEFAULT_SIGNATURE_FILE));
        (Some(target), sig)
    } else {
        (None, target)
    };
    let size = std::fs::metadata(&bundle_path)
        .with_context(|| format!("reading the signature {}", bundle_path.display()))?
        .len();
    anyhow::ensure!(
        size <= ms_trust::bundle::MAX_BYTES as u64,
        "{} is {size} bytes, larger than a signature bundle can be",
        bundle_path.display()
    );
    let text = std::fs::read(&bundle_path)
        .with_context(|| format!("reading the signature {}", bundle_path.display()))?;
    match check(&args, dir.as_deref(), &bundle_path, &text) {
        Ok((manifest, who)) => {
            let files = manifest.resources.len();
            match &dir {
                Some(d) => println!(
                    "verified: {} ({files} files) matches its signature by {who}; manifest {}",
                    d.display(),
                    manifest.manifest_digest
                ),
                None => {
                    println!(
                        "verified: the signature of {} ({files} files) by {who}; manifest {}",
                        manifest.model_name, manifest.manifest_digest
                    );
                    for r in &manifest.resources {
                        println!("{}  {}", r.digest_hex(), r.name);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("verification failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The verified manifest and who signed it (`name (fingerprint)` under a policy).
fn check(
    args: &Args,
    dir: Option<&Path>,
    bundle_path: &Path,
    text: &[u8],
) -> Result<(VerifiedManifest, String), TrustError> {
    let bundle = Bundle::from_json(text).map_err(|e| {
        TrustError::new(e.code, format!("{}: {}", bundle_path.display(), e.message))
    })?;
    let (key, who) = match (&args.key, &args.policy, &args.env) {
        (Some(path), _, _) => {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                TrustError::new(
                    ms_trust::codes::MT0001,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let key = PublicKey::from_pem(&pem)?;
            let who = key.fingerprint();
            (key, who)
        }
        (None, Some(policy), Some(env)) => {
            let policy = TrustPolicy::load(policy)?;
            let entry = policy.key_for_bundle(&bundle, env)?;
            let who = format!(
                "{} ({}), trusted for {env}",
                entry.name,
                entry.public_key.fingerprint()
            );
            (entry.public_key.clone(), who)
        }
        _ => unreachable!("run checks --key or --policy, clap --env with --policy"),
    };
    let manifest = oms::verify(&bundle, &key)?;
    if let Some(dir) = dir {
        let mut ignored = args.ignore_paths.clone();
        if let Some(rel) = super::signer::inside(dir, bundle_path) {
            ignored.push(rel);
        }
        manifest.verify_directory(dir, &ignored)?;
    }
    Ok((manifest, who))
}

/// `MODEL@VERSION`: a registry version's stored signatures, re-verified here
/// (`ms_registry::trust`), under the policy for `--env` when one is given.
fn verify_version(args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.key.is_none() && args.signature.is_none() && args.ignore_paths.is_empty(),
        "{}: a registry version is verified with its registered keys (and --policy FILE --env \
         ENV); --key, --signature and --ignore-path are for a directory or a bundle",
        args.target
    );
    let trust = super::sign::VerifyVersionArgs {
        policy: args.policy.clone(),
        env: args.env.clone(),
    };
    super::sign::verify_version(&args.target, trust, &args.registry)
}
