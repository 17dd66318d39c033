//! The blob store's `MG01xx` codes: errors (from MG0100) and `check()` findings
//! (from MG0150). The registry's catalog concatenates [`TABLE`] so that
//! `modelspec explain MG01nn` documents each.

pub const MG0100: &str = "MG0100";
pub const MG0101: &str = "MG0101";
pub const MG0102: &str = "MG0102";
pub const MG0103: &str = "MG0103";
pub const MG0104: &str = "MG0104";
pub const MG0105: &str = "MG0105";
pub const MG0106: &str = "MG0106";
pub const MG0107: &str = "MG0107";
pub const MG0108: &str = "MG0108";
pub const MG0109: &str = "MG0109";
pub const MG0110: &str = "MG0110";
pub const MG0111: &str = "MG0111";
pub const MG0112: &str = "MG0112";
pub const MG0113: &str = "MG0113";
pub const MG0114: &str = "MG0114";
pub const MG0115: &str = "MG0115";
pub const MG0116: &str = "MG0116";
pub const MG0150: &str = "MG0150";
pub const MG0151: &str = "MG0151";
pub const MG0152: &str = "MG0152";
pub const MG0153: &str = "MG0153";
pub const MG0154: &str = "MG0154";
pub const MG0155: &str = "MG0155";

/// (code, title, explanation and fix) for every blob-store code.
pub const TABLE: &[(&str, &str, &str)] = &[
    (
        MG0100,
        "invalid blob store URL",
        "The store location is neither `file:///absolute/dir`, an absolute or relative \
         directory path, nor `s3://bucket/prefix`. Fix: give one of those forms with \
         `--store` or MODELSPEC_STORE.",
    ),
    (
        MG0101,
        "S3 store not configured",
        "An `s3://` store needs a region (AWS_REGION or AWS_DEFAULT_REGION), credentials \
         (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and, for a server other than AWS, an \
         endpoint (AWS_ENDPOINT_URL); plain `http://` endpoints need AWS_ALLOW_HTTP=true. \
         Fix: set the missing variables (the message names them).",
    ),
    (
        MG0102,
        "invalid upload id",
        "Upload ids are 32 lowercase hex digits, as `start_upload` returned them; anything \
         else (including path separators or `..`) is refused before the store is touched. \
         Fix: use the id the start of the upload returned.",
    ),
    (
        MG0103,
        "upload session not found",
        "No upload session has this id: it was finished, cancelled, garbage-collected or never \
         started. Fix: start a new upload.",
    ),
    (
        MG0104,
        "upload offset conflict",
        "A chunk must start at the session's current offset (the bytes durably stored so \
         far); the message names it. A chunk interrupted in transit is discarded as a whole \
         (or from its last stored part), so a client resumes by asking the status and sending \
         from the reported offset.",
    ),
    (
        MG0105,
        "blob too large",
        "The declared size, or the bytes streamed, exceed the store's maximum blob size. A \
         declared size is refused before any byte is read. Fix: raise the store's limit or \
         split the artifact.",
    ),
    (
        MG0106,
        "digest mismatch",
        "The uploaded bytes do not hash to the expected digest: nothing was stored. Fix: \
         check that the file is the one the digest was computed from (a truncated or \
         modified copy), then upload again.",
    ),
    (
        MG0107,
        "size mismatch",
        "The upload declared a size and a different number of bytes arrived (or, for an \
         existing blob, the declared size is not the blob's): nothing was stored. Fix: \
         declare the file's real size, or resend it whole.",
    ),
    (
        MG0108,
        "blob not found",
        "No blob with this digest is in the store. Fix: upload it first (`modelspec artifact \
         push`).",
    ),
    (
        MG0109,
        "range not satisfiable",
        "The requested byte range starts at or beyond the end of the blob, or ends before it \
         starts. Fix: ask for a range within the blob's size.",
    ),
    (
        MG0110,
        "stored blob is damaged",
        "Bytes read from the store do not match the blob's digest (or its chunk index): the \
         stored copy was modified or corrupted. The read fails instead of returning them. Fix: \
         run `modelspec registry check`, then upload the artifact again from a good copy.",
    ),
    (
        MG0111,
        "chunk index missing or damaged",
        "A ranged read needs the blob's chunk index (`<blob>.chunks`, written before the blob \
         became visible) and it is missing or unreadable. Fix: run `modelspec registry check`; \
         uploading the artifact again rewrites the index.",
    ),
    (
        MG0112,
        "blob store unavailable",
        "The store's directory or S3 server failed an operation (permissions, disk full, \
         network, credentials refused). The message says which operation and where. Fix: the \
         cause it names, then retry; completed uploads are not affected.",
    ),
    (
        MG0113,
        "upload busy",
        "Another chunk is being appended to this upload session right now. One writer per \
         session: wait for it, or ask the status and continue from its offset.",
    ),
    (
        MG0114,
        "invalid blob store option",
        "A blob store option is out of range (e.g. an S3 part size below 5 MiB, a chunk size \
         of zero). The message names the option and the allowed range.",
    ),
    (
        MG0115,
        "upload stream interrupted",
        "Reading the uploaded bytes failed before their end (the client went away, a network \
         error). What was durably stored before stays; the session's offset says where to \
         resume.",
    ),
    (
        MG0116,
        "chunk index of an unknown format",
        "A blob's chunk index (`<blob>.chunks`) declares a format version or algorithm this \
         store does not read (it reads version 2, `sha256-midstate`: the SHA-256 chaining \
         values at the chunk boundaries); the message names both. Ranged reads of the blob are \
         refused, full reads still verify. Fix: delete the blob and its `.chunks` file from the \
         store, then upload the artifact again with this version of modelspec.",
    ),
    (
        MG0150,
        "blob does not match its digest",
        "`check` re-hashed a stored blob and got another digest or size: the file was changed \
         or damaged on disk. Fix: delete it from the store and upload the artifact again.",
    ),
    (
        MG0151,
        "blob without chunk index",
        "A blob has no `<blob>.chunks` index, so ranged reads of it cannot be verified. Fix: \
         upload the artifact again (the store rewrites the index), or restore the file.",
    ),
    (
        MG0152,
        "chunk index does not match its blob",
        "The blob's `.chunks` index is unreadable or its chunk states do not match the \
         blob's bytes. Fix: upload the artifact again.",
    ),
    (
        MG0153,
        "stray file in the blob store",
        "A file under `blobs/` is not a blob (its name is not its digest) or not where its \
         digest says. Nothing of ours writes it there. Fix: move it out of the store.",
    ),
    (
        MG0154,
        "abandoned upload",
        "An upload session or a temporary upload file is older than the store's upload time \
         limit: its writer is gone. It is invisible to readers. Fix: delete it (`uploads/<id>` \
         under the store's directory or prefix); the store's upload garbage collection \
         (`gc_uploads`) does this, aborting S3 multipart uploads too.",
    ),
    (
        MG0155,
        "chunk index without blob",
        "A `.chunks` index exists without its blob (an upload was killed between writing the \
         index and the blob). It is harmless; the next upload of that blob reuses the name. \
         Fix: delete the file.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_once_in_order_and_documented() {
        let codes: Vec<&str> = TABLE.iter().map(|(c, _, _)| *c).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted, "sorted, no duplicates");
        let source = include_str!("codes.rs");
        for (code, title, text) in TABLE {
            assert!(code.starts_with("MG01") && code.len() == 6, "{code}");
            assert!(source.contains(&format!("pub const {code}: &str = \"{code}\";")));
            assert!(!title.is_empty() && text.len() > 40, "{code}");
        }
        assert_eq!(source.matches("\npub const MG").count(), TABLE.len());
    }
}
