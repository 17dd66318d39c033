//! Streaming answers as server-sent events in OpenAI's chunk format: one `data: {chunk}` line
//! per piece of text (`chat.completion.chunk` with `choices[0].delta`, or `text_completion`
//! with `choices[0].text`), a last chunk with `finish_reason`, with
//! `stream_options.include_usage` a chunk with `usage` and no choices, then `data: [DONE]`.
//! An error after the stream began (a timeout) is sent as `data: {"error": {...}}` before
//! `[DONE]`, as OpenAI does. The stream owns the request's ticket: when the client goes away,
//! the response body is dropped with it and the request is cancelled.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event as SseEvent;
use futures_util::Stream;
use ms_scheduler::{Event, Ticket};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::logprobs::Writer;
use super::run::{Kind, RunGuard, usage};
use crate::errors::ApiError;

/// The fields every chunk of one response repeats.
#[derive(Debug, Clone)]
pub struct ChunkHeader {
    pub kind: Kind,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub fingerprint: String,
    pub include_usage: bool,
}

impl ChunkHeader {
    fn chunk(&self, choices: Value) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": match self.kind {
                Kind::Chat => "chat.completion.chunk",
                Kind::Completion => "text_completion",
            },
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The chat stream's first chunk: the assistant's role.
    pub fn role(&self) -> Value {
        self.chunk(json!([{
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": null,
            "finish_reason": null,
        }]))
    }

    pub fn text(&self, text: &str) -> Value {
        self.text_with(text, Value::Null)
    }

    /// A piece of text and the log-probabilities of the token that made it.
    pub fn text_with(&self, text: &str, logprobs: Value) -> Value {
        self.chunk(match self.kind {
            Kind::Chat => json!([{
                "index": 0, "delta": {"content": text}, "logprobs": logprobs, "finish_reason": null,
            }]),
            Kind::Completion => json!([{
                "index": 0, "text": text, "logprobs": logprobs, "finish_reason": null,
            }]),
        })
    }

    pub fn finish(&self, reason: &str) -> Value {
        self.chunk(match self.kind {
            Kind::Chat => json!([{
                "index": 0, "delta": {}, "logprobs": null, "finish_reason": reason,
            }]),
            Kind::Completion => json!([{
                "index": 0, "text": "", "logprobs": null, "finish_reason": reason,
            }]),
        })
    }

    pub fn usage(&self, usage: Value) -> Value {
        let mut chunk = self.chunk(json!([]));
        chunk["usage"] = usage;
        chunk
    }
}

struct StreamState {
    header: ChunkHeader,
    ticket: Ticket,
    run: RunGuard,
    deadline: Instant,
    pending: VecDeque<String>,
    done: bool,
    /// Set when the request asked for log-probabilities.
    logprobs: Option<Writer>,
}

impl StreamState {
    fn push(&mut self, v: &Value) {
        self.pending.push_back(v.to_string());
    }

    fn end_with_error(&mut self, e: ApiError) {
        self.run.fail(&e.message);
        let body = e.body();
        self.push(&body);
        self.pending.push_back("[DONE]".into());
        self.done = true;
    }

    /// Waits for the next scheduler event and queues the chunks it makes.
    async fn advance(&mut self) {
        let event = tokio::time::timeout_at(self.deadline, self.ticket.next()).await;
        match event {
            Err(_) => self.end_with_error(super::run::timed_out()),
            Ok(None) => self.end_with_error(ApiError::internal(
                "the request ended without a result (the scheduler stopped)",
            )),
            Ok(Some(Event::Token { text, logprobs, .. })) => {
                // A token with log-probabilities gets its chunk even when its text is held
                // back (part of a character, a possible stop string): one entry per token.
                let lp = match (&mut self.logprobs, logprobs) {
                    (Some(w), Some(lp)) if w.lists(&lp) => Some(w.render(&[lp])),
                    _ => None,
                };
                if let Some(lp) = lp {
                    let chunk = self.header.text_with(&text, lp);
                    self.push(&chunk);
                } else if !text.is_empty() {
                    let chunk = self.header.text(&text);
                    self.push(&chunk);
                }
            }
            Ok(Some(Event::Finished(outcome))) => {
                let finish = self.header.finish(outcome.stop);
                self.push(&finish);
                if self.header.include_usage {
                    let chunk = self.header.usage(usage(&outcome));
                    self.push(&chunk);
                }
                self.pending.push_back("[DONE]".into());
                self.run.finish(&outcome);
                self.done = true;
            }
            Ok(Some(Event::Failed(message))) => {
                self.end_with_error(super::run::failed(message));
            }
        }
    }
}

/// The event stream of one request.
pub fn events(
    header: ChunkHeader,
    ticket: Ticket,
    run: RunGuard,
    deadline: Instant,
    logprobs: Option<Writer>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let mut state = StreamState {
        header,
        ticket,
        run,
        deadline,
        pending: VecDeque::new(),
        done: false,
        logprobs,
    };
    if state.header.kind == Kind::Chat {
        let role = state.header.role();
        state.push(&role);
    }
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(data) = s.pending.pop_front() {
                return Some((Ok(SseEvent::default().data(data)), s));
            }
            if s.done {
                return None;
            }
            s.advance().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: Kind, include_usage: bool) -> ChunkHeader {
        ChunkHeader {
            kind,
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m".into(),
            fingerprint: "plan".into(),
            include_usage,
        }
    }

    #[test]
    fn chat_chunks_have_openai_shape() {
        let h = header(Kind::Chat, false);
        let c = h.text("Hi");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["choices"][0]["delta"]["content"], "Hi");
        assert!(c["choices"][0]["finish_reason"].is_null());
        assert!(c.get("usage").is_none());
        assert_eq!(h.role()["choices"][0]["delta"]["role"], "assistant");
        let f = h.finish("length");
        assert_eq!(f["choices"][0]["finish_reason"], "length");
        assert_eq!(f["choices"][0]["delta"], json!({}));
    }

    #[test]
    fn completion_chunks_and_usage() {
        let h = header(Kind::Completion, true);
        let c = h.text("x");
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], "x");
        assert!(c["usage"].is_null());
        let u = h.usage(json!({"total_tokens": 3}));
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"]["total_tokens"], 3);
    }
}
