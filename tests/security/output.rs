//! Attacks through what CoreOps prints and through how it spells paths.
//!
//! - `[Install] Alias=/precious.service` (and any other `[Install]` value that is not a unit
//!   name, or an alias of another type) must not become a link over a unit file the
//!   administrator owns: `plan` and `apply` refuse it as `systemctl enable` does, naming the
//!   value, the unit and where it was declared, and nothing is written.
//! - A path spelled with an empty (`//`), `.` or `..` component or a trailing `/` must not look
//!   absent to the planner while the writer resolves it onto an existing file: the observer and
//!   every writer share one normalisation, and such a path is refused by both.
//! - A file name in a source repository carrying a newline and terminal escape codes must not
//!   forge plan lines nor reach the terminal raw, in any human output (`plan`, `apply`,
//!   `status`, `explain`, `rollback`) or error message.
//! - A `user.id`/`group.id` outside 0…4294967294 (which Ignition accepts and silently turns
//!   into root) is refused with a located error instead of writing root-owned files that never
//!   converge; `render-ignition` still accepts it, as Butane does.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use super::{Victim, common, run_with_config, text};

/// The administrator's own unit file, which CoreOps never wrote.
const PRECIOUS: &str = "[Service]\nExecStart=/usr/bin/admins-own\n";

/// A fresh root holding the administrator's `/etc/systemd/system/precious.service`.
fn root_with_precious_unit() -> tempfile::TempDir {
    let root = common::conformance_root();
    let units = root.path().join("etc/systemd/system");
    fs::create_dir_all(&units).unwrap();
    fs::write(units.join("precious.service"), PRECIOUS).unwrap();
    root
}

/// Asserts that the administrator's unit is still the regular file it was.
fn assert_precious_untouched(root: &Path, attack: &str) {
    let path = root.join("etc/systemd/system/precious.service");
    let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{attack}: precious.service is gone: {e}"));
    assert!(meta.file_type().is_file(), "{attack}: precious.service was replaced by a {:?}", meta.file_type());
    assert_eq!(fs::read_to_string(&path).unwrap(), PRECIOUS, "{attack}: precious.service changed");
}

/// A Butane config with one enabled unit `web.service` whose `[Install]` section is `install`.
fn enabled_web_unit(install: &str) -> String {
    format!(
        "variant: fcos\nversion: 1.6.0\nsystemd:\n  units:\n    - name: web.service\n      enabled: true\n      contents: |\n        [Service]\n        ExecStart=/bin/true\n        [Install]\n        {install}\n"
    )
}

#[test]
fn an_alias_with_a_slash_never_replaces_an_unowned_unit() {
    let attack = "Alias=/precious.service";
    let victim = Victim::new();
    let root = root_with_precious_unit();
    let config = enabled_web_unit("Alias=/precious.service");
    let plan = run_with_config(&["plan"], &config, root.path());
    let all = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{attack}: plan must refuse the alias\n{all}");
    for needle in ["web.service", "Alias=/precious.service", "$.systemd.units.0", "not a valid alias"] {
        assert!(all.contains(needle), "{attack}: the refusal must name `{needle}`\n{all}");
    }
    assert!(!all.contains("create   /etc/systemd/system//precious.service"), "{attack}: planned anyway\n{all}");
    for run in 1..=2 {
        let apply = run_with_config(&["apply"], &config, root.path());
        let all = text(&apply);
        assert_eq!(apply.status.code(), Some(1), "{attack}: apply {run} must refuse the alias\n{all}");
        assert!(all.contains("Alias=/precious.service"), "{attack}: apply {run} must say why\n{all}");
        assert_precious_untouched(root.path(), attack);
        assert!(
            !root.path().join("etc/systemd/system/web.service").exists(),
            "{attack}: apply {run} wrote part of a config it refused"
        );
    }
    victim.assert_untouched(attack);
}

#[test]
fn install_references_are_checked_as_systemctl_enable_checks_them() {
    let cases = [
        ("Alias=../precious.service", "not a valid alias"),
        ("Alias=sub/precious.service", "not a valid alias"),
        ("Alias=/etc/systemd/system/precious.service", "not a valid alias"),
        ("Alias=precious.socket", "cannot alias web.service as precious.socket"),
        ("Alias=precious@.service", "cannot alias web.service as precious@.service"),
        ("Alias=multi-user.target.wants/other.service", "cannot alias web.service as"),
        ("WantedBy=/etc.target", "\"/etc.target\" is not a valid unit name"),
        ("WantedBy=../../x.target", "\"../../x.target\" is not a valid unit name"),
        ("RequiredBy=a/b.target", "\"a/b.target\" is not a valid unit name"),
        ("UpheldBy=x/y.target", "\"x/y.target\" is not a valid unit name"),
        ("Also=/x.service", "\"/x.service\" is not a valid unit name"),
        ("Also=../x.service", "\"../x.service\" is not a valid unit name"),
    ];
    for (install, want) in cases {
        let root = common::conformance_root();
        let config = enabled_web_unit(install);
        let plan = run_with_config(&["plan"], &config, root.path());
        let all = text(&plan);
        assert_eq!(plan.status.code(), Some(1), "{install}: plan must refuse it\n{all}");
        for needle in [install, want, "$.systemd.units.0"] {
            assert!(all.contains(needle), "{install}: the refusal must say `{needle}`\n{all}");
        }
        let apply = run_with_config(&["apply"], &config, root.path());
        assert_eq!(apply.status.code(), Some(1), "{install}: apply must refuse it\n{}", text(&apply));
        assert!(!root.path().join("etc/systemd").exists(), "{install}: apply wrote part of a refused config");
    }
}

#[test]
fn valid_install_references_still_enable_and_a_self_alias_is_ignored() {
    let install = "WantedBy=multi-user.target\n        Alias=web-alias.service\n        Alias=web.service\n        Alias=default.target.wants/web.service";
    let root = common::conformance_root();
    let apply = run_with_config(&["apply"], &enabled_web_unit(install), root.path());
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let units = root.path().join("etc/systemd/system");
    for link in ["multi-user.target.wants/web.service", "web-alias.service", "default.target.wants/web.service"] {
        let target = fs::read_link(units.join(link)).unwrap_or_else(|e| panic!("{link}: {e}\n{}", text(&apply)));
        assert_eq!(target, Path::new("/etc/systemd/system/web.service"), "{link}");
    }
    assert!(fs::symlink_metadata(units.join("web.service")).unwrap().is_file(), "a self-alias is no link");
}

#[test]
fn a_unit_name_with_a_slash_is_seen_where_it_would_be_written() {
    let attack = "unit name /precious.service";
    let victim = Victim::new();
    let root = root_with_precious_unit();
    let config = "variant: fcos\nversion: 1.6.0\nsystemd:\n  units:\n    - name: /precious.service\n      contents: |\n        [Service]\n        ExecStart=/usr/bin/attacker\n";
    let plan = run_with_config(&["plan"], config, root.path());
    let all = text(&plan);
    assert!(!all.contains("+ create"), "{attack}: planned as a new file\n{all}");
    assert!(all.contains("! blocked  /etc/systemd/system//precious.service"), "{attack}: must be blocked\n{all}");
    assert!(all.contains("not a clean absolute path"), "{attack}: the plan must say why\n{all}");
    let apply = run_with_config(&["apply"], config, root.path());
    assert_ne!(apply.status.code(), Some(0), "{attack}: apply must not succeed\n{}", text(&apply));
    assert_precious_untouched(root.path(), attack);
    victim.assert_untouched(attack);
}

#[test]
fn the_observer_and_every_writer_refuse_the_same_unclean_spellings() {
    use core_ops::host::root::Root;
    use core_ops::model::plan::Observed;
    let root_dir = root_with_precious_unit();
    let root = Root::open(root_dir.path()).unwrap();
    let spellings = [
        "/etc/systemd/system//precious.service",
        "/etc/systemd/system/./precious.service",
        "/etc/systemd/system/x/../precious.service",
        "/etc//systemd/system/precious.service",
        "/etc/systemd/system/precious.service/",
        "etc/systemd/system/precious.service",
    ];
    for path in spellings {
        let seen = root.observe(path);
        assert!(
            matches!(&seen, Observed::Unsafe(why) if why.contains("not a clean absolute path")),
            "{path:?}: the observer must refuse it, not see {seen:?}"
        );
        let dirs = core_ops::host::fs::OpenDirs::new(&root);
        let writes: [(&str, Result<(), String>); 9] = [
            ("stage_file", root.stage_file(path, b"attacker\n", 0o644, 0, 0).map(drop).map_err(|e| e.to_string())),
            ("stage_symlink", root.stage_symlink(path, "/dev/null", 0, 0).map(drop).map_err(|e| e.to_string())),
            (
                "stage_file_in",
                root.stage_file_in(&dirs, path, b"attacker\n", 0o644, 0, 0).map(drop).map_err(|e| e.to_string()),
            ),
            (
                "stage_symlink_in",
                root.stage_symlink_in(&dirs, path, "/dev/null", 0, 0).map(drop).map_err(|e| e.to_string()),
            ),
            ("OpenDirs::get", dirs.get(path).map(drop).map_err(|e| e.to_string())),
            ("make_dir", root.make_dir(&dirs, path, None, None, None, true).map_err(|e| e.to_string())),
            ("set_attrs", root.set_attrs(path, Some(0o777), None, None).map_err(|e| e.to_string())),
            ("remove", root.remove(path).map_err(|e| e.to_string())),
            ("sync_dir_of", root.sync_dir_of(path).map_err(|e| e.to_string())),
        ];
        for (writer, result) in writes {
            let err = result.err().unwrap_or_else(|| panic!("{path:?}: {writer} accepted a path the observer refuses"));
            assert!(err.contains("not a clean absolute path"), "{path:?}: {writer} must say why: {err}");
        }
        assert_precious_untouched(root_dir.path(), path);
        let mode = fs::metadata(root_dir.path().join("etc/systemd/system/precious.service")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o644, "{path:?}: the mode changed");
    }
}

/// A file name that forges a plan line and clears the terminal line after it.
const FORGED_NAME: &str = "x\n  - delete   FAKE (file)\n\x1b[2K";

/// Runs `core-ops ARGS`.
fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    common::bin().args(args).output().unwrap()
}

/// Asserts that nothing the name carries reached `out` raw: no control character but the
/// newlines that end lines, and no line of its own that the name forged.
fn assert_no_raw_controls(out: &Output, what: &str) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let raw: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
        assert!(raw.is_empty(), "{what}: raw control characters {raw:?} on {stream}:\n{}", text.escape_debug());
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("- delete   FAKE")),
            "{what}: a forged line on {stream}:\n{text}"
        );
    }
}

#[test]
fn a_file_name_cannot_forge_plan_lines_or_send_terminal_codes() {
    let name = format!("services/web/config/{FORGED_NAME}");
    let dir = common::repo(&[("hosts/h/host.yaml", "host: h\nservices: [web]\n"), (&name, "one\n")]);
    let root = common::conformance_root();
    let root_dir = root.path().as_os_str().to_owned();
    let input = |command: &str| -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![command.into(), "--source-repo".into(), dir.path().into()];
        args.extend(["--host", "h", "--root"].map(OsString::from));
        args.extend([root_dir.clone(), "--offline".into()]);
        args
    };
    let plan = run(&input("plan"));
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert_no_raw_controls(&plan, "plan");
    assert!(
        text(&plan).contains("/etc/web/x\\n  - delete   FAKE (file)\\n\\x1b[2K"),
        "shown escaped:\n{}",
        text(&plan)
    );
    let mut verbose = input("plan");
    verbose.push("-v".into());
    assert_no_raw_controls(&run(&verbose), "plan -v");
    let apply = run(&input("apply"));
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert_no_raw_controls(&apply, "apply");
    let written = format!("/etc/web/{FORGED_NAME}");
    assert!(root.path().join(&written[1..]).is_file(), "the file itself is written under its real name");

    let status = run(&[OsStr::new("status"), OsStr::new("-v"), OsStr::new("--root"), &root_dir]);
    assert_no_raw_controls(&status, "status -v");
    let explain = run(&[OsStr::new("explain"), OsStr::new(&written), OsStr::new("--root"), &root_dir]);
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain));
    assert_no_raw_controls(&explain, "explain");
    let unknown = "nowhere.service\n  - delete   FAKE (file)\n\x1b[2K";
    let refused = run(&[OsStr::new("explain"), OsStr::new(unknown), OsStr::new("--root"), &root_dir]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert_no_raw_controls(&refused, "explain's error");

    fs::write(dir.path().join(&name), "two\n").unwrap();
    let second = run(&input("apply"));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_no_raw_controls(&second, "apply of an update");
    let rollback = [OsStr::new("rollback"), OsStr::new("--root"), &root_dir, OsStr::new("--offline")];
    let back = run(&rollback);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    assert_no_raw_controls(&back, "rollback");
}

#[test]
fn owner_ids_outside_the_id_range_are_refused_where_they_are_declared() {
    for id in ["-1", "4294967295", "4294967296"] {
        for (entry, owner) in [("files", "user"), ("directories", "group"), ("links", "user")] {
            let case = format!("{entry} {owner}.id {id}");
            let body = match entry {
                "links" => "target: /etc/hostname",
                "files" => "contents: {inline: x}",
                _ => "mode: 0755",
            };
            let config = format!(
                "variant: fcos\nversion: 1.6.0\nstorage:\n  {entry}:\n    - path: /etc/owned\n      {body}\n      {owner}:\n        id: {id}\n"
            );
            let root = common::conformance_root();
            let plan = run_with_config(&["plan"], &config, root.path());
            let all = text(&plan);
            assert_eq!(plan.status.code(), Some(1), "{case}: plan must refuse it\n{all}");
            for needle in [format!("$.storage.{entry}.0"), "/etc/owned".into(), format!("{owner} id {id}")] {
                assert!(all.contains(&needle), "{case}: the refusal must say `{needle}`\n{all}");
            }
            let apply = run_with_config(&["apply"], &config, root.path());
            assert_eq!(apply.status.code(), Some(1), "{case}: apply must refuse it, not crash\n{}", text(&apply));
            assert!(!root.path().join("etc/owned").exists(), "{case}: apply wrote /etc/owned anyway");
            let cfg_dir = tempfile::tempdir().unwrap();
            fs::write(cfg_dir.path().join("c.bu"), &config).unwrap();
            let render = common::bin().arg("render-ignition").arg(cfg_dir.path().join("c.bu")).output().unwrap();
            assert_eq!(
                render.status.code(),
                Some(0),
                "{case}: Butane accepts it, so render-ignition does\n{}",
                text(&render)
            );
        }
    }
    let root = common::conformance_root();
    let highest = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/owned\n      user:\n        id: 4294967294\n";
    let plan = run_with_config(&["plan"], highest, root.path());
    assert_eq!(plan.status.code(), Some(0), "the highest valid id is accepted\n{}", text(&plan));
}
