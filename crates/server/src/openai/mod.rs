//! The OpenAI-compatible API: `POST /v1/completions`, `POST /v1/chat/completions` (JSON or
//! server-sent events in OpenAI's chunk format) and `GET /v1/models`.
//!
//! A request's fields are checked here ([`request`]), its prompt built ([`chat`] renders the
//! messages with the model's chat template, [`completions`] takes text or token ids), and
//! [`run`] submits it to the scheduler and answers with the whole text or a stream ([`sse`]).
//! Fields OpenAI has and we do not act on are accepted and ignored, except those whose absence
//! of effect would mislead a client (`n` other than 1, `logprobs`, `echo`, `best_of`, `suffix`,
//! a non-text `response_format`): those get 400 naming the field.

pub mod chat;
pub mod completions;
pub mod models;
pub mod request;
pub mod run;
pub mod sse;
