//! The Butane files directory (`-d/--files-dir`) on disk, behind the model's [`FilesDir`] trait.
//!
//! A `local:` path is resolved as Butane resolves it (symlinks followed), but the result must
//! stay inside the files directory: a symlink that leads out of it is refused, where Butane
//! would read the file it points to. The check is made on the fully resolved path; the file is
//! then opened from the directory's handle one component at a time without following any
//! symlink, so a link swapped in after the check makes the read fail, never escape. (The
//! kernel's `openat2(RESOLVE_BENEATH)` would refuse absolute links that point inside, which
//! Butane follows and users write.) Only regular files are read, each and all together under a
//! cap ([`input_file`]). Tree walks do not follow symlinks. Error texts are the operating
//! system's, prefixed with the operation and the path as given, as Go prints them.
//!
//! A files directory may come with a listing of it ([`Listing`], taken for the input's
//! fingerprint): a tree whose root is reached through plain names is then walked from the
//! listing, and a file it lists as regular is opened without being inspected again.
//!
//! A large tree is read without resolving every path from the start: the files directory is
//! resolved and opened once, and each directory reached below it through plain names (no
//! symlink, no `.` or `..`) is opened once from its parent's handle and kept. A path that meets
//! a symlink, or names `.` or `..`, takes the full resolution above.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use rustix::fs::{FileType, Stat};

use crate::host::input_file::{self, Budget, InputError};
use crate::host::listing::{Listed, Listing};
use crate::model::butane::files::{EntryKind, FilesDir, WalkEntry};
use crate::spread;

/// The most directory handles a files directory keeps open for later reads: a quarter of the
/// files the process may have open, and no more than 256. Past them, a directory is opened for
/// each read that needs it: a tree of thousands of directories must not use up the descriptors
/// its reads need too.
fn kept_dirs() -> usize {
    static KEPT: OnceLock<usize> = OnceLock::new();
    *KEPT.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
        usize::try_from(limit / 4).unwrap_or(usize::MAX).min(256)
    })
}

/// A files directory rooted at a path (relative paths are taken from the working directory).
/// All reads through one value share one total cap.
#[derive(Debug, Clone)]
pub struct DiskFilesDir {
    root: PathBuf,
    budget: Budget,
    opened: Arc<Opened>,
    listing: Option<Arc<Listing>>,
}

/// The files directory resolved and open, and the directories below it reached through plain
/// names, by their path relative to it (`""`: the files directory itself).
#[derive(Debug, Default)]
struct Opened {
    root: OnceLock<(PathBuf, Arc<OwnedFd>)>,
    dirs: RwLock<HashMap<String, Arc<OwnedFd>>>,
}

/// A directory handle: one of the kept ones, or one opened for a single use.
enum Handle {
    Kept(Arc<OwnedFd>),
    Own(OwnedFd),
}

impl AsFd for Handle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Handle::Kept(fd) => fd.as_fd(),
            Handle::Own(fd) => fd.as_fd(),
        }
    }
}

impl Handle {
    fn into_owned(self) -> io::Result<OwnedFd> {
        match self {
            Handle::Kept(fd) => Ok(fd.try_clone()?),
            Handle::Own(fd) => Ok(fd),
        }
    }
}

/// Where a path of the files directory leads: the directory's handle and the components below
/// it, with every symlink resolved.
struct Located {
    root: OwnedFd,
    parts: Vec<String>,
}

impl DiskFilesDir {
    /// The files directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskFilesDir { root: root.into(), budget: Budget::default(), opened: Arc::default(), listing: None }
    }

    /// The files directory at `root`, as `listing` (taken of that directory) found it.
    pub fn listed(root: impl Into<PathBuf>, listing: Arc<Listing>) -> Self {
        DiskFilesDir { listing: Some(listing), ..DiskFilesDir::new(root) }
    }

    /// Whether the listing has `rel` as a regular file.
    fn listed_file(&self, rel: &str) -> bool {
        let listed = self.listing.as_ref().and_then(|listing| listing.get(rel));
        listed.is_some_and(|entry| entry.file_type() == FileType::RegularFile)
    }

    /// The files directory, resolved and opened on first use.
    fn opened_root(&self) -> Result<&(PathBuf, Arc<OwnedFd>), InputError> {
        if let Some(opened) = self.opened.root.get() {
            return Ok(opened);
        }
        let root = fs::canonicalize(&self.root)?;
        let fd = input_file::open_dir(&root)?;
        Ok(self.opened.root.get_or_init(|| (root, Arc::new(fd))))
    }

    /// The directory holding the last component of `rel` and that component's name (`None` for
    /// the files directory itself), every symlink on the way resolved and kept inside.
    fn parent(&self, rel: &str) -> Result<(Handle, Option<String>), InputError> {
        if let Some(found) = self.plain_parent(rel)? {
            return Ok(found);
        }
        self.located(rel)
    }

    /// [`Self::parent`] through the full resolution.
    fn located(&self, rel: &str) -> Result<(Handle, Option<String>), InputError> {
        let (dir, name) = self.locate(rel)?.parent()?;
        Ok((Handle::Own(dir), name))
    }

    /// [`Self::parent`] for a path of plain names whose directories are no symlinks and whose
    /// last component is none either; `None` when the path is not such a path.
    fn plain_parent(&self, rel: &str) -> Result<Option<(Handle, Option<String>)>, InputError> {
        let Some((dir_fd, name)) = self.plain_location(rel)? else { return Ok(None) };
        let Some(name) = name else { return Ok(Some((dir_fd, None))) };
        match rustix::fs::statat(&dir_fd, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Ok(None),
            Ok(_) => Ok(Some((dir_fd, Some(name)))),
            // Reported as the full resolution reports it.
            Err(_) => Ok(None),
        }
    }

    /// The kept handle of the directory of `rel` and its last name, when every directory on
    /// the way is reached through plain names and none is a symlink; what the last name is, is
    /// not looked at. `None` when the path is not such a path.
    fn plain_location(&self, rel: &str) -> Result<Option<(Handle, Option<String>)>, InputError> {
        let (_, root_fd) = self.opened_root()?;
        if rel.is_empty() {
            return Ok(Some((Handle::Kept(root_fd.clone()), None)));
        }
        if rel.split('/').any(|part| matches!(part, "" | "." | "..")) {
            return Ok(None);
        }
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        Ok(self.plain_dir(root_fd, dir).map(|dir_fd| (Handle::Kept(dir_fd), Some(name.to_string()))))
    }

    /// Directory `dir` (plain names below the files directory), opened from its parent's handle
    /// without following a symlink; the first [`kept_dirs`] directories are kept and opened once.
    /// `None` when a component is a symlink or cannot be opened (the full resolution then
    /// decides).
    fn plain_dir(&self, root_fd: &Arc<OwnedFd>, dir: &str) -> Option<Arc<OwnedFd>> {
        if dir.is_empty() {
            return Some(root_fd.clone());
        }
        if let Some(kept) = self.opened.dirs.read().ok()?.get(dir) {
            return Some(kept.clone());
        }
        let (up, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let parent = self.plain_dir(root_fd, up)?;
        let fd = Arc::new(input_file::open_dir_at(&*parent, name).ok()?);
        let mut kept = self.opened.dirs.write().ok()?;
        if kept.len() < kept_dirs() {
            kept.insert(dir.to_string(), fd.clone());
        }
        Some(fd)
    }

    fn full(&self, rel: &str) -> PathBuf {
        if rel.is_empty() { self.root.clone() } else { self.root.join(rel) }
    }

    /// Resolves `rel` (symlinks followed) and refuses a result outside the files directory.
    fn locate(&self, rel: &str) -> Result<Located, InputError> {
        let (root, root_fd) = self.opened_root()?;
        let target = fs::canonicalize(root.join(rel))?;
        let below = target
            .strip_prefix(root)
            .map_err(|_| InputError::Outside { target: target.clone(), within: "files directory" })?;
        let parts = below.iter().map(|part| part.to_string_lossy().into_owned()).collect();
        Ok(Located { root: root_fd.try_clone()?, parts })
    }
}

impl Located {
    /// The directory holding the last component, opened without following symlinks, and that
    /// component's name (`None` for the files directory itself).
    fn parent(self) -> io::Result<(OwnedFd, Option<String>)> {
        let Some((last, dirs)) = self.parts.split_last() else { return Ok((self.root, None)) };
        let mut dir = self.root;
        for name in dirs {
            dir = input_file::open_dir_at(&dir, name)?;
        }
        Ok((dir, Some(last.clone())))
    }
}

/// `open files/x: no such file or directory`, as Go prints an `*os.PathError`.
fn os_error(op: &str, path: &Path, err: &InputError) -> String {
    let text = match err {
        InputError::Os(err) => match err.kind() {
            io::ErrorKind::NotFound => "no such file or directory".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            io::ErrorKind::IsADirectory => "is a directory".to_string(),
            io::ErrorKind::NotADirectory => "not a directory".to_string(),
            _ => err.to_string(),
        },
        other => other.to_string(),
    };
    format!("{op} {}: {text}", path.display())
}

fn kind_of(stat: &Stat, dir: impl AsFd, name: &str) -> EntryKind {
    kind_from(stat.st_mode, || {
        rustix::fs::readlinkat(dir, name, Vec::new()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default()
    })
}

/// What an entry is, from the mode its `lstat` gave; `target` gives a symlink's target.
fn kind_from(mode: u32, target: impl FnOnce() -> String) -> EntryKind {
    match FileType::from_raw_mode(mode) {
        FileType::Symlink => EntryKind::Symlink(target()),
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File { executable: mode & 0o111 != 0 },
        _ => EntryKind::Other,
    }
}

/// A listed entry as a walk gives it, its path relative to the walked directory (`at` long,
/// `/` included).
fn walked(entry: &Listed, at: usize) -> WalkEntry {
    let target = || entry.target.as_deref().map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
    WalkEntry { rel: entry.rel[at..].to_string(), kind: kind_from(entry.meta.mode, target) }
}

impl FilesDir for DiskFilesDir {
    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let read = || {
            if let Some((dir, Some(name))) = self.plain_location(rel)? {
                let read = if self.listed_file(rel) {
                    input_file::read_listed_at(&dir, &name, &self.budget)
                } else {
                    input_file::read_at_unless_symlink(&dir, &name, &self.budget)
                };
                match read {
                    Ok(Some(bytes)) => return Ok(bytes),
                    // A symlink, or a failure that the full resolution reports as Butane does.
                    Ok(None) | Err(InputError::Os(_)) => {}
                    Err(refused) => return Err(refused),
                }
            }
            match self.located(rel)? {
                (dir, Some(name)) => input_file::read_at(&dir, &name, &self.budget),
                (_, None) => Err(InputError::NotRegular("a directory")),
            }
        };
        read().map_err(|e| os_error("open", &self.full(rel), &e))
    }

    /// Reads the files at once, spread over the cores. Which file a total over the cap refuses
    /// depends on the order of the reads, so a batch that goes over it is read again one file
    /// after the other, as [`FilesDir::read`] would: the refusal is the same on every run.
    fn read_all(&self, rels: &[String]) -> Vec<Result<Vec<u8>, String>> {
        let mark = self.budget.mark();
        let read = spread::claimed(rels, spread::threads_for(rels.len()), |rel| self.read(rel));
        if !self.budget.overran_since(mark) {
            return read;
        }
        self.budget.rewind(mark);
        rels.iter().map(|rel| self.read(rel)).collect()
    }

    fn kind(&self, rel: &str) -> Result<EntryKind, String> {
        let kind = || match self.parent(rel)? {
            (dir, Some(name)) => Ok(kind_of(&input_file::stat_at(&dir, &name)?, &dir, &name)),
            (_, None) => Ok(EntryKind::Dir),
        };
        kind().map_err(|e: InputError| os_error("stat", &self.full(rel), &e))
    }

    fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String> {
        if let Some(held) = self.listing.as_ref().and_then(|listing| listing.below(rel)) {
            let at = if rel.is_empty() { 0 } else { rel.len() + 1 };
            let root = WalkEntry { rel: String::new(), kind: EntryKind::Dir };
            return Ok(std::iter::once(root).chain(held.iter().map(|entry| walked(entry, at))).collect());
        }
        let path = self.full(rel);
        let open = || -> Result<OwnedFd, InputError> {
            Ok(match self.parent(rel)? {
                (dir, Some(name)) => input_file::open_dir_at(&dir, &name)?,
                (dir, None) => dir.into_owned()?,
            })
        };
        let dir = open().map_err(|e| os_error("open", &path, &e))?;
        let mut out = vec![WalkEntry { rel: String::new(), kind: EntryKind::Dir }];
        walk_into(&dir, &path, "", &mut out)?;
        Ok(out)
    }
}

/// Adds every entry below the open directory `dir` (at `path`, `rel` in the walk) to `out`.
fn walk_into(dir: &OwnedFd, path: &Path, rel: &str, out: &mut Vec<WalkEntry>) -> Result<(), String> {
    let fail = |op: &str, at: &Path, e: io::Error| os_error(op, at, &InputError::Os(e));
    for name in input_file::names(dir).map_err(|e| fail("readdirent", path, e))? {
        let child_path = path.join(&name);
        let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let stat = input_file::stat_at(dir, &name).map_err(|e| fail("lstat", &child_path, e))?;
        let kind = kind_of(&stat, dir, &name);
        let is_dir = kind == EntryKind::Dir;
        out.push(WalkEntry { rel: child_rel.clone(), kind });
        if is_dir {
            let child = input_file::open_dir_at(dir, &name).map_err(|e| fail("open", &child_path, e))?;
            walk_into(&child, &child_path, &child_rel, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_lexical_order_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("t/b")).unwrap();
        fs::write(dir.path().join("t/b/z"), "z").unwrap();
        fs::write(dir.path().join("t/a"), "a").unwrap();
        fs::write(dir.path().join("t/.hidden"), "h").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("t/c")).unwrap();
        let files = DiskFilesDir::new(dir.path());
        let rels: Vec<_> = files.walk("t").unwrap().into_iter().map(|e| (e.rel, e.kind)).collect();
        assert_eq!(
            rels,
            vec![
                ("".into(), EntryKind::Dir),
                (".hidden".into(), EntryKind::File { executable: false }),
                ("a".into(), EntryKind::File { executable: false }),
                ("b".into(), EntryKind::Dir),
                ("b/z".into(), EntryKind::File { executable: false }),
                ("c".into(), EntryKind::Symlink("/etc".into())),
            ]
        );
    }

    #[test]
    fn a_listed_tree_is_walked_as_it_was_listed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("t/b/c")).unwrap();
        fs::create_dir_all(dir.path().join("t-2")).unwrap();
        fs::write(dir.path().join("t/b/c/z"), "z").unwrap();
        fs::write(dir.path().join("t/x"), "x").unwrap();
        fs::set_permissions(dir.path().join("t/x"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("b/c/z", dir.path().join("t/l")).unwrap();
        let disk = DiskFilesDir::new(dir.path());
        let listed = DiskFilesDir::listed(dir.path(), Arc::new(Listing::of(dir.path(), false).unwrap()));
        for rel in ["t", "t/b", ""] {
            assert_eq!(listed.walk(rel).unwrap(), disk.walk(rel).unwrap(), "{rel}");
        }
        // What is added after the listing is not seen through it: the walk comes from it.
        fs::write(dir.path().join("t/y"), "y").unwrap();
        assert!(disk.walk("t").unwrap().iter().any(|e| e.rel == "y"));
        assert!(!listed.walk("t").unwrap().iter().any(|e| e.rel == "y"));
        // A tree whose root is not a listed directory is walked from the disk.
        std::os::unix::fs::symlink("t/b", dir.path().join("via")).unwrap();
        assert_eq!(listed.walk("via").unwrap(), disk.walk("t/b").unwrap());
    }

    #[test]
    fn a_listed_file_replaced_by_a_symlink_is_read_as_a_symlink_is() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        for name in ["f", "g", "other"] {
            fs::write(dir.path().join(name), name).unwrap();
        }
        let listed = DiskFilesDir::listed(dir.path(), Arc::new(Listing::of(dir.path(), false).unwrap()));
        assert_eq!(listed.read("f").unwrap(), b"f");
        for (name, target) in [("f", dir.path().join("other")), ("g", outside.path().join("secret"))] {
            fs::remove_file(dir.path().join(name)).unwrap();
            std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
        }
        assert_eq!(listed.read("f").unwrap(), b"other", "followed inside the files directory");
        let err = listed.read("g").unwrap_err();
        assert!(err.contains("outside the files directory"), "{err}");
    }

    #[test]
    fn follows_symlinks_that_stay_inside_and_refuses_those_that_leave() {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("d")).unwrap();
        fs::write(outside.path().join("d/secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        fs::write(dir.path().join("real/f"), "f").unwrap();
        std::os::unix::fs::symlink("real/f", dir.path().join("rel")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("d/secret"), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("up")).unwrap();
        let files = DiskFilesDir::new(dir.path());
        assert_eq!(files.read("rel").unwrap(), b"f");
        assert_eq!(files.read("abs/f").unwrap(), b"f");
        assert_eq!(files.kind("abs").unwrap(), EntryKind::Dir);
        assert_eq!(files.walk("abs").unwrap().len(), 2);
        for (rel, result) in [
            ("out", files.read("out")),
            ("up/d/secret", files.read("up/d/secret")),
            ("up/d", files.walk("up/d").map(|_| Vec::new())),
            ("up/d", files.kind("up/d").map(|_| Vec::new())),
        ] {
            let err = result.unwrap_err();
            assert!(err.contains("outside the files directory"), "{rel}: {err}");
        }
    }

    #[test]
    fn refuses_special_files_and_caps_the_total() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, dir.path().join("p"), FileType::Fifo, rustix::fs::Mode::RUSR, 0).unwrap();
        fs::write(dir.path().join("ten"), [0u8; 10]).unwrap();
        let files = DiskFilesDir { budget: Budget::with_limit(15), ..DiskFilesDir::new(dir.path()) };
        assert!(files.read("p").unwrap_err().ends_with("not a regular file (a FIFO); only regular files are read"));
        assert!(files.read("ten").is_ok());
        assert!(files.read("ten").unwrap_err().contains("together exceed"));
    }

    #[test]
    fn files_read_at_once_read_as_one_by_one_and_the_total_refuses_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        // 200 files of 10 bytes: read at once, they are spread over the cores.
        let rels: Vec<String> = (0..200).map(|i| format!("f{i:03}")).collect();
        for (i, rel) in rels.iter().enumerate() {
            fs::write(dir.path().join(rel), format!("file {i:04}\n")).unwrap();
        }
        let files = DiskFilesDir::new(dir.path());
        let expected: Vec<Result<Vec<u8>, String>> =
            (0..200).map(|i| Ok(format!("file {i:04}\n").into_bytes())).collect();
        assert_eq!(files.read_all(&rels), expected);
        // A cap of 1,505 bytes holds 150 files and a half: one by one, the 151st file is the
        // first refused, and so is every file after it.
        for _ in 0..5 {
            let capped = DiskFilesDir { budget: Budget::with_limit(1505), ..DiskFilesDir::new(dir.path()) };
            let read = capped.read_all(&rels);
            assert!(read[..150].iter().all(Result::is_ok));
            assert!(
                read[150..].iter().all(|r| r.as_ref().is_err_and(|e| e.contains("together exceed"))),
                "{:?}",
                &read[150]
            );
        }
    }

    #[test]
    fn missing_files_read_like_go_errors() {
        let files = DiskFilesDir::new("files");
        assert_eq!(files.read("nope.txt").unwrap_err(), "open files/nope.txt: no such file or directory");
    }
}
