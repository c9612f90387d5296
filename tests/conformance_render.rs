//! Every Butane conformance case through `core-ops render-ignition`: exit code, semantically
//! equal Ignition output, and the same diagnostics (severity, path, line, message).

mod common;

use std::fs;

use serde_json::Value;

#[test]
fn render_matches_reference_butane_for_every_case() {
    let mut failures = Vec::new();
    let (mut compared, mut identical) = (0, 0);
    let cases = common::cases();
    assert!(cases.len() >= 110, "corpus incomplete: {} cases", cases.len());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expected_exit: i32 = fs::read_to_string(case.join("expected.exit")).unwrap().trim().parse().unwrap();
        let expected_stderr = fs::read_to_string(case.join("expected.stderr")).unwrap_or_default();
        let mut cmd = common::bin();
        cmd.current_dir(case).args(["render-ignition", "--pretty", "--raw-errors"]);
        if let Ok(args) = fs::read_to_string(case.join("args")) {
            cmd.args(args.split_whitespace());
        }
        if case.join("files").is_dir() {
            cmd.args(["--files-dir", "files"]);
        }
        let out = cmd.arg("input.bu").output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let mut problems = Vec::new();
        if code != expected_exit.min(1) {
            problems.push(format!("exit {code}, expected {expected_exit}"));
        }
        if code == 0 && expected_exit == 0 {
            let want_bytes = fs::read(case.join("expected.ign")).unwrap();
            compared += 1;
            if out.stdout == want_bytes {
                identical += 1;
            }
            let want: Value = serde_json::from_slice(&want_bytes).unwrap();
            match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(got) if common::normalize(&got) == common::normalize(&want) => {}
                Ok(got) => problems.push(format!(
                    "output differs:\n  want {}\n  got  {}",
                    common::normalize(&want),
                    common::normalize(&got)
                )),
                Err(e) => problems.push(format!("stdout is not JSON: {e}")),
            }
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        problems.extend(common::compare_diags(&common::parse_diags(&expected_stderr), &common::parse_diags(&stderr)));
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}\n  stderr: {stderr}", problems.join("\n  ")));
        }
    }
    eprintln!("conformance: {} cases, {identical} of {compared} outputs byte-identical", cases.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
