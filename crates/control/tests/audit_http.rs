//! The audit log's HTTP API: the signed checkpoint as text, hash and entries tiles with their
//! cache headers, an event with its inclusion proof, a consistency proof, and cosignatures kept
//! only from configured witnesses and only when they verify; and the witness server with its
//! client: growth cosigned across a restart (409, then the proof), a rewrite refused.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{config_in, error_of, plane_with};
use ms_control::witness::{WitnessConfig, serve_witness};
use ms_registry::log::LogConfig;
use ms_registry::log::witness_client::cosign;
use ms_tlog::checkpoint::Checkpoint;
use ms_tlog::note::{self, Verifier};
use ms_tlog::witness::{AddCheckpoint, Witness};
use ms_trust::Signer as _;
use ms_trust::keyfile::KeyFileSigner;
use reqwest::Method;

const ORIGIN: &str = "control.test/audit";

fn key() -> KeyFileSigner {
    KeyFileSigner::generate(ms_trust::Algorithm::Ed25519).unwrap()
}

fn hashes(strings: &serde_json::Value) -> Vec<[u8; 32]> {
    strings
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Arc::new(key());
    let witness_key = key();
    let w_vkey = Verifier::cosignature("w1", witness_key.public_key()).unwrap();
    let mut config = config_in(dir.path());
    let log = LogConfig::new(log_key.clone(), Some(ORIGIN.into()), &[w_vkey.to_string()]).unwrap();
    let log_vkey = Verifier::parse(&log.verifier_key_text(ORIGIN).unwrap()).unwrap();
    config.log = Some(Arc::new(log));
    let p = plane_with(dir, config).await;
    // Three events: the plane's three tokens.

    let r = p
        .call(Method::GET, "/audit/checkpoint", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let text = r.text().await.unwrap();
    let opened = note::open(&text, std::slice::from_ref(&log_vkey)).unwrap();
    let cp = Checkpoint::parse(opened.body()).unwrap();
    assert_eq!((cp.origin.as_str(), cp.size), (ORIGIN, 3));
    let e = error_of(
        p.call(Method::GET, "/audit/checkpoint", None)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(e["code"], "MG0503");

    let r = p
        .call(Method::GET, "/audit/tile/0/000.p/3", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let level0 = r.bytes().await.unwrap();
    assert_eq!(level0.len(), 96);
    let r = p
        .call(Method::GET, "/audit/tile/entries/000.p/3", Some(&p.reader))
        .send()
        .await
        .unwrap();
    let entries = ms_tlog::entries::decode_entries(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(entries.len(), 3);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(&level0[32 * i..32 * i + 32], ms_tlog::leaf_hash(e));
    }
    for (path, status, code) in [
        ("/audit/tile/0/000", 404, "MG1004"),
        ("/audit/tile/0/000.p/4", 404, "MG1004"),
        ("/audit/tile/0/..%2F..%2Fetc", 404, "MG1004"),
        ("/audit/events/0", 404, "MG1005"),
        ("/audit/events/x", 400, "MG0507"),
        ("/audit/proof/consistency?from=2&to=9", 404, "MG1005"),
        ("/audit/proof/consistency?from=2", 400, "MG0506"),
    ] {
        let e = error_of(
            p.call(Method::GET, path, Some(&p.reader))
                .send()
                .await
                .unwrap(),
            status,
        )
        .await;
        assert_eq!(e["code"], code, "{path}: {e}");
    }

    let ev: serde_json::Value = p
        .call(Method::GET, "/audit/events/2", Some(&p.reader))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ev["event"]["seq"], 2);
    assert_eq!(ev["checkpoint"], text);
    let leaf = ms_tlog::leaf_hash(ev["entry"].as_str().unwrap().as_bytes());
    ms_tlog::check_record(&hashes(&ev["proof"]), 3, cp.root, 1, leaf).unwrap();
    let c: serde_json::Value = p
        .call(
            Method::GET,
            "/audit/proof/consistency?from=1&to=3",
            Some(&p.reader),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ms_tlog::check_tree(
        &hashes(&c["proof"]),
        3,
        cp.root,
        1,
        ms_tlog::leaf_hash(&entries[0]),
    )
    .unwrap();

    // A witness cosigns; the registry keeps it and serves it with the checkpoint.
    let mut w = Witness::new("w1", [(ORIGIN.to_string(), log_vkey.clone())]).unwrap();
    let request = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: text.clone(),
    };
    let (sig, _) = w
        .add_checkpoint(&request, &witness_key, 1_800_000_000)
        .unwrap();
    let post = |sigs: Vec<String>, checkpoint: String| {
        p.call(Method::POST, "/audit/cosignatures", Some(&p.reader))
            .json(&serde_json::json!({"checkpoint": checkpoint, "signatures": sigs}))
            .send()
    };
    let r = post(vec![sig.to_line()], text.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let receipt: serde_json::Value = r.json().await.unwrap();
    assert_eq!(receipt, serde_json::json!({"size": 3, "witnesses": ["w1"]}));
    let served = p
        .call(Method::GET, "/audit/checkpoint", Some(&p.reader))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, format!("{text}{}", sig.to_line()));
    let opened = note::open(&served, &[log_vkey.clone(), w_vkey.clone()]).unwrap();
    assert!(opened.signed_by(&w_vkey));

    // Refused: an unconfigured witness, a forged cosignature, a checkpoint never signed.
    let mut stranger = Witness::new("w2", [(ORIGIN.to_string(), log_vkey.clone())]).unwrap();
    let (other, _) = stranger
        .add_checkpoint(&request, &key(), 1_800_000_000)
        .unwrap();
    let e = error_of(
        post(vec![other.to_line()], text.clone()).await.unwrap(),
        400,
    )
    .await;
    assert_eq!(e["code"], "MG1006");
    assert_eq!(e["pointer"], "/signatures/0");
    let mut forged = sig.clone();
    forged.bytes[20] ^= 1;
    let e = error_of(
        post(vec![forged.to_line()], text.clone()).await.unwrap(),
        400,
    )
    .await;
    assert_eq!(e["code"], "MG1006");
    let unsigned = Checkpoint::new(ORIGIN, 2, [7; 32]).body();
    let fake = note::sign(&unsigned, ORIGIN, &*log_key).unwrap();
    let e = error_of(post(vec![sig.to_line()], fake).await.unwrap(), 400).await;
    assert_eq!(e["code"], "MG1006");
    assert_eq!(e["pointer"], "/checkpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_growth_across_restarts_and_refuses_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let witness_key: Arc<KeyFileSigner> = Arc::new(key());
    let w_vkey = Verifier::cosignature("w1", witness_key.public_key()).unwrap();
    let mut config = config_in(dir.path());
    let db_url = config.db.clone();
    let log = LogConfig::new(Arc::new(key()), Some(ORIGIN.into()), &[w_vkey.to_string()]).unwrap();
    let log_vkey = Verifier::parse(&log.verifier_key_text(ORIGIN).unwrap()).unwrap();
    config.log = Some(Arc::new(log));
    let p = plane_with(dir, config).await;
    let registry = common::remote(&p, &p.reader);
    let state = p.dir.path().join("witness/state.json");
    let start = || async {
        let mut c = WitnessConfig::new(
            "w1",
            witness_key.clone(),
            vec![log_vkey.clone()],
            state.clone(),
        );
        c.port = 0;
        serve_witness(c).await.unwrap()
    };

    let w = start().await;
    let receipt = cosign(&*registry, &w.url()).await.unwrap();
    assert_eq!(
        (receipt.size, receipt.witnesses.clone()),
        (3, vec!["w1".to_string()])
    );
    w.shutdown().await;

    // The log grows; a restarted witness remembers size 3: a 409 first, then the proof.
    common::token(&p.embedded, "more", ms_registry::entity::Role::Reader).await;
    let w = start().await;
    let receipt = cosign(&*registry, &w.url()).await.unwrap();
    assert_eq!(receipt.size, 4);
    let kept = std::fs::read_to_string(&state).unwrap();
    assert!(kept.contains(&format!("{ORIGIN}\\n4\\n")), "{kept}");

    // History rewritten behind the registry's back and re-signed: the witness refuses.
    let mut conn = p.embedded.db().pool().acquire().await.unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'os:mallory' WHERE seq = 2",
        "DELETE FROM audit_cosignatures",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_hashes",
    ] {
        sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    ms_registry::db::Db::open(&db_url).await.unwrap();
    common::token(&p.embedded, "after", ms_registry::entity::Role::Reader).await;
    let e = cosign(&*registry, &w.url()).await.unwrap_err();
    assert_eq!(e.code, "MG1012", "{e}");
    assert!(e.message.contains("422"), "{e}");
    w.shutdown().await;
}
