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
