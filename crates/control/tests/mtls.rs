//! HTTPS with client certificates: a private CA (made with rcgen), a server certificate for
//! 127.0.0.1, and client certificates. A client without a certificate is refused at the
//! handshake; one with a certificate acts as `CN=<its subject CN>` with the role
//! `--cert-role` gives it, and that is the `createdBy` of what it makes; a bearer token still
//! works over the same TLS.

mod common;

use std::sync::Arc;

use common::{admin_principal, config_in, token};
use ms_control::TlsFiles;
use ms_registry::Registry;
use ms_registry::api::ByteReader;
use ms_registry::embedded::Embedded;
use ms_registry::entity::{ArtifactUpload, Role};
use ms_registry::remote::{Remote, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(DnType::CommonName, "modelspec test CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate and key (PEM) signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn bytes(b: &'static [u8]) -> ByteReader {
    Box::new(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_name_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (server_cert, server_key) = leaf(
        &ca,
        "registry",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let pki = Pki {
        ca_pem: ca.pem(),
        server_cert,
        server_key,
    };
    let (robot_cert, robot_key) = leaf(&ca, "ci-robot", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (stranger_cert, stranger_key) =
        leaf(&ca, "stranger", &[], ExtendedKeyUsagePurpose::ClientAuth);
    // A client certificate from another CA.
    let other_ca = self::ca();
    let (rogue_cert, rogue_key) = leaf(
        &other_ca,
        "ci-robot",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    let mut config = config_in(dir.path());
    config.tls = Some(TlsFiles {
        cert: write(dir.path(), "server.pem", &pki.server_cert),
        key: write(dir.path(), "server.key", &pki.server_key),
        client_ca: Some(write(dir.path(), "ca.pem", &pki.ca_pem)),
    });
    config.cert_roles.insert("ci-robot".into(), Role::Writer);
    let embedded = Embedded::open(&config.db, &config.store, admin_principal())
        .await
        .unwrap();
    let reader_token = token(&embedded, "reader", Role::Reader).await;
    let server = ms_control::serve(&config).await.unwrap();
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let client = |identity: Option<(&str, &str)>, token: &str| {
        Remote::with_tls(
            &url,
            token,
            TlsOptions {
                ca_pem: Some(pki.ca_pem.clone().into_bytes()),
                identity_pem: identity.map(|(c, k)| format!("{c}{k}").into_bytes()),
            },
        )
        .unwrap()
    };

    // No certificate: the handshake fails, the call is Unavailable naming the URL.
    let e = client(None, &reader_token).whoami().await.unwrap_err();
    assert_eq!(e.code, "MG0514", "{e}");
    assert!(e.message.contains(&url), "{e}");
    assert!(
        !e.message.contains(&reader_token),
        "the token is never shown"
    );
    // A certificate from another CA: refused too.
    let e = client(Some((&rogue_cert, &rogue_key)), "")
        .whoami()
        .await
        .unwrap_err();
    assert_eq!(e.code, "MG0514", "{e}");

    // With its certificate, the robot is `CN=ci-robot`, a writer.
    let robot: Arc<dyn Registry> = Arc::new(client(Some((&robot_cert, &robot_key)), ""));
    let me = robot.whoami().await.unwrap();
    assert_eq!(me.name, "CN=ci-robot");
    assert_eq!(me.role, Role::Writer);
    let up = robot
        .upload_artifact(
            ArtifactUpload {
                name: "robot.bin".into(),
                ..Default::default()
            },
            bytes(b"made by the robot"),
        )
        .await
        .unwrap();
    assert!(up.created);
    assert_eq!(up.record.created_by, "CN=ci-robot");
    let events = embedded.audit_events(0, 1000).await.unwrap();
    assert_eq!(events.last().unwrap().actor, "CN=ci-robot");

    // A valid certificate whose CN has no role: 401 with the fix.
    let e = client(Some((&stranger_cert, &stranger_key)), "")
        .whoami()
        .await
        .unwrap_err();
    assert_eq!(e.code, "MG0511", "{e}");
    assert!(e.hint.unwrap().contains("--cert-role"));

    // A bearer token over the same TLS wins over the certificate.
    let both = client(Some((&robot_cert, &robot_key)), &reader_token);
    assert_eq!(both.whoami().await.unwrap().name, "reader");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_client_ca_serves_tokens_and_allows_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert, key) = leaf(
        &ca,
        "registry",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let mut config = config_in(dir.path());
    config.tls = Some(TlsFiles {
        cert: write(dir.path(), "server.pem", &cert),
        key: write(dir.path(), "server.key", &key),
        client_ca: None,
    });
    // TLS makes a non-loopback bind acceptable.
    config.host = "0.0.0.0".parse().unwrap();
    let embedded = Embedded::open(&config.db, &config.store, admin_principal())
        .await
        .unwrap();
    let t = token(&embedded, "reader", Role::Reader).await;
    let server = ms_control::serve(&config).await.unwrap();
    let url = format!("https://127.0.0.1:{}", server.addr().port());
    let remote = Remote::with_tls(
        &url,
        &t,
        TlsOptions {
            ca_pem: Some(ca.pem().into_bytes()),
            identity_pem: None,
        },
    )
    .unwrap();
    assert_eq!(remote.whoami().await.unwrap().name, "reader");
    // Plain HTTP to the TLS port gets nothing usable.
    let plain = Remote::new(&format!("http://127.0.0.1:{}", server.addr().port()), &t).unwrap();
    assert!(plain.whoami().await.is_err());
    // Bad TLS files are refused with the flag named.
    let mut broken = config_in(dir.path());
    broken.tls = Some(TlsFiles {
        cert: write(dir.path(), "empty.pem", ""),
        key: dir.path().join("server.key"),
        client_ca: None,
    });
    let e = ms_control::serve(&broken).await.err().unwrap();
    assert_eq!(e.code, "MG0513");
    assert!(e.message.contains("--tls-cert"), "{e}");
    server.shutdown().await;
}
