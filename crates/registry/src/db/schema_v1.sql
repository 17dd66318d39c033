-- The registry's schema, version 1: one text for SQLite and PostgreSQL (TEXT, BIGINT and
-- DOUBLE PRECISION only; timestamps are RFC 3339 UTC TEXT with milliseconds; JSON is TEXT).
CREATE TABLE artifacts (
    artifact_id TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    provenance TEXT
);

CREATE TABLE datasets (
    dataset_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    license TEXT NOT NULL,
    pii_flags TEXT NOT NULL,
    source_refs TEXT NOT NULL,
    transformations TEXT NOT NULL,
    file_count BIGINT NOT NULL,
    total_size BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE dataset_files (
    dataset_id TEXT NOT NULL REFERENCES datasets (dataset_id),
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, path)
);

CREATE TABLE models (
    model_id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE model_versions (
    model_id TEXT NOT NULL REFERENCES models (model_id),
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    family TEXT NOT NULL,
    declared_version TEXT,
    code_ref TEXT,
    artifact_ids TEXT NOT NULL,
    metrics TEXT NOT NULL,
    lineage TEXT NOT NULL,
    provenance TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    status TEXT NOT NULL,
    signer_id TEXT,
    signature TEXT,
    spec_digest TEXT NOT NULL,
    spec TEXT NOT NULL,
    audit_seq BIGINT NOT NULL,
    PRIMARY KEY (model_id, version),
    UNIQUE (model_id, digest)
);
CREATE INDEX model_versions_family ON model_versions (family, model_id, version);
CREATE INDEX model_versions_status ON model_versions (status, model_id, version);

CREATE TABLE version_artifacts (
    model_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    artifact_id TEXT NOT NULL REFERENCES artifacts (artifact_id),
    PRIMARY KEY (model_id, version, artifact_id),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
);
CREATE INDEX version_artifacts_artifact ON version_artifacts (artifact_id);

-- Node ids: `model:<id>@<version>`, `dataset:sha256:<hex>`, `source:<uri>`. An edge reads
-- "child was built from parent"; both directions are indexed for up and down walks.
CREATE TABLE lineage_edges (
    child TEXT NOT NULL,
    parent TEXT NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (child, parent)
);
CREATE INDEX lineage_edges_parent ON lineage_edges (parent, child);

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_digest TEXT,
    after_digest TEXT,
    details TEXT,
    digest TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

CREATE TABLE pointers (
    model_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model_id, name),
    FOREIGN KEY (model_id, version) REFERENCES model_versions (model_id, version)
);

CREATE TABLE pointer_moves (
    audit_seq BIGINT PRIMARY KEY REFERENCES audit_events (seq),
    model_id TEXT NOT NULL,
    pointer TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT NOT NULL,
    moved_at TEXT NOT NULL,
    moved_by TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX pointer_moves_model ON pointer_moves (model_id, audit_seq);

CREATE TABLE tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT
);
