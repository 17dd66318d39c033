//! The registry's error and finding codes (`MG` + 4 digits) with their documentation, read by
//! `modelspec explain MG…`. Ranges: MG00xx request and database, MG01xx artifacts and the blob
//! store (`blob::codes`), MG02xx models, MG03xx datasets and lineage, MG04xx authentication,
//! MG05xx the HTTP layer, MG06xx `registry check` findings, MG07xx the CLI, MG08xx signatures
//! and signing keys, MG09xx provenance (records, their signatures, the links `modelspec
//! provenance` verifies), MG10xx the verifiable audit log (`log::codes`).

/// One documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: &'static str,
    pub title: &'static str,
    pub explanation: &'static str,
}

macro_rules! codes {
    ($( $id:ident $title:literal $text:literal ;)*) => {
        $( #[doc = $title] pub const $id: &str = stringify!($id); )*
        /// The codes defined here, in code order.
        pub const TABLE: &[CodeInfo] = &[ $( CodeInfo {
            code: stringify!($id),
            title: $title,
            explanation: $text,
        }, )* ];
    };
}

codes! {
    MG0001 "The registry's database failed or cannot be reached."
    "Opening or querying the metadata database failed. The message says how (connection refused, disk full, locked). Check --db / MODELSPEC_REGISTRY (sqlite://PATH or postgres://USER@HOST:PORT/DB) and that the server is up; a busy SQLite database is retried before this error is given.";
    MG0002 "The database was migrated by a different build."
    "A schema migration recorded in `schema_migrations` has a checksum that differs from this binary's migration of the same version: someone edited a shipped migration, or a development build migrated this database. The registry refuses to guess; use the build that migrated it.";
    MG0003 "The database is newer than this binary."
    "The database has schema versions this modelspec does not know: a newer release migrated it. Use that release or a newer one; an older binary never writes to a newer schema.";
    MG0009 "A stored record cannot be read back."
    "A row of the database does not parse (a digest, a JSON column, a status). This is damage or a defect; run `modelspec registry check`.";
    MG0010 "An artifact name is not allowed."
    "Artifact names are file names: 1 to 255 bytes, no `/`, `\\`, NUL or control characters, not `.` or `..`. Pass the file's base name.";
    MG0015 "No such artifact."
    "No artifact with this digest is registered. Upload it with `modelspec artifact push FILE`.";
    MG0201 "The spec is not a valid ModelSpec."
    "Registration parses and validates the spec with the same rules as `modelspec validate`; the message gives the first error with its line, column and JSON pointer. Fix the spec and register again.";
    MG0202 "The model id is not allowed."
    "The model id is the spec's `metadata.name` and must match `[a-z0-9][a-z0-9._-]{0,127}` (it appears in URLs and lineage ids unescaped). Rename the model in the spec.";
    MG0203 "A declared artifact is not in the store."
    "Every artifact digest the spec declares (`spec.identity.model.artifacts[].sha256`) and every `artifactIds` entry must be uploaded before the version is registered, so that a version never points at bytes the registry does not hold. Push it with `modelspec artifact push FILE`, or register with `--artifact PATH`.";
    MG0204 "No such model."
    "No model with this id is registered. `modelspec model list` shows the registered models.";
    MG0205 "No such model version."
    "The model exists but the selector (a version number, a pointer such as prod, `latest`, or a sha256: digest) does not name one of its versions.";
    MG0206 "A pointer name is not allowed."
    "Pointers are `staging`, `prod`, or aliases matching `[a-z][a-z0-9-]{0,62}`; `latest` is reserved (it always means the newest version).";
    MG0207 "A parent model reference is wrong or unknown."
    "`lineage.parentModels` entries are `name@version` of registered versions. Register the parent first or fix the reference.";
    MG0209 "A field of the registration is not allowed."
    "codeRef, metrics (finite numbers with names up to 128 bytes) or the promotion reason is malformed; the pointer says which.";
    MG0210 "A listing query is malformed."
    "`limit` must be 1..=1000, `q` at most 256 bytes, and `page_token` exactly as a previous page returned it.";
    MG0211 "The pointer is at that version already."
    "Promoting a pointer to the version it already names changes nothing and is refused, so that the history only holds real moves.";
    MG0301 "A dataset's file list is malformed."
    "Manifest paths are relative, `/`-separated, without empty, `.` or `..` components, NUL or backslashes, at most 4096 bytes; a dataset has at least one file and at most 1,000,000.";
    MG0302 "A dataset lists a file twice."
    "Each path appears once in a manifest. Remove the duplicate.";
    MG0303 "No such dataset."
    "No dataset with this datasetId is registered. `modelspec dataset register PATH --license SPDX` registers one and prints its id.";
    MG0304 "The license is not an SPDX identifier or expression."
    "Give an SPDX license id (`CC-BY-4.0`, `Apache-2.0`), an expression (`MIT OR Apache-2.0`), or `LicenseRef-…` for your own.";
    MG0305 "A dataset source is neither a URI nor a dataset id."
    "`sourceRefs` entries are URIs with a scheme (https://, s3://, hf://…) or `sha256:` ids of registered datasets.";
    MG0306 "A lineage query is too deep."
    "Lineage queries walk at most 32 levels; ask for a smaller depth.";
    MG0307 "A referenced dataset is not registered."
    "A model's `lineage.datasetRefs` or a dataset's `sourceRefs` names a dataset id the registry does not have. Register that dataset first.";
    MG0308 "A dataset directory contains a symbolic link."
    "Links are refused: following them would digest files outside the dataset or loop. Copy the target in or remove the link.";
    MG0309 "A dataset file cannot be read."
    "Reading a file to digest it failed (permissions, a vanished file). The message names the file.";
    MG0310 "A dataset name is not allowed."
    "Dataset names are 1 to 128 letters, digits, `.`, `_` and `-`, starting with a letter or digit.";
    MG0311 "A PII flag is not allowed."
    "PII flags are lower-case words (letters, digits, `_`, `-`), up to 64 bytes: `email`, `names`, `health`.";
    MG0312 "A transformation is malformed."
    "Each transformation needs a non-empty `codeRef` (where the code is, pinned to a commit) and a `checksum` (sha256: of that code).";
    MG0401 "Not authenticated."
    "The call needs a bearer token and none, a malformed one or an unknown one was given. Pass `--token` or set MODELSPEC_REGISTRY_TOKEN; an admin creates tokens with `modelspec registry token create NAME --role ROLE`.";
    MG0402 "The token was revoked."
    "The token was revoked by an admin and no longer authenticates. Ask for a new one.";
    MG0403 "The role does not allow the call."
    "Roles nest: reader < writer (uploads, registrations) < approver (promotion) < admin (tokens, check). Use a token with the role the message names.";
    MG0404 "No such token."
    "No token has this id. `modelspec registry token list` shows token ids (never secrets).";
    MG0405 "A token name is not allowed."
    "Token names become `createdBy` of what their holder does: 1 to 128 letters, digits, `.`, `_`, `-`, `@`, not starting with `os:` (reserved for OS users of the embedded registry).";
    MG0601 "An artifact's blob is missing."
    "The database lists an artifact whose bytes are not in the blob store (deleted or never completed). Push the file again with `modelspec artifact push FILE`; its digest brings it back.";
    MG0602 "A blob's bytes or size are wrong."
    "A blob re-hashes to another digest, or its size differs from the artifact row: the store is damaged. Push the original file again.";
    MG0603 "A version references an artifact that is not registered."
    "A model version lists an artifact id with no artifact row: the database was damaged or edited by hand.";
    MG0604 "A reference to a dataset does not resolve."
    "A model version's datasetRefs, a dataset source or a lineage edge names a dataset that does not exist.";
    MG0605 "A parent model reference does not resolve."
    "A lineage edge or a version's parentModels names a model version that does not exist.";
    MG0606 "A pointer names a version that does not exist."
    "An environment pointer or alias points at a missing version.";
    MG0607 "The audit log has a gap."
    "Audit sequence numbers must run 1, 2, 3… without gaps; a missing number means an event was deleted.";
    MG0608 "An audit event's digest does not recompute."
    "The stored digest of an audit event differs from the sha256 of its canonical JSON: the event was edited after it was written.";
    MG0609 "A record is half-written."
    "A model without its versions, a latest_version that disagrees with its versions, a dataset whose file rows do not match its count, or a version whose artifact rows disagree with its list. Writes are transactional, so this means damage or manual edits.";
    MG0801 "A signature bundle cannot be read."
    "The body's `bundle` is not a Sigstore bundle v0.3 (JSON) with a DSSE envelope of an in-toto statement with predicateType `https://model_signing/signature/v1.0`, or it is larger than 1 MiB. Make it with `modelspec sign MODEL@VERSION --signer REF` or `model_signing sign key`.";
    MG0802 "No such signing key."
    "The key id (`sha256:` of the public key's SubjectPublicKeyInfo DER) is not registered, or the bundle's key hint names no registered key. An admin registers keys with `modelspec key add NAME --public-key PEM --env prod`; `modelspec key list` shows them.";
    MG0803 "The signing key is revoked or retired."
    "A revoked key's signatures are never valid; a retired key (replaced by `modelspec key rotate`) signs nothing new, its earlier signatures stay valid. Sign with an active key.";
    MG0804 "The signature does not verify."
    "The bundle's DSSE signature was not made by the named key over this envelope, or the envelope is not an OMS manifest: the content was changed after signing, or another key signed it.";
    MG0805 "The signed manifest does not match the version's artifacts."
    "An OMS manifest lists files by name and sha256; a version's signature must list exactly the version's artifacts (their registered names and digests). The message names the file that differs, is missing or is extra. Sign the version itself: `modelspec sign MODEL@VERSION --signer REF`.";
    MG0806 "A signing key's field is not allowed."
    "`publicKey` must be a PEM `PUBLIC KEY` of an Ed25519 or ECDSA P-256 key (at most 16 KiB); `name` 1 to 128 letters, digits, `.`, `_`, `-`, `@`; `environments` 1 to 16 names of `[a-z][a-z0-9-]{0,62}`; a revocation `reason` 1 to 4096 bytes. The pointer names the field.";
    MG0807 "The key is registered already."
    "A public key is registered once: adding it again with the same name and environments finds the existing record, anything else (another name, other environments, a revoked or retired key) is refused. A revoked key never comes back; register a new key.";
    MG0808 "The version has no valid signature."
    "No signature attached to the version verifies: none was attached (`modelspec sign MODEL@VERSION --signer REF`), or every one is by a revoked key, a key the trust policy does not allow for the environment, or does not match the artifacts. The message lists why each was refused.";
    MG0809 "The trust policy does not allow the key."
    "The trust policy (`--policy FILE`) does not list the signing key's fingerprint for this environment, or its `notAfter` has passed, or the key is development-only and the environment is prod. Add the key to the policy for that environment, or sign with a key it allows.";
    MG0810 "A stored signature does not verify (registry check)."
    "`registry check` re-verifies every attached signature: its key must be registered, the bundle must verify with it, list exactly its version's artifacts and have the stored envelope digest. A failure means the row or the version's artifacts were edited after the signature was attached. Consumers re-verify (`verify-signature`), so such a signature is never trusted; remove the row or sign again.";
    MG0811 "A signing key's record is damaged (registry check)."
    "The stored public key of a signing key cannot be read, or its fingerprint is not the key id the row says: the row was edited. Signatures by it will not verify; restore the record or revoke the key and register the right one.";
    MG0901 "No provenance record for this subject."
    "Every model version and dataset gets its provenance statement in the transaction that registers it. A subject without one was registered before the registry wrote provenance, or its record was deleted (the registration's audit event still names the statement's digest in `details.provenance`).";
    MG0902 "A provenance subject is malformed."
    "Subjects are `model:NAME@VERSION` (or `NAME@VERSION`, `NAME@prod`, an alias, `latest`) and `dataset:sha256:<64 hex>` (or the bare dataset id).";
    MG0903 "A provenance bundle cannot be read."
    "The body must be `{\"bundle\": …}` with a Sigstore bundle v0.3 whose DSSE envelope (payloadType `application/vnd.in-toto+json`) carries the record's statement. Make it with `modelspec provenance sign SUBJECT --signer REF`.";
    MG0904 "The bundle signs another statement."
    "The envelope's payload is not byte for byte the statement the registry stored for this subject: it was made for another subject, from an edited copy, or the stored statement changed. Fetch the statement again (`GET /provenance/{subject}`) and sign exactly its bytes.";
    MG0905 "The signing key is not registered or was revoked."
    "A provenance signature is accepted only from a key the registry knows (`signing_keys`) and has not revoked. An admin registers keys with `modelspec key add`; sign with a registered key.";
    MG0906 "A provenance signature does not verify."
    "The DSSE signature over the statement does not verify with the key it names: the bundle was altered or made with another key.";
    MG0907 "A provenance statement was changed."
    "The stored statement's bytes no longer hash to the digest recorded with it. The record was edited after registration; the registration's audit event (`details.provenance`) holds the digest it had.";
    MG0908 "A statement does not describe its record."
    "The statement is not an in-toto Statement v1 with an SLSA Provenance v1 predicate, or its first subject is not this record (name, or digest: the version's manifest digest, the dataset's id). The record or the statement was changed.";
    MG0909 "A dependency does not resolve."
    "A `resolvedDependencies` entry (a dataset or a parent model version) or a subject artifact is not in the registry, or its digest now differs from the one the statement recorded: what the link was built from has changed or gone.";
    MG0910 "A link of the chain is unsigned."
    "The record has no signature bundle. Sign it with `modelspec provenance sign SUBJECT --signer REF`; until then the link is only as good as the registry's database and audit log.";
    MG0911 "A statement's digest differs from its audit event."
    "The registration's audit event records the statement digest in `details.provenance`; the stored record has another, or the event is not the registration of this subject. Someone edited the record (and possibly its digest) after the fact.";
    MG0912 "The signing key is not trusted."
    "The link is signed, but by a key that is not among the trusted ones (`--key`, the `--policy` file's keys for `--env`, or the registry's registered keys). Trust the key or sign with a trusted one.";
    MG0913 "The signer failed."
    "Signing a provenance statement client-side failed in the signer (a PKCS#11 token, a signing proxy, a key file); the message carries the signer's own `MT` code and reason (`modelspec explain MT…`).";
}

/// Every MG code of the registry: this table, the blob store's and the HTTP layer's, in code
/// order.
pub fn all() -> Vec<CodeInfo> {
    let mut out: Vec<CodeInfo> = TABLE.to_vec();
    out.extend(
        crate::blob::codes::TABLE
            .iter()
            .map(|&(code, title, explanation)| CodeInfo {
                code,
                title,
                explanation,
            }),
    );
    out.extend_from_slice(crate::remote::codes::TABLE);
    out.extend_from_slice(crate::run_codes::TABLE);
    out.extend_from_slice(crate::log::codes::TABLE);
    out.sort_by_key(|c| c.code);
    out
}

/// The documentation of one code.
pub fn lookup(code: &str) -> Option<CodeInfo> {
    all().into_iter().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let all = all();
        let mut seen = std::collections::BTreeSet::new();
        for c in &all {
            assert!(c.code.len() == 6 && c.code.starts_with("MG"), "{}", c.code);
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(!c.title.is_empty() && !c.explanation.is_empty());
        }
        assert!(lookup("MG0203").is_some());
        assert!(lookup("MG0104").is_some(), "the blob store's codes are in");
    }
}
