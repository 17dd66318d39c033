//! The registry conformance suite: one set of behaviours that every [`Registry`]
//! implementation must show (the embedded one over SQLite + local files and over PostgreSQL +
//! S3, and the HTTP client against `modelspec registry serve`). Each check is a public async
//! function taking a [`Ctx`]; a test file makes the context and calls them. Checks use their
//! own model and dataset names, so they can share one registry; the damage check wants a
//! registry of its own (it breaks it on purpose).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ms_registry::api::{ByteRange, ByteReader, Registry};
use ms_registry::entity::*;
use ms_registry::{Digest, ErrorKind, RegistryError};
use tokio::io::AsyncReadExt;

/// Makes a registry acting as the holder of a token (`Err` when the token is refused).
pub type ConnectFn = Box<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Arc<dyn Registry>, RegistryError>> + Send>>
        + Send
        + Sync,
>;

/// Breaks a registry on purpose, to see `check()` find it (embedded runs reach the database
/// and the store directly).
#[async_trait::async_trait]
pub trait Damage: Send + Sync {
    /// Runs `statement` on the registry's database with foreign keys off.
    async fn sql(&self, statement: &str);
    /// Removes a blob from the store.
    async fn delete_blob(&self, digest: &Digest);
    /// Flips bytes of a blob in place (same size).
    async fn corrupt_blob(&self, digest: &Digest);
}

/// What a check needs.
pub struct Ctx {
    /// The registry as an admin.
    pub admin: Arc<dyn Registry>,
    pub connect: ConnectFn,
    pub damage: Option<Arc<dyn Damage>>,
}

impl Ctx {
    /// A registry acting as a new token's holder with `role`.
    pub async fn as_role(&self, name: &str, role: Role) -> Arc<dyn Registry> {
        let t = self
            .admin
            .create_token(TokenRequest {
                name: name.into(),
                role,
            })
            .await
            .expect("admin creates tokens");
        (self.connect)(t.token)
            .await
            .expect("a fresh token connects")
    }
}

fn reader(bytes: &[u8]) -> ByteReader {
    Box::new(std::io::Cursor::new(bytes.to_vec()))
}

/// Uploads `bytes` as `name`.
pub async fn upload(reg: &dyn Registry, name: &str, bytes: &[u8]) -> Artifact {
    reg.upload_artifact(
        ArtifactUpload {
            name: name.into(),
            ..Default::default()
        },
        reader(bytes),
    )
    .await
    .expect("upload")
    .record
}

/// A valid ModelSpec naming one artifact by digest.
pub fn spec_text(name: &str, family: &str, weights: &Digest, size: u64) -> String {
    format!(
        "apiVersion: modelspec/v1\nkind: ModelSpec\nmetadata:\n  name: {name}\n  version: \"1\"\n\
         spec:\n  identity:\n    model:\n      id: {name}\n      family: {family}\n      \
         task: text-generation\n      framework: llama.cpp\n      artifacts:\n        \
         - name: weights\n          role: weights\n          uri: weights.gguf\n          \
         format: gguf\n          sha256: {}\n          sizeBytes: {size}\n  runtime:\n    \
         accelerator:\n      type: cpu\n      count: 1\n",
        weights.hex()
    )
}

fn registration(spec: String) -> ModelRegistration {
    ModelRegistration {
        spec,
        spec_file: Some("model.yaml".into()),
        ..Default::default()
    }
}

/// A model `name` with its weights uploaded: returns the registration of version 1's spec.
pub async fn model_fixture(reg: &dyn Registry, name: &str, family: &str) -> ModelRegistration {
    let bytes = format!("weights of {name}").into_bytes();
    let a = upload(reg, &format!("{name}.gguf"), &bytes).await;
    registration(spec_text(name, family, &a.artifact_id, a.size))
}

#[track_caller]
fn expect_err<T: std::fmt::Debug>(
    r: Result<T, RegistryError>,
    kind: ErrorKind,
    code: &str,
) -> RegistryError {
    match r {
        Ok(v) => panic!("expected {kind:?} {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!((e.kind, e.code.as_str()), (kind, code), "{e}");
            e
        }
    }
}

async fn all_events(reg: &dyn Registry) -> Vec<AuditEvent> {
    let mut out: Vec<AuditEvent> = Vec::new();
    loop {
        let after = out.last().map(|e| e.seq).unwrap_or(0);
        let page = reg.audit_events(after, 1000).await.expect("audit events");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

async fn read_all(mut r: ByteReader) -> Result<Vec<u8>, std::io::Error> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).await?;
    Ok(v)
}

fn dataset_req(name: &str, files: &[(&str, &[u8])]) -> DatasetRegistration {
    DatasetRegistration {
        name: name.into(),
        files: files
            .iter()
            .map(|(p, b)| DatasetFile {
                path: (*p).into(),
                sha256: Digest::of(b),
                size: b.len() as u64,
            })
            .collect(),
        license: "CC-BY-4.0".into(),
        pii_flags: vec![],
        source_refs: vec![],
        transformations: vec![],
    }
}

/// Uploads (one shot and resumable), reads (whole and ranged), dedup, refusals.
pub async fn artifacts(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let bytes = b"artifact bytes for the suite".to_vec();
    let first = reg
        .upload_artifact(
            ArtifactUpload {
                name: "suite-a.gguf".into(),
                expected_digest: Some(Digest::of(&bytes)),
                size: Some(bytes.len() as u64),
                ..Default::default()
            },
            reader(&bytes),
        )
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.artifact_id, Digest::of(&bytes));
    assert_eq!(first.record.media_type, "application/x-gguf");
    assert_eq!(first.record.created_by, reg.whoami().await.unwrap().name);
    let again = reg
        .upload_artifact(
            ArtifactUpload {
                name: "other-name.bin".into(),
                ..Default::default()
            },
            reader(&bytes),
        )
        .await
        .unwrap();
    assert!(!again.created, "same bytes, same artifact");
    assert_eq!(again.record, first.record);
    assert_eq!(
        reg.artifact(&first.record.artifact_id).await.unwrap(),
        first.record
    );

    let c = reg
        .artifact_content(&first.record.artifact_id, None)
        .await
        .unwrap();
    assert_eq!((c.start, c.end), (0, bytes.len() as u64));
    assert_eq!(read_all(c.body).await.unwrap(), bytes);
    let c = reg
        .artifact_content(
            &first.record.artifact_id,
            Some(ByteRange {
                start: 9,
                end: Some(14),
            }),
        )
        .await
        .unwrap();
    assert_eq!((c.start, c.end), (9, 14));
    assert_eq!(read_all(c.body).await.unwrap(), &bytes[9..14]);
    let e = reg
        .artifact_content(
            &first.record.artifact_id,
            Some(ByteRange {
                start: 1000,
                end: None,
            }),
        )
        .await
        .err()
        .expect("a range past the end");
    assert_eq!(e.kind, ErrorKind::RangeNotSatisfiable, "{e}");

    // Resumable: two chunks, a wrong offset refused with the current one, then finish.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let s = reg
        .start_upload(ArtifactUpload {
            name: "suite-resumable.bin".into(),
            expected_digest: Some(Digest::of(&big)),
            size: Some(big.len() as u64),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.offset, 0);
    let s1 = reg
        .upload_chunk(&s.upload_id, 0, reader(&big[..70_000]))
        .await
        .unwrap();
    assert_eq!(s1.offset, 70_000);
    let e = reg
        .upload_chunk(&s.upload_id, 0, reader(&big[..10]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert_eq!(
        reg.upload_status(&s.upload_id).await.unwrap().offset,
        70_000
    );
    reg.upload_chunk(&s.upload_id, 70_000, reader(&big[70_000..]))
        .await
        .unwrap();
    let done = reg.finish_upload(&s.upload_id).await.unwrap();
    assert!(done.created);
    assert_eq!(done.record.size, big.len() as u64);
    let c = reg
        .artifact_content(&done.record.artifact_id, None)
        .await
        .unwrap();
    assert_eq!(read_all(c.body).await.unwrap(), big);
}

/// Register, show, list, search, paginate; idempotent re-registration; a new manifest is a
/// new version.
pub async fn models(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let req = model_fixture(reg, "suite-m", "suitefam").await;
    let r1 = reg.register_model(req.clone()).await.unwrap();
    assert!(r1.created);
    let v1 = &r1.record;
    assert_eq!((v1.model_id.as_str(), v1.version), ("suite-m", 1));
    assert_eq!(v1.family, "suitefam");
    assert_eq!(v1.status, Status::Draft);
    assert_eq!(v1.declared_version.as_deref(), Some("1"));
    assert_eq!(v1.spec.as_deref(), Some(req.spec.as_str()));
    assert_eq!(v1.spec_digest, Digest::of(req.spec.as_bytes()));
    assert_eq!(v1.artifact_ids.len(), 1);
    assert_eq!(v1.created_by, reg.whoami().await.unwrap().name);

    let again = reg.register_model(req.clone()).await.unwrap();
    assert!(!again.created, "the same manifest is the same version");
    assert_eq!(again.record.version, 1);
    assert_eq!(again.record.digest, v1.digest);

    let mut req2 = req.clone();
    req2.metrics = BTreeMap::from([("accuracy".into(), 0.91)]);
    req2.code_ref = Some("git+https://example.com/train.git@abc123".into());
    let r2 = reg.register_model(req2.clone()).await.unwrap();
    assert!(r2.created);
    assert_eq!(r2.record.version, 2);
    assert_ne!(r2.record.digest, v1.digest);
    assert_eq!(r2.record.metrics["accuracy"], 0.91);

    let m = reg.model("suite-m").await.unwrap();
    assert_eq!(m.latest_version, 2);
    assert_eq!(
        m.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(m.versions.iter().all(|v| v.spec.is_none()));
    assert_eq!(
        reg.model_version("suite-m", "1").await.unwrap().digest,
        v1.digest
    );
    assert_eq!(
        reg.model_version("suite-m", "latest")
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        reg.model_version("suite-m", &v1.digest.to_string())
            .await
            .unwrap()
            .version,
        1
    );
    expect_err(
        reg.model_version("suite-m", "9").await,
        ErrorKind::NotFound,
        "MG0205",
    );
    expect_err(reg.model("suite-nope").await, ErrorKind::NotFound, "MG0204");

    // Three more models of another family for search and pages.
    for name in ["suite-p1", "suite-p2", "suite-p3"] {
        let r = model_fixture(reg, name, "suitepage").await;
        reg.register_model(r).await.unwrap();
    }
    let fam = reg
        .list_models(ModelQuery {
            family: Some("suitepage".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        fam.items
            .iter()
            .map(|v| v.model_id.as_str())
            .collect::<Vec<_>>(),
        ["suite-p1", "suite-p2", "suite-p3"]
    );
    assert!(fam.next_page_token.is_none());
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = reg
            .list_models(ModelQuery {
                q: Some("SUITE-P".into()),
                limit: Some(2),
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|v| v.model_id));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["suite-p1", "suite-p2", "suite-p3"]);
    let drafts = reg
        .list_models(ModelQuery {
            q: Some("suite-m".into()),
            status: Some(Status::Draft),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(drafts.items.len(), 2);
    expect_err(
        reg.list_models(ModelQuery {
            page_token: Some("zz".into()),
            ..Default::default()
        })
        .await,
        ErrorKind::Invalid,
        "MG0210",
    );
    // `%` and `_` in q are literal, not wildcards.
    let none = reg
        .list_models(ModelQuery {
            q: Some("suite%".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

/// A spec naming bytes the store does not have is refused, pointing at the digest.
pub async fn missing_artifact_refused(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let before = all_events(reg).await.len();
    let ghost = Digest::of(b"never uploaded");
    let e = expect_err(
        reg.register_model(registration(spec_text(
            "suite-ghost",
            "suitefam",
            &ghost,
            14,
        )))
        .await,
        ErrorKind::NotFound,
        "MG0203",
    );
    assert_eq!(
        e.pointer.as_deref(),
        Some("/spec/identity/model/artifacts/0/sha256")
    );
    assert!(
        e.hint.as_deref().unwrap_or("").contains("artifact push"),
        "{e}"
    );
    // Extra artifact ids are checked too.
    let mut req = model_fixture(reg, "suite-ghost2", "suitefam").await;
    req.artifact_ids = vec![ghost];
    let e = expect_err(reg.register_model(req).await, ErrorKind::NotFound, "MG0203");
    assert_eq!(e.pointer.as_deref(), Some("/artifactIds/0"));
    expect_err(
        reg.model("suite-ghost").await,
        ErrorKind::NotFound,
        "MG0204",
    );
    // Two uploads (the fixture) and nothing else.
    assert_eq!(all_events(reg).await.len(), before + 1);
}

/// An invalid spec is refused with the finding's place.
pub async fn invalid_spec_refused(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let before = all_events(reg).await.len();
    let req = model_fixture(reg, "suite-bad", "suitefam").await;
    let broken = req
        .spec
        .replace("task: text-generation", "task: [text-generation]");
    let e = expect_err(
        reg.register_model(registration(broken)).await,
        ErrorKind::Invalid,
        "MG0201",
    );
    assert_eq!(
        e.pointer.as_deref(),
        Some("/spec/identity/model/task"),
        "{e}"
    );
    assert!(
        e.message.starts_with("model.yaml:11:13:"),
        "line:col in {e}"
    );
    let e = expect_err(
        reg.register_model(registration("{not yaml: [".into()))
            .await,
        ErrorKind::Invalid,
        "MG0201",
    );
    assert!(e.message.contains("model.yaml:"), "{e}");
    let bad_name = req.spec.replace("name: suite-bad", "name: Suite/../Bad");
    let e = reg
        .register_model(registration(bad_name))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert_eq!(all_events(reg).await.len(), before + 1, "only the upload");
}

/// Datasets: the registry computes the checksum and id; bad paths are refused.
pub async fn datasets(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let req = dataset_req("suite-ds", &[("b/two.txt", b"2"), ("a.txt", b"1")]);
    let r = reg.register_dataset(req.clone()).await.unwrap();
    assert!(r.created);
    let d = &r.record;
    let manifest = format!(
        "{}  1  a.txt\n{}  1  b/two.txt\n",
        Digest::of(b"1").hex(),
        Digest::of(b"2").hex()
    );
    assert_eq!(d.checksum, Digest::of(manifest.as_bytes()));
    assert_eq!((d.file_count, d.total_size), (2, 2));
    assert_eq!(d.license, "CC-BY-4.0");
    let again = reg.register_dataset(req.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record.dataset_id, d.dataset_id);
    let got = reg.dataset(&d.dataset_id).await.unwrap();
    assert_eq!(got.checksum, d.checksum);
    assert_eq!(
        got.files
            .unwrap()
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["a.txt", "b/two.txt"]
    );
    let before = all_events(reg).await.len();
    for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", ""] {
        let e = expect_err(
            reg.register_dataset(dataset_req("suite-bad", &[("ok", b"x"), (bad, b"y")]))
                .await,
            ErrorKind::Invalid,
            "MG0301",
        );
        assert_eq!(e.pointer.as_deref(), Some("/files/1/path"), "{bad:?}: {e}");
    }
    expect_err(
        reg.register_dataset(dataset_req("suite-bad", &[("x", b"1"), ("x", b"2")]))
            .await,
        ErrorKind::Invalid,
        "MG0302",
    );
    let mut no_license = dataset_req("suite-bad", &[("x", b"1")]);
    no_license.license = "".into();
    expect_err(
        reg.register_dataset(no_license).await,
        ErrorKind::Invalid,
        "MG0304",
    );
    let mut unknown_src = dataset_req("suite-bad", &[("x", b"1")]);
    unknown_src.source_refs = vec![Digest::of(b"nope").to_string()];
    expect_err(
        reg.register_dataset(unknown_src).await,
        ErrorKind::NotFound,
        "MG0307",
    );
    expect_err(
        reg.dataset(&Digest::of(b"nope")).await,
        ErrorKind::NotFound,
        "MG0303",
    );
    assert_eq!(all_events(reg).await.len(), before);
}

/// Lineage up and down with depth and truncation.
pub async fn lineage(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let mut raw = dataset_req("suite-raw", &[("raw.jsonl", b"raw")]);
    raw.source_refs = vec!["https://example.com/crawl".into()];
    let raw = reg.register_dataset(raw).await.unwrap().record;
    let mut clean = dataset_req("suite-clean", &[("clean.jsonl", b"clean")]);
    clean.source_refs = vec![raw.dataset_id.to_string()];
    clean.transformations = vec![Transformation {
        code_ref: "git+https://example.com/prep.git@1".into(),
        checksum: Digest::of(b"prep.py"),
        description: None,
    }];
    let clean = reg.register_dataset(clean).await.unwrap().record;

    let mut base = model_fixture(reg, "suite-base", "suitelin").await;
    base.lineage.dataset_refs = vec![clean.dataset_id];
    reg.register_model(base).await.unwrap();
    let mut tuned = model_fixture(reg, "suite-tuned", "suitelin").await;
    tuned.lineage.parent_models = vec!["suite-base@1".into()];
    let tuned = reg.register_model(tuned).await.unwrap().record;
    assert_eq!(tuned.lineage.parent_models, ["suite-base@1"]);

    let up = reg
        .lineage("suite-tuned@1", Direction::Up, 32)
        .await
        .unwrap();
    assert_eq!(up.root, "model:suite-tuned@1");
    assert!(!up.truncated);
    let ids: Vec<(&str, u32)> = up.nodes.iter().map(|n| (n.id.as_str(), n.depth)).collect();
    let clean_id = format!("dataset:{}", clean.dataset_id);
    let raw_id = format!("dataset:{}", raw.dataset_id);
    assert_eq!(
        ids,
        [
            ("model:suite-tuned@1", 0),
            ("model:suite-base@1", 1),
            (clean_id.as_str(), 2),
            (raw_id.as_str(), 3),
            ("source:https://example.com/crawl", 4),
        ]
    );
    assert!(up.edges.contains(&LineageEdge {
        from: "model:suite-base@1".into(),
        to: clean_id.clone(),
        relation: "trainedOn".into()
    }));
    assert!(
        up.nodes
            .iter()
            .any(|n| n.kind == "dataset" && n.label == "suite-clean")
    );

    let shallow = reg.lineage("suite-tuned", Direction::Up, 2).await.unwrap();
    assert!(shallow.truncated);
    assert_eq!(shallow.nodes.len(), 3);
    assert!(shallow.nodes.iter().all(|n| n.depth <= 2));

    let down = reg
        .lineage(&raw.dataset_id.to_string(), Direction::Down, 5)
        .await
        .unwrap();
    let ids: Vec<&str> = down.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            raw_id.as_str(),
            clean_id.as_str(),
            "model:suite-base@1",
            "model:suite-tuned@1"
        ]
    );
    assert!(!down.truncated);
    expect_err(
        reg.lineage("suite-tuned", Direction::Up, 33).await,
        ErrorKind::Invalid,
        "MG0306",
    );
    expect_err(
        reg.lineage("suite-nope@1", Direction::Up, 1).await,
        ErrorKind::NotFound,
        "MG0204",
    );
    let mut bad = model_fixture(reg, "suite-orphan", "suitelin").await;
    bad.lineage.parent_models = vec!["suite-base@7".into()];
    let e = expect_err(reg.register_model(bad).await, ErrorKind::NotFound, "MG0207");
    assert_eq!(e.pointer.as_deref(), Some("/lineage/parentModels/0"));
}

/// Promotion by an approver, status, pointer history.
pub async fn promote_and_history(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let req = model_fixture(reg, "suite-promo", "suitefam").await;
    reg.register_model(req.clone()).await.unwrap();
    let mut req2 = req.clone();
    req2.code_ref = Some("git+https://example.com/x.git@2".into());
    reg.register_model(req2).await.unwrap();

    let writer = ctx.as_role("suite-promo-writer", Role::Writer).await;
    let approver = ctx.as_role("suite-promo-approver", Role::Approver).await;
    let to = |version: u64, to: &str| PromoteRequest {
        version,
        to: to.into(),
        reason: Some(format!("suite: {to}")),
    };
    expect_err(
        writer.promote("suite-promo", to(1, "staging")).await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let m1 = approver
        .promote("suite-promo", to(1, "staging"))
        .await
        .unwrap();
    assert_eq!((m1.from_version, m1.to_version), (None, 1));
    assert_eq!(m1.moved_by, approver.whoami().await.unwrap().name);
    assert_eq!(
        reg.model_version("suite-promo", "1").await.unwrap().status,
        Status::Staging
    );
    approver
        .promote("suite-promo", to(1, "prod"))
        .await
        .unwrap();
    let m3 = approver
        .promote("suite-promo", to(2, "prod"))
        .await
        .unwrap();
    assert_eq!((m3.from_version, m3.to_version), (Some(1), 2));
    approver
        .promote("suite-promo", to(2, "canary-eu"))
        .await
        .unwrap();
    expect_err(
        approver.promote("suite-promo", to(2, "prod")).await,
        ErrorKind::Conflict,
        "MG0211",
    );
    for bad in ["Prod", "latest", "-x", "a b", "../x"] {
        expect_err(
            approver.promote("suite-promo", to(2, bad)).await,
            ErrorKind::Invalid,
            "MG0206",
        );
    }
    expect_err(
        approver.promote("suite-promo", to(9, "prod")).await,
        ErrorKind::NotFound,
        "MG0205",
    );
    let v1 = reg.model_version("suite-promo", "1").await.unwrap();
    let v2 = reg.model_version("suite-promo", "prod").await.unwrap();
    assert_eq!(v1.status, Status::Deprecated);
    assert_eq!((v2.version, v2.status), (2, Status::Prod));
    assert_eq!(v2.pointers, ["canary-eu", "prod"]);
    assert_eq!(v1.pointers, ["staging"]);
    let m = reg.model("suite-promo").await.unwrap();
    assert_eq!(
        m.pointers,
        BTreeMap::from([
            ("canary-eu".to_string(), 2),
            ("prod".to_string(), 2),
            ("staging".to_string(), 1)
        ])
    );

    let h = reg.history("suite-promo").await.unwrap();
    let kinds: Vec<String> = h
        .iter()
        .map(|e| match e {
            HistoryEntry::Registered { version, .. } => format!("reg {version}"),
            HistoryEntry::Moved(m) => {
                format!("{} {:?}->{}", m.pointer, m.from_version, m.to_version)
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "reg 1",
            "reg 2",
            "staging None->1",
            "prod None->1",
            "prod Some(1)->2",
            "canary-eu None->2"
        ]
    );
    let HistoryEntry::Moved(last) = h.last().unwrap() else {
        unreachable!()
    };
    let ev = reg
        .audit_events(last.audit_seq - 1, 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(ev.seq, last.audit_seq);
    assert_eq!(ev.action, "model.promote");
    assert_eq!(ev.after_digest, Some(v2.digest));
    let prod_move = reg
        .audit_events(m3.audit_seq - 1, 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(prod_move.before_digest, Some(v1.digest));
}

/// Roles and tokens: each role can do its part and not the next one's; revoked tokens fail.
pub async fn roles_and_tokens(ctx: &Ctx) {
    let reader_reg = ctx.as_role("suite-reader", Role::Reader).await;
    let writer = ctx.as_role("suite-writer", Role::Writer).await;
    let approver = ctx.as_role("suite-approver", Role::Approver).await;
    assert_eq!(
        reader_reg.whoami().await.unwrap(),
        Principal {
            name: "suite-reader".into(),
            role: Role::Reader
        }
    );
    expect_err(
        reader_reg
            .upload_artifact(
                ArtifactUpload {
                    name: "x.bin".into(),
                    ..Default::default()
                },
                reader(b"x"),
            )
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    expect_err(
        reader_reg
            .register_dataset(dataset_req("suite-ro", &[("x", b"1")]))
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let req = model_fixture(writer.as_ref(), "suite-roles", "suitefam").await;
    let v = writer.register_model(req).await.unwrap().record;
    assert_eq!(v.created_by, "suite-writer", "createdBy is the principal");
    reader_reg.model("suite-roles").await.unwrap();
    expect_err(
        writer
            .promote(
                "suite-roles",
                PromoteRequest {
                    version: 1,
                    to: "prod".into(),
                    reason: None,
                },
            )
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    expect_err(
        approver
            .create_token(TokenRequest {
                name: "sneaky".into(),
                role: Role::Admin,
            })
            .await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    expect_err(approver.list_tokens().await, ErrorKind::Forbidden, "MG0403");
    expect_err(approver.check().await, ErrorKind::Forbidden, "MG0403");

    let t = ctx
        .admin
        .create_token(TokenRequest {
            name: "suite-doomed".into(),
            role: Role::Writer,
        })
        .await
        .unwrap();
    assert!(t.token.starts_with("mgt_"));
    let list = ctx.admin.list_tokens().await.unwrap();
    let info = list.iter().find(|i| i.token_id == t.info.token_id).unwrap();
    assert_eq!(info.role, Role::Writer);
    let listed = serde_json::to_string(&list).unwrap();
    let secret = t.token.rsplit('_').next().unwrap();
    assert!(!listed.contains(secret), "listings never carry secrets");
    (ctx.connect)(t.token.clone())
        .await
        .expect("valid before revocation");
    let revoked = ctx.admin.revoke_token(&t.info.token_id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let e = (ctx.connect)(t.token.clone()).await.err().expect("revoked");
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
    assert!(!e.to_string().contains(secret), "errors never echo secrets");
    let forged = format!("mgt_{}_{}", t.info.token_id, "0".repeat(64));
    let e = (ctx.connect)(forged).await.err().expect("forged");
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
    let e = (ctx.connect)("garbage".into())
        .await
        .err()
        .expect("garbage");
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
    expect_err(
        ctx.admin
            .create_token(TokenRequest {
                name: "os:root".into(),
                role: Role::Admin,
            })
            .await,
        ErrorKind::Invalid,
        "MG0405",
    );
    expect_err(
        ctx.admin.revoke_token("0123456789abcdef").await,
        ErrorKind::NotFound,
        "MG0404",
    );
}

/// Every mutation wrote one audit event: gapless, digests recompute, actors right.
pub async fn audit_trail(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let before = all_events(reg).await;
    let req = model_fixture(reg, "suite-audit", "suitefam").await;
    let v = reg.register_model(req).await.unwrap().record;
    let d = reg
        .register_dataset(dataset_req("suite-audit-ds", &[("f", b"f")]))
        .await
        .unwrap()
        .record;
    reg.promote(
        "suite-audit",
        PromoteRequest {
            version: 1,
            to: "staging".into(),
            reason: None,
        },
    )
    .await
    .unwrap();
    let events = all_events(reg).await;
    let new = &events[before.len()..];
    let actions: Vec<(&str, &str)> = new
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    let ds = format!("dataset:{}", d.dataset_id);
    let art = format!("artifact:{}", v.artifact_ids[0]);
    assert_eq!(
        actions,
        [
            ("artifact.upload", art.as_str()),
            ("model.register", "model:suite-audit@1"),
            ("dataset.register", ds.as_str()),
            ("model.promote", "model:suite-audit@1"),
        ]
    );
    let me = reg.whoami().await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "gapless from 1");
        assert_eq!(
            ms_registry::audit::event_digest(e),
            e.digest,
            "seq {}",
            e.seq
        );
    }
    for e in new {
        assert_eq!(
            (e.actor.as_str(), e.actor_role),
            (me.name.as_str(), me.role)
        );
    }
    assert_eq!(new[1].after_digest, Some(v.digest));
    let e = reg.audit_events(0, 1001).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
}

/// Hostile input gets a clear 4xx and changes nothing.
pub async fn hostile_input(ctx: &Ctx) {
    let reg = ctx.admin.as_ref();
    let before = all_events(reg).await.len();
    for name in ["../../etc/passwd", "a/b", "..", "", "x\0y", "bad\nname"] {
        let e = reg
            .upload_artifact(
                ArtifactUpload {
                    name: name.into(),
                    ..Default::default()
                },
                reader(b"x"),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{name:?}: {e}");
        assert_eq!(e.pointer.as_deref(), Some("/name"));
    }
    let e = reg
        .upload_artifact(
            ArtifactUpload {
                name: "huge.bin".into(),
                size: Some(10 << 30),
                ..Default::default()
            },
            reader(b"x"),
        )
        .await
        .unwrap_err();
    // Above the store's limit: refused before reading; below it: refused when the body ends.
    assert!(
        matches!(e.kind, ErrorKind::TooLarge | ErrorKind::Integrity),
        "{e}"
    );
    assert_eq!(e.pointer.as_deref(), Some("/size"), "{e}");
    let e = reg
        .start_upload(ArtifactUpload {
            name: "huge.bin".into(),
            size: Some(u64::MAX),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    let e = reg
        .upload_artifact(
            ArtifactUpload {
                name: "wrong.bin".into(),
                expected_digest: Some(Digest::of(b"something else")),
                ..Default::default()
            },
            reader(b"the real bytes"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Integrity, "{e}");
    let e = reg
        .artifact(&Digest::of(b"the real bytes"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = reg
        .upload_artifact(
            ArtifactUpload {
                name: "short.bin".into(),
                size: Some(100),
                ..Default::default()
            },
            reader(b"only a few bytes"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Integrity | ErrorKind::Invalid),
        "{e}"
    );
    let e = reg.upload_status("../../../etc").await.unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound),
        "{e}"
    );
    let e = reg.model_version("../etc", "1").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = reg
        .lineage("model:../../x", Direction::Up, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound),
        "{e}"
    );
    let mut huge = dataset_req("suite-huge", &[("a", b"1"), ("b", b"2")]);
    huge.files[0].size = u64::MAX;
    let e = reg.register_dataset(huge).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    let mut metrics = model_fixture(reg, "suite-hostile", "suitefam").await;
    let after_fixture = before + 1;
    metrics.metrics.insert("loss".into(), f64::NAN);
    expect_err(
        reg.register_model(metrics).await,
        ErrorKind::Invalid,
        "MG0209",
    );
    assert_eq!(
        all_events(reg).await.len(),
        after_fixture,
        "nothing else changed"
    );
    let report = reg.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Eight writers registering versions of one model at once: versions 1..=8, each once.
pub async fn concurrent_registration(ctx: &Ctx) {
    let reg = ctx.admin.clone();
    let base = model_fixture(reg.as_ref(), "suite-race", "suitefam").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = reg.clone();
        let mut req = base.clone();
        req.metrics.insert("run".into(), f64::from(i));
        tasks.push(tokio::spawn(async move {
            reg.register_model(req).await.expect("register")
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.created);
        versions.push(r.record.version);
    }
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
    let events = all_events(reg.as_ref()).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    assert_eq!(reg.model("suite-race").await.unwrap().latest_version, 8);
}

/// `check()` is clean on a healthy registry and finds deleted and corrupted blobs and
/// dangling rows. Breaks the registry: give it one of its own.
pub async fn check_finds_damage(ctx: &Ctx) {
    let damage = ctx.damage.as_ref().expect("this check needs a Damage");
    let reg = ctx.admin.as_ref();
    let a = upload(reg, "gone.bin", b"this blob will be deleted").await;
    let b = upload(reg, "bent.bin", b"this blob will be corrupted").await;
    let req = model_fixture(reg, "suite-dmg", "suitefam").await;
    reg.register_model(req).await.unwrap();
    let clean = reg.check().await.unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(clean.blobs_checked >= 3 && clean.rows_checked > 0);

    damage.delete_blob(&a.artifact_id).await;
    damage.corrupt_blob(&b.artifact_id).await;
    damage
        .sql("INSERT INTO pointers (model_id, name, version) VALUES ('suite-dmg', 'prod', 42)")
        .await;
    damage
        .sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .await;
    let report = reg.check().await.unwrap();
    let codes: Vec<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.code.as_str(), p.subject.as_str()))
        .collect();
    let has =
        |code: &str, subject: &str| codes.iter().any(|(c, s)| *c == code && s.contains(subject));
    assert!(has("MG0601", &a.artifact_id.hex()), "{codes:?}");
    assert!(
        codes
            .iter()
            .any(|(c, s)| c.starts_with("MG01")
                || *c == "MG0602" && s.contains(&b.artifact_id.hex())),
        "{codes:?}"
    );
    assert!(has("MG0606", "suite-dmg"), "{codes:?}");
    assert!(has("MG0608", "audit:2"), "{codes:?}");
}

/// A chain for the provenance checks: dataset `src` -> dataset `train` (sourcedFrom), model
/// `base@1` trained on `train`, model `child@1` derived from `base@1` and trained on `train`.
/// Returns (child version, base version, train dataset, src dataset).
async fn provenance_chain(
    reg: &dyn Registry,
    prefix: &str,
) -> (ModelVersion, ModelVersion, Dataset, Dataset) {
    let src = reg
        .register_dataset(dataset_req(&format!("{prefix}-src"), &[("raw", b"raw")]))
        .await
        .unwrap()
        .record;
    let mut train = dataset_req(&format!("{prefix}-train"), &[("clean", b"clean")]);
    train.source_refs = vec![
        src.dataset_id.to_string(),
        "https://example.com/crawl".into(),
    ];
    train.transformations = vec![Transformation {
        code_ref: "git+https://example.com/prep.py@0123456789abcdef0123456789abcdef01234567".into(),
        checksum: Digest::of(b"prep.py"),
        description: None,
    }];
    let train = reg.register_dataset(train).await.unwrap().record;
    let mut base = model_fixture(reg, &format!("{prefix}-base"), "suitefam").await;
    base.lineage.dataset_refs = vec![train.dataset_id];
    let base = reg.register_model(base).await.unwrap().record;
    let mut child = model_fixture(reg, &format!("{prefix}-child"), "suitefam").await;
    child.lineage = Lineage {
        dataset_refs: vec![train.dataset_id],
        parent_models: vec![format!("{prefix}-base@1")],
    };
    child.code_ref = Some("git+https://example.com/train@abc".into());
    let child = reg.register_model(child).await.unwrap().record;
    (child, base, train, src)
}

fn statement_of(r: &ProvenanceRecord) -> serde_json::Value {
    serde_json::from_str(&r.statement).expect("a statement is JSON")
}

/// (code, subject) of every finding of a chain, sorted.
fn findings(chain: &ms_registry::provenance_chain::Chain) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = chain
        .problems()
        .map(|p| (p.code.clone(), p.subject.clone()))
        .collect();
    v.sort();
    v
}

/// Provenance: an SLSA statement per version and dataset, written at registration and named
/// by its audit event; read by any subject spelling; listed with the artifacts it covers; the
/// chain walked down to the datasets; bad signatures refused on attach, changing nothing.
pub async fn provenance(ctx: &Ctx) {
    use ms_registry::provenance_chain;
    let reg = ctx.admin.as_ref();
    let (child, base, train, src) = provenance_chain(reg, "suite-prov").await;
    let rec = reg.provenance("suite-prov-child@1").await.unwrap();
    assert_eq!(rec.subject, "model:suite-prov-child@1");
    assert_eq!(rec.statement_digest, Digest::of(rec.statement.as_bytes()));
    assert!(rec.bundle.is_none() && rec.key_id.is_none());
    for spelling in ["model:suite-prov-child@1", "suite-prov-child@latest"] {
        assert_eq!(reg.provenance(spelling).await.unwrap(), rec, "{spelling}");
    }
    let s = statement_of(&rec);
    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(s["subject"][0]["name"], "model:suite-prov-child@1");
    assert_eq!(s["subject"][0]["digest"]["sha256"], child.digest.hex());
    assert_eq!(
        s["subject"][1]["digest"]["sha256"],
        child.artifact_ids[0].hex()
    );
    let bd = &s["predicate"]["buildDefinition"];
    assert_eq!(bd["buildType"], ms_registry::provenance::MODEL_BUILD_TYPE);
    assert_eq!(bd["externalParameters"]["modelId"], "suite-prov-child");
    assert_eq!(
        bd["externalParameters"]["codeRef"],
        "git+https://example.com/train@abc"
    );
    let deps = bd["resolvedDependencies"].as_array().unwrap();
    let dep = |name: &str| {
        deps.iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {deps:?}"))
    };
    assert_eq!(dep("spec")["digest"]["sha256"], child.spec_digest.hex());
    assert_eq!(
        dep(&format!("dataset:{}", train.dataset_id))["digest"]["sha256"],
        train.dataset_id.hex()
    );
    assert_eq!(
        dep("model:suite-prov-base@1")["digest"]["sha256"],
        base.digest.hex()
    );
    let run = &s["predicate"]["runDetails"];
    assert_eq!(run["builder"]["id"], ms_registry::provenance::BUILDER_ID);
    assert_eq!(
        run["metadata"]["invocationId"],
        format!("audit:{}", rec.audit_seq)
    );
    assert!(
        run["metadata"]["startedOn"].as_str().unwrap()
            <= run["metadata"]["finishedOn"].as_str().unwrap()
    );
    // The registration's audit event names the statement.
    let ev = reg.audit_events(rec.audit_seq - 1, 1).await.unwrap();
    assert_eq!(ev[0].action, "model.register");
    assert_eq!(
        ev[0].details["provenance"],
        rec.statement_digest.to_string()
    );
    // The dataset's statement: its sources and transformations.
    let drec = reg.provenance(&train.dataset_id.to_string()).await.unwrap();
    assert_eq!(drec.subject, format!("dataset:{}", train.dataset_id));
    let ds = statement_of(&drec);
    assert_eq!(ds["subject"][0]["digest"]["sha256"], train.dataset_id.hex());
    let ddeps = ds["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
    assert!(ddeps.contains(&src.dataset_id.hex()), "{ddeps}");
    assert!(ddeps.contains("https://example.com/crawl"), "{ddeps}");
    assert!(ddeps.contains(&Digest::of(b"prep.py").hex()), "{ddeps}");
    // The artifact lists the record of the version made of it.
    let a = reg.artifact(&child.artifact_ids[0]).await.unwrap();
    assert_eq!(a.provenance_records, vec![rec.clone()]);
    // The chain, down to the datasets; every link verifies but for its signature.
    let chain = provenance_chain::verify(reg, "suite-prov-child@1", &[])
        .await
        .unwrap();
    let subjects: Vec<&str> = chain.links.iter().map(|l| l.subject.as_str()).collect();
    let (train_id, src_id) = (
        format!("dataset:{}", train.dataset_id),
        format!("dataset:{}", src.dataset_id),
    );
    assert_eq!(subjects[0], "model:suite-prov-child@1");
    let mut rest = subjects[1..].to_vec();
    rest.sort();
    let mut want = vec![
        "model:suite-prov-base@1",
        train_id.as_str(),
        src_id.as_str(),
    ];
    want.sort();
    assert_eq!(rest, want);
    assert!(!chain.verified);
    let unsigned: Vec<(String, String)> = subjects
        .iter()
        .map(|s| ("MG0910".to_string(), s.to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        findings(&chain),
        unsigned,
        "only the signatures are missing"
    );
    // From a dataset: its sources.
    let chain = provenance_chain::verify(reg, &train.dataset_id.to_string(), &[])
        .await
        .unwrap();
    let subjects: Vec<&str> = chain.links.iter().map(|l| l.subject.as_str()).collect();
    assert_eq!(subjects, [train_id.as_str(), src_id.as_str()]);
    assert_eq!(chain.links[0].dependencies[0].relation, "sourcedFrom");
    // Refusals: malformed subjects, unknown ones, bundles that are not for this statement.
    let before = all_events(reg).await.len();
    for bad in ["no-version", "model:Bad@1", "dataset:sha256:zz"] {
        expect_err(reg.provenance(bad).await, ErrorKind::Invalid, "MG0902");
    }
    expect_err(
        reg.provenance("suite-prov-child@9").await,
        ErrorKind::NotFound,
        "MG0205",
    );
    let signer = ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap();
    let garbage = ProvenanceSignature {
        bundle: serde_json::json!({"mediaType": "nope"}),
    };
    expect_err(
        reg.sign_provenance("suite-prov-child@1", garbage).await,
        ErrorKind::Invalid,
        "MG0903",
    );
    let for_base = ms_registry::provenance::sign_record(
        &reg.provenance("suite-prov-base@1").await.unwrap(),
        &signer,
    )
    .unwrap();
    let e = expect_err(
        reg.sign_provenance("suite-prov-child@1", for_base).await,
        ErrorKind::Integrity,
        "MG0904",
    );
    assert!(e.message.contains("model:suite-prov-child@1"), "{e}");
    let sig = ms_registry::provenance::sign_record(&rec, &signer).unwrap();
    expect_err(
        reg.sign_provenance("suite-prov-child@1", sig.clone()).await,
        ErrorKind::Forbidden,
        "MG0905",
    );
    let huge = ProvenanceSignature {
        bundle: serde_json::json!({"padding": "x".repeat(2 << 20)}),
    };
    expect_err(
        reg.sign_provenance("suite-prov-child@1", huge).await,
        ErrorKind::TooLarge,
        "MG0903",
    );
    let reader = ctx.as_role("suite-prov-reader", Role::Reader).await;
    assert_eq!(reader.provenance("suite-prov-child@1").await.unwrap(), rec);
    expect_err(
        reader.sign_provenance("suite-prov-child@1", sig).await,
        ErrorKind::Forbidden,
        "MG0403",
    );
    let after: Vec<AuditEvent> = all_events(reg).await[before..].to_vec();
    assert!(
        after.iter().all(|e| e.action == "token.create"),
        "refusals write nothing: {after:?}"
    );
    assert_eq!(reg.provenance("suite-prov-child@1").await.unwrap(), rec);
}

/// Registers `key` as a signing key (revoked at once when `revoked`).
async fn register_key(reg: &dyn Registry, name: &str, key: &ms_trust::PublicKey, revoked: bool) {
    let k = reg
        .add_key(KeyRequest {
            name: name.into(),
            public_key: key.to_pem(),
            environments: vec!["dev".into()],
        })
        .await
        .expect("admin adds keys")
        .record;
    if revoked {
        reg.revoke_key(
            &k.key_id,
            RevokeKeyRequest {
                reason: "suite: compromised".into(),
            },
        )
        .await
        .expect("admin revokes keys");
    }
}

/// Signed provenance and what the chain finds when it is tampered with: a changed statement
/// (and a changed statement with its digest updated), a dependency that no longer resolves, an
/// unsigned link, an untrusted or revoked key. Breaks the registry: give it one of its own.
pub async fn provenance_tampering(ctx: &Ctx) {
    use ms_registry::provenance_chain::{self, TrustedKey};
    let damage = ctx.damage.as_ref().expect("this check needs a Damage");
    let reg = ctx.admin.as_ref();
    let (child, _base, train, src) = provenance_chain(reg, "suite-tamper").await;
    let signer = ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap();
    let revoked =
        ms_trust::keyfile::KeyFileSigner::generate(ms_trust::Algorithm::EcdsaP256Sha256).unwrap();
    use ms_trust::Signer as _;
    register_key(reg, "suite-key", signer.public_key(), false).await;
    register_key(reg, "suite-revoked", revoked.public_key(), true).await;
    let trusted = [TrustedKey {
        name: "suite-key".into(),
        key: signer.public_key().clone(),
    }];
    let train_id = format!("dataset:{}", train.dataset_id);
    let src_id = format!("dataset:{}", src.dataset_id);
    let all = [
        "model:suite-tamper-child@1",
        "model:suite-tamper-base@1",
        train_id.as_str(),
        src_id.as_str(),
    ];
    // A revoked key is refused; then every link signed with the registered one.
    let rec = reg.provenance(all[0]).await.unwrap();
    let e = expect_err(
        reg.sign_provenance(
            all[0],
            ms_registry::provenance::sign_record(&rec, &revoked).unwrap(),
        )
        .await,
        ErrorKind::Forbidden,
        "MG0905",
    );
    assert!(e.message.contains("revoked"), "{e}");
    for s in all {
        let rec = reg.provenance(s).await.unwrap();
        let signed = reg
            .sign_provenance(
                s,
                ms_registry::provenance::sign_record(&rec, &signer).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(signed.key_id, Some(signer.public_key().fingerprint()));
        assert!(signed.bundle.is_some() && signed.signed_at.is_some());
        assert_eq!(signed.statement, rec.statement);
    }
    let events = all_events(reg).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.subject.as_str()),
        ("provenance.sign", all[3])
    );
    let chain = provenance_chain::verify(reg, all[0], &trusted)
        .await
        .unwrap();
    assert!(chain.verified, "{:?}", findings(&chain));
    assert_eq!(chain.links.len(), 4);
    assert!(
        chain
            .links
            .iter()
            .all(|l| l.signed_by.as_deref() == Some("suite-key"))
    );
    // Trusting another key: every link is signed by an untrusted one.
    let other = [TrustedKey {
        name: "other".into(),
        key: revoked.public_key().clone(),
    }];
    let chain = provenance_chain::verify(reg, all[0], &other).await.unwrap();
    let mut want: Vec<(String, String)> = all
        .iter()
        .map(|s| ("MG0912".to_string(), s.to_string()))
        .collect();
    want.sort();
    assert_eq!(findings(&chain), want);

    // The registry's own keys as the trust root: verified; once the key is revoked, no link is.
    let own = provenance_chain::registry_keys(reg).await.unwrap();
    assert_eq!(own.len(), 1, "the revoked key is no trust root");
    let chain = provenance_chain::verify(reg, all[0], &own).await.unwrap();
    assert!(chain.verified, "{:?}", findings(&chain));
    reg.revoke_key(
        &signer.public_key().fingerprint(),
        RevokeKeyRequest {
            reason: "suite: rotated out".into(),
        },
    )
    .await
    .unwrap();
    let own = provenance_chain::registry_keys(reg).await.unwrap();
    let chain = provenance_chain::verify(reg, all[0], &own).await.unwrap();
    assert_eq!(
        findings(&chain),
        want,
        "a revoked key's signatures count for nothing"
    );

    // 1. A changed byte of the base's statement.
    damage
        .sql(
            "UPDATE provenance_records SET statement = REPLACE(statement, \
             'https://modelspec.dev/registry/v1', 'https://modelspec.dev/registry/v2') \
             WHERE subject = 'model:suite-tamper-base@1'",
        )
        .await;
    let chain = provenance_chain::verify(reg, all[0], &trusted)
        .await
        .unwrap();
    let base = "model:suite-tamper-base@1".to_string();
    assert_eq!(
        findings(&chain),
        [
            ("MG0904".to_string(), base.clone()),
            ("MG0907".to_string(), base.clone()),
            ("MG0911".to_string(), base.clone()),
        ]
    );
    let msg = chain.problems().find(|p| p.code == "MG0907").unwrap();
    assert!(msg.message.contains("was changed"), "{msg:?}");
    let report = reg.check().await.unwrap();
    let found: Vec<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.code.as_str(), p.subject.as_str()))
        .collect();
    assert_eq!(
        found,
        [("MG0907", base.as_str()), ("MG0911", base.as_str())],
        "registry check sees it too"
    );
    // 2. ... with its digest updated to match: the audit event and the signature still tell.
    let tampered = reg.provenance(&base).await.unwrap();
    damage
        .sql(&format!(
            "UPDATE provenance_records SET statement_digest = '{}' WHERE subject = '{base}'",
            Digest::of(tampered.statement.as_bytes())
        ))
        .await;
    let chain = provenance_chain::verify(reg, all[0], &trusted)
        .await
        .unwrap();
    assert_eq!(
        findings(&chain),
        [
            ("MG0904".to_string(), base.clone()),
            ("MG0911".to_string(), base.clone()),
        ]
    );
    // 3. An unsigned link: the signature of the source dataset removed.
    damage
        .sql(&format!(
            "UPDATE provenance_records SET bundle = NULL, key_id = NULL, signed_at = NULL \
             WHERE subject = '{src_id}'"
        ))
        .await;
    let chain = provenance_chain::verify(reg, all[0], &trusted)
        .await
        .unwrap();
    assert!(
        findings(&chain).contains(&("MG0910".to_string(), src_id.clone())),
        "{:?}",
        findings(&chain)
    );
    // 4. A dependency whose digest does not resolve: the training dataset is gone.
    damage
        .sql(&format!(
            "DELETE FROM dataset_files WHERE dataset_id = '{}'",
            train.dataset_id
        ))
        .await;
    damage
        .sql(&format!(
            "DELETE FROM datasets WHERE dataset_id = '{}'",
            train.dataset_id
        ))
        .await;
    let chain = provenance_chain::verify(reg, all[0], &trusted)
        .await
        .unwrap();
    let f = findings(&chain);
    for who in [all[0], base.as_str()] {
        let p = chain
            .problems()
            .find(|p| p.code == "MG0909" && p.subject == who)
            .unwrap_or_else(|| panic!("MG0909 for {who} in {f:?}"));
        assert!(p.message.contains(&train_id), "{p:?}");
        assert!(p.message.contains("does not resolve"), "{p:?}");
    }
    assert!(
        f.contains(&("MG0901".to_string(), train_id.clone())),
        "{f:?}"
    );
    // The root itself was never touched: only its dependency is reported.
    assert!(chain.links[0].problems.iter().all(|p| p.code == "MG0909"));
    // 5. A deleted record: the root has none to start from, and registry check names it.
    damage
        .sql(&format!(
            "DELETE FROM provenance_records WHERE subject = '{}'",
            all[0]
        ))
        .await;
    expect_err(
        provenance_chain::verify(reg, all[0], &trusted).await,
        ErrorKind::NotFound,
        "MG0901",
    );
    let report = reg.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.code == "MG0901" && p.subject == all[0]),
        "{:?}",
        report.problems
    );
    let _ = child;
}
