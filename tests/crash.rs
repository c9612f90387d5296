//! Crash safety: an apply killed at every failpoint leaves every file old or new, never records
//! an unconverged revision as applied, and the next apply finishes the job with no temp file
//! left and the right owned set. Needs `--features failpoints`.

#![cfg(feature = "failpoints")]

mod common;

use std::fs;
use std::path::Path;

use core_ops::host::failpoint::{FAILPOINT_ENV, FAILPOINTS};
use core_ops::host::fs::TEMP_PREFIX;
use serde_json::Value;

const V1: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  directories:\n    - path: /etc/app\n      mode: 0750\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n    - path: /etc/app/old.conf\n      contents: {inline: \"old\\n\"}\n    - path: /etc/app/mode.conf\n      mode: 0600\n      contents: {inline: \"m\\n\"}\n  links:\n    - path: /etc/app/current\n      target: a.conf\n";
const V2: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  directories:\n    - path: /etc/app\n      mode: 0755\n    - path: /var/lib/app\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=2\\n\"}\n    - path: /etc/app/b.conf\n      contents: {inline: \"b=2\\n\"}\n    - path: /var/lib/app/data\n      contents: {inline: \"data\\n\"}\n    - path: /etc/app/mode.conf\n      mode: 0640\n      contents: {inline: \"m\\n\"}\n  links:\n    - path: /etc/app/current\n      target: b.conf\n";

fn apply(cfg: &Path, root: &Path, failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = common::bin();
    cmd.args(["apply", "--config"]).arg(cfg).arg("--root").arg(root).args(["--offline", "--output", "json"]);
    match failpoint {
        Some(fp) => cmd.env(FAILPOINT_ENV, fp),
        None => cmd.env_remove(FAILPOINT_ENV),
    };
    cmd.output().unwrap()
}

fn state(root: &Path) -> Value {
    serde_json::from_slice(&fs::read(root.join("var/lib/core-ops/state.json")).unwrap()).unwrap()
}

fn temp_files(dir: &Path, found: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(TEMP_PREFIX) {
            found.push(p.display().to_string());
        }
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            temp_files(&p, found);
        }
    }
}

#[test]
fn every_failpoint_leaves_a_recoverable_host() {
    let work = tempfile::tempdir().unwrap();
    let (v1, v2) = (work.path().join("v1.bu"), work.path().join("v2.bu"));
    fs::write(&v1, V1).unwrap();
    fs::write(&v2, V2).unwrap();
    let mut reached = 0;
    for fp in FAILPOINTS {
        let root = tempfile::tempdir().unwrap();
        let first = apply(&v1, root.path(), None);
        assert_eq!(first.status.code(), Some(0), "{fp}: {}", String::from_utf8_lossy(&first.stdout));
        let v1_revision = state(root.path())["last_applied"]["revision"].clone();

        let crashed = apply(&v2, root.path(), Some(fp));
        let aborted = crashed.status.code().is_none();
        reached += usize::from(aborted);
        assert!(aborted, "{fp}: the failpoint was not reached ({:?})", crashed.status);

        // Never torn: every file holds its old or its new content.
        for (path, old, new) in [
            ("etc/app/a.conf", Some("a=1\n"), "a=2\n"),
            ("etc/app/b.conf", None, "b=2\n"),
            ("var/lib/app/data", None, "data\n"),
        ] {
            match fs::read_to_string(root.path().join(path)) {
                Ok(text) => assert!(Some(text.as_str()) == old || text == new, "{fp}: {path} is torn: {text:?}"),
                Err(_) => assert!(old.is_none() || *fp != "after-final-state", "{fp}: {path} vanished"),
            }
        }
        // The state never claims an unconverged revision.
        let after_crash = state(root.path());
        if *fp != "after-final-state" {
            assert_eq!(
                after_crash["last_applied"]["revision"], v1_revision,
                "{fp}: recorded a revision that had not converged"
            );
        }

        let again = apply(&v2, root.path(), None);
        assert_eq!(
            again.status.code(),
            Some(0),
            "{fp}: the next run failed: {}",
            String::from_utf8_lossy(&again.stdout)
        );
        let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(doc["result"], "converged", "{fp}");
        let mut leftovers = Vec::new();
        temp_files(root.path(), &mut leftovers);
        assert!(leftovers.is_empty(), "{fp}: temp files left: {leftovers:?}");
        assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=2\n", "{fp}");
        assert_eq!(fs::read_link(root.path().join("etc/app/current")).unwrap().to_str(), Some("b.conf"), "{fp}");
        assert!(!root.path().join("etc/app/old.conf").exists(), "{fp}: the stale owned file was not removed");
        let final_state = state(root.path());
        assert!(final_state.get("pending").is_none(), "{fp}: pending left behind");
        let owned: Vec<&str> = final_state["last_applied"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            owned,
            [
                "/etc/app",
                "/etc/app/a.conf",
                "/etc/app/b.conf",
                "/etc/app/current",
                "/etc/app/mode.conf",
                "/var/lib/app",
                "/var/lib/app/data"
            ],
            "{fp}"
        );
    }
    assert_eq!(reached, FAILPOINTS.len());
}
