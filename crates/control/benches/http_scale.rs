//! The control plane measured over HTTP on loopback (issue 15, point 10): p50/p95/p99 of
//! `GET /models/{id}` and of depth-5 lineage walks (up from a version, down from a dataset)
//! against a registry loaded at scale, and artifact upload throughput through the server
//! against a plain copy to the same disk (and, with `--s3`, a plain `put` to the same
//! SeaweedFS server).
//!
//! `cargo bench -p ms-control --bench http_scale -- [--db URL --store URL] [--samples N]
//! [--upload-mib N] [--s3]`. `--db` names a registry already loaded (e.g. by ms-registry's
//! `registry_scale` bench: 100,000 versions, 1,000,000 lineage edges); without it only the
//! upload part runs. Requests are sequential on one keep-alive connection, as a CLI makes
//! them; the figures include JSON encoding, HTTP and the client's parsing.

use std::path::Path;
use std::time::{Duration, Instant};

use ms_control::ServeConfig;
use ms_registry::Registry;
use ms_registry::embedded::Embedded;
use ms_registry::entity::{ArtifactUpload, ModelQuery, Principal, Role, TokenRequest};
use ms_registry::remote::Remote;

struct Args {
    db: Option<String>,
    store: Option<String>,
    samples: usize,
    upload_mib: u64,
    s3: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        db: None,
        store: None,
        samples: 2000,
        upload_mib: 512,
        s3: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("a value after the flag");
        match k.as_str() {
            "--db" => a.db = Some(v()),
            "--store" => a.store = Some(v()),
            "--samples" => a.samples = v().parse().expect("--samples N"),
            "--upload-mib" => a.upload_mib = v().parse().expect("--upload-mib N"),
            "--s3" => a.s3 = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn admin() -> Principal {
    Principal {
        name: "bench".into(),
        role: Role::Admin,
    }
}

/// p50, p95, p99 in milliseconds.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.95), at(0.99))
}

async fn timed_gets(client: &reqwest::Client, token: &str, urls: &[String]) -> Vec<Duration> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        let t = Instant::now();
        let r = client.get(url).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let _: serde_json::Value = r.json().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

fn report(name: &str, d: Vec<Duration>) {
    let n = d.len();
    let (p50, p95, p99) = percentiles(d);
    println!("  {name:<34} n={n:<6} p50 {p50:7.2} ms  p95 {p95:7.2} ms  p99 {p99:7.2} ms");
}

async fn reads(db: &str, store: &str, samples: usize) {
    let embedded = Embedded::open(db, store, admin()).await.unwrap();
    let token = embedded
        .create_token(TokenRequest {
            name: "bench-reader".into(),
            role: Role::Reader,
        })
        .await
        .unwrap()
        .token;
    let server = ms_control::serve(&ServeConfig::new(db, store))
        .await
        .unwrap();
    let base = server.url();
    // Which models and datasets exist: the first pages of the listing, then a lineage walk.
    let mut models = Vec::new();
    let mut page = None;
    while models.len() < 2000 {
        let p = embedded
            .list_models(ModelQuery {
                page_token: page,
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap();
        models.extend(p.items.iter().map(|v| (v.model_id.clone(), v.version)));
        page = p.next_page_token;
        if page.is_none() {
            break;
        }
    }
    assert!(
        !models.is_empty(),
        "the registry at {db} has no model versions"
    );
    let mut datasets = Vec::new();
    for (m, v) in models.iter().take(50) {
        let g = embedded
            .lineage(&format!("{m}@{v}"), ms_registry::entity::Direction::Up, 1)
            .await
            .unwrap();
        datasets.extend(
            g.nodes
                .iter()
                .filter_map(|n| n.id.strip_prefix("dataset:").map(str::to_string)),
        );
    }
    let pick = |i: usize, n: usize| (i.wrapping_mul(7919)) % n;
    let model_urls: Vec<String> = (0..samples)
        .map(|i| format!("{base}/models/{}", models[pick(i, models.len())].0))
        .collect();
    let up_urls: Vec<String> = (0..samples)
        .map(|i| {
            let (m, v) = &models[pick(i, models.len())];
            format!("{base}/lineage/{m}@{v}?direction=up&depth=5")
        })
        .collect();
    let down_urls: Vec<String> = if datasets.is_empty() {
        Vec::new()
    } else {
        (0..samples)
            .map(|i| {
                let d = &datasets[pick(i, datasets.len())];
                format!("{base}/lineage/{d}?direction=down&depth=5")
            })
            .collect()
    };
    let client = reqwest::Client::new();
    // Warm the connection and the database's cache.
    timed_gets(&client, &token, &model_urls[..samples.min(100)]).await;
    println!("reads over HTTP ({db}):");
    report(
        "GET /models/{id}",
        timed_gets(&client, &token, &model_urls).await,
    );
    report(
        "GET /lineage/{version}?up&depth=5",
        timed_gets(&client, &token, &up_urls).await,
    );
    if !down_urls.is_empty() {
        report(
            "GET /lineage/{dataset}?down&depth=5",
            timed_gets(&client, &token, &down_urls).await,
        );
    }
    server.shutdown().await;
}

/// A file of `mib` MiB of incompressible bytes.
fn make_file(path: &Path, mib: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Uploads `file` through a control plane over `db` + `store`; the time of the upload call.
async fn upload_through_server(db: &str, store: &str, file: &Path, name: &str) -> Duration {
    let embedded = Embedded::open(db, store, admin()).await.unwrap();
    let token = embedded
        .create_token(TokenRequest {
            name: "bench-writer".into(),
            role: Role::Writer,
        })
        .await
        .unwrap()
        .token;
    let server = ms_control::serve(&ServeConfig::new(db, store))
        .await
        .unwrap();
    let remote = Remote::new(&server.url(), &token).unwrap();
    let size = std::fs::metadata(file).unwrap().len();
    let reader = tokio::fs::File::open(file).await.unwrap();
    let t = Instant::now();
    let r = remote
        .upload_artifact(
            ArtifactUpload {
                name: name.into(),
                size: Some(size),
                ..Default::default()
            },
            Box::new(reader),
        )
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(r.created);
    server.shutdown().await;
    took
}

async fn uploads(mib: u64, s3: bool) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let file = dir.path().join("upload.bin");
    make_file(&file, mib);
    let bytes = mib << 20;
    println!("uploads of {mib} MiB ({}):", dir.path().display());

    // Plain copy to the same disk, made durable as the store makes blobs durable.
    let copy = dir.path().join("copy.bin");
    let t = Instant::now();
    std::fs::copy(&file, &copy).unwrap();
    std::fs::File::open(&copy).unwrap().sync_all().unwrap();
    let plain = t.elapsed();
    std::fs::remove_file(&copy).unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let store = format!("file://{}", dir.path().join("blobs").display());
    let http = upload_through_server(&db, &store, &file, "upload.bin").await;
    // The store alone (no HTTP), into a fresh store: what the server's share of the cost is.
    let direct_db = format!("sqlite://{}", dir.path().join("direct.db").display());
    let direct_store = format!("file://{}", dir.path().join("direct-blobs").display());
    let embedded = Embedded::open(&direct_db, &direct_store, admin())
        .await
        .unwrap();
    let reader = tokio::fs::File::open(&file).await.unwrap();
    let t = Instant::now();
    embedded
        .upload_artifact(
            ArtifactUpload {
                name: "direct.bin".into(),
                size: Some(bytes),
                ..Default::default()
            },
            Box::new(reader),
        )
        .await
        .unwrap();
    let direct = t.elapsed();
    println!(
        "  local disk: plain copy {:7.1} MiB/s, embedded store {:7.1} MiB/s, through the server {:7.1} MiB/s ({:.0}% of the copy)",
        mib_per_s(bytes, plain),
        mib_per_s(bytes, direct),
        mib_per_s(bytes, http),
        100.0 * plain.as_secs_f64() / http.as_secs_f64()
    );

    if s3 {
        let weed = ms_test_support::seaweed::seaweed();
        // Plain: the same file put to the same S3 server in 8 MiB parts, straight from disk.
        let bucket = weed.bucket();
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .unwrap();
        let t = Instant::now();
        let upload = object_store::ObjectStoreExt::put_multipart(&store, &"plain.bin".into())
            .await
            .unwrap();
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut f = tokio::fs::File::open(&file).await.unwrap();
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.unwrap();
            writer.write(&buf[..n]);
        }
        writer.finish().await.unwrap();
        let plain = t.elapsed();
        let db = format!("sqlite://{}", dir.path().join("registry-s3.db").display());
        let server_store = format!("s3://{}/bench", weed.bucket());
        let http = upload_through_server(&db, &server_store, &file, "s3.bin").await;
        println!(
            "  S3 (SeaweedFS): plain put {:7.1} MiB/s, through the server {:7.1} MiB/s ({:.0}%)",
            mib_per_s(bytes, plain),
            mib_per_s(bytes, http),
            100.0 * plain.as_secs_f64() / http.as_secs_f64()
        );
    }
}

fn main() {
    let args = parse_args();
    if args.s3 {
        let weed = ms_test_support::seaweed::seaweed();
        for (k, v) in weed.aws_env() {
            // SAFETY: no other thread exists yet (the runtime is built below), so nothing
            // reads the environment while it changes.
            unsafe { std::env::set_var(k, v) };
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        match (&args.db, &args.store) {
            (Some(db), Some(store)) => reads(db, store, args.samples).await,
            (Some(db), None) => {
                let store = format!(
                    "file://{}",
                    std::env::temp_dir().join("ms-http-bench-blobs").display()
                );
                reads(db, &store, args.samples).await
            }
            _ => println!("reads: skipped (give --db URL of a loaded registry)"),
        }
        uploads(args.upload_mib, args.s3).await;
    });
}
