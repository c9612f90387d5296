//! Scenarios against a real systemd 257 and Podman 5: each test boots a throwaway
//! `systemd-nspawn` container (`.ci/testbed.sh`), writes a Butane config into it and runs
//! `core-ops apply` inside, where the root is `/` and the bus is the container's own, exactly as
//! on a host. Restarts are observed through each unit's `InvocationID`, which changes exactly
//! when systemd starts the unit anew. A removed unit's `ExecStop=` records whether its unit file
//! was still there, so the order "stop, then delete" is checked where it happens.
//!
//! The containers, the polling with deadlines and the skips without root are those of
//! `tests/common/testbed.rs`.

mod common;
#[path = "common/testbed.rs"]
mod testbed;

use std::path::Path;

use serde_json::Value;
use testbed::{DEADLINE, Ran, Testbed, machine_name, wait_until};

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

/// Applying Butane configs inside a container.
impl Testbed {
    /// Writes the Butane config the next apply reads.
    fn config(&self, body: &str) {
        std::fs::create_dir_all(self.root.join("srv")).unwrap();
        std::fs::write(self.root.join("srv/host.bu"), format!("{HEAD}{body}")).unwrap();
    }

    /// `core-ops apply` of `/srv/host.bu` inside the container: exit code and JSON report.
    fn apply(&self) -> (i32, Value) {
        self.apply_from(&["--config", "/srv/host.bu"])
    }

    /// `core-ops apply` of the given input inside the container: exit code and JSON report.
    fn apply_from(&self, input: &[&str]) -> (i32, Value) {
        let args = [&["core-ops", "apply"], input, &["--format", "json", "--unit-timeout", "30"]].concat();
        let ran = Ran::of(&self.run(&args));
        let doc = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
            panic!("`{}` printed no JSON report ({e}):\nstdout: {}\nstderr: {}", args.join(" "), ran.stdout, ran.stderr)
        });
        (ran.code.unwrap_or(-1), doc)
    }

    fn apply_converged(&self) -> Value {
        self.apply_converged_from(&["--config", "/srv/host.bu"])
    }

    fn apply_converged_from(&self, input: &[&str]) -> Value {
        let (code, doc) = self.apply_from(input);
        assert_eq!((code, doc["result"].as_str()), (0, Some("converged")), "{doc:#}");
        doc
    }
}

/// Jobs of an apply report as `verb unit`.
fn jobs(doc: &Value) -> Vec<String> {
    doc["systemd"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| format!("{} {}", j["verb"].as_str().unwrap(), j["unit"].as_str().unwrap()))
        .collect()
}

fn service(name: &str, exec: &str, extra: &str) -> String {
    format!(
        "    - name: {name}\n      enabled: true\n      contents: |\n        [Service]\n        ExecStart={exec}\n{extra}        [Install]\n        WantedBy=multi-user.target\n"
    )
}

fn units(list: &[String]) -> String {
    format!("systemd:\n  units:\n{}", list.concat())
}

fn env_file(mode: &str) -> String {
    format!("storage:\n  files:\n    - path: /etc/web.env\n      contents:\n        inline: \"MODE={mode}\\n\"\n")
}

const SLEEPER: &str = "/bin/sleep infinity";

#[test]
fn units_start_restart_exactly_what_changed_and_stay_quiet_otherwise() {
    let Some(bed) = Testbed::up("units_start_restart_exactly_what_changed_and_stay_quiet_otherwise") else { return };
    let web = |extra: &str| service("web.service", SLEEPER, &format!("        EnvironmentFile=/etc/web.env\n{extra}"));
    let db = service("db.service", SLEEPER, "");
    bed.config(&format!("{}{}", units(&[web(""), db.clone()]), env_file("a")));
    let first = bed.apply_converged();
    assert_eq!(jobs(&first), vec!["start db.service", "start web.service"]);
    assert_eq!((bed.active("web.service"), bed.active("db.service")), ("active".into(), "active".into()));
    assert_eq!(bed.sh("systemctl is-enabled web.service"), "enabled");
    let (web0, db0) = (bed.invocation("web.service"), bed.invocation("db.service"));

    bed.config(&format!("{}{}", units(&[web(""), db.clone()]), env_file("b")));
    let planned = bed.exec(&["core-ops", "plan", "--config", "/srv/host.bu", "--format", "json"]);
    let planned: Value = serde_json::from_slice(&planned.stdout).unwrap();
    let actions = &planned["systemd"]["actions"];
    assert_eq!((actions[0]["verb"].as_str(), actions[0]["unit"].as_str()), (Some("restart"), Some("web.service")));
    assert_eq!(actions.as_array().unwrap().len(), 1, "plan tells what apply will do: {actions}");
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["restart web.service"]);
    assert_eq!(doc["systemd"]["jobs"][0]["cause"], "/srv/host.bu changed");
    let web1 = bed.invocation("web.service");
    assert_ne!(web1, web0, "web.service restarted");
    assert_eq!(bed.invocation("db.service"), db0, "db.service untouched");

    bed.config(&format!("{}{}", units(&[web("        # a comment only\n"), db.clone()]), env_file("b")));
    let doc = bed.apply_converged();
    assert!(jobs(&doc).is_empty(), "{:?}", jobs(&doc));
    assert_eq!(bed.invocation("web.service"), web1, "a comment restarts nothing");

    bed.config(&format!("{}{}", units(&[web("        Nice=5\n"), db]), env_file("b")));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["restart web.service"]);
    assert_eq!(bed.property("web.service", "Nice"), "5", "the new unit content is loaded");
    let web2 = bed.invocation("web.service");

    let doc = bed.apply_converged();
    assert!(jobs(&doc).is_empty() && !doc["systemd"]["reloaded"].as_bool().unwrap());
    assert_eq!(bed.invocation("web.service"), web2, "a re-apply restarts nothing");
}

#[test]
fn reload_if_changed_reloads_in_place() {
    let Some(bed) = Testbed::up("reload_if_changed_reloads_in_place") else { return };
    let daemon = "/bin/sh -c 'trap \"echo reloaded >> /run/reloads\" HUP; while :; do sleep 0.2; done'";
    let web = |nice: &str| {
        service(
            "web.service",
            daemon,
            &format!(
                "        ExecReload=/bin/sh -c 'kill -HUP ${{MAINPID}}'\n        X-ReloadIfChanged=true\n        Nice={nice}\n"
            ),
        )
    };
    bed.config(&units(&[web("1")]));
    bed.apply_converged();
    let before = bed.invocation("web.service");
    bed.config(&units(&[web("2")]));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["reload web.service"]);
    assert_eq!(bed.invocation("web.service"), before, "reloaded, not restarted");
    // The trap runs once the shell's current `sleep 0.2` ends, after the reload job is done.
    let reloads = wait_until(
        DEADLINE,
        "web.service's HUP trap to write /run/reloads",
        || bed.probe("cat /run/reloads"),
        |r| r.code == Some(0) && !r.stdout.is_empty(),
    );
    assert_eq!(reloads.stdout, "reloaded", "exactly one reload");
}

#[test]
fn a_removed_service_is_stopped_disabled_and_deleted_and_nothing_else() {
    let Some(bed) = Testbed::up("a_removed_service_is_stopped_disabled_and_deleted_and_nothing_else") else { return };
    let web = service("web.service", SLEEPER, "");
    // Its stop records whether its unit file was still there: a removed unit is stopped first.
    let old = service(
        "old.service",
        SLEEPER,
        concat!(
            "        ExecStop=/bin/sh -c 'if test -e /etc/systemd/system/old.service; ",
            "then echo present; else echo missing; fi > /var/tmp/old.stop'\n",
        ),
    );
    bed.config(&units(&[web.clone(), old]));
    bed.apply_converged();
    let web0 = bed.invocation("web.service");
    assert_eq!(bed.probe("cat /var/tmp/old.stop").code, Some(1), "old.service has not been stopped yet");
    bed.config(&units(&[web]));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["stop old.service"]);
    let stop = wait_until(
        DEADLINE,
        "old.service's ExecStop to write /var/tmp/old.stop",
        || bed.probe("cat /var/tmp/old.stop"),
        |r| r.code == Some(0) && !r.stdout.is_empty(),
    );
    assert_eq!(stop.stdout, "present", "old.service was stopped before its unit file was deleted");
    assert_eq!(bed.active("old.service"), "inactive");
    assert_eq!(bed.property("old.service", "LoadState"), "not-found");
    assert!(!bed.root.join("etc/systemd/system/old.service").exists());
    assert!(!bed.root.join("etc/systemd/system/multi-user.target.wants/old.service").exists());
    assert_eq!(bed.invocation("web.service"), web0);
    assert_eq!(bed.active("systemd-journald.service"), "active", "units CoreOps does not own are left alone");
}

#[test]
fn timers_and_sockets_are_started_and_restarted_by_the_rules() {
    let Some(bed) = Testbed::up("timers_and_sockets_are_started_and_restarted_by_the_rules") else { return };
    let timer = |every: &str| {
        format!(
            "    - name: tick.timer\n      enabled: true\n      contents: |\n        [Timer]\n        OnUnitActiveSec={every}\n        OnBootSec=1h\n        [Install]\n        WantedBy=timers.target\n    - name: tick.service\n      contents: |\n        [Service]\n        Type=oneshot\n        ExecStart=/bin/true\n"
        )
    };
    let socket = |port: &str| {
        format!(
            "    - name: echo.socket\n      enabled: true\n      contents: |\n        [Socket]\n        ListenStream=127.0.0.1:{port}\n        [Install]\n        WantedBy=sockets.target\n    - name: echo.service\n      contents: |\n        [Service]\n        ExecStart=/bin/sleep infinity\n        StandardInput=socket\n"
        )
    };
    bed.config(&units(&[timer("1h"), socket("7001")]));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["start echo.socket", "start tick.timer"]);
    assert_eq!((bed.active("tick.timer"), bed.active("echo.socket")), ("active".into(), "active".into()));
    let timer0 = bed.invocation("tick.timer");

    bed.config(&units(&[timer("2h"), socket("7002")]));
    let doc = bed.apply_converged();
    let j = jobs(&doc);
    assert!(j.contains(&"restart tick.timer".to_string()) && j.contains(&"restart echo.socket".to_string()), "{j:?}");
    assert_ne!(bed.invocation("tick.timer"), timer0);
    assert_eq!(bed.property("echo.socket", "Listen"), "127.0.0.1:7002 (Stream)");
}

#[test]
fn a_unit_that_fails_fails_the_run_with_its_journal() {
    let Some(bed) = Testbed::up("a_unit_that_fails_fails_the_run_with_its_journal") else { return };
    bed.config(&units(&[service("bad.service", "/bin/sh -c 'echo boom-from-bad >&2; exit 3'", "")]));
    let (code, doc) = bed.apply();
    assert_eq!((code, doc["result"].as_str()), (1, Some("failed")), "{doc:#}");
    let failure = &doc["systemd"]["failures"][0];
    assert_eq!(failure["unit"], "bad.service");
    assert_eq!(failure["result"], "exit-code", "{doc:#}");
    let journal: Vec<&str> = failure["journal"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(journal.iter().any(|l| l.contains("boom-from-bad")), "{journal:?}");

    let (code, again) = bed.apply();
    assert_eq!(code, 1);
    assert_eq!(jobs(&again), vec!["restart bad.service"], "the failed unit is retried");
    let human = bed.exec_expecting(1, &["core-ops", "apply", "--config", "/srv/host.bu", "--unit-timeout", "20"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("Not converging"), "{text}");
    assert!(text.contains("journal of bad.service"), "{text}");
}

#[test]
fn a_unit_edited_on_the_host_is_reported_as_drift_corrected_and_restarted() {
    let Some(bed) = Testbed::up("a_unit_edited_on_the_host_is_reported_as_drift_corrected_and_restarted") else {
        return;
    };
    bed.config(&units(&[service("web.service", SLEEPER, "")]));
    bed.apply_converged();
    let unit = bed.root.join("etc/systemd/system/web.service");
    let mut text = std::fs::read_to_string(&unit).unwrap();
    text = text.replace("sleep infinity", "sleep 1000");
    std::fs::write(&unit, text).unwrap();
    let doc = bed.apply_converged();
    let object = doc["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "/etc/systemd/system/web.service")
        .unwrap();
    assert_eq!(object["drift"], "external-drift");
    assert_eq!(jobs(&doc), vec!["restart web.service"]);
    assert!(std::fs::read_to_string(&unit).unwrap().contains("sleep infinity"));
    assert!(bed.property("web.service", "ExecStart").contains("infinity"), "the corrected unit is loaded");
}

#[test]
fn a_quadlet_with_an_unknown_key_is_stopped_by_the_real_generator() {
    let Some(bed) = Testbed::up("a_quadlet_with_an_unknown_key_is_stopped_by_the_real_generator") else { return };
    bed.config(
        "storage:\n  files:\n    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: |\n          [Container]\n          Image=localhost/testimg:latest\n          BogusKey=1\n",
    );
    let (code, doc) = bed.apply();
    assert_eq!((code, doc["result"].as_str()), (1, Some("failed")), "{doc:#}");
    // CoreOps's table of Quadlet keys names it first (with its line); the generator's same
    // complaint is not repeated.
    let errors = doc["errors"].to_string();
    assert!(errors.contains("web.container:3: unknown key `BogusKey` in [Container]"), "{errors}");
    assert!(!errors.contains("unsupported key 'BogusKey'"), "{errors}");
    assert!(!bed.root.join("etc/containers/systemd/web.container").exists(), "nothing written");
}

#[test]
fn a_quadlet_container_runs_and_a_config_change_restarts_exactly_it() {
    let Some(bed) = Testbed::up("a_quadlet_container_runs_and_a_config_change_restarts_exactly_it") else { return };
    bed.exec(&["podman", "import", "/root/testimg.tar", "localhost/testimg:latest"]);
    let config = |greeting: &str| {
        format!(
            "storage:\n  files:\n    - path: /etc/web/index.html\n      contents:\n        inline: {greeting}\n    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: |\n          [Container]\n          Image=localhost/testimg:latest\n          Exec=/bin/httpd -f -p 8080 -h /www\n          Volume=/etc/web:/www:ro\n          PublishPort=127.0.0.1:8080:8080\n          StopTimeout=1\n          [Install]\n          WantedBy=multi-user.target\n    - path: /etc/containers/systemd/other.container\n      contents:\n        inline: |\n          [Container]\n          Image=localhost/testimg:latest\n          Exec=/bin/sleep 100000\n          StopTimeout=1\n          [Install]\n          WantedBy=multi-user.target\n"
        )
    };
    bed.config(&config("hello-one"));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["start other.service", "start web.service"]);
    assert_eq!(bed.property("web.service", "SourcePath"), "/etc/containers/systemd/web.container");
    assert_eq!(bed.http_get("http://127.0.0.1:8080/index.html"), "hello-one");
    let other0 = bed.invocation("other.service");

    bed.config(&config("hello-two"));
    let doc = bed.apply_converged();
    assert_eq!(jobs(&doc), vec!["restart web.service"]);
    assert_eq!(bed.http_get("http://127.0.0.1:8080/index.html"), "hello-two");
    assert_eq!(bed.invocation("other.service"), other0);
    assert_eq!(bed.sh("systemctl is-enabled web.service"), "generated", "Quadlet units are never enabled");
}

/// Imports the busybox test image under `name`, running `script` with `sh` as PID 1 (which
/// exits on SIGTERM, so stops and restarts are quick).
fn stand_in_image(bed: &Testbed, name: &str, script: &str) {
    let wrapped = format!("{script} & trap 'kill $!; exit 0' TERM; wait");
    let cmd = serde_json::json!(["/bin/sh", "-c", wrapped]).to_string();
    bed.exec(&["podman", "import", "--change", &format!("CMD {cmd}"), "/root/testimg.tar", name]);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `examples/01-caddy-whoami` as it is, with stand-ins for the two images (no registry here):
/// "caddy" serves its mounted Caddyfile and proxies `/cgi-bin/whoami` to the `whoami`
/// container by name over the `web` network; "whoami" answers with a greeting.
#[test]
fn example_caddy_whoami_runs_and_a_caddyfile_change_restarts_exactly_caddy() {
    let Some(bed) = Testbed::up("example_caddy_whoami_runs_and_a_caddyfile_change_restarts_exactly_caddy") else {
        return;
    };
    stand_in_image(
        &bed,
        "docker.io/library/caddy:2.10-alpine",
        "mkdir -p /srv/cgi-bin && ln -sf /etc/caddy/Caddyfile /srv/Caddyfile && \
         printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nwget -q -O - http://whoami/\\n' > /srv/cgi-bin/whoami && \
         chmod +x /srv/cgi-bin/whoami && httpd -f -p 80 -h /srv",
    );
    stand_in_image(
        &bed,
        "docker.io/traefik/whoami:v1.11",
        "mkdir -p /w && echo hello-from-whoami > /w/index.html && httpd -f -p 80 -h /w",
    );
    let repo = bed.root.join("srv/repo");
    std::fs::create_dir_all(&repo).unwrap();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/01-caddy-whoami"), &repo);
    // The testbed's /etc/hostname says `testbed`: applying host `example` to it is a deliberate move.
    let apply = || bed.apply_converged_from(&["--source-repo", "/srv/repo", "--host", "example", "--switch-host"]);
    let doc = apply();
    // The network and the volume have no [Install]: they start as the containers' dependencies.
    assert_eq!(jobs(&doc), vec!["start caddy.service", "start whoami.service"]);
    for unit in ["caddy.service", "whoami.service", "web-network.service", "caddy-data-volume.service"] {
        assert_eq!(bed.active(unit), "active", "{unit}");
    }
    let get = |path: &str| bed.http_get(&format!("http://127.0.0.1{path}"));
    assert!(get("/Caddyfile").contains("whoami.example.com"));
    assert_eq!(get("/cgi-bin/whoami"), "hello-from-whoami", "caddy reaches whoami by name on the web network");
    let (caddy0, whoami0) = (bed.invocation("caddy.service"), bed.invocation("whoami.service"));

    let caddyfile = repo.join("services/caddy/config/Caddyfile");
    let text = std::fs::read_to_string(&caddyfile).unwrap().replace("whoami.example.com", "who.example.org");
    std::fs::write(&caddyfile, text).unwrap();
    let doc = apply();
    assert_eq!(jobs(&doc), vec!["restart caddy.service"]);
    assert_eq!(doc["systemd"]["jobs"][0]["cause"], "services/caddy/config/Caddyfile changed");
    assert_ne!(bed.invocation("caddy.service"), caddy0);
    assert_eq!(bed.invocation("whoami.service"), whoami0, "whoami untouched");
    assert!(get("/Caddyfile").contains("who.example.org"), "the new Caddyfile is served");
    let caddy1 = bed.invocation("caddy.service");

    let host = repo.join("hosts/example/host.yaml");
    std::fs::write(&host, std::fs::read_to_string(&host).unwrap().replace("  - whoami\n", "")).unwrap();
    let doc = apply();
    assert_eq!(jobs(&doc), vec!["stop whoami.service"]);
    assert_eq!(bed.active("whoami.service"), "inactive");
    assert!(!bed.root.join("etc/containers/systemd/whoami.container").exists(), "its Quadlet is deleted");
    assert_eq!(bed.property("whoami.service", "LoadState"), "not-found", "and its unit gone after the reload");
    assert_eq!(bed.invocation("caddy.service"), caddy1, "caddy untouched");
    assert_eq!(bed.active("web-network.service"), "active");
}

#[test]
fn machine_names_are_valid_hostnames_and_unique_per_test() {
    let long = "a_test_name_so_long_that_the_machine_name_has_to_cut_it_somewhere_";
    let names: Vec<String> =
        [format!("{long}one"), format!("{long}two"), "reload_if_changed_reloads_in_place".to_string()]
            .iter()
            .map(|test| machine_name(test, u32::MAX))
            .collect();
    for name in &names {
        assert!(name.len() <= 64, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{name}");
        assert!(!name.ends_with('-') && !name.contains("--"), "{name}");
    }
    assert_ne!(names[0], names[1], "tests that share a long prefix get distinct containers");
    assert!(names[2].starts_with("co-reload-if-changed-reloads-in-place-"), "{}", names[2]);
}
