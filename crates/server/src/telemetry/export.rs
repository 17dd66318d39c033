//! Where and as whom spans are exported: the OTLP/HTTP endpoint and the service name, from
//! `--otlp-endpoint` or the standard variables, and the exporter itself (protobuf over ureq,
//! called from the batch processor's own thread, where blocking is fine).
//!
//! | setting | from, first found |
//! |---|---|
//! | endpoint | `--otlp-endpoint URL` (+ `/v1/traces`), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`), [`DEFAULT_ENDPOINT`] (+ `/v1/traces`) |
//! | service name | `OTEL_SERVICE_NAME`, the ModelSpec's `metadata.name`, the model id |
//!
//! Headers (`OTEL_EXPORTER_OTLP_HEADERS`), the export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`)
//! and the batch settings (`OTEL_BSP_*`) are read by the OpenTelemetry SDK itself.

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;

use crate::ServerError;

/// The OTLP/HTTP collector's usual address on this machine.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// Largest collector answer read (they are empty or a few bytes of partial-success status).
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// Longest one export may take before it is given up (the span batch is then dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server sends its spans, and the service they are from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExport {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    /// Where the endpoint came from (a flag or variable name, or `default`), for messages.
    pub endpoint_from: String,
    pub service_name: String,
}

impl TraceExport {
    /// The endpoint and service name from the standard variables, `--otlp-endpoint` (a base
    /// URL like `OTEL_EXPORTER_OTLP_ENDPOINT`) over them when given; `service` is the name
    /// used when `OTEL_SERVICE_NAME` is not set.
    pub fn from_env(flag_endpoint: Option<&str>, service: &str) -> TraceExport {
        Self::resolve(flag_endpoint, service, |k| std::env::var(k).ok())
    }

    fn resolve(
        flag_endpoint: Option<&str>,
        service: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> TraceExport {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (endpoint, from) = if let Some(base) = flag_endpoint {
            (traces_url(base), "--otlp-endpoint".to_string())
        } else if let Some(url) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            (url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_string())
        } else if let Some(base) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            (traces_url(&base), "OTEL_EXPORTER_OTLP_ENDPOINT".to_string())
        } else {
            (traces_url(DEFAULT_ENDPOINT), "default".to_string())
        };
        TraceExport {
            endpoint: endpoint.trim().to_string(),
            endpoint_from: from,
            service_name: env("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_string()),
        }
    }

    /// The endpoint, or why it cannot be one.
    fn checked_endpoint(&self) -> Result<&str, ServerError> {
        let e = &self.endpoint;
        let uri: Result<axum::http::Uri, _> = e.parse();
        match uri {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                Ok(e)
            }
            _ => Err(ServerError::Config(format!(
                "the OTLP endpoint {e:?} (from {}) is not an http:// or https:// URL; give one like {DEFAULT_ENDPOINT}",
                self.endpoint_from
            ))),
        }
    }
}

/// `base` + `/v1/traces`, as the OTLP specification builds a signal's URL from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
}

pub(super) fn span_exporter(export: &TraceExport) -> Result<SpanExporter, ServerError> {
    let endpoint = export.checked_endpoint()?;
    SpanExporter::builder()
        .with_http()
        .with_http_client(UreqClient::new())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| ServerError::Config(format!("the OTLP trace exporter: {e}")))
}

pub(super) fn resource(export: &TraceExport) -> Resource {
    Resource::builder()
        .with_service_name(export.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The exporter's HTTP client: ureq (already the workspace's client), blocking on the batch
/// processor's thread, which runs the export future to completion there.
#[derive(Debug)]
struct UreqClient(ureq::Agent);

impl UreqClient {
    fn new() -> Self {
        let config = ureq::Agent::config_builder()
            // The exporter reads the status itself (retries, partial success).
            .http_status_as_error(false)
            .timeout_global(Some(EXPORT_TIMEOUT))
            .build();
        Self(config.new_agent())
    }
}

#[async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, body.to_vec());
        let response = self.0.run(request)?;
        let (parts, mut body) = response.into_parts();
        let bytes = body.with_config().limit(MAX_ANSWER_BYTES).read_to_vec()?;
        Ok(Response::from_parts(parts, Bytes::from(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flag: Option<&str>, vars: &[(&str, &str)]) -> TraceExport {
        TraceExport::resolve(flag, "spec-name", |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_endpoint_follows_the_flag_then_the_standard_variables() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/");
        let traces = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom");
        let e = resolve(None, &[]);
        assert_eq!(e.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(e.endpoint_from, "default");
        assert_eq!(
            resolve(None, &[base]).endpoint,
            "http://collector:4318/v1/traces"
        );
        // The signal's own variable is used as is, and wins over the base.
        assert_eq!(resolve(None, &[base, traces]).endpoint, "http://t:9/custom");
        let flag = resolve(Some("http://127.0.0.1:5555"), &[base, traces]);
        assert_eq!(flag.endpoint, "http://127.0.0.1:5555/v1/traces");
        assert_eq!(flag.endpoint_from, "--otlp-endpoint");
        // Empty variables count as unset.
        assert_eq!(
            resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]).endpoint_from,
            "default"
        );
    }

    #[test]
    fn the_service_name_is_otel_service_name_else_the_given_one() {
        assert_eq!(resolve(None, &[]).service_name, "spec-name");
        assert_eq!(
            resolve(None, &[("OTEL_SERVICE_NAME", "svc")]).service_name,
            "svc"
        );
    }

    #[test]
    fn a_bad_endpoint_is_a_clear_error() {
        let e = resolve(Some("localhost:4318"), &[]);
        let Err(err) = span_exporter(&e) else {
            panic!("{e:?} accepted")
        };
        let err = err.to_string();
        assert!(
            err.contains("--otlp-endpoint") && err.contains("http://"),
            "{err}"
        );
        assert!(span_exporter(&resolve(None, &[])).is_ok());
    }
}
