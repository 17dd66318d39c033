//! A control plane over SQLite and a local directory in a temp dir, served on a free loopback
//! port, with tokens for each role (made through the embedded registry as an admin, as
//! `modelspec registry token create` does), and a plain HTTP client.

#![allow(dead_code)]

use std::sync::Arc;

use ms_control::{ServeConfig, Server};
use ms_registry::Registry;
use ms_registry::embedded::Embedded;
use ms_registry::entity::{Principal, Role, TokenRequest};

pub struct Plane {
    pub server: Server,
    pub url: String,
    /// The store used directly, as an admin (to look behind the server's back).
    pub embedded: Embedded,
    pub admin: String,
    pub writer: String,
    pub reader: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Plane {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// `METHOD path` with `token` (None: no Authorization).
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, self.at(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn audit_len(&self) -> usize {
        self.embedded.audit_events(0, 1000).await.unwrap().len()
    }
}

pub fn admin_principal() -> Principal {
    Principal {
        name: "os:test".into(),
        role: Role::Admin,
    }
}

/// Config for a store in `dir`.
pub fn config_in(dir: &std::path::Path) -> ServeConfig {
    ServeConfig::new(
        format!("sqlite://{}", dir.join("registry.db").display()),
        format!("file://{}", dir.join("blobs").display()),
    )
}

pub async fn token(embedded: &Embedded, name: &str, role: Role) -> String {
    embedded
        .create_token(TokenRequest {
            name: name.into(),
            role,
        })
        .await
        .unwrap()
        .token
}

/// A served control plane with admin, writer and reader tokens.
pub async fn plane() -> Plane {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    plane_with(dir, config).await
}

pub async fn plane_with(dir: tempfile::TempDir, config: ServeConfig) -> Plane {
    let embedded = Embedded::open(&config.db, &config.store, admin_principal())
        .await
        .unwrap();
    let server = ms_control::serve(&config).await.unwrap();
    with_tokens(dir, embedded, server).await
}

/// A control plane over a registry the test opened itself (e.g. S3 with explicit settings).
pub async fn plane_over(dir: tempfile::TempDir, embedded: Embedded) -> Plane {
    let backend = ms_control::EmbeddedBackend::new(embedded.clone());
    let config = config_in(dir.path());
    let server = ms_control::serve_backend(&config, Arc::new(backend))
        .await
        .unwrap();
    with_tokens(dir, embedded, server).await
}

async fn with_tokens(dir: tempfile::TempDir, embedded: Embedded, server: Server) -> Plane {
    let admin = token(&embedded, "admin", Role::Admin).await;
    let writer = token(&embedded, "writer", Role::Writer).await;
    let reader = token(&embedded, "reader", Role::Reader).await;
    let url = server.url();
    Plane {
        server,
        url,
        embedded,
        admin,
        writer,
        reader,
        http: reqwest::Client::new(),
        dir,
    }
}

/// The error object of an error answer, after checking its status and shape.
pub async fn error_of(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"));
    let body: serde_json::Value = response.json().await.unwrap();
    let e = body["error"].clone();
    assert!(e["code"].as_str().unwrap().starts_with("MG"), "{body}");
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    e
}

pub fn remote(plane: &Plane, token: &str) -> Arc<dyn Registry> {
    Arc::new(ms_registry::remote::Remote::new(&plane.url, token).unwrap())
}
