//! systemd, through the `Systemd` trait: the real one over D-Bus (`org.freedesktop.systemd1` on
//! the system bus, with `zbus`'s blocking API), and a fake that records calls for tests.
//!
//! Jobs are waited for through the manager's `JobRemoved` signal, which a listener thread
//! forwards; every call names what it was doing when it fails.
//!
//! The fake can watch a root: each call then notes which unit files and links existed there at
//! that moment, so tests check the order of jobs against the writes where it happens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use crate::model::activation::Verb;

/// How long one job may take before CoreOps stops waiting.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Journal lines shown for a failed unit.
pub const JOURNAL_LINES: usize = 15;

/// A unit's state as systemd reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    /// `loaded`, `not-found`, `masked`, …
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, …
    pub active_state: String,
    /// `running`, `exited`, `dead`, …
    pub sub_state: String,
    /// The service's `Result` (`success`, `exit-code`, …), when it is a service.
    pub result: String,
    /// Whether the unit file changed on disk since systemd loaded it.
    pub need_daemon_reload: bool,
    /// The file it was loaded from.
    pub fragment_path: String,
    /// The file it was generated from (Quadlets).
    pub source_path: String,
}

impl UnitState {
    /// Whether the unit runs (or, for a one-shot, ran successfully).
    pub fn is_up(&self) -> bool {
        self.active_state == "active"
            || (self.active_state == "inactive" && self.sub_state == "dead" && self.result == "success")
    }
}

/// What CoreOps asks of systemd.
pub trait Systemd {
    /// Reloads all unit files (once per run, after all writes).
    fn reload(&self) -> Result<()>;
    /// Runs a job (`start`, `restart`, `reload`, `stop`) and waits for its result.
    fn run_job(&self, verb: Verb, unit: &str) -> Result<String>;
    /// The unit's current state (loading it if needed).
    fn unit_state(&self, unit: &str) -> Result<UnitState>;
    /// Enables unit files (`systemctl enable`).
    fn enable(&self, units: &[String]) -> Result<()>;
    /// Disables unit files.
    fn disable(&self, units: &[String]) -> Result<()>;
    /// Masks units.
    fn mask(&self, units: &[String]) -> Result<()>;
    /// Unmasks units.
    fn unmask(&self, units: &[String]) -> Result<()>;
    /// The unit's last journal lines.
    fn journal(&self, unit: &str, lines: usize) -> Vec<String>;
}

/// The `(type, symlink, destination)` changes systemd reports for unit-file operations.
type Changes = Vec<(String, String, String)>;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn enable_unit_files(&self, files: &[&str], runtime: bool, force: bool) -> zbus::Result<(bool, Changes)>;
    fn disable_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Changes>;
    fn mask_unit_files(&self, files: &[&str], runtime: bool, force: bool) -> zbus::Result<Changes>;
    fn unmask_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Changes>;
    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: OwnedObjectPath, unit: String, result: String) -> zbus::Result<()>;
}

#[zbus::proxy(interface = "org.freedesktop.systemd1.Unit", default_service = "org.freedesktop.systemd1")]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn fragment_path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn source_path(&self) -> zbus::Result<String>;
}

#[zbus::proxy(interface = "org.freedesktop.systemd1.Service", default_service = "org.freedesktop.systemd1")]
trait Service {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}

/// systemd on the system bus.
#[derive(Debug)]
pub struct DbusSystemd {
    conn: zbus::blocking::Connection,
    jobs: Mutex<Receiver<(OwnedObjectPath, String)>>,
}

impl DbusSystemd {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured) and subscribes to job
    /// results.
    pub fn connect() -> Result<Self> {
        let conn = zbus::blocking::Connection::system().map_err(|e| {
            anyhow!("cannot reach systemd over the system D-Bus ({e}); run with --offline to only write files")
        })?;
        let manager = ManagerProxyBlocking::new(&conn).context("talking to org.freedesktop.systemd1")?;
        manager.subscribe().context("subscribing to systemd's job signals")?;
        let signals = manager.receive_job_removed().context("listening for JobRemoved")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for signal in signals {
                if let Ok(args) = signal.args() {
                    if tx.send((args.job.clone(), args.result.clone())).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(DbusSystemd { conn, jobs: Mutex::new(rx) })
    }

    fn manager(&self) -> Result<ManagerProxyBlocking<'_>> {
        ManagerProxyBlocking::new(&self.conn).context("talking to org.freedesktop.systemd1")
    }

    fn wait_for(&self, job: &OwnedObjectPath, what: &str) -> Result<String> {
        let jobs = self.jobs.lock().map_err(|_| anyhow!("the job listener failed"))?;
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(left) {
                Ok((path, result)) if &path == job => return Ok(result),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!("{what}: no result after {} s", JOB_TIMEOUT.as_secs()),
                Err(RecvTimeoutError::Disconnected) => bail!("{what}: the connection to systemd closed"),
            }
        }
    }
}

fn files(units: &[String]) -> Vec<&str> {
    units.iter().map(String::as_str).collect()
}

impl Systemd for DbusSystemd {
    fn reload(&self) -> Result<()> {
        self.manager()?.reload().context("reloading systemd (daemon-reload)")
    }

    fn run_job(&self, verb: Verb, unit: &str) -> Result<String> {
        let manager = self.manager()?;
        let what = format!("{} {unit}", verb.name());
        let job = match verb {
            Verb::Start => manager.start_unit(unit, "replace"),
            Verb::Restart => manager.restart_unit(unit, "replace"),
            Verb::Reload => manager.reload_unit(unit, "replace"),
            Verb::Stop => manager.stop_unit(unit, "replace"),
        }
        .with_context(|| what.clone())?;
        self.wait_for(&job, &what)
    }

    fn unit_state(&self, unit: &str) -> Result<UnitState> {
        let path = self.manager()?.load_unit(unit).with_context(|| format!("loading {unit}"))?;
        let u =
            UnitProxyBlocking::builder(&self.conn).path(path.clone())?.cache_properties(CacheProperties::No).build()?;
        let service = if unit.ends_with(".service") {
            Some(ServiceProxyBlocking::builder(&self.conn).path(path)?.cache_properties(CacheProperties::No).build()?)
        } else {
            None
        };
        // Properties are read one by one: read the state around the result until both agree,
        // so a unit failing meanwhile is not reported as failed with `Result=success`.
        let mut active_state = u.active_state()?;
        let (sub_state, result) = loop {
            let sub_state = u.sub_state()?;
            let result = service.as_ref().map(|s| s.result().unwrap_or_default()).unwrap_or_default();
            let again = u.active_state()?;
            if again == active_state {
                break (sub_state, result);
            }
            active_state = again;
        };
        Ok(UnitState {
            load_state: u.load_state()?,
            active_state,
            sub_state,
            result,
            need_daemon_reload: u.need_daemon_reload()?,
            fragment_path: u.fragment_path()?,
            source_path: u.source_path()?,
        })
    }

    fn enable(&self, units: &[String]) -> Result<()> {
        self.manager()?.enable_unit_files(&files(units), false, false).map(|_| ()).context("enabling units")
    }

    fn disable(&self, units: &[String]) -> Result<()> {
        self.manager()?.disable_unit_files(&files(units), false).map(|_| ()).context("disabling units")
    }

    fn mask(&self, units: &[String]) -> Result<()> {
        self.manager()?.mask_unit_files(&files(units), false, false).map(|_| ()).context("masking units")
    }

    fn unmask(&self, units: &[String]) -> Result<()> {
        self.manager()?.unmask_unit_files(&files(units), false).map(|_| ()).context("unmasking units")
    }

    fn journal(&self, unit: &str, lines: usize) -> Vec<String> {
        let out =
            Command::new("journalctl").args(["-u", unit, "-n", &lines.to_string(), "--no-pager", "-o", "cat"]).output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect(),
            Err(e) => vec![format!("(journalctl unavailable: {e})")],
        }
    }
}

/// A systemd that records calls; unit states and job results are scripted.
#[derive(Debug, Default)]
pub struct FakeSystemd {
    /// Every call, as `reload`, `restart caddy.service`, …
    pub calls: Mutex<Vec<String>>,
    /// Unit states by name (missing: loaded and active).
    pub states: Mutex<BTreeMap<String, UnitState>>,
    /// Job results by `verb unit` (missing: `done`).
    pub results: BTreeMap<String, String>,
    /// The root whose unit files each call notes (see [`FakeSystemd::watching`]).
    pub watched_root: Option<PathBuf>,
    /// For each call, the unit files and links that existed under the watched root.
    pub seen: Mutex<Vec<BTreeSet<String>>>,
}

/// Where the fake looks for unit files and links when it watches a root.
const WATCHED_UNIT_DIRS: [&str; 2] = ["etc/systemd/system", "etc/containers/systemd"];

impl FakeSystemd {
    /// A fake that notes, at each call, which unit files and links exist under `root`.
    pub fn watching(root: &Path) -> Self {
        FakeSystemd { watched_root: Some(root.to_path_buf()), ..FakeSystemd::default() }
    }

    fn record(&self, call: String) {
        if let Some(root) = &self.watched_root {
            self.seen.lock().expect("fake lock").push(unit_files_under(root));
        }
        self.calls.lock().expect("fake lock").push(call);
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("fake lock").clone()
    }

    /// The calls so far, each with the unit files and links (as absolute paths in the root) that
    /// existed when it was made. Empty unless the fake watches a root.
    pub fn calls_seeing(&self) -> Vec<(String, BTreeSet<String>)> {
        let seen = self.seen.lock().expect("fake lock").clone();
        self.calls().into_iter().zip(seen).collect()
    }
}

/// Every non-directory below the unit directories of `root`, as `/etc/...` paths.
fn unit_files_under(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<PathBuf> = WATCHED_UNIT_DIRS.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.flatten().map(|e| e.path()) {
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => stack.push(path),
                Ok(_) => {
                    let relative = path.strip_prefix(root).unwrap_or(&path);
                    found.insert(format!("/{}", relative.display()));
                }
                Err(_) => {}
            }
        }
    }
    found
}

impl Systemd for FakeSystemd {
    fn reload(&self) -> Result<()> {
        self.record("reload".into());
        Ok(())
    }

    fn run_job(&self, verb: Verb, unit: &str) -> Result<String> {
        let call = format!("{} {unit}", verb.name());
        self.record(call.clone());
        let result = self.results.get(&call).cloned().unwrap_or_else(|| "done".into());
        let active = match verb {
            Verb::Stop => "inactive",
            _ if result == "done" => "active",
            _ => "failed",
        };
        let mut states = self.states.lock().expect("fake lock");
        let state = states
            .entry(unit.to_string())
            .or_insert_with(|| UnitState { load_state: "loaded".into(), ..UnitState::default() });
        state.active_state = active.into();
        Ok(result)
    }

    fn unit_state(&self, unit: &str) -> Result<UnitState> {
        let states = self.states.lock().expect("fake lock");
        Ok(states.get(unit).cloned().unwrap_or_else(|| UnitState {
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            ..UnitState::default()
        }))
    }

    fn enable(&self, units: &[String]) -> Result<()> {
        self.record(format!("enable {}", units.join(" ")));
        Ok(())
    }

    fn disable(&self, units: &[String]) -> Result<()> {
        self.record(format!("disable {}", units.join(" ")));
        Ok(())
    }

    fn mask(&self, units: &[String]) -> Result<()> {
        self.record(format!("mask {}", units.join(" ")));
        Ok(())
    }

    fn unmask(&self, units: &[String]) -> Result<()> {
        self.record(format!("unmask {}", units.join(" ")));
        Ok(())
    }

    fn journal(&self, unit: &str, _lines: usize) -> Vec<String> {
        vec![format!("(fake journal of {unit})")]
    }
}
