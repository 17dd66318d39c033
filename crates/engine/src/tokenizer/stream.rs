//! Decoding token by token for streaming output: a byte-fallback token or a byte-level BPE
//! token can hold part of a UTF-8 character, so bytes are held back until the character is
//! complete.

use super::{Tokenizer, TokenizerError};

/// Turns ids into text as they are generated. Each [`push`](Self::push) returns the text that
/// became complete; [`finish`](Self::finish) returns what is left (an unfinished character
/// becomes U+FFFD). The concatenation equals [`Tokenizer::decode`] of all the ids.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
    /// Tokens seen so far (to find the first after a leading BOS).
    seen: usize,
    leading_bos: bool,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(tok: &'a Tokenizer) -> StreamDecoder<'a> {
        StreamDecoder {
            tok,
            pending: Vec::new(),
            seen: 0,
            leading_bos: false,
        }
    }

    /// Adds one token; returns the text completed by it (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String, TokenizerError> {
        let mut piece = self.tok.text_piece(id)?;
        if self.seen == 0 && Some(id) == self.tok.bos() {
            self.leading_bos = true;
        } else if self.seen == 1 && self.leading_bos && self.tok.add_space_prefix() {
            // Encoding prefixed this space to the text (llama-cpp-python strips it the same
            // way). Generated text continues a prompt, so its first space is kept.
            piece = piece.strip_prefix(b" ").unwrap_or(piece);
        }
        self.seen += 1;
        self.pending.extend_from_slice(piece);
        Ok(self.take_complete())
    }

    /// The text still held back, with an unfinished character replaced by U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    /// Everything in `pending` up to an unfinished character at its end; invalid sequences in
    /// the middle become U+FFFD, as `String::from_utf8_lossy` would make them.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Valid by construction of `valid_up_to`.
                    out.push_str(&String::from_utf8_lossy(
                        &self.pending[start..start + valid],
                    ));
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            start += valid + bad;
                        }
                        None => {
                            start += valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }
}
