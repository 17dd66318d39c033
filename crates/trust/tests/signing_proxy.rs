//! The signing proxy over real HTTP on 127.0.0.1: its reference server in front of SoftHSM2 keys
//! (and a development key), its client `Signer`, and hostile requests: no or a forged bearer
//! token, oversized bodies (declared or chunked), unknown keys, malformed bodies, a backend
//! whose signatures do not verify.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_test_support::softhsm::softhsm;
use ms_trust::codes::{MT0402, MT0403, MT0404, MT0405, MT0406, MT0408};
use ms_trust::proxy::server::{self, RunningProxy, ServeOptions};
use ms_trust::proxy::{KeyList, ProxySigner};
use ms_trust::{PublicKey, Result, Signer, SignerKind, pkcs11};
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-test-token";

fn options() -> ServeOptions {
    ServeOptions {
        max_body_bytes: 4096,
        log: false,
        ..ServeOptions::new("127.0.0.1:0".parse().unwrap(), TOKEN)
    }
}

/// A proxy in front of a fresh SoftHSM2 token's two keys.
fn softhsm_proxy() -> (RunningProxy, Vec<Arc<dyn Signer>>) {
    let token = softhsm().token();
    let signers: Vec<Arc<dyn Signer>> = vec![
        Arc::new(pkcs11::open(&token.uri("ed25519")).unwrap()),
        Arc::new(pkcs11::open(&token.uri("p256")).unwrap()),
    ];
    (server::start(options(), signers.clone()).unwrap(), signers)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// An in-memory Ed25519 key that says it is a key file: what a development backend looks like.
struct DevKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
    /// Sign something else than asked: a backend gone wrong.
    broken: bool,
}

impl DevKey {
    fn new(broken: bool) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let public = PublicKey::ed25519(pair.public_key().as_ref().try_into().unwrap());
        Self {
            pair,
            public,
            broken,
        }
    }
}

impl Signer for DevKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let message = if self.broken { b"other" } else { message };
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

/// A raw HTTP/1.1 exchange: (status, body).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The server may answer (413) and close before reading everything we send.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn post(addr: SocketAddr, token: Option<&str>, content_type: &str, body: &str) -> (u16, Value) {
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let req = format!(
        "POST /v1/sign HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}content-type: \
         {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = raw(addr, req.as_bytes());
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn clients_sign_with_the_proxys_softhsm_keys() {
    let (proxy, backends) = softhsm_proxy();
    for backend in &backends {
        let id = backend.public_key().fingerprint();
        let client =
            ProxySigner::connect(&format!("{}/?keyId={id}", url(proxy.addr)), TOKEN).unwrap();
        assert_eq!(client.public_key(), backend.public_key());
        assert_eq!(
            client.kind(),
            SignerKind::Proxy {
                development_only: false
            }
        );
        let sig = client.sign(b"statement").unwrap();
        backend.public_key().verify(b"statement", &sig).unwrap();
    }
    // Two keys and no keyId: the client does not guess.
    let e = ProxySigner::connect(&url(proxy.addr), TOKEN).unwrap_err();
    assert_eq!(e.code, MT0405, "{e}");
    assert!(e.message.contains("serves 2 keys"), "{e}");
}

#[test]
fn a_development_key_is_labelled_so() {
    let proxy = server::start(options(), vec![Arc::new(DevKey::new(false))]).unwrap();
    let client = ProxySigner::connect(&url(proxy.addr), TOKEN).unwrap();
    assert_eq!(
        client.kind(),
        SignerKind::Proxy {
            development_only: true
        }
    );
    assert!(client.kind().development_only());
    let sig = client.sign(b"checkpoint").unwrap();
    client.public_key().verify(b"checkpoint", &sig).unwrap();
    let (status, body) = raw(
        proxy.addr,
        format!("GET /v1/keys HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status, 200);
    let list: KeyList = serde_json::from_str(&body).unwrap();
    assert!(list.keys[0].development_only);
}

#[test]
fn missing_or_forged_bearer_tokens_are_refused() {
    let (proxy, backends) = softhsm_proxy();
    let forged = "ffffffffffffffffffffffffffffffff-forged";
    let e = ProxySigner::connect(&url(proxy.addr), forged).unwrap_err();
    assert_eq!(e.code, MT0404, "{e}");
    assert!(
        !e.message.contains(forged) && !e.message.contains(TOKEN),
        "{e}"
    );
    // A prefix of the real token is not the token.
    assert_eq!(
        ProxySigner::connect(&url(proxy.addr), &TOKEN[..TOKEN.len() - 1])
            .unwrap_err()
            .code,
        MT0404
    );
    let id = backends[0].public_key().fingerprint();
    let body = json!({"keyId": id, "message": B64.encode(b"m")}).to_string();
    for token in [None, Some(forged), Some("")] {
        let (status, answer) = post(proxy.addr, token, "application/json", &body);
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(answer["error"]["code"], MT0404);
    }
    let (status, _) = raw(
        proxy.addr,
        b"GET /v1/keys HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 401);
}

#[test]
fn oversized_bodies_are_refused_declared_or_streamed() {
    let (proxy, backends) = softhsm_proxy();
    let id = backends[0].public_key().fingerprint();
    let big = json!({"keyId": id, "message": B64.encode(vec![7u8; 8000])}).to_string();
    let (status, answer) = post(proxy.addr, Some(TOKEN), "application/json", &big);
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], MT0406);
    // No content-length: chunks until the limit is passed.
    let mut req = format!(
        "POST /v1/sign HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer \
         {TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in big.as_bytes().chunks(1000) {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let (status, body) = raw(proxy.addr, &req);
    assert_eq!(status, 413, "{body}");
    // Through the client: a message over the limit for Ed25519 (sent whole)...
    let ed = ProxySigner::connect(&format!("{}?keyId={id}", url(proxy.addr)), TOKEN).unwrap();
    assert_eq!(ed.sign(&[1u8; 8000]).unwrap_err().code, MT0406);
    // ...while ECDSA sends only the digest, whatever the message's size.
    let p256_id = backends[1].public_key().fingerprint();
    let ecdsa =
        ProxySigner::connect(&format!("{}?keyId={p256_id}", url(proxy.addr)), TOKEN).unwrap();
    let message = vec![2u8; 100_000];
    let sig = ecdsa.sign(&message).unwrap();
    backends[1].public_key().verify(&message, &sig).unwrap();
}

#[test]
fn unknown_keys_and_malformed_requests_get_clear_errors() {
    let (proxy, backends) = softhsm_proxy();
    let e =
        ProxySigner::connect(&format!("{}?keyId=sha256:00", url(proxy.addr)), TOKEN).unwrap_err();
    assert_eq!(e.code, MT0405, "{e}");
    assert!(
        e.message.contains(&backends[0].public_key().fingerprint()),
        "lists the keys: {e}"
    );

    let ed = backends[0].public_key().fingerprint();
    let p256 = backends[1].public_key().fingerprint();
    let m = B64.encode(b"m");
    let d = B64.encode([0u8; 32]);
    for (body, status, needle) in [
        (json!({"keyId": "sha256:00", "message": m}), 404, "no key"),
        (
            json!({"keyId": ed, "message": m, "digest": d}),
            400,
            "exactly one",
        ),
        (json!({"keyId": ed}), 400, "exactly one"),
        (json!({"keyId": ed, "messag": m}), 400, "unknown field"),
        (
            json!({"keyId": ed, "message": "not base64!"}),
            400,
            "base64",
        ),
        (
            json!({"keyId": p256, "digest": B64.encode([0u8; 20])}),
            400,
            "32 bytes",
        ),
        (json!({"keyId": ed, "digest": d}), 422, "whole messages"),
        (json!({"message": m}), 400, "keyId"),
    ] {
        let (got, answer) = post(
            proxy.addr,
            Some(TOKEN),
            "application/json",
            &body.to_string(),
        );
        assert_eq!(got, status, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, _) = post(proxy.addr, Some(TOKEN), "text/plain", "{}");
    assert_eq!(status, 415);
    let (status, _) = post(proxy.addr, Some(TOKEN), "application/json", "{not json");
    assert_eq!(status, 400);
    let (status, _) = raw(
        proxy.addr,
        format!("GET /v2/keys HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status, 404);
}

#[test]
fn the_client_refuses_signatures_that_do_not_verify() {
    let proxy = server::start(options(), vec![Arc::new(DevKey::new(true))]).unwrap();
    let client = ProxySigner::connect(&url(proxy.addr), TOKEN).unwrap();
    assert_eq!(client.sign(b"m").unwrap_err().code, MT0408);
}

#[test]
fn the_server_refuses_weak_tokens_and_open_binds() {
    let key = || -> Vec<Arc<dyn Signer>> { vec![Arc::new(DevKey::new(false))] };
    let mut weak = options();
    weak.token = "tiny-tok3n".into();
    let e = server::start(weak, key()).err().unwrap();
    assert_eq!(e.code, MT0402);
    assert!(!e.message.contains("tiny-tok3n"), "{e}");
    let mut open = options();
    open.bind = "0.0.0.0:0".parse().unwrap();
    assert_eq!(
        server::start(open.clone(), key()).err().unwrap().code,
        MT0402
    );
    open.insecure = true;
    server::start(open, key()).unwrap();
    assert_eq!(server::start(options(), vec![]).err().unwrap().code, MT0402);
    let k: Arc<dyn Signer> = Arc::new(DevKey::new(false));
    assert_eq!(
        server::start(options(), vec![Arc::clone(&k), k])
            .err()
            .unwrap()
            .code,
        MT0402
    );
    // Nobody listening.
    let gone = server::start(options(), key()).unwrap();
    let addr = gone.addr;
    drop(gone);
    assert_eq!(
        ProxySigner::connect(&url(addr), TOKEN).unwrap_err().code,
        MT0403
    );
}

#[test]
fn a_key_file_backend_signs_digests_and_open_signer_reaches_the_proxy() {
    use ms_trust::keyfile::KeyFileSigner;
    let dir = tempfile::tempdir().unwrap();
    let key = KeyFileSigner::generate(ms_trust::Algorithm::EcdsaP256Sha256).unwrap();
    let path = dir.path().join("dev.pem");
    key.save_pkcs8_pem(&path).unwrap();
    let backend = ms_trust::signer::open_signer(&format!("file:{}", path.display())).unwrap();
    let proxy = server::start(options(), vec![Arc::from(backend)]).unwrap();
    // The client sends only the digest of an ECDSA message; the key file signs it.
    let client = ProxySigner::connect(&url(proxy.addr), TOKEN).unwrap();
    assert!(client.kind().development_only());
    let sig = client.sign(b"payload").unwrap();
    key.public_key().verify(b"payload", &sig).unwrap();
    // open_signer without a token in the environment says where to put it.
    assert!(std::env::var_os(ms_trust::proxy::TOKEN_ENV).is_none());
    let e = ms_trust::signer::open_signer(&url(proxy.addr))
        .err()
        .unwrap();
    assert_eq!(e.code, MT0402, "{e}");
}

#[test]
fn slow_clients_are_cut_off() {
    let quick = ServeOptions {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        ..options()
    };
    let proxy = server::start(quick, vec![Arc::new(DevKey::new(false))]).unwrap();
    // A head that never ends: the connection is closed without an answer (hyper sends none).
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"POST /v1/sign HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let mut out = Vec::new();
    // Closed by the server (end of stream), not by our 60 s read timeout.
    let read = s.read_to_end(&mut out);
    assert!(
        read.is_ok(),
        "a half-sent head kept its connection: {read:?}"
    );
    assert!(!String::from_utf8_lossy(&out).contains(" 200 "), "{out:?}");
    // A body that stops half-way: 408 in the protocol's shape.
    let head = format!(
        "POST /v1/sign HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: \
         application/json\r\ncontent-length: 100\r\n\r\n{{\"keyId\": "
    );
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = [0u8; 4096];
    let n = s.read(&mut out).unwrap();
    let answer = String::from_utf8_lossy(&out[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("MT0407"), "{answer}");
    // The server still serves others.
    let client = ProxySigner::connect(&url(proxy.addr), TOKEN).unwrap();
    client.sign(b"still here").unwrap();
}

#[test]
fn key_ids_cannot_forge_log_lines() {
    // The server logs to this test's stderr; what matters is that a hostile key id is quoted and
    // answered like any unknown key.
    let mut logging = options();
    logging.log = true;
    let proxy = server::start(logging, vec![Arc::new(DevKey::new(false))]).unwrap();
    let body = json!({"keyId": format!("x\nmodelspec signer serve: POST /v1/sign 200{}", "y".repeat(1000)), "message": "AA=="});
    let (status, answer) = post(
        proxy.addr,
        Some(TOKEN),
        "application/json",
        &body.to_string(),
    );
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], MT0405);
}
