//! `.json` files read as JSON (RFC 8259), not as YAML: serde_json decides what is valid, so a
//! trailing comma or a comment is an error at its line:column; a scanner over the validated text
//! then builds the same positioned tree as the YAML reader, with an explicit stack.

use std::collections::HashSet;

use saphyr_parser::ScalarStyle;

use crate::diag::{Diagnostic, codes};
use crate::source::Source;
use crate::yaml::{Document, Entry, MAX_DEPTH, Node, NodeValue, Parsed, Pos};

/// Parses a JSON document. An empty (or blank) file has no document, as in YAML.
pub fn parse(src: &Source) -> Parsed {
    let text = src.text.as_str();
    if text.trim().is_empty() {
        return Parsed::default();
    }
    // `Value`, not `IgnoredAny`: only the former stops at serde_json's recursion limit, so
    // that an unclosed `[[[[...` is reported as too deep rather than as a missing bracket.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        return Parsed {
            documents: Vec::new(),
            diagnostics: vec![syntax_error(src, &e)],
        };
    }
    let mut b = Builder {
        src,
        s: Scanner {
            text,
            i: 0,
            line: 1,
            col: 1,
        },
        stack: Vec::new(),
        root: None,
        diagnostics: Vec::new(),
    };
    let ok = b.run();
    let documents = match (ok, b.root) {
        (true, Some(root)) => vec![Document { index: 0, root }],
        _ => Vec::new(),
    };
    Parsed {
        documents,
        diagnostics: b.diagnostics,
    }
}

/// serde_json's error, at the character (not byte) column, with a hint for the usual slips.
fn syntax_error(src: &Source, e: &serde_json::Error) -> Diagnostic {
    let line = u32::try_from(e.line()).unwrap_or(u32::MAX);
    let line_text = src.line_text(line).unwrap_or_default();
    // serde_json counts bytes from the start of the line; findings count characters.
    let byte_col = e.column().max(1) - 1;
    let before = line_text
        .get(..byte_col.min(line_text.len()))
        .unwrap_or(line_text);
    let col = u32::try_from(before.chars().count() + 1).unwrap_or(u32::MAX);
    let at = line_text[before.len()..].chars().next();
    let offset = src
        .text
        .split_inclusive('\n')
        .take(usize::try_from(line).unwrap_or(0).saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + before.len();
    let pos = Pos { line, col, offset };
    let full = e.to_string();
    let raw = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    let (code, message) = if raw.contains("recursion limit") {
        (
            codes::TOO_DEEP,
            "nesting is too deep (serde_json's recursion limit)".to_owned(),
        )
    } else {
        (codes::SYNTAX, format!("invalid JSON: {raw}"))
    };
    let prev = src.text[..offset.min(src.text.len())]
        .trim_end()
        .chars()
        .last();
    // serde_json words some slips from its own point of view ("key must be a string" for a
    // trailing comma): name the slip, keep its words as what was found.
    let slip = match at {
        Some('}' | ']') if prev == Some(',') => Some((
            "a trailing comma",
            "JSON allows no comma after the last item: remove the trailing comma",
        )),
        Some(',') if prev == Some(',') => Some((
            "two commas in a row",
            "an item is missing, or one comma is too many",
        )),
        Some('/' | '#') => Some((
            "a comment",
            "JSON has no comments: remove it (or write the spec as YAML, which has `#` comments)",
        )),
        Some('\'') => Some(("a single quote", "JSON strings take double quotes")),
        _ => None,
    };
    let end = Pos {
        line,
        col: col + u32::from(at.is_some()),
        offset,
    };
    // serde_json stops at the bracket after a trailing comma, often on the next line: the
    // finding points at the comma itself, which is what has to go.
    let (pos, end) = match (slip, prev) {
        (Some(("a trailing comma", _)), Some(',')) => {
            let comma = src.text[..offset.min(src.text.len())].trim_end().len() - 1;
            let at = pos_at(&src.text, comma);
            let after = Pos {
                col: at.col + 1,
                offset: comma + 1,
                ..at
            };
            (at, after)
        }
        _ => (pos, end),
    };
    match slip {
        Some((what, hint)) if code == codes::SYNTAX => {
            Diagnostic::new(code, &src.name, pos, format!("invalid JSON: {what}"))
                .with_end(end)
                .with_found(format!("serde_json: {raw}"))
                .with_hint(hint)
        }
        _ => Diagnostic::new(code, &src.name, pos, message).with_end(end),
    }
}

/// The line and character column of a byte offset of `text` (1-based, as findings count).
fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        offset,
    }
}

struct Scanner<'a> {
    text: &'a str,
    i: usize,
    line: u32,
    col: u32,
}

impl Scanner<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
            offset: self.i,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }
    /// Moves over `n` bytes that hold no line break.
    fn advance(&mut self, n: usize) {
        let end = (self.i + n).min(self.text.len());
        let chars = self.text.get(self.i..end).map_or(n, |s| s.chars().count());
        self.col += u32::try_from(chars).unwrap_or(0);
        self.i = end;
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.col = 1;
                }
                b' ' | b'\t' | b'\r' => self.advance(1),
                _ => break,
            }
        }
    }
    /// A string starting at the current `"`: its decoded text and where it ends.
    fn string(&mut self) -> (String, Pos) {
        let bytes = self.text.as_bytes();
        let mut j = self.i + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'"' => break,
                _ => j += 1,
            }
        }
        let raw = &self.text[self.i..=j.min(self.text.len() - 1)];
        // The text was validated as JSON, so the slice is a valid JSON string.
        let value = serde_json::from_str::<String>(raw).unwrap_or_default();
        self.advance(raw.len());
        (value, self.pos())
    }
    /// A number, `true`, `false` or `null`.
    fn bare(&mut self) -> (NodeValue, Pos) {
        let rest = &self.text[self.i..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let value = match word {
            "true" => NodeValue::Bool(true),
            "false" => NodeValue::Bool(false),
            "null" => NodeValue::Null,
            n => match n.parse::<i64>() {
                Ok(i) => NodeValue::Int(i),
                Err(_) => n.parse::<f64>().map_or(NodeValue::Null, NodeValue::Float),
            },
        };
        self.advance(len);
        (value, self.pos())
    }
}

enum Frame {
    Array {
        items: Vec<Node>,
        start: Pos,
    },
    Object {
        entries: Vec<Entry>,
        start: Pos,
        key: Option<(String, Pos)>,
        seen: HashSet<String>,
    },
}

struct Builder<'a> {
    src: &'a Source,
    s: Scanner<'a>,
    stack: Vec<Frame>,
    root: Option<Node>,
    diagnostics: Vec<Diagnostic>,
}

impl Builder<'_> {
    /// Builds the tree; false when a limit stopped it.
    fn run(&mut self) -> bool {
        loop {
            self.s.skip_ws();
            let Some(c) = self.s.peek() else {
                return true;
            };
            let start = self.s.pos();
            match (self.stack.last_mut(), c) {
                (Some(Frame::Object { key: None, .. }), b'"') => {
                    let (k, _) = self.s.string();
                    self.s.skip_ws();
                    self.s.advance(1); // ':'
                    if let Some(Frame::Object { key, .. }) = self.stack.last_mut() {
                        *key = Some((k, start));
                    }
                    continue;
                }
                (Some(_), b',') => {
                    self.s.advance(1);
                    continue;
                }
                (Some(_), b'}' | b']') => {
                    self.s.advance(1);
                    self.close();
                }
                (_, b'{' | b'[') => {
                    if self.stack.len() >= MAX_DEPTH {
                        self.diagnostics.push(
                            Diagnostic::new(
                                codes::TOO_DEEP,
                                &self.src.name,
                                start,
                                format!("nesting is deeper than {MAX_DEPTH} levels"),
                            )
                            .with_hint(
                                "ModelSpec documents nest about 8 levels deep; this input is not a spec",
                            ),
                        );
                        return false;
                    }
                    self.s.advance(1);
                    self.stack.push(if c == b'{' {
                        Frame::Object {
                            entries: Vec::new(),
                            start,
                            key: None,
                            seen: HashSet::new(),
                        }
                    } else {
                        Frame::Array {
                            items: Vec::new(),
                            start,
                        }
                    });
                }
                (_, b'"') => {
                    let (text, end) = self.s.string();
                    self.complete(scalar(NodeValue::Str(text), start, end, true));
                }
                _ => {
                    let (value, end) = self.s.bare();
                    if end.offset == start.offset {
                        // Cannot happen after serde_json accepted the text; never loop forever.
                        return true;
                    }
                    self.complete(scalar(value, start, end, false));
                }
            }
            if self.stack.is_empty() && self.root.is_some() {
                return true;
            }
        }
    }

    fn close(&mut self) {
        let end = self.s.pos();
        let node = match self.stack.pop() {
            Some(Frame::Array { items, start }) => collection(NodeValue::Seq(items), start, end),
            Some(Frame::Object { entries, start, .. }) => {
                collection(NodeValue::Map(entries), start, end)
            }
            None => return,
        };
        self.complete(node);
    }

    fn complete(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Array { items, .. }) => items.push(node),
            Some(Frame::Object {
                entries, key, seen, ..
            }) => {
                let Some((k, key_pos)) = key.take() else {
                    return;
                };
                if seen.insert(k.clone()) {
                    entries.push(Entry {
                        key: k,
                        key_pos,
                        value: node,
                    });
                    return;
                }
                let first = entries
                    .iter()
                    .find(|e| e.key == k)
                    .map_or(key_pos, |e| e.key_pos);
                self.diagnostics.push(
                    Diagnostic::new(
                        codes::DUPLICATE_KEY,
                        &self.src.name,
                        key_pos,
                        format!("duplicate key `{k}`"),
                    )
                    .with_end(crate::yaml::key_end(&self.src.text, key_pos, &k))
                    .with_found(format!(
                        "`{k}` already defined at line {}:{}",
                        first.line, first.col
                    ))
                    .with_hint("remove one of the two; JSON tools disagree on which one wins"),
                );
            }
        }
    }
}

fn scalar(value: NodeValue, start: Pos, end: Pos, quoted: bool) -> Node {
    Node {
        value,
        start,
        end,
        style: Some(if quoted {
            ScalarStyle::DoubleQuoted
        } else {
            ScalarStyle::Plain
        }),
        flow: false,
    }
}

fn collection(value: NodeValue, start: Pos, end: Pos) -> Node {
    Node {
        value,
        start,
        end,
        style: None,
        flow: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Parsed {
        parse(&Source::from_text("t.json", text))
    }

    #[test]
    fn positions_types_and_unicode() {
        let parsed = p(
            "{\n  \"é\": {\"b\": [1, -2.5, true, null, \"x\\\"y\"]},\n\t\"c\": 9007199254740993\n}\n",
        );
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let root = &parsed.documents[0].root;
        assert_eq!(
            root.to_json(),
            serde_json::json!({"é": {"b": [1, -2.5, true, null, "x\"y"]}, "c": 9007199254740993_i64})
        );
        let (b, key) = root.lookup("/é/b").unwrap();
        assert_eq!(key.map(|k| (k.line, k.col)), Some((2, 9)));
        assert_eq!((b.start.line, b.start.col), (2, 14));
        let (s, _) = root.lookup("/é/b/4").unwrap();
        assert_eq!(&parsed_text()[s.start.offset..s.end.offset], "\"x\\\"y\"");
        let (c, key) = root.lookup("/c").unwrap();
        assert_eq!(key.map(|k| (k.line, k.col)), Some((3, 2)));
        assert_eq!((c.start.col, c.end.col), (7, 23));
    }

    fn parsed_text() -> &'static str {
        "{\n  \"é\": {\"b\": [1, -2.5, true, null, \"x\\\"y\"]},\n\t\"c\": 9007199254740993\n}\n"
    }

    #[test]
    fn trailing_comma_and_comments_are_errors_at_their_position() {
        // The caret is on the comma (line 2), not on the bracket serde_json stopped at.
        let parsed = p("{\n  \"é\": 1,\n}\n");
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line, d.column), (codes::SYNTAX, 2, 9));
        assert_eq!((d.end_line, d.end_column), (2, 10), "{d:?}");
        assert_eq!(d.message, "invalid JSON: a trailing comma");
        assert!(
            d.hint.as_deref().unwrap().contains("trailing comma"),
            "{d:?}"
        );
        assert!(parsed.documents.is_empty());
        let parsed = p("{\"é\": 1, // note\n\"b\": 2}");
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line, d.column), (codes::SYNTAX, 1, 10));
        assert!(d.hint.as_deref().unwrap().contains("no comments"), "{d:?}");
        // YAML-only syntax is not JSON.
        assert!(!p("a: 1\n").diagnostics.is_empty());
    }

    #[test]
    fn duplicates_depth_and_empty() {
        let parsed = p("{\"a\": 1, \"a\": 2}");
        assert_eq!(parsed.diagnostics[0].code, codes::DUPLICATE_KEY);
        assert_eq!(
            parsed.documents[0].root.to_json(),
            serde_json::json!({"a": 1})
        );
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(p(&deep).diagnostics[0].code, codes::TOO_DEEP);
        let deeper = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(p(&deeper).diagnostics[0].code, codes::TOO_DEEP);
        let empty = p(" \n");
        assert!(empty.documents.is_empty() && empty.diagnostics.is_empty());
    }
}
