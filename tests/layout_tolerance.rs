//! A layout that real repositories fit (issue 10): files outside the layout are ignored (noted
//! under `-v`), unknown folders stay errors with a suggestion, editor leftovers and what git
//! ignores are never deployed, `host.bu` reads local files from `hosts/<h>/files/`, advice fits
//! the object, unknown service names get "did you mean" without follow-up errors, and an apply
//! from a git work tree records its HEAD commit and whether the tree was dirty.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const HOST: (&str, &str) = ("hosts/h/host.yaml", "host: h\nservices: [web]\n");
const WEB: (&str, &str) = ("services/web/quadlet/web.container", "[Container]\nImage=docker.io/library/nginx:1.27\n");
const WEB_CONF: (&str, &str) = ("services/web/config/site.conf", "listen 80;\n");

fn run(args: &[&str], repo: &Path, root: &Path, extra: &[&str]) -> Output {
    common::bin()
        .args(args)
        .arg("--source-repo")
        .arg(repo)
        .args(["--host", "h", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap()
}

fn plan(repo: &Path, root: &Path, extra: &[&str]) -> Output {
    run(&["plan"], repo, root, extra)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The paths a JSON plan lists, sorted.
fn planned_paths(repo: &Path) -> Vec<String> {
    let root = tempfile::tempdir().unwrap();
    let out = plan(repo, root.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut paths: Vec<String> =
        doc["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string()).collect();
    paths.sort();
    paths
}

/// Runs git in `dir` with a fixed identity and no user or system configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn has_git(test: &str) -> bool {
    let found = Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        common::skip(test, "git is not installed");
    }
    found
}

#[test]
fn files_outside_the_layout_are_ignored_with_a_note_under_verbose() {
    let dir = common::repo(&[
        HOST,
        WEB,
        WEB_CONF,
        ("README.md", "# my homelab\n"),
        ("LICENSE", "MIT\n"),
        ("Makefile", "all:\n\tcore-ops plan\n"),
        ("renovate.json", "{}\n"),
        (".github/workflows/ci.yml", "on: push\n"),
        ("docs/setup.md", "how to\n"),
        ("hosts/h/README.md", "the host\n"),
        ("services/web/README.md", "the web service\n"),
    ]);
    assert_eq!(planned_paths(dir.path()), ["/etc/containers/systemd/web.container", "/etc/web/site.conf"]);

    let root = tempfile::tempdir().unwrap();
    let quiet = plan(dir.path(), root.path(), &[]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "no note without -v");

    let verbose = plan(dir.path(), root.path(), &["-v"]);
    assert_eq!(verbose.status.code(), Some(0), "{}", stderr(&verbose));
    let text = stderr(&verbose);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "note: LICENSE: not part of the layout; ignored",
            "note: Makefile: not part of the layout; ignored",
            "note: README.md: not part of the layout; ignored",
            "note: docs: not part of the layout; ignored",
            "note: hosts/h/README.md: not part of the layout; ignored",
            "note: renovate.json: not part of the layout; ignored",
            "note: services/web/README.md: not part of the layout; ignored",
        ],
        "one note per ignored entry, by path; `.github` is hidden like every `.` name"
    );
}

#[test]
fn unknown_folders_in_host_and_service_folders_stay_errors_with_a_suggestion() {
    type Case = (&'static str, Vec<(&'static str, &'static str)>, &'static str);
    let cases: [Case; 3] = [
        (
            "service folder",
            vec![HOST, WEB, ("services/web/confg/site.conf", "x")],
            "error: services/web/confg: unknown folder in a service folder; expected quadlet/, systemd/ or config/; did you mean `config/`?",
        ),
        (
            "host overlay",
            vec![HOST, WEB, WEB_CONF, ("hosts/h/web/confg/site.conf", "x")],
            "error: hosts/h/web/confg: unknown folder in a host overlay; expected quadlet/, systemd/ or config/; did you mean `config/`?",
        ),
        (
            "a near miss of a layout file",
            vec![HOST, WEB, ("services/web/service.yml", "config-root: www\n")],
            "error: services/web/service.yml: not part of the layout; did you mean `service.yaml`?",
        ),
    ];
    for (label, files, want) in cases {
        let dir = common::repo(&files);
        let root = tempfile::tempdir().unwrap();
        let out = plan(dir.path(), root.path(), &[]);
        assert_eq!(out.status.code(), Some(65), "case {label}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().collect::<Vec<_>>(), [want], "case {label}");
    }
}

#[test]
fn editor_and_backup_files_are_never_deployed() {
    let dir = common::repo(&[
        HOST,
        WEB,
        WEB_CONF,
        ("services/web/config/site.conf~", "old\n"),
        ("services/web/config/.#site.conf", "root@host.1234:1700000000"),
        ("services/web/config/.site.conf.swp", "swap"),
        ("services/web/config/site.conf.swp", "swap"),
        ("services/web/config/#site.conf#", "autosave"),
        ("services/web/quadlet/web.container~", "[Container]\n"),
        ("hosts/h/host.yaml~", "host: h\n"),
    ]);
    assert_eq!(planned_paths(dir.path()), ["/etc/containers/systemd/web.container", "/etc/web/site.conf"]);
}

#[test]
fn a_git_work_tree_honours_its_gitignore() {
    if !has_git("a_git_work_tree_honours_its_gitignore") {
        return;
    }
    let dir = common::repo(&[
        HOST,
        WEB,
        WEB_CONF,
        (".gitignore", "*.local\nscratch/\n"),
        ("services/web/config/site.conf.local", "a secret\n"),
        ("services/web/config/forced.local", "tracked although ignored\n"),
        ("hosts/h/scratch/notes.txt", "not an overlay\n"),
    ]);
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["add", "-f", "services/web/config/forced.local"]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    assert_eq!(
        planned_paths(dir.path()),
        ["/etc/containers/systemd/web.container", "/etc/web/forced.local", "/etc/web/site.conf"],
        "an ignored file is read only when git tracks it"
    );
}

#[test]
fn host_bu_reads_local_files_from_the_hosts_files_folder() {
    let dir = common::repo(&[
        HOST,
        WEB,
        (
            "hosts/h/host.bu",
            "variant: fcos\nversion: 1.6.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [core.pub]\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        local: motd\n",
        ),
        ("hosts/h/files/core.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey core@laptop\n"),
        ("hosts/h/files/motd", "welcome to h\n"),
    ]);
    let out = common::bin()
        .args(["render-ignition", "--source-repo"])
        .arg(dir.path())
        .args(["--host", "h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["passwd"]["users"][0]["sshAuthorizedKeys"],
        serde_json::json!(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey core@laptop"])
    );
    let motd = config["storage"]["files"].as_array().unwrap().iter().find(|f| f["path"] == "/etc/motd").unwrap();
    let source = motd["contents"]["source"].as_str().unwrap();
    let (bytes, _) = common::decode_data_url(source, motd["contents"]["compression"].as_str()).unwrap();
    assert_eq!(bytes, b"welcome to h\n");
}

#[test]
fn a_host_only_config_file_is_refused_with_a_pointer_to_host_bu() {
    let dir = common::repo(&[HOST, WEB, WEB_CONF, ("hosts/h/web/config/extra.conf", "x")]);
    let root = tempfile::tempdir().unwrap();
    let out = plan(dir.path(), root.path(), &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        [
            "error: hosts/h/web/config/extra.conf: host config file replaces nothing: services/web/config/extra.conf does not exist; a file for this host alone goes in hosts/h/host.bu as a storage.files entry (`contents.local` reads hosts/h/files/)"
        ]
    );
}

#[test]
fn advice_for_an_unowned_conflict_fits_the_object() {
    let dir = common::repo(&[
        ("hosts/h/host.yaml", "host: h\nservices: [web]\nbutane: [motd]\n"),
        WEB,
        WEB_CONF,
        (
            "butane/motd.bu",
            "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: fleet motd\n",
        ),
    ]);
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/web")).unwrap();
    fs::write(root.path().join("etc/web/site.conf"), "listen 8080;\n").unwrap();
    fs::write(root.path().join("etc/motd"), "hand-written\n").unwrap();
    let out = plan(dir.path(), root.path(), &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = |path: &str| {
        let objects = doc["objects"].as_array().unwrap();
        let o = objects.iter().find(|o| o["path"] == path).unwrap();
        assert_eq!(o["action"], "blocked", "{o}");
        o["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(
        reason("/etc/web/site.conf"),
        "/etc/web/site.conf exists, differs from the desired state and was not written by CoreOps; run `apply --adopt` to take it over",
        "a config/ file has no `overwrite` field"
    );
    assert_eq!(
        reason("/etc/motd"),
        "/etc/motd exists, differs from the desired state and was not written by CoreOps; set `overwrite: true` on it or run `apply --adopt` to take it over",
        "a Butane storage entry has one"
    );
}

#[test]
fn unknown_service_names_get_a_suggestion_and_no_follow_up_errors() {
    let dir = common::repo(&[
        ("hosts/h/host.yaml", "host: h\nservices: [jelyfin]\n"),
        ("services/jellyfin/quadlet/jellyfin.container", "[Container]\nImage=docker.io/jellyfin/jellyfin:10.10\n"),
        ("services/jellyfin/config/app.conf", "x\n"),
        ("hosts/h/jellyfin/config/app.conf", "host\n"),
        ("hosts/h/jelyfin/config/app.conf", "host\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan(dir.path(), root.path(), &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        [
            "error: hosts/h/host.yaml:2:12: unknown service `jelyfin`: there is no services/jelyfin/; did you mean `jellyfin`?"
        ],
        "the overlays of the misspelt name and of the meant one are not second mistakes"
    );
}

#[test]
fn a_drop_in_folder_for_a_unit_refused_for_its_extension_is_no_second_mistake() {
    let dir = common::repo(&[
        HOST,
        ("services/web/quadlet/web.containr", "[Container]\nImage=docker.io/library/nginx:1.27\n"),
        ("services/web/quadlet/web.container.d/10-limits.conf", "[Container]\n"),
        ("hosts/h/web/quadlet/web.container.d/20-host.conf", "[Container]\n"),
        ("services/web/quadlet/api.container.d/10.conf", "[Container]\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan(dir.path(), root.path(), &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        [
            "error: services/web/quadlet/web.containr: wrong extension for services/web/quadlet/: Quadlet files end in .container, .volume, .network, .pod, .kube, .image, .build",
            "error: services/web/quadlet/api.container.d: drop-in folder without its unit: there is no services/web/quadlet/api.container",
        ],
        "web.container.d in the service and in the host overlay follow from web.containr; api.container.d is its own mistake"
    );
}

#[test]
fn an_apply_from_a_git_work_tree_records_head_commit_and_dirty_flag() {
    if !has_git("an_apply_from_a_git_work_tree_records_head_commit_and_dirty_flag") {
        return;
    }
    let dir = common::repo(&[HOST, WEB, WEB_CONF, (".gitignore", "*.local\n")]);
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    let root = tempfile::tempdir().unwrap();
    let recorded_source = || {
        let out = run(&["apply"], dir.path(), root.path(), &["--offline"]);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
        let state: Value =
            serde_json::from_slice(&fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap()).unwrap();
        state["source"].clone()
    };

    let first = git(dir.path(), &["rev-parse", "HEAD"]);
    let source = recorded_source();
    assert_eq!(source["commit"], first.as_str(), "{source}");
    assert_eq!(source["reference"], "refs/heads/main", "{source}");
    assert_eq!(source.get("dirty"), None, "a clean tree: {source}");

    fs::write(dir.path().join("services/web/config/notes.local"), "ignored, so still clean\n").unwrap();
    assert_eq!(recorded_source().get("dirty"), None, "an ignored file leaves the tree clean");

    fs::write(dir.path().join("services/web/config/site.conf"), "listen 8080;\n").unwrap();
    let source = recorded_source();
    assert_eq!(source["commit"], first.as_str(), "{source}");
    assert_eq!(source["dirty"], true, "an uncommitted edit: {source}");

    git(dir.path(), &["commit", "-q", "-am", "port 8080"]);
    let second = git(dir.path(), &["rev-parse", "HEAD"]);
    let source = recorded_source();
    assert_eq!(source["commit"], second.as_str(), "the same content, now committed: {source}");
    assert_eq!(source.get("dirty"), None, "{source}");

    fs::write(dir.path().join("services/web/config/new.conf"), "untracked\n").unwrap();
    assert_eq!(recorded_source()["dirty"], true, "an untracked file that is deployed makes the tree dirty");
}
