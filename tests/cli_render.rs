//! `core-ops render-ignition` as a user runs it: flags, streams, exit codes, diagnostics.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child =
        common::bin().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const GOOD: &str =
    "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hi\n";
const WARNS: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/motd\n      colour: red\n";
const BAD: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: etc/motd\n";

#[test]
fn reads_stdin_and_writes_compact_json_with_a_newline() {
    for args in [vec!["render-ignition"], vec!["render-ignition", "-"]] {
        let out = run(&args, GOOD);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "{\"ignition\":{\"version\":\"3.5.0\"},\"storage\":{\"files\":[{\"path\":\"/etc/motd\",\"contents\":{\"compression\":\"\",\"source\":\"data:,hi\"}}]}}\n"
        );
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn pretty_output_is_byte_identical_to_butane() {
    let case = common::corpus_dir().join("001-inline-short");
    let out = common::bin().current_dir(&case).args(["render-ignition", "--pretty", "input.bu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(case.join("expected.ign")).unwrap());
}

#[test]
fn output_flag_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.ign");
    let out = run(&["render-ignition", "-p", "-o", target.to_str().unwrap()], GOOD);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.starts_with("{\n  \"ignition\": {") && written.ends_with("}\n"), "{written}");
}

#[test]
fn warnings_pass_unless_strict() {
    let out = run(&["render-ignition", "--raw-errors"], WARNS);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "warning at $.storage.files.0.colour, line 6 col 7: unused key colour\n");
    let strict = run(&["render-ignition", "--raw-errors", "--strict"], WARNS);
    assert_eq!(strict.status.code(), Some(1));
    assert!(strict.stdout.is_empty(), "nothing is written under --strict with warnings");
    assert!(text(&strict.stderr).ends_with("Config produced warnings and --strict was specified\n"));
}

#[test]
fn errors_exit_1_with_located_snippets_by_default() {
    let out = run(&["render-ignition"], BAD);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let want = "error[$.storage.files.0.path]: path not absolute\n --> <stdin>:5:13\n  |\n5 |     - path: etc/motd\n  |             ^^^^^^^^\nError translating config: config generated was invalid\n";
    assert_eq!(err, want);
}

#[test]
fn raw_errors_use_butanes_line_format() {
    let out = run(&["render-ignition", "--raw-errors"], BAD);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error at $.storage.files.0.path, line 5 col 13: path not absolute\nError translating config: config generated was invalid\n"
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let out = run(&["render-ignition"], "variant: fcos\nversion: 1.6.0\nstorage: [\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // The flow sequence opened on line 3 is still open where the input ends, right after the
    // `[` (the reference Butane reports line 3 too: `did not find expected node content`).
    assert!(err.contains("--> <stdin>:3:11\n"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [vec!["render-ignition", "--no-such-flag"], vec!["no-such-command"], vec![]] {
        let out = run(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn unreadable_input_is_a_clear_failure() {
    let out = run(&["render-ignition", "/nonexistent/x.bu"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: reading /nonexistent/x.bu: No such file or directory (os error 2)\n");
}

#[test]
fn ignition_json_is_validated_and_passed_through() {
    let ign = "{\"ignition\":{\"version\":\"3.4.0\"},\"storage\":{\"files\":[{\"path\":\"/etc/x\",\"mode\":420}]}}";
    let out = run(&["render-ignition"], ign);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{ign}\n"));
    let bad = run(
        &["render-ignition", "--raw-errors"],
        "{\"ignition\":{\"version\":\"3.4.0\"},\"storage\":{\"files\":[{\"path\":\"x\"}]}}",
    );
    assert_eq!(bad.status.code(), Some(1));
    // `"x"`, the value of `"path"`, starts at the 61st character of the one line.
    let want = "error at $.storage.files.0.path, line 1 col 61: path not absolute\n";
    assert!(text(&bad.stderr).starts_with(want), "{}", text(&bad.stderr));
}

#[test]
fn version_names_the_revision() {
    let out = run(&["--version"], "");
    assert_eq!(out.status.code(), Some(0));
    let v = text(&out.stdout);
    assert!(v.starts_with(&format!("core-ops {} (", env!("CARGO_PKG_VERSION"))), "{v}");
    assert!(v.trim_end().ends_with(", clean)") || v.trim_end().ends_with(", dirty)"), "{v}");
}

/// `--output` names a file wherever it exists (Butane's `-o`); the report format of the other
/// commands is `--format`, so the same flag never means two things.
#[test]
fn output_names_a_file_and_format_names_the_report_format() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.bu");
    std::fs::write(&cfg, "variant: fcos\nversion: 1.6.0\n").unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let cfg_arg = cfg.to_str().unwrap();
    let root_arg = root.to_str().unwrap();
    for args in [
        vec!["plan", "--config", cfg_arg],
        vec!["apply", "--config", cfg_arg],
        vec!["rollback"],
        vec!["status"],
        vec!["explain", "/etc/x"],
    ] {
        let out = common::bin().args(&args).args(["--root", root_arg, "--output", "json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} --output json is a usage error: {}", text(&out.stderr));
    }
    let plan = common::bin()
        .args(["plan", "--config"])
        .arg(&cfg)
        .arg("--root")
        .arg(&root)
        .args(["--offline", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(doc["schema_version"].is_number(), "{doc}");
    let out = common::bin()
        .current_dir(dir.path())
        .args(["render-ignition", "--output", "out.ign", "c.bu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.ign")).unwrap()).unwrap();
    assert_eq!(written["ignition"]["version"], "3.5.0");
}

/// A files directory of `dirs` directories below `t/`, each holding one file named for it.
fn tree_of_directories(dirs: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..dirs {
        let sub = dir.path().join(format!("files/t/d{i:04}"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("f"), format!("file {i}\n")).unwrap();
    }
    std::fs::write(
        dir.path().join("c.bu"),
        "variant: fcos\nversion: 1.6.0\nstorage:\n  trees:\n    - local: t\n      path: /etc/t\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_tree_of_more_directories_than_the_process_may_open_files_renders_whole() {
    // Soft and hard limit 64: the tree's 300 directories cannot all be held open at once.
    let dirs = 300;
    let work = tree_of_directories(dirs);
    let out = std::process::Command::new("bash")
        .current_dir(work.path())
        .args(["-c", "ulimit -n 64 && exec \"$0\" render-ignition --files-dir files c.bu"])
        .arg(env!("CARGO_BIN_EXE_core-ops"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = config["storage"]["files"].as_array().unwrap();
    assert_eq!(files.len(), dirs);
    for (i, file) in files.iter().enumerate() {
        assert_eq!(file["path"], format!("/etc/t/d{i:04}/f"));
        let contents = &file["contents"];
        let (bytes, _) =
            common::decode_data_url(contents["source"].as_str().unwrap(), contents["compression"].as_str()).unwrap();
        assert_eq!(bytes, format!("file {i}\n").into_bytes(), "/etc/t/d{i:04}/f");
    }
}
