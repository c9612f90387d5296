//! A small JSON value with ordered keys, written the way Go's `encoding/json` writes it.
//!
//! Butane's output is Go's: struct field order, `<`, `>` and `&` escaped as `\u003c`, `\u003e`
//! and `\u0026`, U+2028/U+2029 escaped, two-space indentation with `--pretty`. Writing our
//! own tiny serializer keeps the output byte-comparable with the reference tool.

use std::fmt::Write as _;

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
        self.write(&mut out, None, 0);
        out
    }

    /// Indented text, as `json.MarshalIndent(v, "", "  ")` writes it.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some("  "), 0);
        out
    }

    /// The value at `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn write(&self, out: &mut String, indent: Option<&str>, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => write_go_string(out, s),
            Json::Array(items) => {
                write_container(out, indent, depth, '[', ']', items.iter(), |out, item, d| item.write(out, indent, d));
            }
            Json::Object(fields) => {
                write_container(out, indent, depth, '{', '}', fields.iter(), |out, (k, v), d| {
                    write_go_string(out, k);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    v.write(out, indent, d);
                });
            }
        }
    }
}

fn write_container<I: ExactSizeIterator>(
    out: &mut String,
    indent: Option<&str>,
    depth: usize,
    open: char,
    close: char,
    items: I,
    mut each: impl FnMut(&mut String, I::Item, usize),
) {
    out.push(open);
    let empty = items.len() == 0;
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, indent, depth + 1);
        each(out, item, depth + 1);
    }
    if !empty {
        newline(out, indent, depth);
    }
    out.push(close);
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(unit) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(unit);
        }
    }
}

/// Writes `s` as a JSON string with Go's escaping rules; runs of plain text are copied whole.
fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain_start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => "",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain_start..i]);
        plain_start = i + c.len_utf8();
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escaped);
        }
    }
    out.push_str(&s[plain_start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = Json::Str("a<b>&c\"\n\u{1}\u{2028}".into());
        assert_eq!(v.to_compact(), r#""a\u003cb\u003e\u0026c\"\n\u0001\u2028""#);
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
