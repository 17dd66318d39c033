//! Artifact upload throughput against a plain copy of the same bytes to the same place, side by
//! side in one run (issue 15, point 10: at least 80%). Local: `BlobStore::put` into a `file://`
//! store vs reading the file and writing it beside the store with an fsync (what `cp` + `sync`
//! does). S3: `BlobStore::put` into a SeaweedFS bucket vs a plain `object_store` multipart
//! upload of the same file with the same part size. The upload declares the file's digest,
//! as `modelspec artifact push` does. Rounds alternate the two so that the
//! machine's noise hits both; the figure quoted is the median ratio.
//!
//! `cargo bench -p ms-registry --bench upload_throughput` (release profile). Env:
//! `UPLOAD_BENCH_MIB` (default 512), `UPLOAD_BENCH_ROUNDS` (default 5),
//! `UPLOAD_BENCH_TARGETS` (`local,s3`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use ms_registry::Digest;
use ms_registry::blob::{BlobOptions, BlobStore, S3Config, Secret};
use ms_registry::entity::ArtifactUpload;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A file of pseudo-random bytes (incompressible, deterministic), written once.
fn make_source(path: &Path, bytes: u64) {
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..bytes / (1 << 20) {
        for w in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

async fn plain_local_copy(src: &Path, dst: &Path) {
    let mut input = tokio::fs::File::open(src).await.unwrap();
    let mut out = tokio::fs::File::create(dst).await.unwrap();
    tokio::io::copy_buf(
        &mut tokio::io::BufReader::with_capacity(4 << 20, &mut input),
        &mut out,
    )
    .await
    .unwrap();
    out.sync_all().await.unwrap();
}

async fn plain_s3_copy(store: &dyn ObjectStore, src: &Path, key: &str, part: usize) {
    let upload = store.put_multipart(&ObjectPath::from(key)).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
    let mut input = tokio::fs::File::open(src).await.unwrap();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = input.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(3).await.unwrap();
        writer.write(&buf[..n]);
    }
    writer.finish().await.unwrap();
}

async fn blob_put(store: &BlobStore, src: &Path, digest: Digest) {
    let file = tokio::fs::File::open(src).await.unwrap();
    let req = ArtifactUpload {
        name: "bench.bin".into(),
        expected_digest: Some(digest),
        ..Default::default()
    };
    let stored = store.put(&req, Box::new(file)).await.unwrap();
    assert!(stored.created, "each round stores into a fresh place");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn report(target: &str, bytes: u64, plain: &[f64], ours: &[f64]) {
    let ratios: Vec<f64> = plain.iter().zip(ours).map(|(p, o)| p / o).collect();
    let mbs = |s: f64| bytes as f64 / MIB as f64 / s;
    println!(
        "{target}: upload/plain-copy throughput ratio median {:.3} (min {:.3}, max {:.3}); \
         upload {:.0} MiB/s, plain copy {:.0} MiB/s (medians of {} rounds, {} MiB)",
        median(ratios.clone()),
        ratios.iter().cloned().fold(f64::INFINITY, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max),
        mbs(median(ours.to_vec())),
        mbs(median(plain.to_vec())),
        ratios.len(),
        bytes / MIB
    );
}

fn main() {
    let bytes = env_u64("UPLOAD_BENCH_MIB", 512) * MIB;
    let rounds = env_u64("UPLOAD_BENCH_ROUNDS", 5) as usize;
    let targets = std::env::var("UPLOAD_BENCH_TARGETS").unwrap_or_else(|_| "local,s3".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Under target/ rather than /tmp: the store and the plain copy share one real disk.
    let work = tempfile::Builder::new()
        .prefix("upload-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let src = work.path().join("source.bin");
    make_source(&src, bytes);
    // Declared, as `modelspec artifact push` does (it hashes the file first to skip bytes the
    // store has): on S3 the parts then go straight to the blob's key, with no server-side copy.
    let digest = Digest(Sha256::digest(std::fs::read(&src).unwrap()).into());

    if targets.contains("local") {
        let (mut plain, mut ours) = (vec![], vec![]);
        for round in 0..rounds {
            let dir = work.path().join(format!("round-{round}"));
            std::fs::create_dir_all(&dir).unwrap();
            let store = rt
                .block_on(BlobStore::open(dir.join("store").to_str().unwrap()))
                .unwrap();
            let t = Instant::now();
            rt.block_on(plain_local_copy(&src, &dir.join("copy.bin")));
            plain.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            rt.block_on(blob_put(&store, &src, digest));
            ours.push(t.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&dir).unwrap();
        }
        report("local", bytes, &plain, &ours);
    }

    if targets.contains("s3") {
        let sw = ms_test_support::seaweed::seaweed();
        let opts = BlobOptions::default();
        let part = opts.part_size as usize;
        let (mut plain, mut ours) = (vec![], vec![]);
        for _ in 0..rounds {
            let bucket = sw.bucket();
            let raw = AmazonS3Builder::new()
                .with_endpoint(&sw.endpoint)
                .with_region(&sw.region)
                .with_access_key_id(&sw.access_key)
                .with_secret_access_key(&sw.secret_key)
                .with_allow_http(true)
                .with_bucket_name(&bucket)
                .build()
                .unwrap();
            let s3 = S3Config {
                endpoint: Some(sw.endpoint.clone()),
                region: Some(sw.region.clone()),
                access_key_id: Some(sw.access_key.clone()),
                secret_access_key: Some(Secret::new(sw.secret_key.clone())),
                session_token: None,
                allow_http: true,
            };
            let store = rt
                .block_on(BlobStore::open_with(
                    &format!("s3://{bucket}/ours"),
                    s3,
                    BlobOptions::default(),
                ))
                .unwrap();
            let t = Instant::now();
            rt.block_on(plain_s3_copy(&raw, &src, "plain/copy.bin", part));
            plain.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            rt.block_on(blob_put(&store, &src, digest));
            ours.push(t.elapsed().as_secs_f64());
        }
        report("s3", bytes, &plain, &ours);
    }
}
