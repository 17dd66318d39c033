//! The registry's one use of ms-trust's OMS code: read a Sigstore bundle, verify it with a
//! public key, and compare the files it signs with a version's artifacts, each failure as the
//! registry error (MG0801, MG0804, MG0805) that says what differs.

use ms_trust::Bundle;
use ms_trust::PublicKey;
use ms_trust::oms::{self, Resource};

use super::types::VersionFile;
use crate::codes;
use crate::error::{ErrorKind, RegistryError, Result};

/// Largest bundle accepted (an OMS manifest of a few thousand files fits many times over).
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// A bundle from its JSON text.
pub fn parse(text: &str) -> Result<Bundle> {
    if text.len() > MAX_BUNDLE_BYTES {
        return Err(RegistryError::new(
            ErrorKind::TooLarge,
            codes::MG0801,
            format!(
                "the bundle is {} bytes, above {MAX_BUNDLE_BYTES}",
                text.len()
            ),
        )
        .at("/bundle"));
    }
    Bundle::from_json(text.as_bytes()).map_err(|e| {
        RegistryError::new(
            ErrorKind::Invalid,
            codes::MG0801,
            format!("the signature bundle cannot be read: {e}"),
        )
        .at("/bundle")
        .hint(
            "make it with `modelspec sign MODEL@VERSION --signer REF` or `model_signing sign key`",
        )
    })
}

/// What the bundle says about its key (`verificationMaterial.publicKey.hint`), if anything.
pub fn key_hint(b: &Bundle) -> Option<String> {
    b.key_hint().map(|h| h.to_string())
}

/// `sha256:` of the DSSE envelope as the bundle carries it.
pub fn envelope_digest(b: &Bundle) -> String {
    b.envelope_digest()
}

/// The version's files as OMS resources.
pub fn resources(files: &[VersionFile]) -> Vec<Resource> {
    files
        .iter()
        .map(|f| Resource {
            name: f.name.clone(),
            digest: f.sha256.0,
        })
        .collect()
}

/// Checks the signature with `key` only (MG0804 when it does not verify).
pub fn check_signature(b: &Bundle, key: &PublicKey) -> Result<oms::VerifiedManifest> {
    oms::verify(b, key).map_err(|e| {
        RegistryError::new(
            ErrorKind::Integrity,
            codes::MG0804,
            format!(
                "the bundle does not verify with key {}: {e}",
                key.fingerprint()
            ),
        )
        .at("/bundle")
    })
}

/// Checks the signature with `key` and that the manifest lists exactly `files`.
pub fn verify(b: &Bundle, key: &PublicKey, files: &[VersionFile]) -> Result<()> {
    let manifest = check_signature(b, key)?;
    manifest.compare(&resources(files)).map_err(|e| {
        RegistryError::new(
            ErrorKind::Integrity,
            codes::MG0805,
            format!("the signed manifest does not match the version's artifacts: {e}"),
        )
        .at("/bundle")
        .hint("sign the version's own artifacts: `modelspec sign MODEL@VERSION --signer REF`")
    })
}

/// A bundle for `files` of model `model_name`, signed by `signer` (the CLI's side).
pub fn sign(
    model_name: &str,
    files: &[VersionFile],
    signer: &dyn ms_trust::Signer,
) -> std::result::Result<Bundle, ms_trust::TrustError> {
    let statement = oms::statement(model_name, &resources(files));
    oms::sign(&statement, signer)
}
