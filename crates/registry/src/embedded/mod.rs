//! The embedded registry: a database and a blob store used in-process, acting as one
//! principal. The CLI uses it directly (the OS user as admin); the control-plane server keeps
//! one and makes a per-request view for each authenticated token with [`Embedded::acting_as`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;

use crate::api::{ByteRange, ByteReader, Content, Registered, Registry};
use crate::audit::{self, Change};
use crate::auth::{self, require};
use crate::blob::BlobStore;
use crate::codes;
use crate::db::{Db, db_err};
use crate::digest::Digest;
use crate::entity::*;
use crate::error::{ErrorKind, RegistryError, Result};
use crate::log::{ConsistencyProof, CosignatureReceipt, Cosignatures, EventProof, LogConfig};

struct Shared {
    db: Db,
    blobs: BlobStore,
    /// The log key and witnesses (`Embedded::set_log`), or why there is none: a signer that
    /// failed to open fails the calls that sign, never the registry's other calls.
    log: std::sync::RwLock<Option<std::result::Result<Arc<LogConfig>, RegistryError>>>,
}

/// A registry over a database and a blob store, acting as `principal`. Cheap to clone.
#[derive(Clone)]
pub struct Embedded {
    shared: Arc<Shared>,
    principal: Principal,
}

impl Embedded {
    /// Opens (creating and migrating as needed) the database at `db_url` (`sqlite://PATH`, a
    /// path, or `postgres://…`) and the blob store at `store_url` (`file:///DIR`, a directory,
    /// or `s3://bucket/prefix` with the AWS environment variables), acting as `principal`.
    pub async fn open(db_url: &str, store_url: &str, principal: Principal) -> Result<Embedded> {
        let db = Db::open(db_url).await?;
        let blobs = BlobStore::open(store_url).await?;
        Ok(Embedded::with_parts(db, blobs, principal))
    }

    /// Over an open database and blob store (explicit S3 settings, limits).
    pub fn with_parts(db: Db, blobs: BlobStore, principal: Principal) -> Embedded {
        Embedded {
            shared: Arc::new(Shared {
                db,
                blobs,
                log: std::sync::RwLock::new(None),
            }),
            principal,
        }
    }

    /// Gives the audit log its key (and witnesses): checkpoints are signed with it. Every view
    /// of this registry (`acting_as`) shares it.
    pub fn set_log(&self, config: LogConfig) {
        self.set_log_shared(Arc::new(config));
    }

    /// [`Embedded::set_log`] with a configuration shared with others.
    pub fn set_log_shared(&self, config: Arc<LogConfig>) {
        *self.shared.log.write().unwrap_or_else(|e| e.into_inner()) = Some(Ok(config));
    }

    /// Configures the log from `settings` (see [`crate::log::key::configure`]); a failure is
    /// kept and returned by the calls that need the key.
    pub fn configure_log(&self, db_url: &str, settings: &crate::log::key::LogSettings) {
        let value = match crate::log::key::configure(db_url, settings) {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        };
        *self.shared.log.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    /// The audit log's configuration: its key, origin and witnesses.
    pub fn log_config(&self) -> Result<Arc<LogConfig>> {
        match &*self.shared.log.read().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(c)) => Ok(c.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(crate::log::checkpoint::no_signer()),
        }
    }

    fn log(&self) -> Result<Arc<LogConfig>> {
        self.log_config()
    }

    /// The same registry acting as someone else (the server: one view per request).
    pub fn acting_as(&self, principal: Principal) -> Embedded {
        Embedded {
            shared: self.shared.clone(),
            principal,
        }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The database, for the server's health check and for tests that inject damage.
    pub fn db(&self) -> &Db {
        &self.shared.db
    }

    /// The blob store.
    pub fn store(&self) -> &BlobStore {
        &self.shared.blobs
    }

    /// Who holds a bearer token (`mgt_…`); errors are Unauthenticated and never echo it.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        auth::authenticate(&self.shared.db, token).await
    }

    fn need(&self, role: Role, what: &str) -> Result<()> {
        require(&self.principal, role, what)
    }

    fn check_upload(&self, req: &ArtifactUpload) -> Result<()> {
        validate_artifact_name(&req.name)?;
        if let Some(mt) = &req.media_type
            && (mt.is_empty() || mt.len() > 255 || !mt.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                codes::MG0010,
                format!("media type {mt:?} is not allowed"),
            )
            .at("/mediaType"));
        }
        Ok(())
    }

    /// Records an artifact whose blob is complete (or finds the existing record).
    async fn record_artifact(
        &self,
        req: &ArtifactUpload,
        digest: Digest,
        size: u64,
    ) -> Result<Registered<Artifact>> {
        let mut tx = self.shared.db.begin_write().await?;
        if let Some(a) = artifact_row(&mut tx, &digest).await? {
            tx.commit().await.map_err(db_err)?;
            return Ok(Registered {
                created: false,
                record: a,
            });
        }
        let at = crate::time::now();
        let a = Artifact {
            artifact_id: digest,
            size,
            media_type: req
                .media_type
                .clone()
                .unwrap_or_else(|| media_type_for(&req.name).into()),
            name: req.name.clone(),
            created_at: at.clone(),
            created_by: self.principal.name.clone(),
            provenance: req.provenance.clone(),
            provenance_records: Vec::new(),
        };
        sqlx::query(
            "INSERT INTO artifacts (artifact_id, size, media_type, name, created_at, created_by, \
             provenance) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(&a.media_type)
        .bind(&a.name)
        .bind(&a.created_at)
        .bind(&a.created_by)
        .bind(a.provenance.as_ref().map(crate::canonical::to_string))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        audit::append(
            &mut tx,
            &self.principal,
            &at,
            Change {
                action: "artifact.upload",
                subject: format!("artifact:{digest}"),
                before: None,
                after: Some(digest),
                details: json!({"name": a.name, "size": size, "mediaType": a.media_type}),
            },
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Registered {
            created: true,
            record: a,
        })
    }
}

/// Artifact names are file names.
pub fn validate_artifact_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if ok {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        codes::MG0010,
        format!(
            "artifact name {:?} is not a file name",
            name.escape_debug().to_string()
        ),
    )
    .at("/name")
    .hint("pass the file's base name: no `/`, `\\`, control characters, `.` or `..`"))
}

fn media_type_for(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".gguf") {
        "application/x-gguf"
    } else if lower.ends_with(".json") {
        "application/json"
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        "application/yaml"
    } else if lower.ends_with(".safetensors") {
        "application/x-safetensors"
    } else {
        "application/octet-stream"
    }
}

async fn artifact_row(tx: &mut crate::db::Tx, d: &Digest) -> Result<Option<Artifact>> {
    let row = sqlx::query(
        "SELECT size, media_type, name, created_at, created_by, provenance FROM artifacts \
         WHERE artifact_id = $1",
    )
    .bind(d.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.map(|r| artifact_from_row(d, &r)).transpose()
}

fn artifact_from_row(d: &Digest, r: &sqlx::any::AnyRow) -> Result<Artifact> {
    let prov: Option<String> = r.try_get("provenance").map_err(db_err)?;
    Ok(Artifact {
        artifact_id: *d,
        size: r.try_get::<i64, _>("size").map_err(db_err)? as u64,
        media_type: r.try_get("media_type").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        created_by: r.try_get("created_by").map_err(db_err)?,
        provenance: prov
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| crate::dataset::internal(e.to_string()))?,
        provenance_records: Vec::new(),
    })
}

fn artifact_not_found(d: &Digest) -> RegistryError {
    RegistryError::new(
        ErrorKind::NotFound,
        codes::MG0015,
        format!("no artifact {d}"),
    )
    .hint("modelspec artifact push FILE uploads it")
}

#[async_trait]
impl Registry for Embedded {
    async fn whoami(&self) -> Result<Principal> {
        Ok(self.principal.clone())
    }

    async fn upload_artifact(
        &self,
        req: ArtifactUpload,
        body: ByteReader,
    ) -> Result<Registered<Artifact>> {
        self.need(Role::Writer, "uploading an artifact")?;
        self.check_upload(&req)?;
        let stored = self.shared.blobs.put(&req, body).await?;
        self.record_artifact(&req, stored.digest, stored.size).await
    }

    async fn start_upload(&self, req: ArtifactUpload) -> Result<UploadSession> {
        self.need(Role::Writer, "uploading an artifact")?;
        self.check_upload(&req)?;
        self.shared.blobs.begin(req).await
    }

    async fn upload_status(&self, upload_id: &str) -> Result<UploadSession> {
        self.need(Role::Writer, "uploading an artifact")?;
        self.shared.blobs.status(upload_id).await
    }

    async fn upload_chunk(
        &self,
        upload_id: &str,
        offset: u64,
        body: ByteReader,
    ) -> Result<UploadSession> {
        self.need(Role::Writer, "uploading an artifact")?;
        self.shared.blobs.append(upload_id, offset, body).await
    }

    async fn finish_upload(&self, upload_id: &str) -> Result<Registered<Artifact>> {
        self.need(Role::Writer, "uploading an artifact")?;
        // The session keeps what the uploader said; read it before finishing ends it.
        let session = self.shared.blobs.status(upload_id).await?;
        let stored = self.shared.blobs.finish(upload_id).await?;
        self.record_artifact(&session.request, stored.digest, stored.size)
            .await
    }

    async fn artifact(&self, id: &Digest) -> Result<Artifact> {
        self.need(Role::Reader, "reading")?;
        let row = sqlx::query(
            "SELECT size, media_type, name, created_at, created_by, provenance FROM artifacts \
             WHERE artifact_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.shared.db.pool())
        .await
        .map_err(db_err)?
        .ok_or_else(|| artifact_not_found(id))?;
        let mut a = artifact_from_row(id, &row)?;
        a.provenance_records = crate::provenance::for_artifact(&self.shared.db, id).await?;
        Ok(a)
    }

    async fn artifact_content(&self, id: &Digest, range: Option<ByteRange>) -> Result<Content> {
        let artifact = self.artifact(id).await?;
        let read = self.shared.blobs.read(id, range).await?;
        Ok(Content {
            artifact,
            start: read.start,
            end: read.end,
            body: read.body,
        })
    }

    async fn register_dataset(&self, req: DatasetRegistration) -> Result<Registered<Dataset>> {
        self.need(Role::Writer, "registering a dataset")?;
        let at = crate::time::now();
        let d = crate::dataset::build(&req, &at, &self.principal.name)?;
        let mut tx = self.shared.db.begin_write().await?;
        if crate::dataset::exists(&mut tx, &d.dataset_id).await? {
            drop(tx);
            let existing = crate::dataset::get(&self.shared.db, &d.dataset_id, true).await?;
            return Ok(Registered {
                created: false,
                record: existing,
            });
        }
        crate::dataset::insert(&mut tx, &d).await?;
        let inv = crate::provenance::Invocation {
            who: &self.principal,
            started_on: &at,
            finished_on: &crate::time::now(),
            audit_seq: audit::next_seq(&mut tx).await?,
        };
        let (statement, statement_digest) =
            crate::provenance::encode(&crate::provenance::dataset_statement(&d, &inv));
        let me = crate::dataset::node_id(&d.dataset_id);
        let ev = audit::append(
            &mut tx,
            &self.principal,
            &at,
            Change {
                action: "dataset.register",
                subject: me.clone(),
                before: None,
                after: Some(d.dataset_id),
                details: json!({"name": d.name, "checksum": d.checksum, "fileCount": d.file_count,
                    "provenance": statement_digest}),
            },
        )
        .await?;
        crate::provenance::insert(&mut tx, &me, &statement, &statement_digest, ev.seq).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Registered {
            created: true,
            record: d,
        })
    }

    async fn dataset(&self, id: &Digest) -> Result<Dataset> {
        self.need(Role::Reader, "reading")?;
        crate::dataset::get(&self.shared.db, id, true).await
    }

    async fn register_model(&self, req: ModelRegistration) -> Result<Registered<ModelVersion>> {
        self.need(Role::Writer, "registering a model version")?;
        let started = crate::time::now();
        let p = crate::model::prepare(&req)?;
        // The bytes first (outside the transaction: a store round trip per artifact).
        for d in &p.artifact_ids {
            if self.shared.blobs.stat(d).await?.is_none() {
                return Err(crate::model::missing_artifact(d, &p.artifact_pointers[d]));
            }
        }
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let (version, created) =
            crate::model::register(&mut tx, &self.principal, &started, &at, &p).await?;
        tx.commit().await.map_err(db_err)?;
        let record =
            crate::model::version(&self.shared.db, &p.model_id, &version.to_string()).await?;
        Ok(Registered { created, record })
    }

    async fn model(&self, model_id: &str) -> Result<Model> {
        self.need(Role::Reader, "reading")?;
        crate::model::model(&self.shared.db, model_id).await
    }

    async fn model_version(&self, model_id: &str, selector: &str) -> Result<ModelVersion> {
        self.need(Role::Reader, "reading")?;
        crate::model::version(&self.shared.db, model_id, selector).await
    }

    async fn list_models(&self, query: ModelQuery) -> Result<Page<ModelVersion>> {
        self.need(Role::Reader, "reading")?;
        crate::model::list(&self.shared.db, &query).await
    }

    async fn history(&self, model_id: &str) -> Result<Vec<HistoryEntry>> {
        self.need(Role::Reader, "reading")?;
        crate::model::history(&self.shared.db, model_id).await
    }

    async fn promote(&self, model_id: &str, req: PromoteRequest) -> Result<PointerMove> {
        self.need(Role::Approver, "promoting a model version")?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let mv = crate::model::promote(&mut tx, &self.principal, &at, model_id, &req).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(mv)
    }

    async fn provenance(&self, subject: &str) -> Result<ProvenanceRecord> {
        self.need(Role::Reader, "reading")?;
        let s = crate::provenance::parse_subject(subject)?;
        let (id, _) = crate::provenance::resolve(&self.shared.db, &s).await?;
        crate::provenance::get(&self.shared.db, &id).await
    }

    async fn sign_provenance(
        &self,
        subject: &str,
        signature: ProvenanceSignature,
    ) -> Result<ProvenanceRecord> {
        self.need(Role::Writer, "signing provenance")?;
        let s = crate::provenance::parse_subject(subject)?;
        let (id, _) = crate::provenance::resolve(&self.shared.db, &s).await?;
        let at = crate::time::now();
        crate::provenance::attach(
            &self.shared.db,
            &self.principal,
            &at,
            &id,
            &signature.bundle,
        )
        .await?;
        crate::provenance::get(&self.shared.db, &id).await
    }

    async fn lineage(&self, id: &str, direction: Direction, depth: u32) -> Result<LineageGraph> {
        self.need(Role::Reader, "reading")?;
        let (root, label) = if id.starts_with("sha256:") {
            let d: Digest = id.parse().map_err(|e: crate::digest::BadDigest| {
                RegistryError::new(ErrorKind::Invalid, codes::MG0305, e.to_string()).at("/id")
            })?;
            let ds = crate::dataset::get(&self.shared.db, &d, false).await?;
            (crate::dataset::node_id(&d), ds.name)
        } else {
            let (name, sel) = id.rsplit_once('@').unwrap_or((id, "latest"));
            crate::model::validate_model_id(name)
                .map_err(|m| RegistryError::new(ErrorKind::Invalid, codes::MG0202, m).at("/id"))?;
            let v = crate::model::resolve(&self.shared.db, name, sel).await?;
            (crate::model::node_id(name, v), name.to_string())
        };
        crate::lineage::walk(&self.shared.db, &root, &label, direction, depth).await
    }

    async fn create_token(&self, req: TokenRequest) -> Result<CreatedToken> {
        self.need(Role::Admin, "creating a token")?;
        auth::validate_token_name(&req.name)?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let (token, info) =
            auth::insert(&mut tx, &req.name, req.role, &self.principal.name, &at).await?;
        audit::append(
            &mut tx,
            &self.principal,
            &at,
            Change {
                action: "token.create",
                subject: format!("token:{}", info.token_id),
                before: None,
                after: None,
                details: json!({"name": info.name, "role": info.role}),
            },
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(CreatedToken { token, info })
    }

    async fn revoke_token(&self, token_id: &str) -> Result<TokenInfo> {
        self.need(Role::Admin, "revoking a token")?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let mut info = auth::get(&mut tx, token_id).await?;
        if info.revoked_at.is_some() {
            return Ok(info);
        }
        auth::mark_revoked(&mut tx, token_id, &at).await?;
        audit::append(
            &mut tx,
            &self.principal,
            &at,
            Change {
                action: "token.revoke",
                subject: format!("token:{token_id}"),
                before: None,
                after: None,
                details: json!({"name": info.name}),
            },
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        info.revoked_at = Some(at);
        Ok(info)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.need(Role::Admin, "listing tokens")?;
        auth::list(&self.shared.db).await
    }

    async fn audit_events(&self, after: u64, limit: u32) -> Result<Vec<AuditEvent>> {
        self.need(Role::Reader, "reading the audit log")?;
        if limit == 0 || limit > 1000 {
            return Err(RegistryError::new(
                ErrorKind::Invalid,
                codes::MG0210,
                format!("limit {limit} is outside 1..=1000"),
            )
            .at("/limit"));
        }
        audit::list(&self.shared.db, after, limit).await
    }

    async fn check(&self) -> Result<CheckReport> {
        self.need(Role::Admin, "checking the registry")?;
        crate::check::run(&self.shared.db, &self.shared.blobs).await
    }

    async fn sign_version(
        &self,
        model_id: &str,
        selector: &str,
        req: SignatureRequest,
    ) -> Result<Registered<ManifestSignature>> {
        self.need(Role::Writer, "attaching a signature")?;
        let v = crate::model::resolve(&self.shared.db, model_id, selector).await?;
        crate::signing::signatures::attach(&self.shared.db, &self.principal, model_id, v, &req)
            .await
    }

    async fn signatures(&self, model_id: &str, selector: &str) -> Result<Vec<ManifestSignature>> {
        self.need(Role::Reader, "reading")?;
        let v = crate::model::resolve(&self.shared.db, model_id, selector).await?;
        crate::signing::signatures::list(&self.shared.db, model_id, v).await
    }

    async fn add_key(&self, req: KeyRequest) -> Result<Registered<SigningKey>> {
        self.need(Role::Admin, "adding a signing key")?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let k = crate::signing::keys::add(&mut tx, &self.principal, &at, &req).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(k)
    }

    async fn rotate_key(&self, key_id: &str, req: RotateKeyRequest) -> Result<KeyRotation> {
        self.need(Role::Admin, "rotating a signing key")?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let r = crate::signing::keys::rotate(&mut tx, &self.principal, &at, key_id, &req).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(r)
    }

    async fn revoke_key(&self, key_id: &str, req: RevokeKeyRequest) -> Result<SigningKey> {
        self.need(Role::Admin, "revoking a signing key")?;
        let at = crate::time::now();
        let mut tx = self.shared.db.begin_write().await?;
        let k = crate::signing::keys::revoke(&mut tx, &self.principal, &at, key_id, &req).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(k)
    }

    async fn keys(&self) -> Result<Vec<SigningKey>> {
        self.need(Role::Reader, "reading")?;
        crate::signing::keys::list(&self.shared.db).await
    }

    async fn audit_checkpoint(&self) -> Result<String> {
        self.need(Role::Reader, "reading the audit log")?;
        crate::log::checkpoint::latest(&self.shared.db, &*self.log()?).await
    }

    async fn audit_tile(&self, path: &str) -> Result<Vec<u8>> {
        self.need(Role::Reader, "reading the audit log")?;
        crate::log::tiles::tile(&self.shared.db, path).await
    }

    async fn audit_event(&self, seq: u64) -> Result<EventProof> {
        self.need(Role::Reader, "reading the audit log")?;
        let log = self.log()?;
        let note = crate::log::checkpoint::latest(&self.shared.db, &log).await?;
        crate::log::tiles::event(&self.shared.db, &note, seq).await
    }

    async fn audit_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        self.need(Role::Reader, "reading the audit log")?;
        crate::log::tiles::consistency(&self.shared.db, from, to).await
    }

    async fn add_cosignatures(&self, req: Cosignatures) -> Result<CosignatureReceipt> {
        self.need(Role::Reader, "adding witness cosignatures")?;
        crate::log::checkpoint::add_cosignatures(&self.shared.db, &*self.log()?, &req).await
    }
}
