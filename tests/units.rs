//! The agent's units in `systemd/`: `systemd-analyze verify` accepts them (and rejects them
//! once a directive is broken, so the check can fail), their key settings are those the
//! design names, and `butane/core-ops.bu` carries their text verbatim
//! (`UPDATE_GOLDEN=1 cargo test --test units` rewrites its copies).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use core_ops::model::unit::{self, UnitFile};

const SERVICE: &str = "core-ops.service";
const TIMER: &str = "core-ops.timer";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn unit_text(name: &str) -> String {
    std::fs::read_to_string(repo_file(&format!("systemd/{name}"))).unwrap()
}

fn parsed(name: &str) -> UnitFile {
    unit::parse(&unit_text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn values(unit: &UnitFile, section: &str, key: &str) -> Vec<String> {
    unit.values(section, key).map(str::to_string).collect()
}

/// Where this machine keeps its vendor units (the targets the agent's units refer to).
fn vendor_units() -> Option<PathBuf> {
    ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("timers.target").exists() && dir.join("network-online.target").exists())
}

/// Copies a directory tree, keeping symbolic links as links.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A root as a host has it once the units are installed: this machine's vendor units, the
/// two units (as `texts` has them) in /etc/systemd/system, and an executable standing in for
/// the agent at /usr/local/bin/core-ops.
fn installed_root(vendor: &Path, texts: &[(&str, String)], with_agent: bool) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    copy_tree(vendor, &root.path().join("usr/lib/systemd/system"));
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for (name, text) in texts {
        std::fs::write(units.join(name), text).unwrap();
    }
    if with_agent {
        let bin = root.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("core-ops"), "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(bin.join("core-ops"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

/// What `systemd-analyze verify` finds in the two units on `root`: its exit status and every
/// line it writes about them (errors, and the warnings of settings it ignores). Clean means
/// exit 0 and no such line.
fn verify(analyze: &Path, root: &Path) -> (Option<i32>, Vec<String>) {
    let out = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args([format!("/etc/systemd/system/{SERVICE}"), format!("/etc/systemd/system/{TIMER}")])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let about_ours = text.lines().filter(|l| l.contains("core-ops")).map(str::to_string).collect();
    (out.status.code(), about_ours)
}

/// `systemd-analyze` and the vendor units, or `None` after a loud skip.
fn analyzer(test: &str) -> Option<(PathBuf, PathBuf)> {
    let Some(analyze) =
        ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].iter().map(PathBuf::from).find(|p| p.is_file())
    else {
        common::skip(test, "systemd-analyze is not installed");
        return None;
    };
    let Some(vendor) = vendor_units() else {
        common::skip(test, "no vendor units (timers.target, network-online.target) to verify against");
        return None;
    };
    Some((analyze, vendor))
}

#[test]
fn systemd_analyze_verify_accepts_both_units() {
    let Some((analyze, vendor)) = analyzer("systemd_analyze_verify_accepts_both_units") else { return };
    let root = installed_root(&vendor, &[(SERVICE, unit_text(SERVICE)), (TIMER, unit_text(TIMER))], true);
    let (code, lines) = verify(&analyze, root.path());
    assert_eq!((code, &lines), (Some(0), &Vec::<String>::new()), "systemd-analyze verify: {lines:#?}");
}

#[test]
fn systemd_analyze_verify_rejects_a_broken_directive() {
    let Some((analyze, vendor)) = analyzer("systemd_analyze_verify_rejects_a_broken_directive") else { return };
    let (service, timer) = (unit_text(SERVICE), unit_text(TIMER));
    let edit = |text: &str, from: &str, to: &str| {
        assert!(text.contains(from), "{from:?} is not in the unit any more: update this test");
        text.replace(from, to)
    };
    // (what is broken, the service, the timer, whether the agent's binary is there)
    let cases = [
        ("a misspelt service type", edit(&service, "Type=oneshot", "Type=oneshoot"), timer.clone(), true),
        ("no ExecStart=", edit(&service, "ExecStart=/usr/local/bin/core-ops agent\n", ""), timer.clone(), true),
        ("an unknown sandboxing option", edit(&service, "PrivateTmp=yes", "PrivateTemp=yes"), timer.clone(), true),
        (
            "an unparsable interval",
            service.clone(),
            edit(&timer, "OnUnitInactiveSec=5min", "OnUnitInactiveSec=5 fortnights"),
            true,
        ),
        (
            "no trigger at all",
            service.clone(),
            edit(&edit(&timer, "OnBootSec=1min\n", ""), "OnUnitInactiveSec=5min\n", ""),
            true,
        ),
        ("the agent not installed", service.clone(), timer.clone(), false),
    ];
    for (what, service, timer, with_agent) in cases {
        let root = installed_root(&vendor, &[(SERVICE, service), (TIMER, timer)], with_agent);
        let (code, lines) = verify(&analyze, root.path());
        assert!(code != Some(0) || !lines.is_empty(), "{what}: systemd-analyze verify found nothing");
    }
}

#[test]
fn the_service_runs_one_agent_cycle_after_the_network() {
    let service = parsed(SERVICE);
    assert_eq!(values(&service, "Service", "Type"), ["oneshot"]);
    assert_eq!(values(&service, "Service", "ExecStart"), [format!("{} agent", core_ops::model::bootstrap::AGENT_PATH)]);
    assert_eq!(values(&service, "Service", "ExecStart"), ["/usr/local/bin/core-ops agent"]);
    for key in ["Wants", "After"] {
        assert!(
            values(&service, "Unit", key).iter().any(|v| v.split_whitespace().any(|u| u == "network-online.target"))
        );
    }
    // Exit 75 must stay a failure; there is no man page to point to; the timer starts it.
    assert!(values(&service, "Service", "SuccessExitStatus").is_empty());
    assert!(values(&service, "Unit", "Documentation").iter().all(|v| !v.contains("man:")));
    assert!(!service.has_install_options());
}

#[test]
fn the_service_keeps_what_the_agent_must_reach_within_reach() {
    // Each option named here would stop the work: writing /etc and /usr/local (ProtectSystem,
    // ReadOnlyPaths), files under /home and /root (ProtectHome), setuid/setgid modes
    // (RestrictSUIDSGID), running the programs it runs on SELinux hosts (NoNewPrivileges), the
    // run lock in /run/core-ops (RuntimeDirectory), the system bus (PrivateUsers, PrivateNetwork
    // would cut the remote off).
    let service = parsed(SERVICE);
    for key in [
        "ProtectSystem",
        "ReadOnlyPaths",
        "ProtectHome",
        "RestrictSUIDSGID",
        "NoNewPrivileges",
        "RuntimeDirectory",
        "StateDirectory",
        "PrivateUsers",
        "PrivateNetwork",
        "DynamicUser",
        "User",
    ] {
        assert!(values(&service, "Service", key).is_empty(), "{key}= is set");
    }
    let families = values(&service, "Service", "RestrictAddressFamilies").join(" ");
    for family in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(families.split_whitespace().any(|f| f == family), "{family} is not allowed: {families}");
    }
}

#[test]
fn the_timer_runs_after_boot_then_every_five_minutes() {
    let timer = parsed(TIMER);
    assert_eq!(values(&timer, "Timer", "OnBootSec"), ["1min"]);
    assert_eq!(values(&timer, "Timer", "OnUnitInactiveSec"), ["5min"]);
    assert_eq!(values(&timer, "Timer", "RandomizedDelaySec"), ["1min"]);
    assert!(values(&timer, "Timer", "Unit").is_empty(), "the timer starts core-ops.service, its namesake");
    assert_eq!(values(&timer, "Install", "WantedBy"), ["timers.target"]);
}

/// The units as `butane/core-ops.bu` has them, by name.
fn butane_units(text: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let doc = core_ops::model::yaml::parse(text).unwrap();
    let units = doc.root.get("systemd").and_then(|s| s.get("units")).expect("systemd.units");
    let core_ops::model::yaml::Value::Seq(items) = &units.value else { panic!("systemd.units is not a list") };
    items
        .iter()
        .map(|u| {
            let field = |k: &str| u.get(k).and_then(|n| n.as_scalar()).map(str::to_string);
            (field("name").unwrap(), field("contents"), field("enabled"))
        })
        .collect()
}

/// `text` with the literal block of unit `name`'s `contents: |` replaced by `contents`.
fn with_unit_block(text: &str, name: &str, contents: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let item = lines.iter().position(|l| *l == format!("    - name: {name}")).expect("the unit's item");
    let start = item + lines[item..].iter().position(|l| *l == "      contents: |").expect("its contents") + 1;
    let mut end = start + lines[start..].iter().take_while(|l| l.is_empty() || l.starts_with("        ")).count();
    // Blank lines after the block (the file's final newline) are not part of it.
    while end > start && lines[end - 1].is_empty() {
        end -= 1;
    }
    let block = contents
        .trim_end_matches('\n')
        .split('\n')
        .map(|l| if l.is_empty() { String::new() } else { format!("        {l}") });
    lines[..start]
        .iter()
        .map(|l| l.to_string())
        .chain(block)
        .chain(lines[end..].iter().map(|l| l.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_butane_fragment_carries_the_units_verbatim_and_enables_the_timer() {
    let path = repo_file("butane/core-ops.bu");
    let mut text = std::fs::read_to_string(&path).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        for name in [SERVICE, TIMER] {
            text = with_unit_block(&text, name, &unit_text(name));
        }
        std::fs::write(&path, &text).unwrap();
    }
    let units = butane_units(&text);
    let want = [
        (SERVICE.to_string(), Some(unit_text(SERVICE)), None),
        (TIMER.to_string(), Some(unit_text(TIMER)), Some("true".to_string())),
    ];
    assert!(
        units == want,
        "butane/core-ops.bu differs from systemd/ (UPDATE_GOLDEN=1 cargo test --test units rewrites it):\n{units:#?}"
    );
}
