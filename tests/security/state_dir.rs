//! Attacks through CoreOps's own files: the state directory `/var/lib/core-ops` (state file,
//! history, audit log), the lock directory `/run/core-ops`, attribute changes and temp-file
//! cleanup in managed directories.
//!
//! - A hard link planted as the audit log, or as a managed file whose mode and owner change,
//!   must not carry an append or a chmod/chown to the file outside the root it shares an inode
//!   with: a hard-linked log is refused before anything changes, a hard-linked managed file is
//!   replaced by a new inode (and, unowned, is blocked without `--adopt`).
//! - A world-writable state or lock directory and a world-readable log are repaired (0700/0600)
//!   and reported; a state file or directory owned by another user is refused with the path and
//!   the fix, because that user could have written it.
//! - A URL with credentials and a token reaches no output, log or state: userinfo and query are
//!   cut wherever a URL is printed.
//! - A FIFO as the audit log must not hang a run holding the lock; a temp-file name that is not
//!   UTF-8 must not make every run fail.
//! - A history directory replaced by a symlink fails the run without writing outside the root,
//!   and the state records nothing as converged.
//!
//! Every run is bounded by a deadline, so a hang fails its test instead of stalling the suite.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;

use super::{Victim, common, run_to_deadline, text, without_stdin};

/// A config that writes one file, so a run that changes anything shows it.
const ONE_FILE: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/app/a.conf\n      mode: 0644\n      contents: {inline: \"a=1\\n\"}\n";

/// Runs `core-ops ARGS --config (butane) --root ROOT [--offline]`, killed (and the test failed)
/// if it is still running at the deadline.
fn run(args: &[&str], butane: &str, root: &Path, offline: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.bu");
    fs::write(&cfg, butane).unwrap();
    let mut cmd = common::bin();
    cmd.args(args).arg("--config").arg(&cfg).arg("--root").arg(root);
    if offline {
        cmd.arg("--offline");
    }
    run_to_deadline(without_stdin(cmd), &format!("core-ops {}", args.join(" ")))
}

/// `core-ops apply --offline` with `extra` arguments.
fn apply(butane: &str, root: &Path, extra: &[&str]) -> Output {
    run(&[&["apply"], extra].concat(), butane, root, true)
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Creates directory `rel` under `root` (and its parents) with `mode`.
fn dir_with_mode(root: &Path, rel: &str, mode: u32) -> std::path::PathBuf {
    let dir = root.join(rel);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// The state file of `root`, parsed; `Null` when there is none.
fn state_of(root: &Path) -> serde_json::Value {
    fs::read(root.join("var/lib/core-ops/state.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null)
}

/// F1: an audit log hard-linked to a file outside the root is refused before any change, and the
/// outside file gets no line.
#[test]
fn a_hard_linked_audit_log_is_refused_and_nothing_is_appended_outside() {
    let victim = Victim::new();
    let root = tempfile::tempdir().unwrap();
    let state_dir = dir_with_mode(root.path(), "var/lib/core-ops", 0o700);
    fs::hard_link(&victim.path, state_dir.join("audit.log")).unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("/var/lib/core-ops/audit.log") && all.contains("hard link"), "a located reason: {all}");
    victim.assert_untouched("a hard-linked audit log");
    assert!(!root.path().join("etc/app/a.conf").exists(), "the run changed nothing: {all}");
    assert_eq!(state_of(root.path()), serde_json::Value::Null, "nothing recorded");
}

/// The file of F2: `ROOT/etc/app/x.conf` is a hard link to the victim, and the config wants it
/// 0644 and owned by 4242:4242, without contents.
const ATTRIBUTES_ONLY: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/app/x.conf\n      mode: 0644\n      user: {id: 4242}\n      group: {id: 4242}\n";

/// A fresh root whose `/etc/app/x.conf` is a hard link to `victim`.
fn root_linking(victim: &Victim) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let app = dir_with_mode(root.path(), "etc/app", 0o755);
    fs::hard_link(&victim.path, app.join("x.conf")).unwrap();
    root
}

/// F2 without `--adopt`: an attribute-only change to an unowned hard link is blocked.
#[test]
fn an_attribute_change_to_a_hard_linked_unowned_file_is_blocked() {
    if !common::is_root() {
        return common::skip(
            "an_attribute_change_to_a_hard_linked_unowned_file_is_blocked",
            "chown to 4242 needs root",
        );
    }
    let victim = Victim::new();
    let root = root_linking(&victim);
    let out = apply(ATTRIBUTES_ONLY, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("/etc/app/x.conf"), "the blocked path is named: {}", text(&out));
    victim.assert_untouched("chmod/chown through a hard link without --adopt");
}

/// F2 with `--adopt`: the hard link is replaced by a file of its own with the same content and the
/// new mode and owner; the victim keeps its mode and owner.
#[test]
fn an_adopted_hard_link_is_replaced_never_chmodded_in_place() {
    if !common::is_root() {
        return common::skip("an_adopted_hard_link_is_replaced_never_chmodded_in_place", "chown to 4242 needs root");
    }
    let victim = Victim::new();
    let root = root_linking(&victim);
    let out = apply(ATTRIBUTES_ONLY, root.path(), &["--adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    victim.assert_untouched("chmod/chown through a hard link with --adopt");
    let managed = root.path().join("etc/app/x.conf");
    let meta = fs::symlink_metadata(&managed).unwrap();
    assert_ne!(meta.ino(), fs::metadata(&victim.path).unwrap().ino(), "a new inode");
    assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.nlink()), (0o644, 4242, 4242, 1));
    assert_eq!(fs::read_to_string(&managed).unwrap(), victim.content, "an entry without contents keeps the content");
    let again = apply(ATTRIBUTES_ONLY, root.path(), &[]);
    assert_eq!(again.status.code(), Some(0), "the adopted file is owned and converged: {}", text(&again));
}

/// F8: a world-writable state directory and lock directory and a world-readable log are
/// repaired, and the run says so.
#[test]
fn world_writable_state_and_lock_directories_and_a_readable_log_are_repaired() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = dir_with_mode(root.path(), "var/lib/core-ops", 0o777);
    let history = dir_with_mode(root.path(), "var/lib/core-ops/history", 0o777);
    let run_dir = dir_with_mode(root.path(), "run/core-ops", 0o777);
    fs::write(state_dir.join("audit.log"), "").unwrap();
    fs::set_permissions(state_dir.join("audit.log"), fs::Permissions::from_mode(0o644)).unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(mode_of(&state_dir), 0o700, "the state directory: {}", text(&out));
    assert_eq!(mode_of(&history), 0o700, "the history directory");
    assert_eq!(mode_of(&run_dir), 0o700, "the lock directory");
    assert_eq!(mode_of(&state_dir.join("audit.log")), 0o600, "the audit log");
    for file in ["state.json", "audit.log"] {
        assert_eq!(mode_of(&state_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode_of(&run_dir.join("lock")), 0o600, "the lock");
    let all = text(&out);
    for repaired in ["/var/lib/core-ops ", "/var/lib/core-ops/audit.log", "/run/core-ops "] {
        assert!(all.contains(&format!("{}{repaired}", root.path().display())), "{repaired} reported: {all}");
    }
    assert_eq!(fs::read_to_string(state_dir.join("audit.log")).unwrap().lines().count(), 1, "the run is logged");
    let again = apply(ONE_FILE, root.path(), &[]);
    assert!(!text(&again).contains("repaired"), "nothing to repair the second time: {}", text(&again));
}

/// Applies `ONE_FILE` plus `/etc/app/keep.conf` to a fresh root, so the state owns both.
fn root_owning_keep_conf() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let both = format!("{ONE_FILE}    - path: /etc/app/keep.conf\n      contents: {{inline: \"keep\\n\"}}\n");
    let out = apply(&both, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    root
}

/// F8: a state that another user could have written (the file or its directory owned by them)
/// is refused with the path and the fix, and its ownership claims delete nothing.
#[test]
fn a_state_owned_by_another_user_is_refused_and_deletes_nothing() {
    if !common::is_root() {
        return common::skip("a_state_owned_by_another_user_is_refused_and_deletes_nothing", "chown needs root");
    }
    for owned_by_them in ["var/lib/core-ops/state.json", "var/lib/core-ops"] {
        let root = root_owning_keep_conf();
        let theirs = root.path().join(owned_by_them);
        rustix::fs::chown(&theirs, Some(rustix::fs::Uid::from_raw(4242)), Some(rustix::fs::Gid::from_raw(4242)))
            .unwrap();
        // The state (theirs) claims keep.conf; the config no longer declares it: a stale object.
        let out = apply(ONE_FILE, root.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{owned_by_them}: {}", text(&out));
        let all = text(&out);
        let shown = format!("{}/{owned_by_them} is owned by uid 4242", root.path().display());
        assert!(all.contains(&shown) && all.contains("chown root"), "{owned_by_them}: path and fix: {all}");
        assert!(root.path().join("etc/app/keep.conf").exists(), "{owned_by_them}: nothing deleted on its word");
        let plan = run(&["plan"], ONE_FILE, root.path(), true);
        assert_eq!(plan.status.code(), Some(1), "plan refuses it too: {}", text(&plan));
        assert!(text(&plan).contains(&shown), "{}", text(&plan));
    }
}

/// F8: a URL with credentials and a token is printed, logged and recorded without them, on the
/// offline path, the fetch path and in the plan.
#[test]
fn urls_are_printed_and_logged_without_userinfo_or_query() {
    let secret_url = "https://admin:S3cretPW@127.0.0.1:9/conf/app.conf?token=T0KEN-abc";
    let config = format!(
        "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/app/remote.conf\n      contents:\n        source: \"{secret_url}\"\n        verification: {{hash: sha256-{}}}\n",
        "0".repeat(64)
    );
    let root = tempfile::tempdir().unwrap();
    let runs = [
        ("apply --offline", run(&["apply"], &config, root.path(), true)),
        ("apply (fetching)", run(&["apply"], &config, root.path(), false)),
        ("apply --format json", run(&["apply", "--format", "json"], &config, root.path(), false)),
        ("plan", run(&["plan"], &config, root.path(), true)),
        ("plan --format json", run(&["plan", "--format", "json"], &config, root.path(), true)),
    ];
    let audit = fs::read_to_string(root.path().join("var/lib/core-ops/audit.log")).unwrap();
    let state = fs::read_to_string(root.path().join("var/lib/core-ops/state.json")).unwrap();
    let mut status_cmd = without_stdin(common::bin());
    status_cmd.args(["status", "--root"]).arg(root.path());
    let status = run_to_deadline(status_cmd, "core-ops status");
    let mut seen = runs.iter().map(|(what, out)| (*what, text(out))).collect::<Vec<_>>();
    seen.extend([("audit.log", audit), ("state.json", state), ("status", text(&status))]);
    for (what, shown) in &seen {
        for secret in ["admin", "S3cretPW", "T0KEN", "token="] {
            assert!(!shown.contains(secret), "{what} shows {secret:?}:\n{shown}");
        }
    }
    for (what, out) in &runs[..3] {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(out));
        assert!(text(out).contains("https://127.0.0.1:9/conf/app.conf"), "{what} names the URL: {}", text(out));
    }
    assert!(text(&runs[3].1).contains("https://127.0.0.1:9/conf/app.conf"), "{}", text(&runs[3].1));
}

/// F9: an audit log that is a FIFO makes no run hang; it is refused before any change.
#[test]
fn a_fifo_as_audit_log_is_refused_without_hanging() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = dir_with_mode(root.path(), "var/lib/core-ops", 0o700);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        state_dir.join("audit.log"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("/var/lib/core-ops/audit.log") && all.contains("not a regular file"), "{all}");
    assert!(!root.path().join("etc/app/a.conf").exists(), "the run changed nothing: {all}");
}

/// F9: a leftover temp-file name that is not UTF-8 is cleaned like any other.
#[test]
fn a_temp_file_name_that_is_not_utf8_is_cleaned() {
    let root = tempfile::tempdir().unwrap();
    let app = dir_with_mode(root.path(), "etc/app", 0o755);
    let odd = app.join(OsStr::from_bytes(b".core-ops-tmp.\xff"));
    fs::write(&odd, "leftover").unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!odd.exists(), "the leftover is removed");
    assert_eq!(fs::read_to_string(app.join("a.conf")).unwrap(), "a=1\n");
}

/// The snapshot cannot be saved (history is a symlink to a directory outside the root): the run
/// fails, nothing is written outside, and the state does not record the revision as converged.
#[test]
fn a_symlinked_history_fails_the_run_and_records_nothing_converged() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let state_dir = dir_with_mode(root.path(), "var/lib/core-ops", 0o700);
    symlink(outside.path(), state_dir.join("history")).unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("/var/lib/core-ops/history"), "the history is named: {}", text(&out));
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the root");
    let state = state_of(root.path());
    assert!(state["last_applied"].is_null(), "no revision recorded as applied: {state}");
    assert_ne!(state["last_run"]["result"], "converged", "{state}");
}

/// F2 for a symbolic link: an adopted link hard-linked to a link outside the root gets its new
/// owner on a link of its own; the outside link keeps its owner.
#[test]
fn an_adopted_hard_linked_symlink_is_replaced_never_chowned_in_place() {
    if !common::is_root() {
        return common::skip(
            "an_adopted_hard_linked_symlink_is_replaced_never_chowned_in_place",
            "chown to 4242 needs root",
        );
    }
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("link");
    std::os::unix::fs::symlink("/srv/data", &victim).unwrap();
    let before = fs::symlink_metadata(&victim).unwrap();
    let root = tempfile::tempdir().unwrap();
    let app = dir_with_mode(root.path(), "etc/app", 0o755);
    fs::hard_link(&victim, app.join("l")).unwrap();
    if fs::symlink_metadata(&victim).unwrap().nlink() != 2 {
        return common::skip(
            "an_adopted_hard_linked_symlink_is_replaced_never_chowned_in_place",
            "this file system does not hard-link symlinks",
        );
    }
    let config = "variant: fcos\nversion: 1.6.0\nstorage:\n  links:\n    - path: /etc/app/l\n      target: /srv/data\n      user: {id: 4242}\n      group: {id: 4242}\n";
    let out = apply(config, root.path(), &["--adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = fs::symlink_metadata(&victim).unwrap();
    assert_eq!(
        (after.uid(), after.gid()),
        (before.uid(), before.gid()),
        "the outside link was chowned: {}",
        text(&out)
    );
    let managed = fs::symlink_metadata(app.join("l")).unwrap();
    assert_ne!(managed.ino(), after.ino(), "a new inode");
    assert_eq!((managed.uid(), managed.gid(), managed.nlink()), (4242, 4242, 1));
    assert_eq!(fs::read_link(app.join("l")).unwrap(), Path::new("/srv/data"));
}

/// F8 for the group: a state directory writable by its group and a log readable by it are
/// repaired too, as SECURITY.md says ("writable by group or others", "readable by them").
#[test]
fn group_writable_state_directories_and_a_group_readable_log_are_repaired() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = dir_with_mode(root.path(), "var/lib/core-ops", 0o770);
    let run_dir = dir_with_mode(root.path(), "run/core-ops", 0o770);
    fs::write(state_dir.join("audit.log"), "").unwrap();
    fs::set_permissions(state_dir.join("audit.log"), fs::Permissions::from_mode(0o640)).unwrap();
    let out = apply(ONE_FILE, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(mode_of(&state_dir), 0o700, "the state directory: {}", text(&out));
    assert_eq!(mode_of(&run_dir), 0o700, "the lock directory: {}", text(&out));
    assert_eq!(mode_of(&state_dir.join("audit.log")), 0o600, "the audit log: {}", text(&out));
}

/// F8, harder spellings: a password holding `@` (the host follows the last one) and a fragment
/// without a query are cut too, on the fetch path, in the audit log and in the state.
#[test]
fn a_password_with_an_at_sign_and_a_bare_fragment_are_never_shown() {
    let secret_url = "https://admin:S3c@retPW@127.0.0.1:9/conf/app.conf#FRAG-T0KEN";
    let config = format!(
        "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/app/remote.conf\n      contents:\n        source: \"{secret_url}\"\n        verification: {{hash: sha256-{}}}\n",
        "0".repeat(64)
    );
    let root = tempfile::tempdir().unwrap();
    let runs = [
        ("apply (fetching)", run(&["apply"], &config, root.path(), false)),
        ("plan", run(&["plan"], &config, root.path(), true)),
        ("plan --format json", run(&["plan", "--format", "json"], &config, root.path(), true)),
    ];
    let audit = fs::read_to_string(root.path().join("var/lib/core-ops/audit.log")).unwrap();
    let state = fs::read_to_string(root.path().join("var/lib/core-ops/state.json")).unwrap();
    let mut seen = runs.iter().map(|(what, out)| (*what, text(out))).collect::<Vec<_>>();
    seen.extend([("audit.log", audit), ("state.json", state)]);
    for (what, shown) in &seen {
        for secret in ["admin", "S3c", "retPW", "FRAG", "T0KEN"] {
            assert!(!shown.contains(secret), "{what} shows {secret:?}:\n{shown}");
        }
    }
    assert!(text(&runs[0].1).contains("https://127.0.0.1:9/conf/app.conf#…"), "{}", text(&runs[0].1));
}
