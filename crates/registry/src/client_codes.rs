//! MG07xx: errors a client finds before or around a request (locating the registry, local
//! files, command-line values), so that they read like the registry's own errors. The codes
//! catalog (`modelspec explain MG…`) includes [`TABLE`].

use crate::codes::CodeInfo;

/// `--registry` / `MODELSPEC_REGISTRY` is not a form we know.
pub const MG0701: &str = "MG0701";
/// `--store` / `MODELSPEC_STORE` is not a form we know.
pub const MG0702: &str = "MG0702";
/// The registry and the store do not go together.
pub const MG0703: &str = "MG0703";
/// No usable data directory or local path.
pub const MG0704: &str = "MG0704";
/// An artifact the spec declares is neither in the store nor found locally.
pub const MG0705: &str = "MG0705";
/// A command-line value is malformed.
pub const MG0706: &str = "MG0706";
/// A local file cannot be read or written.
pub const MG0707: &str = "MG0707";
/// Bytes read back do not match their digest.
pub const MG0708: &str = "MG0708";

/// Every MG07xx code with its documentation.
pub const TABLE: &[CodeInfo] = &[
    CodeInfo {
        code: MG0701,
        title: "unknown registry location",
        explanation: "`--registry` (or MODELSPEC_REGISTRY) names where the registry is: `http(s)://HOST[:PORT]` for a control plane started with `modelspec registry serve`, `sqlite://PATH` or `postgres://USER@HOST/DB` for a database used directly. The value given has another scheme, or no host or path. Leave it unset for the local registry under the data directory ($MODELSPEC_DATA_DIR, else $XDG_DATA_HOME/modelspec/registry, else ~/.local/share/modelspec/registry).",
    },
    CodeInfo {
        code: MG0702,
        title: "unknown blob store location",
        explanation: "`--store` (or MODELSPEC_STORE) names the artifact store beside an embedded database: `file://DIR` or a directory path for a local directory, `s3://BUCKET[/PREFIX]` for an S3-compatible store (endpoint and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for a plain-HTTP endpoint). The value given has another scheme, or no directory or bucket.",
    },
    CodeInfo {
        code: MG0703,
        title: "registry and store do not go together",
        explanation: "A PostgreSQL registry has no directory to keep blobs beside, so it needs `--store`; a remote registry (`http(s)://`) keeps its own store, so `--store` is refused rather than ignored. A SQLite registry without `--store` keeps its blobs in `blobs/` beside the database file.",
    },
    CodeInfo {
        code: MG0704,
        title: "no usable local directory",
        explanation: "The local registry lives in the data directory, and resumable uploads keep their state there. Neither MODELSPEC_DATA_DIR, XDG_DATA_HOME nor HOME gives one, or a path cannot be made absolute. Set MODELSPEC_DATA_DIR, or give `--registry`.",
    },
    CodeInfo {
        code: MG0705,
        title: "declared artifact not available",
        explanation: "Registering a model checks every artifact digest its spec declares against the store. This artifact is not in the store, and no `--artifact PATH` given and no file in the local model cache has its sha256. Fetch it first (`modelspec pull SPEC`), or pass the file with `--artifact PATH`; a file whose bytes differ from the declared sha256 is not the artifact the spec names.",
    },
    CodeInfo {
        code: MG0706,
        title: "malformed command-line value",
        explanation: "A value does not have the form the option takes: `--metric NAME=NUMBER`, `--transform CODEREF:sha256:HEX` (or `CODEREF:HEX`), `--parent NAME@VERSION`, `--dataset sha256:HEX`, a non-empty `--license`, a digest `sha256:` + 64 lowercase hex digits. The message names the option and the value.",
    },
    CodeInfo {
        code: MG0707,
        title: "local file cannot be read or written",
        explanation: "A file or directory named on the command line (an artifact to push, a dataset to register, a spec, the output of `artifact pull`) does not exist, is not the right kind of file, or cannot be read or written. The message names the path and the operating system's reason.",
    },
    CodeInfo {
        code: MG0708,
        title: "bytes do not match their digest",
        explanation: "`artifact pull` hashes the bytes as they arrive and keeps them only if they hash to the artifact's id; otherwise the temporary file is removed and nothing is written. The store's copy is damaged, or changed in transit: run `modelspec registry check` on the registry.",
    },
];
