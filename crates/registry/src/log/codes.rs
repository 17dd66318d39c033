//! The verifiable audit log's codes (`MG10xx`): what the log refuses to serve or sign, and
//! what `modelspec audit verify` finds. The catalog of every `MG` code concatenates [`TABLE`].

use crate::codes::CodeInfo;

macro_rules! codes {
    ($( $(#[$doc:meta])* $id:ident = $code:literal $title:literal $text:literal ;)*) => {
        $( $(#[$doc])* pub const $id: &str = $code; )*
        /// Every audit-log code with its explanation, in code order.
        pub const TABLE: &[CodeInfo] = &[ $( CodeInfo {
            code: $code,
            title: $title,
            explanation: $text,
        }, )* ];
    };
}

codes! {
    /// No log key: checkpoints cannot be signed.
    NO_LOG_SIGNER = "MG1001" "The registry has no log key to sign checkpoints with."
    "Checkpoints of the audit log are signed notes; the registry signs them through a Signer (`registry serve --log-signer REF` or MODELSPEC_LOG_SIGNER: a PKCS#11 URI, a signing proxy URL, or a key file for development). A local registry opened by the CLI uses a development key file in its data directory; a PostgreSQL registry needs the option.";
    /// The log key is not Ed25519.
    BAD_LOG_SIGNER = "MG1002" "The log key cannot sign checkpoints."
    "C2SP signed notes are Ed25519: the log signer must hold an Ed25519 key. The message says what the signer holds or why it failed.";
    /// The stored tree disagrees with a checkpoint the log signed.
    INCONSISTENT = "MG1003" "The stored log disagrees with a checkpoint it signed: refusing to sign."
    "Before signing a checkpoint the registry proves the current tree consistent with the newest checkpoint it signed. That proof failed, or the stored checkpoint no longer verifies with the log key: the audit tables were changed behind the registry's back. The log never signs two inconsistent trees; run `modelspec audit verify` to find the changed entries, and restore the database from a backup.";
    /// A tile path that is malformed or beyond the tree.
    BAD_TILE = "MG1004" "No such tile."
    "Tiles are `tile/<L>/<N>[.p/<W>]` (hashes) and `tile/entries/<N>[.p/<W>]` (events), N in 3-digit groups with `x` prefixes (C2SP tlog-tiles). A full tile exists once the tree has its 256 entries; until then ask for the partial width the checkpoint's size gives.";
    /// A sequence number or tree size outside the log.
    BAD_RANGE = "MG1005" "The sequence number or tree size is outside the log."
    "Events are numbered from 1 to the log's size; consistency proofs need 1 <= from <= to <= size of the newest checkpoint. GET /audit/checkpoint gives the size.";
    /// A cosignature from no configured witness, or one that does not verify.
    BAD_COSIGNATURE = "MG1006" "The cosignature is not from a configured witness, or does not verify."
    "Cosignatures (C2SP tlog-cosignature) are accepted only from the witnesses the registry was given (`registry serve --witness VKEY`), for a checkpoint the log signed, with a valid Ed25519 signature over `cosignature/v1`, the time and the checkpoint body.";
    /// An event too large for an entries tile.
    ENTRY_TOO_LARGE = "MG1007" "An audit event is too large for the log."
    "Entries tiles prefix each entry with a 16-bit length: an event's canonical JSON must be at most 65535 bytes. Shorten the details of the change (names, reasons).";
    /// The stored hashes cannot be read or computed.
    BROKEN_TREE = "MG1008" "The log's stored hashes are missing or unreadable."
    "A stored hash of the Merkle tree is missing or is not 64 hex digits: the audit tables were damaged. `modelspec audit verify` names what changed.";
    /// `audit verify` found the log tampered with.
    TAMPERED = "MG1010" "The audit log does not verify."
    "`modelspec audit verify` recomputed the log from its tiles and found a difference with the signed checkpoint, the kept state or a witness: an entry changed, removed, reordered, the log truncated or forked, or a bad signature. The report names the entry and what happened; the registry's database was changed outside the registry.";
    /// The verifier's kept state cannot be read or written.
    BAD_STATE = "MG1011" "The audit verifier's kept state cannot be used."
    "`modelspec audit verify` keeps the last verified checkpoint and the full tiles it saw under --state DIR (default: the data directory's audit-state/), one directory per log origin. The message says which file failed; a damaged state file is never overwritten silently: move it away to start over (you lose the protection it gave against rollback).";
    /// A witness refused or could not be reached.
    WITNESS_FAILED = "MG1012" "A witness refused the checkpoint or could not be reached."
    "`modelspec audit checkpoint --witness URL` sends the newest checkpoint with a consistency proof to each witness (C2SP tlog-witness add-checkpoint). A 409 answer is retried once with the size the witness holds; other refusals (403 unknown log, 422 inconsistent) are reported with the witness's answer.";
    /// `audit verify` has no key to trust.
    NO_TRUSTED_KEY = "MG1013" "No log key to trust."
    "`modelspec audit verify` checks the checkpoint's signature against a key you trust, never one the log hands out: give --log-key (the registry's operator prints it with `modelspec audit checkpoint`) or --policy with `log: {origin, key}`. A local registry trusts its own log key.";
}
