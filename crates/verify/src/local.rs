//! The in-process server of local mode: ms-server on a free loopback port, loading the spec
//! (and plan) exactly as `modelspec serve` would. Verification then talks to it over HTTP like
//! to any other server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use ms_runtime::{LoadRequest, PlanSource};
use ms_server::{ServerConfig, ServerHandle};

pub struct Local {
    handle: ServerHandle,
}

impl Local {
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Stops the server and waits for its threads.
    pub fn shutdown(self) {
        self.handle.shutdown();
    }
}

/// Starts the server for `spec` and waits up to `ready` until the model is loaded; returns it
/// and how long that took. When the spec enables tracing, `traces` is where its spans go.
pub fn start(
    spec: &Path,
    plan: Option<&Path>,
    ready: Duration,
    traces: Option<String>,
) -> Result<(Local, Duration), String> {
    let started = Instant::now();
    let mut req = LoadRequest::new(spec.display().to_string());
    req.plan = plan.map(|p| PlanSource::File(p.to_path_buf()));
    let mut config = ServerConfig::for_request(&req).map_err(|e| e.to_string())?;
    config.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.port = 0;
    if let (Some(export), Some(url)) = (config.tracing.as_mut(), traces) {
        export.endpoint = url;
        export.endpoint_from = "verify's receiver".into();
    }
    let handle = ms_server::start(config, req).map_err(|e| e.to_string())?;
    if let Err(e) = handle.wait_ready(ready) {
        let msg = e.to_string();
        handle.shutdown();
        return Err(msg);
    }
    Ok((Local { handle }, started.elapsed()))
}
