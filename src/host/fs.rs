//! Writes under the root: atomic file replacement (temp file in the same directory, owner and
//! mode set, synced, renamed over the old one, directory synced), links, directories and
//! removals — every path walked without following symlinks, nothing written outside the root.
//!
//! Files are written in two steps so that one apply syncs the filesystem once rather than once
//! per file: [`Root::stage_file`] leaves a complete, synced-on-commit temp file next to its
//! destination, [`Root::commit`] renames it into place. A staging that fails removes its temp
//! file. A batch of writes ([`OpenDirs`]) walks to each directory once and keeps it open; the
//! directories it creates are made durable by the batch's `syncfs`, not one `fsync` each.
//!
//! The faults of the machine are this module's to explain: [`Root::unwritable`] finds, before
//! anything is written, the paths a read-only filesystem or an immutable (or append-only) inode
//! keeps from being changed, and [`explained`] gives a failed write's message with what to do next
//! (a full filesystem, a read-only one, an immutable path, missing privileges).

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result, anyhow, bail};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, StatVfsMountFlags, StatxAttributes, StatxFlags, Uid};
use rustix::io::Errno;

use crate::host::root::Root;

/// Prefix of CoreOps's temp files; anything so named next to a managed path is a leftover of
/// an interrupted run and is removed.
pub const TEMP_PREFIX: &str = ".core-ops-tmp.";
/// Bytes buffered between a streamed file's writer and the file.
const FILL_BUFFER: usize = 64 * 1024;
/// Mode of directories CoreOps creates as parents.
const PARENT_DIR_MODE: u32 = 0o755;

/// A staged write, ready to be renamed into place.
#[derive(Debug)]
pub struct Staged {
    dir: Arc<OwnedFd>,
    temp: String,
    name: String,
    path: String,
    written: Option<Written>,
}

impl Staged {
    /// The destination path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The staged file as it was left, for a file (links have none).
    pub fn written(&self) -> Option<&Written> {
        self.written.as_ref()
    }
}

/// A file as CoreOps left it: its inode and content stamp (device, inode, size, modification
/// time; see [`crate::host::root::content_stamp`]). The same stamp at the path after the rename
/// is the same inode with the bytes that were written and synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The content stamp.
    pub stamp: String,
}

/// The directories of one batch of writes, each walked to once (from the nearest one already
/// open, never through a symlink) and kept open; missing ones are created root-owned 0755. Their
/// creation is made durable by the `syncfs` that ends the batch's staging, not by an `fsync`
/// of each parent. Shared by the threads that stage the batch.
#[derive(Debug)]
pub struct OpenDirs<'r> {
    root: &'r Root,
    open: Mutex<HashMap<String, Arc<OwnedFd>>>,
}

impl<'r> OpenDirs<'r> {
    /// No directory open yet.
    pub fn new(root: &'r Root) -> Self {
        OpenDirs { root, open: Mutex::new(HashMap::new()) }
    }

    /// Directory `dir` (absolute, clean), created with its missing parents.
    pub fn get(&self, dir: &str) -> Result<Arc<OwnedFd>> {
        crate::model::path::check_node_path(dir)?;
        self.walk(dir)
    }

    /// Keeps `fd`, just made or adjusted, open as directory `dir`.
    fn keep(&self, dir: &str, fd: OwnedFd) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(dir.to_string(), Arc::new(fd));
        }
    }

    fn kept(&self, dir: &str) -> Option<Arc<OwnedFd>> {
        self.open.lock().ok()?.get(dir).cloned()
    }

    fn walk(&self, dir: &str) -> Result<Arc<OwnedFd>> {
        if let Some(fd) = self.kept(dir) {
            return Ok(fd);
        }
        let fd = match dir.rsplit_once('/') {
            Some((parent, name)) if !name.is_empty() => {
                let parent_fd = self.walk(if parent.is_empty() { "/" } else { parent })?;
                Arc::new(open_or_create_child(&parent_fd, name, dir, false)?)
            }
            _ => Arc::new(open_root_for_writing(self.root)?),
        };
        if let Ok(mut open) = self.open.lock() {
            open.insert(dir.to_string(), fd.clone());
        }
        Ok(fd)
    }
}

/// The root directory, opened for writing below it.
fn open_root_for_writing(root: &Root) -> Result<OwnedFd> {
    rustix::fs::openat(root.handle(), ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .context("opening the root")
}

/// Directory `name` of `parent` (at `walked`), created root-owned 0755 when missing (its
/// parent synced when `sync_new`). A symlink or non-directory there is an error: nothing is ever
/// written through one.
fn open_or_create_child(parent: &OwnedFd, name: &str, walked: &str, sync_new: bool) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(next) => Ok(next),
        Err(Errno::NOENT) => {
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(PARENT_DIR_MODE)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("creating {walked}")),
            }
            let next =
                rustix::fs::openat(parent, name, flags, Mode::empty()).with_context(|| format!("opening {walked}"))?;
            rustix::fs::fchmod(&next, Mode::from_raw_mode(PARENT_DIR_MODE))?;
            if sync_new {
                rustix::fs::fsync(parent).with_context(|| format!("syncing the parent of {walked}"))?;
            }
            Ok(next)
        }
        Err(Errno::NOTDIR | Errno::LOOP) => {
            bail!("{walked} is a symlink or not a directory; CoreOps never writes through symlinks under the root")
        }
        Err(e) => Err(e).with_context(|| format!("opening {walked}")),
    }
}

/// The parent directory and name of `path`, taken apart as the observer takes it apart
/// ([`crate::model::path::split_node_path`]): a path it would refuse is refused here too.
fn split(path: &str) -> Result<(&str, &str)> {
    Ok(crate::model::path::split_node_path(path)?)
}

fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let short: String = name.chars().take(100).collect();
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    format!("{TEMP_PREFIX}{short}.{}.{n}", PID.get_or_init(std::process::id))
}

/// The mode a staged file is created with, before it has its owner: whoever may read it then must
/// be able to read the finished file. A file that its owner, its group and everyone else may all
/// read in the end is created with its read and execute bits and its owner's write bit (the
/// umask may take some away; the mode is set again once it is written), so that it mostly needs
/// no `fchmod`. Any other file is created readable by its owner only: a mode that lets others
/// read but not the group (`0604`) would let members of the file's future group read it while it
/// is root's. Nobody else may write to it on the way, and set-ID bits come only after the owner.
fn creation_mode(mode: u32) -> u32 {
    const READABLE_BY_ALL: u32 = 0o444;
    if mode & READABLE_BY_ALL == READABLE_BY_ALL { mode & 0o755 } else { 0o600 }
}

/// Gives the file `fd` (written, private, `st` its status) its owner and then its mode, each
/// only where it is not so already. The mode comes last: a change of owner clears the set-user-ID
/// and set-group-ID bits.
fn set_owner_and_mode(fd: impl AsFd, st: &rustix::fs::Stat, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
    if st.st_uid != uid || st.st_gid != gid {
        let (u, g) = ids(uid, gid);
        rustix::fs::fchown(&fd, u, g).with_context(|| format!("setting the owner of {path}"))?;
    }
    if st.st_mode & 0o7777 != mode {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).with_context(|| format!("setting the mode of {path}"))?;
    }
    Ok(())
}

fn ids(uid: u32, gid: u32) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
}

impl Root {
    /// Opens directory `dir` (absolute, under the root) for writing, creating missing
    /// components as root-owned 0755 directories. A symlink or non-directory on the way is an
    /// error: nothing is ever written through one.
    pub fn open_dir(&self, dir: &str, create: bool) -> Result<OwnedFd> {
        let mut fd = open_root_for_writing(self)?;
        let mut walked = String::new();
        for part in crate::model::path::node_components(dir)? {
            walked.push('/');
            walked.push_str(part);
            fd = if create {
                open_or_create_child(&fd, part, &walked, true)?
            } else {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rustix::fs::openat(&fd, part, flags, Mode::empty()) {
                    Ok(next) => next,
                    Err(Errno::NOTDIR | Errno::LOOP) => bail!(
                        "{walked} is a symlink or not a directory; CoreOps never writes through symlinks under the root"
                    ),
                    Err(e) => return Err(e).with_context(|| format!("opening {walked}")),
                }
            };
        }
        Ok(fd)
    }

    /// Writes `bytes` to a temp file beside `path` with its final owner and mode.
    pub fn stage_file(&self, path: &str, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Staged> {
        let (dir, _) = split(path)?;
        let dir_fd = Arc::new(self.open_dir(dir, true)?);
        self.stage_file_at(dir_fd, path, bytes, mode, uid, gid)
    }

    /// [`Self::stage_file`] for a write of a batch: the directory comes from `dirs`.
    pub fn stage_file_in(
        &self,
        dirs: &OpenDirs,
        path: &str,
        bytes: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Staged> {
        let (dir, _) = split(path)?;
        self.stage_file_at(dirs.get(dir)?, path, bytes, mode, uid, gid)
    }

    fn stage_file_at(
        &self,
        dir_fd: Arc<OwnedFd>,
        path: &str,
        bytes: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Staged> {
        self.stage_filled_at(dir_fd, path, mode, uid, gid, &mut |file| file.write_all(bytes))
    }

    /// [`Self::stage_file`] for content written by `fill` as it is made, through a buffer, so
    /// that it is never held whole in memory (the records CoreOps keeps).
    pub fn stage_file_with(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Staged> {
        let (dir, _) = split(path)?;
        let dir_fd = Arc::new(self.open_dir(dir, true)?);
        self.stage_filled_at(dir_fd, path, mode, uid, gid, &mut |file| {
            let mut buffered = std::io::BufWriter::with_capacity(FILL_BUFFER, file);
            fill(&mut buffered)?;
            buffered.flush()
        })
    }

    /// Creates the temp file beside `path` in `dir_fd`, sets owner and mode, lets `fill` write
    /// it, and records its content stamp; a failure removes it.
    fn stage_filled_at(
        &self,
        dir_fd: Arc<OwnedFd>,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        fill: &mut dyn FnMut(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<Staged> {
        let (_, name) = split(path)?;
        let temp = temp_name(name);
        let fd = rustix::fs::openat(
            &*dir_fd,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(creation_mode(mode)),
        )
        .with_context(|| format!("creating a temp file for {path}"))?;
        let mut staged = Staged { dir: dir_fd, temp, name: name.to_string(), path: path.to_string(), written: None };
        let filled = (|| {
            let mut file = std::fs::File::from(fd);
            fill(&mut file).with_context(|| format!("writing {path}"))?;
            let st = rustix::fs::fstat(&file).with_context(|| format!("inspecting {path}"))?;
            set_owner_and_mode(&file, &st, path, mode, uid, gid)?;
            staged.written = Some(Written { stamp: crate::host::root::content_stamp(&st) });
            Ok(())
        })();
        self.kept_unless_failed(staged, filled)
    }

    /// `staged`, or, when filling it `failed`, the failure, its temp object removed: a full
    /// filesystem gets back what the partial write took, and no temp file is left.
    fn kept_unless_failed(&self, staged: Staged, filled: Result<()>) -> Result<Staged> {
        match filled {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.discard(&staged);
                Err(e)
            }
        }
    }

    /// Creates a symlink beside `path`, to be committed over it.
    pub fn stage_symlink(&self, path: &str, target: &str, uid: u32, gid: u32) -> Result<Staged> {
        let (dir, _) = split(path)?;
        self.stage_symlink_at(Arc::new(self.open_dir(dir, true)?), path, target, uid, gid)
    }

    /// [`Self::stage_symlink`] for a write of a batch: the directory comes from `dirs`.
    pub fn stage_symlink_in(&self, dirs: &OpenDirs, path: &str, target: &str, uid: u32, gid: u32) -> Result<Staged> {
        let (dir, _) = split(path)?;
        self.stage_symlink_at(dirs.get(dir)?, path, target, uid, gid)
    }

    fn stage_symlink_at(&self, dir_fd: Arc<OwnedFd>, path: &str, target: &str, uid: u32, gid: u32) -> Result<Staged> {
        let (_, name) = split(path)?;
        let temp = temp_name(name);
        rustix::fs::symlinkat(target, &*dir_fd, temp.as_str()).with_context(|| format!("creating the link {path}"))?;
        let (u, g) = ids(uid, gid);
        let owned = rustix::fs::chownat(&*dir_fd, temp.as_str(), u, g, AtFlags::SYMLINK_NOFOLLOW)
            .with_context(|| format!("setting the owner of {path}"));
        let staged = Staged { dir: dir_fd, temp, name: name.to_string(), path: path.to_string(), written: None };
        self.kept_unless_failed(staged, owned)
    }

    /// Creates a hard link to `target` (resolved inside the root) beside `path`.
    pub fn stage_hardlink(&self, path: &str, target: &str) -> Result<Staged> {
        let (dir, name) = split(path)?;
        let (tdir, tname) = split(target)?;
        let target_dir = self.open_dir(tdir, false).with_context(|| format!("hard link target {target}"))?;
        let st = rustix::fs::statat(&target_dir, tname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| anyhow!("hard link target {target} cannot be linked: {e}"))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            bail!("hard link target {target} is a directory");
        }
        let dir_fd = Arc::new(self.open_dir(dir, true)?);
        let temp = temp_name(name);
        rustix::fs::linkat(&target_dir, tname, &*dir_fd, temp.as_str(), AtFlags::empty())
            .with_context(|| format!("linking {path} to {target}"))?;
        Ok(Staged { dir: dir_fd, temp, name: name.to_string(), path: path.to_string(), written: None })
    }

    /// Renames a staged object into place. A directory in the way is removed first when
    /// `replace_directory` (Ignition's `overwrite: true`).
    pub fn commit(&self, staged: Staged, replace_directory: bool) -> Result<()> {
        if replace_directory {
            if let Ok(st) = rustix::fs::statat(&*staged.dir, staged.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    remove_tree(&staged.dir, OsStr::new(&staged.name))
                        .with_context(|| format!("removing the directory at {}", staged.path))?;
                }
            }
        }
        rustix::fs::renameat(&*staged.dir, staged.temp.as_str(), &*staged.dir, staged.name.as_str())
            .with_context(|| format!("renaming the new {} into place", staged.path))
    }

    /// Removes a staged temp object (after a failure).
    pub fn discard(&self, staged: &Staged) {
        let _ = rustix::fs::unlinkat(&*staged.dir, staged.temp.as_str(), AtFlags::empty());
    }

    /// Creates directory `path` (and its parents) or adjusts it, as a write of the batch
    /// `dirs` (made durable by its `syncfs`); a non-directory in the way is replaced only when
    /// `replace`. The directory is kept open in `dirs` for what is written into it.
    pub fn make_dir(
        &self,
        dirs: &OpenDirs,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        replace: bool,
    ) -> Result<()> {
        let (dir, name) = split(path)?;
        let parent = dirs.get(dir)?;
        match rustix::fs::statat(&*parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) if replace => {
                rustix::fs::unlinkat(&*parent, name, AtFlags::empty()).with_context(|| format!("removing {path}"))?
            }
            Ok(_) => bail!("{path} exists and is not a directory"),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("inspecting {path}")),
        }
        match rustix::fs::mkdirat(&*parent, name, Mode::from_raw_mode(mode.unwrap_or(PARENT_DIR_MODE))) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("creating {path}")),
        }
        let fd = rustix::fs::openat(
            &*parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {path}"))?;
        self.set_fd_attrs(&fd, path, mode, uid, gid)?;
        dirs.keep(path, fd);
        Ok(())
    }

    /// Sets mode and owner of an existing file or directory (links keep theirs).
    ///
    /// An inode with more than one hard link is never changed in place: another of its names may
    /// be outside the root. A file or symlink so shared is replaced by a new one (same content or
    /// target, the new mode and owner) through a staged atomic write.
    pub fn set_attrs(&self, path: &str, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        let (dir, name) = split(path)?;
        let parent = self.open_dir(dir, false)?;
        let fd = rustix::fs::openat(&parent, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .with_context(|| format!("opening {path}"))?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            if st.st_nlink > 1 {
                return self.replace_shared_symlink(
                    &parent,
                    name,
                    path,
                    uid.unwrap_or(st.st_uid),
                    gid.unwrap_or(st.st_gid),
                );
            }
            let (u, g) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
            return rustix::fs::chownat(&parent, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .with_context(|| format!("chown {path}"));
        }
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .with_context(|| format!("opening {path}"))?;
        let st = rustix::fs::fstat(&fd).with_context(|| format!("inspecting {path}"))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => self.set_fd_attrs(&fd, path, mode, uid, gid),
            _ if st.st_nlink <= 1 => self.set_fd_attrs(&fd, path, mode, uid, gid),
            FileType::RegularFile => self.replace_shared_file(
                fd,
                path,
                mode.unwrap_or(st.st_mode & 0o7777),
                uid.unwrap_or(st.st_uid),
                gid.unwrap_or(st.st_gid),
            ),
            _ => bail!(
                "{path} has {} hard links; CoreOps never changes the mode or owner of a shared inode in place",
                st.st_nlink
            ),
        }
    }

    /// Replaces the hard-linked file `path` (open as `file`) by a copy of its content with `mode`
    /// and owner: the other names of its inode keep theirs.
    fn replace_shared_file(&self, file: OwnedFd, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let mut bytes = Vec::new();
        std::fs::File::from(file).read_to_end(&mut bytes).with_context(|| format!("reading {path}"))?;
        let staged = self.stage_file(path, &bytes, mode, uid, gid)?;
        if let Err(e) = self.sync_staged(&staged) {
            self.discard(&staged);
            return Err(e);
        }
        self.commit(staged, false)?;
        self.sync_dir_of(path)
    }

    /// Replaces the hard-linked symlink `name` in `parent` by a new one with the same target and
    /// the given owner.
    fn replace_shared_symlink(&self, parent: &OwnedFd, name: &str, path: &str, uid: u32, gid: u32) -> Result<()> {
        let target = rustix::fs::readlinkat(parent, name, Vec::new()).with_context(|| format!("reading {path}"))?;
        let target = target.to_str().map_err(|_| anyhow!("the target of {path} is not UTF-8"))?;
        let staged = self.stage_symlink(path, target, uid, gid)?;
        self.commit(staged, false)?;
        self.sync_dir_of(path)
    }

    fn set_fd_attrs(
        &self,
        fd: &OwnedFd,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<()> {
        if uid.is_some() || gid.is_some() {
            rustix::fs::fchown(fd, uid.map(Uid::from_raw), gid.map(Gid::from_raw))
                .with_context(|| format!("setting the owner of {path}"))?;
        }
        if let Some(mode) = mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).with_context(|| format!("setting the mode of {path}"))?;
        }
        Ok(())
    }

    /// Removes a file, link or empty directory; an absent path is fine.
    pub fn remove(&self, path: &str) -> Result<()> {
        let (dir, name) = split(path)?;
        let parent = match self.open_dir(dir, false) {
            Ok(fd) => fd,
            Err(_) if !self.exists_dir(dir) => return Ok(()),
            Err(e) => return Err(e),
        };
        let flags = match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => AtFlags::REMOVEDIR,
            Ok(_) => AtFlags::empty(),
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("inspecting {path}")),
        };
        match rustix::fs::unlinkat(&parent, name, flags) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {path}")),
        }
    }

    fn exists_dir(&self, dir: &str) -> bool {
        matches!(self.observe(dir), crate::model::plan::Observed::Directory { .. }) || dir == "/"
    }

    /// Removes the directories of `dir` whose names start with `prefix`, with everything in
    /// them (never through a symlink): the scratch directories of interrupted runs. Returns how
    /// many.
    pub fn remove_scratch_dirs(&self, dir: &str, prefix: &str) -> Result<usize> {
        let Ok(fd) = self.open_dir(dir, false) else { return Ok(0) };
        let mut removed = 0;
        for name in dir_entries(&fd).with_context(|| format!("listing {dir}"))? {
            if !name.as_bytes().starts_with(prefix.as_bytes()) {
                continue;
            }
            let st = rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW);
            if st.is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory) {
                remove_tree(&fd, &name).with_context(|| format!("removing {dir}/{}", name.to_string_lossy()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes leftover temp files of interrupted runs from directory `dir`; returns how many.
    /// Names are matched as bytes, so a name that is not UTF-8 is removed like any other; a
    /// directory so named is not CoreOps's (it stages no directories) and is left alone.
    pub fn clean_temp_files(&self, dir: &str) -> Result<usize> {
        let Ok(fd) = self.open_dir(dir, false) else { return Ok(0) };
        let mut removed = 0;
        let names = dir_entries(&fd).with_context(|| format!("listing {dir}"))?;
        for name in names.into_iter().filter(|n| n.as_bytes().starts_with(TEMP_PREFIX.as_bytes())) {
            match rustix::fs::unlinkat(&fd, name.as_os_str(), AtFlags::empty()) {
                Ok(()) => removed += 1,
                Err(Errno::ISDIR | Errno::NOENT) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {dir}/{}", name.to_string_lossy().escape_debug()));
                }
            }
        }
        Ok(removed)
    }

    /// Syncs a staged file's data.
    pub fn sync_staged(&self, staged: &Staged) -> Result<()> {
        let fd = rustix::fs::openat(
            &*staged.dir,
            staged.temp.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::fsync(&fd).with_context(|| format!("syncing {}", staged.path))
    }

    /// Syncs the directory holding `path` (after a rename or removal in it).
    pub fn sync_dir_of(&self, path: &str) -> Result<()> {
        let (dir, _) = split(path)?;
        let fd = self.open_dir(dir, false)?;
        rustix::fs::fsync(&fd).with_context(|| format!("syncing {dir}"))
    }

    /// Flushes everything written under the root to disk (one `syncfs`).
    pub fn sync(&self) -> Result<()> {
        let fd = open_root_for_writing(self)?;
        rustix::fs::syncfs(&fd).context("syncing the root filesystem")
    }
}

/// The directory a change lands in: the nearest one of its parents that exists, and what keeps
/// anything from being written there.
struct Landing {
    fd: OwnedFd,
    path: String,
    fault: Option<String>,
}

impl Landing {
    fn at(fd: OwnedFd, path: &str) -> Rc<Landing> {
        let fault = directory_fault(&fd, path);
        Rc::new(Landing { fd, path: path.to_string(), fault })
    }
}

/// The landing of each directory already walked to, by path (`None`: it cannot be inspected).
type Landings = BTreeMap<String, Option<Rc<Landing>>>;

impl Root {
    /// Why the changes at `paths` (to be created, replaced, changed or removed) cannot be made,
    /// when that is known before anything is written, one message per cause: the directory a
    /// path lands in (the nearest one that exists) is on a read-only filesystem, or that
    /// directory or the path itself is immutable or append-only. What cannot be inspected is
    /// left to the write, which reports it.
    pub fn unwritable<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut landings = Landings::new();
        let mut faults = BTreeSet::new();
        for path in paths {
            let Ok((dir, name)) = split(path) else { continue };
            let Some(landing) = self.landing(dir, &mut landings) else { continue };
            faults.extend(landing.fault.clone());
            if landing.path == dir {
                faults.extend(inode_fault(&landing.fd, name, path));
            }
        }
        faults.into_iter().collect()
    }

    /// Where a change in directory `dir` lands: `dir`, or the nearest parent of it that exists.
    /// Each directory is opened once, from its parent's handle, without following a symlink.
    fn landing(&self, dir: &str, landings: &mut Landings) -> Option<Rc<Landing>> {
        if let Some(known) = landings.get(dir) {
            return known.clone();
        }
        let found = match split(dir) {
            Err(_) => self.open_dir("/", false).ok().map(|fd| Landing::at(fd, "/")),
            Ok((parent, name)) => match self.landing(parent, landings) {
                Some(up) if up.path == parent => {
                    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    match rustix::fs::openat(&up.fd, name, flags, Mode::empty()) {
                        Ok(fd) => Some(Landing::at(fd, dir)),
                        Err(Errno::NOENT) => Some(up),
                        Err(_) => None,
                    }
                }
                beyond => beyond,
            },
        };
        landings.insert(dir.to_string(), found.clone());
        found
    }
}

/// What keeps anything from being created, replaced or removed in directory `dir` (open as `fd`).
fn directory_fault(fd: &OwnedFd, dir: &str) -> Option<String> {
    if rustix::fs::fstatvfs(fd).is_ok_and(|st| st.f_flag.contains(StatVfsMountFlags::RDONLY)) {
        return Some(format!(
            "{dir} is on a read-only filesystem: nothing can be created, replaced or removed in it, so nothing was \
             written. Remount it read-write (`mount -o remount,rw`) and run again"
        ));
    }
    inode_fault(fd, "", dir)
}

/// Whether `name` in `dir` (`""`: `dir` itself), known as `path`, is immutable or append-only:
/// then not even root can replace, change or remove it, nor (for a directory) what it holds.
fn inode_fault(dir: &OwnedFd, name: &str, path: &str) -> Option<String> {
    let flags = if name.is_empty() { AtFlags::EMPTY_PATH } else { AtFlags::SYMLINK_NOFOLLOW };
    let st = rustix::fs::statx(dir, name, flags, StatxFlags::empty()).ok()?;
    let attributes = st.stx_attributes & st.stx_attributes_mask;
    let (what, flag) = if attributes.contains(StatxAttributes::IMMUTABLE) {
        ("immutable", 'i')
    } else if attributes.contains(StatxAttributes::APPEND) {
        ("append-only", 'a')
    } else {
        return None;
    };
    Some(format!(
        "{path} is {what} (chattr +{flag}): not even root can replace, change or remove it or what it holds, so \
         nothing was written. If the change is meant, clear the flag (`chattr -{flag}`) and run again"
    ))
}

/// `err`'s message (its whole chain), with what to do next when its cause is a fault of the
/// machine: a full filesystem, a read-only one, an immutable path, or missing privileges.
pub fn explained(err: &anyhow::Error) -> String {
    let message = format!("{err:#}");
    match cause_errno(err).and_then(next_step) {
        Some(step) => format!("{message}. {step}"),
        None => message,
    }
}

/// The operating system's error code at the bottom of `err`, if it has one.
fn cause_errno(err: &anyhow::Error) -> Option<Errno> {
    err.chain().find_map(|cause| {
        let io = || cause.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error);
        cause.downcast_ref::<Errno>().copied().or_else(|| io().map(Errno::from_raw_os_error))
    })
}

/// What to do about a write that failed with `errno`, when it is a fault of the machine.
fn next_step(errno: Errno) -> Option<String> {
    let uid = rustix::process::geteuid();
    let step = match errno {
        Errno::NOSPC => "The filesystem is full: free space on it (or grow it) and run again".to_string(),
        Errno::DQUOT => "The disk quota is used up: raise it or free space, and run again".to_string(),
        Errno::ROFS => {
            "The filesystem is mounted read-only: remount it read-write (`mount -o remount,rw`) and run again"
                .to_string()
        }
        Errno::ACCESS | Errno::PERM if !uid.is_root() => {
            format!("core-ops runs as uid {}, and this needs root: run it as root (e.g. with sudo)", uid.as_raw())
        }
        Errno::PERM => "The path or its directory may be immutable or append-only (`lsattr -d` shows it; \
                        `chattr -i` or `chattr -a` clears it)"
            .to_string(),
        Errno::ACCESS => "Root was refused: check the permissions, ACLs and security policy (SELinux, AppArmor) of \
                         the path"
            .to_string(),
        _ => return None,
    };
    Some(step)
}

/// The entry names of an open directory that are UTF-8, without `.` and `..` (names CoreOps
/// itself gives; any other name is left out).
pub fn dir_names(fd: &OwnedFd) -> Result<Vec<String>> {
    Ok(dir_entries(fd)?.into_iter().filter_map(|n| n.into_string().ok()).collect())
}

/// Every entry name of an open directory, as the bytes it has, without `.` and `..`.
pub fn dir_entries(fd: &OwnedFd) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd)? {
        let name = OsStr::from_bytes(entry?.file_name().to_bytes()).to_os_string();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `name` in `dir` and everything below it, without following symlinks.
fn remove_tree(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
        return Ok(());
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for n in dir_entries(&sub)? {
        remove_tree(&sub, &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};

    #[test]
    fn staged_files_appear_only_on_commit_with_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let staged = root.stage_file("/etc/app/a.conf", b"v1\n", 0o640, 0, 0).unwrap();
        assert!(!dir.path().join("etc/app/a.conf").exists(), "not visible before commit");
        root.commit(staged, false).unwrap();
        let meta = fs::metadata(dir.path().join("etc/app/a.conf")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, fs::read(dir.path().join("etc/app/a.conf")).unwrap()),
            (0o640, b"v1\n".to_vec())
        );
        assert_eq!(fs::metadata(dir.path().join("etc/app")).unwrap().mode() & 0o7777, 0o755);
        let leftover = root.stage_file("/etc/app/a.conf", b"v2\n", 0o644, 0, 0).unwrap();
        drop(leftover);
        assert_eq!(root.clean_temp_files("/etc/app").unwrap(), 1, "an uncommitted temp file is a leftover");
        assert_eq!(fs::read_dir(dir.path().join("etc/app")).unwrap().count(), 1);
    }

    /// This process's umask, read without changing it.
    fn umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Umask in /proc/self/status");
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    #[test]
    fn while_a_file_is_written_only_those_who_may_read_it_written_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let allowed = 0o777 & !umask();
        // (mode, group, mode while written): a file is created root's, in root's group.
        for (mode, gid, while_written) in [
            (0o640, 0, 0o600),
            (0o600, 0, 0o600),
            (0o4750, 0, 0o600),
            // Others may read it, but not its group: the group's members may not read it, so
            // they may not while it is still in root's group either.
            (0o604, 4242, 0o600),
            (0o064, 0, 0o600),
            (0o644, 4242, 0o644 & allowed),
            (0o444, 0, 0o444 & allowed),
            (0o4755, 0, 0o755 & allowed),
            // Nobody but its owner writes to it on the way.
            (0o666, 0, 0o644 & allowed),
        ] {
            let mut seen = None;
            let staged = root
                .stage_file_with("/etc/app/a.conf", mode, 0, gid, &mut |out| {
                    let temp = fs::read_dir(dir.path().join("etc/app"))
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(".core-ops-tmp."));
                    seen = Some(fs::symlink_metadata(temp.expect("the temp file")).unwrap().mode() & 0o7777);
                    out.write_all(b"secret\n")
                })
                .unwrap();
            root.commit(staged, false).unwrap();
            assert_eq!(seen, Some(while_written), "mode {mode:o} while it is written");
            let meta = fs::symlink_metadata(dir.path().join("etc/app/a.conf")).unwrap();
            assert_eq!((meta.mode() & 0o7777, meta.gid()), (mode, gid), "mode {mode:o} once written");
        }
    }

    #[test]
    fn a_hard_linked_file_gets_its_mode_on_a_copy_and_odd_temp_names_are_cleaned() {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        let outside = tempfile::tempdir().unwrap();
        let shared = outside.path().join("shared");
        fs::write(&shared, "x\n").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o600)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::hard_link(&shared, dir.path().join("etc/f")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        root.set_attrs("/etc/f", Some(0o640), None, None).unwrap();
        assert_eq!(fs::metadata(&shared).unwrap().mode() & 0o7777, 0o600, "the other name keeps its mode");
        let meta = fs::metadata(dir.path().join("etc/f")).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.nlink()), (0o640, 1));
        assert_eq!(fs::read(dir.path().join("etc/f")).unwrap(), b"x\n");
        fs::write(dir.path().join("etc").join(std::ffi::OsStr::from_bytes(b".core-ops-tmp.\xff")), "").unwrap();
        fs::create_dir(dir.path().join("etc/.core-ops-tmp.not-ours")).unwrap();
        assert_eq!(root.clean_temp_files("/etc").unwrap(), 1);
        assert!(dir.path().join("etc/.core-ops-tmp.not-ours").is_dir(), "a directory is left alone");
    }

    #[test]
    fn refuses_to_write_through_symlinked_parents() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("etc")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let err = root.stage_file("/etc/x", b"x", 0o644, 0, 0).unwrap_err().to_string();
        assert!(err.contains("/etc is a symlink or not a directory"), "{err}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the root");
    }

    #[test]
    fn links_directories_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        root.commit(root.stage_file("/etc/orig", b"x", 0o644, 0, 0).unwrap(), false).unwrap();
        root.commit(root.stage_symlink("/etc/sym", "orig", 0, 0).unwrap(), false).unwrap();
        root.commit(root.stage_hardlink("/etc/hard", "/etc/orig").unwrap(), false).unwrap();
        assert_eq!(fs::read_link(dir.path().join("etc/sym")).unwrap().to_str(), Some("orig"));
        assert_eq!(
            fs::metadata(dir.path().join("etc/hard")).unwrap().ino(),
            fs::metadata(dir.path().join("etc/orig")).unwrap().ino()
        );
        root.make_dir(&OpenDirs::new(&root), "/var/lib/x", Some(0o711), None, None, false).unwrap();
        assert_eq!(fs::metadata(dir.path().join("var/lib/x")).unwrap().mode() & 0o7777, 0o711);
        root.remove("/etc/sym").unwrap();
        root.remove("/etc/nothing").unwrap();
        assert!(!dir.path().join("etc/sym").exists());
        assert!(root.stage_hardlink("/etc/h2", "/var/lib/x").unwrap_err().to_string().contains("is a directory"));
    }
}
