//! Strictness and the checks a change passes before a host sees it (issue 10, item 7):
//! `plan` and `apply` with `--strict`; the Quadlet key table, with and without Podman's
//! generator, agreeing with the real generator where the testbed has one; the changed units
//! verified with `systemd-analyze`; no follow-up error reported as a second mistake.
//!
//! Expected lines come from outside the code under test: Butane's own messages, the wording
//! the issue asks for, and `systemd-analyze` and Podman's `quadlet` run directly as oracles.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

/// Where `.ci/testbed.sh` unpacks the real-systemd testbed: a Debian trixie with Podman.
const TESTBED_ROOTFS: &str = "/var/cache/core-ops-testbed/rootfs-trixie";

/// The note `plan` prints once when Podman's generator is not installed.
const QUADLET_NOTE: &str = "  note: Quadlet files were not checked with Podman's quadlet generator (not installed \
                            here); only their keys were checked, against the built-in table of Podman 5's Quadlet keys";

/// The note of a plan whose changed units `systemd-analyze` could not verify.
const ANALYZE_NOTE: &str = "  note: the changed units were not verified with systemd-analyze (not installed here)";

/// Runs `core-ops ARGS` in `dir` (so that a config is named `c.bu` in messages) with the given
/// environment; QUADLET_BIN and SYSTEMD_ANALYZE_BIN are empty unless set (neither tool), so each
/// test says which tools it uses.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::bin();
    cmd.current_dir(dir).args(args).env("QUADLET_BIN", "").env("SYSTEMD_ANALYZE_BIN", "").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// [`run_in`] the current directory.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_in(Path::new("."), args, env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    text(bytes).lines().map(str::to_string).collect()
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A config file `c.bu` and an empty root next to it.
/// Writes `content` to `path` as a script anyone may run.
fn write_executable(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, content);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The names in the run directory of `root`.
fn run_dir_entries(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("run/core-ops"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A config of one unit, `web.service`, and the storage entries `files` (YAML lines).
fn web_unit_and_files(files: &str) -> String {
    format!("{}storage:\n  files:\n{files}", units_config(&[("web.service", "[Service]\nExecStart=/bin/true\n")]))
}

fn config_and_root(body: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.bu");
    write(&config, body);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    (dir, config, root)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file below `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

// ---- --strict ----

/// Butane's warnings for `mode: 644` (decimal 644 is 0o1204), in the `error: FILE:L:C: message
/// (at PATH)` form of source issues. Messages as the reference Butane prints them.
const DECIMAL_MODE: &str =
    "storage:\n  files:\n    - path: /etc/motd\n      mode: 644\n      contents:\n        inline: hi\n";
const DECIMAL_MODE_WARNINGS: [&str; 2] = [
    "c.bu:6:13: unreasonable mode would be reasonable if specified in octal; remember to add a leading zero (at $.storage.files.0.mode)",
    "c.bu:6:13: setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0 (at $.storage.files.0.mode)",
];

/// `contents:` with its `inline:` not indented below it: Butane reads `inline` as a key of the
/// file entry, which it does not use.
const MISINDENTED: &str = "storage:\n  files:\n    - path: /etc/motd\n      contents:\n      inline: hi\n";

#[test]
fn strict_turns_butane_warnings_into_errors_that_stop_plan_and_apply() {
    for (body, warnings) in [
        (DECIMAL_MODE, DECIMAL_MODE_WARNINGS.to_vec()),
        (
            MISINDENTED,
            vec![
                "c.bu:6:15: context tree does not match content tree at $.storage.files.0.contents. Line and column reporting may be inconsistent. Unused keys may not be reported (at $.storage.files.0.contents)",
                "c.bu:7:7: unused key inline (at $.storage.files.0.inline)",
            ],
        ),
    ] {
        let (dir, _config, root) = config_and_root(&format!("{HEAD}{body}"));
        for command in ["plan", "apply"] {
            let args = [command, "--config", "c.bu", "--root", s(&root), "--offline"];
            let lenient = run_in(dir.path(), &args, &[]);
            let want: Vec<String> = warnings.iter().map(|w| format!("warning: {w}")).collect();
            assert_eq!(lines(&lenient.stderr), want, "{command} without --strict: warnings only");
            assert_eq!(lenient.status.code(), Some(0), "{command} without --strict: {}", text(&lenient.stdout));
            std::fs::remove_dir_all(&root).unwrap();
            std::fs::create_dir(&root).unwrap();

            let strict = run_in(dir.path(), &[&args[..], &["--strict"]].concat(), &[]);
            let mut want: Vec<String> = warnings.iter().map(|w| format!("error: {w}")).collect();
            want.push("Config produced warnings and --strict was specified".into());
            assert_eq!(lines(&strict.stderr), want, "{command} --strict: the warnings are errors");
            assert_eq!(strict.status.code(), Some(1), "{command} --strict");
            assert_eq!(text(&strict.stdout), "", "{command} --strict: no plan is shown");
            assert_eq!(files_under(&root), Vec::<String>::new(), "{command} --strict wrote nothing");
        }
    }
}

#[test]
fn strict_covers_the_butane_fragments_and_host_bu_of_a_source_repository() {
    let repo = common::repo(&[
        ("hosts/nas/host.yaml", "host: nas\nservices: []\nbutane: [motd]\n"),
        ("hosts/nas/host.bu", &format!("{HEAD}{MISINDENTED}").replace("/etc/motd", "/etc/issue")),
        ("butane/motd.bu", &format!("{HEAD}{DECIMAL_MODE}")),
    ]);
    let root = tempfile::tempdir().unwrap();
    let args = ["plan", "--source-repo", s(repo.path()), "--host", "nas", "--root", s(root.path()), "--offline"];
    let lenient = run(&args, &[]);
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient.stderr));
    let warnings = lines(&lenient.stderr);
    let want_files =
        ["butane/motd.bu:6:13: ", "butane/motd.bu:6:13: ", "hosts/nas/host.bu:6:15: ", "hosts/nas/host.bu:7:7: "];
    assert_eq!(warnings.len(), want_files.len(), "{warnings:#?}");
    for (line, file) in warnings.iter().zip(want_files) {
        assert!(line.starts_with(&format!("warning: {file}")), "{line:?} is a warning about {file}");
    }

    let strict = run(&[&args[..], &["--strict"]].concat(), &[]);
    assert_eq!(strict.status.code(), Some(1));
    let errors = lines(&strict.stderr);
    let mut want: Vec<String> = warnings.iter().map(|w| w.replacen("warning: ", "error: ", 1)).collect();
    want.push("Config produced warnings and --strict was specified".into());
    assert_eq!(errors, want);
}

#[test]
fn strict_is_documented_in_the_help_of_plan_and_apply() {
    for command in ["plan", "apply"] {
        let help = text(&run(&[command, "--help"], &[]).stdout);
        assert!(help.contains("--strict"), "{command} --help:\n{help}");
    }
}

// ---- Quadlet: the key table, and the generator ----

fn quadlet_repo(container: &str) -> tempfile::TempDir {
    common::repo(&[
        ("hosts/nas/host.yaml", "host: nas\nservices: [web]\n"),
        ("services/web/quadlet/web.container", container),
    ])
}

fn plan_repo(repo: &Path, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let args =
        [&["plan", "--source-repo", s(repo), "--host", "nas", "--root", s(root), "--offline"][..], extra].concat();
    run(&args, env)
}

/// The plan's lines that report checks (`error:`, `warning:` and `note:` lines).
fn check_lines(out: &Output) -> Vec<String> {
    lines(&out.stdout)
        .into_iter()
        .filter(|l| ["  error: ", "  warning: ", "  note: "].iter().any(|p| l.starts_with(p)))
        .collect()
}

#[test]
fn a_misspelt_quadlet_key_is_named_with_file_line_and_fix_without_podman() {
    let repo = quadlet_repo("[Unit]\nDescription=web\n\n[Container]\nImgae=docker.io/library/caddy:2\n");
    let root = tempfile::tempdir().unwrap();
    let out = plan_repo(repo.path(), root.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1), "plan fails: apply would be refused\n{}", text(&out.stdout));
    assert_eq!(
        check_lines(&out),
        [
            "  error: /etc/containers/systemd/web.container:5: unknown key `Imgae` in [Container]; did you mean `Image`? (from services/web/quadlet/web.container)".to_string(),
            QUADLET_NOTE.to_string(),
        ]
    );

    let apply =
        run(&["apply", "--source-repo", s(repo.path()), "--host", "nas", "--root", s(root.path()), "--offline"], &[]);
    assert_eq!(apply.status.code(), Some(1));
    assert!(
        text(&apply.stdout).contains("  error: /etc/containers/systemd/web.container:5: unknown key `Imgae` in [Container]; did you mean `Image`?"),
        "{}",
        text(&apply.stdout)
    );
    assert!(!root.path().join("etc/containers/systemd/web.container").exists(), "nothing written");
}

#[test]
fn without_the_generator_plan_says_once_that_quadlets_were_not_checked() {
    let repo = common::repo(&[
        ("hosts/nas/host.yaml", "host: nas\nservices: [web]\n"),
        ("services/web/quadlet/web.container", "[Container]\nImage=docker.io/library/caddy:2\nNetwork=web.network\n"),
        ("services/web/quadlet/web.network", "[Network]\nSubnet=10.89.0.0/24\n"),
        ("services/web/quadlet/data.volume", "[Volume]\nVolumeName=data\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan_repo(repo.path(), root.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(check_lines(&out), [QUADLET_NOTE], "one note for three Quadlet files");

    let plain = common::repo(&[("hosts/nas/host.yaml", "host: nas\nservices: []\n")]);
    let out = plan_repo(plain.path(), root.path(), &[], &[]);
    assert_eq!(check_lines(&out), Vec::<String>::new(), "no Quadlet files, no note");
}

#[test]
fn quadlet_drop_ins_are_checked_where_the_mistake_is() {
    let repo = common::repo(&[
        ("hosts/nas/host.yaml", "host: nas\nservices: [web]\n"),
        ("hosts/nas/web/quadlet/web.container.d/10-port.conf", "[Container]\nPublishPorts=8080:80\n"),
        ("services/web/quadlet/web.container", "[Container]\nImage=docker.io/library/caddy:2\n"),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = plan_repo(repo.path(), root.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        check_lines(&out)[0],
        "  error: /etc/containers/systemd/web.container.d/10-port.conf:2: unknown key `PublishPorts` in [Container]; did you mean `PublishPort`? (from hosts/nas/web/quadlet/web.container.d/10-port.conf)"
    );
}

/// Podman's generator in the testbed rootfs, when there is one.
fn testbed_quadlet(test: &str) -> Option<PathBuf> {
    let bin = Path::new(TESTBED_ROOTFS).join("usr/libexec/podman/quadlet");
    let runs =
        bin.is_file() && std::process::Command::new(&bin).arg("-version").output().is_ok_and(|o| o.status.success());
    if !runs {
        common::skip(
            test,
            &format!("no runnable Podman quadlet generator in {TESTBED_ROOTFS} (.ci/testbed.sh makes it)"),
        );
        return None;
    }
    Some(bin)
}

#[test]
fn with_the_real_generator_its_findings_show_once_whatever_the_root() {
    let Some(quadlet) = testbed_quadlet("with_the_real_generator_its_findings_show_once_whatever_the_root") else {
        return;
    };
    let env = [("QUADLET_BIN", quadlet.to_str().unwrap())];
    let root = tempfile::tempdir().unwrap();

    // A mistake the table sees: the generator's message about the same file is not repeated.
    let typo = quadlet_repo("[Container]\nImgae=docker.io/library/caddy:2\n");
    let out = plan_repo(typo.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        check_lines(&out),
        [
            "  error: /etc/containers/systemd/web.container:2: unknown key `Imgae` in [Container]; did you mean `Image`? (from services/web/quadlet/web.container)"
        ]
    );

    // A mistake only the generator sees, in its own words (the oracle: the generator run here).
    let no_image = "[Container]\nExec=sleep 1\n";
    let direct = run_generator(&quadlet, &[("web.container", no_image)]);
    let expected =
        direct.iter().find(|l| l.contains("converting")).expect("the generator rejects a container without an image");
    let expected = expected.split_once("]: ").map_or(expected.as_str(), |(_, m)| m);
    let repo = quadlet_repo(no_image);
    let out = plan_repo(repo.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(check_lines(&out), [format!("  error: quadlet: {expected}")]);

    // Its warnings are warnings: shown, and fatal under --strict.
    let short_name = quadlet_repo("[Container]\nImage=caddy\n");
    let out = plan_repo(short_name.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let warnings = check_lines(&out);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].starts_with("  warning: quadlet: web.container specifies the image \"caddy\""), "{warnings:?}");
    let out = plan_repo(short_name.path(), root.path(), &["--strict"], &env);
    assert_eq!(out.status.code(), Some(1));
}

/// Runs Podman's generator in dry-run over `files` and returns its log lines.
fn run_generator(bin: &Path, files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        write(&dir.path().join(name), content);
    }
    let out = std::process::Command::new(bin).arg("-dryrun").env("QUADLET_UNIT_DIRS", dir.path()).output().unwrap();
    lines(&out.stderr)
}

/// The sections and keys podman-systemd.unit(5) documents, read from the roff source of the
/// testbed's man page: `.SH … units [Section]` opens a section, `.SS \fBKey=\fR` is a key.
fn documented_keys(man: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut roff = String::new();
    libflate::gzip::Decoder::new(man).unwrap().read_to_string(&mut roff).unwrap();
    let mut section = None;
    let mut out = Vec::new();
    for line in roff.lines() {
        if let Some(title) = line.strip_prefix(".SH ") {
            section = title.rsplit_once('[').and_then(|(_, s)| s.strip_suffix(']')).map(str::to_string);
        } else if let (Some(section), Some(key)) = (&section, line.strip_prefix(".SS \\fB")) {
            if let Some((key, _)) = key.split_once("=\\fR") {
                out.push((section.clone(), key.to_string()));
            }
        }
    }
    out
}

/// Whether the real generator accepts `key` in `section` of a minimal valid file.
fn generator_accepts(bin: &Path, section: &str, key: &str) -> bool {
    let (extension, base) = match section {
        "Container" => ("container", "[Container]\nImage=docker.io/library/x\n"),
        "Pod" => ("pod", "[Pod]\n"),
        "Kube" => ("kube", "[Kube]\nYaml=/x.yaml\n"),
        "Network" => ("network", "[Network]\n"),
        "Volume" => ("volume", "[Volume]\n"),
        "Image" => ("image", "[Image]\nImage=docker.io/library/x\n"),
        "Build" => ("build", "[Build]\nImageTag=localhost/x\nFile=/x\n"),
        "Quadlet" => ("container", "[Container]\nImage=docker.io/library/x\n[Quadlet]\n"),
        other => panic!("no minimal file for [{other}]"),
    };
    let text = format!("{base}{key}=1\n");
    let log = run_generator(bin, &[(&format!("t.{extension}"), &text)]);
    !log.iter().any(|l| l.contains(&format!("unsupported key '{key}'")))
}

#[test]
fn the_key_table_agrees_with_the_real_generator() {
    use core_ops::model::quadlet_keys::{self, QUADLET_SECTION_KEYS, TYPES};
    let Some(quadlet) = testbed_quadlet("the_key_table_agrees_with_the_real_generator") else { return };
    let man = Path::new(TESTBED_ROOTFS).join("usr/share/man/man5/podman-systemd.unit.5.gz");
    let Ok(man) = std::fs::read(&man) else {
        common::skip("the_key_table_agrees_with_the_real_generator", "the testbed has no podman-systemd.unit(5)");
        return;
    };
    let documented = documented_keys(&man);
    assert!(documented.len() > 150, "the man page lists the keys: {}", documented.len());
    let table_has = |section: &str, key: &str| {
        if section == "Quadlet" {
            return QUADLET_SECTION_KEYS.contains(&key);
        }
        TYPES.iter().any(|t| t.section == section && t.keys.contains(&key))
    };
    // Every key the installed Podman documents is in the table, and the generator takes it.
    for (section, key) in &documented {
        assert!(table_has(section, key), "[{section}] {key}= is documented by the installed Podman");
        assert!(generator_accepts(&quadlet, section, key), "[{section}] {key}= is accepted by the generator");
    }
    // Every key name known anywhere, in every section the installed generator has: what the
    // generator takes, the table takes (the table may know newer keys than this Podman).
    let mut names: Vec<&str> = TYPES.iter().flat_map(|t| t.keys.iter().copied()).collect();
    names.extend(["Imgae", "image", "PublishPorts", "Volumes", "Bogus"]);
    names.sort_unstable();
    names.dedup();
    let sections = ["Container", "Pod", "Kube", "Network", "Volume", "Image", "Build", "Quadlet"];
    let mut disagreements = Vec::new();
    for section in sections {
        for key in &names {
            if generator_accepts(&quadlet, section, key) && !table_has(section, key) {
                disagreements.push(format!("[{section}] {key}="));
            }
        }
    }
    assert_eq!(disagreements, Vec::<String>::new(), "keys the generator accepts but the table refuses");
    // And the typos: both refuse them.
    for (section, typo) in [("Container", "Imgae"), ("Container", "image"), ("Volume", "Imgae"), ("Pod", "Image")] {
        assert!(!generator_accepts(&quadlet, section, typo), "the generator refuses [{section}] {typo}=");
        let ty = TYPES.iter().find(|t| t.section == section).unwrap();
        assert_eq!(quadlet_keys::accepts(ty, section, typo), Some(false), "the table refuses [{section}] {typo}=");
    }
}

// ---- systemd-analyze ----

fn analyzer(test: &str) -> Option<&'static str> {
    let bin = "/usr/bin/systemd-analyze";
    if !Path::new(bin).is_file() {
        common::skip(test, "systemd-analyze is not installed");
        return None;
    }
    Some(bin)
}

/// A root that holds a system's units: the targets every service needs implicitly
/// (`DefaultDependencies=`), and nothing else, so that a unit missing from the desired state
/// is missing from the system.
fn system_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for target in ["sysinit.target", "basic.target", "shutdown.target"] {
        write(&root.path().join("usr/lib/systemd/system").join(target), "[Unit]\nDescription=a target\n");
    }
    root
}

fn units_config(units: &[(&str, &str)]) -> String {
    let mut s = format!("{HEAD}systemd:\n  units:\n");
    for (name, contents) in units {
        s.push_str(&format!("    - name: {name}\n      contents: {contents:?}\n"));
    }
    s
}

/// `plan --config c.bu` in `dir` (see [`config_and_root`]).
fn plan_config(dir: &Path, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let args = [&["plan", "--config", "c.bu", "--root", s(root), "--offline"][..], extra].concat();
    run_in(dir, &args, env)
}

/// `apply --config c.bu` in `dir`.
fn apply_config(dir: &Path, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let args = [&["apply", "--config", "c.bu", "--root", s(root), "--offline"][..], extra].concat();
    run_in(dir, &args, env)
}

#[test]
fn a_timer_whose_service_does_not_exist_is_reported_and_blocks_apply() {
    let body = units_config(&[("backup.timer", "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n")]);
    let (dir, _, _) = config_and_root(&body);
    let root = system_root();
    let want = "  error: /etc/systemd/system/backup.timer: backup.timer triggers backup.service, which neither the desired \
                state nor the root has, so systemd would refuse to start backup.timer; declare backup.service, or name the \
                unit to trigger with Unit= (from c.bu ($.systemd.units.0))";
    let out = plan_config(dir.path(), root.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(check_lines(&out)[0], want);

    let apply = apply_config(dir.path(), root.path(), &[], &[]);
    assert_eq!(apply.status.code(), Some(1));
    assert!(!root.path().join("etc/systemd/system/backup.timer").exists(), "nothing written");

    // The service installed on the root, or declared, or named by Unit=, satisfies it.
    write(&root.path().join("usr/lib/systemd/system/backup.service"), "[Service]\nExecStart=/bin/true\n");
    assert_eq!(plan_config(dir.path(), root.path(), &[], &[]).status.code(), Some(0));
    let declared = units_config(&[
        ("backup.timer", "[Timer]\nOnCalendar=daily\nUnit=real.service\n"),
        ("real.service", "[Service]\nExecStart=/bin/true\n"),
    ]);
    let (dir2, _, _) = config_and_root(&declared);
    let out = plan_config(dir2.path(), system_root().path(), &[], &[]);
    assert_eq!(
        (out.status.code(), check_lines(&out)),
        (Some(0), vec![ANALYZE_NOTE.to_string()]),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn on_a_root_without_installed_units_missing_references_are_noted_not_reported() {
    let body = units_config(&[("backup.timer", "[Timer]\nOnCalendar=daily\n")]);
    let (dir, _, root) = config_and_root(&body);
    let out = plan_config(dir.path(), &root, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        check_lines(&out),
        [
            ANALYZE_NOTE,
            "  note: 1 reference(s) to units outside the desired state were not checked: the root has no installed units (/usr/lib/systemd/system)",
        ]
    );
}

/// What `systemd-analyze verify` itself says about `units` written to a directory, as
/// `(priority, message)` with the directory replaced by /etc/systemd/system: the oracle.
fn analyze_directly(bin: &str, units: &[(&str, &str)], verify: &[&str]) -> Vec<(u8, String)> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in units {
        write(&dir.path().join(name), content);
    }
    let out = std::process::Command::new(bin)
        .arg("verify")
        .arg("--man=no")
        .args(verify.iter().map(|u| dir.path().join(u)))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .env("SYSTEMD_LOG_TARGET", "console-prefixed")
        .output()
        .unwrap();
    let prefix = format!("{}/", dir.path().display());
    lines(&out.stderr)
        .iter()
        .filter_map(|l| {
            let (p, m) = l.strip_prefix('<')?.split_once('>')?;
            Some(((p.parse::<u16>().ok()? & 7) as u8, m.replace(&prefix, "/etc/systemd/system/")))
        })
        .collect()
}

#[test]
fn systemd_analyze_errors_block_and_its_warnings_are_shown_or_strict() {
    let Some(bin) = analyzer("systemd_analyze_errors_block_and_its_warnings_are_shown_or_strict") else { return };
    let env = [("SYSTEMD_ANALYZE_BIN", bin)];
    // A setting systemd ignores (a warning), and a dependency that does not exist (an error).
    let units =
        [("web.service", "[Unit]\nRequires=missing-db.service\n\n[Service]\nExecStart=/bin/true\nRestrat=always\n")];
    let oracle = analyze_directly(bin, &units, &["web.service"]);
    let warning = oracle.iter().find(|(p, _)| *p == 4).expect("systemd warns about Restrat=").1.clone();
    let error = oracle.iter().find(|(p, _)| *p == 3).expect("systemd refuses the missing dependency").1.clone();
    assert!(warning.starts_with("/etc/systemd/system/web.service:6: "), "{warning}");
    assert!(error.contains("missing-db.service"), "{error}");

    let (dir, _, _) = config_and_root(&units_config(&units));
    let root = system_root();
    let out = plan_config(dir.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        check_lines(&out),
        [format!("  error: systemd-analyze: {error}"), format!("  warning: systemd-analyze: {warning}")]
    );
    let apply = apply_config(dir.path(), root.path(), &[], &env);
    assert_eq!(apply.status.code(), Some(1));
    assert!(text(&apply.stdout).contains(&format!("  error: systemd-analyze: {error}")), "{}", text(&apply.stdout));
    assert!(!root.path().join("etc/systemd/system/web.service").exists(), "nothing written");

    // Only the warning left: shown, and the run goes on, unless --strict.
    let units = [("web.service", "[Service]\nExecStart=/bin/true\nRestrat=always\n")];
    let (dir, _, _) = config_and_root(&units_config(&units));
    let out = plan_config(dir.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(check_lines(&out), [format!("  warning: systemd-analyze: {}", warning.replace(":6:", ":3:"))]);
    let strict = plan_config(dir.path(), root.path(), &["--strict"], &env);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(lines(&strict.stderr), ["Checks produced warnings and --strict was specified"]);
    let apply = apply_config(dir.path(), root.path(), &["--strict"], &env);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stdout));
    assert!(!root.path().join("etc/systemd/system/web.service").exists(), "nothing written under --strict");
    let apply = apply_config(dir.path(), root.path(), &[], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stdout));
    assert!(
        text(&apply.stdout).contains(&format!("  warning: systemd-analyze: {}", warning.replace(":6:", ":3:"))),
        "apply shows the warning: {}",
        text(&apply.stdout)
    );
}

#[test]
fn a_follow_up_of_a_systemd_analyze_error_is_not_a_second_mistake() {
    let Some(bin) = analyzer("a_follow_up_of_a_systemd_analyze_error_is_not_a_second_mistake") else { return };
    let env = [("SYSTEMD_ANALYZE_BIN", bin)];
    // `OnCalndar=` is ignored, so the timer has no setting left: systemd says so, then that the
    // unit has a bad setting — the same mistake again.
    let units = [
        ("backup.timer", "[Timer]\nOnCalndar=daily\n"),
        ("backup.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n"),
    ];
    let oracle = analyze_directly(bin, &units, &["backup.timer"]);
    let said: Vec<&str> = oracle.iter().map(|(_, m)| m.as_str()).collect();
    assert!(said.contains(&"Unit backup.timer has a bad unit file setting."), "the follow-up systemd prints: {said:?}");
    let (dir, _, _) = config_and_root(&units_config(&units));
    let out = plan_config(dir.path(), system_root().path(), &[], &env);
    assert_eq!(out.status.code(), Some(1));
    let want: Vec<String> = oracle
        .iter()
        .filter(|(_, m)| m != "Unit backup.timer has a bad unit file setting.")
        .map(|(p, m)| format!("  {}: systemd-analyze: {m}", if *p <= 3 { "error" } else { "warning" }))
        .collect();
    let mut got = check_lines(&out);
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_command_the_change_installs_or_the_root_has_is_not_missing() {
    let Some(bin) = analyzer("a_command_the_change_installs_or_the_root_has_is_not_missing") else { return };
    let env = [("SYSTEMD_ANALYZE_BIN", bin)];
    let exec = "/usr/local/bin/core-ops-test-backup";
    let unit = format!("[Service]\nType=oneshot\nExecStart={exec}\n");
    let oracle = analyze_directly(bin, &[("backup.service", &unit)], &["backup.service"]);
    let missing = oracle.iter().find(|(_, m)| m.contains(exec)).expect("systemd looks the command up").1.clone();

    let root = system_root();
    let (dir, _, _) = config_and_root(&units_config(&[("backup.service", &unit)]));
    let out = plan_config(dir.path(), root.path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "a command a package may bring is a warning: {}", text(&out.stdout));
    assert_eq!(check_lines(&out), [format!("  warning: systemd-analyze: {missing}")]);

    write(&root.path().join(exec.trim_start_matches('/')), "#!/bin/sh\n");
    let out = plan_config(dir.path(), root.path(), &[], &env);
    assert_eq!(check_lines(&out), Vec::<String>::new(), "the root has it");

    let installs = format!(
        "{}storage:\n  files:\n    - path: {exec}\n      mode: 0755\n      contents:\n        inline: \"#!/bin/sh\\n\"\n",
        units_config(&[("backup.service", &unit)])
    );
    let (dir, _, _) = config_and_root(&installs);
    let out = plan_config(dir.path(), system_root().path(), &[], &env);
    assert_eq!(check_lines(&out), Vec::<String>::new(), "the change installs it");

    // `apply` starts the checks from the config's units alone, before the rest of the desired
    // state is built; what they find is still read against all of it.
    if !common::is_root() {
        common::skip("a_command_the_change_installs_or_the_root_has_is_not_missing", "apply needs root");
        return;
    }
    let warnings = |dir: &Path| {
        let out = apply_config(dir, system_root().path(), &["--format", "json"], &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["plan"]["systemd"]["check_warnings"].clone()
    };
    assert_eq!(warnings(dir.path()), serde_json::json!([]), "the change installs it");
    let (units_only, _, _) = config_and_root(&units_config(&[("backup.service", &unit)]));
    assert_eq!(warnings(units_only.path()), serde_json::json!([format!("systemd-analyze: {missing}")]));
}

#[test]
fn a_unit_that_needs_a_quadlet_service_finds_it() {
    let Some(bin) = analyzer("a_unit_that_needs_a_quadlet_service_finds_it") else { return };
    let env = [("SYSTEMD_ANALYZE_BIN", bin)];
    let body = format!(
        "{}storage:\n  files:\n    - path: /etc/containers/systemd/db.container\n      contents:\n        inline: \"[Container]\\nImage=docker.io/library/postgres:16\\n\"\n",
        units_config(&[(
            "app.service",
            "[Unit]\nRequires=db.service\nAfter=db.service\n\n[Service]\nExecStart=/bin/true\n"
        )])
    );
    let (dir, _, _) = config_and_root(&body);
    let out = plan_config(dir.path(), system_root().path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(check_lines(&out), [QUADLET_NOTE]);
}

#[test]
fn plan_json_carries_the_checks() {
    let repo = quadlet_repo("[Container]\nImgae=docker.io/library/caddy:2\n");
    let root = tempfile::tempdir().unwrap();
    let out = plan_repo(repo.path(), root.path(), &["--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let systemd = &doc["systemd"];
    assert_eq!(
        systemd["quadlet_errors"],
        serde_json::json!([
            "/etc/containers/systemd/web.container:2: unknown key `Imgae` in [Container]; did you mean `Image`? (from services/web/quadlet/web.container)"
        ])
    );
    assert_eq!(systemd["unit_errors"], serde_json::json!([]));
    assert_eq!(systemd["check_warnings"], serde_json::json!([]));
    assert_eq!(systemd["check_notes"], serde_json::json!([QUADLET_NOTE.trim_start().strip_prefix("note: ").unwrap()]));
}

/// `--strict` takes no fast path: on a root that a lenient apply already converged, the same
/// input's warnings still stop `apply --strict`.
#[test]
fn strict_stops_apply_on_a_root_already_converged_with_the_same_input() {
    let (dir, _config, root) = config_and_root(&format!("{HEAD}{DECIMAL_MODE}"));
    let args = ["apply", "--config", "c.bu", "--root", s(&root), "--offline"];
    let lenient = run_in(dir.path(), &args, &[]);
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient.stderr));
    let again = run_in(dir.path(), &args, &[]);
    assert_eq!(again.status.code(), Some(0), "converged: {}", text(&again.stderr));
    let strict = run_in(dir.path(), &[&args[..], &["--strict"]].concat(), &[]);
    let mut want: Vec<String> = DECIMAL_MODE_WARNINGS.iter().map(|w| format!("error: {w}")).collect();
    want.push("Config produced warnings and --strict was specified".into());
    assert_eq!(lines(&strict.stderr), want, "the warnings are errors on a converged root too");
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stdout));
}

/// A stand-in for `systemd-analyze` that finds nothing and records what it was given: the unit
/// path (`<script>.path`) and the staged units it could list there (`<script>.units`).
fn recording_analyzer(dir: &Path) -> PathBuf {
    let script = dir.join("analyze.sh");
    write_executable(
        &script,
        "#!/bin/sh\nprintf '%s\\n' \"$SYSTEMD_UNIT_PATH\" > \"$0.path\"\nls \"${SYSTEMD_UNIT_PATH%%:*}\" > \"$0.units\"\n",
    );
    script
}

/// What the stand-in of [`recording_analyzer`] was given: the unit path's entries and the
/// staged units.
fn recorded(script: &Path) -> (Vec<String>, String) {
    let read = |ext: &str| std::fs::read_to_string(script.with_extension(format!("sh.{ext}"))).unwrap();
    (read("path").trim_end().split(':').map(String::from).collect(), read("units"))
}

#[test]
fn units_are_verified_from_the_run_directory_on_a_unit_path_of_directories_that_exist() {
    if !common::is_root() {
        common::skip(
            "units_are_verified_from_the_run_directory_on_a_unit_path_of_directories_that_exist",
            "apply needs root",
        );
        return;
    }
    let (dir, _, _) = config_and_root(&units_config(&[("web.service", "[Service]\nExecStart=/bin/true\n")]));
    // Of the seven unit directories systemd searches, the root has only /usr/lib/systemd/system.
    let root = system_root();
    let scratch = tempfile::tempdir().unwrap();
    let script = recording_analyzer(dir.path());
    let env = [("SYSTEMD_ANALYZE_BIN", s(&script)), ("TMPDIR", s(scratch.path()))];

    let plan = plan_config(dir.path(), root.path(), &[], &env);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
    let (path, units) = recorded(&script);
    let vendor = format!("{}/usr/lib/systemd/system", root.path().display());
    assert_eq!(path.len(), 2, "the staged units and the one unit directory of the root: {path:?}");
    let staged = format!("{}/core-ops-units-", scratch.path().display());
    assert!(path[0].starts_with(&staged) && path[0].ends_with("/units"), "plan stages in TMPDIR: {path:?}");
    assert_eq!(path[1], vendor);
    assert_eq!(units, "web.service\n");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "plan leaves nothing in TMPDIR");

    // What a run killed during its checks left in the run directory goes.
    write(&root.path().join("run/core-ops/core-ops-units-Killed/units/old.service"), "[Service]\n");
    let apply = apply_config(dir.path(), root.path(), &[], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stdout));
    let (path, units) = recorded(&script);
    assert_eq!(path.len(), 2, "{path:?}");
    let staged = format!("{}/run/core-ops/core-ops-units-", root.path().display());
    assert!(path[0].starts_with(&staged) && path[0].ends_with("/units"), "apply stages in its run directory: {path:?}");
    assert_eq!(path[1], vendor);
    assert_eq!(units, "web.service\n");
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "apply writes nothing to TMPDIR");
    let run_dir: Vec<String> = std::fs::read_dir(root.path().join("run/core-ops"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(run_dir, ["lock"], "the staged units are removed, and those of the killed run");

    // A unit directory the root has by now (the apply made /etc/systemd/system) is searched, in
    // systemd's order.
    write(&dir.path().join("c.bu"), &units_config(&[("web.service", "[Service]\nExecStart=/bin/false\n")]));
    let apply = apply_config(dir.path(), root.path(), &[], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stdout));
    let (path, _) = recorded(&script);
    assert_eq!(path[1..], [format!("{}/etc/systemd/system", root.path().display()), vendor]);
}

#[test]
fn a_blocked_plan_stops_the_unit_checks_it_started_and_removes_what_they_staged() {
    if !common::is_root() {
        common::skip(
            "a_blocked_plan_stops_the_unit_checks_it_started_and_removes_what_they_staged",
            "apply needs root",
        );
        return;
    }
    // The checks start as soon as the units are known, before the rest is planned; the
    // stand-in for systemd-analyze would run for a minute.
    let body = web_unit_and_files("    - path: /etc/app/a.conf\n      contents: {inline: ours}\n");
    let (dir, _, _) = config_and_root(&body);
    let root = system_root();
    write(&root.path().join("etc/app/a.conf"), "theirs\n");
    let script = dir.path().join("analyze.sh");
    write_executable(&script, "#!/bin/sh\nsleep 60\n");

    let started = std::time::Instant::now();
    let apply = apply_config(dir.path(), root.path(), &[], &[("SYSTEMD_ANALYZE_BIN", s(&script))]);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the run waited for the checks");
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stdout));
    assert!(text(&apply.stdout).contains("/etc/app/a.conf"), "the blocked object is named: {}", text(&apply.stdout));
    assert_eq!(processes_naming(&script), Vec::<String>::new(), "systemd-analyze was left running");
    assert_eq!(run_dir_entries(root.path()), ["lock"], "the staged units are removed");
    assert_eq!(std::fs::read_to_string(root.path().join("etc/app/a.conf")).unwrap(), "theirs\n");
}

#[test]
fn a_run_the_checks_stop_leaves_no_record_of_its_revision_behind() {
    if !common::is_root() {
        common::skip("a_run_the_checks_stop_leaves_no_record_of_its_revision_behind", "apply needs root");
        return;
    }
    // The run's pending state and snapshot are written under temporary names while the checks
    // run; the timer without its service stops the run.
    let body = units_config(&[("backup.timer", "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n")]);
    let (dir, _, _) = config_and_root(&body);
    let root = system_root();
    let apply = apply_config(dir.path(), root.path(), &[], &[]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stdout));
    let state_dir = root.path().join("var/lib/core-ops");
    let left = files_under(&state_dir);
    assert_eq!(left, ["audit.log", "state.json"], "only the record of the failed run");
    let state: Value = serde_json::from_slice(&std::fs::read(state_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state.get("pending"), None, "{state}");
    assert_eq!(state.get("last_applied"), None, "{state}");
}

/// The `apply:` step lines of a run's debug log, in order.
fn apply_steps(out: &Output) -> Vec<String> {
    lines(&out.stderr).iter().filter_map(|l| l.split_once(": apply: ").map(|(_, step)| step.to_string())).collect()
}

#[test]
fn apply_starts_the_unit_checks_from_the_configs_units_unless_a_child_config_may_change_them() {
    let test = "apply_starts_the_unit_checks_from_the_configs_units_unless_a_child_config_may_change_them";
    if !common::is_root() {
        common::skip(test, "apply needs root");
        return;
    }
    let Some(bin) = analyzer(test) else { return };
    let env = [("SYSTEMD_ANALYZE_BIN", bin), ("CORE_OPS_LOG", "debug")];
    let units = units_config(&[("web.service", "[Service]\nExecStart=/bin/true\n")]);
    let position = |steps: &[String], step: &str| steps.iter().position(|s| s == step);

    let (dir, _, _) = config_and_root(&units);
    let out = apply_config(dir.path(), system_root().path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let steps = apply_steps(&out);
    let early = position(&steps, "checks started from the config's units").expect("started from the units");
    let built = position(&steps, "desired state built").expect("desired state built");
    assert!(early < built, "{steps:?}");
    assert_eq!(position(&steps, "checks started"), None, "started once: {steps:?}");

    // A child config may add or change units: the checks wait for the whole desired state.
    let child = format!(
        "{units}ignition:\n  config:\n    merge:\n      - inline: '{{\"ignition\": {{\"version\": \"3.4.0\"}}}}'\n"
    );
    let (dir, _, _) = config_and_root(&child);
    let out = apply_config(dir.path(), system_root().path(), &[], &env);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let steps = apply_steps(&out);
    assert_eq!(position(&steps, "checks started from the config's units"), None, "{steps:?}");
    let started = position(&steps, "checks started").expect("checks started");
    assert!(position(&steps, "desired state built").is_some_and(|built| built < started), "{steps:?}");
}

/// The processes whose command line names `path`.
fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().into_string().ok().filter(|n| n.bytes().all(|b| b.is_ascii_digit()))?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            cmdline.windows(needle.len()).any(|w| w == needle).then_some(pid)
        })
        .collect()
}

#[test]
fn an_input_that_cannot_be_converged_stops_the_unit_checks_started_from_its_units() {
    let test = "an_input_that_cannot_be_converged_stops_the_unit_checks_started_from_its_units";
    if !common::is_root() {
        common::skip(test, "apply needs root");
        return;
    }
    // The checks start from the units before the desired state is built, which then refuses
    // an owner id no file can have. The stand-in for systemd-analyze would run for a minute.
    let body =
        web_unit_and_files("    - path: /etc/app/a.conf\n      user: {id: 4294967295}\n      contents: {inline: x}\n");
    let (dir, _, _) = config_and_root(&body);
    let root = system_root();
    let script = dir.path().join("analyze.sh");
    write_executable(&script, "#!/bin/sh\nsleep 60\n");

    let env = [("SYSTEMD_ANALYZE_BIN", s(&script)), ("CORE_OPS_LOG", "debug")];
    let started = std::time::Instant::now();
    let apply = apply_config(dir.path(), root.path(), &[], &env);
    // Stopped, not waited for: far less than the stand-in's minute.
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the run waited for the checks");
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stdout));
    assert!(text(&apply.stdout).contains("user id 4294967295"), "{}", text(&apply.stdout));
    assert!(
        apply_steps(&apply).iter().any(|s| s == "checks started from the config's units"),
        "{}",
        text(&apply.stderr)
    );
    assert_eq!(processes_naming(&script), Vec::<String>::new(), "systemd-analyze was left running");
    assert_eq!(run_dir_entries(root.path()), ["lock"], "the staged units are removed");
    assert!(!root.path().join("etc/app").exists(), "nothing is written");
}

#[test]
fn apply_runs_the_quadlet_generator_once_the_input_is_known_to_be_one_it_can_take() {
    let test = "apply_runs_the_quadlet_generator_once_the_input_is_known_to_be_one_it_can_take";
    if !common::is_root() {
        common::skip(test, "apply needs root");
        return;
    }
    // A stand-in for the generator that counts its runs; the unit checks start from the
    // config's units before the desired state is built.
    let dir = tempfile::tempdir().unwrap();
    let generator = dir.path().join("quadlet.sh");
    write_executable(&generator, "#!/bin/sh\necho run >> \"$0.runs\"\n");
    let runs = || std::fs::read_to_string(generator.with_extension("sh.runs")).unwrap_or_default().lines().count();
    let container = "    - path: /etc/containers/systemd/web.container\n      contents: {inline: \"[Container]\\nImage=docker.io/library/caddy:2\\n\"}\n";
    let config = |extra: &str| {
        let units = units_config(&[("web-backup.service", "[Service]\nExecStart=/bin/true\n")]);
        format!("{units}storage:\n  files:\n{container}{extra}")
    };
    let env = [("QUADLET_BIN", s(&generator)), ("SYSTEMD_ANALYZE_BIN", "")];

    let refused = config("    - path: /etc/app/a.conf\n      user: {id: 4294967295}\n      contents: {inline: x}\n");
    let (work, _, _) = config_and_root(&refused);
    let apply = apply_config(work.path(), system_root().path(), &[], &env);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stdout));
    assert_eq!(runs(), 0, "an input the run cannot take is not checked further");

    let (work, _, _) = config_and_root(&config(""));
    let apply = apply_config(work.path(), system_root().path(), &[], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stdout));
    assert_eq!(runs(), 1, "checked once");
}
