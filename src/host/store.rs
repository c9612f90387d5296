//! `/var/lib/core-ops` under the root: the state file, the history of applied snapshots, the
//! audit log, the agent's record, and the run lock (`/run/core-ops/lock`). Every write is atomic.
//!
//! These files decide what CoreOps deletes and where it appends, so they are trusted only when
//! no one but root could have changed them. Each is opened without following a symlink and
//! without blocking, and must be a regular file with one link, owned by root (or by the user
//! running core-ops); its directories must be real directories owned by root. Anything else is
//! refused with the path and the fix. Modes that let others read a file or write a directory are
//! repaired (0600, 0700) by a run that holds the lock, and reported. A run checks all of this
//! right after taking the lock, before it changes anything. A user who is not root may be denied
//! the state; [`read_state`] tells that apart for `plan`, which goes on without it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::host::root::Root;
use crate::model::agent::AgentRecord;
use crate::model::ignition::types::Config;
use crate::model::json::Json;
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
/// The agent's record: suspension, last fetch, baseline, refused tip, last cycle.
pub const AGENT_FILE: &str = "/var/lib/core-ops/agent.json";
/// The bare cache of the tracked repository.
pub const REPO_CACHE: &str = "/var/lib/core-ops/repo.git";
/// The directory of the run lock.
pub const RUN_DIR: &str = "/run/core-ops";
/// The run lock.
pub const LOCK_FILE: &str = "/run/core-ops/lock";
/// Mode of state files (not readable by others: they name every managed path).
const STATE_MODE: u32 = 0o600;
/// Mode of the history and lock directories, and of any of CoreOps's directories found
/// writable by others.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode the state directory is created with: the one Ignition gives it at first boot, when it
/// writes the ownership record `render-ignition` embeds, so that both write the same tree. Its
/// files are 0600.
const STATE_DIR_MODE: u32 = 0o755;

/// The current time as RFC 3339 UTC.
pub fn now() -> String {
    state::rfc3339(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// An exclusive lock held for a whole run; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _fd: OwnedFd,
}

/// The run directory of `root`, where the lock is: a run that holds the lock keeps its scratch
/// files there (on a host, `/run` is a tmpfs).
pub fn run_dir(root: &Root) -> PathBuf {
    root.path().join(RUN_DIR.trim_start_matches('/'))
}

/// Takes the run lock, waiting up to `timeout` for another run to finish, then checks the state
/// directory (see `check_state_dir`): a run that holds the lock may trust what it reads there
/// and write to it.
pub fn lock(root: &Root, timeout: Duration) -> Result<RunLock> {
    let taking = || format!("taking the run lock {}", shown(root, LOCK_FILE));
    let dir_fd = open_state_dir(root, RUN_DIR, Some(PRIVATE_DIR_MODE), Repair::Yes)
        .with_context(taking)?
        .ok_or_else(|| anyhow!("{} could not be created", shown(root, RUN_DIR)))?;
    let fd = open_or_create(root, &dir_fd, LOCK_FILE, Access::Lock).with_context(taking)?;
    let started = Instant::now();
    loop {
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(Errno::WOULDBLOCK) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            Err(Errno::WOULDBLOCK) => bail!(
                "another core-ops run holds {}; waited {} s for it (raise --lock-timeout to wait longer)",
                shown(root, LOCK_FILE),
                timeout.as_secs()
            ),
            Err(e) => return Err(e).context("taking the run lock"),
        }
    }
    check_state_dir(root)?;
    Ok(RunLock { _fd: fd })
}

/// Checks everything a run reads or appends to under the state directory, before it changes
/// anything: the directory, the state file, the audit log, the history directory and its
/// snapshots (see the module header for what is refused and what is repaired). Leftover temp
/// files of interrupted writes there are removed.
fn check_state_dir(root: &Root) -> Result<()> {
    let Some(dir_fd) = open_state_dir(root, STATE_DIR, None, Repair::Yes)? else { return Ok(()) };
    for file in [STATE_FILE, AUDIT_LOG, AGENT_FILE] {
        open_state_file(root, &dir_fd, file, Access::Check)?;
    }
    root.clean_temp_files(STATE_DIR)?;
    let Some(history_fd) = open_state_dir(root, HISTORY_DIR, None, Repair::Yes)? else { return Ok(()) };
    for name in history_files(root)? {
        open_state_file(root, &history_fd, &format!("{HISTORY_DIR}/{name}"), Access::Check)?;
    }
    root.clean_temp_files(HISTORY_DIR)?;
    Ok(())
}

/// Reads the state; a missing file is a fresh state. A corrupt file is an error that says how
/// to recover.
pub fn load_state(root: &Root) -> Result<State> {
    let Some(bytes) = read_state_file(root, STATE_FILE)? else { return Ok(State::new()) };
    state::parse(&bytes).map_err(|e| {
        anyhow!(
            "{e}: {}. Move it aside (it is kept as evidence) and run `core-ops apply --adopt` to rebuild ownership from the host, or restore it from {}",
            shown(root, STATE_FILE),
            shown(root, HISTORY_DIR)
        )
    })
}

/// The state as a command that only reads it (`plan`) finds it.
// One per run, moved once: boxing the state would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRead {
    /// The state (a fresh one when there is none).
    Read(State),
    /// CoreOps runs without root, and the state cannot be read for lack of permission (EACCES):
    /// it is root's alone (0600, in directories root may close). `file` is the state file as
    /// the operator finds it.
    Denied {
        /// The state file, under the root.
        file: String,
    },
}

/// Reads the state as [`load_state`] does, except that a user who is not root, denied it
/// (EACCES) gets [`StateRead::Denied`]: a command that only reads may go on without it, and say
/// so. Anything else stays an error: a corrupt or untrusted state, and a denial to root (a
/// security policy), which running as root would not mend.
pub fn read_state(root: &Root) -> Result<StateRead> {
    match load_state(root) {
        Ok(state) => Ok(StateRead::Read(state)),
        Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::ACCESS) && !rustix::process::geteuid().is_root() => {
            Ok(StateRead::Denied { file: shown(root, STATE_FILE) })
        }
        Err(e) => Err(e),
    }
}

/// Writes the state as `render-ignition` embeds it in a first-boot config (pretty), so that
/// applying such a config leaves the very bytes Ignition's first boot would.
pub fn save_first_boot_state(root: &Root, s: &State) -> Result<()> {
    write_atomic(root, STATE_FILE, &state::to_bytes(s))
}

/// Writes the state atomically, compact.
pub fn save_state(root: &Root, s: &State) -> Result<()> {
    stage_state(root, s)?.commit(root)
}

/// Writes the state under a temporary name next to the state file, synced: [`Record::commit`]
/// puts it in place.
pub fn stage_state(root: &Root, s: &State) -> Result<Record> {
    stage_atomic_with(root, STATE_FILE, &mut |w| state::write_compact(s, w))
}

/// One of CoreOps's files written and synced under a temporary name next to its place, not yet
/// in place: the file in place stays as it is until [`Record::commit`]. A record that is not
/// committed is removed again with [`Record::discard`] (or, after a crash, by the next run).
#[derive(Debug)]
pub struct Record {
    staged: crate::host::fs::Staged,
}

impl Record {
    /// Puts the record in place atomically and syncs its directory.
    pub fn commit(self, root: &Root) -> Result<()> {
        let path = self.staged.path().to_string();
        let committed = root.commit(self.staged, false).and_then(|()| root.sync_dir_of(&path));
        committed.with_context(|| format!("saving {}", shown(root, &path)))
    }

    /// Removes the record, leaving the file in place as it was.
    pub fn discard(self, root: &Root) {
        root.discard(&self.staged);
    }
}

/// Reads the agent's record; a missing file is a fresh record. A corrupt one is an error that
/// says how to recover.
pub fn load_agent(root: &Root) -> Result<AgentRecord> {
    let Some(bytes) = read_state_file(root, AGENT_FILE)? else { return Ok(AgentRecord::new()) };
    AgentRecord::parse(&bytes).map_err(|e| {
        anyhow!(
            "{e}: {}. Move it aside and run `core-ops init --force` with the repository and ref of \
             /etc/core-ops/tracking.yaml to start the record afresh",
            shown(root, AGENT_FILE)
        )
    })
}

/// Writes the agent's record atomically.
pub fn save_agent(root: &Root, record: &AgentRecord) -> Result<()> {
    write_atomic(root, AGENT_FILE, &record.to_bytes())
}

/// Replaces `path` with `bytes` atomically: the old file stays whole until the new one is
/// complete and synced, and a write that fails (a full disk) leaves no temp file behind.
fn write_atomic(root: &Root, path: &str, bytes: &[u8]) -> Result<()> {
    write_atomic_with(root, path, &mut |w| w.write_all(bytes))
}

/// [`write_atomic`] for content that `fill` writes as it is made (never held whole in memory).
fn write_atomic_with(
    root: &Root,
    path: &str,
    fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    stage_atomic_with(root, path, fill)?.commit(root)
}

/// The first half of [`write_atomic_with`]: the content written and synced under a temporary
/// name (removed again if that fails).
fn stage_atomic_with(
    root: &Root,
    path: &str,
    fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Record> {
    let (dir, _) = path.rsplit_once('/').expect("state paths are absolute");
    let create_mode = if dir == STATE_DIR { STATE_DIR_MODE } else { PRIVATE_DIR_MODE };
    let staged = (|| {
        open_state_dir(root, dir, Some(create_mode), Repair::Yes)?;
        let staged = root.stage_file_with(path, STATE_MODE, 0, 0, fill)?;
        if let Err(e) = root.sync_staged(&staged) {
            root.discard(&staged);
            return Err(e);
        }
        Ok(Record { staged })
    })();
    staged.with_context(|| format!("saving {}", shown(root, path)))
}

/// Whether a state path with too wide a mode is repaired (by a run holding the lock) or only
/// read as it is (`plan`, `status`, `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    Yes,
    No,
}

/// How one of CoreOps's files is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read it as it is.
    Read,
    /// Check it and repair its mode (a run holding the lock).
    Check,
    /// Append to it (the audit log), creating it.
    Append,
    /// Lock it (the run lock), creating it.
    Lock,
}

impl Access {
    fn flags(self) -> OFlags {
        match self {
            Access::Read | Access::Check => OFlags::RDONLY,
            Access::Append => OFlags::WRONLY | OFlags::APPEND,
            Access::Lock => OFlags::RDWR,
        }
    }

    fn repair(self) -> Repair {
        if self == Access::Read { Repair::No } else { Repair::Yes }
    }
}

/// `path` under the root, as the operator finds it.
fn shown(root: &Root, path: &str) -> String {
    format!("{}{path}", root.path().display().to_string().trim_end_matches('/'))
}

/// Whether `uid` may own CoreOps's files: root, or the user running core-ops (who can only
/// manage a root of their own).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// The refusal of a state path owned by another user.
fn foreign_owner(root: &Root, path: &str, uid: u32) -> anyhow::Error {
    let at = shown(root, path);
    anyhow!(
        "{at} is owned by uid {uid}, not by root: another user could have written what CoreOps would trust there, \
         so nothing was changed. Check it, then `chown root:root {at}`"
    )
}

/// Opens CoreOps's directory `dir` (its parents are walked without following symlinks and
/// created 0755 when `create_mode` is given; `dir` itself is created with `create_mode`).
/// `None`: it does not exist. A symlink or non-directory there, or a directory owned by another
/// user, is refused; one that others can write to is repaired to 0700 when `repair` says so.
fn open_state_dir(root: &Root, dir: &str, create_mode: Option<u32>, repair: Repair) -> Result<Option<OwnedFd>> {
    let (parent, name) = dir.rsplit_once('/').expect("state directories are absolute");
    let parent_fd = match root.open_dir(parent, create_mode.is_some()) {
        Ok(fd) => fd,
        Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(&parent_fd, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => match create_mode {
            None => return Ok(None),
            Some(mode) => create_state_dir(root, &parent_fd, dir, mode)?,
        },
        Err(Errno::NOTDIR | Errno::LOOP) => bail!(
            "{} is a symlink or not a directory; CoreOps keeps its state only in a real directory under the root, so \
             nothing was changed. Move it aside and run again",
            shown(root, dir)
        ),
        Err(e) => return Err(e).with_context(|| format!("opening {}", shown(root, dir))),
    };
    let st = rustix::fs::fstat(&fd).with_context(|| format!("inspecting {}", shown(root, dir)))?;
    if !trusted_owner(st.st_uid) {
        return Err(foreign_owner(root, dir, st.st_uid));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 && repair == Repair::Yes {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(PRIVATE_DIR_MODE))
            .with_context(|| format!("repairing the mode of {}", shown(root, dir)))?;
        tracing::warn!(
            "{} was writable by others (mode {mode:04o}); repaired to {PRIVATE_DIR_MODE:04o}. Check what is in it",
            shown(root, dir)
        );
    }
    Ok(Some(fd))
}

fn create_state_dir(root: &Root, parent: &OwnedFd, dir: &str, mode: u32) -> Result<OwnedFd> {
    let name = dir.rsplit_once('/').map_or(dir, |(_, n)| n);
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", shown(root, dir))),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())
        .with_context(|| format!("opening {}", shown(root, dir)))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).with_context(|| format!("setting the mode of {dir}"))?;
    rustix::fs::fsync(parent).with_context(|| format!("syncing the parent of {}", shown(root, dir)))?;
    Ok(fd)
}

/// What kind of node a mode names, for messages.
fn kind_name(mode: u32) -> &'static str {
    match FileType::from_raw_mode(mode) {
        FileType::Fifo => "a FIFO",
        FileType::Symlink => "a symlink",
        FileType::Directory => "a directory",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Socket => "a socket",
        _ => "not a regular file",
    }
}

/// Refuses a state file that is not a regular file, has other hard links (a write to it could
/// reach a file outside the root) or belongs to another user.
fn check_state_file(root: &Root, path: &str, st: &rustix::fs::Stat) -> Result<()> {
    let at = shown(root, path);
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        bail!(
            "{at} is {}, not a regular file; CoreOps keeps its state and logs only in regular files, so nothing was \
             changed. Move it aside and run again",
            kind_name(st.st_mode)
        );
    }
    if st.st_nlink > 1 {
        bail!(
            "{at} has {} hard links; a file of CoreOps's must have only one, or writing it could change a file \
             outside the root, so nothing was changed. Find its other names (`find / -xdev -samefile {at}`), then \
             give it an inode of its own: `cp -p {at} {at}.new && mv {at}.new {at}`",
            st.st_nlink
        );
    }
    if !trusted_owner(st.st_uid) {
        return Err(foreign_owner(root, path, st.st_uid));
    }
    Ok(())
}

/// Opens CoreOps's file `path` in its directory `dir`, as `access` says, without following a
/// symlink and without blocking, after [`check_state_file`]. `None`: it does not exist (and
/// `access` does not create it). A mode that lets others in is repaired to 0600 unless only
/// reading.
fn open_state_file(root: &Root, dir: &OwnedFd, path: &str, access: Access) -> Result<Option<OwnedFd>> {
    let name = path.rsplit_once('/').map_or(path, |(_, n)| n);
    let at = || shown(root, path);
    let flags = access.flags() | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let before = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) if matches!(access, Access::Append | Access::Lock) => {
            let fd =
                rustix::fs::openat(dir, name, flags | OFlags::CREATE | OFlags::EXCL, Mode::from_raw_mode(STATE_MODE))
                    .with_context(|| format!("creating {}", at()))?;
            return Ok(Some(fd));
        }
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", at())),
    };
    // Checked before it is opened, so that a FIFO or a device is never opened at all.
    check_state_file(root, path, &before)?;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).with_context(|| format!("opening {}", at()))?;
    let st = rustix::fs::fstat(&fd).with_context(|| format!("inspecting {}", at()))?;
    if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) {
        bail!("{} was replaced while it was being opened; nothing was changed", at());
    }
    check_state_file(root, path, &st)?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o7077 != 0 && access.repair() == Repair::Yes {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(STATE_MODE))
            .with_context(|| format!("repairing the mode of {}", at()))?;
        tracing::warn!("{} was open to others (mode {mode:04o}); repaired to {STATE_MODE:04o}", at());
    }
    Ok(Some(fd))
}

/// [`open_state_file`] for an access that creates the file.
fn open_or_create(root: &Root, dir: &OwnedFd, path: &str, access: Access) -> Result<OwnedFd> {
    open_state_file(root, dir, path, access)?.ok_or_else(|| anyhow!("{} could not be created", shown(root, path)))
}

/// The bytes of CoreOps's file `path` (in [`STATE_DIR`] or below), checked as
/// [`open_state_file`] checks it, or `None` when it (or its directory) does not exist.
fn read_state_file(root: &Root, path: &str) -> Result<Option<Vec<u8>>> {
    let (dir, _) = path.rsplit_once('/').expect("state paths are absolute");
    if dir != STATE_DIR && open_state_dir(root, STATE_DIR, None, Repair::No)?.is_none() {
        return Ok(None);
    }
    let Some(dir_fd) = open_state_dir(root, dir, None, Repair::No)? else { return Ok(None) };
    let Some(fd) = open_state_file(root, &dir_fd, path, Access::Read)? else { return Ok(None) };
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes).with_context(|| format!("reading {}", shown(root, path)))?;
    Ok(Some(bytes))
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
    /// The desired config (Ignition JSON), written compact; a snapshot written pretty (before
    /// CoreOps wrote them compact) reads the same.
    #[serde(with = "config_json")]
    pub config: SnapshotConfig,
    /// Origins of its entries.
    pub origins: Vec<SnapshotOrigin>,
    /// How the run that applied it ended (`converged`, or `failed` when units did not come
    /// up); absent in snapshots written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What that run changed; absent in snapshots written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// Earlier generations that applied this same revision, newest first: a revision takes one
    /// slot of the history however often it is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Generation>,
}

/// What a run changed on the host, by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Objects created.
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Objects deleted.
    pub deleted: usize,
}

/// One applied generation, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The generation.
    pub generation: u64,
    /// The revision it applied.
    pub revision: String,
    /// When.
    pub applied_at: String,
    /// Where the desired state came from.
    pub source: Option<SourceRef>,
    /// How the run ended, when recorded.
    pub result: Option<String>,
    /// What it changed, when recorded.
    pub changes: Option<Changes>,
}

/// The config of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotConfig {
    /// As a snapshot file holds it.
    Read(Json),
    /// The config an apply applied, shared with it: written as it goes, never copied.
    Applied(Arc<Config>),
}

impl Snapshot {
    /// The generations that applied this snapshot's revision, newest first.
    pub fn generations(&self) -> Vec<Generation> {
        let own = Generation {
            generation: self.generation,
            revision: self.revision.clone(),
            applied_at: self.applied_at.clone(),
            source: self.source.clone(),
            result: self.result.clone(),
            changes: self.changes,
        };
        let mut all: Vec<Generation> = std::iter::once(own).chain(self.earlier.iter().cloned()).collect();
        all.sort_by_key(|g| std::cmp::Reverse(g.generation));
        all.dedup_by_key(|g| g.generation);
        all
    }
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
/// was interrupted before the state recorded it), and keeps the newest [`HISTORY_KEEP`]
/// revisions: a revision applied again (a rollback) takes no second slot. The older snapshots
/// of such a revision are folded into its newest recorded one ([`Snapshot::earlier`]) once the
/// state has recorded both.
///
/// An apply saves the snapshot *before* the state records its revision as applied, so a
/// revision that the state records always has its snapshot, wherever a crash hits: every
/// snapshot removed here is either unrecorded or folded (atomically) into a recorded one first.
pub fn save_snapshot(root: &Root, snap: &Snapshot) -> Result<()> {
    stage_snapshot(root, snap)?.commit(root)
}

/// A snapshot written and synced under a temporary name in the history: [`StagedSnapshot::commit`]
/// saves it as [`save_snapshot`] does.
#[derive(Debug)]
pub struct StagedSnapshot {
    record: Record,
    generation: u64,
    name: String,
}

/// Writes `snap` under a temporary name in the history, synced, for [`StagedSnapshot::commit`].
pub fn stage_snapshot(root: &Root, snap: &Snapshot) -> Result<StagedSnapshot> {
    let name = snapshot_name(snap.generation, &snap.revision);
    let record = stage_atomic_with(root, &format!("{HISTORY_DIR}/{name}"), &mut |w| write_snapshot(snap, w))?;
    Ok(StagedSnapshot { record, generation: snap.generation, name })
}

impl StagedSnapshot {
    /// The generation of the snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Removes the staged snapshot; the history stays as it was.
    pub fn discard(self, root: &Root) {
        self.record.discard(root);
    }

    /// Saves the snapshot as [`save_snapshot`] does: puts it in place, then tidies the history.
    pub fn commit(self, root: &Root) -> Result<()> {
        let StagedSnapshot { record, generation, name } = self;
        record.commit(root)?;
        tidy_history(root, generation, &name)
    }
}

/// After the snapshot `name` of `generation` was put in place: drops the snapshots of the same
/// or a later generation, folds repeated revisions and keeps the newest [`HISTORY_KEEP`] (see
/// [`save_snapshot`]).
fn tidy_history(root: &Root, generation: u64, name: &str) -> Result<()> {
    let mut names = history_files(root)?;
    for unrecorded in
        names.iter().filter(|n| *n != name && parse_snapshot_name(n).is_some_and(|(g, _)| g >= generation))
    {
        root.remove(&format!("{HISTORY_DIR}/{unrecorded}"))?;
    }
    names.retain(|n| n == name || parse_snapshot_name(n).is_some_and(|(g, _)| g < generation));
    let recorded: Vec<String> = names.iter().filter(|n| *n != name).cloned().collect();
    for folded in fold_repeated_revisions(root, &recorded)? {
        names.retain(|n| *n != folded);
    }
    for oldest in revisions_beyond_the_kept(&names) {
        root.remove(&format!("{HISTORY_DIR}/{oldest}"))?;
    }
    Ok(())
}

/// Writes a snapshot file: one compact JSON line. The config is written straight from its
/// [`Json`], with no intermediate text or value.
fn write_snapshot(snap: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, snap)?;
    out.write_all(b"\n")
}

/// Among the recorded snapshots `names` (oldest first), folds the older snapshots of a revision
/// into its newest one: their generations are added to its [`Snapshot::earlier`], it is
/// rewritten atomically, then they are removed. Returns the names removed.
fn fold_repeated_revisions(root: &Root, names: &[String]) -> Result<Vec<String>> {
    let mut by_revision: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for n in names {
        if let Some((_, revision)) = parse_snapshot_name(n) {
            by_revision.entry(revision).or_default().push(n);
        }
    }
    let mut removed = Vec::new();
    for files in by_revision.values().filter(|files| files.len() > 1) {
        let (newest, older) = files.split_last().expect("more than one");
        let mut keeper = read_snapshot(root, newest)?;
        for name in older {
            // An unreadable older copy is dropped: the newest holds the same config.
            if let Ok(old) = read_snapshot(root, name) {
                keeper.earlier.extend(old.generations());
            }
        }
        keeper.earlier = keeper.generations().into_iter().filter(|g| g.generation != keeper.generation).collect();
        write_atomic_with(root, &format!("{HISTORY_DIR}/{newest}"), &mut |w| write_snapshot(&keeper, w))?;
        for name in older {
            root.remove(&format!("{HISTORY_DIR}/{name}"))?;
            removed.push((*name).clone());
        }
    }
    Ok(removed)
}

/// The snapshots (of `names`, oldest first) of revisions older than the newest
/// [`HISTORY_KEEP`] distinct ones.
fn revisions_beyond_the_kept(names: &[String]) -> Vec<String> {
    let mut kept: Vec<&str> = Vec::new();
    for name in names.iter().rev() {
        let Some((_, revision)) = parse_snapshot_name(name) else { continue };
        if !kept.contains(&revision) && kept.len() < HISTORY_KEEP {
            kept.push(revision);
        }
    }
    names.iter().filter(|n| parse_snapshot_name(n).is_none_or(|(_, r)| !kept.contains(&r))).cloned().collect()
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
    read_snapshot(root, name)
}

/// The snapshot in history file `name`.
fn read_snapshot(root: &Root, name: &str) -> Result<Snapshot> {
    let path = format!("{HISTORY_DIR}/{name}");
    let bytes = read_state_file(root, &path)?.ok_or_else(|| anyhow!("{} is gone", shown(root, &path)))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", shown(root, &path)))
}

/// Every snapshot of an applied revision, newest first, each read from its own file (a
/// revision applied more than once may have two until they are folded).
pub fn snapshots(root: &Root, state: &State) -> Result<Vec<Snapshot>> {
    list_history(root, state)?.iter().rev().map(|name| read_snapshot(root, name)).collect()
}

/// Every applied generation the history holds, newest first, each once, with the snapshot
/// (an index into `snapshots`) that holds its config.
pub fn generations(snapshots: &[Snapshot]) -> Vec<(Generation, usize)> {
    let mut all: Vec<(Generation, usize)> =
        snapshots.iter().enumerate().flat_map(|(i, s)| s.generations().into_iter().map(move |g| (g, i))).collect();
    all.sort_by_key(|(g, _)| std::cmp::Reverse(g.generation));
    all.dedup_by_key(|(g, _)| g.generation);
    all
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
    use crate::model::ignition::spec::{self, IgnitionError};
    let json = match &snap.config {
        SnapshotConfig::Applied(config) => return Ok(Config::clone(config)),
        SnapshotConfig::Read(json) => json,
    };
    let parsed = spec::parse(&json.to_compact()).map_err(|e| {
        let why = match e {
            IgnitionError::Syntax(e) => e.to_string(),
            IgnitionError::Version(v) => format!("unsupported Ignition version {v:?}"),
            IgnitionError::Types(report) => report.entries.iter().map(|d| d.raw_line()).collect::<Vec<_>>().join("; "),
        };
        anyhow!("the snapshot of revision {} is unreadable: {why}", snap.revision)
    })?;
    Ok(parsed.config)
}

/// Appends one line to the audit log (created 0600; an existing one is checked like every
/// state file, so an append never reaches another name of its inode). A line the disk has no
/// room for is taken back whole.
pub fn audit(root: &Root, line: &serde_json::Value) -> Result<()> {
    let dir_fd = open_state_dir(root, STATE_DIR, Some(STATE_DIR_MODE), Repair::Yes)?
        .ok_or_else(|| anyhow!("{} could not be created", shown(root, STATE_DIR)))?;
    let fd = open_or_create(root, &dir_fd, AUDIT_LOG, Access::Append).context("opening the audit log")?;
    let mut text = serde_json::to_string(line)?;
    text.push('\n');
    use std::io::Write;
    let mut file = std::fs::File::from(fd);
    let whole = file.metadata().context("inspecting the audit log")?.len();
    if let Err(e) = file.write_all(text.as_bytes()) {
        // A full disk may take part of the line: cut it off, so that every line stays whole.
        let _ = file.set_len(whole);
        return Err(e).with_context(|| format!("writing {}", shown(root, AUDIT_LOG)));
    }
    file.sync_data().context("syncing the audit log")
}

/// A snapshot's config as serde sees it: written from our [`Json`] value by the serializer at
/// hand (no text or `serde_json::Value` in between), and read back from any JSON layout (the
/// pretty snapshots of earlier versions too). Ignition has no fractional numbers, and our `Json`
/// none: a fraction, or an integer beyond `i64`, is refused as a corrupt snapshot.
mod config_json {
    use std::fmt;

    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::{Serialize, Serializer};
    use serde::{Deserializer, de::Deserialize};

    use super::SnapshotConfig;
    use crate::model::decode::ToJson;
    use crate::model::json::Json;

    /// Writes `config` with `serializer`.
    pub fn serialize<S: Serializer>(config: &SnapshotConfig, serializer: S) -> Result<S::Ok, S::Error> {
        match config {
            SnapshotConfig::Read(json) => Written(json).serialize(serializer),
            SnapshotConfig::Applied(config) => config.serialize_json(serializer),
        }
    }

    /// Reads a [`Json`] value.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SnapshotConfig, D::Error> {
        Read::deserialize(deserializer).map(|r| SnapshotConfig::Read(r.0))
    }

    /// A borrowed [`Json`] value, serializable.
    struct Written<'a>(&'a Json);

    impl Serialize for Written<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Json::Null => serializer.serialize_unit(),
                Json::Bool(b) => serializer.serialize_bool(*b),
                Json::Int(n) => serializer.serialize_i64(*n),
                Json::Str(s) => serializer.serialize_str(s),
                Json::Array(items) => serializer.collect_seq(items.iter().map(Written)),
                Json::Object(fields) => serializer.collect_map(fields.iter().map(|(k, v)| (k, Written(v)))),
            }
        }
    }

    /// A [`Json`] value read by serde, object keys in the order of the document.
    struct Read(Json);

    impl<'de> Deserialize<'de> for Read {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(JsonVisitor).map(Read)
        }
    }

    struct JsonVisitor;

    impl<'de> Visitor<'de> for JsonVisitor {
        type Value = Json;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an Ignition config (JSON without fractional numbers)")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
            Ok(Json::Null)
        }

        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
            Ok(Json::Bool(b))
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
            Ok(Json::Int(n))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
            i64::try_from(n).map(Json::Int).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
            Ok(Json::Str(s.to_string()))
        }

        fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
            Ok(Json::Str(s))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(Read(item)) = seq.next_element()? {
                items.push(item);
            }
            Ok(Json::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
            let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some((key, Read(value))) = map.next_entry::<String, Read>()? {
                fields.push((key, value));
            }
            Ok(Json::Object(fields))
        }
    }
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
            config: SnapshotConfig::Read(Json::Object(vec![(
                "ignition".into(),
                Json::Object(vec![("version".into(), Json::Str("3.5.0".into()))]),
            )])),
            origins: Vec::new(),
            result: Some("converged".into()),
            changes: None,
            earlier: Vec::new(),
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

    /// The Ignition configs the reference Butane wrote for some conformance cases: inline,
    /// compressed and escaped contents, units, links, users.
    fn reference_configs() -> Vec<(String, String)> {
        let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/butane");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&cases)
            .unwrap()
            .map(|e| e.unwrap().path().join("expected.ign"))
            .filter(|p| p.is_file())
            .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        out.sort();
        assert!(out.len() >= 50, "only {} reference configs under {}", out.len(), cases.display());
        out
    }

    fn parsed(text: &str) -> Config {
        crate::model::ignition::spec::parse(text).unwrap().config
    }

    #[test]
    fn a_snapshot_holds_the_config_as_the_reference_wrote_it_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        for (i, (name, text)) in reference_configs().into_iter().enumerate() {
            let generation = i as u64 + 1;
            let config = parsed(&text);
            // As an apply writes it (straight from the config), and as history rewrites it.
            let applied = SnapshotConfig::Applied(Arc::new(config.clone()));
            let tree = SnapshotConfig::Read(crate::model::decode::ToJson::to_json(&config));
            for (kind, config_of_snapshot) in [("applied", applied), ("tree", tree)] {
                let snap = Snapshot { config: config_of_snapshot, ..snapshot(generation, "r") };
                save_snapshot(&root, &snap).unwrap();
                let file = dir.path().join(format!("var/lib/core-ops/history/{}", snapshot_name(generation, "r")));
                let bytes = std::fs::read(&file).unwrap();
                let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    written["config"], reference,
                    "{name} ({kind}): the snapshot's config differs from the reference's"
                );
                assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1, "{name} ({kind}): one compact line");
                let read = read_snapshot(&root, &snapshot_name(generation, "r")).unwrap();
                assert_eq!(snapshot_config(&read).unwrap(), config, "{name} ({kind}): read back");
            }
        }
    }

    #[test]
    fn a_pretty_snapshot_of_an_earlier_version_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let (name, text) = reference_configs().into_iter().find(|(n, _)| n.contains("gzip")).unwrap();
        // What earlier versions wrote: the config as a `serde_json::Value`, the whole pretty.
        let old = serde_json::json!({
            "generation": 3,
            "revision": "abc",
            "applied_at": "2026-01-01T00:00:00Z",
            "source": null,
            "host": "h",
            "config": serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            "origins": [{"entry": "node\t/etc/x", "file": "x.bu", "path": null}],
            "result": "converged",
            "changes": {"created": 1, "updated": 2, "deleted": 3}
        });
        let history = dir.path().join("var/lib/core-ops/history");
        std::fs::create_dir_all(&history).unwrap();
        std::fs::write(history.join("00000003-abc.json"), serde_json::to_vec_pretty(&old).unwrap()).unwrap();
        let read = load_snapshot(&root, Some("abc"), &recorded(3, "abc")).unwrap();
        assert_eq!(snapshot_config(&read).unwrap(), parsed(&text), "{name}");
        assert_eq!(read.changes, Some(Changes { created: 1, updated: 2, deleted: 3 }));
        assert_eq!(read.origins[0].entry, "node\t/etc/x");
    }

    #[test]
    fn a_fraction_in_a_snapshot_config_is_refused_as_corrupt() {
        let text = r#"{"generation":1,"revision":"r","applied_at":"t","source":null,"host":"h",
            "config":{"ignition":{"version":"3.5.0","timeouts":{"httpTotal":1.5}}},"origins":[]}"#;
        assert!(serde_json::from_str::<Snapshot>(text).is_err());
        let whole = text.replace("1.5", "15");
        assert!(serde_json::from_str::<Snapshot>(&whole).is_ok());
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

    #[test]
    fn a_revision_applied_again_takes_no_second_slot_and_keeps_every_generation() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        for generation in 1..=10u64 {
            save_snapshot(&root, &snapshot(generation, &format!("r{generation}"))).unwrap();
        }
        // A rollback to r9: its older snapshot is still needed until the state records 11.
        save_snapshot(&root, &snapshot(11, "r9")).unwrap();
        assert!(history_files(&root).unwrap().contains(&"00000001-r1.json".to_string()), "r1 keeps its slot");
        assert!(history_files(&root).unwrap().contains(&"00000009-r9.json".to_string()));
        assert_eq!(load_snapshot(&root, Some("r9"), &recorded(10, "r10")).unwrap().generation, 9);
        // Once 11 is recorded, the next save folds generation 9 into it.
        save_snapshot(&root, &snapshot(12, "r1")).unwrap();
        let files = history_files(&root).unwrap();
        assert!(!files.contains(&"00000009-r9.json".to_string()), "{files:?}");
        assert_eq!(files.len(), 11, "ten revisions, r1 twice until 12 is recorded: {files:?}");
        let state = recorded(12, "r1");
        let all = snapshots(&root, &state).unwrap();
        let gens: Vec<u64> = generations(&all).iter().map(|(g, _)| g.generation).collect();
        assert_eq!(gens, (1..=12u64).rev().collect::<Vec<_>>(), "every generation once");
        let (nine, i) = generations(&all).into_iter().find(|(g, _)| g.generation == 9).unwrap();
        assert_eq!((nine.revision.as_str(), all[i].generation), ("r9", 11), "generation 9 lives in r9's snapshot");
    }

    #[test]
    fn an_unrecorded_snapshot_of_a_kept_revision_removes_nothing_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        save_snapshot(&root, &snapshot(1, "a")).unwrap();
        save_snapshot(&root, &snapshot(2, "b")).unwrap();
        // A rollback to a saved its snapshot, then died before the state recorded it.
        save_snapshot(&root, &snapshot(3, "a")).unwrap();
        let state = recorded(2, "b");
        assert_eq!(list_history(&root, &state).unwrap(), ["00000001-a.json", "00000002-b.json"]);
        assert_eq!(load_snapshot(&root, Some("a"), &state).unwrap().generation, 1);
        // The next run applies c as generation 3: a's orphan goes, its recorded snapshot stays.
        save_snapshot(&root, &snapshot(3, "c")).unwrap();
        assert_eq!(history_files(&root).unwrap(), ["00000001-a.json", "00000002-b.json", "00000003-c.json"]);
    }
}
