//! Schema-driven decoding of positioned YAML (or JSON) into typed config structs.
//!
//! One set of Rust types describes both Butane (snake_case keys, sugar fields) and Ignition
//! (camelCase keys); [`Dialect`] picks the key names and scalar rules, and [`Gates`] hides the
//! fields that a version does not have, so they are reported as unused keys exactly as Butane
//! does. Type mismatches are fatal (`cannot unmarshal !!str ... into int`), like yaml.v3.
//! The [`schema!`](crate::schema) macro declares a struct once and derives its decoder and its
//! Go-ordered JSON encoder.

use super::json::Json;
use super::path::{Path, Seg};
use super::report::{Diagnostic, Mark};
use super::yaml::{Document, Node, Style, Value};

/// The fix a Butane `mode` of the wrong type gets (a quoted `"0644"` is a string).
pub const MODE_HELP: &str = "write the mode unquoted in octal, e.g. `mode: 0644`";

/// Which key names and scalar rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Butane YAML: snake_case keys, YAML 1.1 integers and booleans.
    Butane,
    /// Ignition JSON: camelCase keys, JSON scalars.
    Ignition,
}

/// What the input's version allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gates {
    /// Key names and scalar rules.
    pub dialect: Dialect,
    /// Schema level: Butane base `v0_N` is level N; Ignition spec `3.M.0` is level M+1.
    pub level: u8,
    /// The `boot_device` section exists (fcos ≥ 1.3).
    pub boot_device: bool,
    /// The `grub` section exists (fcos ≥ 1.5).
    pub grub: bool,
    /// fcos-only `boot_device.luks.device` and `cex` exist (fcos ≥ 1.6).
    pub fcos_level: u8,
}

impl Gates {
    /// Gates for an Ignition spec `3.minor.0`.
    pub fn ignition(minor: u8) -> Self {
        Gates { dialect: Dialect::Ignition, level: minor + 1, boot_device: false, grub: false, fcos_level: 0 }
    }
}

/// A field gate: whether a field exists under the given gates.
pub type Gate = fn(&Gates) -> bool;

/// Fields that exist in every version.
pub fn always(_: &Gates) -> bool {
    true
}

/// Fields from schema level 2 (fcos 1.1, spec 3.1) on.
pub fn since2(g: &Gates) -> bool {
    g.level >= 2
}
/// Fields from schema level 3 (fcos 1.2, spec 3.2) on.
pub fn since3(g: &Gates) -> bool {
    g.level >= 3
}
/// Fields from schema level 4 (fcos 1.4, spec 3.3) on.
pub fn since4(g: &Gates) -> bool {
    g.level >= 4
}
/// Fields from schema level 5 (fcos 1.5, spec 3.4) on.
pub fn since5(g: &Gates) -> bool {
    g.level >= 5
}
/// Fields from schema level 6 (fcos 1.6, spec 3.5) on.
pub fn since6(g: &Gates) -> bool {
    g.level >= 6
}
/// Fields from schema level 7 (fcos 1.7, spec 3.6) on.
pub fn since7(g: &Gates) -> bool {
    g.level >= 7
}
/// Fields from schema level 8 (fcos 1.8.0-experimental, spec 3.7.0-experimental) on.
pub fn since8(g: &Gates) -> bool {
    g.level >= 8
}

/// The decoding context: document, gates and the findings so far.
#[derive(Debug)]
pub struct Decoder<'d> {
    doc: &'d Document,
    /// What the version allows.
    pub gates: Gates,
    /// Unused keys and other warnings, in discovery order.
    pub warnings: Vec<Diagnostic>,
    /// Type mismatches; any of them makes the document unusable.
    pub type_errors: Vec<Diagnostic>,
    alias_depth: usize,
    /// The anchors of the aliases being decoded, outermost first.
    resolving: Vec<usize>,
}

impl<'d> Decoder<'d> {
    /// A decoder over `doc`.
    pub fn new(doc: &'d Document, gates: Gates) -> Self {
        Decoder { doc, gates, warnings: Vec::new(), type_errors: Vec::new(), alias_depth: 0, resolving: Vec::new() }
    }

    /// Records that `node` is not the `expected` kind.
    pub fn type_error(&mut self, node: &Node, path: &Path, expected: &str) {
        let found = match &node.value {
            Value::Scalar { text, .. } => format!("{} `{}`", node.kind_tag(), text),
            _ => node.kind_tag(),
        };
        let message = format!("cannot unmarshal {found} into {expected}");
        let mut diagnostic = Diagnostic::error(path.clone(), message).at(node.mark, node.span);
        if self.gates.dialect == Dialect::Butane && path.last() == Some(&Seg::Key("mode".into())) {
            diagnostic = diagnostic.with_help(MODE_HELP);
        }
        self.type_errors.push(diagnostic);
    }

    fn warn_at(&mut self, path: Path, mark: Mark, span: usize, message: String) {
        if self.alias_depth == 0 {
            self.warnings.push(Diagnostic::warning(path, message).at(mark, span));
        }
    }

    /// Follows an alias (counting the depth so that unused keys inside it are not reported). An
    /// alias met again while its anchor is being decoded (an anchor merged into itself) is a
    /// fatal error, as in yaml.v3, rather than an endless descent.
    fn with_resolved<T>(&mut self, node: &Node, path: &Path, f: impl FnOnce(&Node, &mut Self) -> T) -> Option<T> {
        match node.value {
            Value::Alias(id) => {
                if self.resolving.contains(&id) {
                    let message = format!("anchor '{}' value contains itself", self.doc.anchor_name(id));
                    self.type_errors.push(Diagnostic::error(path.clone(), message).at(node.mark, node.span));
                    return None;
                }
                let target = self.doc.anchor(id)?.clone();
                self.alias_depth += 1;
                self.resolving.push(id);
                let out = f(&target, self);
                self.resolving.pop();
                self.alias_depth -= 1;
                Some(out)
            }
            _ => Some(f(node, self)),
        }
    }

    /// Decodes a mapping into a struct, reporting unused keys and following `<<` merges.
    pub fn decode_struct<T: Fields + Default>(&mut self, node: &Node, path: &Path) -> T {
        let mut out = T::default();
        if matches!(node.value, Value::Alias(_)) || node.is_null() {
            self.context_mismatch(node, path);
        }
        self.with_resolved(node, path, |node, d| d.fill_struct(&mut out, node, path));
        out
    }

    fn context_mismatch(&mut self, node: &Node, path: &Path) {
        let message = format!(
            "context tree does not match content tree at {path}. Line and column reporting may be inconsistent. Unused keys may not be reported"
        );
        self.warn_at(path.clone(), node.mark, node.span, message);
    }

    fn fill_struct<T: Fields>(&mut self, out: &mut T, node: &Node, path: &Path) {
        if node.is_null() {
            return;
        }
        let Value::Map(entries) = &node.value else {
            self.type_error(node, path, T::EXPECTED);
            return;
        };
        for entry in entries.iter().filter(|e| e.key.as_scalar() == Some("<<")) {
            self.warn_at(path.key("<<"), entry.key.mark, entry.key.span, "unused key <<".into());
            self.merge_into(out, &entry.value, path);
        }
        for entry in entries {
            let key = entry.key.as_scalar().unwrap_or("");
            if key == "<<" {
                continue;
            }
            if !out.set_field(key, &entry.value, self, path) {
                self.warn_at(path.key(key), entry.key.mark, entry.key.span, format!("unused key {key}"));
            }
        }
    }

    /// Applies a YAML merge (`<<: *anchor` or a list of them) with lower priority.
    fn merge_into<T: Fields>(&mut self, out: &mut T, value: &Node, path: &Path) {
        let sources: Vec<Node> = match &value.value {
            Value::Seq(items) => items.clone(),
            _ => vec![value.clone()],
        };
        for source in sources.iter().rev() {
            self.alias_depth += 1;
            self.with_resolved(source, path, |node, d| d.fill_struct(out, node, path));
            self.alias_depth -= 1;
        }
    }

    /// Decodes a sequence.
    pub fn decode_list<T: Decode>(&mut self, node: &Node, path: &Path) -> Vec<T> {
        if matches!(node.value, Value::Alias(_)) {
            self.context_mismatch(node, path);
        }
        self.with_resolved(node, path, |node, d| match &node.value {
            _ if node.is_null() => Vec::new(),
            Value::Seq(items) => items.iter().enumerate().map(|(i, item)| T::decode(item, d, &path.index(i))).collect(),
            _ => {
                d.type_error(node, path, &format!("a list of {}", T::EXPECTED));
                Vec::new()
            }
        })
        .unwrap_or_default()
    }

    /// Resolves a scalar (following aliases); `None` for null or after a type error.
    fn scalar(&mut self, node: &Node, path: &Path, expected: &str) -> Option<(String, Style, Option<String>)> {
        let resolved = match node.value {
            Value::Alias(id) => self.doc.anchor(id).cloned(),
            _ => Some(node.clone()),
        }?;
        if resolved.is_null() {
            return None;
        }
        match resolved.value {
            Value::Scalar { text, style, tag } => Some((text, style, tag)),
            _ => {
                self.type_error(&resolved, path, expected);
                None
            }
        }
    }
}

/// A type that can be read from a node.
pub trait Decode: Sized {
    /// How a type error names this type.
    const EXPECTED: &'static str;
    /// Reads `node` (found at `path`); type errors are recorded in `d`.
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self;
}

/// A struct whose fields are set one key at a time (implemented by [`schema!`](crate::schema)).
pub trait Fields {
    /// How a type error names this type.
    const EXPECTED: &'static str;
    /// Sets the field named `key` in the current dialect; false when there is no such field.
    fn set_field(&mut self, key: &str, node: &Node, d: &mut Decoder, path: &Path) -> bool;
}

impl Decode for String {
    const EXPECTED: &'static str = "string";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        Option::<String>::decode(node, d, path).unwrap_or_default()
    }
}

impl Decode for Option<String> {
    const EXPECTED: &'static str = "string";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        let (text, style, tag) = d.scalar(node, path, "string")?;
        if d.gates.dialect == Dialect::Ignition && style == Style::Plain && tag.is_none() {
            d.type_error(node, path, "string");
            return None;
        }
        Some(text)
    }
}

impl Decode for Option<i64> {
    const EXPECTED: &'static str = "int";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        let (text, style, tag) = d.scalar(node, path, "int")?;
        let parsed = match (style, tag.as_deref()) {
            (Style::Plain, None | Some("!!int")) => parse_int(&text, d.gates.dialect),
            _ => None,
        };
        if parsed.is_none() {
            d.type_error(node, path, "int");
        }
        parsed
    }
}

impl Decode for Option<bool> {
    const EXPECTED: &'static str = "bool";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        let (text, style, tag) = d.scalar(node, path, "bool")?;
        let parsed = match (style, tag.as_deref()) {
            (Style::Plain, None | Some("!!bool")) => parse_bool(&text, d.gates.dialect),
            _ => None,
        };
        if parsed.is_none() {
            d.type_error(node, path, "bool");
        }
        parsed
    }
}

impl<T: Decode> Decode for Vec<T> {
    const EXPECTED: &'static str = "list";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        d.decode_list(node, path)
    }
}

/// Parses an integer as yaml.v3 resolves plain scalars (decimal, `0o`, `0x`, `0b` and
/// leading-zero octal), or as JSON does.
pub fn parse_int(text: &str, dialect: Dialect) -> Option<i64> {
    if dialect == Dialect::Ignition {
        return text.parse().ok();
    }
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.replace('_', "");
    let magnitude = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        i64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
        i64::from_str_radix(bin, 2).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }?;
    Some(if neg { -magnitude } else { magnitude })
}

/// Parses a boolean: YAML 1.1 words for Butane, `true`/`false` for JSON.
pub fn parse_bool(text: &str, dialect: Dialect) -> Option<bool> {
    match (dialect, text) {
        (_, "true") => Some(true),
        (_, "false") => Some(false),
        (Dialect::Ignition, _) => None,
        (Dialect::Butane, "y" | "Y" | "yes" | "Yes" | "YES" | "True" | "TRUE" | "on" | "On" | "ON") => Some(true),
        (Dialect::Butane, "n" | "N" | "no" | "No" | "NO" | "False" | "FALSE" | "off" | "Off" | "OFF") => Some(false),
        _ => None,
    }
}

/// A type that can be written as Go's `encoding/json` writes it.
pub trait ToJson {
    /// The value.
    fn to_json(&self) -> Json;
    /// Whether an `omitempty` field with this value is left out.
    fn omitted(&self) -> bool;
    /// Gives the value [`ToJson::to_json`] makes to `serializer`, as it goes, without making it.
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
}

/// A [`ToJson`] value as serde sees it: written as [`ToJson::to_json`] makes it.
#[derive(Debug)]
pub struct AsJson<'a, T>(pub &'a T);

impl<T: ToJson> serde::Serialize for AsJson<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_json(serializer)
    }
}

impl ToJson for String {
    fn to_json(&self) -> Json {
        Json::Str(self.clone())
    }
    fn omitted(&self) -> bool {
        false
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

/// A plain (non-pointer) Go int: `omitempty` drops zero.
impl ToJson for i64 {
    fn to_json(&self) -> Json {
        Json::Int(*self)
    }
    fn omitted(&self) -> bool {
        *self == 0
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(*self)
    }
}

impl Decode for i64 {
    const EXPECTED: &'static str = "int";
    fn decode(node: &Node, d: &mut Decoder, path: &Path) -> Self {
        Option::<i64>::decode(node, d, path).unwrap_or_default()
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Json {
        Json::Bool(*self)
    }
    fn omitted(&self) -> bool {
        false
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(*self)
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Json {
        self.as_ref().map_or(Json::Null, ToJson::to_json)
    }
    fn omitted(&self) -> bool {
        self.is_none()
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.serialize_json(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Json {
        Json::Array(self.iter().map(ToJson::to_json).collect())
    }
    fn omitted(&self) -> bool {
        self.is_empty()
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(AsJson))
    }
}

/// Declares a config struct once: its fields with their Butane and Ignition key names (an empty
/// name means the dialect has no such key) and an optional version gate. Derives
/// [`Decode`], [`Fields`] and [`ToJson`] (Ignition keys, in declaration order, `omitempty`).
#[macro_export]
macro_rules! schema {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $yaml:literal, $json:literal $(, $gate:path)? ; )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* #[doc = concat!("Butane `", $yaml, "`, Ignition `", $json, "`.")] pub $field: $ty, )*
        }

        impl $crate::model::decode::Fields for $name {
            const EXPECTED: &'static str = stringify!($name);
            fn set_field(
                &mut self,
                key: &str,
                node: &$crate::model::yaml::Node,
                d: &mut $crate::model::decode::Decoder,
                path: &$crate::model::path::Path,
            ) -> bool {
                let butane = d.gates.dialect == $crate::model::decode::Dialect::Butane;
                $(
                    let name = if butane { $yaml } else { $json };
                    let gate: $crate::model::decode::Gate = $crate::schema!(@gate $($gate)?);
                    if !name.is_empty() && key == name && gate(&d.gates) {
                        self.$field = <$ty as $crate::model::decode::Decode>::decode(node, d, &path.key(key));
                        return true;
                    }
                )*
                false
            }
        }

        impl $crate::model::decode::Decode for $name {
            const EXPECTED: &'static str = stringify!($name);
            fn decode(
                node: &$crate::model::yaml::Node,
                d: &mut $crate::model::decode::Decoder,
                path: &$crate::model::path::Path,
            ) -> Self {
                d.decode_struct(node, path)
            }
        }

        impl $crate::model::ignition::merge::Merge for $name {
            fn merge(parent: Self, child: Self) -> Self {
                $name {
                    $( $field: $crate::model::ignition::merge::MergeField::merge_field(
                        stringify!($field), parent.$field, child.$field), )*
                }
            }
        }

        impl $crate::model::ignition::merge::MergeField for $name {
            fn merge_field(_: &str, parent: Self, child: Self) -> Self {
                <$name as $crate::model::ignition::merge::Merge>::merge(parent, child)
            }
        }

        impl $crate::model::decode::IsZero for $name {
            fn is_zero(&self) -> bool {
                $crate::model::decode::ToJson::omitted(self)
            }
        }

        impl $crate::model::decode::ToJson for $name {
            fn to_json(&self) -> $crate::model::json::Json {
                let mut fields = Vec::new();
                $(
                    if !$json.is_empty() && !$crate::model::decode::ToJson::omitted(&self.$field) {
                        fields.push(($json.to_string(), $crate::model::decode::ToJson::to_json(&self.$field)));
                    }
                )*
                $crate::model::json::Json::Object(fields)
            }
            fn omitted(&self) -> bool {
                true $( && ($json.is_empty() || $crate::model::decode::IsZero::is_zero(&self.$field)) )*
            }
            fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                $(
                    if !$json.is_empty() && !$crate::model::decode::ToJson::omitted(&self.$field) {
                        map.serialize_entry($json, &$crate::model::decode::AsJson(&self.$field))?;
                    }
                )*
                map.end()
            }
        }
    )*};
    (@gate) => { $crate::model::decode::always };
    (@gate $gate:path) => { $gate };
}

/// Go's notion of a zero value, for `omitempty` on nested structs.
pub trait IsZero {
    /// Whether the value is its type's zero value.
    fn is_zero(&self) -> bool;
}

impl IsZero for String {
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl<T> IsZero for Option<T> {
    fn is_zero(&self) -> bool {
        self.is_none()
    }
}

impl<T> IsZero for Vec<T> {
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl IsZero for i64 {
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_resolve_like_yaml_v3() {
        let cases = [
            ("0644", Some(420)),
            ("0o644", Some(420)),
            ("0x1a4", Some(420)),
            ("420", Some(420)),
            ("-1", Some(-1)),
            ("010000", Some(4096)),
            ("0", Some(0)),
            ("abc", None),
            ("0899", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_int(text, Dialect::Butane), want, "case {text}");
        }
        assert_eq!(parse_int("0644", Dialect::Ignition), Some(644), "JSON has no octal");
    }

    #[test]
    fn booleans_accept_yaml_1_1_words_only_in_butane() {
        for (text, want) in [("yes", Some(true)), ("on", Some(true)), ("off", Some(false)), ("maybe", None)] {
            assert_eq!(parse_bool(text, Dialect::Butane), want, "case {text}");
        }
        assert_eq!(parse_bool("yes", Dialect::Ignition), None);
    }
}
