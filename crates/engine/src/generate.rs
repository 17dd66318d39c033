//! The generation loop: prompt tokens in, streamed text out, shared by `modelspec run`, the
//! server and `dump`.
//!
//! Each step samples a token from the last logits, then stops at an end-of-generation token
//! (the tokenizer's `is_eog`), at `max_tokens`, at a stop string, when the context is full, or
//! when the caller's sink asks to; otherwise the token is evaluated and the loop goes on. Text is
//! decoded with [`StreamDecoder`] (never half a UTF-8 character), and text that could be the
//! start of a stop string is held back until it is known not to be one, so a stop string never
//! reaches the output.
//!
//! A [`Generator`] remembers the tokens its session has evaluated: a new prompt that extends
//! them (the next turn of a chat) only evaluates the new tokens.

use std::time::{Duration, Instant};

use crate::sampler::{Sampler, SamplingParams};
use crate::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};
use crate::{EngineError, Model, Session};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub sampling: SamplingParams,
    /// Most tokens to generate (the end-of-generation token included); 0 = until the context
    /// is full.
    pub max_tokens: usize,
    /// Generation ends before the first occurrence of any of these strings.
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            sampling: SamplingParams::default(),
            max_tokens: 256,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced this end-of-generation token.
    EndOfGeneration(u32),
    /// `max_tokens` were generated.
    MaxTokens,
    /// This stop string was produced (it is not part of the text).
    StopString(String),
    /// No position left in the context.
    ContextFull,
    /// The sink asked to stop.
    Cancelled,
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text, without the stop string.
    pub text: String,
    /// The generated tokens (an end-of-generation token included).
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prompt tokens found already evaluated (a previous turn's prefix).
    pub reused_tokens: usize,
    pub stop: StopReason,
    /// Time to evaluate the prompt (to the first sampled token).
    pub prompt_time: Duration,
    /// Time of the generation steps after the first token.
    pub generation_time: Duration,
    /// When each generated token was sampled, from the start of `generate` (the first one is
    /// `prompt_time`); differences are the inter-token latencies.
    pub token_times: Vec<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the prompt is empty; give some text to continue")]
    EmptyPrompt,
    #[error(
        "the prompt has {prompt} tokens but the context holds {context}; shorten the prompt or raise the context length (--ctx)"
    )]
    PromptTooLong { prompt: usize, context: usize },
    #[error("invalid sampling parameter: {0}")]
    Sampling(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// Prompt text to tokens as llama.cpp's generation does: BOS as the vocabulary asks, control
/// tokens written in the text parsed when `parse_special`. A BOS written as text at the start
/// (chat templates do that) is not doubled when the tokenizer adds one itself.
pub fn encode_prompt(
    tok: &Tokenizer,
    text: &str,
    parse_special: bool,
) -> Result<Vec<u32>, GenerateError> {
    if text.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    let mut text = text;
    if parse_special
        && tok.adds_bos()
        && let Some(bos) = tok.bos()
        && let Ok(bos_text) = tok.token_text(bos)
        && let Ok(bos_text) = std::str::from_utf8(bos_text)
        && !bos_text.is_empty()
    {
        text = text.strip_prefix(bos_text).unwrap_or(text);
    }
    let ids = tok.encode(text, true, parse_special);
    if ids.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    Ok(ids)
}

/// A session plus the tokens it holds, so that a following prompt sharing a prefix reuses it.
pub struct Generator {
    session: Session,
    tokens: Vec<u32>,
}

impl Generator {
    pub fn new(model: &Model) -> Self {
        Self {
            session: Session::new(model),
            tokens: Vec::new(),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The tokens evaluated so far (prompts and generated tokens, in order).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn context_length(&self) -> usize {
        self.session.context_length()
    }

    /// Forgets everything evaluated.
    pub fn reset(&mut self) {
        self.session.reset();
        self.tokens.clear();
    }

    /// Generates a continuation of `prompt` (the whole sequence: a prefix already evaluated is
    /// reused). `sink` receives text as it is produced; returning false stops generation.
    pub fn generate(
        &mut self,
        tok: &Tokenizer,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut sink: impl FnMut(&str) -> bool,
    ) -> Result<Generation, GenerateError> {
        opts.sampling.validate().map_err(GenerateError::Sampling)?;
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let context = self.session.context_length();
        if prompt.len() > context {
            return Err(GenerateError::PromptTooLong {
                prompt: prompt.len(),
                context,
            });
        }
        let start = Instant::now();
        // Reuse the common prefix, but evaluate at least the last prompt token: its logits
        // are needed.
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let reused = common.min(prompt.len() - 1);
        self.session.truncate(reused);
        self.tokens.truncate(reused);
        if let Err(e) = self.session.eval(&prompt[reused..]) {
            // The session may hold part of the prompt now: start clean next time.
            self.reset();
            return Err(e.into());
        }
        self.tokens.extend_from_slice(&prompt[reused..]);

        let mut sampler = Sampler::new(opts.sampling.clone());
        for &t in prompt {
            sampler.accept(t);
        }
        let mut decoder = StreamDecoder::new(tok);
        let mut out = StopFilter::new(&opts.stop);
        let mut generated = Vec::new();
        let mut prompt_time = None;
        let mut token_times = Vec::new();
        let stop = loop {
            let next = sampler.sample(self.session.logits());
            let sampled_at = start.elapsed();
            token_times.push(sampled_at);
            prompt_time.get_or_insert(sampled_at);
            sampler.accept(next);
            generated.push(next);
            if tok.is_eog(next) {
                break StopReason::EndOfGeneration(next);
            }
            let piece = decoder.push(next)?;
            if let Some(s) = out.push(&piece) {
                if !out.emit(&mut sink) {
                    break StopReason::Cancelled;
                }
                break StopReason::StopString(s);
            }
            if !out.emit(&mut sink) {
                break StopReason::Cancelled;
            }
            if opts.max_tokens > 0 && generated.len() >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if self.session.remaining() == 0 {
                break StopReason::ContextFull;
            }
            if let Err(e) = self.session.eval(&[next]) {
                self.reset();
                return Err(e.into());
            }
            self.tokens.push(next);
        };
        if !matches!(stop, StopReason::StopString(_)) {
            out.finish(&decoder.finish());
            out.emit(&mut sink);
        }
        let prompt_time = prompt_time.unwrap_or_default();
        Ok(Generation {
            text: out.text,
            tokens: generated,
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            stop,
            prompt_time,
            generation_time: start.elapsed().saturating_sub(prompt_time),
            token_times,
        })
    }
}

/// Holds back text that may be the beginning of a stop string.
struct StopFilter<'a> {
    stops: &'a [String],
    /// Everything accepted for output so far.
    text: String,
    /// Bytes of `text` already given to the sink.
    emitted: usize,
    /// Bytes of `text` that are safe to give (no stop string can start before them).
    safe: usize,
}

impl<'a> StopFilter<'a> {
    fn new(stops: &'a [String]) -> Self {
        Self {
            stops,
            text: String::new(),
            emitted: 0,
            safe: 0,
        }
    }

    /// Adds decoded text; returns the stop string if one is now complete (the text is cut
    /// before it).
    fn push(&mut self, piece: &str) -> Option<String> {
        self.text.push_str(piece);
        let stops = self.stops.iter().filter(|s| !s.is_empty());
        // Search from where a stop string could start that was not complete before.
        let window = self.safe;
        let mut first: Option<(usize, &String)> = None;
        for s in stops.clone() {
            if let Some(i) = self.text[window..].find(s.as_str()) {
                let at = window + i;
                if first.is_none_or(|(f, _)| at < f) {
                    first = Some((at, s));
                }
            }
        }
        if let Some((at, s)) = first {
            self.text.truncate(at);
            self.safe = at;
            return Some(s.clone());
        }
        // Keep back the longest tail that is a proper prefix of a stop string.
        let mut hold = 0;
        for s in stops {
            for (len, _) in s.char_indices().skip(1) {
                if len > hold && self.text.ends_with(&s[..len]) {
                    hold = len;
                }
            }
        }
        self.safe = self.text.len() - hold;
        None
    }

    /// The end: no stop string can follow, everything is safe.
    fn finish(&mut self, rest: &str) {
        self.text.push_str(rest);
        self.safe = self.text.len();
    }

    fn emit(&mut self, sink: &mut impl FnMut(&str) -> bool) -> bool {
        if self.safe > self.emitted {
            let chunk = &self.text[self.emitted..self.safe];
            self.emitted = self.safe;
            return sink(chunk);
        }
        true
    }
}
