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

/// The file name of a snapshot in [`HISTORY_DIR`].
fn snapshot_name(generation: u64, revision: &str) -> String {
    format!("{generation:08}-{revision}.json")
}

/// The generation and revision a history file name stands for.
fn parse_snapshot_name(name: &str) -> Option<(u64, &str)> {
    let (generation, revision) = name.strip_suffix(".json")?.split_once('-')?;
    Some((generation.parse().ok()?, revision))
}

/// Saves a snapshot, drops any snapshot of the same or a later generation (left by a run that
/// was interrupted before the state recorded it), and keeps only the newest [`HISTORY_KEEP`].
///
/// An apply saves the snapshot *before* the state records its revision as applied, so a
/// revision that the state records always has its snapshot, wherever a crash hits.
pub fn save_snapshot(root: &Root, snap: &Snapshot) -> Result<()> {
    let name = snapshot_name(snap.generation, &snap.revision);
    let mut bytes = serde_json::to_vec_pretty(snap)?;
    bytes.push(b'\n');
    write_atomic(root, &format!("{HISTORY_DIR}/{name}"), &bytes)?;
    let mut names = history_files(root)?;
    for unrecorded in
        names.iter().filter(|n| **n != name && parse_snapshot_name(n).is_some_and(|(g, _)| g >= snap.generation))
    {
        root.remove(&format!("{HISTORY_DIR}/{unrecorded}"))?;
    }
    names.retain(|n| *n == name || parse_snapshot_name(n).is_some_and(|(g, _)| g < snap.generation));
    while names.len() > HISTORY_KEEP {
        let oldest = names.remove(0);
        root.remove(&format!("{HISTORY_DIR}/{oldest}"))?;
    }
    Ok(())
}

/// Whether the history holds the snapshot of the revision the state records as applied (or the
/// state records none).
pub fn has_applied_snapshot(root: &Root, state: &State) -> bool {
    let Some(applied) = &state.last_applied else { return true };
    let path = format!("{HISTORY_DIR}/{}", snapshot_name(state.generation, &applied.revision));
    matches!(root.observe(&path), Observed::File { .. })
}

/// Every history file name, oldest first, whether or not the state recorded it.
fn history_files(root: &Root) -> Result<Vec<String>> {
    let Ok(fd) = root.open_dir(HISTORY_DIR, false) else { return Ok(Vec::new()) };
    let mut names: Vec<String> = crate::host::fs::dir_names(&fd)
        .context("listing the history")?
        .into_iter()
        .filter(|n| !n.starts_with('.') && parse_snapshot_name(n).is_some())
        .collect();
    names.sort();
    Ok(names)
}

/// The names of the snapshots of applied revisions, oldest first: a snapshot of a generation
/// the state has not recorded (its run was interrupted) is not part of the history.
pub fn list_history(root: &Root, state: &State) -> Result<Vec<String>> {
    let mut names = history_files(root)?;
    names.retain(|n| parse_snapshot_name(n).is_some_and(|(g, _)| g <= state.generation));
    Ok(names)
}

/// Loads the snapshot of `revision` (a prefix is enough), or, when `None`, the newest one of
/// another revision than the one the state records as applied.
pub fn load_snapshot(root: &Root, revision: Option<&str>, state: &State) -> Result<Snapshot> {
    let names = list_history(root, state)?;
    let current = state.last_applied.as_ref().map(|a| a.revision.as_str());
    let rev_of = |n: &String| parse_snapshot_name(n).map(|(_, r)| r.to_string()).unwrap_or_default();
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

    fn snapshot(generation: u64, revision: &str) -> Snapshot {
        Snapshot {
            generation,
            revision: revision.to_string(),
            applied_at: now(),
            source: None,
            host: "h".into(),
            config: serde_json::json!({"ignition": {"version": "3.5.0"}}),
            origins: Vec::new(),
        }
    }

    /// A state that records `revision` as applied in `generation`.
    fn recorded(generation: u64, revision: &str) -> State {
        State {
            generation,
            last_applied: Some(state::Applied {
                revision: revision.to_string(),
                applied_at: now(),
                objects: Vec::new(),
                absent: Vec::new(),
                units: Vec::new(),
                input_digest: None,
            }),
            ..State::default()
        }
    }

    #[test]
    fn history_keeps_the_newest_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        for generation in 1..=12u64 {
            save_snapshot(&root, &snapshot(generation, &format!("r{generation}"))).unwrap();
        }
        let state = recorded(12, "r12");
        let names = list_history(&root, &state).unwrap();
        assert_eq!(names.len(), HISTORY_KEEP);
        assert_eq!(names[0], "00000003-r3.json");
        assert_eq!(load_snapshot(&root, Some("r5"), &state).unwrap().generation, 5);
        assert_eq!(load_snapshot(&root, None, &state).unwrap().generation, 11);
        assert!(load_snapshot(&root, Some("r1"), &state).unwrap_err().to_string().contains("ambiguous"));
        assert!(
            load_snapshot(&root, Some("r2"), &state)
                .unwrap_err()
                .to_string()
                .contains("no applied snapshot for revision r2")
        );
    }

    #[test]
    fn a_snapshot_the_state_never_recorded_is_not_history() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        save_snapshot(&root, &snapshot(1, "a")).unwrap();
        // A run of revision b saved its snapshot, then died before recording it.
        save_snapshot(&root, &snapshot(2, "b")).unwrap();
        let state = recorded(1, "a");
        assert!(has_applied_snapshot(&root, &state));
        assert_eq!(list_history(&root, &state).unwrap(), ["00000001-a.json"]);
        assert!(load_snapshot(&root, Some("b"), &state).is_err(), "b was never applied");
        // The next run applies c as generation 2: b's orphan goes.
        save_snapshot(&root, &snapshot(2, "c")).unwrap();
        assert_eq!(history_files(&root).unwrap(), ["00000001-a.json", "00000002-c.json"]);
        assert!(!has_applied_snapshot(&root, &recorded(3, "d")), "d has no snapshot");
    }
}
