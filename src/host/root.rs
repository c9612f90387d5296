//! The root directory that CoreOps manages (`--root`, default `/`), reached only through
//! directory handles: every path is walked one component at a time with `O_NOFOLLOW`, so a
//! symlink planted anywhere under the root is never followed, and nothing outside the root is
//! ever read.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::model::plan::{Observed, ObservedState};

/// Bytes of a file read for diffs; larger files are hashed but not kept.
const MAX_DIFF_BYTES: u64 = 1024 * 1024;

/// The stamp of a file's content: device, inode, size and modification time. A rename keeps
/// it (and may change the change time, which the full stamp adds): a file written and renamed
/// into place by CoreOps is known by it afterwards.
pub fn content_stamp(st: &rustix::fs::Stat) -> String {
    format!("{}:{}:{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec)
}

/// Whether full stamp `now` has content stamp `content`.
fn same_content(now: &str, content: &str) -> bool {
    now.strip_prefix(content).is_some_and(|rest| rest.starts_with(':'))
}

/// An open root directory.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// Where a path's parent directory is.
enum Parent {
    /// Open, with the last component's name.
    Found(Rc<OwnedFd>, String),
    /// A component is missing.
    Missing,
    /// A component is a symlink or not a directory.
    Unsafe(String),
}

/// A directory walked to (or why it cannot be).
#[derive(Clone)]
enum Dir {
    Open(Rc<OwnedFd>),
    Missing,
    Unsafe(String),
}

/// How much of a file's content an observation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Metadata only.
    Stat,
    /// The hash, not keeping the bytes.
    Hash,
    /// The hash and (up to a limit) the bytes, for diffs.
    Keep,
}

/// Directories already walked during one observation, by path.
type DirCache = HashMap<String, Dir>;

impl Root {
    /// Opens the root directory.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .with_context(|| format!("opening the root directory {}", path.display()))?;
        Ok(Root { dir, path: path.to_path_buf() })
    }

    /// Another handle on the same root (its directory's descriptor duplicated), for a thread of
    /// its own.
    pub fn try_clone(&self) -> Result<Self> {
        let dir =
            self.dir.try_clone().with_context(|| format!("sharing the root directory {}", self.path.display()))?;
        Ok(Root { dir, path: self.path.clone() })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory handle.
    pub(crate) fn handle(&self) -> &OwnedFd {
        &self.dir
    }

    /// Walks to directory `dir` (absolute, clean) without following symlinks, reusing the
    /// directories `cache` already holds.
    fn walk_dir(&self, dir: &str, cache: &mut DirCache) -> Dir {
        if let Some(found) = cache.get(dir) {
            return found.clone();
        }
        let result = match dir.rsplit_once('/') {
            None | Some(("", "")) => {
                match rustix::fs::openat(
                    &self.dir,
                    ".",
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => Dir::Open(Rc::new(fd)),
                    Err(e) => Dir::Unsafe(format!("cannot open the root: {e}")),
                }
            }
            Some((parent, name)) => match self.walk_dir(if parent.is_empty() { "/" } else { parent }, cache) {
                Dir::Open(fd) => self.open_child_dir(&fd, name, dir),
                other => other,
            },
        };
        cache.insert(dir.to_string(), result.clone());
        result
    }

    fn open_child_dir(&self, parent: &OwnedFd, name: &str, walked: &str) -> Dir {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => Dir::Open(Rc::new(fd)),
            Err(Errno::NOENT) => Dir::Missing,
            Err(Errno::NOTDIR | Errno::LOOP) => {
                let what = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => "a symlink",
                    _ => "not a directory",
                };
                Dir::Unsafe(format!(
                    "{walked} is {what}; CoreOps never follows symlinks under the root and will not write through it"
                ))
            }
            Err(e) => Dir::Unsafe(format!("cannot open {walked}: {e}")),
        }
    }

    /// Walks to the parent directory of absolute, clean `path` without following symlinks; any
    /// other spelling is refused, as every writer refuses it ([`crate::model::path::split_node_path`]).
    fn parent(&self, path: &str, cache: &mut DirCache) -> Parent {
        let (dir, name) = match crate::model::path::split_node_path(path) {
            Ok(parts) => parts,
            Err(refused) => return Parent::Unsafe(refused.to_string()),
        };
        match self.walk_dir(dir, cache) {
            Dir::Open(fd) => Parent::Found(fd, name.to_string()),
            Dir::Missing => Parent::Missing,
            Dir::Unsafe(reason) => Parent::Unsafe(reason),
        }
    }

    /// What is at absolute `path` under the root.
    pub fn observe(&self, path: &str) -> Observed {
        self.observe_with(path, &mut DirCache::new())
    }

    fn observe_with(&self, path: &str, cache: &mut DirCache) -> Observed {
        self.inspect(path, cache, Reading::Keep)
    }

    /// What is at `path`, reading a file's content as `reading` says.
    fn inspect(&self, path: &str, cache: &mut DirCache, reading: Reading) -> Observed {
        let (dir, name) = match self.parent(path, cache) {
            Parent::Found(dir, name) => (dir, name),
            Parent::Missing => return Observed::Missing,
            Parent::Unsafe(reason) => return Observed::Unsafe(reason),
        };
        let st = match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Observed::Missing,
            Err(e) => return Observed::Unsafe(format!("cannot inspect {path}: {e}")),
        };
        let mode = st.st_mode & 0o7777;
        let (uid, gid) = (st.st_uid, st.st_gid);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Observed::Directory { mode, uid, gid },
            FileType::Symlink => match rustix::fs::readlinkat(&dir, name.as_str(), Vec::new()) {
                Ok(target) => Observed::Symlink { target: target.to_string_lossy().into_owned(), uid, gid },
                Err(e) => Observed::Unsafe(format!("cannot read the link {path}: {e}")),
            },
            FileType::RegularFile => {
                let stamp = format!("{}:{}.{}", content_stamp(&st), st.st_ctime, st.st_ctime_nsec);
                let inode = (st.st_dev, st.st_ino);
                if reading == Reading::Stat {
                    return Observed::File { bytes: None, sha256: String::new(), mode, uid, gid, inode, stamp };
                }
                match self.read_file(&dir, &name, reading == Reading::Keep) {
                    Ok((bytes, sha256)) => Observed::File { bytes, sha256, mode, uid, gid, inode, stamp },
                    Err(e) => Observed::Unsafe(format!("cannot read {path}: {e}")),
                }
            }
            _ => Observed::Other,
        }
    }

    fn read_file(&self, dir: &OwnedFd, name: &str, keep: bool) -> std::io::Result<(Option<Vec<u8>>, String)> {
        let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
        let mut file = std::fs::File::from(fd);
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
            if keep && total <= MAX_DIFF_BYTES {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        let bytes = (keep && total <= MAX_DIFF_BYTES).then_some(kept);
        Ok((bytes, format!("sha256-{}", hex::encode(hasher.finalize()))))
    }

    /// The bytes of a small file under the root, if it is a regular file reached safely.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        match self.observe(path) {
            Observed::File { bytes, .. } => bytes,
            _ => None,
        }
    }

    /// Observes `paths` and reads the account databases.
    pub fn observe_all<'a>(&self, paths: impl IntoIterator<Item = &'a String>) -> ObservedState {
        let mut cache = DirCache::new();
        let nodes = paths.into_iter().map(|p| (p.clone(), self.observe_with(p, &mut cache))).collect();
        ObservedState { nodes, users: self.ids("/etc/passwd"), groups: self.ids("/etc/group") }
    }

    /// What is at each path, without reading file contents (stamps only).
    pub fn stat_all<'a>(&self, paths: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, Observed> {
        let mut cache = DirCache::new();
        paths.into_iter().map(|p| (p.clone(), self.inspect(p, &mut cache, Reading::Stat))).collect()
    }

    /// Observes `paths` after a batch of writes: a file still carrying the content stamp it was
    /// left with (`written`: path → stamp and the digest of the bytes written) is the very inode
    /// CoreOps wrote and synced, and is not read again; any other path is hashed.
    pub fn verify_all<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a String>,
        written: &HashMap<String, (String, String)>,
    ) -> ObservedState {
        let verify = |p: &String, cache: &mut DirCache| match written.get(p) {
            Some((stamp, sha256)) => match self.inspect(p, cache, Reading::Stat) {
                Observed::File { bytes, mode, uid, gid, inode, stamp: now, .. } if same_content(&now, stamp) => {
                    Observed::File { bytes, sha256: sha256.clone(), mode, uid, gid, inode, stamp: now }
                }
                _ => self.inspect(p, cache, Reading::Hash),
            },
            None => self.inspect(p, cache, Reading::Hash),
        };
        // Each run of paths (spread over the cores) keeps its own directory handles.
        let nodes = crate::spread::in_runs(paths.into_iter().collect(), |run: Vec<&String>| {
            let mut cache = DirCache::new();
            run.into_iter().map(|p| (p.clone(), verify(p, &mut cache))).collect()
        });
        ObservedState {
            nodes: nodes.into_iter().collect(),
            users: self.ids("/etc/passwd"),
            groups: self.ids("/etc/group"),
        }
    }

    /// `name → id` from a passwd- or group-format file under the root.
    fn ids(&self, path: &str) -> BTreeMap<String, u32> {
        let text = self.read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?.parse().ok()?;
                Some((name.to_string(), id))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn observes_files_directories_and_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc/app")).unwrap();
        fs::write(dir.path().join("etc/app/a.conf"), "hello\n").unwrap();
        symlink("a.conf", dir.path().join("etc/app/link")).unwrap();
        fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n")
            .unwrap();
        let root = Root::open(dir.path()).unwrap();
        let Observed::File { bytes, sha256, .. } = root.observe("/etc/app/a.conf") else { panic!() };
        assert_eq!(bytes.unwrap(), b"hello\n");
        assert_eq!(sha256, crate::model::plan::sha256(b"hello\n"));
        assert!(matches!(root.observe("/etc/app"), Observed::Directory { .. }));
        assert!(matches!(root.observe("/etc/app/link"), Observed::Symlink { target, .. } if target == "a.conf"));
        assert_eq!(root.observe("/etc/nope/x"), Observed::Missing);
        let state = root.observe_all(&[]);
        assert_eq!(state.users.get("core"), Some(&1000));
    }

    #[test]
    fn a_file_with_the_stamp_it_was_written_with_is_not_read_again_and_any_other_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let staged = root.stage_file("/etc/a.conf", b"written\n", 0o644, 0, 0).unwrap();
        let stamp = staged.written().unwrap().stamp.clone();
        root.commit(staged, false).unwrap();
        let path = "/etc/a.conf".to_string();
        let written = HashMap::from([(path.clone(), (stamp, "sha256-as-written".to_string()))]);
        let digest_of = |seen: &ObservedState| match &seen.nodes[&path] {
            Observed::File { sha256, .. } => sha256.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(digest_of(&root.verify_all([&path], &written)), "sha256-as-written", "known by its stamp");
        // Rewritten in place: another size and modification time, so it is read and hashed
        // (the digest of "changed\n" by sha256sum).
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(dir.path().join("etc/a.conf"), "changed\n").unwrap();
        assert_eq!(
            digest_of(&root.verify_all([&path], &written)),
            "sha256-7f8b1dfc466b6249f06cbe55c9174df2578e7754da793fded244ef5cba2a38f1"
        );
    }

    #[test]
    fn never_follows_a_symlinked_parent_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("etc")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        match root.observe("/etc/secret") {
            Observed::Unsafe(reason) => assert!(reason.contains("/etc is a symlink"), "{reason}"),
            other => panic!("followed a symlink: {other:?}"),
        }
    }
}
