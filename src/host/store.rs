//! `/var/lib/core-ops` under the root: the state file, the history of applied snapshots, the
//! audit log, and the run lock (`/run/core-ops/lock`). Every write is atomic.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::host::root::Root;
use crate::model::ignition::types::Config;
use crate::model::plan::Observed;
use crate::model::source::compose::{EntryKey, Origin};
use crate::model::state::{self, HISTORY_KEEP, SourceRef, State};

/// Where CoreOps keeps its state.
pub const STATE_DIR: &str = "/var/lib/core-ops";
/// The state file.
pub const STATE_FILE: &str = "/var/lib/core-ops/state.json";
/// Snapshots of applied revisions.
pub const HISTORY_DIR: &str = "/var/lib/core-ops/history";
/// One JSON line per run.
pub const AUDIT_LOG: &str = "/var/lib/core-ops/audit.log";
/// The run lock.
pub const LOCK_FILE: &str = "/run/core-ops/lock";
/// Mode of state files (not readable by others: they name every managed path).
const STATE_MODE: u32 = 0o600;

/// The current time as RFC 3339 UTC.
pub fn now() -> String {
    state::rfc3339(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// An exclusive lock held for a whole run; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _fd: OwnedFd,
}

/// Takes the run lock, waiting up to `timeout` for another run to finish.
pub fn lock(root: &Root, timeout: Duration) -> Result<RunLock> {
    let (dir, name) = LOCK_FILE.rsplit_once('/').expect("the lock path has a directory");
    let dir_fd = root.open_dir(dir, true)?;
    let fd = rustix::fs::openat(
        &dir_fd,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .with_context(|| format!("opening the lock {}{LOCK_FILE}", root.path().display()))?;
    let started = Instant::now();
    loop {
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(RunLock { _fd: fd }),
            Err(Errno::WOULDBLOCK) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            Err(Errno::WOULDBLOCK) => bail!(
                "another core-ops run holds {}{LOCK_FILE}; waited {} s for it (raise --lock-timeout to wait longer)",
                root.path().display(),
                timeout.as_secs()
            ),
            Err(e) => return Err(e).context("taking the run lock"),
        }
    }
}

/// Reads the state; a missing file is a fresh state. A corrupt file is an error that says how
/// to recover.
pub fn load_state(root: &Root) -> Result<State> {
    match root.observe(STATE_FILE) {
        Observed::Missing => Ok(State::new()),
        Observed::File { bytes: Some(bytes), .. } => state::parse(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{e}: {}{STATE_FILE}. Move it aside (it is kept as evidence) and run `core-ops apply --adopt` to rebuild ownership from the host, or restore it from {}{HISTORY_DIR}",
                root.path().display(),
                root.path().display()
            )
        }),
        other => bail!("{}{STATE_FILE} is not a readable file ({other:?})", root.path().display()),
    }
}

/// Writes the state atomically.
pub fn save_state(root: &Root, s: &State) -> Result<()> {
    write_atomic(root, STATE_FILE, &state::to_bytes(s))
}

fn write_atomic(root: &Root, path: &str, bytes: &[u8]) -> Result<()> {
    let staged = root.stage_file(path, bytes, STATE_MODE, 0, 0)?;
    root.sync_staged(&staged)?;
    root.commit(staged, false)?;
    root.sync_dir_of(path)
}

/// A snapshot of an applied revision: enough to plan back to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The generation it was applied as.
    pub generation: u64,
    /// Revision id.
    pub revision: String,
    /// When it converged.
    pub applied_at: String,
    /// Where it came from.
    pub source: Option<SourceRef>,
    /// The host name.
    pub host: String,
    /// The desired config (Ignition JSON).
    pub config: serde_json::Value,
    /// Origins of its entries.
    pub origins: Vec<SnapshotOrigin>,
}

/// One entry's origin in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotOrigin {
    /// The entry, as `plan` names it.
    pub entry: String,
    /// Declaring file.
    pub file: String,
    /// YAML path.
    pub path: Option<String>,
}

/// Saves a snapshot and keeps only the newest [`HISTORY_KEEP`].
pub fn save_snapshot(root: &Root, snap: &Snapshot) -> Result<()> {
    let name = format!("{HISTORY_DIR}/{:08}-{}.json", snap.generation, snap.revision);
    let mut bytes = serde_json::to_vec_pretty(snap)?;
    bytes.push(b'\n');
    write_atomic(root, &name, &bytes)?;
    let mut names = list_history(root)?;
    while names.len() > HISTORY_KEEP {
        let oldest = names.remove(0);
        root.remove(&format!("{HISTORY_DIR}/{oldest}"))?;
    }
    Ok(())
}

/// History file names, oldest first.
pub fn list_history(root: &Root) -> Result<Vec<String>> {
    let Ok(fd) = root.open_dir(HISTORY_DIR, false) else { return Ok(Vec::new()) };
    let mut names: Vec<String> = crate::host::fs::dir_names(&fd)
        .context("listing the history")?
        .into_iter()
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Loads the snapshot of `revision` (or the one before the current, when `None`).
pub fn load_snapshot(root: &Root, revision: Option<&str>, current: Option<&str>) -> Result<Snapshot> {
    let names = list_history(root)?;
    let rev_of =
        |n: &String| n.trim_end_matches(".json").split_once('-').map(|(_, r)| r.to_string()).unwrap_or_default();
    let chosen = match revision {
        Some(rev) => match names.iter().rev().find(|n| rev_of(n) == rev) {
            Some(exact) => Some(exact),
            None => {
                let mut prefixed: Vec<&String> = names.iter().rev().filter(|n| rev_of(n).starts_with(rev)).collect();
                prefixed.dedup_by_key(|n| rev_of(n));
                if prefixed.len() > 1 {
                    let all: Vec<String> = prefixed.iter().map(|n| rev_of(n)).collect();
                    bail!("revision {rev} is ambiguous: it starts {}", all.join(", "));
                }
                prefixed.first().copied()
            }
        },
        None => names.iter().rev().find(|n| current.is_none_or(|c| rev_of(n) != c)),
    };
    let Some(name) = chosen else {
        let have: Vec<String> = names.iter().map(|n| n.trim_end_matches(".json").to_string()).collect();
        bail!(
            "no applied snapshot {} in {}{HISTORY_DIR} (kept: {})",
            revision.map_or("before the current revision".to_string(), |r| format!("for revision {r}")),
            root.path().display(),
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        );
    };
    let bytes = root.read(&format!("{HISTORY_DIR}/{name}")).with_context(|| format!("reading {name}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{HISTORY_DIR}/{name} is corrupt"))
}

/// Origins in snapshot form.
pub fn snapshot_origins(origins: &BTreeMap<EntryKey, Origin>) -> Vec<SnapshotOrigin> {
    origins
        .iter()
        .map(|(k, o)| SnapshotOrigin { entry: entry_key_text(k), file: o.file.clone(), path: o.path.clone() })
        .collect()
}

/// Origins back from snapshot form.
pub fn origins_from_snapshot(snap: &Snapshot) -> BTreeMap<EntryKey, Origin> {
    snap.origins
        .iter()
        .filter_map(|o| Some((entry_key_parse(&o.entry)?, Origin { file: o.file.clone(), path: o.path.clone() })))
        .collect()
}

fn entry_key_text(k: &EntryKey) -> String {
    match k {
        EntryKey::Node(p) => format!("node\t{p}"),
        EntryKey::Unit(u) => format!("unit\t{u}"),
        EntryKey::Dropin(u, d) => format!("dropin\t{u}\t{d}"),
        EntryKey::Other(s, key) => format!("other\t{s}\t{key}"),
    }
}

fn entry_key_parse(text: &str) -> Option<EntryKey> {
    let parts: Vec<&str> = text.split('\t').collect();
    Some(match parts.as_slice() {
        ["node", p] => EntryKey::Node((*p).to_string()),
        ["unit", u] => EntryKey::Unit((*u).to_string()),
        ["dropin", u, d] => EntryKey::Dropin((*u).to_string(), (*d).to_string()),
        ["other", s, k] => EntryKey::Other((*s).to_string(), (*k).to_string()),
        _ => return None,
    })
}

/// The config of a snapshot.
pub fn snapshot_config(snap: &Snapshot) -> Result<Config> {
    let text = serde_json::to_string(&snap.config)?;
    let parsed = crate::model::ignition::spec::parse(&text)
        .map_err(|e| anyhow::anyhow!("snapshot {} is unreadable: {e:?}", snap.revision))?;
    Ok(parsed.config)
}

/// Appends one line to the audit log (created 0600).
pub fn audit(root: &Root, line: &serde_json::Value) -> Result<()> {
    let (dir, name) = AUDIT_LOG.rsplit_once('/').expect("the audit log has a directory");
    let dir_fd = root.open_dir(dir, true)?;
    let fd = rustix::fs::openat(
        &dir_fd,
        name,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(STATE_MODE),
    )
    .context("opening the audit log")?;
    let mut text = serde_json::to_string(line)?;
    text.push('\n');
    use std::io::Write;
    let mut file = std::fs::File::from(fd);
    file.write_all(text.as_bytes()).context("writing the audit log")?;
    file.sync_data().context("syncing the audit log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_corruption_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(load_state(&root).unwrap(), State::new(), "no file: fresh state");
        let mut s = State::new();
        s.generation = 7;
        save_state(&root, &s).unwrap();
        assert_eq!(load_state(&root).unwrap().generation, 7);
        std::fs::write(dir.path().join("var/lib/core-ops/state.json"), "{broken").unwrap();
        let err = load_state(&root).unwrap_err().to_string();
        assert!(err.contains("the state file is corrupt") && err.contains("--adopt"), "{err}");
    }

    #[test]
    fn a_second_lock_waits_then_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let held = lock(&root, Duration::from_secs(1)).unwrap();
        let err = lock(&root, Duration::from_millis(200)).unwrap_err().to_string();
        assert!(err.contains("another core-ops run holds"), "{err}");
        drop(held);
        assert!(lock(&root, Duration::from_millis(200)).is_ok());
    }

    #[test]
    fn history_keeps_the_newest_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        for generation in 1..=12u64 {
            let snap = Snapshot {
                generation,
                revision: format!("r{generation}"),
                applied_at: now(),
                source: None,
                host: "h".into(),
                config: serde_json::json!({"ignition": {"version": "3.5.0"}}),
                origins: Vec::new(),
            };
            save_snapshot(&root, &snap).unwrap();
        }
        let names = list_history(&root).unwrap();
        assert_eq!(names.len(), HISTORY_KEEP);
        assert_eq!(names[0], "00000003-r3.json");
        assert_eq!(load_snapshot(&root, Some("r5"), None).unwrap().generation, 5);
        assert_eq!(load_snapshot(&root, None, Some("r12")).unwrap().generation, 11);
        assert!(load_snapshot(&root, Some("r1"), None).unwrap_err().to_string().contains("ambiguous"));
        assert!(
            load_snapshot(&root, Some("r2"), None)
                .unwrap_err()
                .to_string()
                .contains("no applied snapshot for revision r2")
        );
    }
}
