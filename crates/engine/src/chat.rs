//! Chat templates: messages in, prompt text out.
//!
//! A GGUF's `tokenizer.chat_template` is a Jinja template written for Hugging Face
//! `transformers`. We render it with minijinja in a sandbox:
//! - no loader: `{% include %}`, `{% import %}` and `{% extends %}` find nothing (no file or
//!   network access);
//! - bounded work: minijinja's fuel (one unit per instruction), its recursion limit, and a
//!   wall-clock limit after which the render is abandoned;
//! - bounded output: rendering stops once the prompt exceeds [`TemplateLimits::max_output_bytes`].
//!
//! Known limits: a template can still make large values in few instructions (minijinja caps
//! one string repetition at 100 MB), so memory is only bounded by those caps; and a render
//! abandoned at the time limit returns control to the caller at once, but its thread runs on
//! until its fuel is spent (there is no way to interrupt minijinja from outside).
//!
//! The context is the one `transformers` gives: `messages` (list of `{role, content}`),
//! `add_generation_prompt`, `bos_token`, `eos_token`, and `raise_exception(msg)`; Python string
//! methods (`.strip()`, `.startswith()`, ...) work as in `transformers` through
//! minijinja-contrib's pycompat.
//!
//! Files without a template (the default Gemma 3 file has none) get a built-in [`ChatFormat`]
//! chosen from the architecture and the vocabulary; any format can also be chosen by name.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

use crate::tokenizer::Tokenizer;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// How messages become a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatFormat {
    /// A Jinja template (normally the GGUF's `tokenizer.chat_template`).
    Template(String),
    /// Gemma: `<start_of_turn>user\n...<end_of_turn>\n`, the assistant is `model`, a system
    /// message is prepended to the first user turn (Gemma has no system role).
    Gemma,
    /// ChatML (Qwen 2 and many others): `<|im_start|>role\n...<|im_end|>\n`.
    ChatMl,
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>`.
    Llama3,
    /// Llama 2: `[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>`.
    Llama2,
    /// `role: content` lines and a final `assistant:`; for models with no known format (base
    /// models): it is a readable prompt, not a format the model was trained on.
    Plain,
}

/// The names [`ChatFormat::from_name`] accepts.
pub const CHAT_FORMAT_NAMES: &[&str] = &["gemma", "chatml", "llama3", "llama2", "plain"];

impl ChatFormat {
    /// A built-in format by name (one of [`CHAT_FORMAT_NAMES`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "gemma" | "gemma3" => Self::Gemma,
            "chatml" | "qwen2" => Self::ChatMl,
            "llama3" => Self::Llama3,
            "llama2" => Self::Llama2,
            "plain" => Self::Plain,
            _ => return None,
        })
    }

    /// The built-in format for a model without a template: by architecture, confirmed or
    /// overridden by the vocabulary's control tokens (`has_token`).
    pub fn fallback(architecture: &str, has_token: impl Fn(&str) -> bool) -> Self {
        if architecture.starts_with("gemma") || has_token("<start_of_turn>") {
            Self::Gemma
        } else if has_token("<|im_start|>") {
            Self::ChatMl
        } else if has_token("<|start_header_id|>") {
            Self::Llama3
        } else if architecture == "qwen2" {
            Self::ChatMl
        } else if architecture == "llama" {
            Self::Llama2
        } else {
            Self::Plain
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Template(_) => "template",
            Self::Gemma => "gemma",
            Self::ChatMl => "chatml",
            Self::Llama3 => "llama3",
            Self::Llama2 => "llama2",
            Self::Plain => "plain",
        }
    }
}

/// Bounds on one template render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// minijinja instructions per render.
    pub fuel: u64,
    /// Bytes of rendered prompt.
    pub max_output_bytes: usize,
    /// Wall-clock time of one render.
    pub max_time: Duration,
}

impl Default for TemplateLimits {
    fn default() -> Self {
        // Real templates use a few thousand instructions per message; these bounds leave
        // room for conversations that fill any context while stopping runaway templates fast.
        Self {
            fuel: 5_000_000,
            max_output_bytes: 4 << 20,
            max_time: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat template does not parse: {0}")]
    Syntax(String),
    #[error("chat template failed: {0}")]
    Render(String),
    #[error("chat template raised an exception: {0}")]
    Raised(String),
    #[error(
        "chat template ran out of fuel ({0} instructions): it loops too long; pass --chat-format to use a built-in format"
    )]
    OutOfFuel(u64),
    #[error("chat template output exceeds {0} bytes; pass --chat-format to use a built-in format")]
    TooLarge(usize),
    #[error("chat template took longer than {0:?}; pass --chat-format to use a built-in format")]
    Timeout(Duration),
    #[error(
        "chat template tried to load another template ({0}); templates may not include, import or extend files"
    )]
    Include(String),
    #[error("no messages to render")]
    NoMessages,
}

/// A chat format with the special tokens its template refers to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    pub format: ChatFormat,
    pub bos_token: String,
    pub eos_token: String,
    pub limits: TemplateLimits,
}

impl ChatTemplate {
    pub fn new(
        format: ChatFormat,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Self {
        Self {
            format,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            limits: TemplateLimits::default(),
        }
    }

    /// The model's own template if it has one, else the architecture's built-in format.
    pub fn for_model(template: Option<&str>, architecture: &str, tokenizer: &Tokenizer) -> Self {
        let text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_text(id).ok())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let format = match template {
            Some(t) if !t.trim().is_empty() => ChatFormat::Template(t.to_string()),
            _ => ChatFormat::fallback(architecture, |t| tokenizer.token_id(t).is_some()),
        };
        Self::new(format, text(tokenizer.bos()), text(tokenizer.eos()))
    }

    /// Text that ends an assistant turn in this format when no special token does: for
    /// `plain`, the start of the next user line (models without a format continue the
    /// conversation on their own).
    pub fn stop_strings(&self) -> Vec<String> {
        match self.format {
            ChatFormat::Plain => vec!["\nuser:".to_string()],
            _ => Vec::new(),
        }
    }

    /// The prompt for `messages`; with `add_generation_prompt` it ends where the assistant's
    /// reply begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        if messages.is_empty() {
            return Err(ChatError::NoMessages);
        }
        let out = match &self.format {
            ChatFormat::Template(source) => {
                let msgs: Vec<Value> = messages
                    .iter()
                    .map(|m| {
                        let mut map = BTreeMap::new();
                        map.insert("role".to_string(), Value::from(m.role.clone()));
                        map.insert("content".to_string(), Value::from(m.content.clone()));
                        Value::from(map)
                    })
                    .collect();
                return self.render_template(
                    source,
                    Value::from(msgs),
                    add_generation_prompt,
                    None,
                );
            }
            ChatFormat::Gemma => gemma(messages, add_generation_prompt),
            ChatFormat::ChatMl => chatml(messages, add_generation_prompt),
            ChatFormat::Llama3 => llama3(&self.bos_token, messages, add_generation_prompt),
            ChatFormat::Llama2 => llama2(
                &self.bos_token,
                &self.eos_token,
                messages,
                add_generation_prompt,
            ),
            ChatFormat::Plain => plain(messages, add_generation_prompt),
        };
        if out.len() > self.limits.max_output_bytes {
            return Err(ChatError::TooLarge(self.limits.max_output_bytes));
        }
        Ok(out)
    }

    /// Renders a Jinja template with messages given as JSON (OpenAI-style messages may carry
    /// more than role and content) and extra top-level variables (e.g. `tools`).
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, ChatError> {
        match &self.format {
            ChatFormat::Template(source) => {
                if messages.as_array().is_none_or(|a| a.is_empty()) {
                    return Err(ChatError::NoMessages);
                }
                self.render_template(
                    source,
                    json_to_value(messages),
                    add_generation_prompt,
                    extra,
                )
            }
            _ => {
                let list = messages.as_array().ok_or(ChatError::NoMessages)?;
                let msgs: Vec<ChatMessage> = list
                    .iter()
                    .map(|m| ChatMessage {
                        role: m
                            .get("role")
                            .and_then(|r| r.as_str())
                            .unwrap_or("user")
                            .to_string(),
                        content: json_content_text(m.get("content")),
                    })
                    .collect();
                self.render(&msgs, add_generation_prompt)
            }
        }
    }

    fn render_template(
        &self,
        source: &str,
        messages: Value,
        add_generation_prompt: bool,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, ChatError> {
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(extra) = extra {
            for (k, v) in extra {
                ctx.insert(k.clone(), json_to_value(v));
            }
        }
        ctx.insert("messages".into(), messages);
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        ctx.insert("bos_token".into(), Value::from(self.bos_token.clone()));
        ctx.insert("eos_token".into(), Value::from(self.eos_token.clone()));
        let source = source.to_string();
        let limits = self.limits;
        let ctx = Value::from(ctx);
        // The render runs on its own thread so that a slow template can be abandoned; fuel
        // and the output cap make that thread end soon after.
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("chat-template".into())
            .spawn(move || {
                let _ = tx.send(render_sandboxed(&source, ctx, limits));
            });
        if spawned.is_err() {
            return Err(ChatError::Render(
                "could not start the template thread".into(),
            ));
        }
        match rx.recv_timeout(limits.max_time) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ChatError::Timeout(limits.max_time)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ChatError::Render(
                "the template renderer stopped unexpectedly".into(),
            )),
        }
    }
}

fn render_sandboxed(source: &str, ctx: Value, limits: TemplateLimits) -> Result<String, ChatError> {
    // No loader is set, so include/import/extends find no template: no file access.
    let mut env = Environment::new();
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(100);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<Value, JinjaError> {
            Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("raise_exception: {msg}"),
            ))
        },
    );
    // transformers compiles templates with trim_blocks and lstrip_blocks.
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    let template = env
        .template_from_str(source)
        .map_err(|e| ChatError::Syntax(describe(&e)))?;
    let mut out = CappedWriter {
        buf: Vec::new(),
        cap: limits.max_output_bytes,
        exceeded: false,
    };
    let result = template.render_captured_to(ctx, &mut out);
    if out.exceeded {
        return Err(ChatError::TooLarge(limits.max_output_bytes));
    }
    if let Err(e) = result {
        return Err(classify(&e, limits));
    }
    String::from_utf8(out.buf).map_err(|_| ChatError::Render("output is not UTF-8".into()))
}

fn classify(e: &JinjaError, limits: TemplateLimits) -> ChatError {
    let text = describe(e);
    match e.kind() {
        ErrorKind::OutOfFuel => ChatError::OutOfFuel(limits.fuel),
        ErrorKind::TemplateNotFound | ErrorKind::BadInclude => ChatError::Include(text),
        _ if text.contains("raise_exception: ") => {
            let msg = text
                .split("raise_exception: ")
                .nth(1)
                .unwrap_or("")
                .to_string();
            ChatError::Raised(
                msg.lines()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(')')
                    .to_string(),
            )
        }
        _ => ChatError::Render(text),
    }
}

fn describe(e: &JinjaError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    exceeded: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.exceeded = true;
            return Err(std::io::Error::other("chat template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(a) => Value::from(a.iter().map(json_to_value).collect::<Vec<_>>()),
        serde_json::Value::Object(o) => {
            let map: BTreeMap<String, Value> = o
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect();
            Value::from(map)
        }
    }
}

/// OpenAI content is a string or a list of parts; the text parts, joined.
fn json_content_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn gemma(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    let mut system = String::new();
    for m in messages {
        if m.role == "system" {
            system.push_str(m.content.trim());
            system.push_str("\n\n");
            continue;
        }
        let role = if m.role == "assistant" {
            "model"
        } else {
            m.role.as_str()
        };
        out.push_str("<start_of_turn>");
        out.push_str(role);
        out.push('\n');
        if role == "user" {
            out.push_str(&std::mem::take(&mut system));
        }
        out.push_str(m.content.trim());
        out.push_str("<end_of_turn>\n");
    }
    if add_generation_prompt {
        out.push_str("<start_of_turn>model\n");
    }
    out
}

fn chatml(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            m.role, m.content
        ));
    }
    if add_generation_prompt {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

fn llama3(bos: &str, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = bos.to_string();
    for m in messages {
        out.push_str(&format!(
            "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
            m.role,
            m.content.trim()
        ));
    }
    if add_generation_prompt {
        out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
    out
}

fn llama2(bos: &str, eos: &str, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    // Meta's reference format: each exchange is `<s>[INST] user [/INST] assistant </s>`, the
    // system prompt sits inside the first instruction.
    let mut out = String::new();
    let mut system = String::new();
    for m in messages {
        match m.role.as_str() {
            "system" => system = format!("<<SYS>>\n{}\n<</SYS>>\n\n", m.content.trim()),
            "assistant" => {
                out.push_str(&format!(" {} {eos}", m.content.trim()));
            }
            _ => {
                out.push_str(&format!(
                    "{bos}[INST] {}{} [/INST]",
                    std::mem::take(&mut system),
                    m.content.trim()
                ));
            }
        }
    }
    // The reply follows `[/INST]` directly: nothing to add for the generation prompt.
    let _ = add_generation_prompt;
    out
}

fn plain(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&format!("{}: {}\n", m.role, m.content.trim()));
    }
    if add_generation_prompt {
        out.push_str("assistant:");
    }
    out
}
