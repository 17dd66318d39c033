//! The control plane's HTTP server (`modelspec registry serve`): the registry's API as JSON
//! over HTTP/1.1, optionally HTTPS with client certificates. It holds no registry logic: each
//! request authenticates its caller and calls a registry acting as that principal (the role
//! checks, audit events and rules are the registry's); the server only translates HTTP to
//! [`ms_registry::Registry`] calls and the registry's errors to one JSON shape.
//!
//! Modules: [`config`] (what to serve, where, limits), [`listen`] (bind rule, accept loop,
//! TLS handshake, hyper), [`tls`] (rustls, client CA, the certificate's subject CN),
//! [`auth`] (bearer token or certificate -> principal), [`routes`] (one module per subject),
//! [`extract`] (JSON bodies, path ids and queries with the API's errors), [`body`] (streamed
//! bodies and their stall timeout), [`error`] (the error shape), [`openapi`], and [`witness`]
//! (`modelspec audit witness`, a C2SP tlog-witness).

pub mod auth;
pub mod backend;
pub mod body;
pub mod config;
pub mod error;
pub mod extract;
pub mod listen;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod tls;
pub mod witness;

use std::net::SocketAddr;
use std::sync::Arc;

use ms_registry::{ErrorKind, RegistryError};
use tokio::sync::watch;

pub use backend::{Backend, EmbeddedBackend};
pub use config::{Limits, ServeConfig, TlsFiles};

use crate::state::AppState;

/// A running server; [`Server::shutdown`] stops it (dropping it stops it too, without
/// waiting).
pub struct Server {
    addr: SocketAddr,
    https: bool,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish (at most a few seconds), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (it stops only through [`Server::shutdown`] or a drop).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Opens the registry at `config.db` and `config.store` and serves it.
pub async fn serve(config: &ServeConfig) -> Result<Server, RegistryError> {
    // The bind rule first: a refused address should not create a database.
    listen::check_bind(config.host, config.tls.is_some(), config.insecure)?;
    let backend = EmbeddedBackend::open(&config.db, &config.store).await?;
    if let Some(log) = &config.log {
        backend.registry().set_log_shared(log.clone());
    }
    serve_backend(config, Arc::new(backend)).await
}

/// Serves `backend` as `config` says (its `db` and `store` are not read: the backend is
/// open already). Binds before returning, so the address is known and a busy port is an
/// error here.
pub async fn serve_backend(
    config: &ServeConfig,
    backend: Arc<dyn Backend>,
) -> Result<Server, RegistryError> {
    listen::check_bind(config.host, config.tls.is_some(), config.insecure)?;
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        RegistryError::new(
            ErrorKind::Unavailable,
            ms_registry::remote::codes::BIND_REFUSED,
            format!("cannot listen on {addr}: {e}"),
        )
        .hint("choose another --port, or stop what listens there")
    })?;
    let addr = listener.local_addr().map_err(|e| {
        RegistryError::new(
            ErrorKind::Internal,
            ms_registry::remote::codes::BIND_REFUSED,
            format!("the listening address is unknown: {e}"),
        )
    })?;
    let state = AppState {
        backend,
        cert_roles: Arc::new(config.cert_roles.clone()),
        limits: config.limits.clone(),
    };
    let app = routes::router(state);
    let (stop, stopped) = watch::channel(false);
    let https = acceptor.is_some();
    let task = tokio::spawn(listen::accept_loop(
        listener,
        app,
        acceptor,
        config.limits.clone(),
        stopped,
    ));
    Ok(Server {
        addr,
        https,
        stop,
        task: Some(task),
    })
}
