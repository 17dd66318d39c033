//! Log-probabilities in OpenAI's two shapes. Chat (`logprobs: true`, `top_logprobs: 0..20`):
//! `choices[].logprobs = {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob,
//! bytes}]}], "refusal": null}`. Completions (`logprobs: N`): `{tokens, token_logprobs,
//! top_logprobs: [{token: logprob}], text_offset}`. Streams carry each token's entry in the chunk
//! of that token.
//!
//! The numbers are the log-softmax of the raw model logits, before `logit_bias`, penalties,
//! temperature and the top-k/top-p/min-p filters (see `ms_engine::sampler`): what the model
//! gives each token. An end-of-generation token is not listed (it is no part of the text).
//! A token's `token` is its piece as text (invalid UTF-8, part of a character, shows as U+FFFD);
//! `bytes` are its exact bytes.

use std::sync::Arc;

use ms_engine::sampler::TokenLogprobs;
use ms_engine::tokenizer::Tokenizer;
use serde_json::{Map, Value, json};

use super::run::Kind;

/// Renders the log-probabilities of one response, token after token (`text_offset` runs on).
pub struct Writer {
    kind: Kind,
    tok: Arc<Tokenizer>,
    /// Characters of the text before the next token (completions' `text_offset`).
    offset: usize,
}

impl Writer {
    pub fn new(kind: Kind, tok: Arc<Tokenizer>) -> Self {
        Self {
            kind,
            tok,
            offset: 0,
        }
    }

    /// Whether a token is listed: an end-of-generation token is not.
    pub fn lists(&self, lp: &TokenLogprobs) -> bool {
        !self.tok.is_eog(lp.token)
    }

    fn piece(&self, id: u32) -> (String, Vec<u8>) {
        let bytes = self.tok.token_to_piece(id).unwrap_or_default().to_vec();
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    }

    /// The `logprobs` object of a choice for these tokens (end-of-generation tokens skipped).
    pub fn render(&mut self, lps: &[TokenLogprobs]) -> Value {
        let lps: Vec<&TokenLogprobs> = lps.iter().filter(|lp| self.lists(lp)).collect();
        match self.kind {
            Kind::Chat => {
                let content: Vec<Value> = lps.iter().map(|lp| self.chat_entry(lp)).collect();
                json!({"content": content, "refusal": null})
            }
            Kind::Completion => {
                let (mut tokens, mut logprobs, mut tops, mut offsets) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for lp in lps {
                    let (text, _) = self.piece(lp.token);
                    offsets.push(self.offset);
                    self.offset += text.chars().count();
                    tokens.push(text);
                    logprobs.push(number(lp.logprob));
                    let mut top = Map::new();
                    for &(id, p) in &lp.top {
                        top.insert(self.piece(id).0, number(p));
                    }
                    tops.push(Value::Object(top));
                }
                json!({
                    "tokens": tokens,
                    "token_logprobs": logprobs,
                    "top_logprobs": tops,
                    "text_offset": offsets,
                })
            }
        }
    }

    fn chat_entry(&self, lp: &TokenLogprobs) -> Value {
        let (token, bytes) = self.piece(lp.token);
        let top: Vec<Value> = lp
            .top
            .iter()
            .map(|&(id, p)| {
                let (token, bytes) = self.piece(id);
                json!({"token": token, "logprob": number(p), "bytes": bytes})
            })
            .collect();
        json!({"token": token, "logprob": number(lp.logprob), "bytes": bytes, "top_logprobs": top})
    }
}

/// JSON has no -infinity (a token the model rules out): OpenAI's floor, -9999.
fn number(p: f32) -> Value {
    if p.is_finite() {
        json!(p)
    } else {
        json!(-9999.0)
    }
}
