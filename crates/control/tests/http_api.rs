//! The control plane over real HTTP on loopback, with real clients (reqwest, and raw TCP for
//! what a well-behaved client never sends): credentials and roles, the error shape of every
//! refusal, hostile input (malformed JSON, huge headers, a 10 GB declared size, wrong digests,
//! path traversal), Range reads, multipart and resumable uploads, the route table.

mod common;

use std::time::Duration;

use common::{error_of, plane};
use ms_registry::Digest;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn dataset_body() -> serde_json::Value {
    serde_json::json!({
        "name": "tiny",
        "files": [{"path": "a.txt", "sha256": Digest::of(b"a").to_string(), "size": 1}],
        "license": "MIT",
    })
}

/// Sends `head` (and `body`) on a fresh connection and reads the answer until the server
/// closes or `wait` passes.
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let _ = tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    // One answer is enough: stop once its body (Content-Length) is in.
                    let text = String::from_utf8_lossy(&out);
                    if let Some((h, b)) = text.split_once("\r\n\r\n")
                        && let Some(len) = h.lines().find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        && b.len() >= len
                    {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_credentials_get_401_and_change_nothing() {
    let p = plane().await;
    let before = p.audit_len().await;
    for (method, path) in [
        (Method::POST, "/dataset/register"),
        (Method::POST, "/tokens"),
        (Method::POST, "/models/register"),
        (Method::POST, "/models/x/promote"),
        (Method::DELETE, "/tokens/abc"),
        (Method::GET, "/models"),
    ] {
        let r = p
            .call(method.clone(), path, None)
            .json(&dataset_body())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"modelspec registry\""
        );
        let e = error_of(r, 401).await;
        assert_eq!(e["type"], "unauthenticated", "{method} {path}: {e}");
    }
    // An unknown token and a malformed header are refused the same way.
    let r = p
        .call(Method::POST, "/dataset/register", Some("mgt_not-a-token"))
        .json(&dataset_body())
        .send()
        .await
        .unwrap();
    error_of(r, 401).await;
    let r = p
        .call(Method::POST, "/dataset/register", None)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&dataset_body())
        .send()
        .await
        .unwrap();
    error_of(r, 401).await;
    assert_eq!(p.audit_len().await, before, "nothing was written");
    // The open routes stay open.
    let r = p.call(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = p
        .call(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_cannot_write() {
    let p = plane().await;
    let before = p.audit_len().await;
    let r = p
        .call(Method::POST, "/dataset/register", Some(&p.reader))
        .json(&dataset_body())
        .send()
        .await
        .unwrap();
    let e = error_of(r, 403).await;
    assert_eq!(e["type"], "forbidden");
    let r = p
        .call(Method::POST, "/artifact/upload?name=a.bin", Some(&p.reader))
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    error_of(r, 403).await;
    let r = p
        .call(Method::POST, "/tokens", Some(&p.writer))
        .json(&serde_json::json!({"name": "x", "role": "admin"}))
        .send()
        .await
        .unwrap();
    error_of(r, 403).await;
    assert_eq!(p.audit_len().await, before);
    // Reading is allowed.
    let r = p
        .call(Method::GET, "/models", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let who: serde_json::Value = p
        .call(Method::GET, "/whoami", Some(&p.reader))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["name"], "reader");
    assert_eq!(who["role"], "reader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_gets_400_with_a_pointer() {
    let p = plane().await;
    let before = p.audit_len().await;
    let send = |body: &'static str| {
        p.call(Method::POST, "/dataset/register", Some(&p.writer))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let e = error_of(send("{\"name\": ").await.unwrap(), 400).await;
    assert_eq!(e["code"], "MG0501");
    assert!(e["message"].as_str().unwrap().contains("line 1"), "{e}");
    let e = error_of(
        send(r#"{"name": "x", "license": "MIT", "files": [{"path": "a", "sha256": "sha256:nope", "size": 1}]}"#)
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(e["pointer"], "/files/0/sha256", "{e}");
    let e = error_of(
        send(r#"{"name": "x", "license": "MIT", "files": [], "extra": 1}"#)
            .await
            .unwrap(),
        400,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("extra"), "{e}");
    let e = error_of(
        send(r#"{"license": "MIT", "files": []}"#).await.unwrap(),
        400,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("name"), "{e}");
    // Wrong content type.
    let r = p
        .call(Method::POST, "/dataset/register", Some(&p.writer))
        .header("content-type", "text/plain")
        .body(dataset_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await["code"], "MG0502");
    // A bad query parameter, an unknown route, a wrong method: the same shape.
    let r = p
        .call(Method::GET, "/lineage/x@1?depth=deep", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await["code"], "MG0506");
    let r = p
        .call(Method::GET, "/nope", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 404).await["code"], "MG0504");
    let r = p
        .call(Method::DELETE, "/models", Some(&p.reader))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 405).await["code"], "MG0516");
    assert_eq!(p.audit_len().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_get_431_json() {
    let p = plane().await;
    let r = p
        .call(Method::GET, "/models", Some(&p.reader))
        .header("x-padding", "a".repeat(40 << 10))
        .send()
        .await
        .unwrap();
    let e = error_of(r, 431).await;
    assert_eq!(e["code"], "MG0509");
    let mut many = p.call(Method::GET, "/models", Some(&p.reader));
    for i in 0..150 {
        many = many.header(format!("x-h{i}"), "1");
    }
    error_of(many.send().await.unwrap(), 431).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_gb_declared_upload_is_refused_before_reading() {
    // A store that takes artifacts up to 1 GiB (the default limit is 64 GiB).
    let dir = tempfile::tempdir().unwrap();
    let options = ms_registry::blob::BlobOptions {
        max_blob_size: 1 << 30,
        ..Default::default()
    };
    let store = ms_registry::blob::BlobStore::open_with(
        &format!("file://{}", dir.path().join("blobs").display()),
        Default::default(),
        options,
    )
    .await
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("registry.db").display());
    let embedded = ms_registry::Embedded::with_parts(
        ms_registry::db::Db::open(&db).await.unwrap(),
        store,
        common::admin_principal(),
    );
    let p = common::plane_over(dir, embedded).await;
    let before = p.audit_len().await;
    let head = format!(
        "POST /artifact/upload?name=big.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 10737418240\r\n\r\n",
        p.writer
    );
    // No body byte is sent: the answer must come anyway.
    let answer = raw(p.server.addr(), &head, b"", Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"type\":\"too_large\""), "{answer}");
    // Declared in a resumable session too.
    let r = p
        .call(Method::POST, "/artifact/uploads", Some(&p.writer))
        .json(&serde_json::json!({"name": "big.bin", "size": 10737418240u64}))
        .send()
        .await
        .unwrap();
    error_of(r, 413).await;
    assert_eq!(p.audit_len().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_gets_422_and_nothing_is_visible() {
    let p = plane().await;
    let before = p.audit_len().await;
    let bytes = b"the bytes actually sent".to_vec();
    let claimed = Digest::of(b"something else");
    let r = p
        .call(
            Method::POST,
            &format!("/artifact/upload?name=a.bin&digest={claimed}"),
            Some(&p.writer),
        )
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let e = error_of(r, 422).await;
    assert_eq!(e["type"], "integrity");
    for id in [claimed, Digest::of(&bytes)] {
        let r = p
            .call(Method::GET, &format!("/artifact/{id}"), Some(&p.reader))
            .send()
            .await
            .unwrap();
        error_of(r, 404).await;
        let r = p
            .call(
                Method::GET,
                &format!("/artifact/{id}/content"),
                Some(&p.reader),
            )
            .send()
            .await
            .unwrap();
        error_of(r, 404).await;
    }
    assert_eq!(p.audit_len().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_in_ids_reads_nothing() {
    let p = plane().await;
    // A file beside the store that a traversal would reach.
    std::fs::write(p.dir.path().join("secret.txt"), b"secret").unwrap();
    for path in [
        "/artifact/..%2F..%2Fsecret.txt",
        "/artifact/..%2F..%2Fsecret.txt/content",
        "/artifact/sha256:..%2f..%2fsecret.txt/content",
        "/datasets/%2e%2e",
        "/models/..%2F..%2Fetc%2Fpasswd",
        "/models/x/versions/..%2F..",
        "/artifact/uploads/..%2F..%2Fsecret.txt",
        "/lineage/..%5C..%5Csecret.txt",
        "/models/%00",
    ] {
        let r = p
            .call(Method::GET, path, Some(&p.admin))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 400 || status == 404, "{path}: {status}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("secret\""), "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"]["code"].is_string(), "{path}: {body}");
    }
    // An unencoded `..` is normalised by no one: it is just an unknown route or id.
    let answer = raw(
        p.server.addr(),
        &format!("GET /artifact/../../secret.txt HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n", p.admin),
        b"",
        Duration::from_secs(30),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(!answer.contains("\r\n\r\nsecret"), "{answer}");
}

async fn upload(p: &common::Plane, name: &str, bytes: &[u8]) -> serde_json::Value {
    let r = p
        .call(
            Method::POST,
            &format!("/artifact/upload?name={name}"),
            Some(&p.writer),
        )
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert!(r.status() == 201 || r.status() == 200, "{r:?}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests() {
    let p = plane().await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let a = upload(&p, "r.bin", &bytes).await;
    assert_eq!(a["created"], true);
    assert_eq!(a["createdBy"], "writer");
    let id = Digest::of(&bytes);
    assert_eq!(a["artifactId"], id.to_string());
    let content = format!("/artifact/{id}/content");
    let get = |range: Option<&'static str>| {
        let rb = p.call(Method::GET, &content, Some(&p.reader));
        match range {
            Some(r) => rb.header("range", r),
            None => rb,
        }
        .send()
    };
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], format!("\"{id}\""));
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..]);
    let r = get(Some("bytes=100-199")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[100..200]);
    let r = get(Some("bytes=9990-")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[9990..]);
    let r = get(Some("bytes=-5")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 9995-9999/10000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[9995..]);
    let r = get(Some("bytes=20000-")).await.unwrap();
    assert_eq!(r.headers()["content-range"], "bytes */10000");
    error_of(r, 416).await;
    let r = get(Some("bytes=0-1,5-6")).await.unwrap();
    assert_eq!(error_of(r, 400).await["code"], "MG0508");
    // The same bytes again: 200, the existing artifact.
    let again = upload(&p, "r.bin", &bytes).await;
    assert_eq!(again["created"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_streams_the_file_part() {
    let p = plane().await;
    let bytes = vec![7u8; 300_000];
    let id = Digest::of(&bytes);
    let boundary = "XyZboundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\ncontent-type: application/json\r\n\r\n").as_bytes());
    body.extend_from_slice(serde_json::json!({"name": "m.bin", "mediaType": "application/x-test", "expectedDigest": id}).to_string().as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"m.bin\"\r\ncontent-type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = p
        .call(Method::POST, "/artifact/upload", Some(&p.writer))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let a: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["artifactId"], id.to_string());
    assert_eq!(a["mediaType"], "application/x-test");
    assert_eq!(a["size"], 300_000);
    // A form without the metadata part first is refused with the shape.
    let r = p
        .call(Method::POST, "/artifact/upload", Some(&p.writer))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--{boundary}--\r\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await["code"], "MG0502");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_continues_after_a_dropped_connection() {
    let p = plane().await;
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = Digest::of(&bytes);
    let r = p
        .call(Method::POST, "/artifact/uploads", Some(&p.writer))
        .json(&serde_json::json!({"name": "resume.bin", "expectedDigest": id, "size": bytes.len()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let session: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/artifact/uploads/{}",
            session["uploadId"].as_str().unwrap()
        )
    );
    // A PATCH that declares every byte but sends 80 000, then the connection drops.
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nupload-offset: 0\r\ncontent-length: {}\r\n\r\n",
        p.writer,
        bytes.len()
    );
    {
        let mut s = TcpStream::connect(p.server.addr()).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&bytes[..80_000]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The session says where to go on (what was durably stored, at most what was sent).
    let mut offset = 0;
    for _ in 0..100 {
        let r = p
            .call(Method::GET, &location, Some(&p.writer))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let header: u64 = r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let s: serde_json::Value = r.json().await.unwrap();
        offset = s["offset"].as_u64().unwrap();
        assert_eq!(offset, header);
        // The server may still be finishing the broken request; wait until it settles.
        let r = p
            .call(Method::PATCH, &location, Some(&p.writer))
            .header(
                "content-range",
                format!("bytes {offset}-{}/*", bytes.len() - 1),
            )
            .body(bytes[offset as usize..].to_vec())
            .send()
            .await
            .unwrap();
        if r.status() == 202 {
            let s: serde_json::Value = r.json().await.unwrap();
            assert_eq!(s["offset"], bytes.len());
            break;
        }
        let e = error_of(r, 409).await;
        assert_eq!(e["type"], "conflict");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(offset <= 80_000, "{offset}");
    let r = p
        .call(Method::PUT, &location, Some(&p.writer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a: serde_json::Value = r.json().await.unwrap();
    assert_eq!(a["artifactId"], id.to_string());
    let r = p
        .call(
            Method::GET,
            &format!("/artifact/{id}/content"),
            Some(&p.reader),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_and_documented() {
    let p = plane().await;
    let doc: serde_json::Value = p
        .call(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in ms_control::routes::ROUTES {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} is not in /openapi.json"
        );
        let concrete = path.replace("{id}", "x").replace("{selector}", "1");
        let r = p
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                None,
            )
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("MG0504") && !body.contains("MG0516"),
            "{method} {path}: {status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_without_tls_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_in(dir.path());
    config.host = "0.0.0.0".parse().unwrap();
    let e = ms_control::serve(&config).await.err().expect("refused");
    assert_eq!(e.code, "MG0512");
    assert!(e.message.contains("without TLS"), "{e}");
    assert!(!dir.path().join("registry.db").exists(), "nothing created");
    config.insecure = true;
    let server = ms_control::serve(&config).await.unwrap();
    assert!(server.addr().ip().is_unspecified());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_blob_is_never_served_whole() {
    use tokio::io::AsyncReadExt;
    let p = plane().await;
    let bytes = vec![42u8; 100_000];
    upload(&p, "damaged.bin", &bytes).await;
    let id = Digest::of(&bytes);
    // Flip a byte of the stored blob behind the server's back (same size).
    let path = p
        .dir
        .path()
        .join("blobs")
        .join(ms_registry::blob::layout::blob_key(&id));
    let mut stored = std::fs::read(&path).unwrap();
    stored[50_000] ^= 0xff;
    std::fs::write(&path, stored).unwrap();
    // A plain HTTP client sees a broken transfer (before or after the headers), never a
    // complete body of damaged bytes.
    let sent = p
        .call(
            Method::GET,
            &format!("/artifact/{id}/content"),
            Some(&p.reader),
        )
        .send()
        .await;
    if let Ok(r) = sent {
        assert!(
            r.bytes().await.is_err(),
            "the damaged body must not arrive whole"
        );
    }
    // Through Remote: the transfer breaks off (the server cannot change its status after the
    // headers), or, when every byte did arrive, the client's own digest check says Integrity.
    let remote = common::remote(&p, &p.reader);
    match remote.artifact_content(&id, None).await {
        Err(e) => assert!(e.message.contains("broke off"), "{e}"),
        Ok(mut content) => {
            let mut sink = Vec::new();
            let e = content.body.read_to_end(&mut sink).await.unwrap_err();
            if let Some(e) = ms_registry::blob::registry_error(&e) {
                assert_eq!(e.kind, ms_registry::ErrorKind::Integrity, "{e}");
            }
        }
    }
}
