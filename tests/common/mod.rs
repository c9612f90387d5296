//! Shared helpers for the integration tests: the conformance corpus, semantic Ignition
//! comparison and diagnostic-line parsing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use core_ops::model::ignition::dataurl;
use serde_json::Value;

/// The project's copy of the Butane conformance corpus.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/butane")
}

/// Every case directory, sorted.
pub fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.bu").is_file())
        .collect();
    out.sort();
    out
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_core-ops"))
}

/// Normalizes an Ignition config for semantic comparison: data URLs decoded (and gunzipped),
/// `"compression": ""` dropped.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, x) in map {
                out.insert(k.clone(), normalize(x));
            }
            let comp = map.get("compression").and_then(Value::as_str).map(str::to_string);
            if comp.as_deref() == Some("") {
                out.remove("compression");
            }
            if let Some(src) = map.get("source").and_then(Value::as_str).filter(|s| s.starts_with("data:")) {
                let decoded = match dataurl::decode_contents(src, comp.as_deref()) {
                    Ok(bytes) => {
                        out.remove("compression");
                        format!("<payload {}>", hex(&bytes))
                    }
                    Err(e) => format!("<undecodable {e}>"),
                };
                out.insert("source".into(), Value::String(decoded));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `error at …` / `warning at …` line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diag {
    pub severity: String,
    pub path: String,
    pub line: Option<u32>,
    pub message: String,
}

/// Parses Butane's raw diagnostic lines out of stderr; other lines are ignored.
pub fn parse_diags(text: &str) -> Vec<Diag> {
    text.lines().filter_map(parse_diag).collect()
}

fn parse_diag(line: &str) -> Option<Diag> {
    let (severity, rest) = line.split_once(" at ")?;
    if severity != "error" && severity != "warning" {
        return None;
    }
    let (location, message) = rest.split_once(": ")?;
    let (path, line_no) = if let Some(pos) = location.strip_prefix("line ") {
        ("", pos.split(' ').next()?.parse().ok())
    } else if let Some((path, pos)) = location.split_once(", line ") {
        (path, pos.split(' ').next()?.parse().ok())
    } else {
        (location, None)
    };
    Some(Diag { severity: severity.into(), path: path.into(), line: line_no, message: message.trim().into() })
}

/// Messages that embed Go-internal text, which only the reference can produce verbatim.
pub fn is_go_internal(message: &str) -> bool {
    [
        "config.",
        "types.",
        "[]v0_",
        "open ",
        "stat ",
        "lstat ",
        "no such file",
        "invalid character",
        "cannot unmarshal",
        "unexpected end of JSON",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Compares diagnostics as multisets of (severity, path, line) with equal messages; returns
/// the problems found.
pub fn compare_diags(expected: &[Diag], actual: &[Diag]) -> Vec<String> {
    type Key = (String, String, Option<u32>);
    let group = |ds: &[Diag]| {
        let mut m: BTreeMap<Key, Vec<String>> = BTreeMap::new();
        for d in ds {
            m.entry((d.severity.clone(), d.path.clone(), d.line)).or_default().push(d.message.clone());
        }
        m
    };
    let (exp, act) = (group(expected), group(actual));
    let mut problems = Vec::new();
    let keys: std::collections::BTreeSet<&Key> = exp.keys().chain(act.keys()).collect();
    for key in keys {
        let mut e = exp.get(key).cloned().unwrap_or_default();
        let mut a = act.get(key).cloned().unwrap_or_default();
        e.retain(|m| match a.iter().position(|x| x == m) {
            Some(i) => {
                a.remove(i);
                false
            }
            None => true,
        });
        e.retain(|m| {
            !(is_go_internal(m) && !a.is_empty() && {
                a.remove(0);
                true
            })
        });
        for m in e {
            problems.push(format!("missing {key:?}: {m}"));
        }
        for m in a {
            problems.push(format!("unexpected {key:?}: {m}"));
        }
    }
    problems
}
