//! Every example repository: `plan` into an empty root lists the expected objects, the config
//! `render-ignition --source-repo` makes is accepted by an independent Ignition parser, and
//! `apply` into an empty root writes the tree the reference Ignition writes from that config.
//!
//! The reference's trees are recorded in `tests/examples-expected/` by
//! `scripts/record-example-trees.sh`, so the comparison runs without the reference binary; where
//! `../shared/reference-bin` is present, the recordings are checked against a fresh run of it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::Manifest;
use serde_json::Value;

/// The ownership record CoreOps embeds in the config and `apply` keeps up to date.
const STATE: &str = "/var/lib/core-ops/state.json";
/// The payload the recordings list for [`STATE`] (see [`mask_state`]).
const STATE_PAYLOAD: &str = "ownership-record";
/// Where the reference records which units to enable, and its one file there.
const PRESET_DIR: &str = "/etc/systemd/system-preset";
const PRESET: &str = "/etc/systemd/system-preset/20-ignition.preset";

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("hosts").is_dir()).collect();
    out.sort();
    out
}

fn name_of(example: &Path) -> String {
    example.file_name().unwrap().to_string_lossy().into_owned()
}

/// The recordings of what the reference Ignition wrote.
fn recordings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/examples-expected")
}

fn plan_json(example: &Path, root: &Path) -> Value {
    let out = common::bin()
        .args(["plan", "--source-repo"])
        .arg(example)
        .args(["--host", "example", "--root"])
        .arg(root)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: {}", example.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `core-ops render-ignition --source-repo EXAMPLE --host example`.
fn render(example: &Path) -> String {
    let out = common::bin()
        .args(["render-ignition", "--source-repo"])
        .arg(example)
        .args(["--host", "example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: {}", example.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Lists the ownership record with a fixed payload. Its node (type, mode, owner) is compared,
/// its bytes are not: on the reference side they are the record `render-ignition` embedded for
/// first boot (`generation` 0), on the `apply` side the record of the run just made (generation,
/// time, file stamps, the repository's path). Both are CoreOps's own bookkeeping, which the
/// reference has no opinion about.
fn mask_state(tree: &mut Manifest) {
    if let Some((_, line)) = tree.get_mut(STATE) {
        let head = line.rsplit_once(' ').map_or(line.as_str(), |(head, _)| head);
        *line = format!("{head} {STATE_PAYLOAD}");
    }
}

fn payload(line: &str) -> &str {
    line.rsplit(' ').next().unwrap_or("")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The recorded reference tree in the terms `apply`'s is compared in, and the units it enables.
///
/// The reference enables units with a systemd preset file (`enable UNIT` lines, applied by
/// `systemctl preset` at first boot), which `apply` does not write: it makes the enablement
/// links at once. So the preset file and its folder leave the tree, and the units it enables are
/// compared with the units `apply` linked (see [`apply_view`]). The recorded preset text must be
/// the file the recorded tree lists.
fn reference_view(tree: &Manifest, preset: Option<&str>) -> Result<(Manifest, BTreeSet<String>), String> {
    match (tree.get(PRESET), preset) {
        (Some((_, line)), Some(text)) if payload(line) == sha256_hex(text.as_bytes()) => {}
        (None, None) => {}
        (listed, text) => {
            return Err(format!("the recorded preset text does not match the recorded tree ({listed:?}, {text:?})"));
        }
    }
    let mut enabled = BTreeSet::new();
    for line in preset.unwrap_or("").lines().filter(|l| !l.trim().is_empty()) {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["enable", unit] => {
                enabled.insert(unit.to_string());
            }
            // Nothing to undo in an empty root: `apply` writes no link for these either.
            ["disable", _] => {}
            _ => return Err(format!("a preset line this test does not understand: {line:?}")),
        }
    }
    let mut kept = Manifest::new();
    for (path, node) in tree {
        if path == PRESET_DIR || path == PRESET {
            continue;
        }
        if path.starts_with(&format!("{PRESET_DIR}/")) {
            return Err(format!("the reference wrote an unexpected preset node: {}", node.1));
        }
        kept.insert(path.clone(), node.clone());
    }
    Ok((kept, enabled))
}

/// `apply`'s tree in the terms the reference's is compared in, and the units it enabled.
///
/// Taken out, each with the reason:
/// - `/run/core-ops` (the run's lock) and `/run` when nothing else is in it: runtime state of
///   the run, not part of the config; the reference writes nothing under `/run`.
/// - `/var/lib/core-ops/audit.log` and `/var/lib/core-ops/history/`: `apply`'s record of the
///   run, which first boot does not have. The ownership record itself stays (see [`mask_state`]).
/// - links in `*.wants`/`*.requires` folders, and those folders when nothing else is in them:
///   enablement, which the reference expresses as presets instead. Each link must point at a unit
///   file of the tree with the link's own name; the linked names are returned.
fn apply_view(tree: &Manifest) -> Result<(Manifest, BTreeSet<String>), String> {
    let link_dir = |dir: &str| dir.ends_with(".wants") || dir.ends_with(".requires");
    let mut enabled = BTreeSet::new();
    let mut kept = Manifest::new();
    for (path, (typ, line)) in tree {
        let (parent, base) = path.rsplit_once('/').unwrap();
        if path == "/run/core-ops"
            || path.starts_with("/run/core-ops/")
            || path == "/var/lib/core-ops/audit.log"
            || path == "/var/lib/core-ops/history"
            || path.starts_with("/var/lib/core-ops/history/")
        {
            continue;
        }
        if typ == "link" && link_dir(parent) {
            let target = payload(line);
            let unit_file = tree.get(target).is_some_and(|(t, _)| t == "file");
            if !unit_file || target.rsplit('/').next() != Some(base) {
                return Err(format!("an enablement link that does not name a unit file of the tree: {line}"));
            }
            enabled.insert(base.to_string());
            continue;
        }
        kept.insert(path.clone(), (typ.clone(), line.clone()));
    }
    // Folders left empty by the above, innermost first.
    for path in tree.keys().rev() {
        let emptied = kept.get(path).is_some_and(|(t, _)| t == "dir")
            && (path == "/run" || link_dir(path))
            && !kept.keys().any(|p| p.starts_with(&format!("{path}/")));
        if emptied {
            kept.remove(path);
        }
    }
    mask_state(&mut kept);
    Ok((kept, enabled))
}

/// The differing lines of two trees, `-` expected and `+` actual.
fn tree_diff(expected: &Manifest, actual: &Manifest) -> Vec<String> {
    let paths: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let mut diff = Vec::new();
    for path in paths {
        if expected.get(path) != actual.get(path) {
            diff.extend(expected.get(path).map(|e| format!("- {}", e.1)));
            diff.extend(actual.get(path).map(|a| format!("+ {}", a.1)));
        }
    }
    diff
}

/// An example's recording: the tree and, if the reference wrote one, the preset text.
fn recording(name: &str) -> (Manifest, Option<String>) {
    let tree = std::fs::read_to_string(recordings().join(format!("{name}.tree"))).unwrap_or_else(|e| {
        panic!("{name}: no recorded reference tree ({e}); run scripts/record-example-trees.sh as root and commit it")
    });
    let preset = std::fs::read_to_string(recordings().join(format!("{name}.preset"))).ok();
    (common::parse_manifest(&tree), preset)
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
        let name = name_of(&example);
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
fn every_rendered_config_is_accepted_by_the_ignition_config_crate() {
    for example in examples() {
        let name = name_of(&example);
        let text = render(&example);
        ignition_config::Config::parse_str(&text)
            .unwrap_or_else(|e| panic!("{name}: ignition-config rejects the output: {e}"));
    }
}

#[test]
fn every_example_applies_as_the_reference_ignition_wrote_it() {
    const TEST: &str = "every_example_applies_as_the_reference_ignition_wrote_it";
    if !common::is_root() {
        common::skip(TEST, "needs root: the recorded trees were written by the reference as root (owners 0:0)");
        return;
    }
    let found = examples();
    let names: BTreeSet<String> = found.iter().map(|e| name_of(e)).collect();
    let recorded: BTreeSet<String> = std::fs::read_dir(recordings())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tree" || x == "preset"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(recorded, names, "tests/examples-expected/ records other examples than examples/ holds");
    let mut failures = Vec::new();
    for example in &found {
        let name = name_of(example);
        let (tree, preset) = recording(&name);
        let (want, want_enabled) = reference_view(&tree, preset.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let root = common::conformance_root();
        let out = common::bin()
            .args(["apply", "--source-repo"])
            .arg(example)
            .args(["--host", "example", "--root"])
            .arg(root.path())
            .arg("--offline")
            .output()
            .unwrap();
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{name}: apply exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let (got, got_enabled) = match apply_view(&common::manifest(root.path())) {
            Ok(view) => view,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let diff = tree_diff(&want, &got);
        if !diff.is_empty() {
            failures.push(format!("{name}: apply's tree differs from the reference's\n  {}", diff.join("\n  ")));
        }
        if got_enabled != want_enabled {
            failures.push(format!(
                "{name}: apply enabled {got_enabled:?}, the reference's presets enable {want_enabled:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn recordings_are_what_the_reference_ignition_writes_now() {
    const TEST: &str = "recordings_are_what_the_reference_ignition_writes_now";
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-bin");
    if !reference.join("unpack.sh").is_file() {
        common::skip(TEST, "../shared/reference-bin is absent: the recordings could not be rechecked");
        return;
    }
    if !common::is_root() {
        common::skip(TEST, "needs root: the reference writes owners 0:0 only as root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let unpacked =
        std::process::Command::new("bash").arg(reference.join("unpack.sh")).arg(work.path()).output().unwrap();
    assert!(unpacked.status.success(), "unpack.sh: {}", String::from_utf8_lossy(&unpacked.stderr));
    let bin_dir = PathBuf::from(String::from_utf8(unpacked.stdout).unwrap().trim());
    let mut stale = Vec::new();
    for example in examples() {
        let name = name_of(&example);
        let config = work.path().join(format!("{name}.ign"));
        std::fs::write(&config, render(&example)).unwrap();
        let root = common::conformance_root();
        let out = common::reference_ignition_apply(&bin_dir, root.path(), &config);
        assert!(
            out.status.success(),
            "{name}: the reference ignition-apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut fresh = common::manifest(root.path());
        mask_state(&mut fresh);
        let fresh_preset = std::fs::read_to_string(root.path().join(PRESET.trim_start_matches('/'))).ok();
        let (tree, preset) = recording(&name);
        let diff = tree_diff(&tree, &fresh);
        if !diff.is_empty() {
            stale.push(format!(
                "{name}: the recorded tree (-) is not what the reference writes now (+)\n  {}",
                diff.join("\n  ")
            ));
        }
        if preset != fresh_preset {
            stale.push(format!("{name}: recorded preset {preset:?}, the reference writes {fresh_preset:?}"));
        }
    }
    assert!(
        stale.is_empty(),
        "stale recordings: run scripts/record-example-trees.sh as root and commit tests/examples-expected/\n{}",
        stale.join("\n")
    );
}
