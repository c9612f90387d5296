//! Safe by default (issue 10): a root remembers the host it was applied as and refuses another
//! without `--switch-host`; `apply` and `rollback` ask on a terminal (driven through a
//! pseudo-terminal made by `script`); exit codes that CI can trust (`plan` with blocked objects,
//! `status --exit-code`, `--help`); errors with a way forward (not root, a missing `--root`).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A repository with two hosts: `nas` runs jellyfin (a unit and a config file), `edge` runs caddy.
fn two_host_repo() -> tempfile::TempDir {
    common::repo(&[
        ("hosts/nas/host.yaml", "host: nas\nservices: [jellyfin]\n"),
        ("hosts/edge/host.yaml", "host: edge\nservices: [caddy]\n"),
        (
            "services/jellyfin/systemd/jellyfin.service",
            "[Service]\nExecStart=/usr/bin/jellyfin\n\n[Install]\nWantedBy=multi-user.target\n",
        ),
        ("services/jellyfin/config/jellyfin.conf", "port=8096\n"),
        ("services/caddy/config/Caddyfile", "edge.example.org\n"),
    ])
}

fn run(args: &[&str], repo: &Path, root: &Path) -> Output {
    common::bin().args(args).arg("--source-repo").arg(repo).arg("--root").arg(root).output().unwrap()
}

fn apply_host(repo: &Path, root: &Path, host: &str, extra: &[&str]) -> Output {
    run(&[&["apply", "--offline", "--host", host], extra].concat(), repo, root)
}

fn plan_host(repo: &Path, root: &Path, host: &str, extra: &[&str]) -> Output {
    run(&[&["plan", "--offline", "--host", host], extra].concat(), repo, root)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn state(root: &Path) -> Value {
    serde_json::from_slice(&fs::read(root.join("var/lib/core-ops/state.json")).unwrap()).unwrap()
}

/// Every node under `root` (path, type, mode, owner, content hash) except the run lock.
fn tree(root: &Path) -> common::Manifest {
    let mut m = common::manifest(root);
    m.retain(|path, _| !path.starts_with("/run"));
    m
}

fn butane(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("variant: fcos\nversion: 1.6.0\n{body}")).unwrap();
    path
}

const ONE_FILE: &str = "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n";

// ---- 1. Host identity ----------------------------------------------------------------------

#[test]
fn a_root_applied_as_one_host_refuses_another_in_plan_apply_and_rollback() {
    let repo = two_host_repo();
    let root = common::conformance_root();
    let r = root.path();
    let first = apply_host(repo.path(), r, "nas", &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let before = tree(r);
    let refusal = format!(
        "error: the root {} was last applied as host nas; this run is for host edge. If the machine is moving to host edge on purpose, add --switch-host.",
        r.display()
    );
    for (what, out) in
        [("apply", apply_host(repo.path(), r, "edge", &[])), ("plan", plan_host(repo.path(), r, "edge", &[]))]
    {
        assert_eq!(code(&out), 1, "{what}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(stderr(&out).trim_end(), refusal, "{what}");
        assert_eq!(stdout(&out), "", "{what} refuses before it plans anything");
        assert_eq!(tree(r), before, "{what} changed nothing");
    }

    let moved = apply_host(repo.path(), r, "edge", &["--switch-host"]);
    assert_eq!(code(&moved), 0, "{}", stderr(&moved));
    assert!(
        stderr(&moved)
            .contains(&format!("note: the root {} moves from host nas to host edge (--switch-host).", r.display())),
        "{}",
        stderr(&moved)
    );
    assert_eq!(state(r)["source"]["host"], "edge");
    assert!(!r.join("etc/jellyfin/jellyfin.conf").exists(), "the deliberate move removed nas's objects");

    // Back to the revision applied as nas: another host again.
    let before = tree(r);
    let back = common::bin().args(["rollback", "--offline", "--root"]).arg(r).output().unwrap();
    assert_eq!(code(&back), 1, "{}{}", stdout(&back), stderr(&back));
    let refusal = format!(
        "error: the root {} was last applied as host edge; this run is for host nas. If the machine is moving to host nas on purpose, add --switch-host.",
        r.display()
    );
    assert_eq!(stderr(&back).trim_end(), refusal);
    assert_eq!(tree(r), before, "rollback changed nothing");
    let back = common::bin().args(["rollback", "--offline", "--switch-host", "--root"]).arg(r).output().unwrap();
    assert_eq!(code(&back), 0, "{}", stderr(&back));
    assert_eq!(state(r)["source"]["host"], "nas");
    assert_eq!(fs::read_to_string(r.join("etc/jellyfin/jellyfin.conf")).unwrap(), "port=8096\n");
}

#[test]
fn with_no_record_a_host_other_than_the_hostname_is_a_warning_in_plan_and_refused_by_apply() {
    let repo = two_host_repo();
    let root = common::conformance_root();
    let r = root.path();
    fs::write(r.join("etc/hostname"), "# set by the installer\nedge\n").unwrap();
    let before = tree(r);

    let plan = plan_host(repo.path(), r, "nas", &[]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert_eq!(
        stderr(&plan).trim_end(),
        format!(
            "warning: the root {} is named edge in its /etc/hostname and has no host recorded yet; this plan is for host nas. apply will refuse it without --switch-host.",
            r.display()
        )
    );
    assert!(stdout(&plan).contains("/etc/jellyfin/jellyfin.conf"), "the plan is still shown:\n{}", stdout(&plan));

    let apply = apply_host(repo.path(), r, "nas", &[]);
    assert_eq!(code(&apply), 1, "{}{}", stdout(&apply), stderr(&apply));
    assert_eq!(
        stderr(&apply).trim_end(),
        format!(
            "error: the root {} is named edge in its /etc/hostname and has no host recorded yet; this run is for host nas. If the machine is becoming host nas on purpose, add --switch-host.",
            r.display()
        )
    );
    assert_eq!(tree(r), before, "apply changed nothing");

    // The host that matches the hostname goes through, as does a FQDN's first label.
    let same = apply_host(repo.path(), r, "edge", &[]);
    assert_eq!((code(&same), stderr(&same)), (0, String::new()));
    let fqdn = common::conformance_root();
    fs::write(fqdn.path().join("etc/hostname"), "nas.home.arpa\n").unwrap();
    let ok = apply_host(repo.path(), fqdn.path(), "nas", &[]);
    assert_eq!((code(&ok), stderr(&ok)), (0, String::new()));

    let other = common::conformance_root();
    fs::write(other.path().join("etc/hostname"), "edge\n").unwrap();
    let switched = apply_host(repo.path(), other.path(), "nas", &["--switch-host"]);
    assert_eq!(code(&switched), 0, "{}", stderr(&switched));
    assert_eq!(state(other.path())["source"]["host"], "nas");
}

#[test]
fn a_config_run_names_no_host_and_keeps_the_one_recorded() {
    let repo = two_host_repo();
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let r = root.path();
    assert_eq!(code(&apply_host(repo.path(), r, "nas", &[])), 0);
    let cfg = butane(work.path(), "extra.bu", ONE_FILE);
    let out = common::bin().args(["apply", "--offline", "--config"]).arg(&cfg).arg("--root").arg(r).output().unwrap();
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
    assert_eq!(state(r)["source"]["kind"], "config");
    assert_eq!(state(r)["source"]["host"], "nas", "the root is still host nas");
    let edge = apply_host(repo.path(), r, "edge", &[]);
    assert_eq!(code(&edge), 1, "{}", stdout(&edge));
    assert!(stderr(&edge).contains("was last applied as host nas; this run is for host edge."), "{}", stderr(&edge));
}

// ---- 2. Confirmation on a terminal ---------------------------------------------------------

const QUESTION: &str = "Apply these changes? [y/N] ";

/// `core-ops` run by `script` on a pseudo-terminal: its standard input, output and error are
/// the terminal; what is written to `stdin` is typed on it.
struct Terminal {
    child: Child,
    seen: Arc<Mutex<Vec<u8>>>,
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

impl Terminal {
    /// Runs the shell command line `line` (`core-ops` stands for the built binary) on a terminal.
    fn run(line: &str) -> Option<Terminal> {
        if Command::new("script").arg("--version").output().is_err() {
            common::skip("terminal tests", "`script` (util-linux) is not installed");
            return None;
        }
        let line = line.replace("core-ops", &quote(env!("CARGO_BIN_EXE_core-ops")));
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("NO_COLOR", "1")
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut out, sink) = (child.stdout.take().unwrap(), Arc::clone(&seen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Terminal { child, seen })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).replace("\r\n", "\n")
    }

    /// Waits until `text` is on the screen; false after 60 seconds or once the program ended.
    fn wait_for(&mut self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.text().contains(text) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(100));
                return self.text().contains(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The exit code and everything the terminal showed.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running after 60 s; the terminal shows:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.child.stdin.take());
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.text())
    }
}

fn apply_line(cfg: &Path, root: &Path, extra: &str) -> String {
    format!(
        "core-ops apply --offline --config {} --root {} {extra}",
        quote(&cfg.display().to_string()),
        quote(&root.display().to_string())
    )
}

#[test]
fn on_a_terminal_apply_shows_the_plan_asks_and_n_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let before = tree(root.path());
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    let Some(mut term) = Terminal::run(&apply_line(&cfg, root.path(), "")) else { return };
    assert!(term.wait_for(QUESTION), "no question on the terminal:\n{}", term.text());
    let shown = term.text();
    let plan_at = shown.find("Plan: 1 to create").unwrap_or_else(|| panic!("no plan before the question:\n{shown}"));
    assert!(plan_at < shown.find(QUESTION).unwrap(), "the plan comes first:\n{shown}");
    assert_eq!(tree(root.path()), before, "nothing is written while the question waits");
    term.type_line("n");
    let (code, shown) = term.finish();
    assert_eq!(code, 1, "{shown}");
    assert!(shown.trim_end().ends_with("Apply cancelled."), "{shown}");
    assert!(!shown.contains("Apply complete"), "{shown}");
    assert_eq!(tree(root.path()), before, "a declined apply writes nothing, not even the state");
}

#[test]
fn on_a_terminal_y_applies_the_plan_it_showed() {
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    let Some(mut term) = Terminal::run(&apply_line(&cfg, root.path(), "")) else { return };
    assert!(term.wait_for(QUESTION), "no question on the terminal:\n{}", term.text());
    term.type_line("y");
    let (code, shown) = term.finish();
    assert_eq!(code, 0, "{shown}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    assert!(shown.contains("Apply complete: revision"), "{shown}");
    assert_eq!(shown.matches("Plan: 1 to create").count(), 1, "the plan is shown once:\n{shown}");
}

#[test]
fn yes_a_pipe_or_nothing_to_do_never_ask() {
    let work = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    for (what, extra) in
        [("--yes", "--yes"), ("stdin from a pipe", "< /dev/null"), ("stdout into a pipe", "| cat"), ("-y", "-y")]
    {
        let root = common::conformance_root();
        let Some(term) = Terminal::run(&apply_line(&cfg, root.path(), extra)) else { return };
        let (_, shown) = term.finish();
        assert!(!shown.contains("[y/N]"), "{what} asked:\n{shown}");
        assert!(shown.contains("Apply complete: revision"), "{what}:\n{shown}");
        assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n", "{what}");
    }

    // Nothing to do: the fast path (the same input), and a full run with a plan of no-ops (the
    // input's bytes changed, its meaning did not).
    let root = common::conformance_root();
    let first =
        common::bin().args(["apply", "--offline", "--config"]).arg(&cfg).arg("--root").arg(root.path()).output();
    assert_eq!(first.unwrap().status.code(), Some(0));
    let again = |cfg: &Path| {
        let term = Terminal::run(&apply_line(cfg, root.path(), "")).unwrap();
        let (code, shown) = term.finish();
        assert!(!shown.contains("[y/N]"), "asked with nothing to do:\n{shown}");
        assert_eq!(code, 0, "{shown}");
    };
    again(&cfg);
    fs::write(&cfg, format!("# a comment changes the bytes only\n{}", fs::read_to_string(&cfg).unwrap())).unwrap();
    again(&cfg);
}

#[test]
fn on_a_terminal_rollback_asks_too() {
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let r = root.path();
    let v1 = butane(work.path(), "v1.bu", ONE_FILE);
    let v2 = butane(work.path(), "v2.bu", &ONE_FILE.replace("a=1", "a=2"));
    for cfg in [&v1, &v2] {
        let out = common::bin().args(["apply", "--offline", "--config"]).arg(cfg).arg("--root").arg(r).output();
        assert_eq!(out.unwrap().status.code(), Some(0));
    }
    let before = tree(r);
    let line = format!("core-ops rollback --offline --root {}", quote(&r.display().to_string()));
    let Some(mut term) = Terminal::run(&line) else { return };
    assert!(term.wait_for(QUESTION), "no question on the terminal:\n{}", term.text());
    term.type_line("");
    let (code, shown) = term.finish();
    assert_eq!(code, 1, "{shown}");
    assert!(shown.trim_end().ends_with("Rollback cancelled."), "an empty answer is no:\n{shown}");
    assert_eq!(tree(r), before);

    let mut term = Terminal::run(&line).unwrap();
    assert!(term.wait_for(QUESTION), "no question on the terminal:\n{}", term.text());
    term.type_line("yes");
    let (code, shown) = term.finish();
    assert_eq!(code, 0, "{shown}");
    assert_eq!(fs::read_to_string(r.join("etc/app/a.conf")).unwrap(), "a=1\n");
}

// ---- 5. Exit codes -------------------------------------------------------------------------

#[test]
fn plan_exits_1_when_anything_is_blocked() {
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    let plan = |extra: &[&str]| {
        common::bin()
            .args(["plan", "--offline", "--config"])
            .arg(&cfg)
            .arg("--root")
            .arg(root.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let pending = plan(&[]);
    assert_eq!((code(&pending), stderr(&pending)), (0, String::new()), "changes pending, none blocked");
    assert_eq!(code(&plan(&["--exit-code"])), 3);

    fs::create_dir_all(root.path().join("etc/app")).unwrap();
    fs::write(root.path().join("etc/app/a.conf"), "theirs\n").unwrap();
    for extra in [&[][..], &["--exit-code"][..], &["--format", "json"][..]] {
        let blocked = plan(extra);
        assert_eq!(code(&blocked), 1, "{extra:?}: {}", stdout(&blocked));
        assert_eq!(
            stderr(&blocked),
            "error: 1 object is blocked, so apply would fail and write nothing.\n",
            "{extra:?}"
        );
    }
    let adopted = plan(&["--adopt"]);
    assert_eq!(code(&adopted), 0, "{}", stderr(&adopted));
}

#[test]
fn status_exit_code_reports_drift_and_runs_that_did_not_converge() {
    let work = tempfile::tempdir().unwrap();
    let root = common::conformance_root();
    let r = root.path();
    let status = |extra: &[&str]| code(&common::bin().args(["status", "--root"]).arg(r).args(extra).output().unwrap());
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    let apply = |cfg: &Path| {
        code(&common::bin().args(["apply", "--offline", "--config"]).arg(cfg).arg("--root").arg(r).output().unwrap())
    };
    assert_eq!(apply(&cfg), 0);
    assert_eq!((status(&[]), status(&["--exit-code"])), (0, 0), "converged, no drift");

    fs::write(r.join("etc/app/a.conf"), "edited\n").unwrap();
    assert_eq!((status(&[]), status(&["--exit-code"])), (0, 3), "an owned object drifted");
    assert_eq!(apply(&cfg), 0);
    assert_eq!(status(&["--exit-code"]), 0, "repaired");

    // A failed run: blocked by a path CoreOps does not own.
    fs::write(r.join("etc/theirs.conf"), "theirs\n").unwrap();
    let blocked = butane(
        work.path(),
        "b.bu",
        &format!("{ONE_FILE}    - path: /etc/theirs.conf\n      contents: {{inline: \"ours\\n\"}}\n"),
    );
    assert_eq!(apply(&blocked), 1);
    assert_eq!(state(r)["last_run"]["result"], "failed");
    assert_eq!((status(&[]), status(&["--exit-code"])), (0, 3), "the last run failed");
    assert_eq!(status(&["--exit-code", "--format", "json"]), 3);
}

/// The codes an `Exit codes:` section lists: the first word of each entry line (indented by two
/// spaces; a longer indent continues the entry above).
fn listed_codes(section: &str) -> Vec<&str> {
    section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.trim_start())
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn help_documents_every_exit_code() {
    let help = stdout(&common::bin().arg("--help").output().unwrap());
    let section = help.split("Exit codes:").nth(1).unwrap_or_else(|| panic!("no exit codes in --help:\n{help}"));
    let codes = listed_codes(section);
    assert_eq!(codes, ["0", "1", "2", "3", "64", "65", "75"], "{section}");
    for (command, codes) in [
        ("plan", &["0", "1", "2", "3", "64", "65"][..]),
        ("apply", &["0", "1", "2", "64", "65"]),
        ("rollback", &["0", "1", "2"]),
        ("status", &["0", "1", "2", "3"]),
        ("init", &["0", "1", "2", "65", "75"]),
        ("agent", &["0", "1", "2", "65", "75"]),
    ] {
        let help = stdout(&common::bin().args([command, "--help"]).output().unwrap());
        let section =
            help.split("Exit codes:").nth(1).unwrap_or_else(|| panic!("no exit codes in {command} --help:\n{help}"));
        let listed = listed_codes(section);
        assert_eq!(listed, codes, "{command}: {section}");
    }
}

// ---- 10. Errors with a way forward ---------------------------------------------------------

#[test]
fn apply_on_slash_without_root_says_it_needs_root() {
    if !common::is_root() {
        common::skip("apply_on_slash_without_root_says_it_needs_root", "needs root to drop privileges");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        common::skip("apply_on_slash_without_root_says_it_needs_root", "setpriv (util-linux) is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A path no test run owns: never written, whatever happens.
    let cfg = butane(
        work.path(),
        "c.bu",
        "storage:\n  files:\n    - path: /var/tmp/core-ops-cli-safety-never-written\n      contents: {inline: x}\n",
    );
    for (command, extra) in [("apply", &[][..]), ("apply", &["--offline"]), ("rollback", &[])] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_core-ops"), command]);
        if command == "apply" {
            cmd.arg("--config").arg(&cfg);
        }
        let out = cmd.args(extra).output().unwrap();
        assert_eq!(code(&out), 1, "{command} {extra:?}: {}", stdout(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "error: {command} needs root (on / as on any other --root): it takes the run lock in /run/core-ops and keeps CoreOps's records in /var/lib/core-ops, which belong to root, and it gives every node it writes the owner the config names (root where it names none), as Ignition does. core-ops runs as uid 65534: run it as root (e.g. with sudo). `core-ops plan` works without root.\n"
            ),
            "{command} {extra:?}"
        );
    }
    assert!(!Path::new("/var/tmp/core-ops-cli-safety-never-written").exists());
}

#[test]
fn plan_on_a_missing_root_plans_against_an_empty_root_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", ONE_FILE);
    let missing = work.path().join("not-there");
    let out =
        common::bin().args(["plan", "--offline", "--config"]).arg(&cfg).arg("--root").arg(&missing).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("note: the root {} does not exist: planning against an empty root.\n", missing.display())
    );
    assert!(stdout(&out).contains("Plan: 1 to create, 0 to update, 0 to delete, 0 blocked"), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("(root {})", missing.display())), "{}", stdout(&out));
    assert!(!missing.exists(), "plan creates nothing");
}

/// The guard is checked again under the run lock: a run for `nas` that waited while another run
/// applied the root as `edge` refuses instead of undoing that run's move.
#[test]
fn a_run_that_waited_for_the_lock_refuses_a_root_another_host_took_meanwhile() {
    use rustix::fs::{FlockOperation, flock};
    let repo = two_host_repo();
    let root = common::conformance_root();
    let r = root.path();
    let first = apply_host(repo.path(), r, "nas", &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    fs::write(repo.path().join("services/jellyfin/config/jellyfin.conf"), "port=9999\n").unwrap();
    let lock = fs::OpenOptions::new().read(true).write(true).open(r.join("run/core-ops/lock")).unwrap();
    flock(&lock, FlockOperation::LockExclusive).unwrap();
    let child = common::bin()
        .args(["apply", "--offline", "--host", "nas", "--lock-timeout", "30", "--source-repo"])
        .arg(repo.path())
        .arg("--root")
        .arg(r)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it has the lock file open it has passed the guard (the root records nas) and waits
    // for the lock: move the root to edge as a run holding the lock would.
    let lock_path = r.join("run/core-ops/lock");
    let fds = format!("/proc/{}/fd", child.id());
    let waiting = || {
        fs::read_dir(&fds)
            .map(|fds| fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == lock_path)))
            .unwrap_or(false)
    };
    let started = Instant::now();
    while !waiting() {
        assert!(started.elapsed() < Duration::from_secs(30), "the run never waited for the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let state_file = r.join("var/lib/core-ops/state.json");
    let mut moved = state(r);
    moved["source"]["host"] = Value::from("edge");
    fs::write(&state_file, serde_json::to_vec(&moved).unwrap()).unwrap();
    flock(&lock, FlockOperation::Unlock).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("was applied as host edge while this run waited for the lock"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(r.join("etc/jellyfin/jellyfin.conf")).unwrap(), "port=8096\n", "nothing changed");
    assert_eq!(state(r)["source"]["host"], "edge");
}

/// The converged fast path knows a config and its files directory by their stamps, not their
/// bytes: an edit that keeps the size and puts the modification time back still changes the
/// change time, and the next apply writes it.
#[test]
fn an_edit_that_keeps_size_and_modification_time_is_still_applied() {
    if !common::is_root() {
        common::skip("an_edit_that_keeps_size_and_modification_time_is_still_applied", "apply needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    fs::create_dir(&files).unwrap();
    fs::write(files.join("b.conf"), "b=1\n").unwrap();
    let body = format!("{ONE_FILE}    - path: /etc/app/b.conf\n      contents: {{local: b.conf}}\n");
    let cfg = butane(work.path(), "c.bu", &body);
    let root = common::conformance_root();
    let apply = || {
        let out = common::bin()
            .args(["apply", "--offline", "--yes", "--config"])
            .arg(&cfg)
            .args(["--files-dir"])
            .arg(&files)
            .arg("--root")
            .arg(root.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    };
    let read = |rel: &str| fs::read_to_string(root.path().join(rel)).unwrap();
    apply();
    assert_eq!((read("etc/app/a.conf"), read("etc/app/b.conf")), ("a=1\n".into(), "b=1\n".into()));
    // Same size, the old modification time put back.
    let rewrite = |path: &Path, from: &str, to: &str| {
        let modified = fs::metadata(path).unwrap().modified().unwrap();
        fs::write(path, fs::read_to_string(path).unwrap().replace(from, to)).unwrap();
        fs::File::options().write(true).open(path).unwrap().set_modified(modified).unwrap();
        assert_eq!(fs::metadata(path).unwrap().modified().unwrap(), modified);
    };
    rewrite(&cfg, "a=1", "a=2");
    apply();
    assert_eq!(read("etc/app/a.conf"), "a=2\n", "the edited config");
    rewrite(&files.join("b.conf"), "b=1", "b=2");
    apply();
    assert_eq!(read("etc/app/b.conf"), "b=2\n", "the edited file of the files directory");
}
