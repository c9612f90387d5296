//! The agent as a host runs it, in the real-systemd testbed (`tests/common/testbed.rs`): the
//! shipped `systemd/core-ops.service` and `systemd/core-ops.timer` (the timer shortened by a
//! drop-in) run `core-ops agent` against a git repository that the test commits to on the host
//! and bind-mounts into the container, where it is reached as a `file://` remote. The test
//! never runs the agent itself: every cycle is one the timer started.
//!
//! - `init` and the timer converge a host; a pushed commit that changes one config file
//!   restarts exactly its consumer; `systemctl status core-ops.service` shows the last result.
//! - First boot: `render-ignition --track` written into a fresh root by `core-ops apply
//!   --offline` (standing in for Ignition), booted, and converged from git by the first timer
//!   run with no manual step, owning what the first boot wrote and creating none of it again.
//!
//! What a cycle did is read from the journal, grouped by run: the lines a run printed carry its
//! process id (`_PID`; `_SYSTEMD_INVOCATION_ID` is missing from some stream lines in nspawn).
//! Restarts are observed through every service's `InvocationID`. Commit ids come from the `git`
//! CLI, never from CoreOps.

mod common;
#[path = "common/git_server.rs"]
mod git_server;
#[path = "common/testbed.rs"]
mod testbed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git_server::Upstream;
use serde_json::Value;
use testbed::{Bind, Ran, Testbed, wait_until};

/// The host of the repository the container is: the testbed rootfs's `/etc/hostname`.
const HOST: &str = "testbed";
/// How long a scenario waits for the timer to start a cycle that does what it waits for: a few
/// timer periods, each cycle included.
const AGENT_DEADLINE: Duration = Duration::from_secs(40);
/// Where the scenarios install the agent's units.
const UNIT_DIR: &str = "etc/systemd/system";
/// The drop-in that makes the timer run a cycle a second after boot (or after it is started
/// late), then two seconds after each one ends. The empty assignment resets every timer of the
/// unit, `OnBootSec=` included, so that one is set again.
const FAST_TIMER: &str =
    "[Timer]\nOnUnitInactiveSec=\nOnBootSec=1s\nOnUnitInactiveSec=2s\nRandomizedDelaySec=0\nAccuracySec=100ms\n";

/// Two services of host `testbed`: `web`, whose environment file is its `config/env`
/// (`/etc/web/env`), and `db`, which uses no file.
fn services(web_mode: &str) -> Vec<(String, String)> {
    let unit = |extra: &str| {
        format!("[Service]\nExecStart=/bin/sleep infinity\n{extra}[Install]\nWantedBy=multi-user.target\n")
    };
    vec![
        ("hosts/testbed/host.yaml".into(), "host: testbed\nservices: [web, db]\n".into()),
        ("services/web/systemd/web.service".into(), unit("EnvironmentFile=/etc/web/env\n")),
        ("services/web/config/env".into(), format!("MODE={web_mode}\n")),
        ("services/db/systemd/db.service".into(), unit("")),
    ]
}

/// Commits `files` (path, content) upstream with `message` and pushes: the commit id, as git says.
fn commit(upstream: &mut Upstream, files: &[(String, String)], message: &str) -> String {
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let id = upstream.commit(&files, &[], message);
    upstream.push();
    id
}

/// The line a cycle that converged to `commit` (whose summary line is `message`) ends with.
fn converged_line(commit: &str, message: &str) -> String {
    format!("core-ops agent: converged to {} ({message}).", &commit[..12])
}

/// One run of core-ops.service: its process and the lines it printed, in order.
#[derive(Debug)]
struct Run {
    pid: String,
    lines: Vec<String>,
}

/// The runs of core-ops.service so far, oldest first, as `journalctl -u core-ops.service` has
/// them (systemd's own messages about the unit left out).
fn agent_runs(bed: &Testbed) -> Vec<Run> {
    let out = bed.exec(&["journalctl", "-u", "core-ops.service", "-o", "json", "--no-pager"]);
    let mut runs: Vec<Run> = Vec::new();
    for entry in String::from_utf8_lossy(&out.stdout).lines() {
        let entry: Value = serde_json::from_str(entry).unwrap_or_else(|e| panic!("journalctl -o json: {e}: {entry}"));
        if entry["_SYSTEMD_UNIT"] != "core-ops.service" {
            continue;
        }
        let (Some(pid), Some(message)) = (entry["_PID"].as_str(), entry["MESSAGE"].as_str()) else {
            panic!("a line of core-ops.service without its process or a text message: {entry}");
        };
        match runs.last_mut() {
            Some(run) if run.pid == pid => run.lines.push(message.to_string()),
            _ => runs.push(Run { pid: pid.to_string(), lines: vec![message.to_string()] }),
        }
    }
    runs
}

/// Waits for the first run of core-ops.service that printed `line`, and returns the runs up to
/// it (it last).
#[track_caller]
fn wait_for_run_printing(bed: &Testbed, line: &str) -> Vec<Run> {
    let mut runs = wait_until(
        AGENT_DEADLINE,
        &format!("a timer-started agent cycle to print {line:?}"),
        || agent_runs(bed),
        |runs| runs.iter().any(|r| r.lines.iter().any(|l| l == line)),
    );
    let at = runs.iter().position(|r| r.lines.iter().any(|l| l == line)).unwrap();
    runs.truncate(at + 1);
    runs
}

/// The `InvocationID` of every service systemd knows, but core-ops.service (which the timer
/// starts anew every few seconds); empty for a service that never ran.
fn service_invocations(bed: &Testbed) -> BTreeMap<String, String> {
    let text = bed.sh("systemctl show --all -p Id -p InvocationID '*.service'");
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("").to_string();
        let id = field("Id=");
        if !id.is_empty() && id != "core-ops.service" {
            out.insert(id, field("InvocationID="));
        }
    }
    out
}

/// The variables of the running process of `unit`, as the kernel has them.
fn environment_of(bed: &Testbed, unit: &str) -> Vec<String> {
    let pid = bed.property(unit, "MainPID");
    let environ = bed.exec(&["cat", &format!("/proc/{pid}/environ")]);
    environ.stdout.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into()).collect()
}

/// Installs `systemd/`'s units under `root` as an operator would, with the fast timer drop-in.
fn install_units(root: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for name in ["core-ops.service", "core-ops.timer"] {
        std::fs::copy(source.join(name), root.join(UNIT_DIR).join(name)).unwrap();
    }
    let dropins = root.join(UNIT_DIR).join("core-ops.timer.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(dropins.join("50-test-interval.conf"), FAST_TIMER).unwrap();
}

#[test]
fn the_timer_converges_the_host_from_git_and_a_pushed_change_restarts_exactly_its_consumer() {
    const TEST: &str = "the_timer_converges_the_host_from_git_and_a_pushed_change_restarts_exactly_its_consumer";
    let Some(bed) = Testbed::mount(TEST) else { return };
    let mut upstream = Upstream::new("public");
    let first = commit(&mut upstream, &services("a"), "web and db");
    bed.install_core_ops();
    install_units(&bed.root);
    bed.boot(&[Bind { host: &upstream.bare, at: "/srv/repo.git" }]);

    let init = bed.exec(&["core-ops", "init", "file:///srv/repo.git", "main", "--host", HOST]);
    let said = Ran::of(&init).stdout;
    assert!(said.contains(&format!("commit {}", &first[..12])), "{said}");
    assert_eq!(bed.property("web.service", "LoadState"), "not-found", "init applies nothing");
    assert!(agent_runs(&bed).is_empty(), "nothing ran the agent yet");
    bed.exec(&["systemctl", "enable", "--now", "core-ops.timer"]);

    wait_for_run_printing(&bed, &converged_line(&first, "web and db"));
    for unit in ["web.service", "db.service"] {
        assert_eq!(bed.sh(&format!("systemctl is-active {unit}")), "active", "{unit}");
        assert_eq!(bed.sh(&format!("systemctl is-enabled {unit}")), "enabled", "{unit}");
    }
    assert!(environment_of(&bed, "web.service").contains(&"MODE=a".to_string()));

    // A commit that changes web's config file: the next timer run restarts web, and nothing else.
    let before = service_invocations(&bed);
    assert!(!before["web.service"].is_empty() && !before["db.service"].is_empty(), "{before:#?}");
    let second = commit(&mut upstream, &[("services/web/config/env".into(), "MODE=b\n".into())], "web: mode b");
    let runs = wait_for_run_printing(&bed, &converged_line(&second, "web: mode b"));
    let after = service_invocations(&bed);
    let restarted: Vec<&String> = after.keys().filter(|unit| before.get(*unit) != after.get(*unit)).collect();
    assert_eq!(restarted, ["web.service"], "only the consumer of the changed file runs anew");
    assert!(environment_of(&bed, "web.service").contains(&"MODE=b".to_string()), "web runs with the new file");
    let run = runs.last().unwrap();
    let actions: Vec<&String> = run.lines.iter().filter(|l| l.trim_start().starts_with('↻')).collect();
    assert_eq!(actions.len(), 1, "one systemd action in the cycle that applied {second}: {:#?}", run.lines);
    assert!(
        actions[0].contains("restart") && actions[0].contains("web.service — services/web/config/env changed"),
        "{actions:?}"
    );

    // The last result, as an operator looks at it (with the timer stopped, no run is under way).
    bed.exec(&["systemctl", "stop", "core-ops.timer"]);
    wait_until(
        AGENT_DEADLINE,
        "core-ops.service to finish its run",
        || bed.active("core-ops.service"),
        |s| s == "inactive",
    );
    let status = Ran::of(&bed.exec_expecting(3, &["systemctl", "status", "--full", "--no-pager", "core-ops.service"]));
    assert!(
        status.stdout.contains("ExecStart=/usr/local/bin/core-ops agent (code=exited, status=0/SUCCESS)"),
        "{status:#?}"
    );
    assert!(status.stdout.contains(&converged_line(&second, "web: mode b")), "{status:#?}");
    assert_eq!(
        (bed.property("core-ops.service", "Result"), bed.property("core-ops.service", "ExecMainStatus")),
        ("success".into(), "0".into())
    );
}

/// `CARGO_BIN_EXE_core-ops` without its debug information (a debug build is over the 64 MiB
/// that `render-ignition` embeds), by binutils' `strip`; `None` after a skip without `strip`.
fn stripped_agent(test: &str, dir: &Path) -> Option<PathBuf> {
    if !git_server::available("strip") {
        common::skip(test, "binutils' strip is not installed (the debug core-ops is too large to embed)");
        return None;
    }
    let out = dir.join("core-ops");
    let ran =
        std::process::Command::new("strip").arg("-o").arg(&out).arg(env!("CARGO_BIN_EXE_core-ops")).output().unwrap();
    assert!(ran.status.success(), "strip: {}", String::from_utf8_lossy(&ran.stderr));
    Some(out)
}

/// The decoded contents of file `path` in an Ignition config.
fn config_file(config: &Value, path: &str) -> Vec<u8> {
    let files = config["storage"]["files"].as_array().unwrap();
    let file = files.iter().find(|f| f["path"] == path).unwrap_or_else(|| panic!("no {path} in the config"));
    let contents = &file["contents"];
    let (bytes, decompressed) =
        common::decode_data_url(contents["source"].as_str().unwrap(), contents["compression"].as_str()).unwrap();
    assert!(decompressed, "{path}: compression {}", contents["compression"]);
    bytes
}

/// The audit log under `root`, one JSON document a run.
fn audit_log(root: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(root.join("var/lib/core-ops/audit.log")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The paths an ownership record (`state.json`) owns, sorted.
fn owned_paths(state: &Value) -> Vec<String> {
    let objects = state["last_applied"]["objects"].as_array().unwrap();
    let mut paths: Vec<String> = objects.iter().map(|o| o["path"].as_str().unwrap().to_string()).collect();
    paths.sort();
    paths
}

#[test]
fn a_machine_rendered_with_track_follows_its_repository_from_the_first_boot() {
    const TEST: &str = "a_machine_rendered_with_track_follows_its_repository_from_the_first_boot";
    let Some(bed) = Testbed::mount(TEST) else { return };
    let work = tempfile::tempdir().unwrap();
    let Some(agent) = stripped_agent(TEST, work.path()) else { return };
    let mut upstream = Upstream::new("public");
    // The repository shortens the timer itself, with a drop-in on the bootstrap's unit.
    let timer_dropin = format!(
        "variant: fcos\nversion: 1.5.0\nsystemd:\n  units:\n    - name: core-ops.timer\n      dropins:\n        - name: 50-test-interval.conf\n          contents: |\n{}",
        FAST_TIMER.lines().map(|l| format!("            {l}\n")).collect::<String>()
    );
    let mut files = services("a");
    files.push(("hosts/testbed/host.bu".into(), timer_dropin));
    let first = commit(&mut upstream, &files, "web and db, every two seconds");

    let rendered = work.path().join("rendered.ign");
    let render = common::bin()
        .args(["render-ignition", "--source-repo", upstream.work().to_str().unwrap(), "--host", HOST])
        .args(["--track", "file:///repo", "main", "--agent-binary", agent.to_str().unwrap(), "-o"])
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(render.status.success(), "render-ignition --track: {}", String::from_utf8_lossy(&render.stderr));
    let config: Value = serde_json::from_slice(&std::fs::read(&rendered).unwrap()).unwrap();
    let record = config_file(&config, "/var/lib/core-ops/state.json");

    // The first boot's writes, into the container's fresh root.
    let apply = common::bin()
        .args(["apply", "--config", rendered.to_str().unwrap(), "--root", bed.root.to_str().unwrap()])
        .args(["--offline", "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&apply.stdout)
        .unwrap_or_else(|e| panic!("apply printed no report ({e}): {}", String::from_utf8_lossy(&apply.stderr)));
    assert_eq!((apply.status.code(), report["result"].as_str()), (Some(0), Some("converged")), "{report:#}");
    let at = |path: &str| bed.root.join(path.trim_start_matches('/'));
    let written_record = std::fs::read(at("/var/lib/core-ops/state.json")).unwrap();
    assert!(
        written_record == record,
        "the ownership record the config embeds is not what the first boot left in /var/lib/core-ops/state.json, \
         so the agent would not own what the first boot wrote (and would take the bootstrap for its own stale \
         objects):\nembedded:\n{}\nwritten:\n{}",
        String::from_utf8_lossy(&record),
        String::from_utf8_lossy(&written_record)
    );
    assert!(std::fs::read(at("/usr/local/bin/core-ops")).unwrap() == std::fs::read(&agent).unwrap(), "the agent");
    // Enabled by a link, as `core-ops apply` enables a unit (Ignition writes a preset instead, which
    // systemd applies at a machine's first boot).
    let link = std::fs::read_link(at("/etc/systemd/system/timers.target.wants/core-ops.timer"))
        .unwrap_or_else(|e| panic!("core-ops.timer is not enabled by a link in timers.target.wants: {e}"));
    assert_eq!(link, Path::new("/etc/systemd/system/core-ops.timer"));
    let runs_before_boot = audit_log(&bed.root).len();

    bed.boot(&[Bind { host: &upstream.bare, at: "/repo" }]);
    assert_eq!(bed.sh("systemctl is-enabled core-ops.timer"), "enabled");
    assert_eq!(bed.sh("systemctl is-enabled core-ops.service"), "static", "the timer starts it");
    let summary = converged_line(&first, "web and db, every two seconds");
    let runs = wait_for_run_printing(&bed, &summary);
    assert_eq!(runs.len(), 1, "the first cycle converged: {runs:#?}");
    assert_eq!(runs[0].lines, [summary], "the first cycle had nothing to write, start or restart");
    let audit = audit_log(&bed.root);
    let cycle = audit.get(runs_before_boot).unwrap_or_else(|| panic!("no audit line of the first cycle: {audit:#?}"));
    let counts: Vec<&Value> = ["created", "updated", "deleted", "blocked"].iter().map(|k| &cycle[k]).collect();
    assert_eq!((cycle["result"].as_str(), counts), (Some("converged"), vec![&Value::from(0); 4]), "{cycle:#}");

    // It owns what the first boot wrote, now from the commit: the record's objects and the links
    // that enable the record's units (both WantedBy=multi-user.target), and nothing of the
    // bootstrap.
    let state: Value = serde_json::from_slice(&std::fs::read(at("/var/lib/core-ops/state.json")).unwrap()).unwrap();
    assert_eq!(state["source"]["commit"], first.as_str());
    let embedded: Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(embedded["last_applied"]["units"], serde_json::json!(["enable web.service", "enable db.service"]));
    let mut expected = owned_paths(&embedded);
    expected.extend(["web", "db"].map(|s| format!("/etc/systemd/system/multi-user.target.wants/{s}.service")));
    expected.sort();
    assert_eq!(owned_paths(&state), expected);
    for unit in ["web.service", "db.service", "core-ops.timer"] {
        assert_eq!(bed.active(unit), "active", "{unit}");
    }
    assert!(std::fs::read(at("/usr/local/bin/core-ops")).unwrap() == std::fs::read(&agent).unwrap(), "the agent stays");
}
