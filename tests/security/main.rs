//! Attacks on CoreOps's three promises — it never writes outside `--root`, never deletes or
//! overwrites what it does not own without `--adopt`, and never prints the content of files that
//! others cannot read — each reproduced in a fresh root, with a victim file outside it where the
//! attack aims outside. Every test here failed before its fix.
//!
//! One module per front: the state directory and logs (`state_dir`), ownership of what is on
//! the host (`ownership`), what is printed and how paths are normalised (`output`), and the
//! inputs read from the source repository and `--files-dir` (`inputs`).

#[path = "../common/mod.rs"]
mod common;

mod inputs;
mod output;
mod ownership;
mod state_dir;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one run may take before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `cmd` (standard input as the caller set it, else nothing) to its end, or kills it at
/// [`DEADLINE`] and fails the test with what it printed so far: a regression that hangs fails
/// instead of stalling the suite.
pub fn run_to_deadline(mut cmd: Command, what: &str) -> Output {
    let out_dir = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out_dir.path().join("stdout"), out_dir.path().join("stderr"));
    let mut child = cmd
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} hung: killed after {} s; output so far:\n{}{}",
                DEADLINE.as_secs(),
                fs::read_to_string(&stdout_path).unwrap_or_default(),
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: fs::read(&stdout_path).unwrap(), stderr: fs::read(&stderr_path).unwrap() }
}

/// A command with no standard input.
pub fn without_stdin(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::null());
    cmd
}

/// A file outside any root, with known content and mode 0600: what an attack must not reach.
pub struct Victim {
    /// Keeps the directory alive.
    _dir: tempfile::TempDir,
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub content: &'static str,
}

impl Default for Victim {
    fn default() -> Victim {
        Victim::new()
    }
}

impl Victim {
    /// A fresh victim file `secret` (mode 0600) in its own directory.
    pub fn new() -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let content = "victim: TOP-SECRET-7f3a\n";
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        Victim { _dir: dir, path, content }
    }

    /// Asserts that the victim still holds its content, mode 0600 and owner.
    pub fn assert_untouched(&self, attack: &str) {
        let meta = fs::symlink_metadata(&self.path).unwrap_or_else(|e| panic!("{attack}: the victim is gone: {e}"));
        assert_eq!(fs::read_to_string(&self.path).unwrap(), self.content, "{attack}: the victim's content changed");
        assert_eq!(meta.mode() & 0o7777, 0o600, "{attack}: the victim's mode changed");
        let me = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
        assert_eq!((meta.uid(), meta.gid()), me, "{attack}: the victim's owner changed");
    }
}

/// Writes `butane` to a temp file and runs `core-ops ARGS --config FILE --root ROOT --offline`.
pub fn run_with_config(args: &[&str], butane: &str, root: &Path) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.bu");
    fs::write(&cfg, butane).unwrap();
    common::bin().args(args).arg("--config").arg(&cfg).arg("--root").arg(root).arg("--offline").output().unwrap()
}

/// The whole output of a run, for assertion messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
