//! Every conformance case with an `expected.tree` through `core-ops apply --offline` into a
//! fresh root: the tree equals what the reference Ignition wrote (presets and enablement links
//! aside), and the cases where the reference apply failed on the config fail too.

mod common;

use std::fs;

/// Sections that belong to first boot; the reference apply skipped them.
const FIRST_BOOT_KEYS: &[&str] = &["boot_device", "luks", "raid", "disks", "filesystems", "grub"];
/// Cases where the reference apply failed because of the config itself.
const EXPECTED_FAILURES: &[&str] = &["024-", "025-", "048-", "195-"];

#[test]
fn apply_writes_the_tree_the_reference_ignition_writes() {
    if !common::is_root() {
        eprintln!("SKIPPED: apply conformance needs root (the expected trees own files as 1000:1000 and 4242:4343)");
        return;
    }
    let (mut compared, mut failures) = (0, Vec::new());
    for case in common::cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let Ok(expected) = fs::read_to_string(case.join("expected.tree")) else { continue };
        let input = fs::read_to_string(case.join("input.bu")).unwrap();
        let first_boot = input.lines().any(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            FIRST_BOOT_KEYS.iter().any(|k| t.starts_with(&format!("{k}:")))
        });
        let tang = fs::read_to_string(case.join("expected.apply-stderr")).unwrap_or_default().to_lowercase();
        if first_boot || tang.contains("tang") || tang.contains("networking") {
            continue;
        }
        let root = common::conformance_root();
        let mut cmd = common::bin();
        cmd.current_dir(&case).args(["apply", "--config", "input.bu"]);
        if case.join("files").is_dir() {
            cmd.args(["--files-dir", "files"]);
        }
        let out = cmd.arg("--root").arg(root.path()).args(["--offline", "--output", "json"]).output().unwrap();
        compared += 1;
        let expect_failure = EXPECTED_FAILURES.iter().any(|p| name.starts_with(p));
        match (expect_failure, out.status.code()) {
            (true, Some(0)) => failures.push(format!("{name}: applied, but the reference apply fails on this config")),
            (true, _) => {}
            (false, Some(0)) => {
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
            (false, code) => failures.push(format!("{name}: exit {code:?}: {}", String::from_utf8_lossy(&out.stderr))),
        }
    }
    eprintln!("apply conformance: {compared} cases compared");
    assert!(compared >= 50, "only {compared} apply cases compared");
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}
