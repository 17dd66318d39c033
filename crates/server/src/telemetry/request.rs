//! The span of one inference request and its children. The request span lives in a
//! [`Context`] shared by the middleware and the request's run (for a stream, the stream owns
//! the run): it ends when the last of them lets go, so a streamed answer's span covers the
//! whole stream. The children are made from the scheduler's [`Outcome`] timings, measured from
//! the moment the request was submitted.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::http::header::USER_AGENT;
use axum::response::Response;
use ms_scheduler::Outcome;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

/// The trace of one request: its span (in `cx`) and what the children need.
pub struct RequestTrace {
    tracer: SdkTracer,
    cx: Context,
    state: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Set when the request was handed to the scheduler.
    submitted: Option<SystemTime>,
    /// Set when an event stream began.
    stream_start: Option<SystemTime>,
    /// `completed`, `failed` or `cancelled`, once known.
    outcome: Option<&'static str>,
}

fn at(start: SystemTime, ms: f64) -> SystemTime {
    start + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

impl RequestTrace {
    /// Starts the server span of `req`, a child of its `traceparent` when it has one.
    pub fn start(tracer: SdkTracer, req: &Request, model: &str) -> RequestTrace {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
        let path = req.uri().path().to_string();
        // The inference routes are fixed paths: the path is the route.
        let route = path.clone();
        let method = req.method().as_str().to_string();
        let operation = if route.ends_with("/chat/completions") {
            "chat"
        } else {
            "text_completion"
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("http.route", route.clone()),
            KeyValue::new("url.path", path),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("gen_ai.operation.name", operation),
            KeyValue::new("gen_ai.request.model", model.to_string()),
        ];
        if let Some(agent) = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()) {
            attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
        }
        let span = tracer
            .span_builder(format!("{method} {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        RequestTrace {
            cx: parent.with_span(span),
            tracer,
            state: Mutex::new(Progress::default()),
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scheduler took the request at `at` as run `run_id` under `plan`.
    pub fn submitted(&self, at: SystemTime, run_id: u64, plan: &str, stream: bool) {
        let span = self.cx.span();
        span.set_attributes([
            KeyValue::new("modelspec.run_id", run_id as i64),
            KeyValue::new("modelspec.plan", plan.to_string()),
            KeyValue::new("modelspec.stream", stream),
        ]);
        let mut p = self.progress();
        p.submitted = Some(at);
        if stream {
            p.stream_start = Some(SystemTime::now());
        }
    }

    /// The request ended with `o`: token counts on the request span, and the `queue`,
    /// `prefill` and `decode` children from its timings.
    pub fn finished(&self, o: &Outcome) {
        let span = self.cx.span();
        let reasons = Value::Array(Array::String(vec![StringValue::from(o.stop)]));
        span.set_attributes([
            KeyValue::new("gen_ai.usage.input_tokens", o.prompt_tokens as i64),
            KeyValue::new("gen_ai.usage.output_tokens", o.completion_tokens as i64),
            KeyValue::new("gen_ai.response.finish_reasons", reasons),
            KeyValue::new("modelspec.stop_detail", o.stop_detail),
            KeyValue::new("modelspec.queue_ms", o.queued_ms),
            KeyValue::new("modelspec.ttft_ms", o.ttft_ms),
            KeyValue::new("modelspec.joules", o.joules),
        ]);
        let submitted = {
            let mut p = self.progress();
            p.outcome = Some(if o.stop == "cancelled" {
                "cancelled"
            } else {
                "completed"
            });
            p.submitted
        };
        let Some(t0) = submitted else { return };
        let admitted = at(t0, o.queued_ms);
        self.child("queue", t0, admitted, vec![]);
        if o.completion_tokens == 0 {
            return;
        }
        // The first token ends the prompt's evaluation; a request cancelled before it has
        // no prefill worth a span.
        let first = at(t0, o.ttft_ms.max(o.queued_ms));
        let last = at(t0, o.total_ms.max(o.ttft_ms).max(o.queued_ms));
        let max_batch = o.batch_sizes.iter().copied().max().unwrap_or(1);
        self.child(
            "prefill",
            admitted,
            first,
            vec![KeyValue::new(
                "gen_ai.usage.input_tokens",
                o.prompt_tokens as i64,
            )],
        );
        self.child(
            "decode",
            first,
            last,
            vec![
                KeyValue::new("gen_ai.usage.output_tokens", o.completion_tokens as i64),
                KeyValue::new("modelspec.batch_size_max", max_batch as i64),
            ],
        );
    }

    /// The request failed after submission (timeout, engine error, shutdown).
    pub fn failed(&self, message: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("error.type", "failed"));
        span.set_status(Status::error(message.to_string()));
        self.progress().outcome = Some("failed");
    }

    /// The answer's head: its status on the span, and the span's `traceparent` on it.
    pub fn respond(&self, response: &mut Response) {
        let status = response.status();
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            span.set_attribute(KeyValue::new("error.type", status.as_str().to_string()));
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        TraceContextPropagator::new()
            .inject_context(&self.cx, &mut HeaderInjector(response.headers_mut()));
        // The propagator writes an empty `tracestate` when the caller sent none.
        let headers = response.headers_mut();
        if headers.get("tracestate").is_some_and(|v| v.is_empty()) {
            headers.remove("tracestate");
        }
    }

    fn child(&self, name: &'static str, start: SystemTime, end: SystemTime, attrs: Vec<KeyValue>) {
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &self.cx);
        opentelemetry::trace::Span::end_with_timestamp(&mut span, end.max(start));
    }
}

impl Drop for RequestTrace {
    /// The last holder let go: the stream (if any) and the request end now.
    fn drop(&mut self) {
        let now = SystemTime::now();
        let p = std::mem::take(&mut *self.progress());
        if let Some(start) = p.stream_start {
            self.child("stream", start, now, vec![]);
        }
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "modelspec.outcome",
            p.outcome.unwrap_or(if p.submitted.is_some() {
                "cancelled"
            } else {
                "rejected"
            }),
        ));
        span.end_with_timestamp(now);
    }
}
