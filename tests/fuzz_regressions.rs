//! Regression tests for what the fuzz targets (fuzz/, docs/fuzzing.md) found: each input, as the
//! fuzzer found it or minimised by hand, through the same public entry the target uses, with
//! the outcome the specification asks for.
//!
//! Found by `butane` and `layout`: YAML marks in a document with a lone CR.
//! - YAML 1.2 (and Butane's yaml.v3) breaks lines at LF, CR LF and a lone CR alike, but a
//!   diagnostic after lone CRs was put lines away from its text (before line 3 of
//!   `a: 1\r\rb c`, on line 1), sometimes past the document's end;
//! - an error at the end of a CR LF document counted the CR as a character of the last line,
//!   one column past its end;
//! - the snippet under a diagnostic showed the line by LF only, not the line the mark counts.
//!
//! Found by `butane`: empty nodes at the end of the input. The YAML parser supplies a node that
//! is left out (the key of a last `? `, the value of a last `? key`) where the next token is, and
//! at the end of the input that is the start of a line past the last; such a node is placed
//! where the input ends, as syntax errors there are.
//!
//! Found by `butane`: an anchor merged into itself (`- &conf` … `<<: *conf`). Decoding followed
//! the merge into the anchor it was decoding, without end, until the stack overflowed and the
//! process aborted. The reference Butane (yaml.v3) fails with "yaml: anchor 'conf' value
//! contains itself" and exit 1; so does CoreOps, at the alias.
//!
//! The expected lines are the reference Butane's (`yaml: line N`, v0.29.0); the columns, which
//! Butane does not report, and the lines of the fuzzer's inputs are counted by hand.

#[path = "common/mod.rs"]
mod common;

use core_ops::host::pipeline::{self, Input, LoadError};
use core_ops::model::butane::{self, Failure};
use core_ops::model::report::Mark;
use core_ops::model::source::tree::SourceTree;
use core_ops::model::state::SourceRef;

/// The YAML error mark of a Butane document that does not parse.
fn yaml_error_mark(src: &str) -> Mark {
    match butane::render(src, None) {
        Err(Failure::Yaml(e)) => e.mark,
        Err(other) => panic!("{src:?} fails, but not as YAML: {other:?}"),
        Ok(_) => panic!("{src:?} renders"),
    }
}

fn mark(line: usize, col: usize) -> Mark {
    Mark { line, col }
}

#[test]
fn a_lone_carriage_return_breaks_a_line_as_in_yaml() {
    let cases = [
        // Reference Butane: "yaml: line 3: could not find expected ':'"; `b c` has 3 characters.
        ("a: 1\r\rb c\n", mark(3, 4)),
        // Reference Butane: "yaml: line 2: did not find expected ',' or ']'"; the input ends on
        // the empty line 2 (the final CR LF is not a line of its own).
        ("a: [1, 2\r\r\n", mark(2, 1)),
    ];
    for (src, want) in cases {
        assert_eq!(yaml_error_mark(src), want, "{src:?}");
    }
}

#[test]
fn an_error_at_the_end_of_a_crlf_document_is_right_after_its_last_character() {
    // Reference Butane: "yaml: line 1"; `a: [1, 2` has 8 characters, so the input ends at col 9.
    assert_eq!(yaml_error_mark("a: [1, 2\r\n"), mark(1, 9));
    assert_eq!(yaml_error_mark("a: [1, 2\n"), mark(1, 9), "as with LF");
}

#[test]
fn the_fuzzers_inputs_are_located_on_the_lines_yaml_counts() {
    let cases = [
        // Found by `butane`: line 2 `ve=devices:`, 24 lone CRs and a CR LF (empty lines 3 to 27),
        // then the 28 characters of line 28, where the error is, at its end.
        (
            "variant: fcos\nve=devices:\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\nve=devices     \x17- da/dev/vdb\n",
            mark(28, 29),
        ),
        // Found by `butane`: 64 line breaks before the end (the last a CR LF); the input ends on
        // the empty line 65.
        (
            "variant: fcos\nversits:\n    - name:2vice]\n        ExecStart=/bin/true\n    - nameeo n:x\n    - na   o \
             n:xtensionrer\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\rpartitions\r\r\r\r\r\r\r\r\r\r\r\r\
             \r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\n",
            mark(65, 1),
        ),
    ];
    for (src, want) in cases {
        assert_eq!(yaml_error_mark(src), want, "{src:?}");
    }
}

#[test]
fn render_ignition_shows_the_line_the_mark_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.bu");
    std::fs::write(&file, "a: 1\r\rb c\n").unwrap();
    let out = common::bin().arg("render-ignition").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Lines 1 to 3 are `a: 1`, `` and `b c`: the snippet shows line 3 with the caret after `b c`.
    let want = format!(" --> {}:3:4\n  |\n3 | b c\n  |    ^\n", file.display());
    assert!(stderr.contains(&want), "want the snippet\n{want}in\n{stderr}");
}

#[test]
fn a_repository_fragment_with_lone_carriage_returns_is_located_as_in_yaml() {
    // Found by `layout`, minimised: a fragment whose error follows lone CRs.
    let mut tree = SourceTree::default();
    tree.insert("hosts/example/host.yaml", b"host: example\nbutane:\n  - case\n".to_vec(), false);
    tree.insert("butane/case.bu", b"a: 1\r\rb c\n".to_vec(), false);
    let source = SourceRef { kind: "git".into(), location: "test".into(), ..SourceRef::default() };
    let input = Input::Tree { tree, host: "example".into(), source, digest: "test".into() };
    let Err(LoadError::Invalid(issues)) = pipeline::load(&input, false) else { panic!("the fragment loads") };
    let located: Vec<(&str, Option<Mark>)> = issues.iter().map(|i| (i.file.as_str(), i.mark)).collect();
    // Reference Butane reports the fragment's error on line 3 (see the first test).
    assert_eq!(located, [("butane/case.bu", Some(mark(3, 4)))], "{issues:?}");
}

#[test]
fn a_node_left_out_at_the_end_of_the_input_is_placed_where_the_input_ends() {
    // Found by `butane`. Reference Butane: "line 4: mapping key \"\" already defined"; the input
    // ends after the 2 characters of line 4.
    assert_eq!(yaml_error_mark("ld:\n? \nd:\n? "), mark(4, 3));

    // The value of a last `? path` is left out. Reference Butane puts "path not specified" on
    // line 6 col 1, a line this 5-line input does not have; CoreOps keeps every diagnostic inside
    // the document: after the 12 characters of line 5.
    let src = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - ? path";
    let Err(Failure::Invalid { report, .. }) = butane::render(src, None) else { panic!("{src:?} is valid") };
    let located: Vec<(String, Option<Mark>)> =
        report.entries.iter().map(|d| (d.path.as_ref().map(ToString::to_string).unwrap_or_default(), d.mark)).collect();
    assert_eq!(located, [("$.storage.files.0.path".to_string(), Some(mark(5, 13)))], "{report:?}");
}

#[test]
fn an_error_in_a_directive_is_placed_at_its_character_not_its_byte() {
    // The fuzzer's input (CI, 60 s campaign). Reference Butane: "yaml: control characters are not
    // allowed"; the NUL is the 11th character of line 1 (`ҋ` and `ʃ` are two bytes each).
    let src = "%=vti-/\u{48b}\u{283}\t\0\n    - path: /var\0\0\0\0\0\0";
    assert_eq!(yaml_error_mark(src), mark(1, 11));
    // Outside a directive, the same characters were already placed by character.
    assert_eq!(yaml_error_mark("a: \u{48b}\u{283}\t\0\n"), mark(1, 7));
}

#[test]
fn an_anchor_merged_into_itself_is_an_error_at_the_alias_not_a_crash() {
    // As the fuzzer found it (a mutated conformance case); the reference Butane exits 1 with
    // "Error translating config: yaml: anchor 'conf' value contains itself".
    let found = "# anchors, alfeatures\nvariant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - &conf\n      path: /etc/a.conf\n      mode: 7344\n      user: &owner\n        name: core\n      contents:\n        inline: sonf\n      <<: *conf\n      pat directories:\n    - path: /etc/owned\n      user: *owner\n";
    let minimal =
        "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - &conf\n      path: /etc/a.conf\n      <<: *conf\n";
    // `*conf` is on line 13 (found) and 7 (minimal), after `      <<: ` (10 characters).
    for (src, line) in [(found, 13), (minimal, 7)] {
        let Err(Failure::Types(report)) = butane::render(src, None) else { panic!("{src:?} did not fail to decode") };
        let messages: Vec<_> = report.entries.iter().map(|d| (d.message.as_str(), d.mark)).collect();
        assert_eq!(messages, [("anchor 'conf' value contains itself", Some(mark(line, 11)))], "{src:?}");
    }
    // An anchor that refers to itself where nothing decodes it stays an unused key, as in Butane.
    assert!(butane::render("variant: fcos\nversion: 1.6.0\nx: &a [1, *a]\n", None).is_ok());
}
