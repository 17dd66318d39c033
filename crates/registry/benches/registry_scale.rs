//! The registry at the scale: 100,000 model versions and 1,000,000 lineage edges,
//! bulk-loaded into SQLite and PostgreSQL, then p50/p95 of the reads the API serves most:
//! a model (`GET /models/{id}`), one version, and depth-5 lineage walks up from a version and
//! down from a dataset. In-process (the HTTP figures come from the server's own benchmark).
//!
//! `cargo bench -p ms-registry --bench registry_scale [-- --backend sqlite|postgres|both]
//! [--versions N] [--edges-per-version K] [--samples N]`. PostgreSQL is a throwaway server
//! from `ms_test_support::postgres` unless `MODELSPEC_BENCH_PG` gives a URL.
//!
//! Shape: 1,000 models x 100 versions; each version derivedFrom the previous one and
//! trainedOn 8 of 50,500 datasets; each dataset sourcedFrom another dataset (a binary tree)
//! and an external URI. 99,000 + 800,000 + 101,000 = 1,000,000 edges.

use std::time::{Duration, Instant};

use ms_registry::entity::{Direction, Principal, Role};
use ms_registry::{Embedded, Registry};

struct Args {
    backend: String,
    models: u64,
    versions_per_model: u64,
    datasets: u64,
    trained_on: u64,
    samples: usize,
    /// Keep the SQLite database here (and reuse it when it exists: no second load).
    sqlite_path: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        backend: "both".into(),
        models: 1000,
        versions_per_model: 100,
        datasets: 50_500,
        trained_on: 8,
        samples: 2000,
        sqlite_path: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("a value after the flag");
        match k.as_str() {
            "--backend" => a.backend = v(),
            "--models" => a.models = v().parse().unwrap(),
            "--versions-per-model" => a.versions_per_model = v().parse().unwrap(),
            "--datasets" => a.datasets = v().parse().unwrap(),
            "--trained-on" => a.trained_on = v().parse().unwrap(),
            "--samples" => a.samples = v().parse().unwrap(),
            "--sqlite-path" => a.sqlite_path = Some(v()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A small deterministic generator (SplitMix64), so that runs load the same graph.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hex64(n: u64, salt: &str) -> String {
    ms_registry::Digest::of(format!("{salt}{n}").as_bytes()).to_string()
}

fn model_name(m: u64) -> String {
    format!("bench-model-{m:05}")
}

/// Inserts `rows` (each a list of values) into `table` in multi-row statements inside one
/// transaction per `batch_rows * 20` rows.
async fn bulk(reg: &Embedded, table: &str, cols: &[&str], rows: Vec<Vec<Val>>) {
    let per_stmt = (30_000 / cols.len()).min(1000);
    let pool = reg.db().pool();
    for group in rows.chunks(per_stmt * 20) {
        let mut tx = pool.begin().await.unwrap();
        for chunk in group.chunks(per_stmt) {
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
            let mut n = 0;
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for j in 0..cols.len() {
                    if j > 0 {
                        sql.push(',');
                    }
                    n += 1;
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                for v in row {
                    q = match v {
                        Val::S(s) => q.bind(s.clone()),
                        Val::I(i) => q.bind(*i),
                        Val::N => q.bind(None::<String>),
                    };
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

#[derive(Clone)]
enum Val {
    S(String),
    I(i64),
    N,
}

const SPEC: &str = include_str!("../../../examples/01-artifacts.modelspec.yaml");

async fn load(reg: &Embedded, a: &Args) -> (u64, u64) {
    let t = Instant::now();
    let at = "2026-12-07T00:00:00.000Z".to_string();
    let mut rng = Rng(15);
    // Datasets.
    let rows: Vec<Vec<Val>> = (0..a.datasets)
        .map(|d| {
            vec![
                Val::S(hex64(d, "dataset")),
                Val::S(format!("bench-ds-{d}")),
                Val::S(hex64(d, "manifest")),
                Val::S("CC-BY-4.0".into()),
                Val::S("[]".into()),
                Val::S("[]".into()),
                Val::S("[]".into()),
                Val::I(1),
                Val::I(1),
                Val::S(at.clone()),
                Val::S("bench".into()),
            ]
        })
        .collect();
    bulk(
        reg,
        "datasets",
        &[
            "dataset_id",
            "name",
            "checksum",
            "license",
            "pii_flags",
            "source_refs",
            "transformations",
            "file_count",
            "total_size",
            "created_at",
            "created_by",
        ],
        rows,
    )
    .await;
    // Models and versions.
    let rows: Vec<Vec<Val>> = (0..a.models)
        .map(|m| {
            vec![
                Val::S(model_name(m)),
                Val::S(format!("fam{}", m % 20)),
                Val::I(a.versions_per_model as i64),
                Val::S(at.clone()),
            ]
        })
        .collect();
    bulk(
        reg,
        "models",
        &["model_id", "family", "latest_version", "created_at"],
        rows,
    )
    .await;
    let mut versions = Vec::new();
    let mut edges = Vec::new();
    for m in 0..a.models {
        for v in 1..=a.versions_per_model {
            let node = format!("model:{}@{v}", model_name(m));
            let mut ds = Vec::new();
            while (ds.len() as u64) < a.trained_on {
                let d = rng.below(a.datasets);
                if !ds.contains(&d) {
                    ds.push(d);
                }
            }
            let lineage = serde_json::json!({
                "datasetRefs": ds.iter().map(|d| hex64(*d, "dataset")).collect::<Vec<_>>(),
                "parentModels": if v > 1 { vec![format!("{}@{}", model_name(m), v - 1)] } else { vec![] },
            });
            versions.push(vec![
                Val::S(model_name(m)),
                Val::I(v as i64),
                Val::S(hex64(m * 1_000_000 + v, "version")),
                Val::S(format!("fam{}", m % 20)),
                Val::N,
                Val::N,
                Val::S("[]".into()),
                Val::S("{}".into()),
                Val::S(lineage.to_string()),
                Val::N,
                Val::S(at.clone()),
                Val::S("bench".into()),
                Val::S("draft".into()),
                Val::S(hex64(0, "spec")),
                Val::S(SPEC.into()),
                Val::I(0),
            ]);
            for d in ds {
                edges.push(vec![
                    Val::S(node.clone()),
                    Val::S(format!("dataset:{}", hex64(d, "dataset"))),
                    Val::S("trainedOn".into()),
                ]);
            }
            if v > 1 {
                edges.push(vec![
                    Val::S(node.clone()),
                    Val::S(format!("model:{}@{}", model_name(m), v - 1)),
                    Val::S("derivedFrom".into()),
                ]);
            }
        }
    }
    let n_versions = versions.len() as u64;
    bulk(
        reg,
        "model_versions",
        &[
            "model_id",
            "version",
            "digest",
            "family",
            "declared_version",
            "code_ref",
            "artifact_ids",
            "metrics",
            "lineage",
            "provenance",
            "created_at",
            "created_by",
            "status",
            "spec_digest",
            "spec",
            "audit_seq",
        ],
        versions,
    )
    .await;
    for d in 0..a.datasets {
        let me = format!("dataset:{}", hex64(d, "dataset"));
        let parent = if d == 0 {
            "source:https://example.com/root-a".to_string()
        } else {
            format!("dataset:{}", hex64((d - 1) / 2, "dataset"))
        };
        edges.push(vec![
            Val::S(me.clone()),
            Val::S(parent),
            Val::S("sourcedFrom".into()),
        ]);
        edges.push(vec![
            Val::S(me),
            Val::S(format!("source:https://example.com/crawl/{}", d % 1000)),
            Val::S("sourcedFrom".into()),
        ]);
    }
    let n_edges = edges.len() as u64;
    bulk(
        reg,
        "lineage_edges",
        &["child", "parent", "relation"],
        edges,
    )
    .await;
    let analyze = "ANALYZE";
    sqlx::query(analyze).execute(reg.db().pool()).await.unwrap();
    eprintln!(
        "  loaded {n_versions} versions, {n_edges} edges in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (n_versions, n_edges)
}

fn pct(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.5), at(0.95), at(0.99))
}

async fn measure<F, Fut>(name: &str, samples: usize, mut f: F)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut rng = Rng(7);
    for _ in 0..samples / 10 {
        f(rng.next()).await;
    }
    let mut times = Vec::with_capacity(samples);
    let mut sizes = 0usize;
    for _ in 0..samples {
        let x = rng.next();
        let t = Instant::now();
        sizes += f(x).await;
        times.push(t.elapsed());
    }
    let (p50, p95, p99) = pct(times);
    println!(
        "  {name:<34} p50 {p50:7.3} ms   p95 {p95:7.3} ms   p99 {p99:7.3} ms   (mean size {:.1})",
        sizes as f64 / samples as f64
    );
}

async fn run(label: &str, db_url: &str, a: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    let admin = Principal {
        name: "bench".into(),
        role: Role::Admin,
    };
    let reg = Embedded::open(db_url, &store, admin).await.unwrap();
    println!("{label}:");
    let loaded = sqlx::query("SELECT 1 FROM models LIMIT 1")
        .fetch_optional(reg.db().pool())
        .await
        .unwrap()
        .is_some();
    if !loaded {
        load(&reg, a).await;
    }
    let (models, vpm, datasets) = (a.models, a.versions_per_model, a.datasets);
    measure("model (GET /models/{id})", a.samples, |x| {
        let reg = reg.clone();
        async move {
            let m = reg.model(&model_name(x % models)).await.unwrap();
            m.versions.len()
        }
    })
    .await;
    measure("model version (by number)", a.samples, |x| {
        let reg = reg.clone();
        async move {
            let v = reg
                .model_version(&model_name(x % models), &(1 + (x >> 20) % vpm).to_string())
                .await
                .unwrap();
            v.artifact_ids.len() + 1
        }
    })
    .await;
    measure("lineage up, depth 5 (model)", a.samples, |x| {
        let reg = reg.clone();
        async move {
            let id = format!("{}@{}", model_name(x % models), 1 + (x >> 20) % vpm);
            let g = reg.lineage(&id, Direction::Up, 5).await.unwrap();
            g.nodes.len()
        }
    })
    .await;
    measure("lineage down, depth 5 (dataset)", a.samples, |x| {
        let reg = reg.clone();
        async move {
            let id = hex64(x % datasets, "dataset");
            let g = reg.lineage(&id, Direction::Down, 5).await.unwrap();
            g.nodes.len()
        }
    })
    .await;
}

fn main() {
    let a = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if a.backend == "sqlite" || a.backend == "both" {
            let dir = tempfile::tempdir().unwrap();
            let url = match &a.sqlite_path {
                Some(p) => format!("sqlite://{p}"),
                None => format!("sqlite://{}", dir.path().join("bench.db").display()),
            };
            run("SQLite", &url, &a).await;
        }
        if a.backend == "postgres" || a.backend == "both" {
            let url = std::env::var("MODELSPEC_BENCH_PG")
                .unwrap_or_else(|_| ms_test_support::postgres::database());
            run("PostgreSQL", &url, &a).await;
        }
    });
}
