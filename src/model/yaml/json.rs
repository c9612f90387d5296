//! The JSON fast path of [`super::parse`]: a strict RFC 8259 reader that builds the very tree
//! the YAML parser builds for the same text (JSON is flow YAML), with the same marks and spans,
//! in one pass over the bytes. Ignition configs are JSON and can be megabytes of data URLs;
//! the YAML scanner is several times slower on them.
//!
//! It owns no error messages: whatever it does not accept (invalid JSON, duplicate keys,
//! escapes the YAML layer would read differently, a lone carriage return, deep nesting) makes
//! it answer `None`, and the YAML parser reads the text as it always did, so every error keeps
//! its message and its place.

use super::{Document, Entry, Node, Style, Value};
use crate::model::report::Mark;

/// Nesting deeper than this is left to the YAML parser.
const MAX_DEPTH: usize = 256;

/// The tree of `src` when it is one JSON object (surrounded by whitespace only), else `None`.
pub(super) fn parse(src: &str) -> Option<Document> {
    let mut reader = Reader { src, bytes: src.as_bytes(), pos: 0, line: 1, col: 1 };
    reader.skip_whitespace()?;
    if reader.peek() != Some(b'{') {
        return None;
    }
    let root = reader.value(0)?;
    reader.skip_whitespace()?;
    (reader.pos == reader.bytes.len()).then(|| Document {
        root,
        anchors: Default::default(),
        anchor_names: Default::default(),
    })
}

/// Where reading stands: a byte offset and the 1-based line and column (in characters) there.
struct Reader<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    col: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn mark(&self) -> Mark {
        Mark { line: self.line, col: self.col }
    }

    /// Moves over `len` bytes that hold no line break.
    fn advance(&mut self, len: usize) {
        let taken = &self.bytes[self.pos..self.pos + len];
        self.col += taken.iter().filter(|&&b| !is_continuation(b)).count();
        self.pos += len;
    }

    /// Skips JSON whitespace; `None` for a carriage return that does not end a line with `\n`
    /// (YAML breaks a line there, JSON does not).
    fn skip_whitespace(&mut self) -> Option<()> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => self.advance(1),
                b'\n' => self.newline(1),
                b'\r' if self.bytes.get(self.pos + 1) == Some(&b'\n') => self.newline(2),
                b'\r' => return None,
                _ => break,
            }
        }
        Some(())
    }

    fn newline(&mut self, len: usize) {
        self.pos += len;
        self.line += 1;
        self.col = 1;
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.advance(1))
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string(),
            b't' | b'f' | b'n' => self.keyword(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<Node> {
        let mark = self.mark();
        self.advance(1);
        let mut entries: Vec<Entry> = Vec::new();
        self.skip_whitespace()?;
        if self.peek() == Some(b'}') {
            self.advance(1);
            return Some(Node { value: Value::Map(entries), mark, span: 0 });
        }
        loop {
            self.skip_whitespace()?;
            if self.peek() != Some(b'"') {
                return None;
            }
            let key = self.string()?;
            // The YAML layer refuses a repeated key with its own message.
            if entries.iter().any(|e| e.key.value == key.value) {
                return None;
            }
            self.skip_whitespace()?;
            self.expect(b':')?;
            self.skip_whitespace()?;
            let value = self.value(depth + 1)?;
            entries.push(Entry { key, value });
            self.skip_whitespace()?;
            match self.peek()? {
                b',' => self.advance(1),
                b'}' => {
                    self.advance(1);
                    return Some(Node { value: Value::Map(entries), mark, span: 0 });
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Node> {
        let mark = self.mark();
        self.advance(1);
        let mut items = Vec::new();
        self.skip_whitespace()?;
        if self.peek() == Some(b']') {
            self.advance(1);
            return Some(Node { value: Value::Seq(items), mark, span: 0 });
        }
        loop {
            self.skip_whitespace()?;
            items.push(self.value(depth + 1)?);
            self.skip_whitespace()?;
            match self.peek()? {
                b',' => self.advance(1),
                b']' => {
                    self.advance(1);
                    return Some(Node { value: Value::Seq(items), mark, span: 0 });
                }
                _ => return None,
            }
        }
    }

    /// A string: the runs between escapes are copied whole.
    fn string(&mut self) -> Option<Node> {
        let (mark, start) = (self.mark(), self.pos);
        self.advance(1);
        let mut text = String::new();
        loop {
            let run = self.bytes[self.pos..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            text.push_str(&self.src[self.pos..self.pos + run]);
            self.advance(run);
            match self.peek()? {
                b'"' => break,
                b'\\' => text.push(self.escape()?),
                _ => return None,
            }
        }
        self.advance(1);
        // The YAML parser's span of a quoted scalar runs on over the blanks after it.
        let blanks = self.bytes[self.pos..].iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let span = self.src[start..self.pos].chars().count() + blanks;
        Some(Node { value: Value::Scalar { text, style: Style::DoubleQuoted, tag: None }, mark, span })
    }

    /// One escape after its backslash. Surrogate escapes are left to the YAML parser.
    fn escape(&mut self) -> Option<char> {
        let code = *self.bytes.get(self.pos + 1)?;
        self.advance(2);
        Some(match code {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.src.get(self.pos..self.pos + 4)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                self.advance(4);
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
            }
            _ => return None,
        })
    }

    fn keyword(&mut self) -> Option<Node> {
        let word = ["true", "false", "null"].into_iter().find(|w| self.bytes[self.pos..].starts_with(w.as_bytes()))?;
        Some(self.plain(word.len()))
    }

    /// A number as RFC 8259 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<Node> {
        let rest = &self.bytes[self.pos..];
        let mut len = usize::from(rest.first() == Some(&b'-'));
        let digits = |from: usize| rest[from..].iter().take_while(|b| b.is_ascii_digit()).count();
        let int = digits(len);
        if int == 0 || (int > 1 && rest[len] == b'0') {
            return None;
        }
        len += int;
        if rest.get(len) == Some(&b'.') {
            let frac = digits(len + 1);
            if frac == 0 {
                return None;
            }
            len += 1 + frac;
        }
        if matches!(rest.get(len), Some(b'e' | b'E')) {
            len += 1 + usize::from(matches!(rest.get(len + 1), Some(b'+' | b'-')));
            let exp = digits(len);
            if exp == 0 {
                return None;
            }
            len += exp;
        }
        Some(self.plain(len))
    }

    /// A plain scalar of `len` ASCII bytes.
    fn plain(&mut self, len: usize) -> Node {
        let mark = self.mark();
        let text = self.src[self.pos..self.pos + len].to_string();
        self.advance(len);
        Node { value: Value::Scalar { text, style: Style::Plain, tag: None }, mark, span: len }
    }
}

/// Whether `b` continues a UTF-8 sequence (and so starts no character).
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::path::Path;

    /// The tree the YAML parser builds for `src`: an independent reading of the same text.
    fn by_yaml(src: &str) -> Document {
        super::super::parse_yaml(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
    }

    #[test]
    fn builds_the_tree_the_yaml_parser_builds() {
        let cases = [
            r#"{}"#,
            r#"{"a":1,"b":[true,false,null,-0,1.5e3,2E-2,-12.25],"c":{"d":[],"e":{}}}"#,
            "{\n  \"ignition\": {\"version\": \"3.4.0\"},\n\t\"x\" : [ \"tab\\tand \\\"quote\\\" \\/ \\u00e9\\u0000\" ]\n}\n",
            "{\r\n  \"crlf\": [1,\r\n 2]\r\n}",
            "{\"a\"  :\"b\"  ,\"c\":1  ,\"d\":\"e\" \t \n, \"f\": [1  ,true  , \"g\"\t]}",
            r#"{"ünïcödé": "日本語 text", "after": "x", "emoji": "😀 y", "del": "a\u007fb", "nel": "a"}"#,
            "  {\"lead\": \"space\"}  \n\n",
            r#"{"<<": {"k": 1}, "esc": "\b\f\n\r"}"#,
        ];
        for src in cases {
            assert_eq!(parse(src).as_ref(), Some(&by_yaml(src)), "{src:?}");
        }
    }

    #[test]
    fn builds_the_yaml_tree_of_every_conformance_config() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/butane");
        let mut compared = 0;
        for case in std::fs::read_dir(&dir).unwrap() {
            let Ok(src) = std::fs::read_to_string(case.unwrap().path().join("expected.ign")) else { continue };
            assert_eq!(parse(&src).as_ref(), Some(&by_yaml(&src)), "{src}");
            compared += 1;
        }
        assert!(compared >= 60, "only {compared} conformance configs found in {}", dir.display());
    }

    #[test]
    fn marks_and_spans_are_where_the_text_has_them() {
        // Counted by hand: line 2 is `  "k": ["é", 10]`; `"k"` starts at column 3, the `[` at
        // 8, `"é"` at 9 (three characters), `10` at 14 (two).
        let doc = parse("{\n  \"k\": [\"é\", 10]\n}").unwrap();
        let at = |path: &str, key: bool| {
            let n = doc.locate(&Path::parse(path), key);
            (n.mark.line, n.mark.col, n.span)
        };
        assert_eq!(at("$.k", true), (2, 3, 3));
        assert_eq!(at("$.k", false), (2, 8, 0));
        assert_eq!(at("$.k.0", false), (2, 9, 3));
        assert_eq!(at("$.k.1", false), (2, 14, 2));
        assert_eq!((doc.root.mark.line, doc.root.mark.col), (1, 1));
    }

    #[test]
    fn leaves_what_it_does_not_accept_to_the_yaml_parser() {
        let cases = [
            r#"{"a": 1,}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": .5}"#,
            r#"{"a": 1e}"#,
            r#"{"a": tru}"#,
            r#"{"a": truex}"#,
            r#"{"a": "x" "b": 2}"#,
            r#"{a: 1}"#,
            r#"{"a": 1} # comment"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": "\ud83d\ude00"}"#,
            r#"{"a": "\x41"}"#,
            "{\"a\": \"tab\tinside\"}",
            "{\"a\":\r1}",
            "{\"a\": [1, 2}",
            "[1, 2]",
            "variant: fcos\n",
            "",
        ];
        for src in cases {
            assert_eq!(parse(src), None, "{src:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), None, "nesting deeper than {MAX_DEPTH}");
    }
}
