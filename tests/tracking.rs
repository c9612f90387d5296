//! Properties of the tracking config reader and writer (`core_ops::model::tracking`):
//! - no input panics it: random bytes, and a valid document with random edits; every problem
//!   is one line, names the file, and points inside the text;
//! - whatever valid values are written reads back as the same values, however many YAML
//!   indicators, number and boolean look-alikes or non-ASCII letters they hold; and PyYAML, a
//!   reader that shares nothing with CoreOps, reads the written text the same way.

mod common;

#[path = "fuzz_render/rng.rs"]
mod rng;

use core_ops::model::tracking::{self, Tracking};
use rng::Rng;

const NAME: &str = "/etc/core-ops/tracking.yaml";

const VALID: &str = "# comment\nversion: 1\nrepository: https://git.example.com/infra/hosts.git\nref: main\n\
                     host: web1\ntrust: /etc/core-ops/allowed-signers\naccess-token-file: /etc/core-ops/token\n\
                     ca-file: /etc/core-ops/ca.pem\n";

/// Tokens that random edits insert: YAML syntax, wrong types, near-miss keys, odd values.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!int ",
    "|\n  x",
    ">",
    "'",
    "\"",
    "\\",
    "\t",
    "\n",
    "  ",
    "~",
    "null",
    "yes",
    "2",
    "1.5",
    "0x1",
    "ref",
    "repo",
    "trust",
    "version",
    "host:",
    "ca_file",
    "/",
    "..",
    "\u{0}",
    "\u{1b}",
    "é",
    "\u{202e}",
    "@{",
    "https://u:p@h/x",
    "<<: *a",
];

/// Checks one outcome: no panic (reaching here), and every message `error: NAME[:L:C]: …` on
/// one line, with a position inside `text`.
fn check(text: &str) {
    let lines = text.replace("\r\n", "\n").replace('\r', "\n").split('\n').count();
    let Err(messages) = tracking::parse(NAME, text) else { return };
    assert!(!messages.is_empty(), "an error without a message for {text:?}");
    for m in &messages {
        let rest = m.strip_prefix(&format!("error: {NAME}")).unwrap_or_else(|| panic!("{m:?} for {text:?}"));
        assert!(!m.contains('\n'), "{m:?} spans lines");
        if let Some(position) = rest.strip_prefix(':').and_then(|r| r.split(": ").next()) {
            let mut parts = position.split(':');
            let (line, col) = (parts.next().unwrap(), parts.next());
            if let (Ok(line), Some(Ok(col))) = (line.parse::<usize>(), col.map(str::parse::<usize>)) {
                assert!((1..=lines).contains(&line) && col >= 1, "{m:?} points outside {text:?}");
            }
        }
    }
}

#[test]
fn random_bytes_never_panic_the_reader() {
    let mut rng = Rng(0x0DDB_1A5E_5BAD_5EED);
    for _ in 0..3000 {
        let len = rng.below(120);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn edited_documents_never_panic_the_reader_and_fail_located() {
    let mut rng = Rng(0x5EED_0F7A_C4C4);
    let (mut failed, mut passed) = (0, 0);
    for _ in 0..4000 {
        let mut text: Vec<char> = VALID.chars().collect();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(text.len() + 1);
            match rng.below(3) {
                0 => text.splice(at..at, rng.pick(TOKENS).chars()).for_each(drop),
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => {
                    let end = (at + rng.below(12)).min(text.len());
                    text.splice(at..end, rng.pick(TOKENS).chars()).for_each(drop);
                }
            }
        }
        let text: String = text.into_iter().collect();
        check(&text);
        if tracking::parse(NAME, &text).is_ok() { passed += 1 } else { failed += 1 }
    }
    // The edits must reach both outcomes, or they test nothing.
    assert!(failed > 1000 && passed > 200, "{failed} failed, {passed} passed");
}

/// A random string over characters that YAML treats specially, with letters and digits.
fn random_text(rng: &mut Rng, max: usize) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "9", "-", "_", ".", "/", ":", " ", "#", "'", "\"", "\\", "@", "!", "&", "*", "?", "|", ">", "%",
        ",", "[", "]", "{", "}", "~", "é", "ß", "true", "no", "null", "1e3", "0o7", "+", "=",
    ];
    (0..1 + rng.below(max)).map(|_| rng.pick(PIECES)).collect()
}

/// Random values that the reader must accept: generated, then kept when valid.
fn random_valid(rng: &mut Rng) -> Option<Tracking> {
    let path = |rng: &mut Rng| (rng.chance(50)).then(|| format!("/{}", random_text(rng, 4).replace(['/', '.'], "x")));
    let t = Tracking {
        repository: match rng.below(3) {
            0 => format!("https://git.example.com/{}", random_text(rng, 6)),
            1 => format!("/srv/{}", random_text(rng, 6)),
            _ => random_text(rng, 8),
        },
        reference: random_text(rng, 6),
        host: [rng.pick(&["web1", "1", "true", "yes", "null", "1e5", "0x1", "a-b.c_d", "NO"])].concat(),
        trust: path(rng),
        access_token_file: path(rng),
        ca_file: path(rng),
    };
    tracking::problems(&t).is_empty().then_some(t)
}

#[test]
fn written_values_read_back_the_same() {
    let mut rng = Rng(0xC0FF_EE00_1234);
    let mut texts = Vec::new();
    let mut checked = 0;
    for _ in 0..6000 {
        let Some(t) = random_valid(&mut rng) else { continue };
        let text = tracking::to_yaml(&t);
        assert_eq!(tracking::parse(NAME, &text), Ok(t.clone()), "{text}");
        checked += 1;
        if texts.len() < 400 {
            texts.push((t, text));
        }
    }
    assert!(checked > 1500, "only {checked} valid values were generated");
    if let Some(read) = read_with_pyyaml("written_values_read_back_the_same", &texts) {
        for ((t, text), doc) in texts.iter().zip(read) {
            let want = serde_json::json!({
                "version": 1, "repository": t.repository, "ref": t.reference, "host": t.host,
                "trust": t.trust, "access-token-file": t.access_token_file, "ca-file": t.ca_file,
            });
            let mut want = want.as_object().unwrap().clone();
            want.retain(|_, v| !v.is_null());
            assert_eq!(doc, serde_json::Value::Object(want), "PyYAML reads\n{text}\ndifferently");
        }
    }
}

/// Each text read by PyYAML, as JSON; `None` after a loud skip when it is not installed.
fn read_with_pyyaml(test: &str, texts: &[(Tracking, String)]) -> Option<Vec<serde_json::Value>> {
    use std::io::Write;
    let script = "import sys, json, yaml\nfor t in json.load(sys.stdin): print(json.dumps(yaml.safe_load(t)))";
    let Ok(mut child) = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        common::skip(test, "python3 is not installed");
        return None;
    };
    let input: Vec<&str> = texts.iter().map(|(_, text)| text.as_str()).collect();
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'yaml'") {
        common::skip(test, "PyYAML is not installed (python3-yaml)");
        return None;
    }
    assert!(out.status.success(), "PyYAML: {stderr}");
    Some(String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}
