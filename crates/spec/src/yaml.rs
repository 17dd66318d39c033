//! YAML into a tree that remembers where every node came from (`.json` files go to the strict
//! JSON reader in `json`, which builds the same tree). Built on saphyr-parser's event stream
//! with an explicit stack, so that depth, size and alias expansion are bounded and nothing
//! recurses on user input.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use crate::diag::{Diagnostic, codes};
use crate::source::Source;

/// Deeper documents are refused: specs nest about 7 levels; the limit also bounds every
/// recursive walk done later (conversion, schema validation, rules).
pub const MAX_DEPTH: usize = 64;
/// Nodes per document, counting alias expansions: this is what stops "billion laughs".
pub const MAX_NODES: usize = 200_000;
/// Bytes of scalar text per document, counting alias expansions. The node bound alone lets a
/// 1 MB scalar referenced 5,000 times become 5 GB; this keeps the expanded tree within a few
/// times the 16 MiB input limit.
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;

/// A position in the source: 1-based line and column (in characters) and the byte offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub start: Pos,
    /// Exclusive end. For block collections this is where the next token starts.
    pub end: Pos,
    /// How a scalar was written; `None` for collections.
    pub style: Option<ScalarStyle>,
    /// Whether a collection was written in flow style (`{}` / `[]`).
    pub flow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// One YAML document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    pub index: usize,
    pub root: Node,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Converts the parser's character indices into byte offsets.
struct Offsets {
    /// Byte offset of every character, only built when the text is not ASCII.
    table: Option<Vec<usize>>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        Offsets {
            table,
            len: text.len(),
        }
    }
    fn pos(&self, m: &Marker) -> Pos {
        let offset = match &self.table {
            None => m.index().min(self.len),
            Some(t) => t.get(m.index()).copied().unwrap_or(self.len),
        };
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
            offset,
        }
    }
}

enum KeyState {
    Empty,
    Key(String, Pos),
    /// The key was not usable (complex key, duplicate); its value is parsed and dropped.
    Skip,
    /// A collection is being parsed as a key.
    Complex,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: Pos,
        anchor: usize,
        flow: bool,
    },
    Map {
        entries: Vec<Entry>,
        start: Pos,
        anchor: usize,
        flow: bool,
        key: KeyState,
        seen: Option<HashSet<String>>,
    },
}

struct Builder<'a> {
    src: &'a Source,
    offsets: Offsets,
    stack: Vec<Frame>,
    /// Anchored nodes with their size in nodes and in scalar bytes.
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    bytes: usize,
    /// What the anchored copies hold, bounded like the tree.
    anchored_nodes: usize,
    anchored_bytes: usize,
    root: Option<Node>,
    doc_index: usize,
    diagnostics: Vec<Diagnostic>,
}

/// The hint for a YAML 1.1 merge key, which YAML 1.2 reads as an ordinary key named `<<`.
pub const MERGE_KEY_HINT: &str =
    "YAML 1.2 has no merge keys (`<<` is YAML 1.1): write the keys out";

const TAB_HINT: &str = "YAML forbids tabs for indentation; use spaces";

/// Parses every document of the source (a `.json` file as JSON). Problems become diagnostics;
/// parsing stops at the first syntax error or limit, keeping the documents completed before it.
pub fn parse(src: &Source) -> Parsed {
    if src.is_json() {
        return crate::json::parse(src);
    }
    if let Some(d) = control_character(src) {
        return Parsed {
            documents: Vec::new(),
            diagnostics: vec![d],
        };
    }
    let mut b = Builder {
        src,
        offsets: Offsets::new(&src.text),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        anchored_nodes: 0,
        anchored_bytes: 0,
        root: None,
        doc_index: 0,
        diagnostics: Vec::new(),
    };
    let mut documents = Vec::new();
    let mut parser = Parser::new_from_str(&src.text);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                let pos = b.offsets.pos(e.marker());
                let d = if e.info().contains("recursion limit") {
                    Diagnostic::new(
                        codes::TOO_DEEP,
                        &src.name,
                        pos,
                        format!("nesting is too deep ({})", e.info()),
                    )
                } else if let Some(tab) = indentation_tab(
                    &src.text,
                    pos.line,
                    // A tab on the next line is the cause only when the parser says so.
                    e.info().contains("tab"),
                ) {
                    // The parser often trips over a tab a line early or late: point at the tab.
                    Diagnostic::new(
                        codes::SYNTAX,
                        &src.name,
                        tab,
                        "invalid YAML: a tab in the indentation",
                    )
                    .with_end(Pos {
                        col: tab.col + 1,
                        offset: tab.offset + 1,
                        ..tab
                    })
                    .with_found(format!(
                        "the parser stopped at {}:{}: {}",
                        pos.line,
                        pos.col,
                        e.info()
                    ))
                    .with_hint(TAB_HINT)
                } else {
                    let d = Diagnostic::new(
                        codes::SYNTAX,
                        &src.name,
                        pos,
                        format!("invalid YAML: {}", e.info()),
                    );
                    if e.info().contains("tab") {
                        d.with_hint(TAB_HINT)
                    } else {
                        d
                    }
                };
                b.diagnostics.push(d.with_document(b.doc_index));
                break;
            }
        };
        let start = b.offsets.pos(&span.start);
        let end = b.offsets.pos(&span.end);
        let ok = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => true,
            Event::DocumentStart(_) => {
                b.stack.clear();
                b.anchors.clear();
                b.nodes = 0;
                b.bytes = 0;
                b.anchored_nodes = 0;
                b.anchored_bytes = 0;
                b.root = None;
                true
            }
            Event::DocumentEnd => {
                let root = b.root.take().unwrap_or(Node {
                    value: NodeValue::Null,
                    start,
                    end,
                    style: None,
                    flow: false,
                });
                documents.push(Document {
                    index: b.doc_index,
                    root,
                });
                b.doc_index += 1;
                true
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.scalar(text, style, anchor, tag, start, end)
            }
            Event::SequenceStart(anchor, tag) => b.open(false, anchor, tag, start, span.start),
            Event::MappingStart(anchor, tag) => b.open(true, anchor, tag, start, span.start),
            Event::SequenceEnd | Event::MappingEnd => b.close(end),
            Event::Alias(id) => b.alias(id, start),
        };
        if !ok {
            break;
        }
    }
    Parsed {
        documents,
        diagnostics: b.diagnostics,
    }
}

impl Builder<'_> {
    fn diag(&mut self, code: &'static str, pos: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::new(code, &self.src.name, pos, msg).with_document(self.doc_index));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.diag(
                codes::ALIAS_LIMIT,
                pos,
                format!("document expands to more than {MAX_NODES} nodes"),
            )
            .hint = Some(
                "aliases that expand exponentially (an alias bomb) or a data file, not a spec: a spec has a few hundred nodes"
                    .into(),
            );
            return false;
        }
        true
    }

    /// Counts scalar text; `alias` is true when the bytes come from expanding an alias.
    fn count_bytes(&mut self, n: usize, pos: Pos, alias: bool) -> bool {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > MAX_EXPANDED_BYTES {
            let limit = MAX_EXPANDED_BYTES / (1024 * 1024);
            let msg = if alias {
                format!(
                    "the alias at {}:{} expands the document past {limit} MiB of scalar text (the expansion limit)",
                    pos.line, pos.col
                )
            } else {
                format!(
                    "the document holds more than {limit} MiB of scalar text (the expansion limit)"
                )
            };
            let d = self.diag(codes::ALIAS_LIMIT, pos, msg);
            d.found = Some(format!(
                "more than {} bytes after expanding aliases",
                MAX_EXPANDED_BYTES
            ));
            d.hint = Some(
                "an alias repeating a large value (an alias bomb) or a data file, not a spec: write the value once"
                    .into(),
            );
            return false;
        }
        true
    }

    fn tag_ok(&mut self, tag: &Option<Cow<'_, Tag>>, pos: Pos) {
        if let Some(t) = tag
            && !t.is_yaml_core_schema()
        {
            let shown = t.to_string();
            self.diag(
                codes::UNSUPPORTED_YAML,
                pos,
                format!("unsupported YAML tag `{shown}`"),
            )
            .hint = Some("remove the tag; ModelSpec documents are plain data".into());
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        start: Pos,
        end: Pos,
    ) -> bool {
        if !self.count(1, start) || !self.count_bytes(text.len(), start, false) {
            return false;
        }
        // A scalar in key position is taken verbatim: `1:` and `true:` are the keys "1" and "true".
        if let Some(Frame::Map {
            key: key @ KeyState::Empty,
            ..
        }) = self.stack.last_mut()
        {
            if style == ScalarStyle::Plain && text == "<<" {
                // YAML 1.1's merge key; in 1.2 an ordinary key, which is never what was meant.
                *key = KeyState::Skip;
                self.diag(
                    codes::UNSUPPORTED_YAML,
                    start,
                    "merge key `<<` is not supported",
                )
                .hint = Some(MERGE_KEY_HINT.into());
                let last = self.diagnostics.len() - 1;
                self.diagnostics[last].set_end(Pos {
                    col: start.col + 2,
                    offset: start.offset + 2,
                    ..start
                });
                return true;
            }
            *key = KeyState::Key(text.into_owned(), start);
            return true;
        }
        self.tag_ok(&tag, start);
        let end = match style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                quoted_end(&self.src.text, start, style == ScalarStyle::DoubleQuoted).unwrap_or(end)
            }
            _ => end,
        };
        let value = self.resolve(&text, style, tag.as_deref(), start);
        self.complete(
            Node {
                value,
                start,
                end,
                style: Some(style),
                flow: false,
            },
            anchor,
        )
    }

    /// YAML 1.2 core schema resolution of a scalar.
    fn resolve(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> NodeValue {
        let forced = tag
            .filter(|t| t.is_yaml_core_schema())
            .map(|t| t.suffix.as_str());
        if forced == Some("str") || (forced.is_none() && style != ScalarStyle::Plain) {
            return NodeValue::Str(text.to_owned());
        }
        let v = resolve_plain(text);
        if let NodeValue::Float(f) = v
            && !f.is_finite()
        {
            self.diag(
                codes::UNSUPPORTED_YAML,
                pos,
                format!("`{text}` is not a finite number"),
            )
            .hint = Some("JSON has no infinity or NaN; use a finite number".into());
            return NodeValue::Null;
        }
        match forced {
            Some("int") if !matches!(v, NodeValue::Int(_)) => {
                self.diag(
                    codes::UNSUPPORTED_YAML,
                    pos,
                    format!("`{text}` is tagged !!int but is not an integer"),
                );
                NodeValue::Str(text.to_owned())
            }
            Some("float") => match v {
                NodeValue::Int(i) => NodeValue::Float(i as f64),
                NodeValue::Float(_) => v,
                _ => {
                    self.diag(
                        codes::UNSUPPORTED_YAML,
                        pos,
                        format!("`{text}` is tagged !!float but is not a number"),
                    );
                    NodeValue::Str(text.to_owned())
                }
            },
            _ => v,
        }
    }

    fn open(
        &mut self,
        map: bool,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        start: Pos,
        marker: Marker,
    ) -> bool {
        if !self.count(1, start) {
            return false;
        }
        self.tag_ok(&tag, start);
        if self.stack.len() >= MAX_DEPTH {
            self.diag(
                codes::TOO_DEEP,
                start,
                format!("nesting is deeper than {MAX_DEPTH} levels"),
            )
            .hint = Some(
                "ModelSpec documents nest about 8 levels deep; this input is not a spec".into(),
            );
            return false;
        }
        if let Some(Frame::Map {
            key: key @ KeyState::Empty,
            ..
        }) = self.stack.last_mut()
        {
            *key = KeyState::Complex;
            self.diag(
                codes::UNSUPPORTED_YAML,
                start,
                "a mapping key must be a plain string, not a collection",
            );
        }
        // Flow collections start with their bracket; block ones start at their first token.
        let flow = self
            .src
            .text
            .get(start.offset..)
            .is_some_and(|t| t.starts_with(['{', '[']));
        let _ = marker;
        self.stack.push(if map {
            Frame::Map {
                entries: Vec::new(),
                start,
                anchor,
                flow,
                key: KeyState::Empty,
                seen: None,
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                start,
                anchor,
                flow,
            }
        });
        true
    }

    fn close(&mut self, end: Pos) -> bool {
        let Some(frame) = self.stack.pop() else {
            return true;
        };
        let (node, anchor) = match frame {
            Frame::Seq {
                items,
                start,
                anchor,
                flow,
            } => (
                Node {
                    value: NodeValue::Seq(items),
                    start,
                    end,
                    style: None,
                    flow,
                },
                anchor,
            ),
            Frame::Map {
                entries,
                start,
                anchor,
                flow,
                key,
                ..
            } => {
                if let KeyState::Key(k, pos) = key {
                    // Cannot happen with a conforming parser (it emits an empty value), but a
                    // dangling key must not vanish silently.
                    self.diag(codes::SYNTAX, pos, format!("key `{k}` has no value"));
                }
                (
                    Node {
                        value: NodeValue::Map(entries),
                        start,
                        end,
                        style: None,
                        flow,
                    },
                    anchor,
                )
            }
        };
        self.complete(node, anchor)
    }

    fn alias(&mut self, id: usize, start: Pos) -> bool {
        let Some(&(_, size, bytes)) = self.anchors.get(&id) else {
            self.diag(codes::SYNTAX, start, "alias refers to an unknown anchor");
            return true;
        };
        // Both bounds are checked before the copy is made.
        if !self.count(size, start) || !self.count_bytes(bytes, start, true) {
            return false;
        }
        let node = self.anchors[&id].0.clone();
        if let Some(Frame::Map {
            key: key @ KeyState::Empty,
            ..
        }) = self.stack.last_mut()
        {
            *key = match &node.value {
                NodeValue::Str(s) => KeyState::Key(s.clone(), start),
                _ => KeyState::Skip,
            };
            return true;
        }
        self.complete(node, 0)
    }

    /// Attaches a finished node to its parent; false when keeping an anchored copy of it would
    /// cross the bounds.
    fn complete(&mut self, node: Node, anchor: usize) -> bool {
        if anchor != 0 {
            let (nodes, bytes) = node_size(&node);
            // Each anchor keeps a copy, and anchors nest: `&a {b: &b {c: &c [...]}}` holds the
            // innermost value three times. The copies are bounded like the tree itself.
            self.anchored_nodes = self.anchored_nodes.saturating_add(nodes);
            self.anchored_bytes = self.anchored_bytes.saturating_add(bytes);
            if self.anchored_nodes > MAX_NODES || self.anchored_bytes > MAX_EXPANDED_BYTES {
                let limit = MAX_EXPANDED_BYTES / (1024 * 1024);
                self.diag(
                    codes::ALIAS_LIMIT,
                    node.start,
                    format!("anchored values hold more than {MAX_NODES} nodes or {limit} MiB of scalar text (the expansion limit)"),
                )
                .hint = Some("anchors nested inside anchored values copy them again: anchor the small values only".into());
                return false;
            }
            self.anchors.insert(anchor, (node.clone(), nodes, bytes));
        }
        let name = self.src.name.clone();
        let doc = self.doc_index;
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match std::mem::replace(key, KeyState::Empty) {
                KeyState::Empty | KeyState::Skip => {}
                KeyState::Complex => *key = KeyState::Skip,
                KeyState::Key(k, key_pos) => {
                    let first = if seen.is_none() && entries.len() < 16 {
                        entries.iter().find(|e| e.key == k).map(|e| e.key_pos)
                    } else {
                        let set = seen
                            .get_or_insert_with(|| entries.iter().map(|e| e.key.clone()).collect());
                        if set.insert(k.clone()) {
                            None
                        } else {
                            entries.iter().find(|e| e.key == k).map(|e| e.key_pos)
                        }
                    };
                    match first {
                        Some(first) => self.diagnostics.push(
                            Diagnostic::new(
                                codes::DUPLICATE_KEY,
                                &name,
                                key_pos,
                                format!("duplicate key `{k}`"),
                            )
                            .with_end(key_end(&self.src.text, key_pos, &k))
                            .with_document(doc)
                            .with_found(format!(
                                "`{k}` already defined at line {}:{}",
                                first.line, first.col
                            ))
                            .with_hint(
                                "remove one of the two; YAML tools disagree on which one wins",
                            ),
                        ),
                        None => entries.push(Entry {
                            key: k,
                            key_pos,
                            value: node,
                        }),
                    }
                }
            },
        }
        true
    }
}

/// YAML's printable characters (c-printable): tab, line feed, carriage return, and everything
/// but the C0 and C1 control characters, DEL, and U+FFFE/U+FFFF (U+0085 NEL is allowed).
fn yaml_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// The first character YAML does not allow in a stream, as a finding at its line:column.
fn control_character(src: &Source) -> Option<Diagnostic> {
    let (offset, c) = src.text.char_indices().find(|&(_, c)| !yaml_printable(c))?;
    let before = &src.text[..offset];
    let line = u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX);
    let pos = Pos { line, col, offset };
    let code = u32::from(c);
    Some(
        Diagnostic::new(
            codes::SYNTAX,
            &src.name,
            pos,
            format!("invalid YAML: control character U+{code:04X} is not allowed"),
        )
        .with_end(Pos {
            col: col + 1,
            offset: offset + c.len_utf8(),
            ..pos
        })
        .with_found(format!("U+{code:04X} at {line}:{col}"))
        .with_hint(format!(
            "YAML allows only tab, line feed and carriage return among control characters: remove it, or write it escaped in a double-quoted string (\"\\u{code:04X}\")"
        )),
    )
}

/// The tab in the indentation of line `line`, or of the next one when `next` (a parser that
/// stops at the end of a line has already seen the tab that starts the next one).
fn indentation_tab(text: &str, line: u32, next: bool) -> Option<Pos> {
    let first = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i >= first {
            let indent = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
            if let Some(t) = indent.find('\t') {
                return Some(Pos {
                    line: u32::try_from(i + 1).ok()?,
                    col: u32::try_from(t + 1).ok()?,
                    offset: offset + t,
                });
            }
            if i > first || !next {
                return None;
            }
        }
        offset += l.len();
    }
    None
}

/// The parser's span of a quoted scalar runs on over trailing blanks and comments; the scalar
/// really ends at its closing quote.
fn quoted_end(text: &str, start: Pos, double: bool) -> Option<Pos> {
    let body = text.get(start.offset..)?;
    let quote = if double { '"' } else { '\'' };
    let mut chars = body.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if double && c == '\\' {
            chars.next();
        } else if c == quote {
            if !double && body[i + 1..].starts_with('\'') {
                chars.next();
                continue;
            }
            let inner = &body[..=i];
            let newlines = inner.matches('\n').count();
            let col = match inner.rfind('\n') {
                Some(nl) => inner[nl + 1..].chars().count() + 1,
                None => start.col as usize + inner.chars().count(),
            };
            return Some(Pos {
                line: start.line + u32::try_from(newlines).ok()?,
                col: u32::try_from(col).ok()?,
                offset: start.offset + i + 1,
            });
        }
    }
    None
}

/// Nodes and scalar bytes (keys included) of a subtree, counted as the builder counts them.
fn node_size(node: &Node) -> (usize, usize) {
    let (mut n, mut bytes) = (0usize, 0usize);
    let mut todo = vec![node];
    while let Some(x) = todo.pop() {
        n += 1;
        match &x.value {
            NodeValue::Seq(items) => todo.extend(items),
            NodeValue::Map(entries) => {
                for e in entries {
                    n += 1;
                    bytes = bytes.saturating_add(e.key.len());
                    todo.push(&e.value);
                }
            }
            NodeValue::Str(s) => bytes = bytes.saturating_add(s.len()),
            // Numbers and booleans were short scalars; their text is not kept.
            _ => bytes = bytes.saturating_add(1),
        }
    }
    (n, bytes)
}

fn resolve_plain(text: &str) -> NodeValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeValue::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeValue::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeValue::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            Ok(i) => NodeValue::Int(i),
            Err(_) => text
                .parse::<f64>()
                .map_or_else(|_| NodeValue::Str(text.to_owned()), NodeValue::Float),
        };
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return NodeValue::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return NodeValue::Int(i);
    }
    if is_core_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return NodeValue::Float(f);
    }
    NodeValue::Str(text.to_owned())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(text: &str) -> bool {
    let b = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

impl Node {
    /// The data as a JSON value (what the schema and the rules see).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::Number((*i).into()),
            NodeValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => {
                let mut m = Map::with_capacity(entries.len());
                for e in entries {
                    m.insert(e.key.clone(), e.value.to_json());
                }
                Value::Object(m)
            }
        }
    }

    /// The node at a JSON pointer, and the position of its key when it is a mapping value.
    pub fn lookup(&self, pointer: &str) -> Option<(&Node, Option<Pos>)> {
        let mut node = self;
        let mut key_pos = None;
        if pointer.is_empty() {
            return Some((node, None));
        }
        for raw in pointer.strip_prefix('/')?.split('/') {
            let seg = unescape_pointer(raw);
            match &node.value {
                NodeValue::Map(entries) => {
                    let e = entries.iter().find(|e| e.key == seg)?;
                    key_pos = Some(e.key_pos);
                    node = &e.value;
                }
                NodeValue::Seq(items) => {
                    node = items.get(seg.parse::<usize>().ok()?)?;
                    key_pos = None;
                }
                _ => return None,
            }
        }
        Some((node, key_pos))
    }

    /// The deepest existing node along a pointer (for findings about missing children).
    pub fn nearest(&self, pointer: &str) -> &Node {
        let mut node = self;
        for raw in pointer
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
        {
            let seg = unescape_pointer(raw);
            let next = match &node.value {
                NodeValue::Map(entries) => entries.iter().find(|e| e.key == seg).map(|e| &e.value),
                NodeValue::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Where the node's first line of text ends: the whole of a one-line scalar or flow
    /// collection, else the rest of its first line (for underlining it in reports).
    pub fn token_end(&self, text: &str) -> Pos {
        if self.end.line == self.start.line && self.end.offset > self.start.offset {
            return self.end;
        }
        first_line_end(text, self.start)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }
}

impl Entry {
    /// Where the key's text ends (after its closing quote when quoted).
    pub fn key_end(&self, text: &str) -> Pos {
        key_end(text, self.key_pos, &self.key)
    }
}

/// Where a mapping key written at `pos` ends.
pub fn key_end(text: &str, pos: Pos, key: &str) -> Pos {
    match text.get(pos.offset..).and_then(|t| t.chars().next()) {
        Some(q @ ('"' | '\'')) => quoted_end(text, pos, q == '"').unwrap_or(pos),
        _ => Pos {
            line: pos.line,
            col: pos.col + u32::try_from(key.chars().count()).unwrap_or(0),
            offset: pos.offset + key.len(),
        },
    }
}

/// The end of the text on `start`'s line, without trailing blanks or an end-of-line comment.
fn first_line_end(text: &str, start: Pos) -> Pos {
    let rest = text.get(start.offset..).unwrap_or_default();
    let line = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
    let line = match line.find(" #") {
        Some(i) if !line.starts_with(['"', '\'']) => &line[..i],
        _ => line,
    };
    let line = line.trim_end();
    Pos {
        line: start.line,
        col: start.col + u32::try_from(line.chars().count()).unwrap_or(0),
        offset: start.offset + line.len(),
    }
}

pub fn unescape_pointer(seg: &str) -> Cow<'_, str> {
    if seg.contains('~') {
        Cow::Owned(seg.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(seg)
    }
}

/// Escapes one JSON pointer segment.
pub fn escape_pointer(seg: &str) -> Cow<'_, str> {
    if seg.contains(['~', '/']) {
        Cow::Owned(seg.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Parsed {
        parse(&Source::from_text("t.yaml", text))
    }

    #[test]
    fn positions_and_types() {
        let parsed = p("a: 1\nb:\n  c: [x, 'y', 2.5, true, ~]\n");
        assert!(parsed.diagnostics.is_empty());
        let root = &parsed.documents[0].root;
        let (c, key) = root.lookup("/b/c").unwrap();
        assert_eq!(key.map(|k| (k.line, k.col)), Some((3, 3)));
        assert_eq!((c.start.line, c.start.col), (3, 6));
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": 1, "b": {"c": ["x", "y", 2.5, true, null]}})
        );
    }

    #[test]
    fn quoted_scalars_end_at_their_quote() {
        let text = "a: \"x\\\"y\" # c\nb: 'it''s'  # d\n";
        let parsed = p(text);
        let (a, _) = parsed.documents[0].root.lookup("/a").unwrap();
        assert_eq!(&text[a.start.offset..a.end.offset], "\"x\\\"y\"");
        assert_eq!(a.end.col, 10);
        let (b, _) = parsed.documents[0].root.lookup("/b").unwrap();
        assert_eq!(&text[b.start.offset..b.end.offset], "'it''s'");
    }

    #[test]
    fn non_ascii_offsets() {
        let parsed = p("a: \"é\"\nb: 2\n");
        let (b, _) = parsed.documents[0].root.lookup("/b").unwrap();
        assert_eq!(&"a: \"é\"\nb: 2\n"[b.start.offset..b.start.offset + 1], "2");
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let parsed = p("a: 1\nb: 2\na: 3\n");
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.diagnostics[0].code, codes::DUPLICATE_KEY);
        assert_eq!(parsed.diagnostics[0].line, 3);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "[".repeat(100_000);
        assert!(
            p(&deep)
                .diagnostics
                .iter()
                .any(|d| d.code == codes::TOO_DEEP)
        );
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        assert!(
            p(&block)
                .diagnostics
                .iter()
                .any(|d| d.code == codes::TOO_DEEP)
        );
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in "bcdefghij".chars() {
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let parsed = p(&bomb);
        assert!(
            parsed
                .diagnostics
                .iter()
                .any(|d| d.code == codes::ALIAS_LIMIT)
        );
        assert!(parsed.documents.is_empty());
    }

    #[test]
    fn alias_expansion_is_bounded_in_bytes() {
        // A 1 MB scalar referenced 5,000 times: few nodes, 5 GB if expanded.
        let mut doc = format!("big: &big \"{}\"\nmany:\n", "x".repeat(1 << 20));
        for _ in 0..5_000 {
            doc.push_str("  - *big\n");
        }
        let parsed = p(&doc);
        assert!(parsed.documents.is_empty());
        let [d] = parsed.diagnostics.as_slice() else {
            panic!("{:?}", parsed.diagnostics);
        };
        assert_eq!(d.code, codes::ALIAS_LIMIT);
        assert!(d.message.contains("64 MiB"), "{}", d.message);
        // The finding points at the alias that crossed the limit, and says so.
        assert!(d.line > 3, "{d:?}");
        assert!(
            d.message
                .contains(&format!("alias at {}:{}", d.line, d.column)),
            "{}",
            d.message
        );
        assert!(
            d.hint
                .as_deref()
                .is_some_and(|h| h.contains("write the value once"))
        );
        // Well below the limit, aliases of a large value are fine.
        let ok = format!(
            "big: &big \"{}\"\nmany: [*big, *big]\n",
            "x".repeat(1 << 20)
        );
        assert!(p(&ok).diagnostics.is_empty());
    }

    #[test]
    fn nested_anchors_are_bounded() {
        // 41 MiB in the tree, but every level anchors a copy of everything below it.
        let mut doc = format!("big: &big \"{}\"\nx:\n", "x".repeat(1 << 20));
        for level in 0..30 {
            doc.push_str(&format!("{}l{level}: &l{level}\n", "  ".repeat(level + 1)));
        }
        doc.push_str(&format!("{}leaf: &leaf [", "  ".repeat(31)));
        doc.push_str(&vec!["*big"; 40].join(", "));
        doc.push_str("]\n");
        let parsed = p(&doc);
        assert!(parsed.documents.is_empty());
        let [d] = parsed.diagnostics.as_slice() else {
            panic!("{:?}", parsed.diagnostics);
        };
        assert_eq!(d.code, codes::ALIAS_LIMIT);
        assert!(d.message.contains("anchored values"), "{}", d.message);
    }

    #[test]
    fn control_characters_are_rejected_at_their_position() {
        let parsed = p("a: 1\nb: x\u{7}y\n");
        let [d] = parsed.diagnostics.as_slice() else {
            panic!("{:?}", parsed.diagnostics);
        };
        assert_eq!((d.code, d.line, d.column), (codes::SYNTAX, 2, 5));
        assert!(d.message.contains("U+0007"), "{}", d.message);
        // C1 controls and DEL too; tab, CR, LF, NEL and escapes are fine.
        assert!(!p("a: \u{9b}\n").diagnostics.is_empty());
        assert!(!p("a: \u{7f}\n").diagnostics.is_empty());
        assert!(
            p("a: b\t\r\nc: \"\\u0007\"\nd: x\u{85}\n")
                .diagnostics
                .is_empty()
        );
    }

    #[test]
    fn tab_indentation_is_reported_on_its_own_line() {
        // saphyr stops at the line before the tab here.
        let parsed = p("a:\n  - x\n\t- y\n");
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line, d.column), (codes::SYNTAX, 3, 1));
        assert_eq!(
            d.hint.as_deref(),
            Some("YAML forbids tabs for indentation; use spaces")
        );
        let parsed = p("a:\n  b: 1\n  c:\n  \td: 2\n");
        let d = &parsed.diagnostics[0];
        assert_eq!((d.line, d.column), (4, 3), "{d:?}");
        // A tab in a block scalar's text after an unrelated error is not blamed.
        let parsed = p("a: [1\nb: |\n  \tx\n");
        let d = &parsed.diagnostics[0];
        assert!(!d.message.contains("tab"), "{d:?}");
    }

    #[test]
    fn merge_keys_get_a_hint() {
        let parsed = p("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n");
        let [d] = parsed.diagnostics.as_slice() else {
            panic!("{:?}", parsed.diagnostics);
        };
        assert_eq!((d.code, d.line, d.column), (codes::UNSUPPORTED_YAML, 3, 3));
        assert!(d.hint.as_deref().unwrap().contains("no merge keys"));
        // A quoted "<<" is an ordinary key.
        assert!(p("'<<': 1\n").diagnostics.is_empty());
    }

    #[test]
    fn core_schema_scalars() {
        let parsed = p("[1, -2, 0x1f, 1e3, .5, yes, '3', 1.0.0, null]");
        assert_eq!(
            parsed.documents[0].root.to_json(),
            serde_json::json!([1, -2, 31, 1000.0, 0.5, "yes", "3", "1.0.0", null])
        );
    }

    #[test]
    fn multi_document_streams() {
        let parsed = p("a: 1\n---\nb: 2\n");
        assert_eq!(parsed.documents.len(), 2);
        assert_eq!(parsed.documents[1].index, 1);
    }
}
