//! Every conformance case with an `expected.tree` through `core-ops apply --offline` into a
//! fresh root: the exit code is the reference apply's (`expected.apply-exit`), and on success the
//! tree equals what the reference Ignition wrote (presets and enablement links aside). A panic
//! or a death by signal is never an expected failure.

mod common;

use std::fs;
use std::path::Path;

/// Sections that belong to first boot; the reference apply skipped them.
const FIRST_BOOT_KEYS: &[&str] = &["boot_device", "luks", "raid", "disks", "filesystems", "grub"];
/// How the reference apply failed where its sandbox had no systemd to talk to: a failure of the
/// environment, not of the config. `apply --offline` never talks to systemd, so it succeeds.
const REFERENCE_HAD_NO_SYSTEMD: &str = "dial unix /run/systemd/private";
/// The exit code of a Rust panic.
const PANIC_EXIT: i32 = 101;

/// The exit code `core-ops apply` must give on `case`: the reference apply's, unless the
/// reference failed for want of systemd.
fn expected_exit(case: &Path, reference_stderr: &str) -> i32 {
    let text = fs::read_to_string(case.join("expected.apply-exit")).expect("a case with a tree has an apply exit");
    let code = text.trim().parse().unwrap_or_else(|_| panic!("{}: expected.apply-exit is {text:?}", case.display()));
    if code != 0 && reference_stderr.contains(REFERENCE_HAD_NO_SYSTEMD) { 0 } else { code }
}

#[test]
fn apply_writes_the_tree_the_reference_ignition_writes() {
    if !common::is_root() {
        common::skip(
            "apply_writes_the_tree_the_reference_ignition_writes",
            "apply conformance needs root (the expected trees own files as 1000:1000 and 4242:4343)",
        );
        return;
    }
    let (mut compared, mut expected_failures, mut failures) = (0, 0, Vec::new());
    for case in common::cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let Ok(expected) = fs::read_to_string(case.join("expected.tree")) else { continue };
        let input = fs::read_to_string(case.join("input.bu")).unwrap();
        let first_boot = input.lines().any(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            FIRST_BOOT_KEYS.iter().any(|k| t.starts_with(&format!("{k}:")))
        });
        let reference_stderr = fs::read_to_string(case.join("expected.apply-stderr")).unwrap_or_default();
        let needs_network = ["tang", "networking"].iter().any(|w| reference_stderr.to_lowercase().contains(w));
        if first_boot || needs_network {
            continue;
        }
        let want = expected_exit(&case, &reference_stderr);
        let root = common::conformance_root();
        let mut cmd = common::bin();
        cmd.current_dir(&case).args(["apply", "--config", "input.bu"]);
        if case.join("files").is_dir() {
            cmd.args(["--files-dir", "files"]);
        }
        let out = cmd.arg("--root").arg(root.path()).args(["--offline", "--format", "json"]).output().unwrap();
        compared += 1;
        match out.status.code() {
            None | Some(PANIC_EXIT) => {
                failures.push(format!("{name}: crashed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)))
            }
            Some(code) if code != want => failures.push(format!(
                "{name}: exit {code}, but the reference apply exits {want}: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
            Some(0) => {
                let (exp, act) =
                    common::filter_manifests(&common::parse_manifest(&expected), &common::manifest(root.path()));
                if exp != act {
                    let mut diff = Vec::new();
                    for p in exp.keys().chain(act.keys()).collect::<std::collections::BTreeSet<_>>() {
                        if exp.get(p) != act.get(p) {
                            diff.extend(exp.get(p).map(|e| format!("- {}", e.1)));
                            diff.extend(act.get(p).map(|a| format!("+ {}", a.1)));
                        }
                    }
                    failures.push(format!("{name}: tree differs\n  {}", diff.join("\n  ")));
                }
            }
            Some(_) => expected_failures += 1,
        }
    }
    eprintln!("apply conformance: {compared} cases compared, {expected_failures} of them failing as the reference did");
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(compared >= 50, "only {compared} apply cases compared");
    assert!(expected_failures >= 4, "only {expected_failures} cases failed as the reference did");
}
