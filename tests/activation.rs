//! Apply with systemd: the executor against a real root directory and the recording fake
//! systemd — which jobs run, in which order relative to the writes, how failures are
//! recorded, retried and reported as not converging, and how a Quadlet the generator rejects
//! stops the run before anything is written.

mod common;

use std::path::Path;
use std::time::Duration;

use core_ops::host::execute::{self, ApplyInput, ApplyOptions, ApplyReport, Outcome};
use core_ops::host::root::Root;
use core_ops::host::store;
use core_ops::host::systemd::{FakeSystemd, Systemd, UnitState};
use core_ops::model::ignition::children::Offline;

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

fn input(butane: &str) -> ApplyInput {
    common::butane_input(butane)
}

fn options() -> ApplyOptions {
    ApplyOptions {
        adopt: false,
        lock_timeout: Duration::from_secs(5),
        unit_timeout: Duration::from_millis(500),
        strict: false,
    }
}

fn run(root: &Path, butane: &str, systemd: &FakeSystemd) -> ApplyReport {
    let root = Root::open(root).unwrap();
    execute::apply(&root, &input(butane), &Offline, options(), Some(systemd as &dyn Systemd)).unwrap()
}

/// A Butane config with enabled services, each `(name, ExecStart, extra unit lines)`.
fn services(list: &[(&str, &str, &str)], files: &str) -> String {
    let mut s = format!("{HEAD}systemd:\n  units:\n");
    for (name, exec, extra) in list {
        s.push_str(&format!(
            "    - name: {name}\n      enabled: true\n      contents: \"[Service]\\nExecStart={exec}\\n{extra}\\n[Install]\\nWantedBy=multi-user.target\\n\"\n"
        ));
    }
    s + files
}

fn env_file(value: &str) -> String {
    format!("storage:\n  files:\n    - path: /etc/web.env\n      contents:\n        inline: \"MODE={value}\\n\"\n")
}

fn jobs(fake: &FakeSystemd) -> Vec<String> {
    fake.calls().into_iter().filter(|c| c != "reload").collect()
}

#[test]
fn new_units_start_and_a_reapply_runs_nothing() {
    let root = tempfile::tempdir().unwrap();
    let cfg = services(&[("web.service", "/bin/web", ""), ("db.service", "/bin/db", "")], "");
    let fake = FakeSystemd::default();
    let first = run(root.path(), &cfg, &fake);
    assert_eq!(first.outcome, Outcome::Converged, "{:?}", first.errors);
    assert_eq!(fake.calls(), vec!["reload", "start db.service", "start web.service"]);
    assert!(root.path().join("etc/systemd/system/multi-user.target.wants/web.service").is_symlink());

    let again = FakeSystemd::default();
    let second = run(root.path(), &cfg, &again);
    assert_eq!(second.outcome, Outcome::Converged);
    assert!(again.calls().is_empty(), "a converged host needs no systemd calls: {:?}", again.calls());
}

#[test]
fn a_changed_environment_file_restarts_exactly_its_consumer() {
    let root = tempfile::tempdir().unwrap();
    let units = [("web.service", "/bin/web", "EnvironmentFile=/etc/web.env\\n"), ("db.service", "/bin/db", "")];
    run(root.path(), &services(&units, &env_file("a")), &FakeSystemd::default());
    let fake = FakeSystemd::default();
    let report = run(root.path(), &services(&units, &env_file("b")), &fake);
    assert_eq!(report.outcome, Outcome::Converged);
    assert_eq!(fake.calls(), vec!["restart web.service"], "no unit file changed: no reload either");
    assert_eq!(report.systemd.done[0].0.cause, "test.bu changed");
}

#[test]
fn comment_only_changes_restart_nothing_but_content_changes_do() {
    let root = tempfile::tempdir().unwrap();
    run(root.path(), &services(&[("web.service", "/bin/web", "")], ""), &FakeSystemd::default());
    let fake = FakeSystemd::default();
    run(root.path(), &services(&[("web.service", "/bin/web", "# tuned\\n")], ""), &fake);
    assert_eq!(fake.calls(), vec!["reload"], "the file changed, so systemd reloads, but nothing restarts");
    let fake = FakeSystemd::default();
    run(root.path(), &services(&[("web.service", "/bin/web --fast", "")], ""), &fake);
    assert_eq!(fake.calls(), vec!["reload", "restart web.service"]);
}

#[test]
fn reload_if_changed_reloads_and_inactive_units_are_held() {
    let root = tempfile::tempdir().unwrap();
    let v1 = [("web.service", "/bin/web", "X-ReloadIfChanged=true\\n"), ("idle.service", "/bin/idle", "")];
    run(root.path(), &services(&v1, ""), &FakeSystemd::default());
    let fake = FakeSystemd::default();
    let idle = UnitState { load_state: "loaded".into(), active_state: "inactive".into(), ..UnitState::default() };
    fake.states.lock().unwrap().insert("idle.service".into(), idle);
    let v2 = [("web.service", "/bin/web -v", "X-ReloadIfChanged=true\\n"), ("idle.service", "/bin/idle -v", "")];
    let report = run(root.path(), &services(&v2, ""), &fake);
    assert_eq!(jobs(&fake), vec!["reload web.service"]);
    assert_eq!(report.activation.held[0].unit, "idle.service");
}

/// The unit files and links the fake saw when it made `call`.
fn seen_at(fake: &FakeSystemd, call: &str) -> std::collections::BTreeSet<String> {
    let calls = fake.calls_seeing();
    let found = calls.iter().find(|(c, _)| c == call);
    found.unwrap_or_else(|| panic!("no call {call:?} in {calls:?}")).1.clone()
}

#[test]
fn new_units_start_after_their_files_are_written() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeSystemd::watching(root.path());
    run(root.path(), &services(&[("web.service", "/bin/web", "")], ""), &fake);
    assert_eq!(fake.calls(), vec!["reload", "start web.service"]);
    let unit = "/etc/systemd/system/web.service";
    let link = "/etc/systemd/system/multi-user.target.wants/web.service";
    for call in ["reload", "start web.service"] {
        let seen = seen_at(&fake, call);
        assert!(
            seen.contains(unit) && seen.contains(link),
            "{call} before the unit and its link were written: {seen:?}"
        );
    }
}

#[test]
fn a_removed_unit_is_stopped_before_its_files_go() {
    let root = tempfile::tempdir().unwrap();
    let both = [("web.service", "/bin/web", ""), ("old.service", "/bin/old", "")];
    run(root.path(), &services(&both, ""), &FakeSystemd::default());
    let fake = FakeSystemd::watching(root.path());
    let report = run(root.path(), &services(&[("web.service", "/bin/web", "")], ""), &fake);
    assert_eq!(report.outcome, Outcome::Converged, "{:?}", report.errors);
    assert_eq!(fake.calls(), vec!["stop old.service", "reload"]);
    let unit = "/etc/systemd/system/old.service";
    let link = "/etc/systemd/system/multi-user.target.wants/old.service";
    let at_stop = seen_at(&fake, "stop old.service");
    assert!(at_stop.contains(unit) && at_stop.contains(link), "stopped after its files went: {at_stop:?}");
    let at_reload = seen_at(&fake, "reload");
    assert!(!at_reload.contains(unit) && !at_reload.contains(link), "reloaded before its files went: {at_reload:?}");
    assert!(at_reload.contains("/etc/systemd/system/web.service"), "{at_reload:?}");
    assert!(!root.path().join(&unit[1..]).exists());
    assert!(!root.path().join(&link[1..]).exists());
    assert!(root.path().join("etc/systemd/system/web.service").exists());
}

#[test]
fn a_failing_unit_fails_the_run_is_retried_and_then_reported_as_not_converging() {
    let root = tempfile::tempdir().unwrap();
    let cfg = services(&[("bad.service", "/bin/false", "")], "");
    let mut fake = FakeSystemd::default();
    fake.results.insert("start bad.service".into(), "failed".into());
    let first = run(root.path(), &cfg, &fake);
    assert_eq!(first.outcome, Outcome::Failed);
    assert!(first.errors[0].starts_with("bad.service: start failed (job result: failed)"), "{:?}", first.errors);
    assert_eq!(first.systemd.failures[0].journal, vec!["(fake journal of bad.service)"]);
    assert!(root.path().join("etc/systemd/system/bad.service").exists(), "files stay written");
    let state = store::load_state(&Root::open(root.path()).unwrap()).unwrap();
    let last = state.last_run.unwrap();
    assert_eq!((last.result.as_str(), last.failed_units.clone()), ("failed", vec!["bad.service".to_string()]));
    assert_eq!(first.repeats, 0);

    let mut retry = FakeSystemd::default();
    retry.results.insert("restart bad.service".into(), "failed".into());
    let second = run(root.path(), &cfg, &retry);
    assert_eq!(retry.calls(), vec!["restart bad.service"], "the failed unit is retried though no file changed");
    assert_eq!(second.outcome, Outcome::Failed);
    assert_eq!(second.repeats, 1, "the same unit failing twice in a row is not converging");
    let third = run(root.path(), &cfg, &retry);
    assert_eq!(third.repeats, 2);

    let fixed = FakeSystemd::default();
    let fourth = run(root.path(), &cfg, &fixed);
    assert_eq!(fourth.outcome, Outcome::Converged);
    assert_eq!(fixed.calls(), vec!["restart bad.service"]);
    let state = store::load_state(&Root::open(root.path()).unwrap()).unwrap();
    assert!(state.last_run.unwrap().failed_units.is_empty());
}

/// A stand-in for Podman's generator that rejects Quadlets with `Bogus=`, as the real one
/// rejects unknown keys (the real generator runs in the systemd testbed).
fn picky_generator(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("quadlet");
    std::fs::write(
        &bin,
        "#!/bin/sh\nbad=$(grep -rl 'Bogus=' \"$QUADLET_UNIT_DIRS\") || exit 0\n\
         echo \"converting \\\"$bad\\\": unsupported key 'Bogus' in group 'Container'\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_quadlet_the_generator_rejects_stops_plan_and_apply_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let config = dir.path().join("c.bu");
    // `Bogus=` in a section that CoreOps's own table of Quadlet keys leaves alone: only the
    // generator objects.
    std::fs::write(
        &config,
        format!(
            "{HEAD}storage:\n  files:\n    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: \"[Container]\\nImage=localhost/web\\n[X-Test]\\nBogus=1\\n\"\n"
        ),
    )
    .unwrap();
    let generator = picky_generator(dir.path());
    for command in ["plan", "apply"] {
        let out = common::bin()
            .args([command, "--offline", "--config"])
            .arg(&config)
            .arg("--root")
            .arg(&root)
            .env("QUADLET_BIN", &generator)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}");
        assert!(
            stdout.contains("quadlet: converting \"/etc/containers/systemd/web.container\": unsupported key 'Bogus'"),
            "{command}: {stdout}"
        );
    }
    assert!(!root.join("etc/containers/systemd/web.container").exists(), "nothing written");
}
