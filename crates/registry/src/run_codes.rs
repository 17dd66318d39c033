//! MG11xx: what `modelspec run` and `modelspec serve` refuse of a registry model
//! (`registry://MODEL[@VERSION|POINTER]`) before anything is loaded: a malformed reference, a
//! `prod` version without a trust policy, a version without a GGUF artifact or whose artifact
//! the signature does not cover, and a file whose bytes are not the signed ones. The codes
//! catalog (`modelspec explain MG…`) includes [`TABLE`].

use crate::codes::CodeInfo;

/// `registry://…` is malformed.
pub const MG1101: &str = "MG1101";
/// A `prod` version is run without a trust policy.
pub const MG1102: &str = "MG1102";
/// The version has no GGUF artifact to load.
pub const MG1103: &str = "MG1103";
/// The artifact to load is not among the signed resources.
pub const MG1104: &str = "MG1104";
/// A file to load does not hash to its signed (or registered) digest.
pub const MG1105: &str = "MG1105";

/// Every MG11xx code with its documentation.
pub const TABLE: &[CodeInfo] = &[
    CodeInfo {
        code: MG1101,
        title: "malformed registry model reference",
        explanation: "`modelspec run` and `modelspec serve` take a registry model as `registry://MODEL`, `registry://MODEL@VERSION` (a number), `registry://MODEL@POINTER` (`prod`, `staging`, an alias, `latest`) or `registry://MODEL@sha256:HEX` (the version's digest). The model id is the ModelSpec's `metadata.name` (`[a-z0-9][a-z0-9._-]{0,127}`). Without `@…` the latest version runs. The registry itself is `--registry` (MODELSPEC_REGISTRY), as for the other registry commands.",
    },
    CodeInfo {
        code: MG1102,
        title: "a prod version needs a trust policy",
        explanation: "A version whose status is `prod` is only loaded after its signature is checked against a trust policy (which keys may sign for `prod`). Give the policy file with `--policy FILE` (or MODELSPEC_TRUST_POLICY). Nothing was fetched or loaded.",
    },
    CodeInfo {
        code: MG1103,
        title: "no GGUF artifact in the version",
        explanation: "The version has no artifact that is a GGUF file (media type `application/x-gguf` or a name ending in `.gguf`), so there are no weights to run. Register a version whose ModelSpec declares its GGUF weights artifact.",
    },
    CodeInfo {
        code: MG1104,
        title: "the artifact to load is not signed",
        explanation: "The version's signature was checked, but its signed resources (name and sha256 of each file) do not include the GGUF artifact that would be loaded, so loading it would run bytes nobody signed. The version's artifacts and its signed manifest disagree: sign the version again (`modelspec sign MODEL@VERSION`) and investigate how they came apart.",
    },
    CodeInfo {
        code: MG1105,
        title: "a file to load is not the signed one",
        explanation: "Just before loading, every file to be loaded is hashed again and compared with its sha256 in the signed manifest (for a version that is not verified: the registry's own digest of the artifact). The file named in the message hashes to something else: a byte was changed after it was fetched from the registry. Nothing was loaded. The same code refuses a file that changed while it was hashed or loaded (its device, inode, size or modification time moved): it was replaced or written in between. Delete the file (it is fetched again from the registry on the next run) and find out who changed it; the local cache should be writable by its owner only.",
    },
];
