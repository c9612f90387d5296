//! Crash safety: an apply of v2 over v1, killed at every failpoint (and after each rename but the
//! last), leaves every managed node exactly as v1 or exactly as v2 had it — content, link target,
//! mode, owner, kind, or absence — and never records an unconverged revision as applied; a
//! revision the state records always has its history snapshot. The next run then converges to
//! exactly v2 with no temp file left and the right owned set, and `rollback` to v1 and back to v2
//! both work. Needs `--features failpoints`.
//!
//! The expected trees are written out by hand below (modes, owners, contents and targets as the
//! configs declare them and the Ignition spec defaults them), never taken from core-ops itself.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use core_ops::host::failpoint::{FAILPOINT_ENV, FAILPOINTS};
use core_ops::host::fs::TEMP_PREFIX;
use serde_json::Value;

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

/// The managed trees: everything below them is compared node by node.
const MANAGED: [&str; 2] = ["/etc/app", "/var/lib/app"];

/// How many renames an apply of v2 over v1 makes (a.conf, b.conf, current, data): the
/// `between-renames` failpoint is hit after each of the first three.
const V2_RENAMES: usize = 4;

/// v1: a directory, three files (one of them private) and a link; as root also a file owned by
/// 1000:1000.
fn v1(as_root: bool) -> String {
    let owner = if as_root {
        "    - path: /etc/app/owner.conf\n      contents: {inline: \"o\\n\"}\n      user: {id: 1000}\n      group: {id: 1000}\n"
    } else {
        ""
    };
    format!(
        "{HEAD}storage:\n  directories:\n    - path: /etc/app\n      mode: 0750\n  files:\n    - path: /etc/app/a.conf\n      contents: {{inline: \"a=1\\n\"}}\n    - path: /etc/app/old.conf\n      contents: {{inline: \"old\\n\"}}\n    - path: /etc/app/mode.conf\n      mode: 0600\n      contents: {{inline: \"m\\n\"}}\n{owner}  links:\n    - path: /etc/app/current\n      target: a.conf\n"
    )
}

/// v2: the directory's mode changes, a.conf changes, b.conf and a new directory with a file
/// appear, old.conf goes, mode.conf changes only its mode, the link moves, and (as root)
/// owner.conf changes only its owner.
fn v2(as_root: bool) -> String {
    let owner = if as_root {
        "    - path: /etc/app/owner.conf\n      contents: {inline: \"o\\n\"}\n      user: {id: 1001}\n      group: {id: 1002}\n"
    } else {
        ""
    };
    format!(
        "{HEAD}storage:\n  directories:\n    - path: /etc/app\n      mode: 0755\n    - path: /var/lib/app\n  files:\n    - path: /etc/app/a.conf\n      contents: {{inline: \"a=2\\n\"}}\n    - path: /etc/app/b.conf\n      contents: {{inline: \"b=2\\n\"}}\n    - path: /var/lib/app/data\n      contents: {{inline: \"data\\n\"}}\n    - path: /etc/app/mode.conf\n      mode: 0640\n      contents: {{inline: \"m\\n\"}}\n{owner}  links:\n    - path: /etc/app/current\n      target: b.conf\n"
    )
}

/// One node as `common::manifest` prints it.
fn node(kind: &str, path: &str, mode: u32, owner: (u32, u32), payload: &str) -> (String, String) {
    let line = format!("{kind} {path} {mode:04o} {}:{} {payload}", owner.0, owner.1);
    (path.to_string(), line)
}

fn file(path: &str, mode: u32, owner: (u32, u32), text: &str) -> (String, String) {
    use sha2::Digest;
    node("file", path, mode, owner, &hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

fn dir(path: &str, mode: u32, owner: (u32, u32)) -> (String, String) {
    node("dir", path, mode, owner, "-")
}

fn link(path: &str, owner: (u32, u32), target: &str) -> (String, String) {
    node("link", path, 0o777, owner, target)
}

/// The owner core-ops gives nodes without `user`/`group`: root (`apply` refuses to run without
/// root, so these tests need root as the whole suite does).
fn default_owner() -> (u32, u32) {
    (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw())
}

/// The managed nodes after a clean apply of v1, by hand: files 0644 and directories 0755 by
/// default (Ignition's defaults), modes and owners as declared.
fn expected_v1(as_root: bool) -> BTreeMap<String, String> {
    let me = default_owner();
    let mut nodes = BTreeMap::from([
        dir("/etc/app", 0o750, me),
        file("/etc/app/a.conf", 0o644, me, "a=1\n"),
        file("/etc/app/old.conf", 0o644, me, "old\n"),
        file("/etc/app/mode.conf", 0o600, me, "m\n"),
        link("/etc/app/current", me, "a.conf"),
    ]);
    if as_root {
        nodes.extend([file("/etc/app/owner.conf", 0o644, (1000, 1000), "o\n")]);
    }
    nodes
}

/// The managed nodes after a clean apply of v2 over v1, by hand.
fn expected_v2(as_root: bool) -> BTreeMap<String, String> {
    let me = default_owner();
    let mut nodes = BTreeMap::from([
        dir("/etc/app", 0o755, me),
        file("/etc/app/a.conf", 0o644, me, "a=2\n"),
        file("/etc/app/b.conf", 0o644, me, "b=2\n"),
        file("/etc/app/mode.conf", 0o640, me, "m\n"),
        link("/etc/app/current", me, "b.conf"),
        dir("/var/lib/app", 0o755, me),
        file("/var/lib/app/data", 0o644, me, "data\n"),
    ]);
    if as_root {
        nodes.extend([file("/etc/app/owner.conf", 0o644, (1001, 1002), "o\n")]);
    }
    nodes
}

/// The managed nodes below `root` as manifest lines. Temp files of an interrupted run are not
/// managed nodes (the next run removes them; `temp_files` checks that).
fn managed(root: &Path) -> BTreeMap<String, String> {
    let is_temp = |path: &str| path.rsplit('/').next().is_some_and(|name| name.starts_with(TEMP_PREFIX));
    common::manifest(root)
        .into_iter()
        .filter(|(path, _)| MANAGED.iter().any(|m| path == m || path.starts_with(&format!("{m}/"))))
        .filter(|(path, _)| !is_temp(path))
        .map(|(path, (_, line))| (path, line))
        .collect()
}

/// Every managed node that is neither as v1 nor as v2 had it (absence included).
fn neither_old_nor_new(
    seen: &BTreeMap<String, String>,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<String> {
    let paths: std::collections::BTreeSet<&String> = seen.keys().chain(old.keys()).chain(new.keys()).collect();
    paths
        .into_iter()
        .filter(|p| seen.get(*p) != old.get(*p) && seen.get(*p) != new.get(*p))
        .map(|p| {
            let show = |m: &BTreeMap<String, String>| m.get(p).map_or("absent".to_string(), Clone::clone);
            format!("{p}: is {}; v1 had {}; v2 has {}", show(seen), show(old), show(new))
        })
        .collect()
}

/// Runs `core-ops ARGS --root ROOT --offline --format json`, armed with `failpoint`.
fn core_ops(args: &[&str], root: &Path, failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = common::bin();
    cmd.args(args).arg("--root").arg(root).args(["--offline", "--format", "json"]);
    match failpoint {
        Some(fp) => cmd.env(FAILPOINT_ENV, fp),
        None => cmd.env_remove(FAILPOINT_ENV),
    };
    cmd.output().unwrap()
}

fn apply(cfg: &Path, root: &Path, failpoint: Option<&str>) -> std::process::Output {
    core_ops(&["apply", "--config", cfg.to_str().unwrap()], root, failpoint)
}

/// Asserts that a run exited 0 with `"result": "converged"`.
fn assert_converged(out: &std::process::Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["result"], "converged", "{what}");
}

fn state(root: &Path) -> Value {
    serde_json::from_slice(&fs::read(root.join("var/lib/core-ops/state.json")).unwrap()).unwrap()
}

fn recorded_revision(root: &Path) -> String {
    state(root)["last_applied"]["revision"].as_str().unwrap().to_string()
}

/// The revisions the history holds, oldest first.
fn history(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("var/lib/core-ops/history"))
        .map(|dir| dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names.iter().filter_map(|n| n.strip_suffix(".json")?.split_once('-').map(|(_, r)| r.to_string())).collect()
}

/// Whether the history holds the snapshot of the revision the state records, under the
/// generation the state records.
fn recorded_revision_has_snapshot(root: &Path) -> bool {
    let st = state(root);
    let name =
        format!("{:08}-{}.json", st["generation"].as_u64().unwrap(), st["last_applied"]["revision"].as_str().unwrap());
    root.join("var/lib/core-ops/history").join(name).is_file()
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

fn owned_paths(root: &Path) -> Vec<String> {
    state(root)["last_applied"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_string())
        .collect()
}

/// Every failpoint, with `between-renames` at each of its positions.
fn crash_points() -> Vec<String> {
    FAILPOINTS
        .iter()
        .flat_map(|fp| match *fp {
            "between-renames" => (1..V2_RENAMES).map(|n| format!("{fp}:{n}")).collect(),
            _ => vec![fp.to_string()],
        })
        .collect()
}

/// The configs, the v1 and v2 revisions, and the expected trees of one run of the matrix.
struct Versions {
    v1: std::path::PathBuf,
    v2: std::path::PathBuf,
    old: BTreeMap<String, String>,
    new: BTreeMap<String, String>,
}

impl Versions {
    fn write(dir: &Path) -> Versions {
        let as_root = common::is_root();
        let (v1_path, v2_path) = (dir.join("v1.bu"), dir.join("v2.bu"));
        fs::write(&v1_path, v1(as_root)).unwrap();
        fs::write(&v2_path, v2(as_root)).unwrap();
        Versions { v1: v1_path, v2: v2_path, old: expected_v1(as_root), new: expected_v2(as_root) }
    }
}

#[test]
fn the_expected_trees_are_what_clean_applies_write() {
    let work = tempfile::tempdir().unwrap();
    let v = Versions::write(work.path());
    let root = common::conformance_root();
    assert_converged(&apply(&v.v1, root.path(), None), "apply v1");
    assert_eq!(managed(root.path()), v.old, "v1");
    assert_converged(&apply(&v.v2, root.path(), None), "apply v2");
    assert_eq!(managed(root.path()), v.new, "v2");
}

#[test]
fn every_failpoint_leaves_a_recoverable_host() {
    let work = tempfile::tempdir().unwrap();
    let v = Versions::write(work.path());
    let points = crash_points();
    for fp in &points {
        let root = common::conformance_root();
        let root = root.path();
        assert_converged(&apply(&v.v1, root, None), &format!("{fp}: apply v1"));
        let v1_revision = recorded_revision(root);

        let crashed = apply(&v.v2, root, Some(fp));
        assert!(crashed.status.code().is_none(), "{fp}: the failpoint was not reached ({:?})", crashed.status);
        check_after_crash(fp, root, &v, &v1_revision);

        assert_converged(&apply(&v.v2, root, None), &format!("{fp}: the next run"));
        let v2_revision = recorded_revision(root);
        assert_ne!(v2_revision, v1_revision, "{fp}");
        check_converged_to_v2(fp, root, &v);
        check_rollback_and_back(fp, root, &v, &v1_revision, &v2_revision);
    }
    assert_eq!(points.len(), FAILPOINTS.len() + V2_RENAMES - 2, "every failpoint and rename position ran");
}

/// Right after the crash: nodes old or new, the state never ahead of the host, and a recorded
/// revision always with its snapshot.
fn check_after_crash(fp: &str, root: &Path, v: &Versions, v1_revision: &str) {
    let torn = neither_old_nor_new(&managed(root), &v.old, &v.new);
    assert!(torn.is_empty(), "{fp}: nodes neither old nor new:\n{}", torn.join("\n"));
    let recorded = recorded_revision(root);
    if recorded != v1_revision {
        assert_eq!(fp, "after-final-state", "{fp}: recorded a revision that had not converged");
        assert_eq!(managed(root), v.new, "{fp}: recorded v2 before the host held it");
    }
    assert!(
        recorded_revision_has_snapshot(root),
        "{fp}: the state records {recorded} but the history has no snapshot of it: {:?}",
        history(root)
    );
}

/// After the run that follows the crash: exactly v2, nothing left over, the right records.
fn check_converged_to_v2(fp: &str, root: &Path, v: &Versions) {
    assert_eq!(managed(root), v.new, "{fp}: the next run did not converge to v2");
    let mut leftovers = Vec::new();
    temp_files(root, &mut leftovers);
    assert!(leftovers.is_empty(), "{fp}: temp files left: {leftovers:?}");
    let st = state(root);
    assert!(st.get("pending").is_none(), "{fp}: pending left behind");
    assert_eq!(owned_paths(root), v.new.keys().cloned().collect::<Vec<_>>(), "{fp}: owned set");
    let revision = recorded_revision(root);
    assert_eq!(history(root).last(), Some(&revision), "{fp}: the applied revision is not the newest snapshot");
    assert!(recorded_revision_has_snapshot(root), "{fp}: no snapshot of {revision}");
}

/// `rollback` goes back to v1 exactly, and `rollback --to` v2 returns.
fn check_rollback_and_back(fp: &str, root: &Path, v: &Versions, v1_revision: &str, v2_revision: &str) {
    assert_converged(&core_ops(&["rollback"], root, None), &format!("{fp}: rollback"));
    assert_eq!(recorded_revision(root), v1_revision, "{fp}: rollback recorded another revision");
    assert_eq!(managed(root), v.old, "{fp}: rollback did not restore v1");
    assert_converged(&core_ops(&["rollback", "--to", v2_revision], root, None), &format!("{fp}: rollback --to v2"));
    assert_eq!(recorded_revision(root), v2_revision, "{fp}");
    assert_eq!(managed(root), v.new, "{fp}: rollback --to v2 did not restore v2");
}

#[test]
fn the_old_or_new_check_sees_a_missing_a_changed_and_a_foreign_node() {
    let old = BTreeMap::from([file("/etc/app/a", 0o644, (0, 0), "1"), link("/etc/app/l", (0, 0), "a")]);
    let new = BTreeMap::from([file("/etc/app/a", 0o600, (0, 0), "2"), link("/etc/app/l", (0, 0), "b")]);
    assert!(neither_old_nor_new(&old, &old, &new).is_empty());
    assert!(neither_old_nor_new(&new, &old, &new).is_empty());
    let mut missing = old.clone();
    missing.remove("/etc/app/a");
    assert_eq!(neither_old_nor_new(&missing, &old, &new).len(), 1, "a file that both versions have vanished");
    let mixed = BTreeMap::from([file("/etc/app/a", 0o600, (0, 0), "1"), link("/etc/app/l", (0, 0), "c")]);
    assert_eq!(neither_old_nor_new(&mixed, &old, &new).len(), 2, "old content with the new mode; a third target");
    let mut foreign = old.clone();
    foreign.extend([file("/etc/app/x", 0o644, (0, 0), "x")]);
    assert_eq!(neither_old_nor_new(&foreign, &old, &new).len(), 1, "a node neither version has");
}

#[test]
fn between_renames_is_hit_after_each_rename_but_the_last() {
    let work = tempfile::tempdir().unwrap();
    let v = Versions::write(work.path());
    let root = common::conformance_root();
    assert_converged(&apply(&v.v1, root.path(), None), "apply v1");
    let past_the_last = format!("between-renames:{V2_RENAMES}");
    assert_converged(&apply(&v.v2, root.path(), Some(&past_the_last)), "apply v2 armed past the last rename");
    assert_eq!(managed(root.path()), v.new);
}

#[test]
fn a_missing_snapshot_of_the_applied_revision_is_repaired_by_the_next_run() {
    let work = tempfile::tempdir().unwrap();
    let v = Versions::write(work.path());
    let root = common::conformance_root();
    let root = root.path();
    assert_converged(&apply(&v.v1, root, None), "apply v1");
    assert_converged(&apply(&v.v2, root, None), "apply v2");
    // What an interrupted run of an earlier version left: v2 recorded, its snapshot missing.
    let history_dir = root.join("var/lib/core-ops/history");
    let v2_revision = recorded_revision(root);
    for entry in fs::read_dir(&history_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(&format!("-{v2_revision}.json")) {
            fs::remove_file(path).unwrap();
        }
    }
    assert!(!recorded_revision_has_snapshot(root));
    // Same inputs: the converged fast path must not hide the hole.
    assert_converged(&apply(&v.v2, root, None), "apply v2 again");
    assert!(recorded_revision_has_snapshot(root), "not repaired: {:?}", history(root));
    check_rollback_and_back("repaired", root, &v, &history(root)[0], &v2_revision);
}
