//! C2SP tlog-checkpoint: the signed statement of a tree, `<origin>\n<size>\n<base64 root>\n`,
//! optionally followed by extension lines. Parsing is strict: one checkpoint, one text.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ms_trust::codes::MT0606;

use crate::error::{Result, TlogError};
use crate::hash::Hash;

/// A tree head: which log, how many records, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Empty, or non-empty lines each ending in `\n`.
    pub extension: String,
}

fn bad(line: usize, why: impl fmt::Display) -> TlogError {
    TlogError::new(MT0606, format!("checkpoint line {line}: {why}"))
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extension: String::new(),
        }
    }

    /// The body as signed: `<origin>\n<size>\n<base64 root>\n<extension>`.
    pub fn body(&self) -> String {
        self.to_string()
    }

    /// Parses a checkpoint body (the text of a signed note, without its signatures).
    pub fn parse(body: &str) -> Result<Self> {
        if body.len() > 1 << 20 {
            return Err(bad(1, "a checkpoint is at most 1 MiB"));
        }
        if !body.ends_with('\n') {
            return Err(bad(
                body.lines().count().max(1),
                "the body must end with a newline",
            ));
        }
        let lines: Vec<&str> = body[..body.len() - 1].split('\n').collect();
        if lines.len() < 3 {
            return Err(bad(
                lines.len() + 1,
                "a checkpoint has three lines: origin, size, base64 root hash",
            ));
        }
        if let Some(i) = body.find(|c: char| c < ' ' && c != '\n') {
            let line = body[..i].matches('\n').count() + 1;
            return Err(bad(line, "control characters are not allowed"));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad(1, "the origin is empty"));
        }
        let size_text = lines[1];
        let size: u64 = size_text
            .parse()
            .ok()
            .filter(|s: &u64| s.to_string() == size_text)
            .ok_or_else(|| {
                bad(
                    2,
                    format!("`{size_text}` is not a decimal size without leading zeros"),
                )
            })?;
        let root_text = lines[2];
        let root: Hash = B64
            .decode(root_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .filter(|h: &Hash| B64.encode(h) == root_text)
            .ok_or_else(|| {
                bad(
                    3,
                    format!("`{root_text}` is not the base64 of a 32-byte hash"),
                )
            })?;
        let mut extension = String::new();
        for (i, l) in lines[3..].iter().enumerate() {
            if l.is_empty() {
                return Err(bad(i + 4, "an extension line is empty"));
            }
            extension.push_str(l);
            extension.push('\n');
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extension,
        })
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n{}",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.extension
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_round_trip() {
        let c = Checkpoint::new("example.com/log", 123, [7; 32]);
        let text = c.body();
        assert_eq!(
            text,
            "example.com/log\n123\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        let with_ext = format!("{text}ext one\n");
        assert_eq!(Checkpoint::parse(&with_ext).unwrap().extension, "ext one\n");
        for bad in [
            "",
            "example.com/log\n123\n",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "o\n0123\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "o\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "o\n1\nBwcH\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n",
            "o\t\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert_eq!(Checkpoint::parse(bad).unwrap_err().code, MT0606, "{bad:?}");
        }
    }
}
