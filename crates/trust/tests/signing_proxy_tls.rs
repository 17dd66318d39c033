//! The proxy client over HTTPS: the reference server behind a TLS terminator whose certificate
//! a private CA signed (made with rcgen). The client trusts it only with that CA
//! (`ProxySigner::connect_with`, `MODELSPEC_SIGNER_CA_FILE`); the public web PKI roots, or
//! another CA, refuse it at the handshake, before any token is sent.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use ms_trust::codes::{MT0402, MT0403};
use ms_trust::proxy::ProxySigner;
use ms_trust::proxy::server::{self, ServeOptions};
use ms_trust::{PublicKey, Result, Signer, SignerKind};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TOKEN: &str = "tls-test-token-0123456789abcdef0123456789";

struct Key(Ed25519KeyPair, PublicKey);

impl Signer for Key {
    fn public_key(&self) -> &PublicKey {
        &self.1
    }
    fn kind(&self) -> SignerKind {
        SignerKind::KeyFile
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.0.sign(message).as_ref().to_vec())
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A TLS terminator on 127.0.0.1 in front of `backend` (plain HTTP), with a certificate for
/// 127.0.0.1 signed by `issuer`.
fn tls_front(backend: SocketAddr, issuer: &CertifiedIssuer<'static, KeyPair>) -> SocketAddr {
    use tokio_rustls::rustls::{ServerConfig, crypto::aws_lc_rs};
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "signer");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let chain = vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    // Lives until the test process ends.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    addr
}

#[test]
fn https_proxies_are_trusted_through_the_given_ca_only() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let public = PublicKey::ed25519(pair.public_key().as_ref().try_into().unwrap());
    let options = ServeOptions {
        log: false,
        ..ServeOptions::new("127.0.0.1:0".parse().unwrap(), TOKEN)
    };
    let proxy = server::start(options, vec![Arc::new(Key(pair, public.clone()))]).unwrap();
    let private_ca = ca("modelspec test CA");
    let front = tls_front(proxy.addr, &private_ca);
    let url = format!("https://{front}");

    let ca_pem = private_ca.pem();
    let client = ProxySigner::connect_with(&url, TOKEN, Some(ca_pem.as_bytes())).unwrap();
    let sig = client.sign(b"over TLS").unwrap();
    public.verify(b"over TLS", &sig).unwrap();

    // The public roots and another CA do not know the certificate.
    let e = ProxySigner::connect(&url, TOKEN).unwrap_err();
    assert_eq!(e.code, MT0403, "{e}");
    assert!(!e.message.contains(TOKEN), "{e}");
    let other = ca("another CA").pem();
    let e = ProxySigner::connect_with(&url, TOKEN, Some(other.as_bytes())).unwrap_err();
    assert_eq!(e.code, MT0403, "{e}");
    // A CA file without a certificate.
    let e = ProxySigner::connect_with(&url, TOKEN, Some(b"not a certificate")).unwrap_err();
    assert_eq!(e.code, MT0402, "{e}");
}
