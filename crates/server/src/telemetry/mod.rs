//! OpenTelemetry traces of the inference requests, exported over OTLP/HTTP (protobuf) when the
//! ModelSpec declares `spec.operations.observability.tracing.enabled: true` or `modelspec serve
//! --otlp-endpoint` is given. Off otherwise: no exporter, no thread, and a request pays one
//! branch.
//!
//! Each `POST /v1/chat/completions` and `POST /v1/completions` gets a server span named
//! `POST /v1/chat/completions` (HTTP and GenAI attributes, the run id of `x-modelspec-run-id`,
//! token counts) with the children `queue` (waiting for a batch slot), `prefill` (prompt
//! evaluation up to the first token), `decode` (first to last token) and, when streamed,
//! `stream` (the event stream, from the response head to its end). The scheduler runs on its
//! own OS thread: the children are built afterwards from the timings it reports with every
//! [`ms_scheduler::Outcome`], with explicit timestamps.
//!
//! A W3C `traceparent` (and `tracestate`) on the request is honoured: the request span is its
//! child in the same trace, and a parent that is not sampled is not recorded (the SDK's
//! parent-based sampler). The response carries a `traceparent` header naming the request span.
//!
//! Spans go through the SDK's batch span processor (its own thread; a full queue drops spans
//! rather than wait), and [`Telemetry::shutdown`] flushes them when the server stops. The
//! endpoint, service name and batch settings follow the standard `OTEL_*` variables (module
//! `export`).

mod export;
mod request;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};

pub use export::{DEFAULT_ENDPOINT, TraceExport, traces_url};
pub use request::RequestTrace;

use crate::ServerError;
use crate::state::AppState;

/// The name of the instrumentation scope the spans carry.
const SCOPE: &str = "ms-server";

/// How long a shutdown waits for the last spans to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The trace of the request being handled, for the handlers below the middleware.
    static CURRENT: Arc<RequestTrace>;
}

/// The exporter of a server with tracing on; nothing when off.
#[derive(Default)]
pub struct Telemetry {
    inner: Option<Inner>,
}

struct Inner {
    tracer: SdkTracer,
    /// Taken by the first shutdown.
    provider: Mutex<Option<SdkTracerProvider>>,
}

impl Telemetry {
    /// Starts the exporter when `export` is given.
    pub fn start(export: Option<&TraceExport>) -> Result<Telemetry, ServerError> {
        let Some(export) = export else {
            return Ok(Telemetry::default());
        };
        let exporter = export::span_exporter(export)?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(export::resource(export))
            .build();
        Ok(Telemetry {
            inner: Some(Inner {
                tracer: provider.tracer(SCOPE),
                provider: Mutex::new(Some(provider)),
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Exports the spans still queued and stops the exporter (waiting at most
    /// `FLUSH_TIMEOUT`, so that a stuck collector cannot hold the shutdown up).
    pub fn shutdown(&self) {
        let Some(inner) = &self.inner else { return };
        let provider = inner
            .provider
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = provider {
            let _ = p.shutdown_with_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// The trace of the request being handled, when tracing is on.
pub fn current() -> Option<Arc<RequestTrace>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Middleware of the inference routes: the request span around the handler (and, for a stream,
/// until the stream ends), and the `traceparent` of the answer.
pub async fn trace_request(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(inner) = &state.telemetry.inner else {
        return next.run(req).await;
    };
    let trace = Arc::new(RequestTrace::start(
        inner.tracer.clone(),
        &req,
        &state.config.model_id,
    ));
    let mut response = CURRENT.scope(trace.clone(), next.run(req)).await;
    trace.respond(&mut response);
    response
}

/// `spec.operations.observability.tracing.enabled` of a ModelSpec; `None` when it says nothing.
pub fn declared(spec: &ms_runtime::ModelSpecInfo) -> Option<bool> {
    spec.document
        .spec
        .operations
        .as_ref()?
        .observability
        .as_ref()?
        .tracing
        .as_ref()?
        .enabled
}
