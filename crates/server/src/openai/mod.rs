//! The OpenAI-compatible API: `POST /v1/completions`, `POST /v1/chat/completions` (JSON or
//! server-sent events in OpenAI's chunk format) and `GET /v1/models`.
//!
//! A request's fields are checked here ([`request`]), its prompt built ([`chat`] renders the
//! messages with the model's chat template, [`completions`] takes text or token ids), and
//! [`run`] submits it to the scheduler and answers with the whole text or a stream ([`sse`]).
//! No field is dropped silently ([`request`]): unknown fields, tool calling, `n` other than 1,
//! `echo`, `best_of`, `suffix` and a non-text `response_format` get 400 naming the field;
//! `logit_bias` and `logprobs` are honoured ([`logprobs`]); a `model` this server does not
//! answer to is 404 `model_not_found` ([`models`]).

pub mod chat;
pub mod completions;
pub mod logprobs;
pub mod models;
pub mod request;
pub mod run;
pub mod sse;
