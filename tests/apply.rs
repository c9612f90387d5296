//! `core-ops apply` on real directories: idempotence, drift, stale removal, ownership and
//! adoption (attribute-only entries included), symlink attacks, path tricks, the run lock
//! (waiting, timing out, concurrent runs taking turns), a corrupt state, rollback, remote
//! sources, enablement (with `systemctl --root` as the oracle) and first-boot ownership.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn apply(config: &Path, root: &Path, extra: &[&str]) -> Output {
    common::bin()
        .args(["apply", "--config"])
        .arg(config)
        .arg("--root")
        .arg(root)
        .arg("--offline")
        .args(extra)
        .output()
        .unwrap()
}

fn apply_json(config: &Path, root: &Path, extra: &[&str]) -> (i32, Value) {
    let out = apply(config, root, &[&["--format", "json"], extra].concat());
    let code = out.status.code().unwrap_or(-1);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (code, doc)
}

fn butane(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("variant: fcos\nversion: 1.6.0\n{body}")).unwrap();
    path
}

const TWO_FILES: &str = "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n    - path: /etc/app/b.conf\n      mode: 0600\n      contents: {inline: \"b=secret\\n\"}\n";

fn action_of(doc: &Value, path: &str) -> String {
    doc["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == path)
        .map(|o| o["action"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn a_second_apply_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let (code, first) = apply_json(&cfg, root.path(), &[]);
    assert_eq!((code, first["result"].as_str()), (0, Some("converged")));
    assert_eq!(first["plan"]["summary"]["create"], 2);
    let inode = fs::metadata(root.path().join("etc/app/a.conf")).unwrap().ino();
    let (code, second) = apply_json(&cfg, root.path(), &[]);
    assert_eq!(code, 0);
    let s = &second["plan"]["summary"];
    assert_eq!(
        (s["create"].as_u64(), s["update"].as_u64(), s["delete"].as_u64(), s["no_op"].as_u64()),
        (Some(0), Some(0), Some(0), Some(2))
    );
    assert_eq!(fs::metadata(root.path().join("etc/app/a.conf")).unwrap().ino(), inode, "the file was not rewritten");
    assert_eq!(second["generation"], 1, "an unchanged revision is not a new generation");
    assert_eq!(fs::metadata(root.path().join("etc/app/b.conf")).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn external_drift_is_reported_and_corrected() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::write(root.path().join("etc/app/a.conf"), "a=edited by hand\n").unwrap();
    fs::set_permissions(root.path().join("etc/app/b.conf"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, doc) = apply_json(&cfg, root.path(), &[]);
    assert_eq!(code, 0);
    let objects = doc["plan"]["objects"].as_array().unwrap();
    for o in objects {
        assert_eq!((o["action"].as_str(), o["drift"].as_str()), (Some("update"), Some("external-drift")), "{o}");
    }
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    assert_eq!(fs::metadata(root.path().join("etc/app/b.conf")).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn owned_objects_that_leave_the_config_are_removed_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/app/theirs.conf", "not ours\n");
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    let smaller = butane(
        work.path(),
        "c2.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n",
    );
    let (code, doc) = apply_json(&smaller, root.path(), &[]);
    assert_eq!(code, 0);
    let stale =
        doc["plan"]["objects"].as_array().unwrap().iter().find(|o| o["path"] == "/etc/app/b.conf").unwrap().clone();
    assert_eq!((stale["action"].as_str(), stale["drift"].as_str()), (Some("delete"), Some("stale")));
    assert!(!root.path().join("etc/app/b.conf").exists());
    assert!(root.path().join("etc/app/a.conf").exists());
    assert_eq!(
        fs::read_to_string(root.path().join("etc/app/theirs.conf")).unwrap(),
        "not ours\n",
        "never delete what CoreOps does not own"
    );
}

#[test]
fn unowned_conflicts_block_everything_until_adopted() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/app/a.conf", "someone else's\n");
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let (code, doc) = apply_json(&cfg, root.path(), &[]);
    assert_eq!((code, doc["result"].as_str()), (1, Some("failed")));
    assert_eq!(action_of(&doc, "/etc/app/a.conf"), "blocked");
    assert!(doc["errors"][0].as_str().unwrap().contains("apply --adopt"), "{doc}");
    assert!(!root.path().join("etc/app/b.conf").exists(), "a blocked plan writes nothing");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "someone else's\n");
    let (code, doc) = apply_json(&cfg, root.path(), &["--adopt"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    assert_eq!(recorded_paths(root.path(), "last_applied"), ["/etc/app/a.conf", "/etc/app/b.conf"]);
}

/// The paths the state under `root` records in `section` (`last_applied`: owned; `pending`:
/// about to be written); none without a state file.
fn recorded_paths(root: &Path, section: &str) -> Vec<String> {
    let Ok(bytes) = fs::read(root.join("var/lib/core-ops/state.json")) else { return Vec::new() };
    let state: Value = serde_json::from_slice(&bytes).unwrap();
    let objects = state[section]["objects"].as_array().cloned().unwrap_or_default();
    objects.iter().map(|o| o["path"].as_str().unwrap().to_string()).collect()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn an_attribute_only_entry_does_not_chmod_an_unowned_file_until_adopted() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/app/theirs.conf", "not ours\n");
    let theirs = root.path().join("etc/app/theirs.conf");
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = butane(work.path(), "m.bu", "storage:\n  files:\n    - path: /etc/app/theirs.conf\n      mode: 0644\n");
    let (code, doc) = apply_json(&cfg, root.path(), &[]);
    assert_eq!((code, doc["result"].as_str()), (1, Some("failed")), "{doc}");
    assert_eq!(action_of(&doc, "/etc/app/theirs.conf"), "blocked", "{doc}");
    assert_eq!(mode_of(&theirs), 0o600, "an unowned file is not chmodded without --adopt");
    for section in ["last_applied", "pending"] {
        assert!(recorded_paths(root.path(), section).is_empty(), "nothing recorded in {section}");
    }
    let (code, doc) = apply_json(&cfg, root.path(), &["--adopt"]);
    assert_eq!((code, doc["result"].as_str()), (0, Some("converged")), "{doc}");
    assert_eq!(mode_of(&theirs), 0o644, "--adopt takes it over");
    assert_eq!(fs::read_to_string(&theirs).unwrap(), "not ours\n", "an entry without contents keeps the content");
    assert_eq!(recorded_paths(root.path(), "last_applied"), ["/etc/app/theirs.conf"]);
}

#[test]
fn a_symlinked_parent_is_refused_and_nothing_is_written_outside() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    symlink(outside.path(), root.path().join("etc/app")).unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let out = apply(&cfg, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/etc/app is a symlink; CoreOps never follows symlinks under the root"), "{text}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the root");
}

#[test]
fn a_parent_replaced_by_a_symlink_after_apply_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::remove_dir_all(root.path().join("etc/app")).unwrap();
    symlink(outside.path(), root.path().join("etc/app")).unwrap();
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(1));
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn path_tricks_stay_inside_the_root() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dirty =
        butane(work.path(), "dirty.bu", "storage:\n  files:\n    - path: /etc/../../x\n      contents: {inline: x}\n");
    let out = apply(&dirty, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("path is not fully simplified"));
    let hard = butane(
        work.path(),
        "hard.bu",
        "storage:\n  files:\n    - path: /etc/target\n      contents: {inline: t}\n  links:\n    - path: /etc/h\n      hard: true\n      target: /../../../etc/target\n    - path: /etc/s\n      target: /etc/shadow-outside\n",
    );
    let out = apply(&hard, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        fs::metadata(root.path().join("etc/h")).unwrap().ino(),
        fs::metadata(root.path().join("etc/target")).unwrap().ino(),
        "the hard link target resolved inside the root"
    );
    assert_eq!(
        fs::read_link(root.path().join("etc/s")).unwrap().to_str(),
        Some("/etc/shadow-outside"),
        "symlink targets are written verbatim, never followed"
    );
}

/// The run lock under `root`: an `flock` on /run/core-ops/lock (docs/plan-and-apply.md, "How apply writes").
fn lock_path(root: &Path) -> PathBuf {
    root.join("run/core-ops/lock")
}

/// Takes the run lock as another run would; dropping the file releases it.
fn hold_run_lock(root: &Path) -> fs::File {
    let path = lock_path(root);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file =
        fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path).unwrap();
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("the lock is free");
    file
}

/// Starts `apply --format json` with a generous lock timeout, without waiting for it.
fn spawn_apply(config: &Path, root: &Path) -> Child {
    common::bin()
        .args(["apply", "--config"])
        .arg(config)
        .arg("--root")
        .arg(root)
        .args(["--offline", "--format", "json", "--lock-timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether process `pid` has `file` open (read from /proc).
fn has_open(pid: u32, file: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(Result::ok).any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == file))
}

/// Waits until `child` has opened the run lock of `root`, which the test holds: from then on it
/// can only wait. Panics, with its output, if it exits first or has not got there in a minute.
fn wait_until_blocked_on_the_lock(child: &mut Child, root: &Path) {
    let lock = fs::canonicalize(lock_path(root)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_open(child.id(), &lock) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("apply exited ({status}) before it reached the held lock: {stderr}");
        }
        assert!(Instant::now() < deadline, "apply did not reach the run lock within a minute");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks, for a while, that every one of `runs` stays alive and nothing is written under `root`
/// (neither the config's files nor the state): they really wait for the lock rather than run.
fn assert_keep_waiting(runs: &mut [Child], root: &Path) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        for run in runs.iter_mut() {
            assert!(run.try_wait().unwrap().is_none(), "apply ended while another run held the lock");
        }
        assert!(!root.join("etc").exists(), "apply wrote while another run held the lock");
        assert!(!root.join("var/lib/core-ops/state.json").exists(), "apply saved state while the lock was held");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit code and JSON report of a finished `spawn_apply`.
fn finish(child: Child) -> (Option<i32>, Value) {
    let out = child.wait_with_output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code(), doc)
}

/// Whether the /proc file system this synchronisation relies on is there; skips the test if not.
fn proc_is_mounted(test: &str) -> bool {
    let mounted = Path::new("/proc/self/fd").is_dir();
    if !mounted {
        common::skip(test, "/proc is not mounted; it shows when a run waits for the lock");
    }
    mounted
}

#[test]
fn a_second_run_fails_clearly_when_the_lock_is_not_released_in_time() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let _held = hold_run_lock(root.path());
    let out = apply(&cfg, root.path(), &["--lock-timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another core-ops run holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.path().join("etc/app").exists());
}

#[test]
fn a_waiting_run_proceeds_once_the_lock_is_released() {
    if !proc_is_mounted("a_waiting_run_proceeds_once_the_lock_is_released") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let held = hold_run_lock(root.path());
    let mut waiting = [spawn_apply(&cfg, root.path())];
    wait_until_blocked_on_the_lock(&mut waiting[0], root.path());
    assert_keep_waiting(&mut waiting, root.path());
    drop(held);
    let [waiting] = waiting;
    let (code, doc) = finish(waiting);
    assert_eq!((code, doc["result"].as_str()), (Some(0), Some("converged")), "{doc}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/b.conf")).unwrap(), "b=secret\n");
}

#[test]
fn concurrent_runs_take_turns_one_writes_and_the_other_finds_it_done() {
    if !proc_is_mounted("concurrent_runs_take_turns_one_writes_and_the_other_finds_it_done") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    // Both runs start while the lock is held, so both are waiting when it is released.
    let held = hold_run_lock(root.path());
    let mut runs = [spawn_apply(&cfg, root.path()), spawn_apply(&cfg, root.path())];
    for run in &mut runs {
        wait_until_blocked_on_the_lock(run, root.path());
    }
    assert_keep_waiting(&mut runs, root.path());
    drop(held);
    let mut results: Vec<(Option<i32>, String, u64, u64)> = runs
        .into_iter()
        .map(|run| {
            let (code, doc) = finish(run);
            let summary = &doc["plan"]["summary"];
            let result = doc["result"].as_str().unwrap_or_default().to_string();
            (code, result, summary["create"].as_u64().unwrap(), summary["no_op"].as_u64().unwrap())
        })
        .collect();
    results.sort_by_key(|r| r.2);
    let converged = |create, no_op| (Some(0), "converged".to_string(), create, no_op);
    assert_eq!(results, [converged(0, 2), converged(2, 0)], "one run writes, the other finds it done");
}

#[test]
fn a_corrupt_state_is_a_clear_error_and_adopt_recovers() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::write(root.path().join("var/lib/core-ops/state.json"), "{\"schema_version\": 1, \"generation\": ").unwrap();
    fs::write(root.path().join("etc/app/a.conf"), "changed\n").unwrap();
    let out = apply(&cfg, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the state file is corrupt") && err.contains("Move it aside"), "{err}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "changed\n", "nothing written");
    fs::rename(
        root.path().join("var/lib/core-ops/state.json"),
        root.path().join("var/lib/core-ops/state.json.corrupt"),
    )
    .unwrap();
    assert_eq!(apply(&cfg, root.path(), &["--adopt"]).status.code(), Some(0), "the documented recovery works");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
}

#[test]
fn rollback_returns_to_an_earlier_revision() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let v1 = butane(
        work.path(),
        "v1.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"v1\\n\"}\n",
    );
    let v2 = butane(
        work.path(),
        "v2.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"v2\\n\"}\n    - path: /etc/app/new.conf\n      contents: {inline: n}\n",
    );
    let (_, first) = apply_json(&v1, root.path(), &[]);
    let (_, second) = apply_json(&v2, root.path(), &[]);
    assert_ne!(first["revision"], second["revision"]);
    let out = common::bin()
        .args(["rollback", "--root"])
        .arg(root.path())
        .args(["--offline", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["revision"], first["revision"]);
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "v1\n");
    assert!(!root.path().join("etc/app/new.conf").exists(), "what v2 added is removed");
    let out = common::bin()
        .args(["rollback", "--to", "ffffffff", "--root"])
        .arg(root.path())
        .arg("--offline")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no applied snapshot for revision ffffffff"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serves `body` for every request on 127.0.0.1, `count` times.
fn serve(body: &'static [u8], count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}/payload")
}

#[test]
fn remote_sources_are_written_only_when_their_hash_matches() {
    use sha2::Digest;
    let body: &'static [u8] = b"fetched over http\n";
    let good = format!("sha256-{}", hex::encode(sha2::Sha256::digest(body)));
    let bad = format!("sha256-{}", "0".repeat(64));
    for (hash, ok) in [(good, true), (bad, false)] {
        let url = serve(body, 2);
        let work = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let cfg = butane(
            work.path(),
            "r.bu",
            &format!(
                "storage:\n  files:\n    - path: /etc/remote.txt\n      contents:\n        source: {url}\n        verification: {{hash: {hash}}}\n"
            ),
        );
        let out = common::bin().args(["apply", "--config"]).arg(&cfg).arg("--root").arg(root.path()).output().unwrap();
        if ok {
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
            assert_eq!(fs::read(root.path().join("etc/remote.txt")).unwrap(), body);
        } else {
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("hash mismatch"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(!root.path().join("etc").exists(), "nothing written");
        }
        // Offline, the unchanged input that converged is recognised as done without a fetch;
        // the wrong hash never converged, so it still needs the network, and says so.
        let offline = apply(&cfg, root.path(), &[]);
        let offline_stdout = String::from_utf8_lossy(&offline.stdout);
        if ok {
            assert_eq!(offline.status.code(), Some(0), "{offline_stdout}{}", String::from_utf8_lossy(&offline.stderr));
            assert_eq!(fs::read(root.path().join("etc/remote.txt")).unwrap(), body);
        } else {
            assert_eq!(offline.status.code(), Some(1), "{offline_stdout}");
            assert!(offline_stdout.contains("--offline"), "{offline_stdout}");
            assert!(!root.path().join("etc").exists(), "nothing written");
        }
    }
}

fn links_under(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc/systemd/system")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    fs::read_link(&p).unwrap().display().to_string(),
                ));
            } else if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn enablement_matches_systemctl_enable() {
    if std::process::Command::new("systemctl").arg("--version").output().is_err() {
        common::skip(
            "enablement_matches_systemctl_enable",
            "systemctl is not installed; it is the oracle for enablement",
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let units = [
        (
            "web.service",
            "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\nRequiredBy=x.target\nAlias=web-alias.service\nAlso=helper.socket\n",
        ),
        ("helper.socket", "[Socket]\nListenStream=127.0.0.1:9\n\n[Install]\nWantedBy=sockets.target\n"),
        (
            "tmpl@.service",
            "[Service]\nExecStart=/bin/echo %i\n\n[Install]\nWantedBy=multi-user.target\nDefaultInstance=def\n",
        ),
    ];
    let mut body = String::from("systemd:\n  units:\n");
    for (name, contents) in units {
        let enabled = if name == "helper.socket" { "" } else { "      enabled: true\n" };
        body.push_str(&format!("    - name: {name}\n{enabled}      contents: {:?}\n", contents));
    }
    body.push_str("    - name: tmpl@x.service\n      enabled: true\n");
    let cfg = butane(work.path(), "u.bu", &body);
    let ours = tempfile::tempdir().unwrap();
    let out = apply(&cfg, ours.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let oracle = tempfile::tempdir().unwrap();
    for (name, contents) in units {
        write(oracle.path(), &format!("etc/systemd/system/{name}"), contents);
    }
    let status = std::process::Command::new("systemctl")
        .arg(format!("--root={}", oracle.path().display()))
        .args(["enable", "web.service", "tmpl@.service", "tmpl@x.service"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(links_under(ours.path()), links_under(oracle.path()));
    let disable = butane(work.path(), "d.bu", &body.replace("enabled: true", "enabled: false"));
    assert_eq!(apply(&disable, ours.path(), &[]).status.code(), Some(0));
    assert!(links_under(ours.path()).is_empty(), "disabling removes the links: {:?}", links_under(ours.path()));
}

#[test]
fn the_first_apply_owns_what_the_rendered_ignition_wrote() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/01-caddy-whoami");
    let out = common::bin()
        .args(["render-ignition", "--source-repo"])
        .arg(&repo)
        .args(["--host", "example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ign: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Provision like Ignition: write every file of the config into a fresh root.
    let root = tempfile::tempdir().unwrap();
    for f in ign["storage"]["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let source = f["contents"]["source"].as_str().unwrap();
        let (bytes, decompressed) = common::decode_data_url(source, f["contents"]["compression"].as_str()).unwrap();
        assert!(decompressed, "{path}: unknown compression");
        let full = root.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, bytes).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(f["mode"].as_u64().unwrap_or(0o644) as u32)).unwrap();
    }
    // Day 2: the same repository without the whoami service.
    let day2 = tempfile::tempdir().unwrap();
    for entry in [
        "hosts/example/host.yaml",
        "services/caddy/quadlet/caddy.container",
        "services/caddy/quadlet/caddy-data.volume",
        "services/caddy/quadlet/web.network",
        "services/caddy/config/Caddyfile",
    ] {
        write(day2.path(), entry, &fs::read_to_string(repo.join(entry)).unwrap());
    }
    write(day2.path(), "hosts/example/host.yaml", "host: example\nservices: [caddy]\n");
    let out = common::bin()
        .args(["apply", "--source-repo"])
        .arg(day2.path())
        .args(["--host", "example", "--root"])
        .arg(root.path())
        .args(["--offline", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        action_of(&doc, "/etc/containers/systemd/whoami.container"),
        "delete",
        "owned since first boot, so removable"
    );
    assert_eq!(action_of(&doc, "/etc/caddy/Caddyfile"), "no-op");
    assert!(!root.path().join("etc/containers/systemd/whoami.container").exists());
}
