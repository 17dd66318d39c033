//! The blob store against a local directory and against a real S3 server (SeaweedFS, started
//! by ms-test-support): every test function runs on both. Small part and chunk sizes make
//! multipart uploads and multi-chunk indexes happen with a few MiB of data.

use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ms_registry::api::{ByteRange, ByteReader};
use ms_registry::blob::hash::{ChainState, ChunkedSha256};
use ms_registry::blob::{BlobOptions, BlobStore, ChunkIndex, S3Config, Secret, codes};
use ms_registry::entity::ArtifactUpload;
use ms_registry::{Digest, ErrorKind, RegistryError};
use object_store::ObjectStoreExt;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// A store location a test can open several times (a new instance = a restarted process).
struct Fixture {
    url: String,
    s3: S3Config,
    bucket: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn local() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            url: format!("file://{}", dir.path().display()),
            s3: S3Config::default(),
            bucket: None,
            _dir: Some(dir),
        }
    }

    fn s3() -> Fixture {
        let server = ms_test_support::seaweed::seaweed();
        let bucket = server.bucket();
        Fixture {
            url: format!("s3://{bucket}/some/prefix"),
            s3: S3Config {
                endpoint: Some(server.endpoint.clone()),
                region: Some(server.region.clone()),
                access_key_id: Some(server.access_key.clone()),
                secret_access_key: Some(Secret::new(server.secret_key.clone())),
                session_token: None,
                allow_http: true,
            },
            bucket: Some(bucket),
            _dir: None,
        }
    }

    fn options() -> BlobOptions {
        BlobOptions {
            multipart_threshold: 5 * MIB as u64,
            part_size: 5 * MIB as u64,
            chunk_size: CHUNK as u64,
            buffer_size: MIB,
            ..BlobOptions::default()
        }
    }

    async fn open(&self) -> BlobStore {
        self.open_with(Fixture::options()).await
    }

    async fn open_with(&self, opts: BlobOptions) -> BlobStore {
        BlobStore::open_with(&self.url, self.s3.clone(), opts)
            .await
            .unwrap()
    }

    /// Replaces the bytes stored under `key` (relative to the store's root) behind the
    /// store's back, as disk damage would.
    async fn tamper(&self, key: &str, bytes: Option<Vec<u8>>) {
        match &self.bucket {
            None => {
                let path = self._dir.as_ref().unwrap().path().join(key);
                match bytes {
                    Some(b) => {
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(path, b).unwrap()
                    }
                    None => std::fs::remove_file(path).unwrap(),
                }
            }
            Some(bucket) => {
                let s3 = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_endpoint(self.s3.endpoint.clone().unwrap())
                    .with_region(self.s3.region.clone().unwrap())
                    .with_access_key_id(self.s3.access_key_id.clone().unwrap())
                    .with_secret_access_key(self.s3.secret_access_key.clone().unwrap().expose())
                    .with_allow_http(true)
                    .build()
                    .unwrap();
                let path = object_store::path::Path::from(format!("some/prefix/{key}"));
                match bytes {
                    Some(b) => drop(s3.put(&path, b.into()).await.unwrap()),
                    None => s3.delete(&path).await.unwrap(),
                }
            }
        }
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn local() {
                super::run(super::$name(super::Fixture::local()));
            }
            #[test]
            fn s3() {
                super::run(super::$name(super::Fixture::s3()));
            }
        }
    )*};
}

fn run(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

on_both!(
    round_trip_of_many_sizes,
    sessions_round_trip,
    wrong_digest_is_refused_and_nothing_is_visible,
    size_mismatch_is_refused,
    limits_are_enforced_before_and_while_reading,
    uploads_of_stored_bytes_are_deduplicated,
    resume_after_an_interrupted_chunk_in_a_new_instance,
    offset_conflicts_name_the_current_offset,
    hostile_ids_and_unknown_digests,
    damaged_blobs_are_detected_on_read_and_by_check,
    ranges_are_served_and_verified,
    ranged_reads_of_middle_and_last_chunks_detect_a_flipped_byte,
    check_follows_the_chain_of_chunk_states,
    abandoned_uploads_are_reported_and_collected,
    one_writer_per_session,
);

/// The store is shared by a server's tasks: it and its futures must be `Send + Sync`.
#[allow(dead_code)]
fn store_and_futures_are_send(s: &BlobStore, d: &Digest, r: ByteReader, req: &ArtifactUpload) {
    fn is_send<T: Send>(_: &T) {}
    fn is_sync<T: Send + Sync>() {}
    is_sync::<BlobStore>();
    is_send(&s.put(req, r));
    is_send(&s.read(d, None));
    is_send(&s.append("x", 0, Box::new(Untouchable)));
    is_send(&s.finish("x"));
    is_send(&s.check());
    is_send(&s.gc_uploads(Duration::ZERO));
    is_send(&s.list());
}

/// Deterministic bytes that differ from position to position.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn body(bytes: &[u8]) -> ByteReader {
    Box::new(Cursor::new(bytes.to_vec()))
}

fn upload(name: &str) -> ArtifactUpload {
    ArtifactUpload {
        name: name.to_string(),
        ..ArtifactUpload::default()
    }
}

async fn read_all(
    store: &BlobStore,
    d: &Digest,
    range: Option<ByteRange>,
) -> std::io::Result<Vec<u8>> {
    let mut r = store.read(d, range).await.map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    r.body.read_to_end(&mut out).await?;
    assert_eq!(out.len() as u64, r.end - r.start);
    Ok(out)
}

fn code_of(e: &std::io::Error) -> String {
    ms_registry::blob::registry_error(e)
        .map(|r| r.code.clone())
        .unwrap_or_else(|| format!("not a registry error: {e}"))
}

fn assert_err(
    r: Result<impl std::fmt::Debug, RegistryError>,
    kind: ErrorKind,
    code: &str,
) -> RegistryError {
    let e = r.expect_err("expected an error");
    assert_eq!((e.kind, e.code.as_str()), (kind, code), "{e}");
    e
}

/// A body that hands out its bytes, then fails (a client that went away).
struct Interrupted(Cursor<Vec<u8>>);

impl AsyncRead for Interrupted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => Poll::Ready(Err(
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away"),
            )),
            other => other,
        }
    }
}

/// A body that must not be read.
struct Untouchable;

impl AsyncRead for Untouchable {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        panic!("the store read a body it should have refused unread")
    }
}

/// Nothing visible and nothing left behind.
async fn assert_empty(store: &BlobStore) {
    assert!(store.list().await.unwrap().is_empty());
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.uploads_in_progress.is_empty(),
        "{:?}",
        report.uploads_in_progress
    );
}

async fn round_trip_of_many_sizes(f: Fixture) {
    let store = f.open().await;
    let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * MIB + 1, 12 * MIB + 3];
    let mut digests = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let bytes = data(n, i as u64);
        let d = Digest::of(&bytes);
        // Half declare the digest (S3: multipart straight to the blob's key), half not
        // (S3: a staging object copied into place).
        let mut req = upload("x.bin");
        if i % 2 == 0 {
            req.expected_digest = Some(d);
            req.size = Some(n as u64);
        }
        let stored = store.put(&req, body(&bytes)).await.unwrap();
        assert_eq!(
            (stored.digest, stored.size, stored.created),
            (d, n as u64, true)
        );
        assert_eq!(store.stat(&d).await.unwrap(), Some(n as u64));
        assert_eq!(read_all(&store, &d, None).await.unwrap(), bytes, "size {n}");
        digests.push(d);
    }
    digests.sort();
    digests.dedup();
    assert_eq!(store.list().await.unwrap(), digests);
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.uploads_in_progress.is_empty());
    assert_eq!(report.blobs_checked, sizes.len() as u64);
    assert_eq!(
        report.bytes_hashed,
        sizes.iter().map(|&n| n as u64).sum::<u64>()
    );
    // The store's description never carries credentials.
    if let Some(secret) = &f.s3.secret_access_key {
        assert!(!format!("{store:?}").contains(secret.expose()));
        assert!(!store.url().contains(secret.expose()));
    }
}

async fn sessions_round_trip(f: Fixture) {
    let store = f.open().await;
    for (n, declare) in [
        (0usize, true),
        (7 * MIB + 5, false),
        (11 * MIB, true),
        (3, false),
    ] {
        let bytes = data(n, n as u64 + 1);
        let d = Digest::of(&bytes);
        let mut req = upload("s.bin");
        if declare {
            req.expected_digest = Some(d);
            req.size = Some(n as u64);
        }
        let s = store.begin(req.clone()).await.unwrap();
        assert_eq!(s.offset, 0);
        assert_eq!(s.request, req);
        // Uneven chunks: below, across and at part boundaries.
        let cuts = [0, n / 7, n / 2, (n / 2 + 1).min(n), n];
        for w in cuts.windows(2) {
            let s2 = store
                .append(&s.upload_id, w[0] as u64, body(&bytes[w[0]..w[1]]))
                .await
                .unwrap();
            assert_eq!(s2.offset, w[1] as u64);
        }
        assert_eq!(store.status(&s.upload_id).await.unwrap().offset, n as u64);
        let stored = store.finish(&s.upload_id).await.unwrap();
        assert_eq!(
            (stored.digest, stored.size, stored.created),
            (d, n as u64, true)
        );
        assert_eq!(read_all(&store, &d, None).await.unwrap(), bytes);
        assert_err(
            store.status(&s.upload_id).await,
            ErrorKind::NotFound,
            codes::MG0103,
        );
    }
    // A cancelled session leaves nothing.
    let s = store.begin(upload("c.bin")).await.unwrap();
    store
        .append(&s.upload_id, 0, body(&data(6 * MIB, 9)))
        .await
        .unwrap();
    store.cancel(&s.upload_id).await.unwrap();
    assert_err(
        store.finish(&s.upload_id).await,
        ErrorKind::NotFound,
        codes::MG0103,
    );
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty() && report.uploads_in_progress.is_empty());
}

async fn wrong_digest_is_refused_and_nothing_is_visible(f: Fixture) {
    let store = f.open().await;
    for n in [10, 12 * MIB] {
        let bytes = data(n, 3);
        let wrong = Digest::of(b"something else");
        let mut req = upload("w.bin");
        req.expected_digest = Some(wrong);
        let e = assert_err(
            store.put(&req, body(&bytes)).await,
            ErrorKind::Integrity,
            codes::MG0106,
        );
        assert!(e.message.contains(&Digest::of(&bytes).to_string()), "{e}");
        assert_eq!(store.stat(&wrong).await.unwrap(), None);
        assert_eq!(store.stat(&Digest::of(&bytes)).await.unwrap(), None);
        // The same through a session.
        let s = store.begin(req).await.unwrap();
        store.append(&s.upload_id, 0, body(&bytes)).await.unwrap();
        assert_err(
            store.finish(&s.upload_id).await,
            ErrorKind::Integrity,
            codes::MG0106,
        );
        assert_err(
            store.status(&s.upload_id).await,
            ErrorKind::NotFound,
            codes::MG0103,
        );
        assert_eq!(store.stat(&wrong).await.unwrap(), None);
    }
    assert_empty(&store).await;
}

async fn size_mismatch_is_refused(f: Fixture) {
    let store = f.open().await;
    let bytes = data(1000, 4);
    for declared in [999u64, 1001] {
        let mut req = upload("s.bin");
        req.size = Some(declared);
        assert_err(
            store.put(&req, body(&bytes)).await,
            ErrorKind::Integrity,
            codes::MG0107,
        );
    }
    // A session stops taking bytes past the declared size.
    let mut req = upload("s.bin");
    req.size = Some(10);
    let s = store.begin(req).await.unwrap();
    assert_err(
        store.append(&s.upload_id, 0, body(&bytes)).await,
        ErrorKind::Integrity,
        codes::MG0107,
    );
    assert_eq!(store.status(&s.upload_id).await.unwrap().offset, 0);
    // Finished too early, a session keeps its bytes and takes the rest.
    store
        .append(&s.upload_id, 0, body(&bytes[..4]))
        .await
        .unwrap();
    let e = assert_err(
        store.finish(&s.upload_id).await,
        ErrorKind::Integrity,
        codes::MG0107,
    );
    assert!(e.message.contains("4 of its declared 10"), "{e}");
    store
        .append(&s.upload_id, 4, body(&bytes[4..10]))
        .await
        .unwrap();
    let stored = store.finish(&s.upload_id).await.unwrap();
    assert_eq!(stored.digest, Digest::of(&bytes[..10]));
    store.cancel(&s.upload_id).await.unwrap_err();
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty() && report.uploads_in_progress.is_empty());
}

async fn limits_are_enforced_before_and_while_reading(f: Fixture) {
    let store = f
        .open_with(BlobOptions {
            max_blob_size: 1000,
            ..Fixture::options()
        })
        .await;
    let mut req = upload("big.gguf");
    req.size = Some(10_000_000_000);
    let e = assert_err(
        store.put(&req, Box::new(Untouchable)).await,
        ErrorKind::TooLarge,
        codes::MG0105,
    );
    assert_eq!(e.pointer.as_deref(), Some("/size"));
    assert_err(store.begin(req).await, ErrorKind::TooLarge, codes::MG0105);
    // Undeclared: cut off once past the limit.
    assert_err(
        store.put(&upload("a"), body(&data(1001, 5))).await,
        ErrorKind::TooLarge,
        codes::MG0105,
    );
    let s = store.begin(upload("a")).await.unwrap();
    store
        .append(&s.upload_id, 0, body(&data(600, 6)))
        .await
        .unwrap();
    assert_err(
        store.append(&s.upload_id, 600, body(&data(401, 6))).await,
        ErrorKind::TooLarge,
        codes::MG0105,
    );
    assert_eq!(store.status(&s.upload_id).await.unwrap().offset, 600);
    store.cancel(&s.upload_id).await.unwrap();
    // Exactly the limit is fine.
    store.put(&upload("a"), body(&data(1000, 5))).await.unwrap();
}

async fn uploads_of_stored_bytes_are_deduplicated(f: Fixture) {
    let store = f.open().await;
    let bytes = data(6 * MIB, 7);
    let d = Digest::of(&bytes);
    assert!(store.put(&upload("a"), body(&bytes)).await.unwrap().created);
    let again = store.put(&upload("b"), body(&bytes)).await.unwrap();
    assert_eq!((again.digest, again.created), (d, false));
    // Declared digest already stored: the body is not even read.
    let mut req = upload("c");
    req.expected_digest = Some(d);
    let found = store.put(&req, Box::new(Untouchable)).await.unwrap();
    assert_eq!(
        (found.digest, found.size, found.created),
        (d, bytes.len() as u64, false)
    );
    // ... unless the declared size contradicts the stored blob.
    req.size = Some(1);
    assert_err(
        store.put(&req, Box::new(Untouchable)).await,
        ErrorKind::Integrity,
        codes::MG0107,
    );
    // A session of stored bytes finishes as "not created".
    let s = store.begin(upload("d")).await.unwrap();
    store.append(&s.upload_id, 0, body(&bytes)).await.unwrap();
    assert!(!store.finish(&s.upload_id).await.unwrap().created);
    // Even when its bytes are gone, as after a crash between publishing the blob and removing
    // the session: the retried finish finds the blob.
    let s = store.begin(upload("e")).await.unwrap();
    store.append(&s.upload_id, 0, body(&bytes)).await.unwrap();
    if f.bucket.is_none() {
        f.tamper(&format!("uploads/{}/data", s.upload_id), None)
            .await;
    }
    let found = store.finish(&s.upload_id).await.unwrap();
    assert_eq!((found.digest, found.created), (d, false));
    assert_eq!(store.list().await.unwrap(), vec![d]);
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty() && report.uploads_in_progress.is_empty());
}

async fn resume_after_an_interrupted_chunk_in_a_new_instance(f: Fixture) {
    let bytes = data(17 * MIB + 11, 8);
    let d = Digest::of(&bytes);
    let mut req = upload("r.bin");
    req.expected_digest = Some(d);
    req.size = Some(bytes.len() as u64);
    let id = {
        let store = f.open().await;
        let s = store.begin(req).await.unwrap();
        let first = 3 * MIB;
        store
            .append(&s.upload_id, 0, body(&bytes[..first]))
            .await
            .unwrap();
        // 9 MiB more, then the connection breaks.
        let broken = Interrupted(Cursor::new(bytes[first..first + 9 * MIB].to_vec()));
        let e = assert_err(
            store
                .append(&s.upload_id, first as u64, Box::new(broken))
                .await,
            ErrorKind::Invalid,
            codes::MG0115,
        );
        assert!(e.message.contains("client went away"), "{e}");
        s.upload_id
    };
    // A new instance (a restarted process) continues from the durable offset.
    let store = f.open().await;
    let offset = store.status(&id).await.unwrap().offset as usize;
    assert!(
        (3 * MIB + 1..=12 * MIB).contains(&offset),
        "offset {offset}: the first chunk and the checkpoints of the broken one are durable, \
         nothing past the break is"
    );
    let s = store
        .append(&id, offset as u64, body(&bytes[offset..]))
        .await
        .unwrap();
    assert_eq!(s.offset, bytes.len() as u64);
    let stored = store.finish(&id).await.unwrap();
    assert_eq!((stored.digest, stored.created), (d, true));
    assert_eq!(read_all(&store, &d, None).await.unwrap(), bytes);
    assert_eq!(
        read_all(
            &store,
            &d,
            Some(ByteRange {
                start: 5,
                end: Some(9 * MIB as u64)
            })
        )
        .await
        .unwrap(),
        bytes[5..9 * MIB]
    );
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.uploads_in_progress.is_empty());
}

async fn offset_conflicts_name_the_current_offset(f: Fixture) {
    let store = f.open().await;
    let s = store.begin(upload("o")).await.unwrap();
    store
        .append(&s.upload_id, 0, body(&data(100, 1)))
        .await
        .unwrap();
    for wrong in [0u64, 99, 101, 1 << 40] {
        let e = assert_err(
            store.append(&s.upload_id, wrong, body(b"x")).await,
            ErrorKind::Conflict,
            codes::MG0104,
        );
        assert!(e.message.contains("offset is 100"), "{e}");
    }
    assert_eq!(store.status(&s.upload_id).await.unwrap().offset, 100);
    store.cancel(&s.upload_id).await.unwrap();
}

async fn hostile_ids_and_unknown_digests(f: Fixture) {
    let store = f.open().await;
    for id in [
        "../../../etc/passwd",
        "..",
        "",
        "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcde/",
        "0123456789abcdef0123456789abcdef/../x",
        "%2e%2e%2f",
    ] {
        assert_err(store.status(id).await, ErrorKind::Invalid, codes::MG0102);
        assert_err(
            store.append(id, 0, Box::new(Untouchable)).await,
            ErrorKind::Invalid,
            codes::MG0102,
        );
        assert_err(store.finish(id).await, ErrorKind::Invalid, codes::MG0102);
        assert_err(store.cancel(id).await, ErrorKind::Invalid, codes::MG0102);
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_err(
        store.status(unknown).await,
        ErrorKind::NotFound,
        codes::MG0103,
    );
    assert_err(
        store.append(unknown, 0, Box::new(Untouchable)).await,
        ErrorKind::NotFound,
        codes::MG0103,
    );
    assert_err(
        store.finish(unknown).await,
        ErrorKind::NotFound,
        codes::MG0103,
    );
    let d = Digest::of(b"never stored");
    assert_eq!(store.stat(&d).await.unwrap(), None);
    assert_err(
        store.read(&d, None).await.map(|_| ()),
        ErrorKind::NotFound,
        codes::MG0108,
    );
    assert!("sha256:../../x".parse::<Digest>().is_err());
    assert_empty(&store).await;
}

async fn damaged_blobs_are_detected_on_read_and_by_check(f: Fixture) {
    let store = f.open().await;
    let mut bytes = data(5 * CHUNK + 100, 10);
    let d = store.put(&upload("d"), body(&bytes)).await.unwrap().digest;
    let hex = d.hex();
    let key = format!("blobs/sha256/{}/{hex}", &hex[..2]);
    // One flipped bit in chunk 2.
    bytes[2 * CHUNK + 17] ^= 1;
    f.tamper(&key, Some(bytes.clone())).await;

    let e = read_all(&store, &d, None).await.unwrap_err();
    assert_eq!(code_of(&e), codes::MG0110);
    let e = read_all(
        &store,
        &d,
        Some(ByteRange {
            start: 2 * CHUNK as u64 + 10,
            end: Some(2 * CHUNK as u64 + 20),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(code_of(&e), codes::MG0110);
    // Ranges that touch only sound chunks are still served (and verified).
    let ok = read_all(
        &store,
        &d,
        Some(ByteRange {
            start: 10,
            end: Some(CHUNK as u64 + 5),
        }),
    )
    .await
    .unwrap();
    assert_eq!(ok, bytes[10..CHUNK + 5]);
    let report = store.check().await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].code, codes::MG0150);
    assert_eq!(report.problems[0].subject, format!("blob:{d}"));

    // A missing chunk index: ranged reads refuse, full reads still verify, check reports it.
    let good = data(3 * CHUNK, 11);
    let g = store.put(&upload("g"), body(&good)).await.unwrap().digest;
    let ghex = g.hex();
    f.tamper(&format!("blobs/sha256/{}/{ghex}.chunks", &ghex[..2]), None)
        .await;
    let e = store
        .read(
            &g,
            Some(ByteRange {
                start: 1,
                end: Some(2),
            }),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, codes::MG0111);
    assert_eq!(read_all(&store, &g, None).await.unwrap(), good);
    // A stray file under blobs/.
    f.tamper("blobs/sha256/ab/not-a-digest", Some(b"hello".to_vec()))
        .await;
    let mut codes_found: Vec<String> = store
        .check()
        .await
        .unwrap()
        .problems
        .into_iter()
        .map(|p| p.code)
        .collect();
    codes_found.sort();
    assert_eq!(codes_found, [codes::MG0150, codes::MG0151, codes::MG0153]);
    // A truncated blob is damage too.
    f.tamper(&key, Some(bytes[..100].to_vec())).await;
    let e = read_all(&store, &d, None).await.unwrap_err();
    assert!(matches!(code_of(&e).as_str(), "MG0110" | "MG0111"), "{e}");
}

async fn ranges_are_served_and_verified(f: Fixture) {
    let store = f.open().await;
    let n = 4 * CHUNK + 333;
    let bytes = data(n, 12);
    let d = store.put(&upload("r"), body(&bytes)).await.unwrap().digest;
    let r = |start: usize, end: Option<usize>| ByteRange {
        start: start as u64,
        end: end.map(|e| e as u64),
    };
    for (range, want) in [
        (r(0, Some(10)), &bytes[..10]),
        (r(0, Some(CHUNK)), &bytes[..CHUNK]),
        (
            r(CHUNK - 1, Some(3 * CHUNK + 1)),
            &bytes[CHUNK - 1..3 * CHUNK + 1],
        ),
        (r(n - 10, None), &bytes[n - 10..]),
        (r(n - 1, Some(n + 1000)), &bytes[n - 1..]),
        (r(0, None), &bytes[..]),
    ] {
        assert_eq!(
            read_all(&store, &d, Some(range)).await.unwrap(),
            want,
            "{range:?}"
        );
    }
    let rd = store.read(&d, Some(r(5, Some(n + 99)))).await.unwrap();
    assert_eq!((rd.start, rd.end, rd.size), (5, n as u64, n as u64));
    for bad in [
        r(n, None),
        r(n + 1, Some(n + 5)),
        r(10, Some(10)),
        r(10, Some(5)),
    ] {
        assert_err(
            store.read(&d, Some(bad)).await.map(|_| ()),
            ErrorKind::RangeNotSatisfiable,
            codes::MG0109,
        );
    }
    // The empty blob: the whole of it is readable, any other range is not.
    let e = store.put(&upload("e"), body(b"")).await.unwrap().digest;
    assert_eq!(read_all(&store, &e, Some(r(0, None))).await.unwrap(), b"");
    assert_err(
        store.read(&e, Some(r(0, Some(1)))).await.map(|_| ()),
        ErrorKind::RangeNotSatisfiable,
        codes::MG0109,
    );
}

fn chunk_range(i: usize, size: usize) -> Option<ByteRange> {
    Some(ByteRange {
        start: (i * CHUNK) as u64,
        end: Some(((i + 1) * CHUNK).min(size) as u64),
    })
}

fn blob_key(d: &Digest) -> String {
    format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex())
}

/// The chaining states of `bytes` at the start of each chunk, as the index keeps them.
fn states_of(bytes: &[u8]) -> Vec<ChainState> {
    let mut h = ChunkedSha256::new(CHUNK as u64);
    h.update(bytes);
    h.midstates()
}

/// Writes `index` as `d`'s chunk index behind the store's back.
async fn forge_index(f: &Fixture, d: &Digest, index: &ChunkIndex) {
    f.tamper(
        &format!("{}.chunks", blob_key(d)),
        Some(index.to_json().to_vec()),
    )
    .await;
}

async fn ranged_reads_of_middle_and_last_chunks_detect_a_flipped_byte(f: Fixture) {
    let store = f.open().await;
    // A short last chunk, and a last chunk that is whole (an exact multiple).
    for (seed, n) in [(20, 4 * CHUNK + 100), (21, 3 * CHUNK)] {
        let bytes = data(n, seed);
        let d = store.put(&upload("m"), body(&bytes)).await.unwrap().digest;
        let chunks = n.div_ceil(CHUNK);
        for bad_chunk in [1, chunks - 1] {
            let mut damaged = bytes.clone();
            damaged[bad_chunk * CHUNK + 7] ^= 0x40;
            f.tamper(&blob_key(&d), Some(damaged)).await;
            for i in 0..chunks {
                let got = read_all(&store, &d, chunk_range(i, n)).await;
                if i == bad_chunk {
                    let e = got.expect_err("a damaged chunk is never served");
                    assert_eq!(code_of(&e), codes::MG0110, "chunk {i} of {n} bytes: {e}");
                } else {
                    let want = &bytes[i * CHUNK..((i + 1) * CHUNK).min(n)];
                    assert_eq!(got.unwrap(), want, "chunk {i} of {n} bytes");
                }
            }
            // A range inside the damaged chunk, before the damaged byte, is refused too.
            let inside = Some(ByteRange {
                start: (bad_chunk * CHUNK + 2) as u64,
                end: Some((bad_chunk * CHUNK + 6) as u64),
            });
            let e = read_all(&store, &d, inside).await.unwrap_err();
            assert_eq!(code_of(&e), codes::MG0110);
        }
        f.tamper(&blob_key(&d), Some(bytes)).await;
        assert!(store.check().await.unwrap().problems.is_empty());
    }
}

async fn check_follows_the_chain_of_chunk_states(f: Fixture) {
    let store = f.open().await;
    let n = 5 * CHUNK + 300;
    let bytes = data(n, 30);
    let d = store.put(&upload("c"), body(&bytes)).await.unwrap().digest;
    let sound = ChunkIndex::new(d, n as u64, CHUNK as u64, states_of(&bytes));
    // The stored index is the documented format, and these states.
    let stored = read_all(&store, &d, chunk_range(0, n)).await.unwrap();
    assert_eq!(stored, bytes[..CHUNK]);
    let json: serde_json::Value = serde_json::from_slice(&sound.to_json()).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["algorithm"], "sha256-midstate");
    assert_eq!(json["chunkSize"], CHUNK);
    assert_eq!(
        json["states"][0],
        "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
    );
    forge_index(&f, &d, &sound).await;
    assert!(store.check().await.unwrap().problems.is_empty());

    // One altered state, the blob intact: check names the chunk; the reads that use that
    // state (the chunk before it and the chunk it starts) refuse to serve.
    let mut altered = sound.clone();
    altered.states[3][5] ^= 1;
    forge_index(&f, &d, &altered).await;
    let problems = store.check().await.unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, codes::MG0152);
    assert!(
        problems[0].message.contains("chunk 3"),
        "{}",
        problems[0].message
    );
    for i in [2, 3] {
        let e = read_all(&store, &d, chunk_range(i, n)).await.unwrap_err();
        assert_eq!(code_of(&e), codes::MG0110, "chunk {i}");
    }
    assert_eq!(
        read_all(&store, &d, chunk_range(4, n)).await.unwrap(),
        bytes[4 * CHUNK..5 * CHUNK]
    );
    assert_eq!(read_all(&store, &d, None).await.unwrap(), bytes);

    // A chunk rewritten together with the state after it: that chunk passes (the index
    // vouches for it), but the chain breaks at the next chunk, or, when the next chunk is
    // the last, at the blob's digest; check re-hashes the blob and finds it.
    for forged_chunk in [1, 4] {
        let mut forged = bytes.clone();
        forged[forged_chunk * CHUNK + 11] ^= 0x08;
        let mut index = sound.clone();
        index.states[forged_chunk + 1] = states_of(&forged)[forged_chunk + 1];
        f.tamper(&blob_key(&d), Some(forged)).await;
        forge_index(&f, &d, &index).await;
        let e = read_all(&store, &d, chunk_range(forged_chunk + 1, n))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), codes::MG0110, "the chunk after {forged_chunk}");
        let e = read_all(&store, &d, None).await.unwrap_err();
        assert_eq!(code_of(&e), codes::MG0110);
        let problems = store.check().await.unwrap().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].code, codes::MG0150);
        f.tamper(&blob_key(&d), Some(bytes.clone())).await;
    }

    // An index of another format is refused by ranged reads and reported by check.
    let mut other = serde_json::to_value(&sound).unwrap();
    other["version"] = 1.into();
    f.tamper(
        &format!("{}.chunks", blob_key(&d)),
        Some(other.to_string().into_bytes()),
    )
    .await;
    let e = store.read(&d, chunk_range(1, n)).await.err().unwrap();
    assert_eq!(e.code, codes::MG0116, "{e}");
    assert!(e.message.contains("version 1"), "{e}");
    let problems = store.check().await.unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, codes::MG0152);
    assert_eq!(read_all(&store, &d, None).await.unwrap(), bytes);
}

async fn abandoned_uploads_are_reported_and_collected(f: Fixture) {
    let store = f.open().await;
    let s = store.begin(upload("a")).await.unwrap();
    store
        .append(&s.upload_id, 0, body(&data(6 * MIB + 1, 13)))
        .await
        .unwrap();
    let report = store.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.uploads_in_progress, vec![s.upload_id.clone()]);
    assert!(
        store
            .gc_uploads(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );

    // The same store seen with a short upload time limit: the session is abandoned.
    let strict = f
        .open_with(BlobOptions {
            upload_ttl: Duration::ZERO,
            ..Fixture::options()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = strict.check().await.unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].code, codes::MG0154);
    assert_eq!(
        strict.gc_uploads(Duration::ZERO).await.unwrap(),
        vec![s.upload_id.clone()]
    );
    assert_err(
        store.status(&s.upload_id).await,
        ErrorKind::NotFound,
        codes::MG0103,
    );
    assert_empty(&strict).await;
}

/// A body that reports when it is first read.
struct Signalling<R> {
    inner: R,
    started: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Signalling<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(());
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

async fn one_writer_per_session(f: Fixture) {
    let store = std::sync::Arc::new(f.open().await);
    let s = store.begin(upload("busy")).await.unwrap();
    // A client that sends a few bytes and then stalls.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"hello")
        .await
        .unwrap();
    let (tx, started) = tokio::sync::oneshot::channel();
    let stalled = Signalling {
        inner: server,
        started: Some(tx),
    };
    let first = tokio::spawn({
        let (store, id) = (store.clone(), s.upload_id.clone());
        async move { store.append(&id, 0, Box::new(stalled)).await }
    });
    started.await.unwrap();
    assert_err(
        store.append(&s.upload_id, 0, body(b"x")).await,
        ErrorKind::Conflict,
        codes::MG0113,
    );
    assert_err(
        store.finish(&s.upload_id).await,
        ErrorKind::Conflict,
        codes::MG0113,
    );
    drop(client);
    let done = first.await.unwrap().unwrap();
    assert_eq!(done.offset, 5);
    // A request dropped midway (its client gone, the server cancels the handler) leaves the
    // session usable at its durable offset.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    tokio::io::AsyncWriteExt::write_all(&mut client, b" world")
        .await
        .unwrap();
    let (tx, started) = tokio::sync::oneshot::channel();
    let stalled = Signalling {
        inner: server,
        started: Some(tx),
    };
    let cancelled = tokio::spawn({
        let (store, id) = (store.clone(), s.upload_id.clone());
        async move { store.append(&id, 5, Box::new(stalled)).await }
    });
    started.await.unwrap();
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(store.status(&s.upload_id).await.unwrap().offset, 5);
    let stored = store.finish(&s.upload_id).await.unwrap();
    assert_eq!(stored.digest, Digest::of(b"hello"));
}

#[test]
fn s3_credentials_are_required_and_never_shown() {
    let f = Fixture::s3();
    run(async {
        let missing = BlobStore::open_with(&f.url, S3Config::default(), Fixture::options())
            .await
            .unwrap_err();
        assert_eq!(
            (missing.kind, missing.code.as_str()),
            (ErrorKind::Invalid, codes::MG0101)
        );
        assert!(missing.message.contains("AWS_ACCESS_KEY_ID"), "{missing}");

        let wrong_secret = "wrong-secret-0123456789";
        let mut s3 = f.s3.clone();
        s3.secret_access_key = Some(Secret::new(wrong_secret));
        let store = BlobStore::open_with(&f.url, s3.clone(), Fixture::options())
            .await
            .unwrap();
        let e = store.put(&upload("x"), body(b"abc")).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Unavailable, codes::MG0112),
            "{e}"
        );
        for shown in [
            e.to_string(),
            format!("{e:?}"),
            format!("{store:?}"),
            store.url(),
            format!("{s3:?}"),
        ] {
            assert!(!shown.contains(wrong_secret), "{shown}");
            assert!(
                !shown.contains(f.s3.secret_access_key.as_ref().unwrap().expose()),
                "{shown}"
            );
        }
    });
}
