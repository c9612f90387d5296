//! The positioned YAML layer: a node tree with line/column marks and scalar styles.
//!
//! Butane's dialect needs what serde-based YAML crates hide: whether a scalar was quoted (a
//! plain `0644` is octal, a quoted `"0644"` is a string), YAML 1.1 booleans resolved per field,
//! duplicate keys as fatal errors, and anchors kept apart from aliases so that positions stay
//! true to the text. Events come from `saphyr-parser`; resolution into typed values happens in
//! [`super::decode`], driven by the schema. JSON input parses here too (JSON is flow YAML): a
//! document that is strict JSON is read by the faster [`json`] reader into the same tree.

mod json;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};

use super::path::{Path, Seg};
use super::report::Mark;

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'single quoted'`.
    SingleQuoted,
    /// `"double quoted"`.
    DoubleQuoted,
    /// A `|` block.
    Literal,
    /// A `>` block.
    Folded,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar with its text, style and explicit tag (normalized to `!!str` form).
    Scalar {
        /// The scalar's value.
        text: String,
        /// How it was written.
        style: Style,
        /// An explicit tag, core tags as `!!str`.
        tag: Option<String>,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
    /// A reference to an anchored node (see [`Document::anchor`]).
    Alias(usize),
}

/// One key/value pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key node.
    pub key: Node,
    /// The value node.
    pub value: Node,
}

/// A node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The content.
    pub value: Value,
    /// Where the node starts (for block scalars: the `|`/`>` indicator).
    pub mark: Mark,
    /// Length in characters of a one-line scalar, for caret lines (0 otherwise).
    pub span: usize,
}

/// A fatal YAML problem: syntax, or a duplicate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where it was found.
    pub mark: Mark,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "yaml: line {}: {}", self.mark.line, self.message)
    }
}

/// A parsed document: the root node and the anchored nodes that aliases point to.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root; a null scalar for an empty document.
    pub root: Node,
    anchors: HashMap<usize, Node>,
    /// The name an alias gives its anchor, by the anchor's id.
    anchor_names: HashMap<usize, String>,
}

impl Node {
    /// A null scalar at `mark`.
    pub fn null(mark: Mark) -> Self {
        Node { value: Value::Scalar { text: String::new(), style: Style::Plain, tag: None }, mark, span: 0 }
    }

    /// Whether this is a YAML null (`~`, `null`, empty, or tagged `!!null`).
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Scalar { text, style: Style::Plain, tag: None } => {
                matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            Value::Scalar { tag: Some(tag), .. } => tag == "!!null",
            _ => false,
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value for `key` in a mapping (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().rev().find(|e| e.key.as_scalar() == Some(key)).map(|e| &e.value),
            _ => None,
        }
    }

    /// YAML's name for the node's kind, as in `!!str`, `!!seq`, `!!map`.
    pub fn kind_tag(&self) -> String {
        match &self.value {
            Value::Scalar { tag: Some(tag), .. } => tag.clone(),
            Value::Scalar { style: Style::Plain, text, .. } => plain_scalar_tag(text).to_string(),
            Value::Scalar { .. } => "!!str".to_string(),
            Value::Seq(_) => "!!seq".to_string(),
            Value::Map(_) => "!!map".to_string(),
            Value::Alias(_) => "!!alias".to_string(),
        }
    }
}

/// The core-schema tag a plain scalar resolves to.
fn plain_scalar_tag(text: &str) -> &'static str {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        "!!null"
    } else if matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE") {
        "!!bool"
    } else if text.parse::<i64>().is_ok() || text.starts_with("0x") || text.starts_with("0o") {
        "!!int"
    } else if text.parse::<f64>().is_ok() {
        "!!float"
    } else {
        "!!str"
    }
}

impl Document {
    /// The node an alias refers to.
    pub fn anchor(&self, id: usize) -> Option<&Node> {
        self.anchors.get(&id)
    }

    /// The name of the anchor an alias refers to, as the alias spells it.
    pub fn anchor_name(&self, id: usize) -> &str {
        self.anchor_names.get(&id).map_or("", String::as_str)
    }

    /// How many leading steps of `path` exist in the document, following aliases and `<<`
    /// merges (where a value comes from, rather than where it is written).
    pub fn existing_depth(&self, path: &Path) -> usize {
        let mut node = self.resolve(&self.root);
        for (depth, seg) in path.segs().iter().enumerate() {
            match self.child(node, seg) {
                Some(n) => node = self.resolve(n),
                None => return depth,
            }
        }
        path.len()
    }

    fn resolve<'a>(&'a self, node: &'a Node) -> &'a Node {
        match node.value {
            Value::Alias(id) => self.anchor(id).unwrap_or(node),
            _ => node,
        }
    }

    fn child<'a>(&'a self, node: &'a Node, seg: &Seg) -> Option<&'a Node> {
        self.child_merged(node, seg, self.anchors.len())
    }

    /// [`Self::child`] through at most `merges` nested `<<` merges: a chain of merges that does
    /// not loop visits each anchor once at most, and one that loops (an anchor merged into
    /// itself) ends.
    fn child_merged<'a>(&'a self, node: &'a Node, seg: &Seg, merges: usize) -> Option<&'a Node> {
        match (seg, &node.value) {
            (Seg::Key(k), Value::Map(entries)) => {
                let direct = entries.iter().rev().find(|e| e.key.as_scalar() == Some(&**k)).map(|e| &e.value);
                direct.or_else(|| {
                    let merged = entries.iter().filter(|e| e.key.as_scalar() == Some("<<"));
                    let deeper = merges.checked_sub(1)?;
                    merged.filter_map(|e| self.child_merged(self.resolve(&e.value), seg, deeper)).next()
                })
            }
            (Seg::Index(n), Value::Seq(items)) => items.get(*n),
            _ => None,
        }
    }

    /// The node at `path` in the text as written (aliases are not followed), or the deepest
    /// existing ancestor; with `want_key`, the key's position when the last step is a key.
    pub fn locate(&self, path: &Path, want_key: bool) -> &Node {
        let mut node = &self.root;
        let segs = path.segs();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    let found = entries.iter().rev().find(|e| e.key.as_scalar() == Some(&**k));
                    match found {
                        Some(e) if last && want_key => return &e.key,
                        Some(e) => Some(&e.value),
                        None => None,
                    }
                }
                (Seg::Index(n), Value::Seq(items)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }
}

/// Parses the first document of `src`.
pub fn parse(src: &str) -> Result<Document, YamlError> {
    match json::parse(src) {
        Some(doc) => Ok(doc),
        None => parse_yaml(src),
    }
}

/// Parses the first document of `src` with the YAML parser.
fn parse_yaml(src: &str) -> Result<Document, YamlError> {
    let src = &*lone_carriage_returns_as_newlines(src);
    let mut builder =
        Builder { src, len: src.chars().count(), chars: None, anchors: HashMap::new(), anchor_names: HashMap::new() };
    let mut parser = Parser::new_from_str(src);
    let mut root = None;
    while let Some(event) = builder.next(&mut parser)? {
        match event.0 {
            Event::DocumentStart(_) => {
                let (node, _) = builder.node(&mut parser, None)?;
                root = Some(node.unwrap_or_else(|| Node::null(Mark { line: 1, col: 1 })));
                break;
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    let root = root.unwrap_or_else(|| Node::null(Mark { line: 1, col: 1 }));
    Ok(Document { root, anchors: builder.anchors, anchor_names: builder.anchor_names })
}

/// `src` with each lone CR read as the LF it stands for. YAML 1.2 breaks lines at LF, CR LF and
/// a lone CR alike (and reads each as LF in content), as Butane (yaml.v3) does; the scanner
/// reads a lone CR as a line break but does not always count its line, which would put marks
/// lines away from the text. One character for one keeps every index and column.
fn lone_carriage_returns_as_newlines(src: &str) -> Cow<'_, str> {
    if !src.contains('\r') {
        return Cow::Borrowed(src);
    }
    let mut chars = src.chars().peekable();
    let mut out = String::with_capacity(src.len());
    while let Some(c) = chars.next() {
        out.push(if c == '\r' && chars.peek() != Some(&'\n') { '\n' } else { c });
    }
    Cow::Owned(out)
}

type Spanned<'a> = (Event<'a>, Span);

/// Where the input ends: right after the last character of its last line, a final line break
/// (LF or CR LF) not counted. This is the line Butane (yaml.v3) reports an error at the end of
/// input on.
fn end_of_input(src: &str) -> Mark {
    let text = src.strip_suffix('\n').unwrap_or(src);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let last_line = text.rsplit('\n').next().unwrap_or_default();
    Mark { line: text.matches('\n').count() + 1, col: last_line.chars().count() + 1 }
}

struct Builder<'a> {
    src: &'a str,
    /// The number of characters of `src`.
    len: usize,
    chars: Option<Vec<char>>,
    anchors: HashMap<usize, Node>,
    anchor_names: HashMap<usize, String>,
}

/// Whether the node just read ended a collection instead of being a node.
enum Read {
    Node,
    End,
}

impl<'a> Builder<'a> {
    /// The next event, or the syntax error found reading it.
    fn next(&self, parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>) -> Result<Option<Spanned<'a>>, YamlError> {
        match parser.next_event() {
            None => Ok(None),
            Some(Ok(ev)) => Ok(Some(ev)),
            Some(Err(e)) => Err(YamlError { mark: self.error_mark(e.marker()), message: e.info().to_string() }),
        }
    }

    /// Where a syntax error found at `marker`, or a node starting there, is reported. At the end
    /// of the input the parser behaves as if a newline followed and puts an error (or an empty
    /// node it supplies, such as the key of a last `? `) at the start of the line after the last,
    /// which does not exist unless the input ends in a newline; such a mark is put where the
    /// input ends instead, on the line Butane reports.
    fn mark_at(&self, marker: &Marker) -> Mark {
        if marker.index() >= self.len {
            end_of_input(self.src)
        } else {
            Mark { line: marker.line(), col: marker.col() + 1 }
        }
    }

    /// Where a syntax error found at `marker` is reported ([`Self::mark_at`]). Inside a directive
    /// (`%…`) the parser counts an error's column in bytes, not characters: a column past the
    /// end of its line is read as a byte offset into that line.
    fn error_mark(&self, marker: &Marker) -> Mark {
        let mark = self.mark_at(marker);
        let line = self.src.split('\n').nth(mark.line.saturating_sub(1)).unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        let chars = line.chars().count();
        if mark.col <= chars + 1 {
            return mark;
        }
        let before = line.char_indices().take_while(|(at, _)| *at < mark.col - 1).count();
        Mark { col: before.min(chars) + 1, ..mark }
    }

    /// Reads one node; `Ok((None, End))` when a collection end was read instead.
    fn node(
        &mut self,
        parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
        first: Option<Spanned<'a>>,
    ) -> Result<(Option<Node>, Read), YamlError> {
        let (event, span) = match first {
            Some(ev) => ev,
            None => match self.next(parser)? {
                Some(ev) => ev,
                None => return Ok((None, Read::End)),
            },
        };
        let mark = self.mark_at(&span.start);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let style = convert_style(style);
                let mark = if matches!(style, Style::Literal | Style::Folded) {
                    self.block_indicator(span.start.index()).unwrap_or(mark)
                } else {
                    mark
                };
                let one_line = span.start.line() == span.end.line();
                let node = Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        style,
                        tag: tag.map(|t| normalize_tag(&t.handle, &t.suffix)),
                    },
                    mark,
                    span: if one_line { span.end.col().saturating_sub(span.start.col()) } else { 0 },
                };
                (node, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                while let (Some(n), Read::Node) = self.node(parser, None)? {
                    items.push(n);
                }
                (Node { value: Value::Seq(items), mark, span: 0 }, anchor)
            }
            Event::MappingStart(anchor, _) => (self.mapping(parser, mark)?, anchor),
            Event::Alias(id) => {
                let chars = self.chars.get_or_insert_with(|| self.src.chars().collect());
                let spelled = chars.get(span.start.index() + 1..span.end.index()).unwrap_or_default();
                self.anchor_names.entry(id).or_insert_with(|| spelled.iter().collect());
                let node =
                    Node { value: Value::Alias(id), mark, span: span.end.col().saturating_sub(span.start.col()) };
                (node, 0)
            }
            Event::SequenceEnd | Event::MappingEnd | Event::DocumentEnd | Event::StreamEnd => {
                return Ok((None, Read::End));
            }
            _ => return self.node(parser, None),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok((Some(node), Read::Node))
    }

    fn mapping(&mut self, parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>, mark: Mark) -> Result<Node, YamlError> {
        let mut entries: Vec<Entry> = Vec::new();
        while let (Some(key), Read::Node) = self.node(parser, None)? {
            let value = match self.node(parser, None)? {
                (Some(v), Read::Node) => v,
                _ => Node::null(key.mark),
            };
            if let Some(text) = key.as_scalar() {
                if let Some(prev) = entries.iter().find(|e| e.key.as_scalar() == Some(text) && text != "<<") {
                    return Err(YamlError {
                        mark: key.mark,
                        message: format!("mapping key \"{text}\" already defined at line {}", prev.key.mark.line),
                    });
                }
            }
            entries.push(Entry { key, value });
        }
        Ok(Node { value: Value::Map(entries), mark, span: 0 })
    }

    /// The position of the `|` or `>` that introduces a block scalar whose content starts at
    /// character index `content_start`.
    fn block_indicator(&mut self, content_start: usize) -> Option<Mark> {
        let chars = self.chars.get_or_insert_with(|| self.src.chars().collect());
        let mut i = content_start.min(chars.len());
        while i > 0 {
            i -= 1;
            if chars[i] == '|' || chars[i] == '>' {
                let before = &chars[..i];
                let line = before.iter().filter(|&&c| c == '\n').count() + 1;
                let col = i - before.iter().rposition(|&c| c == '\n').map_or(0, |p| p + 1) + 1;
                return Some(Mark { line, col });
            }
        }
        None
    }
}

fn convert_style(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        ScalarStyle::Literal => Style::Literal,
        ScalarStyle::Folded => Style::Folded,
    }
}

fn normalize_tag(handle: &str, suffix: &str) -> String {
    match handle {
        "!!" | "tag:yaml.org,2002:" => format!("!!{suffix}"),
        _ => format!("{handle}{suffix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> (&str, Style) {
        match &node.value {
            Value::Scalar { text, style, .. } => (text, *style),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn keeps_scalar_styles_and_positions() {
        let doc = parse("a: 0644\nb: \"0644\"\nc: |\n  x\n").unwrap();
        let a = doc.root.get("a").unwrap();
        assert_eq!(scalar(a), ("0644", Style::Plain));
        assert_eq!(a.mark, Mark { line: 1, col: 4 });
        assert_eq!(scalar(doc.root.get("b").unwrap()), ("0644", Style::DoubleQuoted));
        let c = doc.root.get("c").unwrap();
        assert_eq!(scalar(c), ("x\n", Style::Literal));
        assert_eq!(c.mark, Mark { line: 3, col: 4 }, "block scalars are located at their indicator");
    }

    #[test]
    fn duplicate_keys_are_fatal() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.message, "mapping key \"a\" already defined at line 1");
        assert_eq!(err.mark, Mark { line: 3, col: 1 });
    }

    #[test]
    fn syntax_errors_are_located() {
        // Lines and columns count from 1. In block context the second `:` of `b: x: y` (line 2,
        // the fifth character) cannot start a value. In the unclosed flow sequence the plain
        // scalar `2` runs on into `b` on line 2, so the `:` right after `b` (column 2) is where
        // a `,` or `]` was due.
        let cases = [("a: 1\nb: x: y\n", Mark { line: 2, col: 5 }), ("a: [1, 2\nb: 3\n", Mark { line: 2, col: 2 })];
        for (src, want) in cases {
            let err = parse(src).unwrap_err();
            assert_eq!(err.mark, want, "{src:?}: {err:?}");
        }
    }

    #[test]
    fn errors_at_the_end_of_input_are_on_the_last_line() {
        // The lines are the reference Butane's (v0.29, `butane --strict`), the same with and
        // without a final newline: `yaml: line 3: did not find expected node content`, `line 1:
        // did not find expected ',' or ']'` and `line 3: could not find expected ':'`. Butane
        // prints no column; the column is where the input ends. (For a flow collection opened on
        // a later line than the first, yaml.v3 reports the opening bracket's line counted from 0,
        // one above the bracket; that is not copied.)
        let cases = [
            ("variant: fcos\nversion: 1.5.0\na: [1, 2,", Mark { line: 3, col: 10 }),
            ("a: [1, 2", Mark { line: 1, col: 9 }),
            ("variant: fcos\nversion: 1.5.0\n0", Mark { line: 3, col: 2 }),
        ];
        for (text, want) in cases {
            for src in [text.to_string(), format!("{text}\n")] {
                let err = parse(&src).unwrap_err();
                assert_eq!(err.mark, want, "{src:?}: {err:?}");
            }
        }
    }

    #[test]
    fn aliases_stay_unresolved_and_anchors_are_kept() {
        let doc = parse("x: &a {k: v}\ny: *a\n").unwrap();
        let Value::Alias(id) = doc.root.get("y").unwrap().value else { panic!("alias expected") };
        assert_eq!(doc.anchor(id).unwrap().get("k").and_then(Node::as_scalar), Some("v"));
    }

    #[test]
    fn locate_finds_deepest_existing_node() {
        let doc = parse("a:\n  b:\n    - c: 1\n").unwrap();
        assert_eq!(doc.locate(&Path::parse("$.a.b.0.c"), false).mark, Mark { line: 3, col: 10 });
        assert_eq!(doc.locate(&Path::parse("$.a.b.0.c"), true).mark, Mark { line: 3, col: 7 });
        assert_eq!(doc.locate(&Path::parse("$.a.b.0.zzz"), false).mark, Mark { line: 3, col: 7 });
    }

    #[test]
    fn existing_depth_follows_aliases_and_merges() {
        let doc = parse("a: &x {b: {c: 1}}\nd: *x\ne:\n  <<: *x\n  f: 2\n").unwrap();
        let cases = [("$.d.b.c", 3), ("$.e.b.c", 3), ("$.e.f", 2), ("$.e.g", 1), ("$.z", 0)];
        for (path, want) in cases {
            assert_eq!(doc.existing_depth(&Path::parse(path)), want, "case {path}");
        }
    }

    #[test]
    fn a_key_looked_up_through_an_anchor_merged_into_itself_is_missing_not_endless() {
        let doc = parse("a: &x\n  b: 1\n  <<: *x\nc:\n  <<: *x\n").unwrap();
        let cases = [("$.a.b", 2), ("$.a.z", 1), ("$.c.b", 2), ("$.c.z", 1)];
        for (path, want) in cases {
            assert_eq!(doc.existing_depth(&Path::parse(path)), want, "case {path}");
        }
        let Value::Alias(id) = doc.root.get("c").unwrap().get("<<").unwrap().value else { panic!("alias expected") };
        assert_eq!(doc.anchor_name(id), "x");
    }

    #[test]
    fn empty_input_is_a_null_document() {
        assert!(parse("").unwrap().root.is_null());
        assert!(parse("# only a comment\n").unwrap().root.is_null());
    }

    #[test]
    fn json_parses_as_yaml() {
        let doc = parse("{\"ignition\": {\"version\": \"3.5.0\"}, \"n\": 5}").unwrap();
        let v = doc.root.get("ignition").unwrap().get("version").unwrap();
        assert_eq!(scalar(v), ("3.5.0", Style::DoubleQuoted));
        assert_eq!(scalar(doc.root.get("n").unwrap()), ("5", Style::Plain));
    }
}
