//! Issue 10, "honest in every line": what `plan`, `apply`, `status`, `explain`, `history` and
//! `rollback --plan` print is what happened or what will happen, and nothing else.
//!
//! - Offline runs show their systemd actions as `skipped (offline)` with the reason, and
//!   `status` records them as not run; a converged plan shows no unit intents; a restart names
//!   every cause.
//! - `status` after a failed first run, and after first boot, says what is true.
//! - `explain` agrees with `plan` (the same planner and decision table), lists a unit's drop-ins
//!   and the files that restart it, lists each generation once and names the generation that
//!   removed an object.
//! - `history` lists the applied generations; `rollback --plan` changes nothing; a rollback to a
//!   kept revision does not push another one out of the history.
//! - Errors and terms a person can act on: mode type errors carry the fix, internal names never
//!   show, the README defines the terms the output uses, logs to a pipe carry no colour codes.
//!
//! Expected values come from the text and the decision table of docs/plan-and-apply.md ("What a change triggers"), or are worked
//! out by hand in each test.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    common::bin().args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn butane(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("variant: fcos\nversion: 1.6.0\n{body}")).unwrap();
    path.display().to_string()
}

/// An enabled service with an `[Install]` section: new and enabled, so the decision table
/// starts it (docs/plan-and-apply.md: a new enabled unit is started).
const ENABLED_UNIT: &str = "systemd:\n  units:\n    - name: a.service\n      enabled: true\n      contents: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\"\n";

const HOST: (&str, &str) = ("hosts/example/host.yaml", "host: example\nservices:\n  - caddy\n");
const CONTAINER: (&str, &str) = (
    "services/caddy/quadlet/caddy.container",
    "[Container]\nImage=docker.io/library/caddy:2\nNetwork=web.network\nVolume=/etc/caddy/Caddyfile:/etc/caddy/Caddyfile:ro\n\n[Install]\nWantedBy=multi-user.target\n",
);
const NETWORK: (&str, &str) = ("services/caddy/quadlet/web.network", "[Network]\n");
const CADDYFILE: (&str, &str) = ("services/caddy/config/Caddyfile", ":80 {\n\trespond \"v1\"\n}\n");
const EXTRA: (&str, &str) = ("services/caddy/config/extra.conf", "a=1\n");
const DROPIN: (&str, &str) =
    ("hosts/example/caddy/quadlet/caddy.container.d/10-mem.conf", "[Container]\nPodmanArgs=--memory=256m\n");

fn caddy_repo() -> tempfile::TempDir {
    common::repo(&[HOST, CONTAINER, NETWORK, CADDYFILE, EXTRA, DROPIN])
}

fn repo_args<'a>(repo: &'a Path, root: &'a Path) -> Vec<&'a str> {
    vec!["--source-repo", path_str(repo), "--host", "example", "--root", path_str(root)]
}

fn apply_repo(repo: &Path, root: &Path) {
    let out = run(&[&["apply"][..], &repo_args(repo, root)].concat());
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
}

fn apply_config(config: &str, root: &Path, extra: &[&str]) -> Output {
    run(&[&["apply", "--config", config, "--root", path_str(root)][..], extra].concat())
}

/// The reason every offline run under a temporary root gives.
fn offline_reason(root: &Path) -> String {
    format!("      offline: --root {} is not /, so systemd is not asked to do these", root.display())
}

// ---- 3. Nothing claimed that did not happen ----

#[test]
fn an_offline_apply_shows_its_systemd_actions_as_skipped_with_the_reason() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", ENABLED_UNIT);
    let out = apply_config(&cfg, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let reload = lines.iter().position(|l| *l == "  · skipped (offline)  daemon-reload").unwrap_or_else(|| {
        panic!("no skipped daemon-reload line:\n{text}");
    });
    assert_eq!(lines[reload + 1], "  · skipped (offline)  start    a.service — new unit", "{text}");
    assert_eq!(lines[reload + 2], offline_reason(root.path()), "{text}");
    assert!(!text.contains('↻'), "no action is shown as done or to be done:\n{text}");
    assert!(!text.contains("systemd reloads its units"), "{text}");

    let fresh = tempfile::tempdir().unwrap();
    let doc = json(&apply_config(&cfg, fresh.path(), &["--format", "json"]));
    assert_eq!(doc["plan"]["systemd"]["offline"], format!("--root {} is not /", fresh.path().display()), "{doc}");
    assert_eq!(doc["plan"]["systemd"]["actions"][0]["verb"], "start", "the action is still named: {doc}");
}

#[test]
fn status_after_an_offline_apply_says_which_systemd_actions_did_not_run() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", ENABLED_UNIT);
    assert_eq!(apply_config(&cfg, root.path(), &[]).status.code(), Some(0));
    let doc = json(&run(&["status", "--root", path_str(root.path()), "--format", "json"]));
    assert_eq!(doc["last_run"]["result"], "converged");
    assert_eq!(doc["last_run"]["systemd_skipped"], serde_json::json!(["daemon-reload", "start a.service"]), "{doc}");
    let (revision, at) = (doc["last_run"]["revision"].as_str().unwrap(), doc["last_run"]["at"].as_str().unwrap());
    let text = stdout(&run(&["status", "--root", path_str(root.path())]));
    let want = format!(
        "Last run:    converged on revision {revision} at {at} (files only; systemd skipped, offline)\n             not run: daemon-reload, start a.service\n"
    );
    assert!(text.contains(&want), "want:\n{want}in:\n{text}");

    // A second offline run with nothing to do did not run them either: they stay recorded.
    assert_eq!(apply_config(&cfg, root.path(), &[]).status.code(), Some(0));
    let again = json(&run(&["status", "--root", path_str(root.path()), "--format", "json"]));
    assert_eq!(again["last_run"]["systemd_skipped"], serde_json::json!(["daemon-reload", "start a.service"]));
}

#[test]
fn a_converged_plan_shows_no_unit_intents_unless_verbose() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", ENABLED_UNIT);
    let plan = |extra: &[&str]| {
        stdout(&run(&[&["plan", "--config", &cfg, "--root", path_str(root.path())][..], extra].concat()))
    };
    assert!(plan(&[]).contains("  * enable   a.service (unit)\n"), "the first plan enables it:\n{}", plan(&[]));
    assert_eq!(apply_config(&cfg, root.path(), &[]).status.code(), Some(0));
    let text = plan(&[]);
    assert!(text.ends_with("No changes. The host matches the desired state.\n"), "{text}");
    assert!(!text.contains("* enable"), "an unchanged intent is not shown:\n{text}");
    assert!(plan(&["-v"]).contains("  * enable   a.service (unit)\n"), "-v shows it:\n{}", plan(&["-v"]));
}

fn restart_causes(plan: &Value, unit: &str) -> Vec<(String, String)> {
    plan["systemd"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["unit"] == unit)
        .map(|a| (a["verb"].as_str().unwrap().to_string(), a["cause"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_restart_names_all_of_its_causes() {
    let repo = caddy_repo();
    let root = tempfile::tempdir().unwrap();
    apply_repo(repo.path(), root.path());
    fs::write(repo.path().join(CADDYFILE.0), ":80 {\n\trespond \"v2\"\n}\n").unwrap();
    fs::write(repo.path().join(EXTRA.0), "a=2\n").unwrap();
    let plan_json =
        || json(&run(&[&["plan"][..], &repo_args(repo.path(), root.path()), &["--format", "json"]].concat()));
    // Both files are the service's config, so each restarts caddy.service (docs/plan-and-apply.md, "Files a unit uses"); one
    // restart, in path order of the changed files: /etc/caddy/Caddyfile, /etc/caddy/extra.conf.
    let want = "services/caddy/config/Caddyfile changed; services/caddy/config/extra.conf changed";
    assert_eq!(restart_causes(&plan_json(), "caddy.service"), [("restart".to_string(), want.to_string())]);

    // The unit's own change and a config change: one restart, both causes.
    fs::write(repo.path().join(EXTRA.0), "a=1\n").unwrap();
    fs::write(repo.path().join(CONTAINER.0), CONTAINER.1.replace("caddy:2", "caddy:2.10")).unwrap();
    let want = "services/caddy/quadlet/caddy.container changed; services/caddy/config/Caddyfile changed";
    assert_eq!(restart_causes(&plan_json(), "caddy.service"), [("restart".to_string(), want.to_string())]);
}

#[test]
fn status_after_a_blocked_first_apply_shows_the_failed_run() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/app")).unwrap();
    fs::write(root.path().join("etc/app/a.conf"), "someone else's\n").unwrap();
    let cfg = butane(
        work.path(),
        "c.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n",
    );
    assert_eq!(apply_config(&cfg, root.path(), &[]).status.code(), Some(1), "blocked: an unowned file differs");
    assert!(root.path().join("var/lib/core-ops/state.json").exists(), "the failed run is recorded");
    let doc = json(&run(&["status", "--root", path_str(root.path()), "--format", "json"]));
    let (revision, at) = (doc["last_run"]["revision"].as_str().unwrap(), doc["last_run"]["at"].as_str().unwrap());
    let text = stdout(&run(&["status", "--root", path_str(root.path())]));
    assert!(!text.contains("Nothing applied"), "{text}");
    assert!(!text.contains("no /var/lib/core-ops/state.json"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("Revision:    none applied yet: no run has converged on {}", root.path().display()));
    assert_eq!(lines[1], format!("Last run:    failed on revision {revision} at {at}"));
    assert!(lines[2].starts_with("             /etc/app/a.conf: "), "the reason follows: {text}");
}

#[test]
fn status_with_no_state_at_all_says_so() {
    let root = tempfile::tempdir().unwrap();
    let text = stdout(&run(&["status", "--root", path_str(root.path())]));
    assert_eq!(
        text,
        format!(
            "Nothing applied to {} yet (no /var/lib/core-ops/state.json).\n\
             Following:   no repository (`core-ops init REPO REF` makes this host follow one)\n",
            root.path().display()
        )
    );
}

/// The ownership record `render-ignition` embeds, decoded with the tests' own decoder.
fn first_boot_state(repo: &Path) -> Value {
    let out = run(&["render-ignition", "--source-repo", path_str(repo), "--host", "example"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config = json(&out);
    let file = config["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/var/lib/core-ops/state.json")
        .expect("the embedded state")
        .clone();
    let (bytes, _) =
        common::decode_data_url(file["contents"]["source"].as_str().unwrap(), file["contents"]["compression"].as_str())
            .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn write_state(root: &Path, state: &Value) {
    let dir = root.join("var/lib/core-ops");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("state.json");
    fs::write(&file, serde_json::to_vec_pretty(state).unwrap()).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn status_after_first_boot_names_the_rendered_config_not_the_rendering_machines_path() {
    let repo = caddy_repo();
    let root = tempfile::tempdir().unwrap();
    let mut state = first_boot_state(repo.path());
    write_state(root.path(), &state);
    let revision = state["last_applied"]["revision"].as_str().unwrap().to_string();
    let text = stdout(&run(&["status", "--root", path_str(root.path())]));
    assert!(!text.contains(path_str(repo.path())), "the rendering machine's path is no source here:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Source:      the config core-ops render-ignition rendered for host example (first boot)");
    assert_eq!(lines[1], format!("Revision:    {revision} (generation 0, written by Ignition at first boot)"));

    // With the repository's address and the commit recorded, both are named.
    state["source"]["location"] = "https://git.example.org/homelab.git".into();
    state["source"]["commit"] = "0123abcd".into();
    write_state(root.path(), &state);
    let text = stdout(&run(&["status", "--root", path_str(root.path())]));
    assert_eq!(
        text.lines().next().unwrap(),
        "Source:      the config core-ops render-ignition rendered for host example (first boot), from https://git.example.org/homelab.git at commit 0123abcd"
    );
}

// ---- 4. explain and plan never disagree ----

fn explain_json(object: &str, repo: &Path, root: &Path) -> Value {
    let out = run(&[&["explain", object][..], &repo_args(repo, root), &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

#[test]
fn explain_gives_the_same_next_action_as_plan_for_a_changed_config_file() {
    let repo = caddy_repo();
    let root = tempfile::tempdir().unwrap();
    apply_repo(repo.path(), root.path());
    fs::write(repo.path().join(CADDYFILE.0), ":80 {\n\trespond \"v2\"\n}\n").unwrap();
    let plan = json(&run(&[&["plan"][..], &repo_args(repo.path(), root.path()), &["--format", "json"]].concat()));
    let explained = explain_json("caddy.service", repo.path(), root.path());
    // docs/plan-and-apply.md: a changed file under the service's config root restarts that unit, and the
    // restart names its cause.
    let want = [("restart".to_string(), "services/caddy/config/Caddyfile changed".to_string())];
    assert_eq!(restart_causes(&plan, "caddy.service"), want, "plan: {}", plan["systemd"]);
    assert_eq!(restart_causes(&explained, "caddy.service"), want, "explain: {explained}");
    assert_eq!(explained["systemd"]["offline"], plan["systemd"]["offline"]);

    let out = run(&[&["explain", "caddy.service"][..], &repo_args(repo.path(), root.path())].concat());
    let text = stdout(&out);
    assert!(
        text.contains(
            "  next apply   = no-op\n               · skipped (offline)  restart  caddy.service — services/caddy/config/Caddyfile changed\n"
        ),
        "{text}"
    );
}

#[test]
fn explain_lists_a_units_drop_ins_and_the_files_that_restart_it() {
    let repo = caddy_repo();
    let root = tempfile::tempdir().unwrap();
    apply_repo(repo.path(), root.path());
    let doc = explain_json("caddy.service", repo.path(), root.path());
    let paths = |key: &str| -> Vec<String> {
        doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key}: {doc}"))
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths("dropins"), ["/etc/containers/systemd/caddy.container.d/10-mem.conf"]);
    assert_eq!(doc["dropins"][0]["origin"]["file"], DROPIN.0);
    // The service's config root (/etc/caddy) and the .network it names (docs/plan-and-apply.md, "Files a unit uses").
    assert_eq!(
        paths("restarted_by"),
        ["/etc/caddy/Caddyfile", "/etc/caddy/extra.conf", "/etc/containers/systemd/web.network"]
    );
    let text = stdout(&run(&[&["explain", "caddy.service"][..], &repo_args(repo.path(), root.path())].concat()));
    let want = "  drop-ins     /etc/containers/systemd/caddy.container.d/10-mem.conf (hosts/example/caddy/quadlet/caddy.container.d/10-mem.conf)\n  restarted by /etc/caddy/Caddyfile (services/caddy/config/Caddyfile)\n               /etc/caddy/extra.conf (services/caddy/config/extra.conf)\n               /etc/containers/systemd/web.network (services/caddy/quadlet/web.network)\n";
    assert!(text.contains(want), "want:\n{want}in:\n{text}");
}

const FILE_A1: &str = "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n    - path: /etc/app/b.conf\n      contents: {inline: \"b=1\\n\"}\n";
const FILE_A2: &str = "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=2\\n\"}\n";

fn generations(history: &Value) -> Vec<u64> {
    history.as_array().unwrap().iter().map(|h| h["generation"].as_u64().unwrap()).collect()
}

#[test]
fn explain_lists_every_generation_once_and_names_the_generation_that_removed_an_object() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (one, two) = (butane(work.path(), "one.bu", FILE_A1), butane(work.path(), "two.bu", FILE_A2));
    let r = path_str(root.path());
    assert_eq!(apply_config(&one, root.path(), &["--offline"]).status.code(), Some(0));
    assert_eq!(apply_config(&two, root.path(), &["--offline"]).status.code(), Some(0));
    // Off a terminal, rollback never asks.
    let rollback = run(&["rollback", "--root", r, "--offline"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    // Generations: 1 = one.bu, 2 = two.bu, 3 = one.bu again.
    let explain = |object: &str| {
        let out = run(&["explain", object, "--config", &one, "--root", r, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out)
    };
    assert_eq!(generations(&explain("/etc/app/a.conf")["history"]), [3, 2, 1]);
    assert_eq!(generations(&explain("/etc/app/b.conf")["history"]), [3, 1], "b.conf is not in generation 2");

    // Back to two.bu: b.conf is removed in generation 4.
    assert_eq!(apply_config(&two, root.path(), &["--offline"]).status.code(), Some(0));
    let out = run(&["explain", "/etc/app/b.conf", "--config", &two, "--root", r, "--format", "json"]);
    let doc = json(&out);
    assert_eq!(doc["removed_in"]["generation"], 4, "{doc}");
    let text = stdout(&run(&["explain", "/etc/app/b.conf", "--config", &two, "--root", r]));
    let revision = doc["removed_in"]["revision"].as_str().unwrap();
    let at = doc["removed_in"]["applied_at"].as_str().unwrap();
    assert!(text.contains(&format!("  removed in generation 4 (revision {revision}, {at})\n")), "{text}");
}

// ---- 9. History you can see ----

#[test]
fn history_lists_the_applied_generations() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (one, two) = (butane(work.path(), "one.bu", FILE_A1), butane(work.path(), "two.bu", FILE_A2));
    let r = path_str(root.path());
    assert_eq!(apply_config(&one, root.path(), &[]).status.code(), Some(0));
    assert_eq!(apply_config(&two, root.path(), &[]).status.code(), Some(0));
    let out = run(&["history", "--root", r, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(generations(&doc["entries"]), [2, 1], "newest first: {doc}");
    // Generation 1 wrote a.conf and b.conf; generation 2 changed a.conf and removed b.conf.
    let counts =
        |e: &Value| (e["changes"]["created"].clone(), e["changes"]["updated"].clone(), e["changes"]["deleted"].clone());
    assert_eq!(counts(&entries[1]), (2.into(), 0.into(), 0.into()));
    assert_eq!(counts(&entries[0]), (0.into(), 1.into(), 1.into()));
    for (e, cfg) in [(&entries[0], &two), (&entries[1], &one)] {
        assert_eq!(e["result"], "converged");
        assert_eq!(e["source"]["kind"], "config");
        assert_eq!(e["source"]["location"], cfg.as_str());
    }
    assert_eq!((entries[0]["current"].as_bool(), entries[1]["current"].as_bool()), (Some(true), Some(false)));
    let state: Value =
        serde_json::from_slice(&fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap()).unwrap();
    assert_eq!(entries[0]["revision"], state["last_applied"]["revision"]);
    assert_eq!(entries[0]["applied_at"], state["last_applied"]["applied_at"]);
    let problems = schema_violations("history.schema.json", &doc);
    assert!(problems.is_empty(), "{problems:?}");

    let text = stdout(&run(&["history", "--root", r]));
    let line = |e: &Value, current: &str, counts: &str, cfg: &str| {
        format!(
            "generation {}{current}  {}  converged  {counts}\n    revision {}  from config {cfg}\n",
            e["generation"],
            e["applied_at"].as_str().unwrap(),
            e["revision"].as_str().unwrap()
        )
    };
    let want = line(&entries[0], " (current)", "0 created, 1 updated, 1 deleted", &two)
        + &line(&entries[1], "", "2 created, 0 updated, 0 deleted", &one);
    assert_eq!(text, want);

    let empty = tempfile::tempdir().unwrap();
    let text = stdout(&run(&["history", "--root", path_str(empty.path())]));
    assert_eq!(text, format!("Nothing applied to {} yet.\n", empty.path().display()));
}

fn schema_violations(name: &str, doc: &Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

#[test]
fn rollback_plan_shows_the_plan_back_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (one, two) = (butane(work.path(), "one.bu", FILE_A1), butane(work.path(), "two.bu", FILE_A2));
    let r = path_str(root.path());
    assert_eq!(apply_config(&one, root.path(), &[]).status.code(), Some(0));
    assert_eq!(apply_config(&two, root.path(), &[]).status.code(), Some(0));
    let before = common::manifest(root.path());
    let state_before = fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap();

    let out = run(&["rollback", "--plan", "--root", r, "--offline", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let back = json(&out);
    // The oracle: `plan` of the config generation 1 applied.
    let plan = json(&run(&["plan", "--config", &one, "--root", r, "--offline", "--format", "json"]));
    let actions = |doc: &Value| -> Vec<(String, String)> {
        doc["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["path"].as_str().unwrap().into(), o["action"].as_str().unwrap().into()))
            .collect()
    };
    assert_eq!(actions(&back), actions(&plan));
    assert_eq!(
        actions(&back),
        [("/etc/app/a.conf".into(), "update".into()), ("/etc/app/b.conf".into(), "create".into())]
    );
    assert_eq!(back["summary"], plan["summary"]);

    let text = stdout(&run(&["rollback", "--plan", "--root", r, "--offline"]));
    assert!(text.contains("  ~ update   /etc/app/a.conf (file)"), "{text}");
    assert!(text.contains("  + create   /etc/app/b.conf (file)"), "{text}");
    assert_eq!(common::manifest(root.path()), before, "rollback --plan changed the root");
    assert_eq!(fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap(), state_before);
}

#[test]
fn a_rollback_to_a_kept_revision_does_not_push_the_oldest_out_of_the_history() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = path_str(root.path());
    // Ten distinct revisions fill the history (it keeps ten, README "History and audit").
    let configs: Vec<String> = (1..=10)
        .map(|i| {
            let body =
                format!("storage:\n  files:\n    - path: /etc/app/n.conf\n      contents: {{inline: \"n={i}\\n\"}}\n");
            butane(work.path(), &format!("c{i}.bu"), &body)
        })
        .collect();
    let mut revisions = Vec::new();
    for cfg in &configs {
        let out = apply_config(cfg, root.path(), &["--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        revisions.push(json(&out)["revision"].as_str().unwrap().to_string());
    }
    // Back to revision 9, which the history holds: no new slot, so revision 1 stays available.
    let rollback = |rev: &str| run(&["rollback", "--to", rev, "--root", r]);
    let out = rollback(&revisions[8]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let out = rollback(&revisions[0]);
    assert_eq!(out.status.code(), Some(0), "revision 1 is still kept: {}{}", stdout(&out), stderr(&out));
    assert_eq!(fs::read_to_string(root.path().join("etc/app/n.conf")).unwrap(), "n=1\n");
}

// ---- 10. Errors with a way forward ----

#[test]
fn status_and_explain_show_why_an_owned_path_is_unsafe_in_words() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", FILE_A1);
    let r = path_str(root.path());
    assert_eq!(apply_config(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::rename(root.path().join("etc/app"), root.path().join("etc/app.real")).unwrap();
    symlink("app.real", root.path().join("etc/app")).unwrap();
    let status = stdout(&run(&["status", "--root", r]));
    let explain = stdout(&run(&["explain", "/etc/app/a.conf", "--config", &cfg, "--root", r]));
    for text in [&status, &explain] {
        assert!(!text.contains("Unsafe("), "{text}");
    }
    let line = status.lines().find(|l| l.contains("/etc/app/a.conf")).unwrap_or_else(|| panic!("{status}"));
    let want = format!("  unsafe   /etc/app/a.conf ({cfg}) — /etc/app is a symlink");
    assert!(line.starts_with(&want), "{status}");
    let doc = json(&run(&["status", "--root", r, "--format", "json"]));
    let a = doc["owned"].as_array().unwrap().iter().find(|o| o["path"] == "/etc/app/a.conf").unwrap().clone();
    assert_eq!(a["state"], "unsafe");
    assert!(a["reason"].as_str().unwrap().starts_with("/etc/app is a symlink"), "{a}");
}

const QUOTED_MODE: &str = "storage:\n  files:\n    - path: /etc/x\n      mode: \"0644\"\n";
const MODE_HINT: &str = "write the mode unquoted in octal, e.g. `mode: 0644`";

#[test]
fn a_quoted_mode_gets_the_fix_except_in_butanes_raw_errors() {
    let work = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "m.bu", QUOTED_MODE);
    let out = run(&["render-ignition", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(text.contains(&format!("  |             ^^^^^^\n  = help: {MODE_HINT}\n")), "{text}");
    let raw = run(&["render-ignition", "--raw-errors", &cfg]);
    assert_eq!(raw.status.code(), Some(1));
    assert_eq!(
        stderr(&raw),
        "Error translating config: yaml: unmarshal errors:\n  line 6: cannot unmarshal !!str `0644` into int\n",
        "Butane's exact text"
    );
    assert!(!stderr(&raw).contains("help"), "{}", stderr(&raw));
    let root = tempfile::tempdir().unwrap();
    let plan = run(&["plan", "--config", &cfg, "--root", path_str(root.path())]);
    assert_eq!(plan.status.code(), Some(1));
    assert!(stderr(&plan).contains(MODE_HINT), "{}", stderr(&plan));
}

#[test]
fn the_readme_defines_the_terms_the_output_uses() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## Terms\n").nth(1).expect("a `## Terms` section in README.md");
    let section = section.split("\n## ").next().unwrap();
    let terms = [
        "revision",
        "generation",
        "expected-change",
        "external-drift",
        "stale",
        "unowned-conflict",
        "blocked",
        "repeats",
        "held",
        "skipped (offline)",
        "unsafe",
    ];
    for term in terms {
        assert!(section.contains(&format!("- **{term}**")), "README's Terms do not define {term}:\n{section}");
    }
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", FILE_A1);
    let out = common::bin()
        .args(["apply", "--config", &cfg, "--root", path_str(root.path())])
        .env("CORE_OPS_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = stderr(&out);
    assert!(log.contains("core-ops apply finished"), "the log line is there: {log}");
    assert!(!log.contains('\x1b'), "{}", log.escape_debug());
}
