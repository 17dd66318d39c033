-- Trust (issue 16): signatures, provenance, signing keys and the audit log as a Merkle tree.
-- Digests, hashes and keys are stored as text (hex, PEM, JSON) so one SQL text serves SQLite
-- and PostgreSQL. No private key is ever stored: signers live in HSMs, proxies or key files.

-- Signatures of a version's OMS manifest: a Sigstore bundle (DSSE envelope of an in-toto
-- statement). A version may carry several, by different keys.
CREATE TABLE manifest_signatures (
    model_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    envelope_digest TEXT NOT NULL,
    signer_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    bundle TEXT NOT NULL,
    audit_seq BIGINT NOT NULL REFERENCES audit_events (seq),
    PRIMARY KEY (model_id, version, envelope_digest),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
);
CREATE INDEX manifest_signatures_key ON manifest_signatures (key_id);

-- Provenance of a lineage node (`model:<id>@<v>`, `dataset:sha256:<hex>`, later
-- `deployment:<id>`): an in-toto statement with an SLSA Provenance v1 predicate, and its
-- signed bundle once signed.
CREATE TABLE provenance_records (
    subject TEXT PRIMARY KEY,
    statement_digest TEXT NOT NULL,
    statement TEXT NOT NULL,
    bundle TEXT,
    key_id TEXT,
    signed_at TEXT,
    audit_seq BIGINT NOT NULL REFERENCES audit_events (seq)
);

-- Public keys known to the registry; adding, rotating and revoking one is an audit event.
CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    environments TEXT NOT NULL,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT,
    revoke_reason TEXT,
    audit_seq BIGINT NOT NULL REFERENCES audit_events (seq)
);

-- The audit log's Merkle tree: RFC 6962 hashes of complete subtrees, at the stored-hash index
-- of the Go checksum database's layout, written in the same transaction as their event.
CREATE TABLE audit_hashes (
    idx BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Checkpoints the log has signed (C2SP signed notes). Each is checked consistent with the
-- previous one before it is signed: the log never signs two inconsistent trees.
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root TEXT NOT NULL,
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL
);

-- Witness cosignatures (C2SP tlog-cosignature) of a checkpoint.
CREATE TABLE audit_cosignatures (
    size BIGINT NOT NULL REFERENCES audit_checkpoints (size),
    witness TEXT NOT NULL,
    signature_line TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (size, witness)
);
