//! Whether a model version may be used in an environment: `verify_version` re-checks, on the
//! consumer's side and against the consumer's trust policy, what the registry checked when the
//! signature was attached (so a registry whose rows were edited is caught too). A version
//! passes when one of its signatures is by a key the policy allows for the environment (at the
//! time the signature was attached: a key past its `notAfter` keeps what it signed before), that
//! key is not revoked in the registry (a retired key's signatures made before its rotation
//! count), the signature verifies, and the signed manifest lists exactly the version's
//! artifacts. `modelspec run|serve` of a prod model and `modelspec verify-signature` call it.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::api::Registry;
use crate::codes;
use crate::digest::Digest;
use crate::entity::{KeyStatus, ManifestSignature, ModelVersion, SigningKey, VersionFile};
use crate::error::{ErrorKind, RegistryError, Result};
use crate::signing::bundle;

/// A version that passed: what was verified and by whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedVersion {
    pub version: ModelVersion,
    /// The OMS subject digest: `sha256:` of the concatenated raw digests of the files, in name
    /// order (what the signature covers).
    pub manifest_digest: Digest,
    /// `sha256:` of the DSSE envelope of the signature that passed.
    pub envelope_digest: String,
    /// The key's fingerprint and name.
    pub key_id: String,
    pub signer: String,
    pub signed_at: String,
    /// The files the signature covers: what a loader hashes before using them.
    pub files: Vec<VersionFile>,
}

/// The OMS subject digest of `files` (sorted by name).
pub fn manifest_digest(files: &[VersionFile]) -> Digest {
    let mut sorted: Vec<&VersionFile> = files.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for f in sorted {
        h.update(f.sha256.0);
    }
    Digest(h.finalize().into())
}

/// The files of `v` as its signatures must list them: each artifact's registered name and
/// digest, sorted by name.
pub async fn version_files(reg: &dyn Registry, v: &ModelVersion) -> Result<Vec<VersionFile>> {
    let mut out = Vec::with_capacity(v.artifact_ids.len());
    for id in &v.artifact_ids {
        let a = reg.artifact(id).await?;
        out.push(VersionFile {
            name: a.name,
            sha256: a.artifact_id,
        });
    }
    out.sort();
    Ok(out)
}

/// Why one signature did not pass, or `Ok` with it.
fn check_one(
    sig: &ManifestSignature,
    keys: &[SigningKey],
    under: Option<(&ms_trust::policy::TrustPolicy, &str)>,
    files: &[VersionFile],
) -> std::result::Result<(), (bool, String)> {
    let Some(key) = keys.iter().find(|k| k.key_id == sig.key_id) else {
        return Err((false, format!("key {} is not registered", sig.key_id)));
    };
    match key.status {
        KeyStatus::Active => {}
        KeyStatus::Retired
            if key
                .revoked_at
                .as_deref()
                .is_some_and(|r| sig.signed_at.as_str() <= r) => {}
        KeyStatus::Retired => {
            return Err((
                false,
                format!("key {} was retired before it signed", key.name),
            ));
        }
        KeyStatus::Revoked => {
            return Err((
                false,
                format!(
                    "key {} ({}) was revoked at {}: {}",
                    key.name,
                    key.key_id,
                    key.revoked_at.as_deref().unwrap_or("?"),
                    key.revoke_reason.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    let pk = ms_trust::PublicKey::from_pem(&key.public_key)
        .map_err(|e| (false, format!("key {}: {e}", key.key_id)))?;
    if pk.fingerprint() != key.key_id {
        return Err((false, format!("key {} does not hash to its id", key.key_id)));
    }
    // The policy is asked about the moment the registry attached the signature (its audit
    // log vouches for it), so a key rotated out by `notAfter` keeps what it signed before.
    let signed_at = chrono::DateTime::parse_from_rfc3339(&sig.signed_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| (false, format!("signedAt {:?}: {e}", sig.signed_at)))?;
    if let Some((policy, env)) = under
        && let Err(e) = policy.allows_at(&pk, env, signed_at)
    {
        return Err((true, format!("key {} ({}): {e}", key.name, key.key_id)));
    }
    let text = sig.bundle.to_string();
    let b = bundle::parse(&text).map_err(|e| (false, e.message))?;
    bundle::verify(&b, &pk, files).map_err(|e| (false, e.message))
}

/// Verifies version `selector` of `model` for `env` under `policy` (see the module's doc).
/// MG0808 lists why each signature failed; MG0809 when the only reasons were the policy's.
pub async fn verify_version(
    reg: &dyn Registry,
    model: &str,
    selector: &str,
    policy: &ms_trust::policy::TrustPolicy,
    env: &str,
) -> Result<VerifiedVersion> {
    verify_version_with(reg, model, selector, Some((policy, env))).await
}

/// [`verify_version`], or without a policy (`under` `None`): then any registered key that is
/// not revoked will do (the registry's own view, for `verify-signature` without `--policy`).
pub async fn verify_version_with(
    reg: &dyn Registry,
    model: &str,
    selector: &str,
    under: Option<(&ms_trust::policy::TrustPolicy, &str)>,
) -> Result<VerifiedVersion> {
    let version = reg.model_version(model, selector).await?;
    let at = version.version.to_string();
    let sigs = reg.signatures(model, &at).await?;
    let keys = reg.keys().await?;
    let files = version_files(reg, &version).await?;
    let mut reasons = Vec::new();
    let mut only_policy = true;
    for sig in &sigs {
        match check_one(sig, &keys, under, &files) {
            Ok(()) => {
                return Ok(VerifiedVersion {
                    manifest_digest: manifest_digest(&files),
                    envelope_digest: sig.envelope_digest.clone(),
                    key_id: sig.key_id.clone(),
                    signer: sig.signer_id.clone(),
                    signed_at: sig.signed_at.clone(),
                    files,
                    version,
                });
            }
            Err((policy_reason, why)) => {
                only_policy &= policy_reason;
                reasons.push(format!("signature {}: {why}", sig.envelope_digest));
            }
        }
    }
    let name = format!("{model}@{}", version.version);
    if sigs.is_empty() {
        return Err(RegistryError::new(
            ErrorKind::Forbidden,
            codes::MG0808,
            format!("{name} has no signature"),
        )
        .hint(format!("sign it: modelspec sign {name} --signer REF")));
    }
    let env = under.map(|(_, e)| e).unwrap_or("any environment");
    let code = if only_policy {
        codes::MG0809
    } else {
        codes::MG0808
    };
    Err(RegistryError::new(
        ErrorKind::Forbidden,
        code,
        format!(
            "no signature of {name} is valid for {env}: {}",
            reasons.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_digest_is_over_raw_digests_in_name_order() {
        let a = VersionFile {
            name: "a.gguf".into(),
            sha256: Digest::of(b"a"),
        };
        let b = VersionFile {
            name: "b.json".into(),
            sha256: Digest::of(b"b"),
        };
        let mut raw = a.sha256.0.to_vec();
        raw.extend_from_slice(&b.sha256.0);
        assert_eq!(manifest_digest(&[b.clone(), a.clone()]), Digest::of(&raw));
    }
}
