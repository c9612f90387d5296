//! `core-ops apply` on real directories: idempotence, drift, stale removal, ownership and
//! adoption, symlink attacks, path tricks, concurrency, a corrupt state, rollback, remote
//! sources, enablement (with `systemctl --root` as the oracle) and first-boot ownership.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn apply(config: &Path, root: &Path, extra: &[&str]) -> Output {
    common::bin()
        .args(["apply", "--config"])
        .arg(config)
        .arg("--root")
        .arg(root)
        .arg("--offline")
        .args(extra)
        .output()
        .unwrap()
}

fn apply_json(config: &Path, root: &Path, extra: &[&str]) -> (i32, Value) {
    let out = apply(config, root, &[&["--output", "json"], extra].concat());
    let code = out.status.code().unwrap_or(-1);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (code, doc)
}

fn butane(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("variant: fcos\nversion: 1.6.0\n{body}")).unwrap();
    path
}

const TWO_FILES: &str = "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n    - path: /etc/app/b.conf\n      mode: 0600\n      contents: {inline: \"b=secret\\n\"}\n";

fn action_of(doc: &Value, path: &str) -> String {
    doc["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == path)
        .map(|o| o["action"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn a_second_apply_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let (code, first) = apply_json(&cfg, root.path(), &[]);
    assert_eq!((code, first["result"].as_str()), (0, Some("converged")));
    assert_eq!(first["plan"]["summary"]["create"], 2);
    let inode = fs::metadata(root.path().join("etc/app/a.conf")).unwrap().ino();
    let (code, second) = apply_json(&cfg, root.path(), &[]);
    assert_eq!(code, 0);
    let s = &second["plan"]["summary"];
    assert_eq!(
        (s["create"].as_u64(), s["update"].as_u64(), s["delete"].as_u64(), s["no_op"].as_u64()),
        (Some(0), Some(0), Some(0), Some(2))
    );
    assert_eq!(fs::metadata(root.path().join("etc/app/a.conf")).unwrap().ino(), inode, "the file was not rewritten");
    assert_eq!(second["generation"], 1, "an unchanged revision is not a new generation");
    assert_eq!(fs::metadata(root.path().join("etc/app/b.conf")).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn external_drift_is_reported_and_corrected() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::write(root.path().join("etc/app/a.conf"), "a=edited by hand\n").unwrap();
    fs::set_permissions(root.path().join("etc/app/b.conf"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, doc) = apply_json(&cfg, root.path(), &[]);
    assert_eq!(code, 0);
    let objects = doc["plan"]["objects"].as_array().unwrap();
    for o in objects {
        assert_eq!((o["action"].as_str(), o["drift"].as_str()), (Some("update"), Some("external-drift")), "{o}");
    }
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    assert_eq!(fs::metadata(root.path().join("etc/app/b.conf")).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn owned_objects_that_leave_the_config_are_removed_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/app/theirs.conf", "not ours\n");
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    let smaller = butane(
        work.path(),
        "c2.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"a=1\\n\"}\n",
    );
    let (code, doc) = apply_json(&smaller, root.path(), &[]);
    assert_eq!(code, 0);
    let stale =
        doc["plan"]["objects"].as_array().unwrap().iter().find(|o| o["path"] == "/etc/app/b.conf").unwrap().clone();
    assert_eq!((stale["action"].as_str(), stale["drift"].as_str()), (Some("delete"), Some("stale")));
    assert!(!root.path().join("etc/app/b.conf").exists());
    assert!(root.path().join("etc/app/a.conf").exists());
    assert_eq!(
        fs::read_to_string(root.path().join("etc/app/theirs.conf")).unwrap(),
        "not ours\n",
        "never delete what CoreOps does not own"
    );
}

#[test]
fn unowned_conflicts_block_everything_until_adopted() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "etc/app/a.conf", "someone else's\n");
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let (code, doc) = apply_json(&cfg, root.path(), &[]);
    assert_eq!((code, doc["result"].as_str()), (1, Some("failed")));
    assert_eq!(action_of(&doc, "/etc/app/a.conf"), "blocked");
    assert!(doc["errors"][0].as_str().unwrap().contains("apply --adopt"), "{doc}");
    assert!(!root.path().join("etc/app/b.conf").exists(), "a blocked plan writes nothing");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "someone else's\n");
    let (code, doc) = apply_json(&cfg, root.path(), &["--adopt"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
    let state: Value =
        serde_json::from_slice(&fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap()).unwrap();
    let owned: Vec<&str> =
        state["last_applied"]["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(owned, ["/etc/app/a.conf", "/etc/app/b.conf"]);
}

#[test]
fn a_symlinked_parent_is_refused_and_nothing_is_written_outside() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    symlink(outside.path(), root.path().join("etc/app")).unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let out = apply(&cfg, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/etc/app is a symlink; CoreOps never follows symlinks under the root"), "{text}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the root");
}

#[test]
fn a_parent_replaced_by_a_symlink_after_apply_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::remove_dir_all(root.path().join("etc/app")).unwrap();
    symlink(outside.path(), root.path().join("etc/app")).unwrap();
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(1));
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn path_tricks_stay_inside_the_root() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dirty =
        butane(work.path(), "dirty.bu", "storage:\n  files:\n    - path: /etc/../../x\n      contents: {inline: x}\n");
    let out = apply(&dirty, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("path is not fully simplified"));
    let hard = butane(
        work.path(),
        "hard.bu",
        "storage:\n  files:\n    - path: /etc/target\n      contents: {inline: t}\n  links:\n    - path: /etc/h\n      hard: true\n      target: /../../../etc/target\n    - path: /etc/s\n      target: /etc/shadow-outside\n",
    );
    let out = apply(&hard, root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        fs::metadata(root.path().join("etc/h")).unwrap().ino(),
        fs::metadata(root.path().join("etc/target")).unwrap().ino(),
        "the hard link target resolved inside the root"
    );
    assert_eq!(
        fs::read_link(root.path().join("etc/s")).unwrap().to_str(),
        Some("/etc/shadow-outside"),
        "symlink targets are written verbatim, never followed"
    );
}

#[test]
fn a_second_run_waits_for_the_lock_then_fails_clearly() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    let held = core_ops::host::store::lock(
        &core_ops::host::root::Root::open(root.path()).unwrap(),
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    let out = apply(&cfg, root.path(), &["--lock-timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another core-ops run holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.path().join("etc/app").exists());
    drop(held);
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            common::bin()
                .args(["apply", "--config"])
                .arg(&cfg)
                .arg("--root")
                .arg(root.path())
                .args(["--offline", "--output", "json"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<Value> = children
        .iter_mut()
        .map(|c| {
            let mut text = String::new();
            c.stdout.take().unwrap().read_to_string(&mut text).unwrap();
            assert!(c.wait().unwrap().success());
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    let creates: u64 = results.iter().map(|r| r["plan"]["summary"]["create"].as_u64().unwrap()).sum();
    assert_eq!(creates, 2, "two concurrent runs: one writes, the other finds it done");
}

#[test]
fn a_corrupt_state_is_a_clear_error_and_adopt_recovers() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cfg = butane(work.path(), "c.bu", TWO_FILES);
    assert_eq!(apply(&cfg, root.path(), &[]).status.code(), Some(0));
    fs::write(root.path().join("var/lib/core-ops/state.json"), "{\"schema_version\": 1, \"generation\": ").unwrap();
    fs::write(root.path().join("etc/app/a.conf"), "changed\n").unwrap();
    let out = apply(&cfg, root.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the state file is corrupt") && err.contains("Move it aside"), "{err}");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "changed\n", "nothing written");
    fs::rename(
        root.path().join("var/lib/core-ops/state.json"),
        root.path().join("var/lib/core-ops/state.json.corrupt"),
    )
    .unwrap();
    assert_eq!(apply(&cfg, root.path(), &["--adopt"]).status.code(), Some(0), "the documented recovery works");
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "a=1\n");
}

#[test]
fn rollback_returns_to_an_earlier_revision() {
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let v1 = butane(
        work.path(),
        "v1.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"v1\\n\"}\n",
    );
    let v2 = butane(
        work.path(),
        "v2.bu",
        "storage:\n  files:\n    - path: /etc/app/a.conf\n      contents: {inline: \"v2\\n\"}\n    - path: /etc/app/new.conf\n      contents: {inline: n}\n",
    );
    let (_, first) = apply_json(&v1, root.path(), &[]);
    let (_, second) = apply_json(&v2, root.path(), &[]);
    assert_ne!(first["revision"], second["revision"]);
    let out = common::bin()
        .args(["rollback", "--root"])
        .arg(root.path())
        .args(["--offline", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["revision"], first["revision"]);
    assert_eq!(fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "v1\n");
    assert!(!root.path().join("etc/app/new.conf").exists(), "what v2 added is removed");
    let out = common::bin()
        .args(["rollback", "--to", "ffffffff", "--root"])
        .arg(root.path())
        .arg("--offline")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no applied snapshot for revision ffffffff"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serves `body` for every request on 127.0.0.1, `count` times.
fn serve(body: &'static [u8], count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}/payload")
}

#[test]
fn remote_sources_are_written_only_when_their_hash_matches() {
    use sha2::Digest;
    let body: &'static [u8] = b"fetched over http\n";
    let good = format!("sha256-{}", hex::encode(sha2::Sha256::digest(body)));
    let bad = format!("sha256-{}", "0".repeat(64));
    for (hash, ok) in [(good, true), (bad, false)] {
        let url = serve(body, 2);
        let work = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let cfg = butane(
            work.path(),
            "r.bu",
            &format!(
                "storage:\n  files:\n    - path: /etc/remote.txt\n      contents:\n        source: {url}\n        verification: {{hash: {hash}}}\n"
            ),
        );
        let out = common::bin().args(["apply", "--config"]).arg(&cfg).arg("--root").arg(root.path()).output().unwrap();
        if ok {
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
            assert_eq!(fs::read(root.path().join("etc/remote.txt")).unwrap(), body);
        } else {
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("hash mismatch"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(!root.path().join("etc").exists(), "nothing written");
        }
        let offline = apply(&cfg, root.path(), &[]);
        if !ok {
            assert_eq!(offline.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&offline.stdout).contains("--offline"));
        }
    }
}

fn links_under(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc/systemd/system")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    fs::read_link(&p).unwrap().display().to_string(),
                ));
            } else if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn enablement_matches_systemctl_enable() {
    if std::process::Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemctl is not installed; it is the oracle for enablement");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let units = [
        (
            "web.service",
            "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\nRequiredBy=x.target\nAlias=web-alias.service\nAlso=helper.socket\n",
        ),
        ("helper.socket", "[Socket]\nListenStream=127.0.0.1:9\n\n[Install]\nWantedBy=sockets.target\n"),
        (
            "tmpl@.service",
            "[Service]\nExecStart=/bin/echo %i\n\n[Install]\nWantedBy=multi-user.target\nDefaultInstance=def\n",
        ),
    ];
    let mut body = String::from("systemd:\n  units:\n");
    for (name, contents) in units {
        let enabled = if name == "helper.socket" { "" } else { "      enabled: true\n" };
        body.push_str(&format!("    - name: {name}\n{enabled}      contents: {:?}\n", contents));
    }
    body.push_str("    - name: tmpl@x.service\n      enabled: true\n");
    let cfg = butane(work.path(), "u.bu", &body);
    let ours = tempfile::tempdir().unwrap();
    let out = apply(&cfg, ours.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let oracle = tempfile::tempdir().unwrap();
    for (name, contents) in units {
        write(oracle.path(), &format!("etc/systemd/system/{name}"), contents);
    }
    let status = std::process::Command::new("systemctl")
        .arg(format!("--root={}", oracle.path().display()))
        .args(["enable", "web.service", "tmpl@.service", "tmpl@x.service"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(links_under(ours.path()), links_under(oracle.path()));
    let disable = butane(work.path(), "d.bu", &body.replace("enabled: true", "enabled: false"));
    assert_eq!(apply(&disable, ours.path(), &[]).status.code(), Some(0));
    assert!(links_under(ours.path()).is_empty(), "disabling removes the links: {:?}", links_under(ours.path()));
}

#[test]
fn the_first_apply_owns_what_the_rendered_ignition_wrote() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/01-caddy-whoami");
    let out = common::bin()
        .args(["render-ignition", "--source-repo"])
        .arg(&repo)
        .args(["--host", "example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ign: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Provision like Ignition: write every file of the config into a fresh root.
    let root = tempfile::tempdir().unwrap();
    for f in ign["storage"]["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let source = f["contents"]["source"].as_str().unwrap();
        let bytes =
            core_ops::model::ignition::dataurl::decode_contents(source, f["contents"]["compression"].as_str()).unwrap();
        let full = root.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, bytes).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(f["mode"].as_u64().unwrap_or(0o644) as u32)).unwrap();
    }
    // Day 2: the same repository without the whoami service.
    let day2 = tempfile::tempdir().unwrap();
    for entry in [
        "hosts/example/host.yaml",
        "services/caddy/quadlet/caddy.container",
        "services/caddy/quadlet/caddy-data.volume",
        "services/caddy/quadlet/web.network",
        "services/caddy/config/Caddyfile",
    ] {
        write(day2.path(), entry, &fs::read_to_string(repo.join(entry)).unwrap());
    }
    write(day2.path(), "hosts/example/host.yaml", "host: example\nservices: [caddy]\n");
    let out = common::bin()
        .args(["apply", "--source-repo"])
        .arg(day2.path())
        .args(["--host", "example", "--root"])
        .arg(root.path())
        .args(["--offline", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        action_of(&doc, "/etc/containers/systemd/whoami.container"),
        "delete",
        "owned since first boot, so removable"
    );
    assert_eq!(action_of(&doc, "/etc/caddy/Caddyfile"), "no-op");
    assert!(!root.path().join("etc/containers/systemd/whoami.container").exists());
}
