//! A small YAML reader for trust policies: saphyr-parser's events into a tree where every node
//! keeps its line and column, so that an error says `file:line:column`. Policies are small
//! and security-relevant, so it is strict: one document, no anchors or aliases, no duplicate
//! keys, bounded size and depth (nothing recurses on the input).

use saphyr_parser::{Event, Parser};

/// The largest policy read (bytes).
pub const MAX_BYTES: usize = 1 << 20;
const MAX_DEPTH: usize = 32;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text (YAML 1.2 core types are read by the caller, which knows the field).
    Scalar(String),
    Seq(Vec<Node>),
    /// Entries in document order: key, key position, value.
    Map(Vec<(String, Pos, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

enum Frame {
    Seq(Vec<Node>, Pos),
    Map(Vec<(String, Pos, Node)>, Pos, Option<(String, Pos)>),
}

/// Parses one YAML document; the error is `(position, message)`.
pub fn parse(text: &str) -> Result<Node, (Pos, String)> {
    if text.len() > MAX_BYTES {
        return Err((
            Pos { line: 1, col: 1 },
            format!("the file is larger than {MAX_BYTES} bytes"),
        ));
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            (
                Pos {
                    line: m.line(),
                    col: m.col() + 1,
                },
                e.info().to_string(),
            )
        })?;
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        let node = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                if root.is_some() {
                    return Err((
                        pos,
                        "a trust policy is one YAML document; remove the `---` after the first"
                            .into(),
                    ));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err((
                    pos,
                    "aliases (`*name`) are not allowed in a trust policy".into(),
                ));
            }
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                return Err((
                    pos,
                    "anchors (`&name`) are not allowed in a trust policy".into(),
                ));
            }
            Event::Scalar(text, _, _, _) => Node {
                value: Value::Scalar(text.into_owned()),
                pos,
            },
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err((pos, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                if matches!(stack.last(), Some(Frame::Map(_, _, None))) {
                    return Err((pos, "a mapping key must be a plain string".into()));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), pos)
                } else {
                    Frame::Map(Vec::new(), pos, None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items, p)) => Node {
                    value: Value::Seq(items),
                    pos: p,
                },
                Some(Frame::Map(entries, p, _)) => Node {
                    value: Value::Map(entries),
                    pos: p,
                },
                None => continue,
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(entries, _, key)) => match key.take() {
                None => {
                    let Value::Scalar(k) = node.value else {
                        return Err((node.pos, "a mapping key must be a plain string".into()));
                    };
                    if entries.iter().any(|(e, _, _)| *e == k) {
                        return Err((node.pos, format!("the key `{k}` appears twice")));
                    }
                    *key = Some((k, node.pos));
                }
                Some((k, kp)) => entries.push((k, kp, node)),
            },
        }
    }
    root.ok_or((Pos { line: 1, col: 1 }, "the file is empty".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_refusals() {
        let n = parse("a: 1\nb:\n  - x\n  - y: z\n").unwrap();
        let Value::Map(entries) = &n.value else {
            panic!()
        };
        assert_eq!(entries[1].1, Pos { line: 2, col: 1 });
        let Value::Seq(items) = &entries[1].2.value else {
            panic!()
        };
        assert_eq!(items[1].pos.line, 4);
        for (text, want) in [
            ("a: 1\na: 2\n", "twice"),
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: 1\n---\nb: 2\n", "one YAML document"),
            ("a: [1\n", ""),
            ("", "empty"),
        ] {
            let (_, msg) = parse(text).unwrap_err();
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
    }
}
