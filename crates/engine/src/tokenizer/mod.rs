//! Tokenizers built from GGUF metadata, with llama.cpp's results: SentencePiece-style
//! (`tokenizer.ggml.model = llama`) and GPT-2 byte-level BPE (`gpt2`) with the pre-tokenizer
//! named by `tokenizer.ggml.pre`.
//!
//! Encoding first splits special tokens out of the text (module `special`), then runs the model's
//! tokenizer on the text between them. Decoding concatenates token pieces; [`StreamDecoder`]
//! does it token by token without ever emitting half of a UTF-8 character.

mod bpe;
mod pretokenize;
mod special;
mod spm;
mod stream;
mod unicode_class;
mod vocab;

use ms_gguf::{GgufFile, MetaError, Metadata};

pub use pretokenize::PreTokenizer;
pub use stream::StreamDecoder;
pub use vocab::TokenType;

use special::{Fragment, SpecialTokens};
use vocab::Vocab;

/// Why a tokenizer could not be built, or a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: {source}")]
    InFile {
        path: std::path::PathBuf,
        #[source]
        source: Box<TokenizerError>,
    },
    #[error(
        "no tokenizer: metadata key 'tokenizer.ggml.model' is missing (the file carries no \
         vocabulary; use a GGUF converted together with its tokenizer, as llama.cpp's \
         convert_hf_to_gguf.py does)"
    )]
    NoTokenizer,
    #[error("tokenizer metadata: {0}")]
    Meta(#[from] MetaError),
    #[error("tokenizer metadata key '{key}': {what}")]
    Malformed { key: &'static str, what: String },
    #[error(
        "tokenizer model '{0}' (key tokenizer.ggml.model) is not supported; supported: \
         llama (SentencePiece), gpt2 (byte-level BPE)"
    )]
    UnsupportedModel(String),
    #[error(
        "BPE pre-tokenizer '{0}' (key tokenizer.ggml.pre) is not supported; supported: {supported}",
        supported = PreTokenizer::SUPPORTED
    )]
    UnsupportedPreTokenizer(String),
    #[error("token id {id} is out of range: the vocabulary has {n_vocab} tokens (0..{n_vocab})")]
    IdOutOfRange { id: u32, n_vocab: usize },
}

/// The tokenizer families of `tokenizer.ggml.model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece-style (`llama`): scores, `▁` for spaces, `<0xXX>` byte fallback.
    Spm,
    /// Byte-level BPE (`gpt2`): merge ranks over GPT-2's byte-to-character mapping.
    Bpe(PreTokenizer),
}

enum Model {
    Spm {
        byte_tokens: Box<[Option<u32>; 256]>,
    },
    Bpe {
        merges: bpe::Merges,
        pre: PreTokenizer,
        ignore_merges: bool,
    },
}

pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    specials: SpecialTokens,
    /// Token pieces as llama.cpp's `token_to_piece(special = true)` renders them.
    piece_bytes: Vec<u8>,
    piece_offsets: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    /// Sorted end-of-generation ids.
    eog: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind())
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("add_space_prefix", &self.add_space_prefix)
            .field("eog", &self.eog)
            .finish_non_exhaustive()
    }
}

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// Texts that end generation (llama.cpp's list in `llama_vocab::load`); they are also treated
/// as control tokens whatever their declared type.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];
/// End-of-turn texts llama.cpp looks for when `tokenizer.ggml.eot_token_id` is absent.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "_<EOT>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
/// Fill-in-the-middle texts looked for when their keys are absent, and whether llama.cpp ends
/// generation on them (pad, repo, file separator) or only treats them as control tokens.
const FIM_TEXTS: &[(&str, bool, &[&str])] = &[
    (
        "tokenizer.ggml.fim_pre_token_id",
        false,
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
        ],
    ),
    (
        "tokenizer.ggml.fim_suf_token_id",
        false,
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
        ],
    ),
    (
        "tokenizer.ggml.fim_mid_token_id",
        false,
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
        ],
    ),
    (
        "tokenizer.ggml.fim_pad_token_id",
        true,
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"],
    ),
    (
        "tokenizer.ggml.fim_rep_token_id",
        true,
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
    ),
    ("tokenizer.ggml.fim_sep_token_id", true, &["<|file_sep|>"]),
];
/// gpt-oss channel markup that llama.cpp always renders (user-defined, whatever the file says).
const ALWAYS_RENDERED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// `▁` (U+2581), SentencePiece's spelling of a space.
const SPM_SPACE: &[u8] = "\u{2581}".as_bytes();

fn malformed(key: &'static str, what: impl Into<String>) -> TokenizerError {
    TokenizerError::Malformed {
        key,
        what: what.into(),
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        Self::from_metadata(file.metadata()).map_err(|e| TokenizerError::InFile {
            path: file.path().to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Builds a tokenizer from GGUF metadata (the `tokenizer.ggml.*` keys).
    pub fn from_metadata(meta: &Metadata) -> Result<Tokenizer, TokenizerError> {
        let model_name = meta
            .get_str_opt(KEY_MODEL)?
            .ok_or(TokenizerError::NoTokenizer)?;
        let tokens = meta.get_str_array(KEY_TOKENS)?;
        let n = tokens.len();
        if n == 0 {
            return Err(malformed(KEY_TOKENS, "the vocabulary is empty"));
        }
        if n >= u32::MAX as usize / 2 {
            return Err(malformed(KEY_TOKENS, format!("{n} tokens is too many")));
        }
        let scores = match meta.get(KEY_SCORES) {
            None => vec![0.0; n],
            Some(_) => {
                let s = meta.get_f32_array(KEY_SCORES)?;
                if s.len() != n {
                    return Err(malformed(
                        KEY_SCORES,
                        format!("{} scores for {n} tokens (need one per token)", s.len()),
                    ));
                }
                s.to_vec()
            }
        };
        let types = match meta.get(KEY_TYPES) {
            None => vec![TokenType::Normal; n],
            Some(_) => {
                let t = meta.get_int_array(KEY_TYPES)?;
                if t.len() != n {
                    return Err(malformed(
                        KEY_TYPES,
                        format!(
                            "{} token types for {n} tokens (need one per token)",
                            t.len()
                        ),
                    ));
                }
                t.into_iter().map(TokenType::from_gguf).collect()
            }
        };

        let is_spm = match model_name {
            "llama" => true,
            "gpt2" => false,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let pre = if is_spm {
            None
        } else {
            let name = meta.get_str_opt(KEY_PRE)?.unwrap_or("default");
            Some(
                PreTokenizer::from_name(name)
                    .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer(name.to_string()))?,
            )
        };

        // Special ids: a key out of range is an error; SentencePiece defaults to <unk>=0,
        // <s>=1, </s>=2 as llama.cpp does.
        let id_key =
            |key: &'static str, default: Option<u32>| -> Result<Option<u32>, TokenizerError> {
                match meta.get_u32_opt(key)? {
                    Some(id) if id as usize >= n => Err(malformed(
                        key,
                        format!("token id {id} is out of range (the vocabulary has {n} tokens)"),
                    )),
                    Some(id) => Ok(Some(id)),
                    None => Ok(default.filter(|&d| (d as usize) < n)),
                }
            };
        let bos = id_key("tokenizer.ggml.bos_token_id", is_spm.then_some(1))?;
        let eos = id_key("tokenizer.ggml.eos_token_id", is_spm.then_some(2))?;
        let eot = id_key("tokenizer.ggml.eot_token_id", None)?;
        let eom = id_key("tokenizer.ggml.eom_token_id", None)?;

        let (mut add_bos, mut add_space_prefix) = match pre {
            None => (true, true),
            Some(PreTokenizer::Llama3) => (true, false),
            Some(_) => (false, false),
        };
        let mut add_eos = false;
        if let Some(b) = meta.get_bool_opt("tokenizer.ggml.add_bos_token")? {
            add_bos = b;
        }
        if let Some(b) = meta.get_bool_opt("tokenizer.ggml.add_eos_token")? {
            add_eos = b;
        }
        if let Some(b) = meta.get_bool_opt("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = b;
        }
        if add_bos && bos.is_none() {
            if meta.contains_key("tokenizer.ggml.add_bos_token") {
                return Err(malformed(
                    "tokenizer.ggml.bos_token_id",
                    "missing, but tokenizer.ggml.add_bos_token asks for a BOS token",
                ));
            }
            // Only the tokenizer family's default asked for one.
            add_bos = false;
        }
        if add_eos && eos.is_none() {
            return Err(malformed(
                "tokenizer.ggml.eos_token_id",
                "missing, but tokenizer.ggml.add_eos_token asks for an EOS token",
            ));
        }

        // End of generation, detected from ids and token texts as llama.cpp does; the detected
        // tokens become control tokens (so they are only parsed from text when asked).
        let mut eog: Vec<u32> = [eos, eot, eom].into_iter().flatten().collect();
        // (text, ends generation) of the tokens detected by their text.
        let mut detected: Vec<(&str, bool)> = EOG_TEXTS.iter().map(|&t| (t, true)).collect();
        if eot.is_none() {
            detected.extend(EOT_TEXTS.iter().map(|&t| (t, true)));
        }
        if eom.is_none() {
            detected.push(("<|eom_id|>", true));
        }
        for &(key, ends, texts) in FIM_TEXTS {
            match id_key(key, None)? {
                Some(id) if ends => eog.push(id),
                Some(_) => {}
                None => detected.extend(texts.iter().map(|&t| (t, ends))),
            }
        }
        let mut vocab = Vocab::new(tokens, scores, types);
        // llama.cpp looks texts up in its text-to-id map, so a repeated text means its last id.
        for (text, ends) in detected {
            if let Some(id) = vocab.lookup(text.as_bytes()) {
                if ends {
                    eog.push(id);
                }
                vocab.types[id as usize] = TokenType::Control;
            }
        }
        for text in ALWAYS_RENDERED {
            if let Some(id) = vocab.lookup(text.as_bytes()) {
                vocab.types[id as usize] = TokenType::UserDefined;
            }
        }
        // The harmony format ends turns with <|return|> or <|call|>; <|end|> only ends a message.
        if let (Some(_), Some(_), Some(end)) = (
            vocab.lookup(b"<|return|>").filter(|id| eog.contains(id)),
            vocab.lookup(b"<|call|>").filter(|id| eog.contains(id)),
            vocab.lookup(b"<|end|>").filter(|id| eog.contains(id)),
        ) {
            eog.retain(|&id| id != end);
            vocab.types[end as usize] = TokenType::UserDefined;
        }
        eog.sort_unstable();
        eog.dedup();

        let model = match pre {
            None => {
                let mut byte_tokens = Box::new([None; 256]);
                let unk = id_key("tokenizer.ggml.unknown_token_id", Some(0))?;
                for (b, slot) in byte_tokens.iter_mut().enumerate() {
                    *slot = vocab
                        .lookup(format!("<0x{b:02X}>").as_bytes())
                        .or_else(|| vocab.lookup(&[b as u8]))
                        .or(unk);
                }
                Model::Spm { byte_tokens }
            }
            Some(pre) => {
                let merges = meta.get_str_array(KEY_MERGES)?;
                Model::Bpe {
                    merges: bpe::Merges::new(&vocab, merges),
                    pre,
                    ignore_merges: pre == PreTokenizer::Llama3,
                }
            }
        };
        let mut specials = SpecialTokens::new(&vocab);
        // Per-model attributes llama.cpp sets by name: Phi-3 drops the whitespace after its
        // special tokens, except after <unk>, <s> and <|endoftext|>.
        let name = meta
            .get_str_opt("general.name")?
            .unwrap_or("")
            .to_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            specials.set_rstrip(None, true);
            for text in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(id) = vocab.lookup(text.as_bytes()) {
                    specials.set_rstrip(Some(id), false);
                }
            }
        }
        let mut tok = Tokenizer {
            vocab,
            model,
            specials,
            piece_bytes: Vec::new(),
            piece_offsets: Vec::new(),
            bos,
            eos,
            add_bos,
            add_eos,
            add_space_prefix,
            eog,
        };
        tok.build_pieces();
        Ok(tok)
    }

    fn build_pieces(&mut self) {
        let n = self.vocab.len();
        let mut bytes = Vec::with_capacity(n * 8);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        for id in 0..n as u32 {
            let text = self.vocab.text(id);
            match (self.vocab.types[id as usize], &self.model) {
                (TokenType::Unknown | TokenType::Control | TokenType::UserDefined, _) => {
                    bytes.extend_from_slice(text)
                }
                (TokenType::Normal, Model::Spm { .. }) => {
                    // `▁` back to a space.
                    let mut rest = text;
                    while rest.contains(&SPM_SPACE[0])
                        && let Some(i) = rest.windows(3).position(|w| w == SPM_SPACE)
                    {
                        bytes.extend_from_slice(&rest[..i]);
                        bytes.push(b' ');
                        rest = &rest[i + 3..];
                    }
                    bytes.extend_from_slice(rest);
                }
                (TokenType::Byte, Model::Spm { .. }) => {
                    if let Some(b) = parse_byte_token(text) {
                        bytes.push(b);
                    }
                }
                (TokenType::Normal, Model::Bpe { .. }) => {
                    // Characters outside GPT-2's byte mapping are kept as they are.
                    for c in String::from_utf8_lossy(text).chars() {
                        match bpe::char_to_byte(c) {
                            Some(b) => bytes.push(b),
                            None => {
                                let mut buf = [0u8; 4];
                                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            }
                        }
                    }
                }
                // Undefined and unused tokens, and byte tokens in BPE vocabularies, render
                // as nothing (llama.cpp).
                _ => {}
            }
            offsets.push(bytes.len() as u32);
        }
        self.piece_bytes = bytes;
        self.piece_offsets = offsets;
    }

    pub fn kind(&self) -> TokenizerKind {
        match &self.model {
            Model::Spm { .. } => TokenizerKind::Spm,
            Model::Bpe { pre, .. } => TokenizerKind::Bpe(*pre),
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `encode(.., add_bos = true, ..)` prepends BOS (`tokenizer.ggml.add_bos_token`).
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_bos = true, ..)` appends EOS (`tokenizer.ggml.add_eos_token`).
    pub fn adds_eos(&self) -> bool {
        self.add_eos
    }

    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Whether generation ends at `id`: EOS, end-of-turn (`<end_of_turn>`, `<|im_end|>`,
    /// `<|eot_id|>`, `<|endoftext|>`, ...) and the other tokens llama.cpp detects.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// The id of the token whose text is exactly `text` (the vocabulary's spelling, e.g. `▁the`
    /// or `Ġthe`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.lookup(text.as_bytes())
    }

    /// The declared type of a token.
    pub fn token_type(&self, id: u32) -> Result<TokenType, TokenizerError> {
        self.check(id)?;
        Ok(self.vocab.types[id as usize])
    }

    /// The vocabulary's text of a token, as stored in the file.
    pub fn token_text(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.check(id)?;
        Ok(self.vocab.text(id))
    }

    fn check(&self, id: u32) -> Result<(), TokenizerError> {
        if (id as usize) < self.vocab.len() {
            Ok(())
        } else {
            Err(TokenizerError::IdOutOfRange {
                id,
                n_vocab: self.vocab.len(),
            })
        }
    }

    /// The bytes a token stands for, control tokens included (`<end_of_turn>` renders as its
    /// text). Byte tokens and byte-level BPE tokens may be part of a UTF-8 character.
    pub fn token_to_piece(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.check(id)?;
        let i = id as usize;
        Ok(&self.piece_bytes[self.piece_offsets[i] as usize..self.piece_offsets[i + 1] as usize])
    }

    /// The bytes a token contributes to decoded text: its piece, or nothing for control and
    /// unknown tokens (llama.cpp's `token_to_piece(special = false)`).
    pub(crate) fn text_piece(&self, id: u32) -> Result<&[u8], TokenizerError> {
        let piece = self.token_to_piece(id)?;
        Ok(match self.vocab.types[id as usize] {
            TokenType::Control | TokenType::Unknown => &[],
            _ => piece,
        })
    }

    /// Token ids for `text`. With `add_bos`, adds the BOS (and EOS) tokens the vocabulary asks
    /// for (llama.cpp's `add_special`). With `parse_special`, control tokens written in the text
    /// (`<start_of_turn>`) become those tokens; user-defined tokens always do.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<u32> {
        let bytes = text.as_bytes();
        let fragments = self.specials.partition(&self.vocab, text, parse_special);
        let mut out = Vec::with_capacity(bytes.len() / 3 + 2);
        if add_bos && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Spm { byte_tokens } => {
                let byte_token = |b: u8| byte_tokens[b as usize];
                let mut escaped = Vec::new();
                // A space is prefixed to the text at the start and after a special token.
                let mut prev_special = true;
                for f in fragments {
                    match f {
                        Fragment::Text(r) => {
                            escaped.clear();
                            if self.add_space_prefix && prev_special {
                                escaped.push(b' ');
                            }
                            escaped.extend_from_slice(&bytes[r]);
                            let mut buf = Vec::with_capacity(escaped.len() + 8);
                            spm::escape_whitespace(&escaped, &mut buf);
                            spm::tokenize(&self.vocab, &buf, &byte_token, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Model::Bpe {
                merges,
                pre,
                ignore_merges,
            } => {
                let table = bpe::byte_to_char_table();
                let mut word = Vec::new();
                for f in fragments {
                    match f {
                        Fragment::Text(r) => {
                            // Fragments end at special-token boundaries, which are
                            // character boundaries.
                            let Some(s) = text.get(r) else { continue };
                            let cpts: Vec<char> = s.chars().collect();
                            let mut at = 0;
                            for len in pre.split(&cpts) {
                                word.clear();
                                let mut buf = [0u8; 4];
                                for c in &cpts[at..at + len] {
                                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                                        let m = table[b as usize];
                                        word.extend_from_slice(
                                            m.encode_utf8(&mut [0u8; 4]).as_bytes(),
                                        );
                                    }
                                }
                                at += len;
                                bpe::tokenize_word(
                                    &self.vocab,
                                    merges,
                                    &word,
                                    *ignore_merges,
                                    &mut out,
                                );
                            }
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_bos && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// The text of `ids`: pieces concatenated, control tokens left out, invalid UTF-8 replaced
    /// by U+FFFD. When the vocabulary prefixes a space on encoding (`add_space_prefix`), the
    /// token right after a leading BOS loses one leading space, so that decoding an encoding
    /// made with `add_bos` gives the text back (as llama-cpp-python's `detokenize`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut d = StreamDecoder::new(self);
        let mut out = String::new();
        for &id in ids {
            out.push_str(&d.push(id)?);
        }
        out.push_str(&d.finish());
        Ok(out)
    }
}

/// `<0xXX>` to its byte.
fn parse_byte_token(text: &[u8]) -> Option<u8> {
    let hex = text.strip_prefix(b"<0x")?.strip_suffix(b">")?;
    u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_gguf::{Array, Value};

    fn spm_meta(tokens: &[(&str, f32, i32)]) -> Metadata {
        let mut m = Metadata::default();
        m.insert(KEY_MODEL, Value::String("llama".into()));
        m.insert(
            KEY_TOKENS,
            Value::Array(Array::String(
                tokens.iter().map(|t| t.0.to_string()).collect(),
            )),
        );
        m.insert(
            KEY_SCORES,
            Value::Array(Array::F32(tokens.iter().map(|t| t.1).collect())),
        );
        m.insert(
            KEY_TYPES,
            Value::Array(Array::I32(tokens.iter().map(|t| t.2).collect())),
        );
        m
    }

    fn tiny_spm() -> Metadata {
        let mut t = vec![("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)];
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        for b in &bytes {
            t.push((b.as_str(), 0.0, 6));
        }
        t.extend([
            ("▁", -1.0, 1),
            ("h", -2.0, 1),
            ("i", -2.0, 1),
            ("hi", -1.5, 1),
            ("▁hi", -0.5, 1),
            ("<|im_end|>", 0.0, 1),
        ]);
        let owned: Vec<(String, f32, i32)> =
            t.iter().map(|(a, b, c)| (a.to_string(), *b, *c)).collect();
        spm_meta(
            &owned
                .iter()
                .map(|(a, b, c)| (a.as_str(), *b, *c))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn spm_merges_by_score_with_byte_fallback_and_bos() {
        let tok = Tokenizer::from_metadata(&tiny_spm()).unwrap();
        let hi = tok.token_id("▁hi").unwrap();
        assert_eq!(tok.encode("hi", false, false), vec![hi]);
        // 'é' is not a token: its two UTF-8 bytes become byte tokens.
        assert_eq!(
            tok.encode("hé", true, false),
            vec![
                1,
                tok.token_id("▁").unwrap(),
                tok.token_id("h").unwrap(),
                3 + 0xC3,
                3 + 0xA9
            ]
        );
        assert_eq!(
            tok.decode(&tok.encode("hi hé", true, false)).unwrap(),
            "hi hé"
        );
        assert_eq!(tok.encode("", true, false), vec![1]);
        assert!(tok.encode("", false, false).is_empty());

        // The vocabulary decides which of BOS and EOS `add_bos` adds.
        let mut m = tiny_spm();
        m.insert("tokenizer.ggml.add_bos_token", Value::Bool(false));
        m.insert("tokenizer.ggml.add_eos_token", Value::Bool(true));
        let tok = Tokenizer::from_metadata(&m).unwrap();
        assert_eq!(tok.encode("hi", true, false), vec![hi, 2]);
        assert_eq!(tok.encode("hi", false, false), vec![hi]);
    }

    #[test]
    fn eog_detection_forces_control() {
        let tok = Tokenizer::from_metadata(&tiny_spm()).unwrap();
        let im_end = tok.token_id("<|im_end|>").unwrap();
        assert!(tok.is_eog(im_end) && tok.is_eog(2) && !tok.is_eog(1));
        assert_eq!(tok.encode("<|im_end|>", false, true), vec![im_end]);
        assert_ne!(tok.encode("<|im_end|>", false, false), vec![im_end]);
        assert_eq!(tok.decode(&[im_end]).unwrap(), "");
        assert_eq!(tok.token_to_piece(im_end).unwrap(), b"<|im_end|>");
    }

    fn bpe_meta(pre: &str, tokens: &[&str], merges: &[&str]) -> Metadata {
        let mut m = Metadata::default();
        m.insert(KEY_MODEL, Value::String("gpt2".into()));
        m.insert(KEY_PRE, Value::String(pre.into()));
        let mut all: Vec<String> = bpe::byte_to_char_table()
            .iter()
            .map(|c| c.to_string())
            .collect();
        all.extend(tokens.iter().map(|t| t.to_string()));
        m.insert(KEY_TOKENS, Value::Array(Array::String(all)));
        m.insert(
            KEY_MERGES,
            Value::Array(Array::String(
                merges.iter().map(|t| t.to_string()).collect(),
            )),
        );
        m
    }

    #[test]
    fn bpe_merges_by_rank_over_pre_tokenized_words() {
        let merges = ["a b", "Ġ ab", "1 2", "12 3", "c d"];
        let tokens = ["ab", "Ġab", "12", "123", "cd", "abcd", "<|endoftext|>"];
        let q = Tokenizer::from_metadata(&bpe_meta("qwen2", &tokens, &merges)).unwrap();
        let id = |t: &str| q.token_id(t).unwrap();
        let byte = |c: char| q.token_id(&c.to_string()).unwrap();
        // qwen2 splits digits one by one, so "12" never forms; "Ġab" does.
        assert_eq!(
            q.encode("ab ab 123", false, false),
            vec![
                id("ab"),
                id("Ġab"),
                byte('Ġ'),
                byte('1'),
                byte('2'),
                byte('3')
            ]
        );
        assert_eq!(
            q.decode(&q.encode("ab 123", false, false)).unwrap(),
            "ab 123"
        );
        let l = Tokenizer::from_metadata(&bpe_meta("llama-bpe", &tokens, &merges)).unwrap();
        assert_eq!(l.kind(), TokenizerKind::Bpe(PreTokenizer::Llama3));
        // Llama 3 adds a BOS by default, but this vocabulary names none.
        assert!(!l.adds_bos() && l.bos().is_none());
        // Llama 3 takes a whole word that is a token as it is (ignore_merges): "abcd" has no
        // merge path ("ab" + "cd" is not ranked) but is one token.
        assert_eq!(
            l.encode("abcd 123", false, false),
            vec![id("abcd"), byte('Ġ'), id("123")]
        );
        assert_eq!(q.encode("abcd", false, false), vec![id("ab"), id("cd")]);
        // <|endoftext|> ends generation and is a control token.
        let eot = id("<|endoftext|>");
        assert!(q.is_eog(eot));
        assert_eq!(
            q.encode("x<|endoftext|>", false, true),
            vec![byte('x'), eot]
        );
        assert_eq!(q.decode(&[byte('x'), eot]).unwrap(), "x");
    }

    #[test]
    fn phi3_drops_whitespace_after_special_tokens() {
        let mut m = tiny_spm();
        let plain = Tokenizer::from_metadata(&m).unwrap();
        m.insert("general.name", Value::String("Phi-3-mini".into()));
        let phi3 = Tokenizer::from_metadata(&m).unwrap();
        let im_end = plain.token_id("<|im_end|>").unwrap();
        let sp = plain.token_id("▁").unwrap();
        let sp_hi = plain.token_id("▁hi").unwrap();
        // After a special token the text gets the space prefix: "▁" + "▁▁hi".
        assert_eq!(
            plain.encode("<|im_end|>  hi", false, true),
            vec![im_end, sp, sp, sp_hi]
        );
        assert_eq!(
            phi3.encode("<|im_end|>  hi", false, true),
            vec![im_end, sp_hi]
        );
        // <s> keeps the whitespace after it.
        assert_eq!(
            phi3.encode("<s> hi", false, true),
            plain.encode("<s> hi", false, true)
        );
    }

    #[test]
    fn bad_metadata_and_ids_are_errors_naming_the_key() {
        let mut m = tiny_spm();
        m.insert("tokenizer.ggml.bos_token_id", Value::U32(1_000_000));
        let e = Tokenizer::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("tokenizer.ggml.bos_token_id"), "{e}");
        let mut m = tiny_spm();
        m.remove(KEY_TOKENS);
        let e = Tokenizer::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains(KEY_TOKENS), "{e}");
        let mut m = tiny_spm();
        m.insert(KEY_SCORES, Value::Array(Array::F32(vec![0.0])));
        let e = Tokenizer::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains(KEY_SCORES), "{e}");
        let mut m = tiny_spm();
        m.insert(KEY_MODEL, Value::String("bert".into()));
        let e = Tokenizer::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("bert") && e.contains("gpt2"), "{e}");
        let mut m = tiny_spm();
        m.insert(KEY_MODEL, Value::String("gpt2".into()));
        m.insert(KEY_PRE, Value::String("klingon".into()));
        let e = Tokenizer::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains("klingon") && e.contains("qwen2"), "{e}");

        let tok = Tokenizer::from_metadata(&tiny_spm()).unwrap();
        let n = tok.vocab_size() as u32;
        assert!(matches!(
            tok.decode(&[n]),
            Err(TokenizerError::IdOutOfRange { id, .. }) if id == n
        ));
        assert!(tok.token_to_piece(u32::MAX).is_err());
    }
}
