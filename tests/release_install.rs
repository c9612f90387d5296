//! The install path as a new user walks it, in the real-systemd testbed (`tests/common/testbed.rs`):
//! the x86_64 release bundle that `core-ops-release bundle` makes is copied into a fresh
//! container that has no core-ops, checked with `sha256sum -c SHA256SUMS`, and installed by the
//! README's install commands, run verbatim (the fenced block after the `install-commands`
//! marker). The first interaction is `core-ops --version` and `core-ops status`; the timer is
//! enabled and its first agent cycle, on a host that follows nothing yet, is a clean no-op.
//!
//! Expected values come from outside CoreOps: the version from `Cargo.toml`'s text, the revision
//! from `git rev-parse`, the checksums from `sha256sum`, unit states from `systemctl`.

mod common;
#[path = "common/testbed.rs"]
mod testbed;

use std::path::{Path, PathBuf};
use std::process::Command;

use testbed::{Ran, Testbed};

/// The target whose bundle a new x86_64 user downloads.
const TARGET: &str = "x86_64-unknown-linux-musl";
/// Where the bundle's files are put in the container, as a download folder.
const DOWNLOAD_DIR: &str = "root/download";
/// The marker line that precedes the README's install commands.
const INSTALL_MARKER: &str = "<!-- install-commands";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The commands of the README's install block, exactly as written there.
fn readme_install_commands() -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let after_marker = readme
        .split_once(INSTALL_MARKER)
        .unwrap_or_else(|| panic!("README.md has no `{INSTALL_MARKER}` marker before its install commands"))
        .1;
    let block = after_marker.split_once("```sh\n").expect("a ```sh block after the install marker").1;
    let commands = block.split_once("\n```").expect("the install block's closing fence").0;
    assert!(commands.contains("systemctl enable --now core-ops.timer"), "the install block: {commands}");
    commands.to_string()
}

/// `version = "…"` of Cargo.toml's `[package]`, read from its text.
fn cargo_version() -> String {
    let text = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let package = text.split_once("[package]").unwrap().1;
    let line = package.lines().find(|l| l.trim_start().starts_with("version")).expect("a package version");
    line.split('"').nth(1).unwrap().to_string()
}

/// The commit the build identity names, as git says.
fn git_revision() -> String {
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(manifest_dir()).output();
    let out = out.expect("git");
    assert!(out.status.success(), "git rev-parse: {:?}", Ran::of(&out));
    Ran::of(&out).stdout
}

/// Whether rustup has the musl target's standard library here.
fn target_installed() -> bool {
    let out = Command::new("rustc").args(["--print", "target-libdir", "--target", TARGET]).output();
    out.is_ok_and(|o| o.status.success() && Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir())
}

/// Builds the x86_64 bundle into `out` with `core-ops-release bundle`; the build shares the
/// release tests' target dir, so it is only packaged again when `tests/release_bundle.rs` ran.
fn bundle_into(out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_core-ops-release"))
        .args(["--repo", manifest_dir().to_str().unwrap(), "bundle", "--target", TARGET, "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", manifest_dir().join("target/bundle-tests"))
        .status()
        .expect("core-ops-release bundle");
    assert!(status.success(), "core-ops-release bundle --target {TARGET} failed: {status}");
}

/// Copies every file of `from` into `to` (created).
fn copy_files(from: &Path, to: &Path) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    names
}

#[test]
fn a_new_user_installs_the_bundle_with_the_readme_commands_and_gets_a_clean_first_state() {
    const TEST: &str = "a_new_user_installs_the_bundle_with_the_readme_commands_and_gets_a_clean_first_state";
    if !target_installed() {
        common::skip(TEST, &format!("the Rust target {TARGET} is not installed (`rustup target add {TARGET}`)"));
        return;
    }
    let Some(bed) = Testbed::mount(TEST) else { return };
    let out = tempfile::tempdir().unwrap();
    bundle_into(out.path());
    let download: PathBuf = bed.root.join(DOWNLOAD_DIR);
    let names = copy_files(out.path(), &download);
    let arch = TARGET.split('-').next().unwrap();
    assert_eq!(
        names,
        ["SHA256SUMS".to_string(), format!("core-ops-linux-{arch}"), format!("core-ops-linux-{arch}.tar.gz")],
        "the bundle's files"
    );
    assert!(!bed.root.join("usr/local/bin/core-ops").exists(), "the testbed rootfs already has a core-ops");
    bed.boot(&[]);

    // Every artefact checks out against the published sums, with the container's own sha256sum.
    let sums = bed.sh(&format!("cd /{DOWNLOAD_DIR} && sha256sum -c SHA256SUMS"));
    let mut checked: Vec<&str> = sums.lines().collect();
    checked.sort();
    let mut expected = vec![format!("core-ops-linux-{arch}: OK"), format!("core-ops-linux-{arch}.tar.gz: OK")];
    expected.sort();
    assert_eq!(checked, expected, "sha256sum -c SHA256SUMS");

    // The README's commands, verbatim, as one script that stops at the first failure.
    let script = format!("set -e\ncd /{DOWNLOAD_DIR}\n{}", readme_install_commands());
    let ran = Ran::of(&bed.run(&["sh", "-c", &script]));
    assert_eq!(ran.code, Some(0), "the README's install commands failed in a fresh host: {ran:#?}");

    // The first interaction: a build identity, then a clear "nothing yet" state.
    // The block checks the download first: its sha256sum lines come before anything else.
    let mut lines = ran.stdout.lines();
    let checked_by_readme: Vec<&str> = lines.by_ref().take(expected.len()).collect();
    let mut checked_by_readme: Vec<String> = checked_by_readme.into_iter().map(str::to_string).collect();
    checked_by_readme.sort();
    assert_eq!(checked_by_readme, expected, "the README's sha256sum line: {ran:#?}");
    // The build identity: the version, the commit, and whether the tree it was built from was
    // clean (a test run from a dirty tree may build a dirty binary).
    let identity = lines.next().unwrap_or_default();
    let prefix = format!("core-ops {} ({}, ", cargo_version(), git_revision());
    let dirt = identity.strip_prefix(&prefix).unwrap_or_else(|| panic!("`core-ops --version`: {ran:#?}"));
    assert!(["clean)", "dirty)"].contains(&dirt), "`core-ops --version` ends with the tree state: {identity}");
    let status: Vec<&str> = lines.collect();
    assert!(
        status.first().is_some_and(|l| l.starts_with("Nothing applied to / yet")),
        "`core-ops status` on a fresh host: {status:#?}"
    );
    assert!(
        status.iter().any(|l| l.starts_with("Following:") && l.contains("no repository")),
        "`core-ops status` names that nothing is followed: {status:#?}"
    );

    // What was installed is what was published.
    let installed = std::fs::read(bed.root.join("usr/local/bin/core-ops")).unwrap();
    assert_eq!(installed, std::fs::read(out.path().join(format!("core-ops-linux-{arch}"))).unwrap());
    assert!(bed.root.join("usr/local/share/man/man1/core-ops.1").is_file(), "the man page is installed");
    assert_eq!(bed.sh("systemctl is-enabled core-ops.timer"), "enabled");
    assert_eq!(bed.sh("systemctl is-active core-ops.timer"), "active");

    // The timer's cycle on a host that follows nothing yet: exit 0, and it says what to do.
    bed.exec(&["systemctl", "start", "core-ops.service"]);
    assert_eq!(bed.property("core-ops.service", "Result"), "success");
    let journal = bed.sh("journalctl -u core-ops.service -o cat --no-pager");
    assert!(
        journal.contains("this host follows no repository yet") && journal.contains("core-ops init REPO REF"),
        "the first cycle's journal: {journal}"
    );
}
