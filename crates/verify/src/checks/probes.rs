//! The endpoints a deployment relies on: readiness and liveness probes answer 200, metrics are
//! served (at the server's address, and on the declared port).

use crate::check::{self, Verdict};
use crate::checks::Ctx;
use crate::prom;
use ms_server::metrics::PREFIX as METRIC_PREFIX;

pub fn check(ctx: &mut Ctx) {
    let serving = &ctx.spec.info.serving;
    for (rule, path) in [
        (check::READINESS_PROBE, serving.readiness_path.clone()),
        (check::LIVENESS_PROBE, serving.liveness_path.clone()),
    ] {
        if let (Some(c), Some(path)) = (ctx.take(rule), path) {
            let c = c.method(format!("GET {}", ctx.client.url(&path)));
            ctx.push(match ctx.client.get(&path) {
                Ok(r) => c.measured(
                    format!("HTTP {}", r.status),
                    if r.status == 200 {
                        Verdict::Held
                    } else {
                        Verdict::Violated
                    },
                ),
                Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
            });
        }
    }
    if let Some(c) = ctx.take(check::METRICS_ENDPOINT) {
        let c = c.method(format!(
            "GET {} and look for {METRIC_PREFIX}* samples",
            ctx.client.url("/metrics")
        ));
        ctx.push(match ctx.client.get("/metrics") {
            Ok(r) if r.status == 200 => {
                let n = prom::parse(&r.body)
                    .iter()
                    .filter(|s| s.name.starts_with(METRIC_PREFIX))
                    .count();
                if n > 0 {
                    c.measured(
                        format!("HTTP 200, {n} {METRIC_PREFIX}* samples"),
                        Verdict::Held,
                    )
                } else {
                    c.measured(
                        format!("HTTP 200, no {METRIC_PREFIX}* samples"),
                        Verdict::Violated,
                    )
                }
            }
            Ok(r) => c.measured(format!("HTTP {}", r.status), Verdict::Violated),
            Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
        });
    }
    if let Some(c) = ctx.take(check::METRICS_PORT) {
        let port = ctx.spec.info.metrics.port.unwrap_or(0);
        let c = if ctx.local {
            c.not_checked(format!(
                "the local server listens on a free loopback port, so port {port} cannot be checked here; run `modelspec verify --url` against the deployment"
            ))
        } else {
            let url = with_port(ctx.client.base(), port)
                .map(|b| format!("{b}/metrics"))
                .unwrap_or_default();
            let c = c.method(format!("GET {url}"));
            match ctx.client.get_url(&url) {
                Ok(r) if r.status == 200 => c.measured("HTTP 200", Verdict::Held),
                Ok(r) => c.measured(format!("HTTP {}", r.status), Verdict::Violated),
                Err(e) => c.measured("no answer", Verdict::Violated).reason(e),
            }
        };
        ctx.push(c);
    }
}

/// `base` (`http://host:port`) with another port.
fn with_port(base: &str, port: u16) -> Option<String> {
    let (scheme, rest) = base.split_once("://")?;
    let host_port = rest.split('/').next()?;
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    };
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            with_port("http://10.0.0.2:8080", 9090).as_deref(),
            Some("http://10.0.0.2:9090")
        );
        assert_eq!(
            with_port("https://example.com", 9090).as_deref(),
            Some("https://example.com:9090")
        );
    }
}
