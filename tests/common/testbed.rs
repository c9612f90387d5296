//! The real-systemd testbed as the scenarios drive it: a throwaway `systemd-nspawn` container
//! per test (`.ci/testbed.sh`), booted from a Debian trixie rootfs with systemd 257 and Podman 5
//! on its own overlay, and torn down when dropped. Commands run in all of its namespaces, so
//! `/` is its root and the bus is its own, exactly as on a host.
//!
//! Nothing waits for a fixed time: [`wait_until`] polls with a deadline and, on timeout, names
//! the condition and the last value seen. Every command's exit status is checked ([`Ran`] keeps
//! it for probes and failure messages), and [`Testbed::invocation`] never returns an empty
//! `InvocationID`, so two reads compare equal only when they saw the same run of a unit.
//!
//! Needs root and the testbed rootfs (`scripts/test.sh` builds it). Without root, or with
//! `CORE_OPS_SKIP_TESTBED=1`, every test is skipped by its own name through `common::skip`,
//! which counts it in the run's summary and fails it under `CI=true` unless allowed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a scenario waits for something that follows an apply asynchronously before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Calls `probe` until `holds` accepts what it returns, and gives that back. After `within`,
/// fails naming `condition` and showing the last value seen.
#[track_caller]
pub fn wait_until<T: std::fmt::Debug>(
    within: Duration,
    condition: &str,
    mut probe: impl FnMut() -> T,
    holds: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = probe();
        if holds(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {condition}, in vain; last seen: {seen:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a command run in the container did, for probes and for failure messages.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn of(out: &Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
    }
}

/// The container's machine name for `test` in process `pid`: a valid hostname of at most 64
/// characters, unique per test even when test names share a prefix longer than the room left.
pub fn machine_name(test: &str, pid: u32) -> String {
    use sha2::Digest;
    let tag: String = sha2::Sha256::digest(test.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect();
    let suffix = format!("-{tag}-{pid}");
    let room = 64 - "co-".len() - suffix.len();
    let stem: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(room).collect();
    format!("co-{}{suffix}", stem.trim_matches('-'))
}

/// A container for one test, torn down (processes, overlay, cgroups) on drop.
pub struct Testbed {
    /// Its machine name.
    pub name: String,
    /// The host path of its root (the overlay).
    pub root: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/testbed.sh")
}

/// `.ci/testbed.sh args`, which must succeed: its stdout, trimmed. `env` is added to its
/// environment.
#[track_caller]
fn testbed_sh(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new("bash").arg(script()).args(args).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(
        out.status.success(),
        "`testbed.sh {}` failed (run `.ci/testbed.sh setup` as root first): {:#?}",
        args.join(" "),
        Ran::of(&out)
    );
    Ran::of(&out).stdout
}

fn testbed_wanted(test: &str) -> bool {
    if std::env::var_os("CORE_OPS_SKIP_TESTBED").is_some_and(|v| v == "1") {
        crate::common::skip(test, "CORE_OPS_SKIP_TESTBED=1 (real-systemd scenarios not run)");
        return false;
    }
    if !rustix::process::geteuid().is_root() {
        crate::common::skip(test, "the real-systemd scenarios need root (systemd-nspawn)");
        return false;
    }
    true
}

/// A directory of the host that a container sees at `at`, read-only.
#[derive(Debug, Clone, Copy)]
pub struct Bind<'a> {
    pub host: &'a Path,
    pub at: &'a str,
}

impl Testbed {
    /// Boots a container for `test`, with this build of core-ops in `/usr/local/bin`; `None`
    /// (after a loud message) when the scenarios cannot run here.
    /// `test` is the test function's own name: skips are recorded and allowed by it.
    pub fn up(test: &str) -> Option<Testbed> {
        Testbed::up_with(test, &[])
    }

    /// [`Testbed::up`], with `binds` mounted into the container.
    pub fn up_with(test: &str, binds: &[Bind]) -> Option<Testbed> {
        let bed = Testbed::mount(test)?;
        bed.install_core_ops();
        bed.boot(binds);
        Some(bed)
    }

    /// A container's root for `test`, fresh from the rootfs and not booted yet, for writing into
    /// it what a first boot finds; [`Testbed::boot`] boots it. `None` as for [`Testbed::up`].
    pub fn mount(test: &str) -> Option<Testbed> {
        // libtest runs each test on a thread named after it.
        if let Some(thread) = std::thread::current().name().filter(|n| *n != "main") {
            assert_eq!(
                test, thread,
                "Testbed::up and Testbed::mount must be given the name of the test that calls them"
            );
        }
        if !testbed_wanted(test) {
            return None;
        }
        let name = machine_name(test, std::process::id());
        // Torn down by drop from here on, even if the mount fails half-way.
        let mut bed = Testbed { name, root: PathBuf::new() };
        bed.root = PathBuf::from(testbed_sh(&["mount", &bed.name], &[]));
        Some(bed)
    }

    /// Copies this build of core-ops to `/usr/local/bin/core-ops`.
    pub fn install_core_ops(&self) {
        std::fs::copy(env!("CARGO_BIN_EXE_core-ops"), self.root.join("usr/local/bin/core-ops")).unwrap();
    }

    /// Boots the container on its root, with `binds` mounted read-only, and returns once systemd
    /// says the system is running (or degraded).
    pub fn boot(&self, binds: &[Bind]) {
        // testbed.sh passes NSPAWN_EXTRA to systemd-nspawn, split at spaces.
        let mut extra: Vec<String> = std::env::var("NSPAWN_EXTRA").into_iter().collect();
        for b in binds {
            let host = b.host.to_str().unwrap();
            assert!(!host.contains([' ', ':']) && !b.at.contains([' ', ':']), "a bind path nspawn cannot take: {b:?}");
            extra.push(format!("--bind-ro={host}:{}", b.at));
        }
        testbed_sh(&["up", &self.name], &[("NSPAWN_EXTRA", extra.join(" "))]);
    }

    /// Runs `args` in the container whatever its exit status: the caller looks at the status.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("bash").arg(script()).args(["exec", &self.name]).args(args).output().unwrap()
    }

    /// Runs `args` in the container and fails unless it exits with `code`.
    #[track_caller]
    pub fn exec_expecting(&self, code: i32, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "`{}` in {}: {:#?}", args.join(" "), self.name, Ran::of(&out));
        out
    }

    /// Runs `args` in the container and fails unless it succeeds.
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_expecting(0, args)
    }

    /// `sh -c command` in the container, which must succeed: its stdout, trimmed.
    #[track_caller]
    pub fn sh(&self, command: &str) -> String {
        Ran::of(&self.exec(&["sh", "-c", command])).stdout
    }

    /// `sh -c command` in the container whatever its exit status, for probes that fail until a
    /// condition holds.
    pub fn probe(&self, command: &str) -> Ran {
        Ran::of(&self.run(&["sh", "-c", command]))
    }

    /// The body served at `url` inside the container, once it answers (HTTP errors count as no
    /// answer); the first answer is returned, not waited for until it looks right.
    #[track_caller]
    pub fn http_get(&self, url: &str) -> String {
        let command = format!("curl -sSf {url}");
        wait_until(DEADLINE, &format!("{url} to answer"), || self.probe(&command), |r| r.code == Some(0)).stdout
    }

    #[track_caller]
    pub fn property(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show -P {property} {unit}"))
    }

    /// The unit's current `InvocationID`; never empty, so two reads compare equal only when they
    /// saw the same run.
    #[track_caller]
    pub fn invocation(&self, unit: &str) -> String {
        let id = self.property(unit, "InvocationID");
        assert!(
            !id.is_empty(),
            "{unit} has an empty InvocationID (ActiveState={}): it is not running, so there is no run to compare",
            self.property(unit, "ActiveState")
        );
        id
    }

    #[track_caller]
    pub fn active(&self, unit: &str) -> String {
        self.property(unit, "ActiveState")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        match Command::new("bash").arg(script()).args(["down", &self.name]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("testbed.sh down {} failed: {:?}", self.name, Ran::of(&out)),
            Err(e) => eprintln!("testbed.sh down {}: {e}", self.name),
        }
    }
}
