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
//! The per-token part (sampling, decoding, hold-back, the stop checks) is [`Decoding`], a state
//! machine that never evaluates anything itself: [`Generator::generate`] drives it over one
//! session, the scheduler drives one per request over sessions evaluated together.
//!
//! A [`Generator`] remembers the tokens its session has evaluated: a new prompt that extends
//! them (the next turn of a chat) only evaluates the new tokens.

use std::time::{Duration, Instant};

use crate::sampler::{Sampler, SamplingParams, TokenLogprobs, token_logprobs};
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
        let mut decoding = Decoding::new(tok, prompt, opts)?;
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

        let mut token_times = Vec::new();
        let stop = loop {
            let step = match decoding.step(self.session.logits(), self.session.remaining()) {
                Ok(step) => step,
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            };
            token_times.push(start.elapsed());
            let go_on = step.text.is_empty() || sink(&step.text);
            match step.stop {
                // Its text is the final flush: the sink's answer no longer matters.
                Some(reason @ StopReason::EndOfGeneration(_)) => break reason,
                Some(reason) if go_on => break reason,
                _ if !go_on => {
                    let rest = decoding.cancel();
                    if !rest.is_empty() {
                        sink(&rest);
                    }
                    break StopReason::Cancelled;
                }
                _ => {}
            }
            if let Err(e) = self.session.eval(&[step.token]) {
                self.reset();
                return Err(e.into());
            }
            self.tokens.push(step.token);
        };
        let prompt_time = token_times.first().copied().unwrap_or_default();
        let (text, tokens) = decoding.into_output();
        Ok(Generation {
            text,
            tokens,
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            stop,
            prompt_time,
            generation_time: start.elapsed().saturating_sub(prompt_time),
            token_times,
        })
    }
}

/// One request's generation state, advanced one token at a time: the sampler (seeded, with
/// the prompt in its penalty window), the streaming UTF-8 decoder, the stop-string hold-back
/// and the counters. It does not evaluate anything: the caller evaluates the prompt, passes the
/// logits to [`Decoding::step`], evaluates the returned token, and so on until a step carries a
/// [`StopReason`]. [`Generator::generate`] is this loop over one session; the scheduler runs it
/// for many sessions evaluated together. The tokens depend only on the logits passed in and on
/// the options, so a request gives the same tokens alone or batched.
pub struct Decoding<'t> {
    tok: &'t Tokenizer,
    sampler: Sampler,
    decoder: StreamDecoder<'t>,
    out: StopFilter,
    max_tokens: usize,
    generated: Vec<u32>,
    stop: Option<StopReason>,
}

/// What one [`Decoding::step`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The sampled token (an end-of-generation token included); evaluate it next unless
    /// `stop` is set.
    pub token: u32,
    /// Text that became final with this token: possibly empty (part of a UTF-8 character, or
    /// held back as the possible start of a stop string). On a stop it includes everything
    /// still held back (except a stop string, which never reaches the output).
    pub text: String,
    /// Set when generation ends with this token.
    pub stop: Option<StopReason>,
    /// The token's log-probability and the most likely alternatives, when the options ask for
    /// them ([`SamplingParams::logprobs`]).
    pub logprobs: Option<TokenLogprobs>,
}

impl<'t> Decoding<'t> {
    /// Checks the options and the prompt (the whole sequence the logits will follow: its
    /// tokens enter the sampler's penalty window, as in llama.cpp).
    pub fn new(
        tok: &'t Tokenizer,
        prompt: &[u32],
        opts: &GenerateOptions,
    ) -> Result<Self, GenerateError> {
        opts.sampling.validate().map_err(GenerateError::Sampling)?;
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        let mut sampler = Sampler::new(opts.sampling.clone());
        for &t in prompt {
            sampler.accept(t);
        }
        Ok(Self {
            tok,
            sampler,
            decoder: StreamDecoder::new(tok),
            out: StopFilter::new(opts.stop.clone()),
            max_tokens: opts.max_tokens,
            generated: Vec::new(),
            stop: None,
        })
    }

    /// Samples the next token from `logits` (the last evaluated token's, one per vocabulary
    /// entry) and decodes it. `context_left` is how many more tokens the session can evaluate:
    /// at 0 generation ends with [`StopReason::ContextFull`]. Checks in order: end-of-generation
    /// token, stop string, `max_tokens`, context.
    pub fn step(&mut self, logits: &[f32], context_left: usize) -> Result<Step, GenerateError> {
        let token = self.sampler.sample(logits);
        let logprobs = self
            .sampler
            .params()
            .logprobs
            .map(|n| token_logprobs(logits, token, n));
        self.sampler.accept(token);
        self.generated.push(token);
        let stop = if self.tok.is_eog(token) {
            Some(StopReason::EndOfGeneration(token))
        } else {
            let piece = self.decoder.push(token)?;
            if let Some(s) = self.out.push(&piece) {
                Some(StopReason::StopString(s))
            } else if self.max_tokens > 0 && self.generated.len() >= self.max_tokens {
                Some(StopReason::MaxTokens)
            } else if context_left == 0 {
                Some(StopReason::ContextFull)
            } else {
                None
            }
        };
        if stop
            .as_ref()
            .is_some_and(|s| !matches!(s, StopReason::StopString(_)))
        {
            self.out.finish(&self.decoder.finish());
        }
        self.stop.clone_from(&stop);
        Ok(Step {
            token,
            text: self.out.take_safe().to_string(),
            stop,
            logprobs,
        })
    }

    /// Ends generation early ([`StopReason::Cancelled`] unless it had already ended) and
    /// returns the text that was still held back.
    pub fn cancel(&mut self) -> String {
        // As at any end but a stop string's: the decoder's rest is final (after a stop string
        // the text was cut before it, and the rest, if any, follows the cut).
        self.out.finish(&self.decoder.finish());
        self.stop = Some(StopReason::Cancelled);
        self.out.take_safe().to_string()
    }

    /// Why generation ended, once it has.
    pub fn stop(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// The tokens sampled so far.
    pub fn tokens(&self) -> &[u32] {
        &self.generated
    }

    /// The text produced so far (held-back text included, a stop string not).
    pub fn text(&self) -> &str {
        &self.out.text
    }

    /// The generated text and tokens.
    pub fn into_output(self) -> (String, Vec<u32>) {
        (self.out.text, self.generated)
    }
}

/// Holds back text that may be the beginning of a stop string.
struct StopFilter {
    stops: Vec<String>,
    /// Everything accepted for output so far.
    text: String,
    /// Bytes of `text` already given to the sink.
    emitted: usize,
    /// Bytes of `text` that are safe to give (no stop string can start before them).
    safe: usize,
}

impl StopFilter {
    fn new(mut stops: Vec<String>) -> Self {
        stops.retain(|s| !s.is_empty());
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
        let stops = self.stops.iter();
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

    /// The safe text not taken before.
    fn take_safe(&mut self) -> &str {
        let chunk = &self.text[self.emitted..self.safe.max(self.emitted)];
        self.emitted = self.emitted.max(self.safe);
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadOptions;

    fn tiny() -> (Model, Tokenizer) {
        let options = LoadOptions {
            threads: 1,
            context_length: Some(128),
            ..LoadOptions::default()
        };
        let model = Model::load(
            ms_test_support::oracle_model("llama-spm-tiny.q8_0"),
            &options,
        )
        .expect("the tiny oracle model under MODELSPEC_SHARED");
        let tok = Tokenizer::from_gguf(model.gguf()).unwrap();
        (model, tok)
    }

    /// Steps a Decoding over a session by hand, as the scheduler does.
    fn drive<'t>(
        model: &Model,
        tok: &'t Tokenizer,
        prompt: &[u32],
        opts: &GenerateOptions,
        steps: usize,
    ) -> (Decoding<'t>, Vec<Step>) {
        let mut session = Session::new(model);
        let mut decoding = Decoding::new(tok, prompt, opts).unwrap();
        session.eval(prompt).unwrap();
        let mut out = Vec::new();
        for _ in 0..steps {
            let step = decoding
                .step(session.logits(), session.remaining())
                .unwrap();
            let (token, stop) = (step.token, step.stop.is_some());
            out.push(step);
            if stop {
                break;
            }
            session.eval(&[token]).unwrap();
        }
        (decoding, out)
    }

    fn greedy(max_tokens: usize, stop: &[&str]) -> GenerateOptions {
        GenerateOptions {
            sampling: SamplingParams::greedy(),
            max_tokens,
            stop: stop.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn stepping_by_hand_gives_what_generate_gives() {
        let (model, tok) = tiny();
        let prompt = encode_prompt(&tok, "Once upon a time", true).unwrap();
        let whole = Generator::new(&model)
            .generate(&tok, &prompt, &greedy(20, &[]), |_| true)
            .unwrap();
        let (decoding, steps) = drive(&model, &tok, &prompt, &greedy(20, &[]), 100);
        let streamed: String = steps.iter().map(|s| s.text.as_str()).collect();
        let tokens: Vec<u32> = steps.iter().map(|s| s.token).collect();
        assert_eq!((&streamed, &tokens), (&whole.text, &whole.tokens));
        assert_eq!(steps.last().unwrap().stop, Some(whole.stop.clone()));
        assert!(steps[..steps.len() - 1].iter().all(|s| s.stop.is_none()));
        assert_eq!(decoding.text(), whole.text);
        assert_eq!(decoding.tokens(), whole.tokens);

        // A stop string that spans tokens: cut before it, the same way.
        let chars: Vec<(usize, char)> = whole.text.char_indices().collect();
        let (from, _) = chars[chars.len() / 3];
        let (to, _) = chars[chars.len() / 3 + 4];
        let stop = &whole.text[from..to];
        let cut = Generator::new(&model)
            .generate(&tok, &prompt, &greedy(20, &[stop]), |_| true)
            .unwrap();
        let (_, steps) = drive(&model, &tok, &prompt, &greedy(20, &[stop]), 100);
        let streamed: String = steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(streamed, cut.text);
        assert_eq!(
            steps.last().unwrap().stop,
            Some(StopReason::StopString(stop.to_string()))
        );
        assert!(whole.text.starts_with(&streamed) && !streamed.contains(stop));
    }

    #[test]
    fn text_that_may_start_a_stop_string_is_held_back_until_cancel() {
        let (model, tok) = tiny();
        let prompt = encode_prompt(&tok, "Once upon a time", true).unwrap();
        let (_, steps) = drive(&model, &tok, &prompt, &greedy(6, &[]), 6);
        let text: String = steps.iter().map(|s| s.text.as_str()).collect();
        let last = text.chars().last().unwrap();
        // A stop string starting with the text's last character and never completed.
        let stop = format!("{last}\u{7}");
        let (mut decoding, steps) = drive(&model, &tok, &prompt, &greedy(0, &[&stop]), 6);
        let shown: String = steps.iter().map(|s| s.text.as_str()).collect();
        assert!(steps.iter().all(|s| s.stop.is_none()));
        assert_eq!(format!("{shown}{last}"), text);
        assert_eq!(decoding.cancel(), last.to_string());
        assert_eq!(decoding.stop(), Some(&StopReason::Cancelled));
        assert_eq!(decoding.text(), text);
    }

    #[test]
    fn max_tokens_and_a_full_context_end_the_generation() {
        let (model, tok) = tiny();
        let prompt = encode_prompt(&tok, "Hello", true).unwrap();
        let (_, steps) = drive(&model, &tok, &prompt, &greedy(3, &[]), 10);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].stop, Some(StopReason::MaxTokens));
        let mut decoding = Decoding::new(&tok, &prompt, &greedy(0, &[])).unwrap();
        let mut session = Session::new(&model);
        session.eval(&prompt).unwrap();
        let step = decoding.step(session.logits(), 0).unwrap();
        assert_eq!(step.stop, Some(StopReason::ContextFull));
        assert!(matches!(
            Decoding::new(&tok, &[], &greedy(1, &[])),
            Err(GenerateError::EmptyPrompt)
        ));
    }
}
