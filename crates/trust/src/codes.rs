//! The trust errors' codes (`MT` + 4 digits) with their documentation, read by
//! `modelspec explain MT…`. Ranges: MT00xx keys and signatures, MT01xx OMS bundles and model
//! directories, MT02xx trust policies, MT03xx PKCS#11, MT04xx the signing proxy, MT05xx
//! provenance, MT06xx the audit log's notes and proofs (`ms-tlog` reuses this table's style).

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
    MT0001 "A public key cannot be read."
    "The key is neither a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) nor raw bytes of the expected length, or its algorithm is not Ed25519 or ECDSA P-256. Export the public key as PEM (`openssl pkey -pubout`, or `modelspec signer public-key`).";
    MT0002 "A signature does not verify."
    "The signature was not made by this key over these bytes: the signed content changed, or another key signed it. Check which key is trusted for this content; never re-sign content you have not reviewed.";
    MT0003 "A signer cannot be opened."
    "The signer reference is not `file:PATH`, `pkcs11:…` (RFC 7512) or an `http(s)://` signing proxy URL, or what it names cannot be reached. The message says which part failed.";
    MT0004 "A private key file cannot be read or written."
    "A development key file must be an unencrypted PEM `PRIVATE KEY` (PKCS#8, as `openssl genpkey`, `cryptography` and `modelspec signer keygen` write it) or an `EC PRIVATE KEY` (SEC1) of an Ed25519 or ECDSA P-256 key. Decrypt an encrypted key with `openssl pkey -in KEY -out PLAIN.pem`, or make a new one with `modelspec signer keygen`.";
    MT0101 "A signature bundle cannot be read."
    "The file is not a Sigstore bundle v0.3 JSON (`mediaType` `application/vnd.dev.sigstore.bundle.v0.3+json`) with a `dsseEnvelope` of one base64 signature and `verificationMaterial.publicKey` (key mode; certificate and transparency-log bundles are not accepted). The message names the field (JSON pointer). Sign again with `modelspec` or `model_signing sign key`.";
    MT0102 "The bundle names another key."
    "The bundle's `verificationMaterial.publicKey.hint` (the SHA-256 of the signer's PEM public key, as `model_signing` writes it) is not the hint of the key you verify with. Verify with the key that signed, or check why another key signed this model.";
    MT0103 "The signed payload is not what was expected."
    "The DSSE `payloadType` must be `application/vnd.in-toto+json`, the payload an in-toto Statement v1 (`_type` `https://in-toto.io/Statement/v1`), and its `predicateType` the one this command reads (`https://model_signing/signature/v1.0` for a model manifest). The message names the field.";
    MT0104 "The signed manifest is inconsistent."
    "The OMS predicate's resources must be unique names with 64-hex `sha256` digests, its serialization `method: files` with `hash_type: sha256`, and the single subject's `sha256` must equal SHA-256 of the resources' raw digests concatenated in name order. Anything else means the signer was faulty or the statement was edited before signing: do not trust it.";
    MT0105 "A model directory cannot be hashed."
    "Every entry under the model directory must be a regular file or a directory with a UTF-8 name; symbolic links are refused (as `model_signing` does by default) because they can point outside the model, and special files (sockets, pipes, devices) cannot be signed. The message names the path. Remove the entry, or list it in the ignored paths.";
    MT0106 "Model files differ from the signed manifest."
    "A file's SHA-256 is not the signed one (changed), a signed file is absent (missing), or a file is present that was not signed (extra). The message names every such file. Restore the files from a trusted copy; never re-sign files you have not reviewed.";
    MT0201 "A trust policy cannot be read."
    "The trust policy is YAML: `apiVersion: modelspec.dev/v1`, `kind: TrustPolicy`, `keys: [{name, publicKey (PEM text or a file path relative to the policy), environments: [prod, staging, …], notAfter? (RFC 3339)}]`, optional `log: {origin, key}` and `witnesses: [{name, key}]`. The message gives file:line:column and the field.";
    MT0202 "The key is not trusted for this environment."
    "The trust policy has no key with this fingerprint, or its entry does not list the environment. Add the key's fingerprint (`modelspec signer keygen` prints it; `sha256:` of the DER public key) to the policy for that environment, after review.";
    MT0203 "The key is no longer trusted (notAfter has passed)."
    "The policy's entry for this key has a `notAfter` in the past: the key was rotated. Sign with the current key; verify old signatures with a policy that still trusts the old key only if that is intended.";
    MT0204 "A development-only signer cannot sign for prod."
    "Key files and signing proxies backed by a key file are for development: their private key is on a disk. Signing for `prod` needs a PKCS#11 token (`pkcs11:…`) or a signing proxy backed by one.";
    MT0301 "A PKCS#11 URI is malformed."
    "The signer reference is not an RFC 7512 `pkcs11:` URI we can use: an unknown or repeated attribute, a bad percent-encoding, a `type` other than `private`. Supported: path attributes token, manufacturer, serial, model, slot-id, object, id, type; query attributes module-path, pin-source, pin-value. Unknown attributes are refused rather than ignored so that no other key is selected.";
    MT0302 "A PKCS#11 module cannot be loaded."
    "The library named by `module-path` (or `MODELSPEC_PKCS11_MODULE`) does not exist, is not a PKCS#11 module, or failed to initialize. For SoftHSM2 it is /usr/lib/softhsm/libsofthsm2.so (`apt-get install softhsm2`); for a cloud KMS, the vendor's PKCS#11 library.";
    MT0303 "No single PKCS#11 token matches."
    "No token present in the module's slots matches the URI's token/manufacturer/serial/model/slot-id, or several do. The message lists the tokens seen (labels and serials); add `serial=` to pick one. For SoftHSM2, check SOFTHSM2_CONF points at the configuration that holds the token.";
    MT0304 "Login to the PKCS#11 token failed."
    "The user PIN is wrong, locked, expired or missing. Give it with `pin-source=FILE` in the URI or the MODELSPEC_PKCS11_PIN environment variable. Tokens count failed attempts and lock the PIN after a few: check the PIN before retrying. The PIN itself is never printed.";
    MT0305 "The PKCS#11 key cannot be used."
    "No private key on the token matches the URI's `object` (label) and `id`, several do, its public key object is missing, or it is neither Ed25519 (CKK_EC_EDWARDS, edwards25519) nor ECDSA P-256 (CKK_EC, prime256v1). The message lists the keys seen.";
    MT0306 "The PKCS#11 token failed to sign."
    "C_Sign failed (mechanism not allowed for the key, token removed, session lost) or returned a signature that does not verify with the key's public key object. The message names the PKCS#11 return value.";
    MT0401 "This signer cannot sign a bare digest."
    "A signing request gave a SHA-256 digest instead of the message, which only ECDSA keys can sign: Ed25519 (PureEdDSA) signs the whole message. Send the message (`message`) for Ed25519 keys.";
    MT0402 "A signing proxy reference or configuration is invalid."
    "The proxy URL is not `http(s)://HOST[:PORT][/PREFIX][?keyId=sha256:…]`, carries credentials (the bearer token goes in MODELSPEC_SIGNER_TOKEN or MODELSPEC_SIGNER_TOKEN_FILE, never in the URL), no token was given, or MODELSPEC_SIGNER_CA_FILE holds no PEM certificate; on the server side the token file is missing, empty or shorter than 32 characters, or the bind address is refused.";
    MT0403 "The signing proxy cannot be reached or answered nonsense."
    "The connection failed or timed out, the TLS certificate of an `https://` proxy is not trusted (set MODELSPEC_SIGNER_CA_FILE for a private CA), or the answer is not the protocol's JSON (see the signing proxy protocol in the README). Check the URL and that `modelspec signer serve` (or your proxy) runs there.";
    MT0404 "The signing proxy refused the bearer token."
    "The request carried no `Authorization: Bearer` token or another one than the proxy's `--token-file` holds (HTTP 401). Set MODELSPEC_SIGNER_TOKEN (or MODELSPEC_SIGNER_TOKEN_FILE) to the proxy's token.";
    MT0405 "The signing proxy has no such key."
    "The `keyId` (a public key fingerprint, `sha256:<hex>`) is not one of the keys the proxy serves (HTTP 404), or the proxy serves several and the reference names none. `GET /v1/keys` lists them; add `?keyId=…` to the URL.";
    MT0406 "The signing request is too large."
    "The request body exceeds the proxy's limit (HTTP 413; `signer serve --max-body-bytes`, default 1 MiB). For ECDSA keys the client sends only the SHA-256 digest; Ed25519 needs the whole message.";
    MT0407 "The signing proxy rejected the request."
    "The body is not the protocol's JSON (HTTP 400/415/422): a missing `keyId`, both or neither of `message` and `digest`, bad base64, a digest that is not 32 bytes. The message says which field.";
    MT0408 "The signing proxy backend failed to sign."
    "The proxy's key backend (a PKCS#11 token or a key file) returned an error (HTTP 502), or the proxy returned a signature that does not verify with the key it announced — the client refuses it. Read the proxy's log.";
    MT0501 "A provenance statement is invalid."
    "A provenance record must be an in-toto Statement v1 with predicateType `https://slsa.dev/provenance/v1`, subjects with `sha256` digests, and a predicate with `buildDefinition {buildType, externalParameters, resolvedDependencies}` and `runDetails {builder {id}}`. The message names the field.";
    MT0601 "A Merkle proof does not verify."
    "An inclusion or consistency proof of the audit log does not lead to the root hash it should: the log's stored hashes, the entry, or the checkpoint differ from what was proved. If the log is one you trust, run `modelspec audit verify` for a diagnosis naming the entry.";
    MT0602 "The log's stored hashes cannot be read."
    "A stored hash of the audit log is missing, or its store answered with the wrong number of hashes. The log's hash table is incomplete: reopen the registry (hashes of old events are recomputed at open) or restore it from a backup.";
    MT0603 "A log position is out of range."
    "A record index or tree size is outside the log: a record must be below the tree size, and a consistency proof needs 1 ≤ old size ≤ new size. Ask for a position the current checkpoint covers.";
    MT0604 "A tile path or a tile is malformed."
    "A C2SP tlog-tiles path is `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, with N written in 3-digit groups (`x001/x234/067`), 0 ≤ L ≤ 63 and 1 ≤ W ≤ 255 for a partial tile; a hash tile holds W × 32 bytes. The message says which part is wrong.";
    MT0605 "An entries bundle is malformed."
    "An entries tile is a sequence of entries, each a big-endian 16-bit length and that many bytes; it ends early, has trailing bytes, or holds another number of entries than its width. The tile was cut or altered in transit or in storage.";
    MT0606 "A checkpoint is malformed."
    "A C2SP tlog-checkpoint body is exactly `<origin>\n<decimal size>\n<base64 32-byte root hash>\n`, optionally followed by extension lines; no leading zeros, no empty origin. The message names the line that is wrong.";
    MT0607 "A signed note is malformed."
    "A C2SP signed note is a text ending in a newline, a blank line, then one or more lines `— <key name> <base64(4-byte key id ‖ signature)>`. The note was cut or altered: fetch it again.";
    MT0608 "A note carries no valid signature from a trusted key."
    "None of the note's signatures is by a key you trust and verifies, or a signature by a trusted key name and id does not verify (the note was altered, or another key signed it). Check the log's and witnesses' keys in the trust policy (`log.key`, `witnesses`).";
    MT0609 "A verifier key or a key name is malformed."
    "A note verifier key is `<name>+<8 hex digits key id>+<base64(0x01 ‖ 32-byte Ed25519 key)>` (0x04 for a witness cosignature key); the name has no `+`, spaces or newlines, and the id must match the name and key. Copy the key text exactly as the log or witness prints it.";
    MT0610 "A witness refuses the checkpoint."
    "The witness's last cosigned size for this origin differs from the request's `old` size (HTTP 409: retry with the size in the answer), the consistency proof does not verify, the origin is unknown, or the checkpoint is not signed by the log's key. A witness never cosigns two inconsistent checkpoints of one log.";
    MT0611 "The audit log is not consistent with what was seen before."
    "The log now presents a tree that does not extend the one a verifier or witness saw and kept: it shrank (truncated), or has the same size with another root, or an old size's root differs (forked). History was rewritten: keep the saved state as evidence and compare it with other clients' or witnesses' checkpoints.";
    MT0612 "An audit log entry was changed, removed or reordered."
    "An entry in the log's tiles does not hash to the leaf hash the tree commits to (changed), a sequence number is missing (removed), or an entry carries another entry's sequence number (reordered). The diagnosis names the entry; the stored events were altered after they were logged.";
    MT0613 "The verifier's local state cannot be read or written."
    "The directory where `modelspec audit verify` keeps the last verified checkpoint and full tiles of each log is unreadable, unwritable, or holds a damaged file. Point `--state` at a writable directory; a damaged state file is never silently replaced: move it aside after looking at it.";
    MT0614 "A tile or checkpoint cannot be fetched."
    "The log's tile source (a directory or the registry's `/audit/…` endpoints) did not return a tile or checkpoint the verification needs. Check the address and that the log serves that size.";
}
