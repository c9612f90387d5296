//! Source repositories through the built binary: every loader error with its exit code and
//! message, `--exit-code`, JSON against the published schema, and redaction.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const HOST: (&str, &str) = ("hosts/h/host.yaml", "host: h\nservices: [web]\n");
const WEB: (&str, &str) = (
    "services/web/quadlet/web.container",
    "[Container]\nImage=docker.io/library/nginx:1.27\n\n[Install]\nWantedBy=multi-user.target\n",
);
const WEB_CONF: (&str, &str) = ("services/web/config/site.conf", "listen 80;\n");

fn plan(repo: &Path, root: &Path, extra: &[&str]) -> Output {
    common::bin()
        .args(["plan", "--source-repo"])
        .arg(repo)
        .args(["--host", "h", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_loader_error_is_located_with_exit_65() {
    type Case = (&'static str, Vec<(&'static str, &'static str)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "unknown folder in a service folder",
            vec![HOST, WEB, ("services/web/junk/x", "")],
            "error: services/web/junk: unknown folder in a service folder; expected quadlet/, systemd/ or config/",
        ),
        (
            "bad identifier",
            vec![("hosts/h/host.yaml", "host: h\nservices: [\"bad name\"]\n"), WEB],
            "error: hosts/h/host.yaml:2:12: `bad name` is not a valid service name",
        ),
        (
            "host name not matching its folder",
            vec![("hosts/h/host.yaml", "host: other\nservices: [web]\n"), WEB],
            "error: hosts/h/host.yaml:1:7: host name `other` does not match its folder hosts/h/",
        ),
        (
            "unknown service",
            vec![("hosts/h/host.yaml", "host: h\nservices: [web, nope]\n"), WEB],
            "error: hosts/h/host.yaml:2:17: unknown service `nope`: there is no services/nope/ (known services: web)",
        ),
        (
            "duplicated service",
            vec![("hosts/h/host.yaml", "host: h\nservices: [web, web]\n"), WEB],
            "error: hosts/h/host.yaml:2:17: service `web` is listed twice",
        ),
        (
            "overlay for an unselected service",
            vec![HOST, WEB, ("hosts/h/wbe/config/site.conf", "x")],
            "error: hosts/h/wbe: overlay for service `wbe`, which host `h` does not select in host.yaml; did you mean `web`?",
        ),
        (
            "drop-in without its unit",
            vec![HOST, WEB, ("services/web/quadlet/api.container.d/10.conf", "[Container]\n")],
            "error: services/web/quadlet/api.container.d: drop-in folder without its unit: there is no services/web/quadlet/api.container",
        ),
        (
            "base unit in an overlay",
            vec![HOST, WEB, ("hosts/h/web/quadlet/web.container", "[Container]\n")],
            "error: hosts/h/web/quadlet/web.container: a host overlay holds only drop-ins (<unit>.d/<name>.conf); base units belong in services/",
        ),
        (
            "wrong extension for the folder",
            vec![HOST, WEB, ("services/web/systemd/web.container", "[Container]\n")],
            "error: services/web/systemd/web.container: wrong extension for services/web/systemd/: systemd unit files end in .service",
        ),
        (
            "config root climbing out",
            vec![HOST, WEB, ("services/web/service.yaml", "config-root: ..\n")],
            "error: services/web/service.yaml:1:14: config-root `..` must be a single folder name under /etc (no `/` or `..`)",
        ),
        (
            "unknown key in host.yaml",
            vec![("hosts/h/host.yaml", "host: h\nservices: [web]\ncolour: red\n"), WEB],
            "error: hosts/h/host.yaml:3:9: unknown key `colour` in host.yaml; expected host, services, butane",
        ),
        (
            "unknown key in service.yaml",
            vec![HOST, WEB, ("services/web/service.yaml", "config_root: www\n")],
            "error: services/web/service.yaml:1:14: unknown key `config_root` in service.yaml; expected config-root",
        ),
        (
            "host config replacing nothing",
            vec![HOST, WEB, ("hosts/h/web/config/other.conf", "x")],
            "error: hosts/h/web/config/other.conf: host config file replaces nothing: services/web/config/other.conf does not exist",
        ),
        (
            "two sources claiming one path",
            vec![
                ("hosts/h/host.yaml", "host: h\nservices: [web, web2]\n"),
                WEB,
                ("services/web2/quadlet/web.container", "[Container]\n"),
            ],
            "/etc/containers/systemd/web.container is declared twice: by services/web/quadlet/web.container and by services/web2/quadlet/web.container",
        ),
        (
            "a fragment and a service claiming one unit",
            vec![
                ("hosts/h/host.yaml", "host: h\nservices: [web]\nbutane: [units]\n"),
                WEB,
                ("services/web/systemd/job.service", "[Service]\nExecStart=/bin/true\n"),
                (
                    "butane/units.bu",
                    "variant: fcos\nversion: 1.6.0\nsystemd:\n  units:\n    - name: job.service\n      contents: \"[Service]\\n\"\n",
                ),
            ],
            "unit job.service is declared twice: by butane/units.bu ($.systemd.units.0) and by services/web/systemd/job.service",
        ),
        (
            "an invalid fragment",
            vec![
                ("hosts/h/host.yaml", "host: h\nservices: [web]\nbutane: [bad]\n"),
                WEB,
                ("butane/bad.bu", "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: etc/x\n"),
            ],
            "error: butane/bad.bu:5:13: path not absolute (at $.storage.files.0.path)",
        ),
        ("unknown host", vec![HOST, WEB], ""),
    ];
    for (label, files, want) in cases {
        let dir = common::repo(&files);
        let root = tempfile::tempdir().unwrap();
        let out = if label == "unknown host" {
            common::bin()
                .args(["plan", "--source-repo"])
                .arg(dir.path())
                .args(["--host", "nothere", "--root"])
                .arg(root.path())
                .output()
                .unwrap()
        } else {
            plan(dir.path(), root.path(), &[])
        };
        assert_eq!(out.status.code(), Some(65), "case {label}: {}", stderr(&out));
        let want =
            if label == "unknown host" { "error: hosts: no host `nothere` in hosts/ (known hosts: h)" } else { want };
        assert!(stderr(&out).contains(want), "case {label}:\nwant {want}\ngot  {}", stderr(&out));
        assert!(out.stdout.is_empty(), "case {label}: nothing on stdout");
    }
}

#[test]
fn a_source_path_that_is_not_a_directory_exits_64() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = plan(file.path(), root.path(), &[]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a directory"));
}

#[test]
fn exit_code_flag_reports_pending_changes() {
    let dir = common::repo(&[HOST, WEB, WEB_CONF]);
    let root = tempfile::tempdir().unwrap();
    let pending = plan(dir.path(), root.path(), &["--exit-code"]);
    assert_eq!(pending.status.code(), Some(3), "{}", stderr(&pending));
    assert_eq!(plan(dir.path(), root.path(), &[]).status.code(), Some(0), "without the flag");
    for (path, content) in [("etc/containers/systemd/web.container", WEB.1), ("etc/web/site.conf", WEB_CONF.1)] {
        let full = root.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, content).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let converged = plan(dir.path(), root.path(), &["--exit-code"]);
    assert_eq!(converged.status.code(), Some(0), "{}", String::from_utf8_lossy(&converged.stdout));
    assert!(String::from_utf8_lossy(&converged.stdout).contains("No changes."));
}

#[test]
fn json_output_matches_the_published_schema() {
    let dir = common::repo(&[
        HOST,
        WEB,
        WEB_CONF,
        ("hosts/h/web/quadlet/web.container.d/10-port.conf", "[Container]\nPublishPort=8080:80\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan(dir.path(), root.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["schema_version"], 1);
    let paths: Vec<&str> = doc["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/etc/containers/systemd/web.container",
            "/etc/containers/systemd/web.container.d/10-port.conf",
            "/etc/web/site.conf"
        ]
    );
    assert_eq!(doc["objects"][0]["unit"], "web.service");
    assert_eq!(doc["objects"][1]["origin"]["file"], "hosts/h/web/quadlet/web.container.d/10-port.conf");
    assert_eq!(doc["summary"]["create"], 3);
    assert_eq!(doc["changes_pending"], true);
}

#[test]
fn content_not_readable_by_others_is_never_printed() {
    let cfg = common::repo(&[(
        "secret.bu",
        "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/app/token\n      mode: 0600\n      overwrite: true\n      contents:\n        inline: NEW-SECRET-VALUE\n",
    )]);
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/app")).unwrap();
    fs::write(root.path().join("etc/app/token"), "OLD-SECRET-VALUE").unwrap();
    fs::set_permissions(root.path().join("etc/app/token"), fs::Permissions::from_mode(0o600)).unwrap();
    for format in ["human", "json"] {
        let out = common::bin()
            .args(["plan", "--config"])
            .arg(cfg.path().join("secret.bu"))
            .args(["--root"])
            .arg(root.path())
            .args(["--format", format, "-v"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("SECRET-VALUE"), "{format} output leaked the secret:\n{text}");
        assert!(text.contains("(sensitive content changed)"), "{format}:\n{text}");
    }
}

#[test]
fn host_layer_overrides_are_reported() {
    let dir = common::repo(&[
        ("hosts/h/host.yaml", "host: h\nservices: [web]\nbutane: [base]\n"),
        (
            "hosts/h/host.bu",
            "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: host motd\n",
        ),
        (
            "butane/base.bu",
            "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: fleet motd\n",
        ),
        WEB,
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan(dir.path(), root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "plan without --exit-code succeeds: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("note: /etc/motd from butane/base.bu at $.storage.files.0 is replaced by hosts/h/host.bu at $.storage.files.0"), "{text}");
    assert!(text.contains("from hosts/h/host.bu at $.storage.files.0"), "{text}");
}

#[test]
fn a_changed_config_file_restarts_its_services_workload_with_the_cause() {
    let network = ("services/web/quadlet/web.network", "[Network]\n");
    let dir = common::repo(&[HOST, WEB, WEB_CONF, network]);
    let root = tempfile::tempdir().unwrap();
    let applied = common::bin()
        .args(["apply", "--source-repo"])
        .arg(dir.path())
        .args(["--host", "h", "--root"])
        .arg(root.path())
        .arg("--offline")
        .output()
        .unwrap();
    assert_eq!(applied.status.code(), Some(0), "{}", String::from_utf8_lossy(&applied.stdout));
    fs::write(dir.path().join("services/web/config/site.conf"), "listen 8080;\n").unwrap();
    let out = plan(dir.path(), root.path(), &["--format", "json", "--offline"]);
    assert_eq!(out.status.code(), Some(0), "plan without --exit-code succeeds: {}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = doc["systemd"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "only the container restarts, not the network: {actions:?}");
    assert_eq!(actions[0]["verb"], "restart");
    assert_eq!(actions[0]["unit"], "web.service");
    assert_eq!(actions[0]["cause"], "services/web/config/site.conf changed");
    assert_eq!(doc["systemd"]["daemon_reload"], false);
}
