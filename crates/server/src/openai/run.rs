//! A checked request to the scheduler and back: submission (429 when the queue is full), the
//! `x-modelspec-run-id` header, the whole answer or a stream, and the run record that
//! `GET /v1/runs/{id}` serves. Dropping the ticket cancels the request: a non-streaming
//! handler is dropped when its client disconnects, a stream when writing to it fails.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::HeaderValue;
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use ms_engine::generate::GenerateOptions;
use ms_engine::sampler::TokenLogprobs;
use ms_scheduler::{Event, Outcome, Request, SubmitError};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::logprobs::Writer;
use super::sse::{self, ChunkHeader};
use crate::errors::ApiError;
use crate::state::{AppState, Serving};
use crate::telemetry::{self, RequestTrace};

pub const RUN_ID_HEADER: &str = "x-modelspec-run-id";

/// Beyond the scheduler's own timeout, how long the server waits before giving up itself.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

/// A request ready for the scheduler.
pub struct Job {
    pub kind: Kind,
    pub prompt: Vec<u32>,
    pub options: GenerateOptions,
    pub stream: bool,
    pub include_usage: bool,
}

/// Records a run as running, then completed or failed; a run dropped before either was
/// cancelled (its client went away).
pub struct RunGuard {
    state: Arc<AppState>,
    id: u64,
    plan: String,
    ended: bool,
    /// The request's trace when tracing is on; held until the run ends (a stream's end).
    trace: Option<Arc<RequestTrace>>,
}

impl RunGuard {
    fn new(state: Arc<AppState>, id: u64, plan: String) -> Self {
        state
            .runs
            .put(id, json!({"id": id, "status": "running", "plan": plan}));
        Self {
            state,
            id,
            plan,
            ended: false,
            trace: None,
        }
    }

    pub fn finish(&mut self, outcome: &Outcome) {
        let mut record = serde_json::to_value(outcome).unwrap_or_else(|_| json!({}));
        record["status"] = json!(if outcome.stop == "cancelled" {
            "cancelled"
        } else {
            "completed"
        });
        record["id"] = json!(self.id);
        self.state.runs.put(self.id, record);
        self.state.metrics.outcome(outcome);
        if let Some(t) = &self.trace {
            t.finished(outcome);
        }
        self.ended = true;
    }

    pub fn fail(&mut self, message: &str) {
        self.state.runs.put(
            self.id,
            json!({"id": self.id, "status": "failed", "plan": self.plan, "error": message}),
        );
        if let Some(t) = &self.trace {
            t.failed(message);
        }
        self.ended = true;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.state.runs.put(
                self.id,
                json!({"id": self.id, "status": "cancelled", "plan": self.plan,
                       "error": "the client disconnected before the end"}),
            );
        }
    }
}

pub fn timed_out() -> ApiError {
    ApiError::timeout("the request took longer than the server's timeout (serving.timeoutSeconds)")
}

/// A request the scheduler could not complete.
pub fn failed(message: String) -> ApiError {
    if message.contains("timed out") || message.contains("timeout") {
        ApiError::timeout(message)
    } else if message.contains("shut down") {
        ApiError::unavailable(message)
    } else {
        ApiError::internal(message)
    }
}

pub fn usage(o: &Outcome) -> Value {
    json!({
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": o.completion_tokens,
        "total_tokens": o.prompt_tokens + o.completion_tokens,
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Submits `job` and answers: JSON once it is done, or an event stream.
pub async fn respond(
    state: Arc<AppState>,
    serving: Arc<Serving>,
    job: Job,
) -> Result<Response, ApiError> {
    let (_, scheduler) = state.ready()?;
    let writer = job
        .options
        .sampling
        .logprobs
        .map(|_| Writer::new(job.kind, serving.loaded.tokenizer.clone()));
    let timeout = state.config.limits.timeout;
    let trace = telemetry::current();
    let submitted = trace.as_ref().map(|_| SystemTime::now());
    let ticket = scheduler
        .submit(Request {
            prompt: job.prompt,
            options: job.options,
            timeout: Some(timeout),
        })
        .map_err(|e| match e {
            SubmitError::QueueFull { retry_after } => ApiError::rate_limited(retry_after),
            SubmitError::Invalid(m) => ApiError::bad_request(m),
            SubmitError::ShuttingDown => ApiError::unavailable("the server is shutting down"),
            SubmitError::Stopped(why) => {
                state.supervise();
                ApiError::unavailable(format!("{why}; restarting, retry in a moment"))
            }
        })?;
    let id = ticket.id;
    let plan = serving.plan_name().to_string();
    let mut run = RunGuard::new(state.clone(), id, plan.clone());
    if let (Some(t), Some(at)) = (&trace, submitted) {
        t.submitted(at, id, &plan, job.stream);
    }
    run.trace = trace;
    let deadline = Instant::now() + timeout + TIMEOUT_GRACE;
    let header = ChunkHeader {
        kind: job.kind,
        id: match job.kind {
            Kind::Chat => format!("chatcmpl-{id}"),
            Kind::Completion => format!("cmpl-{id}"),
        },
        created: now_secs(),
        model: state.config.model_id.clone(),
        fingerprint: plan,
        include_usage: job.include_usage,
    };
    let mut response = if job.stream {
        Sse::new(sse::events(header, ticket, run, deadline, writer)).into_response()
    } else {
        // Errors after submission carry the run id too: the run records what happened.
        match collect(ticket, &mut run, deadline).await {
            Ok((outcome, lps)) => {
                run.finish(&outcome);
                let logprobs = writer.map(|mut w| w.render(&lps));
                Json(body(&header, &outcome, logprobs)).into_response()
            }
            Err(e) => e.into_response(),
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(RUN_ID_HEADER, v);
    }
    Ok(response)
}

/// Waits for the end of a non-streaming request; its tokens' log-probabilities, if asked for.
async fn collect(
    mut ticket: ms_scheduler::Ticket,
    run: &mut RunGuard,
    deadline: Instant,
) -> Result<(Outcome, Vec<TokenLogprobs>), ApiError> {
    let mut lps = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ticket.next()).await {
            Err(_) => {
                run.fail("timed out");
                return Err(timed_out());
            }
            Ok(None) => {
                let e = ApiError::internal("the request ended without a result");
                run.fail(&e.message);
                return Err(e);
            }
            Ok(Some(Event::Token { logprobs, .. })) => lps.extend(logprobs),
            Ok(Some(Event::Finished(outcome))) => return Ok((outcome, lps)),
            Ok(Some(Event::Failed(message))) => {
                run.fail(&message);
                return Err(failed(message));
            }
        }
    }
}

/// The non-streaming answer.
fn body(h: &ChunkHeader, o: &Outcome, logprobs: Option<Value>) -> Value {
    let logprobs = logprobs.unwrap_or(Value::Null);
    let choice = match h.kind {
        Kind::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": o.text, "refusal": null},
            "logprobs": logprobs,
            "finish_reason": o.stop,
        }),
        Kind::Completion => json!({
            "index": 0, "text": o.text, "logprobs": logprobs, "finish_reason": o.stop,
        }),
    };
    json!({
        "id": h.id,
        "object": match h.kind {
            Kind::Chat => "chat.completion",
            Kind::Completion => "text_completion",
        },
        "created": h.created,
        "model": h.model,
        "system_fingerprint": h.fingerprint,
        "choices": [choice],
        "usage": usage(o),
    })
}

/// Prompt + room for one token must fit the context.
pub fn check_context(prompt: &[u32], serving: &Serving, param: &str) -> Result<(), ApiError> {
    if prompt.len() >= serving.context_length {
        return Err(ApiError::invalid(
            param,
            format!(
                "the prompt has {} tokens; this model's context holds {} (prompt and answer together); shorten the prompt",
                prompt.len(),
                serving.context_length
            ),
        )
        .with_code("context_length_exceeded"));
    }
    Ok(())
}
