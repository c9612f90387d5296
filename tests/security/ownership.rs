//! Ownership: CoreOps deletes only what it can prove it wrote, and replaces or chmods nothing it
//! does not own without `--adopt`.
//!
//! - F3: a directory record never deletes the file or symlink that replaced the directory.
//! - F4: an attribute-only entry on an existing file is recorded with the content hash it had,
//!   so the file goes only with exactly that content.
//! - F6: unit files, drop-ins and masks follow the rule of files: an unowned path is blocked
//!   until `--adopt`, and a mask never removes a directory that holds anything, even adopted.
//! - F7: a crafted `state.json` (records without hashes, of the wrong kind, with the wrong
//!   target, through `..`) deletes nothing, and the executor checks each deletion again right
//!   before it unlinks, against a host that changed after the plan.
//!
//! And a property test: seeded hostile state files (random and crafted records, duplicates,
//! `..`-laden paths, huge lists) against `plan` and `apply` of an empty or small config, in
//! fresh roots full of decoys; only files with their recorded hash, links with their recorded
//! target and directories recorded as directories (and empty once their owned children are
//! gone) may disappear, and nothing else may change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;

use super::{Victim, common, run_with_config, text};

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

/// `sha256-<hex>` of `bytes`, as the state records it.
fn sha(bytes: &[u8]) -> String {
    format!("sha256-{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Writes `content` at `rel` under `root` with `mode`, creating parents.
fn put(root: &Path, rel: &str, content: &str, mode: u32) -> PathBuf {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `core-ops apply EXTRA --format json` with `butane`; the exit code and the JSON report.
fn apply_json(root: &Path, butane: &str, extra: &[&str]) -> (i32, Value, String) {
    let args = [&["apply", "--format", "json"], extra].concat();
    let out = run_with_config(&args, butane, root);
    let all = text(&out);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {all}"));
    (out.status.code().unwrap_or(-1), doc, all)
}

/// The plan's action for `path` in a JSON report.
fn action_of(doc: &Value, path: &str) -> String {
    let objects = doc["plan"]["objects"].as_array().cloned().unwrap_or_default();
    let found = objects.iter().find(|o| o["path"] == path);
    found.map(|o| o["action"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
}

/// The records of the state under `root`, by path (`last_applied`).
fn records(root: &Path) -> BTreeMap<String, Value> {
    let bytes = fs::read(root.join("var/lib/core-ops/state.json")).unwrap();
    let state: Value = serde_json::from_slice(&bytes).unwrap();
    let objects = state["last_applied"]["objects"].as_array().cloned().unwrap_or_default();
    objects.into_iter().map(|o| (o["path"].as_str().unwrap().to_string(), o)).collect()
}

/// Writes a state file that records `objects` as applied and `pending` as an interrupted run's,
/// in a state directory as Ignition makes it at first boot (0755, the file 0600).
fn write_state(root: &Path, objects: &[Value], pending: &[Value]) {
    let dir = root.join("var/lib/core-ops");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let mut state = json!({
        "schema_version": 1,
        "generation": 1,
        "last_applied": {"revision": "crafted", "applied_at": "2026-01-01T00:00:00Z", "objects": objects},
    });
    if !pending.is_empty() {
        state["pending"] =
            json!({"revision": "crafted-next", "started_at": "2026-01-01T00:00:01Z", "objects": pending});
    }
    let path = dir.join("state.json");
    fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// One record as a crafted state writes it.
fn record(path: &str, kind: &str, extra: Value) -> Value {
    let mut r = json!({"path": path, "kind": kind, "origin_file": "crafted.bu"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        r[k] = v;
    }
    r
}

/// One node of a tree, as compared before and after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { sha: String, mode: u32, owner: (u32, u32), inode: u64 },
    Dir { mode: u32, owner: (u32, u32) },
    Link { target: String, owner: (u32, u32) },
    Other { mode: u32 },
}

/// Every node below `root` (account databases included), by `/`-rooted path; CoreOps's own
/// state directory and `/run` are left out.
fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
            if rel == "/run" || rel.starts_with("/var/lib/core-ops") {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let owner = (meta.uid(), meta.gid());
            let mode = meta.mode() & 0o7777;
            let node = if meta.file_type().is_symlink() {
                Node::Link { target: fs::read_link(&path).unwrap().display().to_string(), owner }
            } else if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir { mode, owner }
            } else if meta.is_file() {
                Node::File { sha: sha(&fs::read(&path).unwrap()), mode, owner, inode: meta.ino() }
            } else {
                Node::Other { mode }
            };
            out.insert(rel, node);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// F3: a stale directory record deletes a user's file.

#[test]
fn f3_a_directory_record_never_deletes_the_file_or_link_that_replaced_the_directory() {
    for replacement in ["file", "symlink"] {
        let victim = Victim::new();
        let root = common::conformance_root();
        let dirs = format!("{HEAD}storage:\n  directories:\n    - path: /etc/app.d\n");
        let (code, _, all) = apply_json(root.path(), &dirs, &[]);
        assert_eq!(code, 0, "{all}");
        let app_d = root.path().join("etc/app.d");
        fs::remove_dir(&app_d).unwrap();
        match replacement {
            "file" => fs::write(&app_d, "the admin's own file\n").unwrap(),
            _ => symlink(&victim.path, &app_d).unwrap(),
        }

        let (code, doc, all) = apply_json(root.path(), HEAD, &[]);
        assert_eq!(code, 1, "{replacement}: a directory record must not authorise removing a {replacement}: {all}");
        assert_eq!(action_of(&doc, "/etc/app.d"), "blocked", "{replacement}: {all}");
        assert!(
            all.contains("/etc/app.d is recorded as a directory") && all.contains("it is kept"),
            "{replacement}: the reason names the path and what it was recorded as: {all}"
        );
        match replacement {
            "file" => assert_eq!(fs::read_to_string(&app_d).unwrap(), "the admin's own file\n"),
            _ => assert_eq!(fs::read_link(&app_d).unwrap(), victim.path, "the admin's link is kept"),
        }
        victim.assert_untouched(&format!("F3 with a {replacement}"));
    }
}

// ---------------------------------------------------------------------------------------------
// F4: takes over an unowned file, and later deletes it.

const SHADOW: &str = "root:$6$before:19000:0:99999:7:::\n";

#[test]
fn f4_an_adopted_attribute_only_entry_records_the_hash_it_had_and_an_edited_file_is_kept() {
    let root = common::conformance_root();
    let shadow = put(root.path(), "etc/shadow", SHADOW, 0o600);
    let entry = format!("{HEAD}storage:\n  files:\n    - path: /etc/shadow\n      mode: 0644\n");
    let (code, _, all) = apply_json(root.path(), &entry, &["--adopt"]);
    assert_eq!(code, 0, "{all}");
    let recorded = records(root.path())["/etc/shadow"].clone();
    assert_eq!(recorded["sha256"], sha(SHADOW.as_bytes()), "adopted with the content it had: {recorded}");

    fs::write(&shadow, "root:$6$changed-by-passwd:19001:0:99999:7:::\n").unwrap();
    let (code, doc, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(code, 1, "the edited file is kept and the run says so: {all}");
    assert_eq!(action_of(&doc, "/etc/shadow"), "blocked", "{all}");
    assert!(all.contains("/etc/shadow was edited on the host since CoreOps recorded it"), "{all}");
    assert_eq!(fs::read_to_string(&shadow).unwrap(), "root:$6$changed-by-passwd:19001:0:99999:7:::\n");
}

#[test]
fn f4_an_attribute_only_entry_whose_mode_matches_is_recorded_with_its_hash() {
    let root = common::conformance_root();
    let motd = put(root.path(), "etc/motd", "hello\n", 0o644);
    let entry = format!("{HEAD}storage:\n  files:\n    - path: /etc/motd\n      mode: 0644\n");
    let (code, _, all) = apply_json(root.path(), &entry, &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(records(root.path())["/etc/motd"]["sha256"], sha(b"hello\n"));

    // A later apply of the same entry keeps the hash it took the file over with.
    fs::write(&motd, "edited\n").unwrap();
    let (code, _, all) = apply_json(root.path(), &entry, &[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(records(root.path())["/etc/motd"]["sha256"], sha(b"hello\n"), "an edit does not become owned");
    let (code, _, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(fs::read_to_string(&motd).unwrap(), "edited\n", "the edit is kept");

    // The recorded content authorises the deletion.
    fs::write(&motd, "hello\n").unwrap();
    let (code, doc, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!((code, action_of(&doc, "/etc/motd").as_str()), (0, "delete"), "{all}");
    assert!(!motd.exists());
}

// ---------------------------------------------------------------------------------------------
// F6: units, drop-ins and masks overwrite unowned files without --adopt.

const FOO_UNIT: &str = "[Service]\nExecStart=/usr/bin/theirs\n";
const FOO_DROPIN: &str = "[Service]\nLimitNOFILE=65536\n";

#[test]
fn f6_unit_files_and_dropins_never_replace_unowned_files_without_adopt() {
    let root = common::conformance_root();
    let unit = put(root.path(), "etc/systemd/system/foo.service", FOO_UNIT, 0o644);
    let dropin = put(root.path(), "etc/systemd/system/foo.service.d/10-limits.conf", FOO_DROPIN, 0o644);
    let cfg = format!(
        "{HEAD}systemd:\n  units:\n    - name: foo.service\n      contents: \"[Service]\\nExecStart=/bin/ours\\n\"\n      dropins:\n        - name: 10-limits.conf\n          contents: \"[Service]\\nLimitNOFILE=1\\n\"\n"
    );
    let (code, doc, all) = apply_json(root.path(), &cfg, &[]);
    assert_eq!(code, 1, "{all}");
    for path in ["/etc/systemd/system/foo.service", "/etc/systemd/system/foo.service.d/10-limits.conf"] {
        assert_eq!(action_of(&doc, path), "blocked", "{path}: {all}");
        assert!(all.contains(&format!("{path} exists, differs")) && all.contains("apply --adopt"), "{all}");
    }
    assert_eq!(fs::read_to_string(&unit).unwrap(), FOO_UNIT, "the unowned unit is not replaced");
    assert_eq!(fs::read_to_string(&dropin).unwrap(), FOO_DROPIN, "the unowned drop-in is not replaced");

    let (code, _, all) = apply_json(root.path(), &cfg, &["--adopt"]);
    assert_eq!(code, 0, "--adopt takes them over: {all}");
    assert_eq!(fs::read_to_string(&unit).unwrap(), "[Service]\nExecStart=/bin/ours\n");
    assert_eq!(fs::read_to_string(&dropin).unwrap(), "[Service]\nLimitNOFILE=1\n");
}

fn mask(name: &str) -> String {
    format!("{HEAD}systemd:\n  units:\n    - name: {name}\n      mask: true\n")
}

#[test]
fn f6_a_mask_never_replaces_an_unowned_file_without_adopt() {
    let root = common::conformance_root();
    let unit = put(root.path(), "etc/systemd/system/bar.service", FOO_UNIT, 0o644);
    let (code, doc, all) = apply_json(root.path(), &mask("bar.service"), &[]);
    assert_eq!((code, action_of(&doc, "/etc/systemd/system/bar.service").as_str()), (1, "blocked"), "{all}");
    assert_eq!(fs::read_to_string(&unit).unwrap(), FOO_UNIT);
    let (code, _, all) = apply_json(root.path(), &mask("bar.service"), &["--adopt"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(fs::read_link(&unit).unwrap(), Path::new("/dev/null"));
}

#[test]
fn f6_a_mask_never_removes_a_directory_that_holds_anything_even_with_adopt() {
    let victim = Victim::new();
    let root = common::conformance_root();
    let dir = root.path().join("etc/systemd/system/bar.service");
    fs::create_dir_all(root.path().join("var/lib")).unwrap();
    put(root.path(), "etc/systemd/system/bar.service/notes.txt", "keep me\n", 0o600);
    put(root.path(), "etc/systemd/system/bar.service/deeper/more.txt", "and me\n", 0o644);
    symlink(&victim.path, dir.join("to-victim")).unwrap();
    let before = tree(root.path());
    for extra in [&[][..], &["--adopt"][..]] {
        let (code, doc, all) = apply_json(root.path(), &mask("bar.service"), extra);
        assert_eq!(code, 1, "{extra:?}: {all}");
        assert_eq!(action_of(&doc, "/etc/systemd/system/bar.service"), "blocked", "{extra:?}: {all}");
        assert_eq!(tree(root.path()), before, "{extra:?}: nothing under the root changed");
    }
    let (_, _, all) = apply_json(root.path(), &mask("bar.service"), &["--adopt"]);
    assert!(
        all.contains("/etc/systemd/system/bar.service is a directory that holds 3 entries")
            && all.contains("even with --adopt"),
        "the reason says why --adopt does not help: {all}"
    );
    victim.assert_untouched("F6 mask over a directory");
}

#[test]
fn f6_a_mask_replaces_an_empty_unowned_directory_only_when_adopted() {
    let root = common::conformance_root();
    let dir = root.path().join("etc/systemd/system/bar.service");
    fs::create_dir_all(&dir).unwrap();
    let (code, doc, all) = apply_json(root.path(), &mask("bar.service"), &[]);
    assert_eq!((code, action_of(&doc, "/etc/systemd/system/bar.service").as_str()), (1, "blocked"), "{all}");
    assert!(dir.is_dir());
    let (code, _, all) = apply_json(root.path(), &mask("bar.service"), &["--adopt"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(fs::read_link(&dir).unwrap(), Path::new("/dev/null"));
}

// ---------------------------------------------------------------------------------------------
// F7: a crafted state.json deletes any file in the root.

/// A root with an 0600 `/etc/shadow`, a config file and a link to `victim` outside the root.
fn crafted_root(victim: &Victim) -> tempfile::TempDir {
    let root = common::conformance_root();
    put(root.path(), "etc/shadow", SHADOW, 0o600);
    put(root.path(), "etc/app/app.conf", "mine=1\n", 0o644);
    symlink(&victim.path, root.path().join("etc/app/link")).unwrap();
    root
}

/// Records that describe nothing that is on the host: no hash, the wrong kind, the wrong hash,
/// the wrong target, a path through `..` with the right hash.
fn crafted_records(victim: &Victim) -> Vec<Value> {
    vec![
        record("/etc/shadow", "file", json!({})),
        record("/etc/passwd", "directory", json!({})),
        record("/etc/app/app.conf", "file", json!({"sha256": sha(b"something else\n")})),
        record("/etc/app/link", "symlink", json!({"target": "/elsewhere"})),
        record("/etc/app/link", "file", json!({"sha256": sha(victim.content.as_bytes())})),
        record("/etc/app/../shadow", "file", json!({"sha256": sha(SHADOW.as_bytes())})),
        record("/etc/group", "hard link", json!({"target": "/etc/passwd"})),
    ]
}

#[test]
fn f7_a_record_without_a_hash_or_of_the_wrong_kind_deletes_nothing() {
    let victim = Victim::new();
    let root = crafted_root(&victim);
    let records = [record("/etc/shadow", "file", json!({})), record("/etc/passwd", "directory", json!({}))];
    write_state(root.path(), &records, &[]);
    let before = tree(root.path());
    let (code, doc, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(tree(root.path()), before, "nothing under the root changed: {all}");
    assert_eq!(code, 1, "{all}");
    for (path, reason) in [
        ("/etc/shadow", "/etc/shadow has no content hash in the state"),
        ("/etc/passwd", "/etc/passwd is recorded as a directory but is a file"),
    ] {
        assert_eq!(action_of(&doc, path), "blocked", "{path}: {all}");
        assert!(all.contains(reason), "{path}: expected {reason:?} in {all}");
    }
}

#[test]
fn f7_a_crafted_state_deletes_nothing_it_does_not_describe() {
    let victim = Victim::new();
    let root = crafted_root(&victim);
    write_state(root.path(), &crafted_records(&victim), &[]);
    let before = tree(root.path());
    let (code, doc, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(tree(root.path()), before, "nothing under the root changed: {all}");
    assert_eq!(code, 1, "{all}");
    for (path, reason) in [
        ("/etc/shadow", "/etc/shadow has no content hash in the state"),
        ("/etc/passwd", "/etc/passwd is recorded as a directory but is a file"),
        ("/etc/app/app.conf", "/etc/app/app.conf was edited on the host since CoreOps recorded it"),
        ("/etc/app/link", "/etc/app/link is recorded as a file but is a symlink"),
        ("/etc/group", "/etc/group is recorded as a hard link"),
    ] {
        assert_eq!(action_of(&doc, path), "blocked", "{path}: {all}");
        assert!(all.contains(reason), "{path}: expected {reason:?} in {all}");
    }
    victim.assert_untouched("F7 crafted state");
}

#[test]
fn f7_crafted_records_of_an_interrupted_run_are_never_recovered_as_owned() {
    let victim = Victim::new();
    let root = crafted_root(&victim);
    write_state(root.path(), &[], &crafted_records(&victim));
    let before = tree(root.path());
    let (code, _, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(tree(root.path()), before, "nothing under the root changed: {all}");
    assert_eq!(code, 0, "pending records that describe nothing are simply not owned: {all}");
    victim.assert_untouched("F7 crafted pending records");
}

#[test]
fn f7_records_that_describe_the_host_exactly_still_authorise_deletion() {
    let victim = Victim::new();
    let root = crafted_root(&victim);
    fs::create_dir_all(root.path().join("etc/empty.d")).unwrap();
    let exact = [
        record("/etc/app/app.conf", "file", json!({"sha256": sha(b"mine=1\n"), "mode": 0o644})),
        record("/etc/app/link", "symlink", json!({"target": victim.path.display().to_string()})),
        record("/etc/empty.d", "directory", json!({"mode": 0o700})),
    ];
    write_state(root.path(), &exact, &[]);
    let (code, _, all) = apply_json(root.path(), HEAD, &[]);
    assert_eq!(code, 0, "{all}");
    for gone in ["etc/app/app.conf", "etc/app/link", "etc/empty.d"] {
        assert!(fs::symlink_metadata(root.path().join(gone)).is_err(), "{gone} was deleted: {all}");
    }
    assert_eq!(fs::read_to_string(root.path().join("etc/shadow")).unwrap(), SHADOW);
    victim.assert_untouched("F7 exact records");
}

/// A systemd whose `stop` of one unit rewrites a file, as an `ExecStop=` saving its state would:
/// the host changes after the plan and before the deletions.
struct RewritesOnStop {
    inner: core_ops::host::systemd::FakeSystemd,
    unit: &'static str,
    file: PathBuf,
}

impl core_ops::host::systemd::Systemd for RewritesOnStop {
    fn reload(&self) -> anyhow::Result<()> {
        self.inner.reload()
    }
    fn run_job(&self, verb: core_ops::model::activation::Verb, unit: &str) -> anyhow::Result<String> {
        if verb == core_ops::model::activation::Verb::Stop && unit == self.unit {
            fs::write(&self.file, "state saved on stop\n").unwrap();
        }
        self.inner.run_job(verb, unit)
    }
    fn unit_state(&self, unit: &str) -> anyhow::Result<core_ops::host::systemd::UnitState> {
        self.inner.unit_state(unit)
    }
    fn enable(&self, units: &[String]) -> anyhow::Result<()> {
        self.inner.enable(units)
    }
    fn disable(&self, units: &[String]) -> anyhow::Result<()> {
        self.inner.disable(units)
    }
    fn mask(&self, units: &[String]) -> anyhow::Result<()> {
        self.inner.mask(units)
    }
    fn unmask(&self, units: &[String]) -> anyhow::Result<()> {
        self.inner.unmask(units)
    }
    fn journal(&self, unit: &str, lines: usize) -> Vec<String> {
        self.inner.journal(unit, lines)
    }
}

/// Applies `butane` to `root` in-process, with `systemd`.
fn apply_in_process(
    root: &Path,
    butane: &str,
    systemd: &dyn core_ops::host::systemd::Systemd,
) -> core_ops::host::execute::ApplyReport {
    use core_ops::host::execute::{self, ApplyOptions};
    let input = common::butane_input(butane);
    let opts = ApplyOptions {
        adopt: false,
        lock_timeout: Duration::from_secs(5),
        unit_timeout: Duration::from_millis(500),
        strict: false,
    };
    let root = core_ops::host::root::Root::open(root).unwrap();
    execute::apply(&root, &input, &core_ops::model::ignition::children::Offline, opts, Some(systemd)).unwrap()
}

#[test]
fn f7_a_file_changed_between_plan_and_deletion_is_kept() {
    let root = common::conformance_root();
    let both = format!(
        "{HEAD}storage:\n  files:\n    - path: /etc/old/saved.conf\n      contents: {{inline: \"v1\\n\"}}\nsystemd:\n  units:\n    - name: old.service\n      contents: \"[Service]\\nExecStart=/bin/old\\n\"\n"
    );
    let fake = core_ops::host::systemd::FakeSystemd::default();
    let first = apply_in_process(root.path(), &both, &fake);
    assert_eq!(first.outcome, core_ops::host::execute::Outcome::Converged, "{:?}", first.errors);

    let saved = root.path().join("etc/old/saved.conf");
    let rewriting = RewritesOnStop { inner: Default::default(), unit: "old.service", file: saved.clone() };
    let report = apply_in_process(root.path(), HEAD, &rewriting);
    assert_eq!(rewriting.inner.calls()[0], "stop old.service", "the stop runs between the plan and the deletions");
    let planned = report.plan.changes.iter().find(|c| c.path == "/etc/old/saved.conf").unwrap();
    assert_eq!(planned.action, core_ops::model::plan::Action::Delete, "when planned, the file was as recorded");
    let kept = fs::read_to_string(&saved).ok();
    assert_eq!(kept.as_deref(), Some("state saved on stop\n"), "the file changed after the plan is kept");
    assert!(!root.path().join("etc/systemd/system/old.service").exists(), "the unchanged unit file goes");
    assert_ne!(report.outcome, core_ops::host::execute::Outcome::Converged);
    let errors = report.errors.join("\n");
    assert!(errors.contains("/etc/old/saved.conf changed on the host after the plan; it is kept"), "{errors}");
}

// ---------------------------------------------------------------------------------------------
// Property: hostile state files never delete or change what they do not describe.

/// SplitMix64: a small, seeded, deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Fills a fresh root with decoys of every kind: files (one 0600, one hard-linked), directories
/// empty and full, links inside and out of the root (to `victim`), a FIFO, unit files. The root
/// is on tmpfs where there is one: an apply syncs the filesystem, and hundreds of them must be
/// fast.
fn decoy_root(victim: &Victim) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() { tempfile::tempdir_in(shm).unwrap() } else { tempfile::tempdir().unwrap() };
    let r = root.path();
    put(r, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000::/var/home/core:/bin/bash\n", 0o644);
    put(r, "etc/group", "root:x:0:\ncore:x:1000:\n", 0o644);
    put(r, "etc/shadow", SHADOW, 0o600);
    put(r, "etc/app/a.conf", "a=1\n", 0o644);
    put(r, "etc/app/b.conf", "b=2\n", 0o640);
    put(r, "etc/app.d/10-x.conf", "x=1\n", 0o644);
    put(r, "etc/app.d/nested/deep.conf", "deep\n", 0o644);
    put(r, "etc/systemd/system/web.service", FOO_UNIT, 0o644);
    put(r, "etc/systemd/system/web.service.d/10.conf", FOO_DROPIN, 0o644);
    put(r, "var/lib/app/data", "data\n", 0o600);
    fs::create_dir_all(r.join("etc/empty.d")).unwrap();
    fs::create_dir_all(r.join("etc/owned.d")).unwrap();
    put(r, "etc/owned.d/only.conf", "only\n", 0o644);
    fs::hard_link(r.join("etc/app/a.conf"), r.join("etc/app/a-hard.conf")).unwrap();
    symlink("app/a.conf", r.join("etc/link-rel")).unwrap();
    symlink(&victim.path, r.join("etc/link-out")).unwrap();
    symlink("app", r.join("etc/dirlink")).unwrap();
    symlink(victim.path.parent().unwrap(), r.join("etc/outdir")).unwrap();
    symlink("/dev/null", r.join("etc/systemd/system/masked.service")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("etc/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    root
}

/// Paths no decoy is at, and paths that climb, double up or go through links.
fn hostile_paths(victim: &Victim) -> Vec<String> {
    let outside = victim.path.display().to_string();
    [
        "/etc/app/../shadow",
        "/../etc/shadow",
        "/etc/./shadow",
        "/etc//shadow",
        "/etc/shadow/",
        "/etc/app/..",
        "/..",
        "/",
        "",
        "etc/shadow",
        "/etc/dirlink/a.conf",
        "/etc/outdir/secret",
        "/etc/link-out/x",
        "/etc/fifo/x",
        "/etc/nothing-here",
        "/etc/app/missing.conf",
        "/var/lib/app/../../../etc/passwd",
        "/etc/shadow\n",
        "/etc/sha\u{0}dow",
        outside.as_str(),
    ]
    .iter()
    .map(|p| p.to_string())
    .collect()
}

/// A random path of random components (some `.` and `..`).
fn junk_path(rng: &mut Rng) -> String {
    const PARTS: [&str; 10] = ["etc", "app", "..", ".", "shadow", "a.conf", "app.d", "", "var", "x"];
    let mut p = String::new();
    for _ in 0..=rng.below(5) {
        p.push('/');
        p.push_str(PARTS[rng.below(PARTS.len())]);
    }
    p
}

/// A record for `path` as it is in `before` (when it is there), more or less mangled.
fn hostile_record(rng: &mut Rng, path: &str, before: &BTreeMap<String, Node>, faithful: bool) -> Value {
    let node = before.get(path);
    let true_kind = match node {
        Some(Node::File { .. }) => "file",
        Some(Node::Dir { .. }) => "directory",
        Some(Node::Link { .. }) => "symlink",
        _ => "file",
    };
    let kind = match rng.below(100) {
        _ if faithful => true_kind,
        0..50 => true_kind,
        50..97 => *rng.pick(&["file", "directory", "symlink", "hard link"]),
        // A kind CoreOps never writes: the whole state is refused as corrupt.
        _ => *rng.pick(&["", "bogus", "File"]),
    };
    let mut r = record(path, kind, json!({}));
    let true_sha = match node {
        Some(Node::File { sha, .. }) => Some(sha.clone()),
        _ => None,
    };
    let sha = match (faithful, rng.below(5)) {
        (true, _) | (false, 0 | 1) => true_sha,
        (false, 2) => None,
        (false, 3) => Some(sha(b"not what is there")),
        _ => Some(rng.pick(&["", "sha256-", "sha512-00", "sha256-ZZ"]).to_string()),
    };
    if let Some(s) = sha {
        r["sha256"] = json!(s);
    }
    let true_target = match node {
        Some(Node::Link { target, .. }) => Some(target.clone()),
        _ => None,
    };
    let target = match (faithful, rng.below(4)) {
        (true, _) | (false, 0 | 1) => true_target,
        (false, 2) => None,
        _ => Some(rng.pick(&["/elsewhere", "app/b.conf", "", "/dev/null"]).to_string()),
    };
    if let Some(t) = target {
        r["target"] = json!(t);
    }
    let (mode, owner) = match node {
        Some(Node::File { mode, owner, .. } | Node::Dir { mode, owner }) => (Some(*mode), Some(*owner)),
        Some(Node::Link { owner, .. }) => (None, Some(*owner)),
        _ => (None, None),
    };
    if faithful || rng.chance(60) {
        if let Some(m) = mode {
            r["mode"] = json!(m);
        }
        if let Some((u, g)) = owner {
            r["uid"] = json!(u);
            r["gid"] = json!(g);
        }
    } else if rng.chance(50) {
        r["mode"] = json!(rng.below(0o7777));
        r["uid"] = json!(rng.below(3000));
    }
    if rng.chance(10) {
        r["role"] = json!(*rng.pick(&["unit web.service", "dropin web.service", "mask masked.service", "junk"]));
    }
    r
}

/// One case: the records of `last_applied` and `pending`.
fn hostile_state(rng: &mut Rng, victim: &Victim, before: &BTreeMap<String, Node>) -> (Vec<Value>, Vec<Value>) {
    let existing: Vec<String> =
        before.keys().filter(|p| !["/etc", "/var", "/var/lib"].contains(&p.as_str())).cloned().collect();
    let hostile = hostile_paths(victim);
    // A quarter of the cases describe the host faithfully, so that deletions happen.
    let faithful = rng.chance(25);
    let count = match rng.below(20) {
        0 => 1000 + rng.below(500),
        _ => rng.below(10),
    };
    let mut records: Vec<Value> = Vec::new();
    for _ in 0..count {
        let path = match (faithful, rng.below(10)) {
            (true, _) | (false, 0..=5) => rng.pick(&existing).clone(),
            (false, 6 | 7) => rng.pick(&hostile).clone(),
            _ => junk_path(rng),
        };
        let mut r = hostile_record(rng, &path, before, faithful);
        if !faithful && rng.chance(10) && !records.is_empty() {
            // A duplicate of an earlier path, recorded differently.
            let earlier = rng.pick(&records)["path"].as_str().unwrap().to_string();
            r = hostile_record(rng, &earlier, before, false);
        }
        records.push(r);
    }
    let pending = if rng.chance(20) { records.split_off(records.len() / 2) } else { Vec::new() };
    (records, pending)
}

/// Whether some record of `path` describes `node` exactly as the deletion rule needs: a file
/// with its hash, a link with its target, a directory.
fn described(path: &str, node: &Node, records: &[Value]) -> bool {
    records.iter().filter(|r| r["path"] == path).any(|r| match node {
        Node::File { sha, .. } => r["kind"] == "file" && r["sha256"] == sha.as_str(),
        Node::Link { target, .. } => r["kind"] == "symlink" && r["target"] == target.as_str(),
        Node::Dir { .. } => r["kind"] == "directory",
        Node::Other { .. } => false,
    })
}

/// What may appear: CoreOps's state, and the small config's file with its parents.
fn may_appear(path: &str) -> bool {
    ["/var", "/var/lib", "/run", "/etc", "/etc/new.conf"].contains(&path)
}

const SMALL_CONFIG: &str = "storage:\n  files:\n    - path: /etc/new.conf\n      contents: {inline: \"new\\n\"}\n";

/// Checks one run: nothing outside the described set disappeared, nothing that stayed changed,
/// nothing unexpected appeared. Returns how many nodes were deleted.
fn check_run(
    case: usize,
    what: &str,
    before: &BTreeMap<String, Node>,
    after: &BTreeMap<String, Node>,
    records: &[Value],
) -> usize {
    let mut deleted = 0;
    for (path, node) in before {
        match after.get(path) {
            None => {
                assert!(
                    described(path, node, records),
                    "case {case} ({what}): {path} ({node:?}) was deleted, but no record describes it: {records:#?}"
                );
                deleted += 1;
            }
            Some(now) if path == "/etc/new.conf" => assert!(matches!(now, Node::File { .. })),
            Some(now) => assert_eq!(now, node, "case {case} ({what}): {path} changed"),
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        assert!(may_appear(path), "case {case} ({what}): {path} appeared");
    }
    deleted
}

#[test]
fn hostile_state_files_never_delete_or_change_what_they_do_not_describe() {
    const CASES: usize = 300;
    let mut rng = Rng(0x0C0E_0905_2026_1126);
    let (mut cases_deleting, mut cases_refused, mut deleted_total, mut corrupt) = (0, 0, 0, 0);
    for case in 0..CASES {
        let victim = Victim::new();
        let root = decoy_root(&victim);
        let before = tree(root.path());
        let (objects, pending) = hostile_state(&mut rng, &victim, &before);
        write_state(root.path(), &objects, &pending);
        let all_records: Vec<Value> = objects.iter().chain(&pending).cloned().collect();
        let config = if rng.chance(30) { format!("{HEAD}{SMALL_CONFIG}") } else { HEAD.to_string() };
        let adopt: &[&str] = if rng.chance(20) { &["--adopt"] } else { &[] };

        let plan = run_with_config(&[&["plan", "--format", "json"], adopt].concat(), &config, root.path());
        assert!(matches!(plan.status.code(), Some(0 | 1)), "case {case}: plan crashed: {}", text(&plan));
        assert_eq!(tree(root.path()), before, "case {case}: plan changed the root");
        let doc: Value = serde_json::from_slice(&plan.stdout).unwrap_or_default();
        if doc.is_null() {
            assert!(text(&plan).contains("the state file is corrupt"), "case {case}: {}", text(&plan));
            corrupt += 1;
        }
        for o in doc["objects"].as_array().into_iter().flatten() {
            let path = o["path"].as_str().unwrap();
            if o["action"] == "delete" {
                let node =
                    before.get(path).unwrap_or_else(|| panic!("case {case}: plan deletes {path}, which is absent"));
                assert!(described(path, node, &all_records), "case {case}: plan deletes {path} ({node:?}) undescribed");
            }
        }

        let out = run_with_config(&[&["apply"], adopt].concat(), &config, root.path());
        assert!(matches!(out.status.code(), Some(0 | 1)), "case {case}: apply crashed: {}", text(&out));
        let deleted = check_run(case, "apply", &before, &tree(root.path()), &all_records);
        victim.assert_untouched(&format!("case {case}"));
        deleted_total += deleted;
        cases_deleting += usize::from(deleted > 0);
        cases_refused += usize::from(out.status.code() == Some(1));
    }
    assert!(
        cases_deleting >= CASES / 10,
        "only {cases_deleting} of {CASES} cases deleted anything: the test is vacuous"
    );
    assert!(cases_refused >= CASES / 4, "only {cases_refused} of {CASES} cases were refused");
    assert!(deleted_total >= CASES / 5, "only {deleted_total} nodes deleted in all");
    assert!(corrupt < CASES / 2, "{corrupt} of {CASES} state files were refused as corrupt: too few get to the plan");
}

/// A staged file ends with exactly the owner and mode it is written with, whatever the new file
/// started as: the group a set-group-ID directory gives it is replaced, the private mode it is
/// made with is kept when asked for, and the set-ID bits survive its change of owner.
#[test]
fn a_written_file_gets_exactly_its_owner_and_mode_whatever_it_was_created_with() {
    let test = "a_written_file_gets_exactly_its_owner_and_mode_whatever_it_was_created_with";
    if !common::is_root() {
        common::skip(test, "giving files owners needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = core_ops::host::root::Root::open(dir.path()).unwrap();
    // A set-group-ID directory of group 4242: a file made in it is of group 4242 at first.
    let shared = dir.path().join("srv");
    fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(4242)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o2775)).unwrap();
    let written = |name: &str, mode: u32, uid: u32, gid: u32| {
        let path = format!("/srv/{name}");
        root.commit(root.stage_file(&path, b"x\n", mode, uid, gid).unwrap(), false).unwrap();
        let meta = fs::metadata(dir.path().join(&path[1..])).unwrap();
        (meta.uid(), meta.gid(), meta.mode() & 0o7777)
    };
    assert_eq!(written("root-group", 0o644, 0, 0), (0, 0, 0o644), "the inherited group is replaced");
    assert_eq!(written("inherited", 0o640, 0, 4242), (0, 4242, 0o640));
    assert_eq!(written("private", 0o600, 0, 0), (0, 0, 0o600));
    assert_eq!(written("tool", 0o4755, 4242, 4242), (4242, 4242, 0o4755), "set-user-ID after the change of owner");
    assert_eq!(written("group-tool", 0o2711, 0, 4242), (0, 4242, 0o2711));
}
