//! `modelspec sign MODEL@VERSION --signer REF|--bundle FILE` and the VERSION form of `modelspec
//! verify-signature`: a version's OMS manifest (its artifacts' names and sha256, as the
//! registry holds them) is signed here, through the signer (PKCS#11 token, signing proxy,
//! development key file: the registry never sees a private key), and attached to the version,
//! which the registry accepts only after verifying it. Verification re-checks every signature
//! on this side, under a trust policy for an environment when one is given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use ms_registry::entity::SignatureRequest;
use ms_registry::{ErrorKind, RegistryError};

use super::connect::{self, RegistryArgs, bad_value, emit, local_io};

#[derive(ClapArgs)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["signer", "bundle"])))]
pub struct SignArgs {
    /// MODEL@VERSION: a version number, a pointer (prod, staging, an alias) or a digest.
    pub model: String,
    /// The signer: pkcs11:… (RFC 7512 URI), http(s)://… (a signing proxy) or file:KEY.pem (a
    /// development key file).
    #[arg(long, value_name = "REF")]
    pub signer: Option<String>,
    /// Attach a bundle signed elsewhere instead (e.g. by `model_signing sign key` over a
    /// directory holding the version's artifacts under their registered names).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Also write the attached bundle here (for `model_signing verify key` or an archive).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How `verify-signature MODEL@VERSION` judges a version (its flags are verify_signature's).
#[derive(Clone)]
pub struct VerifyVersionArgs {
    /// A trust policy file: which keys may sign for which environment.
    pub policy: Option<PathBuf>,
    /// The environment the policy is asked about (prod, staging, …).
    pub env: Option<String>,
}

/// `NAME@SELECTOR` split, refused (MG0706) without both parts.
pub fn parse_target(option: &str, s: &str) -> Result<(String, String), RegistryError> {
    match s.rsplit_once('@') {
        Some((name, sel)) if !name.is_empty() && !sel.is_empty() => {
            Ok((name.to_string(), sel.to_string()))
        }
        _ => Err(bad_value(
            option,
            s,
            "MODEL@VERSION (a number, a pointer such as prod, or a sha256: digest)",
        )),
    }
}

fn trust_error(e: ms_trust::TrustError) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, e.code, e.message)
}

pub fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let json = a.registry.json;
    connect::run(&a.registry, |registry, _| async move {
        let (name, selector) = parse_target("MODEL@VERSION", &a.model)?;
        let version = registry.model_version(&name, &selector).await?;
        let (text, key_id) = match (&a.signer, &a.bundle) {
            (Some(reference), _) => {
                let files = ms_registry::trust::version_files(&*registry, &version).await?;
                let signer = ms_trust::signer::open_signer(reference).map_err(trust_error)?;
                let bundle =
                    ms_registry::signing::bundle::sign(&version.model_id, &files, &*signer)
                        .map_err(trust_error)?;
                (bundle.to_json(), Some(signer.public_key().fingerprint()))
            }
            (None, Some(path)) => (
                read_limited(
                    path,
                    ms_registry::signing::bundle::MAX_BUNDLE_BYTES,
                    "the bundle",
                )?,
                None,
            ),
            (None, None) => unreachable!("clap requires --signer or --bundle"),
        };
        let bundle: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            RegistryError::new(
                ErrorKind::Invalid,
                ms_registry::codes::MG0801,
                format!("the bundle is not JSON: {e}"),
            )
            .at("/bundle")
        })?;
        let req = SignatureRequest { bundle, key_id };
        if let Some(out) = &a.out {
            write_atomically(out, text.as_bytes())?;
        }
        let at = version.version.to_string();
        let attached = registry.sign_version(&name, &at, req).await?;
        let s = &attached.record;
        emit(json, &attached, || {
            format!(
                "{}@{}  signed by {} ({})  envelope {}{}",
                s.model_id,
                s.version,
                s.signer_id,
                s.key_id,
                s.envelope_digest,
                if attached.created {
                    ""
                } else {
                    "  (attached already)"
                }
            )
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `verify-signature MODEL@VERSION`: exit 0 when a signature passes, 1 when none does.
pub fn verify_version(
    target: &str,
    args: VerifyVersionArgs,
    registry_args: &RegistryArgs,
) -> anyhow::Result<ExitCode> {
    let json = registry_args.json;
    let target = target.to_string();
    connect::run(registry_args, |registry, _| async move {
        let (name, selector) = parse_target("MODEL@VERSION", &target)?;
        let policy = match &args.policy {
            Some(p) => Some(ms_trust::policy::TrustPolicy::load(p).map_err(trust_error)?),
            None => None,
        };
        let under = match (&policy, &args.env) {
            (Some(p), Some(env)) => Some((p, env.as_str())),
            _ => None,
        };
        let v =
            ms_registry::trust::verify_version_with(&*registry, &name, &selector, under).await?;
        emit(json, &v, || {
            let mut s = format!(
                "{}@{}: signature valid{}\nsigner     {} ({})\nsigned at  {}\nmanifest   {}\nenvelope   {}\n",
                v.version.model_id,
                v.version.version,
                args.env
                    .as_deref()
                    .map(|e| format!(" for {e} under the trust policy"))
                    .unwrap_or_else(|| " (registered, unrevoked key; no policy given)".into()),
                v.signer,
                v.key_id,
                v.signed_at,
                v.manifest_digest,
                v.envelope_digest,
            );
            for f in &v.files {
                s.push_str(&format!("file       {}  {}\n", f.sha256, f.name));
            }
            s
        });
        Ok(ExitCode::SUCCESS)
    })
}

/// `bytes` at `path` by a rename, so that a reader never sees half a bundle.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let tmp = path.with_extension("tmp-modelspec");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            local_io(path, "cannot write the bundle", e)
        })
}

/// A text file of at most `limit` bytes (a larger one, or `/dev/zero`, is refused unread).
pub fn read_limited(
    path: &std::path::Path,
    limit: usize,
    what: &str,
) -> Result<String, RegistryError> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit as u64 + 1).read_to_string(&mut text))
        .map_err(|e| local_io(path, &format!("cannot read {what}"), e))?;
    if text.len() > limit {
        return Err(local_io(
            path,
            &format!("cannot use {what}"),
            format!("it is larger than {limit} bytes"),
        ));
    }
    Ok(text)
}
