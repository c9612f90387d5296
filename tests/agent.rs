//! Agent cycles end to end: the real binary against temporary roots (offline systemd, since the
//! root is not `/`) and real repositories made and pushed with the `git` CLI over `file://`.
//!
//! Every expectation comes from outside CoreOps: the commit ids, subjects, authors and committer
//! times that `git` prints, the bytes `git cat-file blob` gives, keys and signatures made by
//! `ssh-keygen` and `git commit -S`, what the example's README says each source file is installed
//! as and which unit consumes it, and the file system's own inodes and modification times for
//! "nothing was written". Each test sets up its own upstream and root, so they run in parallel.

mod common;
#[path = "common/git_server.rs"]
mod git_server;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git_server::{git, git_command};
use serde_json::Value;

/// The example every test starts from: two services, a config file consumed by one of them.
const EXAMPLE: &str = "examples/01-caddy-whoami";

/// Each source file of the example and where it is installed (the example's README).
const INSTALLED: &[(&str, &str)] = &[
    ("services/caddy/config/Caddyfile", "/etc/caddy/Caddyfile"),
    ("services/caddy/quadlet/caddy.container", "/etc/containers/systemd/caddy.container"),
    ("services/caddy/quadlet/caddy-data.volume", "/etc/containers/systemd/caddy-data.volume"),
    ("services/caddy/quadlet/web.network", "/etc/containers/systemd/web.network"),
    ("services/whoami/quadlet/whoami.container", "/etc/containers/systemd/whoami.container"),
];

const CADDYFILE: &str = "/etc/caddy/Caddyfile";
const WHOAMI: &str = "/etc/containers/systemd/whoami.container";

/// The bookkeeping files a cycle may rewrite on a converged host (the state's last run, the
/// agent's record, one audit line).
const STATE: &str = "/var/lib/core-ops/state.json";
const AGENT: &str = "/var/lib/core-ops/agent.json";
const AUDIT: &str = "/var/lib/core-ops/audit.log";
const CACHE: &str = "/var/lib/core-ops/repo.git";
const TRACKING: &str = "/etc/core-ops/tracking.yaml";

/// An upstream (a bare repository, and a work tree that pushes to it) and a root.
struct Lab {
    dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    root: PathBuf,
    commits: std::cell::Cell<u32>,
}

/// One file as the file system shows it: what any write would change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    ino: u64,
    mtime: (i64, i64),
    mode: u32,
    bytes: Vec<u8>,
}

impl Lab {
    /// A lab whose work tree holds the example (not yet committed); `None` after a loud skip
    /// when git is missing.
    fn new(test: &str) -> Option<Lab> {
        if !git_server::available("git") {
            common::skip(test, "git is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("remote.git");
        let work = dir.path().join("work");
        let root = dir.path().join("root");
        for d in [&bare, &work, &root] {
            fs::create_dir(d).unwrap();
        }
        git(&bare, &["init", "-q", "--bare", "--initial-branch=main"]);
        git(&work, &["init", "-q", "--initial-branch=main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
        for (source, _) in INSTALLED {
            fs::create_dir_all(work.join(source).parent().unwrap()).unwrap();
            fs::copy(example.join(source), work.join(source)).unwrap();
        }
        fs::create_dir_all(work.join("hosts/example")).unwrap();
        fs::copy(example.join("hosts/example/host.yaml"), work.join("hosts/example/host.yaml")).unwrap();
        Some(Lab { dir, work, bare, root, commits: std::cell::Cell::new(0) })
    }

    /// A lab with the example committed, pushed, `init`ed and applied by a first cycle; the
    /// first commit's id.
    fn applied(test: &str) -> Option<(Lab, String)> {
        let lab = Lab::new(test)?;
        let first = lab.commit("caddy and whoami");
        lab.init_ok(&[]);
        let (code, _, stderr) = lab.agent(&[]);
        assert_eq!(code, 0, "first cycle: {stderr}");
        Some((lab, first))
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    fn on_root(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn write(&self, path: &str, content: &str) {
        let full = self.work.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, content).unwrap();
    }

    fn append(&self, path: &str, content: &str) {
        let old = fs::read_to_string(self.work.join(path)).unwrap();
        self.write(path, &format!("{old}{content}"));
    }

    /// Commits everything in the work tree and force-pushes it; the commit id as the bare
    /// repository names it. Each commit is an hour after the previous one; its author writes in
    /// UTC-05:00 half an hour before the committer commits in UTC+02:00.
    fn commit(&self, message: &str) -> String {
        self.commit_as(&[], message)
    }

    /// [`Lab::commit`], signed by the SSH key `key` (`git commit -S` with `gpg.format=ssh`).
    fn commit_signed(&self, key: &Path, message: &str) -> String {
        let signing_key = format!("user.signingkey={}", key.display());
        self.commit_as(&["-c", "gpg.format=ssh", "-c", &signing_key, "commit", "-S"], message)
    }

    /// `git [options] commit …`: `git_args` replaces the plain `commit`.
    fn commit_as(&self, git_args: &[&str], message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        let hour = self.commits.get() + 1;
        self.commits.set(hour);
        let mut args: Vec<&str> = if git_args.is_empty() { vec!["commit"] } else { git_args.to_vec() };
        args.extend(["-q", "--allow-empty", "-m", message]);
        let out = git_command(&self.work, &args)
            .env("GIT_AUTHOR_DATE", format!("2024-05-01T{:02}:38:09-05:00", hour))
            .env("GIT_COMMITTER_DATE", format!("2024-05-01T{:02}:08:09+02:00", hour + 8))
            .output()
            .unwrap();
        assert!(out.status.success(), "git commit: {}", String::from_utf8_lossy(&out.stderr));
        self.push();
        git(&self.bare, &["rev-parse", "refs/heads/main"])
    }

    fn push(&self) {
        git(&self.work, &["push", "-q", "--force", "origin", "HEAD:refs/heads/main"]);
    }

    /// `git log -1 --format=FORMAT COMMIT` in the bare repository, times in UTC.
    fn log(&self, commit: &str, format: &str) -> String {
        let out = git_command(&self.bare, &["log", "-1", "--date=format-local:%Y-%m-%dT%H:%M:%SZ"])
            .arg(format!("--format={format}"))
            .arg(commit)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The bytes of `path` at `commit`, from `git cat-file`.
    fn blob(&self, commit: &str, path: &str) -> Vec<u8> {
        let out = git_command(&self.bare, &["cat-file", "blob", &format!("{commit}:{path}")]).output().unwrap();
        assert!(out.status.success(), "{commit}:{path}");
        out.stdout
    }

    /// Asserts every installed file of the example holds its bytes at `commit` (those of
    /// `services/whoami` only when `whoami` is true).
    fn assert_files_at(&self, commit: &str, whoami: bool) {
        for (source, dest) in INSTALLED {
            let on_root = self.on_root(dest);
            if source.starts_with("services/whoami/") && !whoami {
                assert!(!on_root.exists(), "{dest} should be gone");
                continue;
            }
            let bytes = fs::read(&on_root).unwrap_or_else(|e| panic!("{dest}: {e}"));
            assert!(bytes == self.blob(commit, source), "{dest} does not hold {source} of {commit}");
        }
    }

    fn core_ops(&self, args: &[&str]) -> Output {
        common::bin().args(args).env_remove("CORE_OPS_LOG").output().unwrap()
    }

    /// `core-ops init URL main --host example --root ROOT EXTRA…`.
    fn init(&self, extra: &[&str]) -> Output {
        let url = self.url();
        let root = self.root.to_str().unwrap();
        let mut args = vec!["init", &url, "main", "--host", "example", "--root", root];
        args.extend(extra);
        self.core_ops(&args)
    }

    fn init_ok(&self, extra: &[&str]) -> String {
        let out = self.init(extra);
        assert_eq!(out.status.code(), Some(0), "init: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// One `agent --format json` cycle: its exit code, report and standard error.
    fn agent(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["agent", "--root", self.root.to_str().unwrap(), "--format", "json"];
        args.extend(extra);
        let out = self.core_ops(&args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("agent printed no JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout))
        });
        assert_eq!(violations("agent.schema.json", &report), Vec::<String>::new(), "{report:#}");
        (out.status.code().unwrap(), report, stderr)
    }

    /// `agent` in human form: exit code, stdout, stderr.
    fn agent_human(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["agent", "--root", self.root.to_str().unwrap()];
        args.extend(extra);
        let out = self.core_ops(&args);
        (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    }

    fn status_json(&self) -> Value {
        let out = self.core_ops(&["status", "--root", self.root.to_str().unwrap(), "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "status: {}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(violations("status.schema.json", &doc), Vec::<String>::new(), "{doc:#}");
        doc
    }

    fn status_human(&self) -> String {
        let out = self.core_ops(&["status", "--root", self.root.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "status: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json_file(&self, path: &str) -> Value {
        serde_json::from_slice(&fs::read(self.on_root(path)).unwrap()).unwrap()
    }

    /// Every file and symlink under the root, as the file system shows it.
    fn seen(&self) -> BTreeMap<String, Seen> {
        let mut out = BTreeMap::new();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    pending.push(path);
                    continue;
                }
                let bytes = if meta.is_file() { fs::read(&path).unwrap() } else { Vec::new() };
                let rel = format!("/{}", path.strip_prefix(&self.root).unwrap().display());
                let seen = Seen { ino: meta.ino(), mtime: (meta.mtime(), meta.mtime_nsec()), mode: meta.mode(), bytes };
                out.insert(rel, seen);
            }
        }
        out
    }
}

/// The problems of `doc` against the committed `schemas/NAME`.
fn violations(name: &str, doc: &Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// The files of `before` and `after` that differ (or exist on one side only), except `except`
/// and anything under `except_trees`.
fn changed(
    before: &BTreeMap<String, Seen>,
    after: &BTreeMap<String, Seen>,
    except: &[&str],
    except_trees: &[&str],
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| !except.contains(&k.as_str()) && !except_trees.iter().any(|t| k.starts_with(&format!("{t}/"))))
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// `path`'s entry of a report's planned objects.
fn planned<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["apply"]["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == path)
        .unwrap_or_else(|| panic!("{path} is not in the plan: {report:#}"))
}

/// The objects a report plans to change: path → action, for every action but `no-op`.
fn changes(report: &Value) -> BTreeMap<String, String> {
    report["apply"]["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] != "no-op")
        .map(|o| (o["path"].as_str().unwrap().to_string(), o["action"].as_str().unwrap().to_string()))
        .collect()
}

/// The systemd actions a report plans, as `VERB UNIT`.
fn actions(report: &Value) -> Vec<String> {
    report["apply"]["plan"]["systemd"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["verb"].as_str().unwrap(), a["unit"].as_str().unwrap()))
        .collect()
}

fn short(id: &str) -> &str {
    &id[..12]
}

#[test]
fn the_first_cycle_writes_the_repositorys_bytes_and_records_the_commit() {
    let Some(lab) = Lab::new("the_first_cycle_writes_the_repositorys_bytes_and_records_the_commit") else {
        return;
    };
    let commit = lab.commit("caddy and whoami: the first services");
    lab.init_ok(&[]);
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "converged");
    lab.assert_files_at(&commit, true);

    let author = lab.log(&commit, "%an <%ae>");
    let time = lab.log(&commit, "%cd");
    assert_eq!((author.as_str(), time.as_str()), ("Ada Admin <ada@example.org>", "2024-05-01T07:08:09Z"));
    let summary = lab.log(&commit, "%s");
    let expected_commit = serde_json::json!({ "id": commit, "summary": summary, "author": author, "time": time });
    assert_eq!(report["commit"], expected_commit);
    assert_eq!(report["fetch"]["result"], "fetched");
    assert_eq!(report["fetch"]["commit"], commit.as_str());
    assert_eq!(report["tip"], commit.as_str());
    assert_eq!(report["tracking"]["repository"], lab.url());
    assert_eq!(report["tracking"]["ref"], "main");
    assert_eq!(report["tracking"]["host"], "example");
    let created: BTreeMap<String, String> =
        INSTALLED.iter().map(|(_, dest)| (dest.to_string(), "create".to_string())).collect();
    assert_eq!(changes(&report), created);
    // Two new Quadlet services start; offline, nothing runs (the root is not /).
    assert_eq!(actions(&report), ["start caddy.service", "start whoami.service"]);
    assert!(report["apply"]["plan"]["systemd"]["offline"].is_string(), "{report:#}");
    assert_eq!(report["apply"]["systemd"]["jobs"], serde_json::json!([]));

    let expected_source = serde_json::json!({
        "kind": "git", "location": lab.url(), "host": "example", "reference": "main", "commit": commit,
        "summary": summary, "author": author, "committed_at": time,
    });
    assert_eq!(lab.json_file(STATE)["source"], expected_source);
    let status = lab.status_json();
    assert_eq!(status["source"], expected_source);
    assert_eq!(status["following"]["applied_commit"], commit.as_str());
    assert_eq!(status["following"]["behind"], false);
    assert_eq!(status["following"]["last_fetch"]["commit"], commit.as_str());
    assert_eq!(status["following"]["last_cycle"]["exit_code"], 0);
    // The history keeps the same record of where the generation came from.
    let history = lab.on_root("/var/lib/core-ops/history");
    let snapshots: Vec<_> = fs::read_dir(&history).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot: Value = serde_json::from_slice(&fs::read(&snapshots[0]).unwrap()).unwrap();
    assert_eq!(snapshot["source"], expected_source);

    let human = lab.status_human();
    for needle in [lab.url().as_str(), "main", "example", commit.as_str(), summary.as_str(), &author, &time] {
        assert!(human.contains(needle), "status does not show {needle:?}:\n{human}");
    }
    assert!(!human.contains("behind"), "{human}");
}

#[test]
fn a_config_change_rewrites_only_that_file_and_restarts_its_consumer() {
    let Some((lab, _)) = Lab::applied("a_config_change_rewrites_only_that_file_and_restarts_its_consumer") else {
        return;
    };
    let before = lab.seen();
    lab.append("services/caddy/config/Caddyfile", "\nwww.example.com {\n\tredir https://whoami.example.com\n}\n");
    let second = lab.commit("caddy: redirect www");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], second.as_str());
    lab.assert_files_at(&second, true);
    let after = lab.seen();
    assert_eq!(changed(&before, &after, &[STATE, AGENT, AUDIT], &[CACHE, "/var/lib/core-ops/history"]), [CADDYFILE]);
    assert_eq!(changes(&report), BTreeMap::from([(CADDYFILE.to_string(), "update".to_string())]));
    // The README: "Changing the Caddyfile restarts caddy.service"; no unit file changed, so
    // systemd has nothing to reload.
    assert_eq!(actions(&report), ["restart caddy.service"]);
    assert_eq!(report["apply"]["plan"]["systemd"]["daemon_reload"], false);
    assert!(report["apply"]["plan"]["systemd"]["offline"].is_string(), "offline: reported, not run");
    assert_eq!(report["apply"]["systemd"]["jobs"], serde_json::json!([]));
    let skipped = &lab.json_file(STATE)["last_run"]["systemd_skipped"];
    assert_eq!(skipped.as_array().unwrap().last().unwrap(), "restart caddy.service", "{skipped}");
}

#[test]
fn a_removed_service_loses_its_files_and_its_unit_is_stopped() {
    let Some((lab, _)) = Lab::applied("a_removed_service_loses_its_files_and_its_unit_is_stopped") else {
        return;
    };
    let before = lab.seen();
    lab.write("hosts/example/host.yaml", "host: example\nservices:\n  - caddy\n");
    git(&lab.work, &["rm", "-q", "-r", "services/whoami"]);
    let second = lab.commit("whoami: retire it");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    lab.assert_files_at(&second, false);
    let after = lab.seen();
    assert_eq!(changed(&before, &after, &[STATE, AGENT, AUDIT], &[CACHE, "/var/lib/core-ops/history"]), [WHOAMI]);
    assert_eq!(changes(&report), BTreeMap::from([(WHOAMI.to_string(), "delete".to_string())]));
    // Its Quadlet file is gone: the generated unit is stopped, and systemd reloads to forget it.
    assert_eq!(actions(&report), ["stop whoami.service"]);
    assert_eq!(report["apply"]["plan"]["systemd"]["daemon_reload"], true);
}

#[test]
fn nothing_new_writes_nothing_but_the_runs_record_and_restarts_nothing() {
    let Some((lab, first)) = Lab::applied("nothing_new_writes_nothing_but_the_runs_record_and_restarts_nothing") else {
        return;
    };
    let before = lab.seen();
    let (state_before, agent_before) = (lab.json_file(STATE), lab.json_file(AGENT));
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "converged");
    assert_eq!(report["commit"]["id"], first.as_str());
    assert_eq!(changes(&report), BTreeMap::new());
    assert_eq!(actions(&report), Vec::<String>::new());
    assert_eq!(report["apply"]["plan"]["systemd"]["daemon_reload"], false);
    assert_eq!(report["apply"]["plan"]["summary"]["no_op"], INSTALLED.len());

    let after = lab.seen();
    // Not one other file, in the cache included, was written, replaced or added.
    assert_eq!(changed(&before, &after, &[STATE, AGENT, AUDIT], &[]), Vec::<String>::new());
    // The state: only the last run's time and its count of identical runs.
    let (mut s0, mut s1) = (state_before.clone(), lab.json_file(STATE));
    assert_eq!(s1["last_run"]["repeats"], s0["last_run"]["repeats"].as_u64().unwrap() + 1);
    assert!(s1["last_run"]["at"].as_str().unwrap() >= s0["last_run"]["at"].as_str().unwrap());
    for s in [&mut s0, &mut s1] {
        let run = s["last_run"].as_object_mut().unwrap();
        run.remove("at");
        run.remove("repeats");
    }
    assert_eq!(s0, s1);
    // The agent's record: only the times of the fetch and of the cycle.
    let (mut a0, mut a1) = (agent_before, lab.json_file(AGENT));
    for a in [&mut a0, &mut a1] {
        for (section, key) in [("last_fetch", "at"), ("last_fetch", "last_success"), ("last_cycle", "at")] {
            a[section].as_object_mut().unwrap().remove(key);
        }
    }
    assert_eq!(a0, a1);
    // The audit log: one more line, a converged run that changed nothing.
    let (old, new) = (&before[AUDIT].bytes, &after[AUDIT].bytes);
    assert!(new.starts_with(old), "the audit log is only appended to");
    let added = String::from_utf8(new[old.len()..].to_vec()).unwrap();
    assert_eq!(added.lines().count(), 1, "{added}");
    let line: Value = serde_json::from_str(&added).unwrap();
    assert_eq!(
        (&line["result"], &line["created"], &line["updated"], &line["deleted"]),
        (&Value::from("converged"), &Value::from(0), &Value::from(0), &Value::from(0))
    );
}

#[test]
fn drift_without_a_new_commit_is_corrected_against_the_last_applied_commit() {
    let Some((lab, first)) = Lab::applied("drift_without_a_new_commit_is_corrected_against_the_last_applied_commit")
    else {
        return;
    };
    fs::write(lab.on_root(CADDYFILE), "# edited by hand\n").unwrap();
    fs::remove_file(lab.on_root(WHOAMI)).unwrap();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["fetch"]["commit"], first.as_str(), "nothing new was fetched");
    lab.assert_files_at(&first, true);
    assert_eq!(planned(&report, CADDYFILE)["action"], "update");
    assert_eq!(planned(&report, CADDYFILE)["drift"], "external-drift");
    assert_eq!(planned(&report, WHOAMI)["action"], "create");
    assert_eq!(lab.json_file(STATE)["source"]["commit"], first.as_str());
}

/// Asserts a cycle refused the tip `tip` for not descending from `base`: exit 1, both ids on
/// standard error, and nothing on the root changed but the run's records and the cache.
fn assert_rewind_refused(lab: &Lab, tip: &str, base: &str) {
    let before = lab.seen();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["result"], "refused");
    assert!(stderr.contains(tip) && stderr.contains(base), "both commits are named: {stderr}");
    assert_eq!(report["refused"]["commit"], tip);
    assert_eq!(report["commit"]["id"], base, "the host stays at the last applied commit");
    let after = lab.seen();
    assert_eq!(changed(&before, &after, &[STATE, AGENT, AUDIT], &[CACHE]), Vec::<String>::new());
    lab.assert_files_at(base, true);
    assert_eq!(lab.json_file(STATE)["source"]["commit"], base);
}

#[test]
fn a_rewound_branch_is_refused_until_init_force_accepts_it() {
    let Some((lab, first)) = Lab::applied("a_rewound_branch_is_refused_until_init_force_accepts_it") else {
        return;
    };
    lab.append("services/caddy/config/Caddyfile", "# second\n");
    let second = lab.commit("second");
    assert_eq!(lab.agent(&[]).0, 0);
    lab.assert_files_at(&second, true);
    // Force-push the first commit back.
    git(&lab.work, &["reset", "-q", "--hard", &first]);
    lab.push();
    assert_eq!(git(&lab.bare, &["rev-parse", "main"]), first);
    assert_rewind_refused(&lab, &first, &second);
    // Again at the next cycle: it stays refused, and says so.
    let (code, _, stderr) = lab.agent_human(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stays kept out"), "{stderr}");
    assert!(lab.status_human().contains(&format!("Kept out:    {}", short(&first))));

    // Another repository or ref needs --force; the same one with --force resets the baseline.
    let out = lab.init_ok(&["--force"]);
    assert!(out.contains(short(&first)), "{out}");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], first.as_str());
    lab.assert_files_at(&first, true);
    assert_eq!(lab.json_file(STATE)["source"]["commit"], first.as_str());
}

#[test]
fn an_unrelated_history_is_refused_until_init_force_accepts_it() {
    let Some((lab, first)) = Lab::applied("an_unrelated_history_is_refused_until_init_force_accepts_it") else {
        return;
    };
    // A new root commit with a different Caddyfile, force-pushed over main.
    git(&lab.work, &["checkout", "-q", "--orphan", "rewritten"]);
    lab.append("services/caddy/config/Caddyfile", "# rewritten\n");
    let unrelated = lab.commit("history rewritten");
    assert_eq!(git(&lab.bare, &["rev-list", "--count", &unrelated]), "1", "a root commit");
    assert_rewind_refused(&lab, &unrelated, &first);
    lab.init_ok(&["--force"]);
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], unrelated.as_str());
    lab.assert_files_at(&unrelated, true);
}

/// A key pair made by `ssh-keygen`: the private key's path and the public key line.
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    (path.clone(), fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string())
}

#[test]
fn only_tips_signed_by_a_trusted_key_are_applied() {
    const TEST: &str = "only_tips_signed_by_a_trusted_key_are_applied";
    if !git_server::available("ssh-keygen") {
        common::skip(TEST, "ssh-keygen is not installed");
        return;
    }
    let Some(lab) = Lab::new(TEST) else { return };
    let keys = lab.dir.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let (trusted, trusted_pub) = ssh_key(&keys, "ops");
    let (untrusted, _) = ssh_key(&keys, "mallory");
    fs::create_dir_all(lab.on_root("/etc/core-ops")).unwrap();
    fs::write(lab.on_root("/etc/core-ops/allowed_signers"), format!("ops@example.org {trusted_pub}\n")).unwrap();
    // git itself checks the signatures the same way.
    let allowed = lab.on_root("/etc/core-ops/allowed_signers");
    let git_verifies = |commit: &str| {
        git_command(&lab.bare, &["-c", &format!("gpg.ssh.allowedSignersFile={}", allowed.display())])
            .args(["verify-commit", commit])
            .status()
            .unwrap()
            .success()
    };

    // An unsigned first tip: init warns, and neither a cycle nor an apply by hand applies it.
    let unsigned_first = lab.commit("not signed, first");
    let out = lab.init(&["--trust", "/etc/core-ops/allowed_signers"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning") && stderr.contains("not signed"), "{stderr}");
    let out = lab.core_ops(&["apply", "--root", lab.root.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&unsigned_first) && stderr.contains("not signed"), "{stderr}");
    assert!(!lab.on_root(CADDYFILE).exists() && !lab.on_root(STATE).exists(), "nothing applied");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!((&report["refused"]["commit"], &report["commit"]), (&Value::from(unsigned_first), &Value::Null));
    assert!(!lab.on_root(CADDYFILE).exists() && !lab.on_root(STATE).exists(), "nothing applied");

    let first = lab.commit_signed(&trusted, "signed by ops");
    assert!(git_verifies(&first));
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "signed and trusted: {stderr}");
    assert_eq!(report["commit"]["id"], first.as_str());
    lab.assert_files_at(&first, true);

    let refused = |lab: &Lab, tip: &str, why: &str| {
        let before = lab.seen();
        let (code, report, stderr) = lab.agent(&[]);
        assert_eq!(code, 1, "{why}: {stderr}");
        assert_eq!(report["result"], "refused", "{why}");
        assert_eq!(report["refused"]["commit"], tip, "{why}");
        assert_eq!(report["commit"]["id"], first.as_str(), "{why}: the last good commit stays");
        assert_eq!(changed(&before, &lab.seen(), &[STATE, AGENT, AUDIT], &[CACHE]), Vec::<String>::new(), "{why}");
        lab.assert_files_at(&first, true);
        assert_eq!(lab.json_file(STATE)["source"]["commit"], first.as_str(), "{why}");
        stderr
    };

    lab.append("services/caddy/config/Caddyfile", "# unsigned\n");
    let unsigned = lab.commit("not signed");
    assert!(!git_verifies(&unsigned));
    // An apply by hand that fetches it first does not get around the check either.
    let out = lab.core_ops(&["apply", "--root", lab.root.to_str().unwrap(), "--fetch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(short(&unsigned)) && stderr.contains("not signed"), "{stderr}");
    lab.assert_files_at(&first, true);
    let stderr = refused(&lab, &unsigned, "unsigned");
    assert!(stderr.contains(&unsigned) && stderr.contains("not signed"), "{stderr}");

    lab.append("services/caddy/config/Caddyfile", "# mallory\n");
    let by_mallory = lab.commit_signed(&untrusted, "signed by mallory");
    assert!(!git_verifies(&by_mallory));
    let stderr = refused(&lab, &by_mallory, "untrusted key");
    assert!(stderr.contains(&by_mallory) && !stderr.contains("not signed"), "{stderr}");
    let mallory_fingerprint = String::from_utf8(
        Command::new("ssh-keygen").arg("-lf").arg(untrusted.with_extension("pub")).output().unwrap().stdout,
    )
    .unwrap();
    let mallory_fingerprint = mallory_fingerprint.split_whitespace().nth(1).unwrap();
    assert!(stderr.contains(mallory_fingerprint), "the untrusted key is named: {stderr}");

    // A trusted signature on top is applied, with everything before it.
    lab.append("services/caddy/config/Caddyfile", "# ops again\n");
    let good = lab.commit_signed(&trusted, "signed by ops again");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], good.as_str());
    lab.assert_files_at(&good, true);
}

/// A `host.bu` whose YAML breaks on line 6, column 29 (the unclosed flow sequence).
const BAD_BUTANE: &str =
    "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents: [inline: \"a\"\n";

#[test]
fn an_invalid_tip_is_kept_out_and_not_tried_again_until_it_moves_or_retry() {
    let Some((lab, first)) = Lab::applied("an_invalid_tip_is_kept_out_and_not_tried_again_until_it_moves_or_retry")
    else {
        return;
    };
    lab.write("hosts/example/host.bu", BAD_BUTANE);
    lab.append("services/caddy/config/Caddyfile", "# with the bad commit\n");
    let bad = lab.commit("a Butane file with a YAML error");
    let before = lab.seen();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 65, "{stderr}");
    assert_eq!(report["result"], "refused");
    assert!(stderr.contains("hosts/example/host.bu:6:"), "located: {stderr}");
    assert!(!stderr.contains("error: error:"), "{stderr}");
    assert_eq!(report["refused"]["commit"], bad.as_str());
    assert_eq!(report["refused"]["exit_code"], 65);
    assert_eq!(report["commit"]["id"], first.as_str());
    assert_eq!(changed(&before, &lab.seen(), &[STATE, AGENT, AUDIT], &[CACHE]), Vec::<String>::new());
    lab.assert_files_at(&first, true);
    assert!(!lab.on_root("/etc/motd").exists());

    let status = lab.status_json();
    assert_eq!(status["following"]["applied_commit"], first.as_str());
    assert_eq!(status["following"]["behind"], true);
    assert_eq!(status["following"]["refused"]["commit"], bad.as_str());
    assert!(status["following"]["refused"]["reason"].as_str().unwrap().contains("hosts/example/host.bu:6:"));
    let human = lab.status_human();
    assert!(human.contains(&format!("Kept out:    {}", short(&bad))) && human.contains("host.bu:6:"), "{human}");
    let judged_at = lab.json_file(AGENT)["refused"]["at"].clone();

    // A second later, the same tip is not judged again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, _, stderr) = lab.agent_human(&[]);
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains(&format!("the tip {} stays kept out", short(&bad))), "{stderr}");
    assert_eq!(lab.json_file(AGENT)["refused"]["at"], judged_at, "not judged again");
    lab.assert_files_at(&first, true);

    // --retry judges it again (a new time), with the same verdict.
    let (code, _, stderr) = lab.agent_human(&["--retry"]);
    assert_eq!(code, 65, "{stderr}");
    assert!(!stderr.contains("stays kept out") && stderr.contains("host.bu:6:"), "{stderr}");
    assert_ne!(lab.json_file(AGENT)["refused"]["at"], judged_at, "judged again");

    // The branch moves on to a fixed commit: applied, with the bad commit's other change.
    lab.write("hosts/example/host.bu", "variant: fcos\nversion: 1.5.0\n");
    let fixed = lab.commit("fix the Butane file");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], fixed.as_str());
    assert_eq!(report["refused"], Value::Null);
    lab.assert_files_at(&fixed, true);
    assert!(lab.status_json()["following"].get("refused").is_none_or(Value::is_null));
}

#[test]
fn with_the_remote_down_the_host_still_converges_to_the_cached_commit() {
    let Some((lab, _)) = Lab::applied("with_the_remote_down_the_host_still_converges_to_the_cached_commit") else {
        return;
    };
    // A second commit reaches the cache through `plan --fetch` (which applies nothing).
    lab.append("services/caddy/config/Caddyfile", "# second\n");
    let second = lab.commit("second");
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["plan", "--root", &root, "--fetch", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let updated: Vec<&Value> = plan["objects"].as_array().unwrap().iter().filter(|o| o["action"] != "no-op").collect();
    assert_eq!(updated.len(), 1, "{plan:#}");
    assert_eq!(updated[0]["path"], CADDYFILE);
    assert_ne!(fs::read(lab.on_root(CADDYFILE)).unwrap(), lab.blob(&second, "services/caddy/config/Caddyfile"));

    // The remote goes away, and someone edits an owned file.
    fs::rename(&lab.bare, lab.dir.path().join("moved.git")).unwrap();
    fs::write(lab.on_root(WHOAMI), "[Container]\nImage=evil\n").unwrap();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 75, "{stderr}");
    assert_eq!(report["result"], "fetch-failed");
    assert_eq!(report["fetch"]["result"], "failed");
    assert_eq!(report["fetch"]["unreachable"], true);
    assert_eq!(report["commit"]["id"], second.as_str());
    fs::rename(lab.dir.path().join("moved.git"), &lab.bare).unwrap();
    lab.assert_files_at(&second, true);
    fs::rename(&lab.bare, lab.dir.path().join("moved.git")).unwrap();
    assert!(stderr.contains(&lab.url()), "{stderr}");

    let status = lab.status_json();
    let fetch = &status["following"]["last_fetch"];
    assert!(fetch["error"].as_str().is_some_and(|e| !e.is_empty()), "{status:#}");
    assert_eq!(fetch["commit"], second.as_str(), "the last fetched tip stays known");
    assert_eq!(status["following"]["last_cycle"]["exit_code"], 75);
    let human = lab.status_human();
    assert!(human.contains("failed"), "{human}");
}

#[test]
fn a_remote_that_never_answers_is_given_up_on_and_the_host_still_converges() {
    let Some((lab, first)) = Lab::applied("a_remote_that_never_answers_is_given_up_on_and_the_host_still_converges")
    else {
        return;
    };
    // A server that accepts every connection and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let tracking = fs::read_to_string(lab.on_root(TRACKING)).unwrap();
    let hanging = tracking.replace(&lab.url(), &format!("git://127.0.0.1:{port}/remote.git"));
    assert_ne!(hanging, tracking);
    fs::write(lab.on_root(TRACKING), hanging).unwrap();
    fs::write(lab.on_root(WHOAMI), "[Container]\nImage=evil\n").unwrap();

    let mut child = common::bin()
        .args(["agent", "--root", lab.root.to_str().unwrap(), "--format", "json", "--fetch-timeout", "1"])
        .env_remove("CORE_OPS_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the agent still waited for the silent remote after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["fetch"]["error"].as_str().unwrap().contains("did not finish within 1 s"), "{report:#}");
    assert_eq!(report["commit"]["id"], first.as_str(), "the cached commit is converged");
    lab.assert_files_at(&first, true);
}

#[test]
fn a_corrupt_cache_is_rebuilt_with_a_warning() {
    let Some((lab, _)) = Lab::applied("a_corrupt_cache_is_rebuilt_with_a_warning") else { return };
    let pack = lab.on_root("/var/lib/core-ops/repo.git/objects/pack");
    for entry in fs::read_dir(&pack).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    lab.append("services/caddy/config/Caddyfile", "# after the damage\n");
    let second = lab.commit("second");
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    let warnings = report["fetch"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report:#}");
    assert!(warnings[0].as_str().unwrap().contains("corrupt"), "{warnings:?}");
    assert_eq!(report["commit"]["id"], second.as_str());
    lab.assert_files_at(&second, true);
    let (_, stdout, stderr) = lab.agent_human(&[]);
    assert!(!stderr.contains("warning"), "repaired once: {stderr}{stdout}");

    // A cache that is gone altogether is fetched again.
    fs::remove_dir_all(lab.on_root(CACHE)).unwrap();
    fs::write(lab.on_root(CADDYFILE), "drift\n").unwrap();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], second.as_str());
    let warnings = report["fetch"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "a lost cache is said so: {report:#}");
    assert!(warnings[0].as_str().unwrap().contains("was missing"), "{warnings:?}");
    lab.assert_files_at(&second, true);
}

#[test]
fn two_agents_take_turns_and_a_zero_lock_timeout_fails_clearly() {
    let Some((lab, first)) = Lab::applied("two_agents_take_turns_and_a_zero_lock_timeout_fails_clearly") else {
        return;
    };
    // Someone holds the run lock: a cycle that may not wait fails, and does nothing.
    let lock = fs::OpenOptions::new().read(true).write(true).open(lab.on_root("/run/core-ops/lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    lab.append("services/caddy/config/Caddyfile", "# second\n");
    let second = lab.commit("second");
    let before = lab.seen();
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["agent", "--root", &root, "--lock-timeout", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another core-ops run holds") && stderr.contains("--lock-timeout"), "{stderr}");
    assert_eq!(changed(&before, &lab.seen(), &[], &[]), Vec::<String>::new(), "nothing fetched, nothing written");
    lab.assert_files_at(&first, true);
    drop(lock);

    // Two cycles at once: one applies the commit, the other waits and finds it applied.
    let spawn = || {
        common::bin()
            .args(["agent", "--root", &root, "--format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let generation = lab.json_file(STATE)["generation"].as_u64().unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["commit"]["id"], second.as_str());
    }
    lab.assert_files_at(&second, true);
    assert_eq!(lab.json_file(STATE)["generation"].as_u64().unwrap(), generation + 1, "applied once");
}

#[test]
fn without_init_the_agent_says_so_and_writes_nothing() {
    let Some(lab) = Lab::new("without_init_the_agent_says_so_and_writes_nothing") else { return };
    let (code, stdout, stderr) = lab.agent_human(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("core-ops init"), "{stdout}");
    let (code, report, _) = lab.agent(&[]);
    assert_eq!(code, 0);
    assert_eq!(report["result"], "not-initialised");
    assert_eq!(fs::read_dir(&lab.root).unwrap().count(), 0, "the root stays empty");

    // status says so too, in both forms.
    let human = lab.status_human();
    assert!(human.contains("no repository") && human.contains("Nothing applied"), "{human}");
    let status = lab.status_json();
    assert!(status.get("following").is_none_or(Value::is_null), "{status:#}");
    assert_eq!(fs::read_dir(&lab.root).unwrap().count(), 0, "the root stays empty");
}

#[test]
fn status_after_init_and_before_any_apply_says_so() {
    let Some(lab) = Lab::new("status_after_init_and_before_any_apply_says_so") else { return };
    let commit = lab.commit("first");
    lab.init_ok(&[]);
    let status = lab.status_json();
    assert_eq!(status["following"]["tracking"]["repository"], lab.url());
    assert_eq!(status["following"]["last_fetch"]["commit"], commit.as_str());
    assert!(status["following"].get("applied_commit").is_none_or(Value::is_null), "{status:#}");
    assert_eq!(status["following"]["behind"], true);
    let human = lab.status_human();
    assert!(human.contains("Nothing applied") && human.contains(short(&commit)), "{human}");
}

#[test]
fn while_suspended_the_agent_fetches_nothing_and_changes_nothing() {
    let Some((lab, first)) = Lab::applied("while_suspended_the_agent_fetches_nothing_and_changes_nothing") else {
        return;
    };
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["suspend", "--root", &root, "--reason", "migrating the database by hand"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    lab.append("services/caddy/config/Caddyfile", "# second\n");
    let second = lab.commit("second");
    fs::write(lab.on_root(CADDYFILE), "edited during maintenance\n").unwrap();
    let fetch_before = lab.json_file(AGENT)["last_fetch"].clone();
    let before = lab.seen();
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "suspended");
    assert_eq!(report["suspended"]["reason"], "migrating the database by hand");
    assert_eq!(changed(&before, &lab.seen(), &[], &[]), Vec::<String>::new(), "not one file written");
    assert_eq!(lab.json_file(AGENT)["last_fetch"], fetch_before);
    assert_eq!(fetch_before["commit"], first.as_str());
    let (code, stdout, _) = lab.agent_human(&[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("suspended since") && stdout.contains("migrating the database by hand"), "{stdout}");

    let status = lab.status_json();
    let suspended = &status["following"]["suspended"];
    assert_eq!(suspended["reason"], "migrating the database by hand");
    let since = suspended["since"].as_str().unwrap();
    assert!(since.len() == 20 && since.ends_with('Z'), "{since}");
    let human = lab.status_human();
    assert!(human.contains(&format!("Suspended:   since {since}: migrating the database by hand")), "{human}");

    let out = lab.core_ops(&["resume", "--root", &root]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(since));
    let (code, report, stderr) = lab.agent(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["commit"]["id"], second.as_str());
    lab.assert_files_at(&second, true);
    assert!(lab.status_json()["following"].get("suspended").is_none_or(Value::is_null));
}

#[test]
fn plan_apply_and_explain_use_the_followed_repository() {
    let Some(lab) = Lab::new("plan_apply_and_explain_use_the_followed_repository") else { return };
    let first = lab.commit("first");
    lab.init_ok(&[]);
    let root = lab.root.to_str().unwrap().to_string();
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--root", root.as_str(), "--format", "json"];
        args.extend(extra);
        let out = lab.core_ops(&args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(violations("plan.schema.json", &doc), Vec::<String>::new());
        doc
    };
    let p = plan(&[]);
    assert_eq!(p["summary"]["create"], INSTALLED.len());
    assert_eq!(p["source"], lab.url());

    let out = lab.core_ops(&["apply", "--root", &root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    lab.assert_files_at(&first, true);
    assert_eq!(lab.json_file(STATE)["source"]["commit"], first.as_str());

    lab.append("services/caddy/config/Caddyfile", "# second\n");
    let second = lab.commit("second");
    assert_eq!(plan(&[])["summary"]["update"], 0, "the cached commit, not fetched");
    assert_eq!(plan(&["--fetch"])["summary"]["update"], 1, "the fetched tip");
    let out = lab.core_ops(&["apply", "--root", &root]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    lab.assert_files_at(&second, true);

    // A cycle on a host converged by hand has nothing to do, and makes its commit the one
    // later tips must descend from; explain works on it.
    let (code, report, _) = lab.agent(&[]);
    assert_eq!((code, changes(&report)), (0, BTreeMap::new()));
    assert_eq!(lab.json_file(AGENT)["baseline"], second.as_str());
    let out = lab.core_ops(&["explain", CADDYFILE, "--root", &root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(violations("explain.schema.json", &explained), Vec::<String>::new());
    assert_eq!(explained["origin"]["file"], "services/caddy/config/Caddyfile");
    assert_eq!(explained["owned"], true);
    let out = lab.core_ops(&["explain", "caddy.service", "--root", &root]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("/etc/containers/systemd/caddy.container") && text.contains(CADDYFILE), "{text}");

    // So a rewind to the commit applied before is refused.
    git(&lab.work, &["reset", "-q", "--hard", &first]);
    lab.push();
    assert_eq!(lab.agent(&[]).0, 1);
    lab.assert_files_at(&second, true);
}

#[test]
fn plan_apply_and_explain_keep_to_the_last_good_commit_while_the_tip_is_kept_out() {
    let Some((lab, first)) =
        Lab::applied("plan_apply_and_explain_keep_to_the_last_good_commit_while_the_tip_is_kept_out")
    else {
        return;
    };
    lab.write("hosts/example/host.bu", BAD_BUTANE);
    lab.append("services/caddy/config/Caddyfile", "# with the bad commit\n");
    let bad = lab.commit("bad");
    assert_eq!(lab.agent(&[]).0, 65);
    let root = lab.root.to_str().unwrap().to_string();
    for command in [&["plan"][..], &["plan", "--fetch"], &["explain", CADDYFILE], &["apply"], &["apply", "--fetch"]] {
        let before = lab.seen();
        let mut args = command.to_vec();
        args.extend(["--root", &root]);
        let out = lab.core_ops(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{command:?}: {stderr}");
        assert!(stderr.contains(short(&bad)) && stderr.contains(short(&first)), "{command:?}: names both: {stderr}");
        if command[0] == "plan" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!stdout.contains(CADDYFILE), "{command:?}: nothing to change at the last good commit: {stdout}");
        }
        // (`--fetch` notes its fetch in the agent's record.)
        assert_eq!(
            changed(&before, &lab.seen(), &[STATE, AGENT, AUDIT], &[CACHE]),
            Vec::<String>::new(),
            "{command:?}"
        );
        lab.assert_files_at(&first, true);
    }
}

#[test]
fn init_records_the_intent_prints_the_plan_and_applies_nothing() {
    let Some(lab) = Lab::new("init_records_the_intent_prints_the_plan_and_applies_nothing") else { return };
    let commit = lab.commit("first");
    fs::create_dir_all(lab.on_root("/etc/core-ops")).unwrap();
    fs::write(lab.on_root("/etc/hostname"), "example.lan.example.org\n").unwrap();
    fs::write(lab.on_root("/etc/core-ops/token"), "s3cr3t-t0ken-value\n").unwrap();
    fs::set_permissions(lab.on_root("/etc/core-ops/token"), fs::Permissions::from_mode(0o600)).unwrap();
    let url = lab.url();
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["init", &url, "main", "--root", &root, "--access-token-file", "/etc/core-ops/token"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(short(&commit)) && stdout.contains("as host example"), "{stdout}");
    let plan_line: Vec<&str> = stdout.lines().filter(|l| l.contains("to create")).collect();
    assert_eq!(plan_line.len(), 1, "{stdout}");
    assert!(plan_line[0].contains(&format!("{} to create", INSTALLED.len())), "{stdout}");

    let tracking = lab.on_root(TRACKING);
    assert_eq!(fs::metadata(&tracking).unwrap().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&tracking).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("/etc/core-ops/token") && text.contains("host: example\n"), "{text}");
    for (_, dest) in INSTALLED {
        assert!(!lab.on_root(dest).exists(), "init applied {dest}");
    }
    assert!(!lab.on_root(STATE).exists(), "init applied something");
}

#[test]
fn init_refuses_another_repository_or_ref_without_force() {
    let Some(lab) = Lab::new("init_refuses_another_repository_or_ref_without_force") else { return };
    lab.commit("first");
    git(&lab.bare, &["branch", "other", "main"]);
    lab.init_ok(&[]);
    let tracking = fs::read(lab.on_root(TRACKING)).unwrap();
    let root = lab.root.to_str().unwrap().to_string();
    let other_repo = lab.dir.path().join("copy.git");
    git(lab.dir.path(), &["clone", "-q", "--bare", lab.bare.to_str().unwrap(), other_repo.to_str().unwrap()]);
    let other_url = format!("file://{}", other_repo.display());
    for (url, reference) in [(lab.url(), "other"), (other_url.clone(), "main")] {
        let out = lab.core_ops(&["init", &url, reference, "--host", "example", "--root", &root]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url} {reference}: {stderr}");
        assert!(stderr.contains("--force"), "{stderr}");
        assert_eq!(fs::read(lab.on_root(TRACKING)).unwrap(), tracking, "nothing recorded");
    }
    let out = lab.core_ops(&["init", &other_url, "other", "--host", "example", "--root", &root, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = fs::read_to_string(lab.on_root(TRACKING)).unwrap();
    assert!(text.contains(&other_url) && text.contains("ref: other"), "{text}");
}

#[test]
fn init_of_a_host_that_does_not_load_records_nothing() {
    let Some(lab) = Lab::new("init_of_a_host_that_does_not_load_records_nothing") else { return };
    lab.write("hosts/example/host.bu", BAD_BUTANE);
    let commit = lab.commit("bad");
    let out = lab.init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("hosts/example/host.bu:6:") && stderr.contains(&commit), "{stderr}");
    assert!(!lab.on_root(TRACKING).exists() && !lab.on_root(CACHE).exists() && !lab.on_root(AGENT).exists());

    // A host the repository does not have.
    let url = lab.url();
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["init", &url, "main", "--host", "nosuch", "--root", &root]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
    assert!(!lab.on_root(TRACKING).exists() && !lab.on_root(CACHE).exists() && !lab.on_root(AGENT).exists());
}

#[test]
fn init_against_an_unreachable_remote_exits_75_and_records_nothing() {
    let Some(lab) = Lab::new("init_against_an_unreachable_remote_exits_75_and_records_nothing") else { return };
    let missing = format!("file://{}", lab.dir.path().join("nowhere.git").display());
    let root = lab.root.to_str().unwrap().to_string();
    let out = lab.core_ops(&["init", &missing, "main", "--host", "example", "--root", &root]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains(&missing), "{stderr}");
    assert!(!lab.on_root(TRACKING).exists() && !lab.on_root(CACHE).exists() && !lab.on_root(AGENT).exists());
}

#[test]
fn an_offline_cycle_fetches_nothing_and_converges_to_the_cached_commit() {
    let Some((lab, first)) = Lab::applied("an_offline_cycle_fetches_nothing_and_converges_to_the_cached_commit") else {
        return;
    };
    lab.append("services/caddy/config/Caddyfile", "# second\n");
    lab.commit("second");
    fs::write(lab.on_root(CADDYFILE), "drift\n").unwrap();
    let fetch_before = lab.json_file(AGENT)["last_fetch"].clone();
    let (code, report, stderr) = lab.agent(&["--offline"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["fetch"]["result"], "skipped");
    assert_eq!(report["commit"]["id"], first.as_str());
    lab.assert_files_at(&first, true);
    assert_eq!(lab.json_file(AGENT)["last_fetch"], fetch_before, "nothing fetched");
}
