//! Every example repository: `plan` into an empty root lists the expected objects, and the
//! objects `render-ignition --source-repo` emits are exactly the objects `plan` wants.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use core_ops::model::desired::{self, Owner};
use core_ops::model::ignition::spec;
use core_ops::model::plan::sha256;
use core_ops::model::source::compose::Origin;
use serde_json::Value;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("hosts").is_dir()).collect();
    out.sort();
    out
}

fn plan_json(example: &Path, root: &Path) -> Value {
    let out = common::bin()
        .args(["plan", "--source-repo"])
        .arg(example)
        .args(["--host", "example", "--root"])
        .arg(root)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: {}", example.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_example_plans_cleanly_into_an_empty_root() {
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "01-caddy-whoami",
            &[
                "/etc/caddy/Caddyfile",
                "/etc/containers/systemd/caddy.container",
                "/etc/containers/systemd/web.network",
                "/etc/containers/systemd/whoami.container",
            ][..],
        ),
        (
            "02-nextcloud",
            &[
                "/etc/containers/systemd/traefik.container.d/10-tls.conf",
                "/etc/nextcloud-db/db.env",
                "/etc/systemd/system/nextcloud-cron.timer",
            ][..],
        ),
        (
            "03-immich",
            &[
                "/etc/containers/systemd/immich-machine-learning.container.d/20-gpu.conf",
                "/etc/containers/systemd/immich-backend.network",
                "/etc/containers/systemd/immich-frontend.network",
            ][..],
        ),
        (
            "04-traefik-authelia",
            &["/etc/containers/systemd/whoami.container.d/10-forward-auth.conf", "/etc/authelia/configuration.yml"][..],
        ),
        (
            "05-observability",
            &["/etc/prometheus/prometheus.yml", "/etc/containers/systemd/node-exporter.container"][..],
        ),
        (
            "06-butane-host",
            &[
                "/etc/hostname",
                "/etc/sysctl.d/90-tuning.conf",
                "/etc/systemd/system/backup.timer",
                "/etc/containers/systemd/whoami.container",
            ][..],
        ),
    ]);
    let found = examples();
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for example in found {
        let name = example.file_name().unwrap().to_str().unwrap().to_string();
        let root = tempfile::tempdir().unwrap();
        let plan = plan_json(&example, root.path());
        let objects = plan["objects"].as_array().unwrap();
        assert!(objects.iter().all(|o| o["action"] == "create"), "{name}: everything is new in an empty root");
        let paths: Vec<&str> = objects.iter().map(|o| o["path"].as_str().unwrap()).collect();
        for want in expected[name.as_str()] {
            assert!(paths.contains(want), "{name}: {want} missing from {paths:?}");
        }
    }
    let root = tempfile::tempdir().unwrap();
    let prometheus = plan_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/05-observability"), root.path());
    let config = prometheus["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "/etc/prometheus/prometheus.yml")
        .unwrap();
    assert_eq!(
        config["origin"]["file"], "hosts/example/prometheus/config/prometheus.yml",
        "the host's replacement wins"
    );
}

#[test]
fn render_ignition_and_plan_describe_the_same_objects() {
    for example in examples() {
        let name = example.display().to_string();
        let out = common::bin()
            .args(["render-ignition", "--source-repo"])
            .arg(&example)
            .args(["--host", "example"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        ignition_config::Config::parse_str(&text)
            .unwrap_or_else(|e| panic!("{name}: ignition-config rejects the output: {e}"));
        let parsed = spec::parse(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(!parsed.report.has_errors(), "{name}: {:?}", parsed.report);
        let mut rendered =
            desired::from_config(&parsed.config, &BTreeMap::new(), &Origin { file: name.clone(), path: None });
        // The state file CoreOps embeds for the first boot is its own, not a desired object.
        assert!(rendered.objects.remove("/var/lib/core-ops/state.json").is_some(), "{name}: no initial state embedded");
        // Enablement links follow from `enabled` and the units' [Install] sections, on both sides.
        desired::add_enablement(&mut rendered, &|_| None);

        let root = tempfile::tempdir().unwrap();
        let plan = plan_json(&example, root.path());
        let owner = |o: &Owner| match o {
            Owner::Unset => Value::Null,
            Owner::Id(id) => Value::String(id.to_string()),
            Owner::Name(n) => Value::String(n.clone()),
        };
        let from_render: BTreeMap<String, Value> = rendered
            .objects
            .values()
            .map(|o| {
                let mut d = serde_json::Map::new();
                d.insert("kind".into(), o.kind.name().into());
                d.insert("sha256".into(), o.known_bytes().map(|b| sha256(&b)).into());
                d.insert("mode".into(), o.mode.map(|m| format!("{m:04o}")).into());
                d.insert("user".into(), owner(&o.user));
                d.insert("group".into(), owner(&o.group));
                d.insert("target".into(), o.target.clone().into());
                (o.path.clone(), Value::Object(d))
            })
            .collect();
        let from_plan: BTreeMap<String, Value> = plan["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let want = &o["desired"];
                let mut d = serde_json::Map::new();
                d.insert("kind".into(), o["kind"].clone());
                for key in ["sha256", "mode", "user", "group", "target"] {
                    d.insert(key.into(), want.get(key).cloned().unwrap_or(Value::Null));
                }
                (o["path"].as_str().unwrap().to_string(), Value::Object(d))
            })
            .collect();
        assert_eq!(from_render, from_plan, "{name}: rendered and planned objects differ");
        let units_render: Vec<String> = rendered.units.iter().map(|u| u.name.clone()).collect();
        let units_plan: Vec<String> =
            plan["units"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(units_render, units_plan, "{name}: unit intents differ");
    }
}
