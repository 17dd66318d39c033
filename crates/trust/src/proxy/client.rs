//! The signing proxy's client: a `Signer` that asks a proxy (`http(s)://HOST[:PORT][/PREFIX]
//! [?keyId=sha256:…]`) to sign, over the protocol of [`crate::proxy`].
//!
//! The bearer token comes from `MODELSPEC_SIGNER_TOKEN` or the file named by
//! `MODELSPEC_SIGNER_TOKEN_FILE`, never from the URL (a URL ends up in logs and process lists).
//! An `https://` proxy is checked against the public web PKI roots, or against the PEM
//! certificates of `MODELSPEC_SIGNER_CA_FILE` (a private CA).
//! On open the client reads `GET /v1/keys`, picks the key (`keyId`, or the only one) and checks
//! that the announced PEM has that fingerprint; ECDSA messages are sent as their SHA-256 digest,
//! Ed25519 messages whole; every returned signature is verified against the key before use.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};
use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};

use super::{ErrorBody, KeyList, SignRequest, SignResponse};
use crate::codes::{MT0402, MT0403, MT0404, MT0405, MT0406, MT0407, MT0408};
use crate::error::{Result, TrustError};
use crate::key::{Algorithm, PublicKey};
use crate::signer::{Signer, SignerKind};

/// The bearer token.
pub const TOKEN_ENV: &str = "MODELSPEC_SIGNER_TOKEN";
/// A file holding the bearer token (its first line).
pub const TOKEN_FILE_ENV: &str = "MODELSPEC_SIGNER_TOKEN_FILE";
/// PEM certificates to trust for an `https://` proxy instead of the public web PKI roots (a
/// proxy behind a TLS terminator with a private CA).
pub const CA_FILE_ENV: &str = "MODELSPEC_SIGNER_CA_FILE";
/// Answers larger than this are not the protocol's.
const MAX_ANSWER: u64 = 1 << 20;

/// A key behind a signing proxy.
pub struct ProxySigner {
    agent: Agent,
    base: String,
    authorization: String,
    key_id: String,
    public_key: PublicKey,
    development_only: bool,
}

impl std::fmt::Debug for ProxySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxySigner({}, {:?})", self.base, self.public_key)
    }
}

/// Opens the proxy key a URL names, with the token from the environment.
pub fn open(reference: &str) -> Result<ProxySigner> {
    let token = match (std::env::var(TOKEN_ENV), std::env::var_os(TOKEN_FILE_ENV)) {
        (Ok(t), _) => t,
        (Err(_), Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| {
                TrustError::new(
                    MT0402,
                    format!(
                        "cannot read the signing proxy token file {} ({TOKEN_FILE_ENV}): {e}",
                        std::path::Path::new(&path).display()
                    ),
                )
            })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        (Err(_), None) => {
            return Err(TrustError::new(
                MT0402,
                format!(
                    "no bearer token for the signing proxy {reference}: set {TOKEN_ENV} or \
                     {TOKEN_FILE_ENV}"
                ),
            ));
        }
    };
    let ca = match std::env::var_os(CA_FILE_ENV) {
        Some(path) => Some(std::fs::read(&path).map_err(|e| {
            TrustError::new(
                MT0402,
                format!(
                    "cannot read the signing proxy CA file {} ({CA_FILE_ENV}): {e}",
                    std::path::Path::new(&path).display()
                ),
            )
        })?),
        None => None,
    };
    ProxySigner::connect_with(reference, &token, ca.as_deref())
}

impl ProxySigner {
    /// Connects to the proxy at `url` with `token` and reads its key.
    pub fn connect(url: &str, token: &str) -> Result<Self> {
        Self::connect_with(url, token, None)
    }

    /// As [`ProxySigner::connect`]; an `https://` proxy's certificate must chain to one of the
    /// PEM certificates of `ca_pem` when given, else to the public web PKI roots.
    pub fn connect_with(url: &str, token: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        let (base, wanted) = parse_url(url)?;
        let token = token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(TrustError::new(
                MT0402,
                "the signing proxy token is empty or contains a space or control character",
            ));
        }
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .timeout_connect(Some(Duration::from_secs(10)));
        if let Some(pem) = ca_pem {
            let roots = RootCerts::new_with_certs(&certificates(pem)?);
            config = config.tls_config(TlsConfig::builder().root_certs(roots).build());
        }
        let agent: Agent = config.build().into();
        let mut signer = ProxySigner {
            agent,
            base,
            authorization: format!("Bearer {token}"),
            key_id: String::new(),
            // Replaced below by the proxy's key.
            public_key: PublicKey::ed25519(&[0; 32]),
            development_only: true,
        };
        let resp = signer
            .agent
            .get(format!("{}/v1/keys", signer.base))
            .header("authorization", &signer.authorization)
            .call();
        let list: KeyList = signer.answer(resp, "GET /v1/keys")?;
        let chosen = match &wanted {
            Some(id) => list.keys.iter().find(|k| &k.key_id == id).ok_or_else(|| {
                TrustError::new(
                    MT0405,
                    format!(
                        "the signing proxy {} has no key {id}; it serves: {}",
                        signer.base,
                        ids(&list)
                    ),
                )
            })?,
            None => match list.keys.as_slice() {
                [one] => one,
                _ => {
                    return Err(TrustError::new(
                        MT0405,
                        format!(
                            "the signing proxy {} serves {} keys ({}); name one with \
                             `?keyId=sha256:…`",
                            signer.base,
                            list.keys.len(),
                            ids(&list)
                        ),
                    ));
                }
            },
        };
        let key = PublicKey::from_pem(&chosen.public_key)?;
        if key.fingerprint() != chosen.key_id {
            return Err(TrustError::new(
                MT0403,
                format!(
                    "the signing proxy {} announced key {} with a public key whose fingerprint is \
                     {}: refusing it",
                    signer.base,
                    chosen.key_id,
                    key.fingerprint()
                ),
            ));
        }
        signer.key_id = chosen.key_id.clone();
        signer.development_only = chosen.development_only;
        signer.public_key = key;
        Ok(signer)
    }

    /// The proxy's base URL (no query).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn request(&self, request: &SignRequest) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(request).expect("a sign request serializes");
        let resp = self
            .agent
            .post(format!("{}/v1/sign", self.base))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .send(&body[..]);
        let answer: SignResponse = self.answer(resp, "POST /v1/sign")?;
        if answer.key_id != self.key_id {
            return Err(TrustError::new(
                MT0403,
                format!(
                    "the signing proxy {} answered for key {} instead of {}",
                    self.base, answer.key_id, self.key_id
                ),
            ));
        }
        B64.decode(&answer.signature).map_err(|e| {
            TrustError::new(
                MT0403,
                format!(
                    "the signing proxy {} sent a signature that is not base64: {e}",
                    self.base
                ),
            )
        })
    }

    /// Reads an answer: the JSON of `T` on 200, else the protocol's error as a `TrustError`
    /// with the code the proxy gave (a 401 always as MT0404).
    fn answer<T: serde::de::DeserializeOwned>(
        &self,
        resp: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<T> {
        let base = &self.base;
        let resp = resp
            .map_err(|e| TrustError::new(MT0403, format!("signing proxy {base}: {what}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| {
                TrustError::new(
                    MT0403,
                    format!("signing proxy {base}: {what}: reading the answer: {e}"),
                )
            })?;
        if status == 200 {
            return serde_json::from_slice(&body).map_err(|e| {
                TrustError::new(
                    MT0403,
                    format!(
                        "signing proxy {base}: {what}: the answer is not the protocol's JSON: {e}"
                    ),
                )
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        let code = match status {
            401 => MT0404,
            404 => MT0405,
            413 => MT0406,
            400 | 415 | 422 => detail
                .as_ref()
                .and_then(|d| crate::codes::TABLE.iter().find(|c| c.code == d.code))
                .map_or(MT0407, |c| c.code),
            502 => MT0408,
            _ => MT0403,
        };
        let message = detail.map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            |d| d.message,
        );
        Err(TrustError::new(
            code,
            format!("signing proxy {base}: {what}: HTTP {status}: {message}"),
        ))
    }

    fn checked(&self, message: &[u8], signature: Vec<u8>) -> Result<Vec<u8>> {
        self.public_key.verify(message, &signature).map_err(|_| {
            TrustError::new(
                MT0408,
                format!(
                    "the signing proxy {} returned a signature that does not verify with key {}: \
                     refusing it",
                    self.base, self.key_id
                ),
            )
        })?;
        Ok(signature)
    }
}

impl Signer for ProxySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn kind(&self) -> SignerKind {
        SignerKind::Proxy {
            development_only: self.development_only,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature = match self.public_key.algorithm() {
            Algorithm::Ed25519 => self.request(&SignRequest {
                key_id: self.key_id.clone(),
                message: Some(B64.encode(message)),
                digest: None,
            })?,
            Algorithm::EcdsaP256Sha256 => {
                self.sign_sha256_digest(&Sha256::digest(message).into())?
            }
        };
        self.checked(message, signature)
    }

    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        self.request(&SignRequest {
            key_id: self.key_id.clone(),
            message: None,
            digest: Some(B64.encode(digest)),
        })
    }
}

/// The certificates of a PEM file (other blocks ignored); none is an error.
fn certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>> {
    let bad = |why: String| TrustError::new(MT0402, format!("the signing proxy CA file: {why}"));
    let mut certs = Vec::new();
    for item in parse_pem(pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(format!("not PEM: {e}")))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no `CERTIFICATE` block".into()));
    }
    Ok(certs)
}

fn ids(list: &KeyList) -> String {
    if list.keys.is_empty() {
        return "none".into();
    }
    list.keys
        .iter()
        .map(|k| k.key_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `http(s)://HOST[:PORT][/PREFIX][?keyId=…]` → (base without a trailing `/`, keyId).
fn parse_url(url: &str) -> Result<(String, Option<String>)> {
    let bad = |why: &str| {
        TrustError::new(
            MT0402,
            format!(
                "signing proxy URL: {why}; expected http(s)://HOST[:PORT][/PREFIX][?keyId=sha256:…]"
            ),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("not an http:// or https:// URL"))?;
    if url.contains('#') {
        return Err(bad("a fragment (`#…`) has no meaning here"));
    }
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        // Never echo the URL here: its user part may be the token.
        return Err(TrustError::new(
            MT0402,
            format!(
                "the signing proxy URL carries credentials (`user@`); put the bearer token in \
                 {TOKEN_ENV} or {TOKEN_FILE_ENV} instead"
            ),
        ));
    }
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    let mut key_id = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("keyId", v)) if key_id.is_none() => key_id = Some(v.to_string()),
            _ => {
                let name = pair.split('=').next().unwrap_or("");
                return Err(bad(&format!(
                    "query parameter `{name}` is not supported (only one `keyId`)"
                )));
            }
        }
    }
    Ok((before_query.trim_end_matches('/').to_string(), key_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_credentials_are_refused() {
        assert_eq!(
            parse_url("http://127.0.0.1:7300").unwrap(),
            ("http://127.0.0.1:7300".into(), None)
        );
        assert_eq!(
            parse_url("https://signer.internal/proxy/?keyId=sha256:ab").unwrap(),
            (
                "https://signer.internal/proxy".into(),
                Some("sha256:ab".into())
            )
        );
        let e = parse_url("https://user:s3cret@host/").unwrap_err();
        assert!(!e.message.contains("s3cret"), "{e}");
        for bad in [
            "ftp://h",
            "http://",
            "http://h/?key=x",
            "http://h#k",
            "http://h?keyId=a&keyId=b",
        ] {
            assert_eq!(parse_url(bad).unwrap_err().code, MT0402, "{bad}");
        }
    }
}
