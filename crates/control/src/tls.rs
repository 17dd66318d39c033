//! HTTPS for the control plane: rustls with the aws-lc-rs provider (the one object_store's
//! S3 client already builds, so there is one crypto library in the binary, chosen explicitly
//! rather than by whichever crate installs a process default). With a client CA, every
//! connection must present a certificate chaining to it; its subject CN names the principal.

use std::path::Path;
use std::sync::Arc;

use ms_registry::ErrorKind;
use ms_registry::RegistryError;
use ms_registry::remote::codes;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::config::TlsFiles;

fn bad_tls(message: String) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, codes::BAD_TLS, message)
}

fn certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad_tls(format!("{flag} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad_tls(format!(
            "{flag} {}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The acceptor for `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, RegistryError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&files.cert, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad_tls(format!("--tls-key {}: {e}", files.key.display())))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_tls(format!("TLS versions: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "--client-ca")? {
                roots
                    .add(cert)
                    .map_err(|e| bad_tls(format!("--client-ca {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad_tls(format!("--client-ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad_tls(format!("--tls-cert/--tls-key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One DER element: its tag, its contents and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject CN of an X.509 certificate (DER), if it has one in a string type. The
/// certificate was verified by rustls before this reads it; this only walks
/// `Certificate.tbsCertificate.subject`.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (tag, cert, _) = element(der)?;
    (tag == SEQUENCE).then_some(())?;
    let (tag, mut tbs, _) = element(cert)?;
    (tag == SEQUENCE).then_some(())?;
    // [0] version (optional), serialNumber, signature, issuer, validity, then subject.
    let (tag, _, rest) = element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
        tbs = element(tbs)?.2; // serialNumber
    } else {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = element(tbs)?.2; // signature, issuer, validity
    }
    let (tag, mut subject, _) = element(tbs)?;
    (tag == SEQUENCE).then_some(())?;
    while let Some((tag, mut rdn, rest)) = element(subject) {
        subject = rest;
        if tag != SET {
            continue;
        }
        while let Some((_, attr, more)) = element(rdn) {
            rdn = more;
            let (tag, oid, value) = element(attr)?;
            if tag == OID && oid == CN {
                let (vtag, bytes, _) = element(value)?;
                // UTF8String, PrintableString, TeletexString, IA5String.
                if matches!(vtag, 0x0c | 0x13 | 0x14 | 0x16) {
                    return String::from_utf8(bytes.to_vec()).ok();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "modelspec tests");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ci-robot");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_common_name(cert.der()).as_deref(), Some("ci-robot"));
        assert_eq!(subject_common_name(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_common_name(&[]), None);
    }
}
