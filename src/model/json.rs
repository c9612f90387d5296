//! A small JSON value with ordered keys, written the way Go's `encoding/json` writes it.
//!
//! Butane's output is Go's: struct field order, `<`, `>` and `&` escaped as `\u003c`, `\u003e`
//! and `\u0026`, U+2028/U+2029 escaped, two-space indentation with `--pretty`. Writing our
//! own tiny serializer keeps the output byte-comparable with the reference tool.

use std::convert::Infallible;
use std::io;

/// A JSON value whose objects keep insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in key order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Compact text, as `json.Marshal` writes it.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        let Ok(()) = self.write(&mut out, Layout::Compact, 0);
        out
    }

    /// Indented text, as `json.MarshalIndent(v, "", "  ")` writes it.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        let Ok(()) = self.write(&mut out, Layout::Pretty, 0);
        out
    }

    /// Writes the compact text to `out` as it is made, without holding it whole.
    pub fn write_compact(&self, out: &mut impl io::Write) -> io::Result<()> {
        self.write(&mut Stream(out), Layout::Compact, 0)
    }

    /// Writes the indented text to `out` as it is made, without holding it whole.
    pub fn write_pretty(&self, out: &mut impl io::Write) -> io::Result<()> {
        self.write(&mut Stream(out), Layout::Pretty, 0)
    }

    /// The value at `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at `key` of an object, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(fields) => fields.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn write<S: Sink>(&self, out: &mut S, layout: Layout, depth: usize) -> Result<(), S::Error> {
        match self {
            Json::Null => out.put("null"),
            Json::Bool(b) => out.put(if *b { "true" } else { "false" }),
            Json::Int(n) => out.put(&n.to_string()),
            Json::Str(s) => write_go_string(out, s),
            Json::Array(items) => {
                write_container(out, layout, depth, ["[", "]"], items, |out, item, d| item.write(out, layout, d))
            }
            Json::Object(fields) => write_container(out, layout, depth, ["{", "}"], fields, |out, (k, v), d| {
                write_go_string(out, k)?;
                out.put(if layout == Layout::Pretty { ": " } else { ":" })?;
                v.write(out, layout, d)
            }),
        }
    }
}

/// Compact (`json.Marshal`) or indented by two spaces (`json.MarshalIndent(v, "", "  ")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Compact,
    Pretty,
}

/// Where the text goes: a `String` (which cannot fail) or an [`io::Write`].
trait Sink {
    type Error;
    fn put(&mut self, text: &str) -> Result<(), Self::Error>;
}

impl Sink for String {
    type Error = Infallible;
    fn put(&mut self, text: &str) -> Result<(), Infallible> {
        self.push_str(text);
        Ok(())
    }
}

/// An [`io::Write`] as a [`Sink`].
struct Stream<'a, W>(&'a mut W);

impl<W: io::Write> Sink for Stream<'_, W> {
    type Error = io::Error;
    fn put(&mut self, text: &str) -> io::Result<()> {
        self.0.write_all(text.as_bytes())
    }
}

fn write_container<S: Sink, T>(
    out: &mut S,
    layout: Layout,
    depth: usize,
    [open, close]: [&str; 2],
    items: &[T],
    mut each: impl FnMut(&mut S, &T, usize) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    out.put(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put(",")?;
        }
        newline(out, layout, depth + 1)?;
        each(out, item, depth + 1)?;
    }
    if !items.is_empty() {
        newline(out, layout, depth)?;
    }
    out.put(close)
}

/// A line break and the indentation of `depth` levels, in pretty layout.
fn newline<S: Sink>(out: &mut S, layout: Layout, depth: usize) -> Result<(), S::Error> {
    /// Enough indentation for most documents, written as one piece.
    const SPACES: &str = "                                                                ";
    if layout == Layout::Compact {
        return Ok(());
    }
    out.put("\n")?;
    let mut width = INDENT.len() * depth;
    while width > 0 {
        let piece = width.min(SPACES.len());
        out.put(&SPACES[..piece])?;
        width -= piece;
    }
    Ok(())
}

/// One level of pretty indentation.
const INDENT: &str = "  ";

/// How a byte is written inside a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// As it is.
    Plain,
    /// A backslash and this character (`\n`, `\"`, ...).
    Short(u8),
    /// `\u00XX`: other control characters, and `<`, `>`, `&`, which Go escapes for HTML.
    Unicode,
    /// The first byte of U+2028 and U+2029, which Go escapes; other characters that start
    /// with it are plain.
    E2,
}

/// The class of every byte. Bytes of multi-byte characters are plain except `0xE2`.
const CLASSES: [Class; 256] = {
    let mut table = [Class::Plain; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = Class::Unicode;
        b += 1;
    }
    table[b'"' as usize] = Class::Short(b'"');
    table[b'\\' as usize] = Class::Short(b'\\');
    table[b'\n' as usize] = Class::Short(b'n');
    table[b'\r' as usize] = Class::Short(b'r');
    table[b'\t' as usize] = Class::Short(b't');
    table[0x08] = Class::Short(b'b');
    table[0x0c] = Class::Short(b'f');
    table[b'<' as usize] = Class::Unicode;
    table[b'>' as usize] = Class::Unicode;
    table[b'&' as usize] = Class::Unicode;
    table[0xe2] = Class::E2;
    table
};

/// The UTF-8 continuation bytes of U+2028 (LINE SEPARATOR) and U+2029 (PARAGRAPH SEPARATOR).
const LINE_SEPARATORS: [[u8; 2]; 2] = [[0x80, 0xa8], [0x80, 0xa9]];

/// Writes `s` as a JSON string with Go's escaping rules; runs of plain text are copied whole.
fn write_go_string<S: Sink>(out: &mut S, s: &str) -> Result<(), S::Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put("\"")?;
    let bytes = s.as_bytes();
    let mut plain_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let mut escaped = [b'\\', b'u', b'0', b'0', 0, 0];
        let (escaped, len) = match CLASSES[usize::from(bytes[i])] {
            Class::Plain => {
                i += 1;
                continue;
            }
            Class::Short(c) => {
                escaped[1] = c;
                (&escaped[..2], 1)
            }
            Class::Unicode => {
                escaped[4] = HEX[usize::from(bytes[i] >> 4)];
                escaped[5] = HEX[usize::from(bytes[i] & 15)];
                (&escaped[..], 1)
            }
            Class::E2 => match bytes.get(i + 1..i + 3) {
                Some(tail) if LINE_SEPARATORS.iter().any(|sep| sep == tail) => {
                    escaped[2..].copy_from_slice(if tail[1] == 0xa8 { b"2028" } else { b"2029" });
                    (&escaped[..], 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            },
        };
        out.put(&s[plain_start..i])?;
        out.put(std::str::from_utf8(escaped).expect("escapes are ASCII"))?;
        i += len;
        plain_start = i;
    }
    out.put(&s[plain_start..])?;
    out.put("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = Json::Str("a<b>&c\"\n\u{1}\u{2028}".into());
        assert_eq!(v.to_compact(), r#""a\u003cb\u003e\u0026c\"\n\u0001\u2028""#);
    }

    /// Deterministic pseudo-random numbers (xorshift64).
    struct Noise(u64);

    impl Noise {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Go's escaping, from an independent encoder: serde_json's, plus the escapes Go adds for
    /// HTML (`<`, `>`, `&`) and JavaScript (U+2028, U+2029).
    fn go_quoted(s: &str) -> String {
        serde_json::to_string(s)
            .unwrap()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    }

    #[test]
    fn strings_escape_as_go_does() {
        // Every character class: plain ASCII, the short escapes, other controls, HTML
        // characters, the two separators, and neighbours that share their first byte (0xE2).
        let alphabet = [
            'a', 'Z', ' ', '/', '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1b}', '\u{1f}', '\u{7f}',
            '<', '>', '&', 'é', '\u{2028}', '\u{2029}', '\u{2027}', '\u{202a}', '\u{2020}', '€', '\u{e2}', '😀',
        ];
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let len = round % 40;
            let s: String = (0..len).map(|_| alphabet[noise.below(alphabet.len())]).collect();
            assert_eq!(Json::Str(s.clone()).to_compact(), go_quoted(&s), "{s:?}");
        }
    }

    /// A random value and the same value for serde_json; object keys are sorted, as serde_json's
    /// map keeps them, so the two writers must agree byte for byte.
    fn value(noise: &mut Noise, depth: usize) -> (Json, serde_json::Value) {
        use serde_json::Value;
        match noise.below(if depth == 0 { 4 } else { 7 }) {
            0 => (Json::Null, Value::Null),
            1 => (Json::Bool(true), Value::Bool(true)),
            2 => {
                let n = noise.below(2001) as i64 - 1000;
                (Json::Int(n), Value::from(n))
            }
            3 => {
                let s = ["", "x", "q\"uote", "line\nbreak"][noise.below(4)];
                (Json::Str(s.into()), Value::from(s))
            }
            4 | 5 => {
                let (ours, theirs) = (0..noise.below(4)).map(|_| value(noise, depth - 1)).unzip();
                (Json::Array(ours), Value::Array(theirs))
            }
            _ => {
                let mut ours = Vec::new();
                let mut theirs = serde_json::Map::new();
                for i in 0..noise.below(4) {
                    let (a, b) = value(noise, depth - 1);
                    ours.push((format!("k{i}"), a));
                    theirs.insert(format!("k{i}"), b);
                }
                (Json::Object(ours), Value::Object(theirs))
            }
        }
    }

    /// `[[[…]]]` nested `depth` times around `1`.
    fn nested(depth: usize) -> (Json, serde_json::Value) {
        (0..depth).fold((Json::Int(1), serde_json::Value::from(1)), |(ours, theirs), _| {
            (Json::Array(vec![ours]), serde_json::Value::Array(vec![theirs]))
        })
    }

    #[test]
    fn pretty_and_compact_match_an_independent_writer() {
        let mut noise = Noise(7);
        // Deep nesting needs more indentation than is written in one piece.
        let mut values: Vec<_> = (0..500).map(|_| value(&mut noise, 6)).collect();
        values.push(nested(70));
        for (ours, theirs) in values {
            let pretty = serde_json::to_string_pretty(&theirs).unwrap();
            let compact = serde_json::to_string(&theirs).unwrap();
            assert_eq!(ours.to_pretty(), pretty);
            assert_eq!(ours.to_compact(), compact);
            let (mut streamed_pretty, mut streamed_compact) = (Vec::new(), Vec::new());
            ours.write_pretty(&mut streamed_pretty).unwrap();
            ours.write_compact(&mut streamed_compact).unwrap();
            assert_eq!(String::from_utf8(streamed_pretty).unwrap(), pretty);
            assert_eq!(String::from_utf8(streamed_compact).unwrap(), compact);
        }
    }

    #[test]
    fn a_failing_writer_stops_the_output_with_its_error() {
        let mut full = [0u8; 10];
        let mut out: &mut [u8] = &mut full;
        let err = nested(20).0.write_pretty(&mut out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
        assert_eq!(&full, b"[\n  [\n    ", "what fitted was written");
    }

    #[test]
    fn pretty_matches_marshal_indent() {
        let v = Json::Object(vec![
            ("a".into(), Json::Array(vec![Json::Int(1), Json::Bool(true)])),
            ("b".into(), Json::Object(vec![])),
        ]);
        assert_eq!(v.to_pretty(), "{\n  \"a\": [\n    1,\n    true\n  ],\n  \"b\": {}\n}");
        assert_eq!(v.to_compact(), r#"{"a":[1,true],"b":{}}"#);
    }
}
