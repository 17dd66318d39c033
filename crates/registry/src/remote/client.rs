//! [`Remote`]: the registry over HTTP. Bodies stream both ways (an upload is read from its
//! `ByteReader` as it is sent; content is a reader over the response); the server's
//! `{"error": …}` bodies become the same [`RegistryError`] the embedded registry returns, so
//! messages are identical either way; whole reads are verified against the digest here too;
//! a server that cannot be reached is
//! [`ErrorKind::Unavailable`] naming the URL (never the token).

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, HeaderValue, RANGE};
use reqwest::{Body, Client, Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::io::{ReaderStream, StreamReader};

use super::codes;
use crate::api::{ByteRange, ByteReader, Content, Registered, Registry};
use crate::digest::Digest;
use crate::entity::*;
use crate::error::{ErrorKind, RegistryError, Result};
use crate::log::{ConsistencyProof, CosignatureReceipt, Cosignatures, EventProof};

/// Certificates for an `https://` control plane beyond the system's roots.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates to trust (e.g. a private CA's).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key, for servers that require
    /// client certificates.
    pub identity_pem: Option<Vec<u8>>,
}

/// A registry behind `modelspec registry serve`, acting as the token's principal.
#[derive(Clone)]
pub struct Remote {
    base: Url,
    authorization: Option<HeaderValue>,
    client: Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("Remote")
            .field("base", &self.base.as_str())
            .finish()
    }
}

fn invalid_url(url: &str, why: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(
        ErrorKind::Invalid,
        codes::UNREACHABLE,
        format!("{url:?} is not a registry URL: {why}"),
    )
    .hint("give http://HOST:PORT or https://HOST:PORT of `modelspec registry serve`")
}

impl Remote {
    /// A client of the control plane at `url` (`http://…` or `https://…`) with a bearer token
    /// (empty: none, e.g. with a client certificate).
    pub fn new(url: &str, token: &str) -> Result<Remote> {
        Remote::with_tls(url, token, TlsOptions::default())
    }

    /// [`Remote::new`] with extra trusted CAs and/or a client certificate.
    pub fn with_tls(url: &str, token: &str, tls: TlsOptions) -> Result<Remote> {
        let base = Url::parse(url).map_err(|e| invalid_url(url, e))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid_url(url, "the scheme must be http or https"));
        }
        let authorization = if token.is_empty() {
            None
        } else {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                RegistryError::new(
                    ErrorKind::Invalid,
                    codes::NO_CREDENTIALS,
                    "the token has characters a header cannot carry",
                )
            })?;
            v.set_sensitive(true);
            Some(v)
        };
        let mut builder = Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("modelspec/", env!("CARGO_PKG_VERSION")));
        let tls_error = |what: &str, e: reqwest::Error| {
            RegistryError::new(
                ErrorKind::Invalid,
                codes::BAD_TLS,
                format!("the {what} cannot be used: {e}"),
            )
        };
        if let Some(pem) = &tls.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| tls_error("CA certificate", e))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &tls.identity_pem {
            builder = builder.identity(
                reqwest::Identity::from_pem(pem).map_err(|e| tls_error("client certificate", e))?,
            );
        }
        let client = builder.build().map_err(|e| tls_error("HTTP client", e))?;
        Ok(Remote {
            base,
            authorization,
            client,
        })
    }

    /// The control plane's URL.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// The URL of `segments` under the base, each percent-encoded as one segment.
    fn url_of(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let rb = self.client.request(method, url);
        match &self.authorization {
            Some(v) => rb.header(AUTHORIZATION, v.clone()),
            None => rb,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> RegistryError {
        RegistryError::new(
            ErrorKind::Unavailable,
            codes::UNREACHABLE,
            format!(
                "the registry at {} cannot be reached: {}",
                self.base,
                error_chain(&e.without_url())
            ),
        )
        .hint(format!(
            "check that `modelspec registry serve` runs at {} (scheme, host and port)",
            self.base
        ))
    }

    /// Sends and turns an error answer into its [`RegistryError`].
    async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let response = rb.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        Err(error_from_body(status, &text))
    }

    async fn json<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let response = self.send(rb).await?;
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::new(
                ErrorKind::Internal,
                codes::BAD_RESPONSE,
                format!("the registry's answer is not the expected record: {e}"),
            )
        })
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.json(self.request(Method::GET, self.url_of(segments)))
            .await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        self.json(self.request(Method::POST, self.url_of(segments)).json(body))
            .await
    }
}

/// An error and its sources on one line (reqwest's own message is often just "error sending
/// request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// The server's `{"error": …}` as the registry error it carries.
fn error_from_body(status: StatusCode, text: &str) -> RegistryError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: RegistryError,
    }
    match serde_json::from_str::<Body>(text) {
        Ok(b) => b.error,
        Err(_) => {
            let snippet: String = text.chars().take(200).collect();
            RegistryError::new(
                ErrorKind::Internal,
                codes::BAD_RESPONSE,
                format!(
                    "the registry answered {status} without the API's error shape: {snippet:?}"
                ),
            )
            .hint("is the URL a `modelspec registry serve`?")
        }
    }
}

/// A request body read from `reader` as it is sent.
fn streamed(reader: ByteReader) -> Body {
    Body::wrap_stream(ReaderStream::with_capacity(reader, 64 * 1024))
}

/// The response body as a reader.
fn body_reader(response: Response) -> ByteReader {
    let stream = response
        .bytes_stream()
        .map_err(|e| std::io::Error::other(error_chain(&e)));
    Box::new(StreamReader::new(stream))
}

/// `START-END/SIZE` of a `Content-Range` answer, END exclusive.
fn content_range(response: &Response) -> Option<(u64, u64)> {
    let text = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = text.strip_prefix("bytes ")?.split('/').next()?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse::<u64>().ok()? + 1))
}

#[async_trait]
impl Registry for Remote {
    async fn whoami(&self) -> Result<Principal> {
        self.get(&["whoami"]).await
    }

    async fn upload_artifact(
        &self,
        req: ArtifactUpload,
        body: ByteReader,
    ) -> Result<Registered<Artifact>> {
        let mut url = self.url_of(&["artifact", "upload"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("name", &req.name);
            if let Some(t) = &req.media_type {
                q.append_pair("mediaType", t);
            }
            if let Some(d) = &req.expected_digest {
                q.append_pair("digest", &d.to_string());
            }
            if let Some(s) = req.size {
                q.append_pair("size", &s.to_string());
            }
            if let Some(p) = &req.provenance {
                q.append_pair("provenance", &p.to_string());
            }
        }
        // The declared size travels in the query, the body chunked: a Content-Length that the
        // reader then falls short of would be a client-side error before the server's answer
        // (413 for a size above the limit, refused before reading) could be read.
        let rb = self.request(Method::POST, url).body(streamed(body));
        self.json(rb).await
    }

    async fn start_upload(&self, req: ArtifactUpload) -> Result<UploadSession> {
        self.post(&["artifact", "uploads"], &req).await
    }

    async fn upload_status(&self, upload_id: &str) -> Result<UploadSession> {
        self.get(&["artifact", "uploads", upload_id]).await
    }

    async fn upload_chunk(
        &self,
        upload_id: &str,
        offset: u64,
        body: ByteReader,
    ) -> Result<UploadSession> {
        let rb = self
            .request(
                Method::PATCH,
                self.url_of(&["artifact", "uploads", upload_id]),
            )
            .header("upload-offset", offset)
            .body(streamed(body));
        self.json(rb).await
    }

    async fn finish_upload(&self, upload_id: &str) -> Result<Registered<Artifact>> {
        let rb = self.request(
            Method::PUT,
            self.url_of(&["artifact", "uploads", upload_id]),
        );
        self.json(rb).await
    }

    async fn artifact(&self, id: &Digest) -> Result<Artifact> {
        self.get(&["artifact", &id.to_string()]).await
    }

    async fn artifact_content(&self, id: &Digest, range: Option<ByteRange>) -> Result<Content> {
        let artifact = self.artifact(id).await?;
        let id = id.to_string();
        let mut rb = self.request(Method::GET, self.url_of(&["artifact", &id, "content"]));
        if let Some(r) = range {
            let header = match r.end {
                // An empty range is not expressible in HTTP; ask for its start so the server
                // still says whether it is inside the blob.
                Some(end) if end > r.start => format!("bytes={}-{}", r.start, end - 1),
                _ => format!("bytes={}-", r.start),
            };
            rb = rb.header(RANGE, header);
        }
        let response = self.send(rb).await.map_err(|e| {
            if e.code != codes::UNREACHABLE {
                return e;
            }
            // The metadata came back a moment ago: the server is there, the transfer broke.
            RegistryError::new(
                ErrorKind::Unavailable,
                codes::UNREACHABLE,
                format!("the transfer of {id} from {} broke off: {}", self.base, e.message),
            )
            .hint("retry; if it breaks again, the stored blob may be damaged: run `modelspec registry check` on the server")
        })?;
        let (start, mut end) = if response.status() == StatusCode::PARTIAL_CONTENT {
            content_range(&response).ok_or_else(|| {
                RegistryError::new(
                    ErrorKind::Internal,
                    codes::BAD_RESPONSE,
                    "a 206 answer without a readable Content-Range",
                )
            })?
        } else {
            (0, artifact.size)
        };
        // A whole read is hashed here too (the blob store's own verifier): bytes changed or
        // cut short on the way end the reader with the same Integrity error as embedded.
        let mut body = if range.is_none() {
            let stream = response
                .bytes_stream()
                .map_err(|e| std::io::Error::other(error_chain(&e)))
                .boxed();
            let verified =
                crate::blob::read::verify_full(stream, artifact.artifact_id, artifact.size);
            Box::new(crate::blob::read::StreamReader::new(verified))
        } else {
            body_reader(response)
        };
        if let Some(ByteRange {
            start: s,
            end: Some(e),
        }) = range
            && e <= s
        {
            end = start;
            body = Box::new(tokio::io::empty());
        }
        Ok(Content {
            artifact,
            start,
            end,
            body,
        })
    }

    async fn register_dataset(&self, req: DatasetRegistration) -> Result<Registered<Dataset>> {
        self.post(&["dataset", "register"], &req).await
    }

    async fn dataset(&self, id: &Digest) -> Result<Dataset> {
        self.get(&["datasets", &id.to_string()]).await
    }

    async fn register_model(&self, req: ModelRegistration) -> Result<Registered<ModelVersion>> {
        self.post(&["models", "register"], &req).await
    }

    async fn model(&self, model_id: &str) -> Result<Model> {
        self.get(&["models", model_id]).await
    }

    async fn model_version(&self, model_id: &str, selector: &str) -> Result<ModelVersion> {
        self.get(&["models", model_id, "versions", selector]).await
    }

    async fn list_models(&self, query: ModelQuery) -> Result<Page<ModelVersion>> {
        let mut url = self.url_of(&["models"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = &query.family {
                q.append_pair("family", f);
            }
            if let Some(s) = query.status {
                let v = serde_json::to_value(s).unwrap_or_default();
                q.append_pair("status", v.as_str().unwrap_or_default());
            }
            if let Some(text) = &query.q {
                q.append_pair("q", text);
            }
            if let Some(t) = &query.page_token {
                q.append_pair("page_token", t);
            }
            if let Some(l) = query.limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        self.json(self.request(Method::GET, url)).await
    }

    async fn history(&self, model_id: &str) -> Result<Vec<HistoryEntry>> {
        self.get(&["models", model_id, "history"]).await
    }

    async fn promote(&self, model_id: &str, req: PromoteRequest) -> Result<PointerMove> {
        self.post(&["models", model_id, "promote"], &req).await
    }

    async fn provenance(&self, subject: &str) -> Result<ProvenanceRecord> {
        self.get(&["provenance", subject]).await
    }

    async fn sign_provenance(
        &self,
        subject: &str,
        signature: ProvenanceSignature,
    ) -> Result<ProvenanceRecord> {
        self.post(&["provenance", subject, "signature"], &signature)
            .await
    }

    async fn lineage(&self, id: &str, direction: Direction, depth: u32) -> Result<LineageGraph> {
        let mut url = self.url_of(&["lineage", id]);
        let direction = match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        url.query_pairs_mut()
            .append_pair("direction", direction)
            .append_pair("depth", &depth.to_string());
        self.json(self.request(Method::GET, url)).await
    }

    async fn create_token(&self, req: TokenRequest) -> Result<CreatedToken> {
        self.post(&["tokens"], &req).await
    }

    async fn revoke_token(&self, token_id: &str) -> Result<TokenInfo> {
        let rb = self.request(Method::DELETE, self.url_of(&["tokens", token_id]));
        self.json(rb).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.get(&["tokens"]).await
    }

    async fn audit_events(&self, after: u64, limit: u32) -> Result<Vec<AuditEvent>> {
        let mut url = self.url_of(&["audit"]);
        url.query_pairs_mut()
            .append_pair("after", &after.to_string())
            .append_pair("limit", &limit.to_string());
        self.json(self.request(Method::GET, url)).await
    }

    async fn check(&self) -> Result<CheckReport> {
        self.json(self.request(Method::POST, self.url_of(&["registry", "check"])))
            .await
    }

    async fn sign_version(
        &self,
        model_id: &str,
        selector: &str,
        req: SignatureRequest,
    ) -> Result<Registered<ManifestSignature>> {
        self.post(
            &["models", model_id, "versions", selector, "signatures"],
            &req,
        )
        .await
    }

    async fn signatures(&self, model_id: &str, selector: &str) -> Result<Vec<ManifestSignature>> {
        self.get(&["models", model_id, "versions", selector, "signatures"])
            .await
    }

    async fn add_key(&self, req: KeyRequest) -> Result<Registered<SigningKey>> {
        self.post(&["keys"], &req).await
    }

    async fn rotate_key(&self, key_id: &str, req: RotateKeyRequest) -> Result<KeyRotation> {
        self.post(&["keys", key_id, "rotate"], &req).await
    }

    async fn revoke_key(&self, key_id: &str, req: RevokeKeyRequest) -> Result<SigningKey> {
        self.post(&["keys", key_id, "revoke"], &req).await
    }

    async fn keys(&self) -> Result<Vec<SigningKey>> {
        self.get(&["keys"]).await
    }

    async fn audit_checkpoint(&self) -> Result<String> {
        let rb = self.request(Method::GET, self.url_of(&["audit", "checkpoint"]));
        let response = self.send(rb).await?;
        response.text().await.map_err(|e| self.unreachable(e))
    }

    async fn audit_tile(&self, path: &str) -> Result<Vec<u8>> {
        // A tile path is several segments (`tile/0/x001/234.p/5`); each is sent as it is
        // (digits, `x`, `.p`, `entries`), a path that is anything else is the server's to
        // refuse.
        let mut segments = vec!["audit"];
        segments.extend(path.split('/'));
        let rb = self.request(Method::GET, self.url_of(&segments));
        let response = self.send(rb).await?;
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Ok(bytes.to_vec())
    }

    async fn audit_event(&self, seq: u64) -> Result<EventProof> {
        self.get(&["audit", "events", &seq.to_string()]).await
    }

    async fn audit_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        let mut url = self.url_of(&["audit", "proof", "consistency"]);
        url.query_pairs_mut()
            .append_pair("from", &from.to_string())
            .append_pair("to", &to.to_string());
        self.json(self.request(Method::GET, url)).await
    }

    async fn add_cosignatures(&self, req: Cosignatures) -> Result<CosignatureReceipt> {
        self.post(&["audit", "cosignatures"], &req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_round_trip() {
        let e = RegistryError::new(ErrorKind::NotFound, "MG0201", "no model x")
            .at("/spec")
            .hint("register it");
        let text = serde_json::json!({ "error": e }).to_string();
        assert_eq!(error_from_body(StatusCode::NOT_FOUND, &text), e);
        let other = error_from_body(StatusCode::BAD_GATEWAY, "<html>");
        assert_eq!(other.code, codes::BAD_RESPONSE);
        assert!(other.message.contains("502"), "{other}");
    }

    #[test]
    fn ids_are_one_segment_each() {
        let r = Remote::new("http://127.0.0.1:9/base/", "t").unwrap();
        let url = r.url_of(&["models", "../x/y", "history"]);
        assert_eq!(url.path(), "/base/models/..%2Fx%2Fy/history");
        assert!(!format!("{r:?}").contains("Bearer"));
        assert!(Remote::new("ftp://x", "").is_err());
    }
}
