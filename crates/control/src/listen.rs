//! Where and how the server listens: the bind rule (loopback unless TLS or `--insecure`), the
//! accept loop with its connection limit, the TLS handshake (bounded by the header timeout),
//! hyper's HTTP/1.1 with a head-read timeout and a bounded head buffer, and each request's
//! body under a stall guard. The certificate of an mTLS client rides on every request of its
//! connection as a [`PeerCertificate`] extension.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ms_registry::remote::codes;
use ms_registry::{ErrorKind, RegistryError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::PeerCertificate;
use crate::body::StallGuard;
use crate::config::Limits;
use crate::tls::subject_common_name;

/// Refuses a non-loopback address without TLS unless `insecure`.
pub fn check_bind(host: IpAddr, tls: bool, insecure: bool) -> Result<(), RegistryError> {
    if host.is_loopback() || tls || insecure {
        return Ok(());
    }
    Err(RegistryError::new(
        ErrorKind::Invalid,
        codes::BIND_REFUSED,
        format!("refusing to listen on {host} without TLS: bearer tokens would cross the network in clear text"),
    )
    .hint("give --tls-cert and --tls-key, bind 127.0.0.1, or pass --insecure (e.g. behind a TLS-terminating proxy)"))
}

/// Accepts connections until `stop` turns true, then lets open ones finish their requests.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // Waiting for a permit first keeps extra connections in the kernel's backlog.
        let permit = tokio::select! {
            () = stopped(&mut stop) => break,
            p = Arc::clone(&permits).acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            () = stopped(&mut stop) => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or a reset before accept: pause rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            match tls {
                None => connection(stream, None, app, &limits, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read, acceptor.accept(stream)).await;
                    // A failed handshake (no client certificate, an untrusted one, not TLS)
                    // is answered by rustls with an alert; nothing to add.
                    if let Ok(Ok(stream)) = handshake {
                        let common_name = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| subject_common_name(c));
                        let peer = PeerCertificate { common_name };
                        connection(stream, Some(peer), app, &limits, stop).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drained)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection<S>(
    stream: S,
    peer: Option<PeerCertificate>,
    app: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stall = limits.body_stall;
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut req = req.map(|b| Body::new(StallGuard::new(b, stall)));
        if let Some(peer) = &peer {
            req.extensions_mut().insert(peer.clone());
        }
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // hyper answers a head above its buffer with an empty 431; the router's header check
        // answers with the JSON shape below that, so the buffer has room above the limit.
        .max_buf_size((limits.max_header_bytes * 4).max(64 << 10))
        .max_headers(limits.max_headers * 4);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
