//! A directory tree listed once, as it stands: every entry below a directory with its
//! `lstat` and, for a symlink, its target, in lexical depth-first order (each directory's names
//! sorted byte-wise, a directory followed by what it holds). No symlink is followed: each
//! directory is opened from its parent's handle.
//!
//! One listing serves twice in a converging run: its stamps are the input's fingerprint
//! ([`Listing::stamp_digest`], the way git's index notices edits), and a files directory walks
//! its trees from it instead of from the disk ([`crate::host::files_dir`]), so that the entries
//! the run applies are the ones its fingerprint saw.
//!
//! The first levels are listed on the calling thread; each directory found [`SPLIT_DEPTH`]
//! levels down is listed with all it holds as one task, the tasks spread over the cores.

use std::fmt::Write as _;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Stat};

use crate::host::input_file;
use crate::model::source::is_ignored;
use crate::spread;

/// How many levels down the subtrees start that are listed each as one task.
const SPLIT_DEPTH: usize = 2;

/// One entry of a listing. A large files directory is listed whole, so an entry keeps only
/// what is asked of it: 80 bytes and its path's text, where a whole `lstat` alone takes 144.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its path relative to the listed directory, `/`-separated.
    pub rel: Box<str>,
    /// What its `lstat` gave.
    pub meta: Meta,
    /// A symlink's target, as its bytes.
    pub target: Option<Box<[u8]>>,
}

impl Listed {
    /// What it is.
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.meta.mode)
    }
}

/// The part of an `lstat` that a listing keeps: the type and permission bits, and what a
/// [`Stamp`] hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// `st_mode`: the file type and permission bits.
    pub mode: u32,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`, in bytes.
    pub size: i64,
    /// The last modification, in seconds since the epoch,
    pub mtime: i64,
    /// and the nanoseconds past that second.
    pub mtime_nsec: u32,
    /// The last status change, in seconds since the epoch,
    pub ctime: i64,
    /// and the nanoseconds past that second.
    pub ctime_nsec: u32,
}

impl From<&Stat> for Meta {
    fn from(st: &Stat) -> Meta {
        // The kernel keeps nanoseconds below 10^9; the casts only narrow the field's type.
        let nanos = |n| u32::try_from(n).unwrap_or(u32::MAX);
        Meta {
            mode: st.st_mode,
            ino: st.st_ino,
            size: st.st_size,
            mtime: st.st_mtime,
            mtime_nsec: nanos(st.st_mtime_nsec),
            ctime: st.st_ctime,
            ctime_nsec: nanos(st.st_ctime_nsec),
        }
    }
}

/// Every entry below a directory (itself excepted), in lexical depth-first order.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    entries: Vec<Listed>,
}

/// A listing in progress: the entries listed so far and, when subtrees are left for later, where
/// each one goes.
struct Lister {
    skip_ignored: bool,
    /// Directories this many levels down are left for later (`None`: none is).
    split_depth: Option<usize>,
    out: Vec<Listed>,
    /// Each subtree left for later: its directory and the place of its entries in `out`.
    later: Vec<(String, usize)>,
}

impl Listing {
    /// Lists `dir` (a symlink naming it is followed: the operator named it). `skip_ignored`
    /// leaves out `.…` and `_…` names except `.gitignore`, as the repository layout does.
    pub fn of(dir: &Path, skip_ignored: bool) -> io::Result<Listing> {
        let top = input_file::open_dir(dir)?;
        let mut lister = Lister { skip_ignored, split_depth: Some(SPLIT_DEPTH), out: Vec::new(), later: Vec::new() };
        lister.list(&top, "", 1)?;
        let Lister { out, later, .. } = lister;
        let threads = if later.len() > 1 { spread::cores() } else { 1 };
        let subtrees = spread::claimed(&later, threads, |(rel, _)| list_subtree(&top, rel, skip_ignored));
        let subtrees = subtrees.into_iter().collect::<io::Result<Vec<_>>>()?;
        // Allocated once at its full size: each subtree is freed as soon as it is moved in.
        let mut entries = Vec::with_capacity(out.len() + subtrees.iter().map(Vec::len).sum::<usize>());
        let mut out = out.into_iter();
        let mut taken = 0;
        for ((_, at), subtree) in later.iter().zip(subtrees) {
            entries.extend(out.by_ref().take(at - taken));
            taken = *at;
            entries.extend(subtree);
        }
        entries.extend(out);
        Ok(Listing { entries })
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[Listed] {
        &self.entries
    }

    /// The entry at `rel` (a path of the listing's form), if listed.
    pub fn get(&self, rel: &str) -> Option<&Listed> {
        self.position(rel).map(|i| &self.entries[i])
    }

    /// What directory `rel` holds (`""`: the listed directory), in order, each with its path
    /// relative to the listed directory; `None` when `rel` is not a listed directory.
    pub fn below(&self, rel: &str) -> Option<&[Listed]> {
        if rel.is_empty() {
            return Some(&self.entries);
        }
        let at = self.position(rel)?;
        if self.entries[at].file_type() != FileType::Directory {
            return None;
        }
        let rest = &self.entries[at + 1..];
        let held =
            rest.iter().take_while(|e| e.rel.strip_prefix(rel).is_some_and(|tail| tail.starts_with('/'))).count();
        Some(&rest[..held])
    }

    fn position(&self, rel: &str) -> Option<usize> {
        self.entries.binary_search_by(|e| depth_first(&e.rel, rel)).ok()
    }

    /// A hash of every entry's stamp ([`Stamp`]) and link target, `salt` first: it changes
    /// whenever an entry is added, removed, renamed or its content may have changed.
    pub fn stamp_digest(&self, salt: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(salt);
        let mut line = String::new();
        for entry in &self.entries {
            line.clear();
            let _ = write!(line, "{}\0{}\0", entry.rel, Stamp(&entry.meta));
            h.update(line.as_bytes());
            if let Some(target) = &entry.target {
                h.update(target);
            }
        }
        format!("sha256-{}", hex::encode(h.finalize()))
    }
}

/// A directory on the way down: its handle (`None`: the one the listing was started from), its
/// path, how many levels below the top it is, and the names in it not listed yet.
struct Open {
    dir: Option<OwnedFd>,
    rel: String,
    depth: usize,
    names: std::vec::IntoIter<String>,
}

impl Lister {
    /// Lists what directory `dir` (at `rel`, `depth` levels below the top) holds, depth first.
    /// The directories on the way are kept on a stack of their own, not the call stack: a tree
    /// may be thousands of levels deep, and it is listed on threads with small stacks.
    fn list(&mut self, dir: &OwnedFd, rel: &str, depth: usize) -> io::Result<()> {
        let mut open = vec![Open { dir: None, rel: rel.to_string(), depth, names: self.names(dir)? }];
        while let Some(level) = open.last_mut() {
            let Some(name) = level.names.next() else {
                open.pop();
                continue;
            };
            let at = level.dir.as_ref().unwrap_or(dir);
            let stat = input_file::stat_at(at, &name)?;
            let child = if level.rel.is_empty() { name.clone() } else { format!("{}/{name}", level.rel) };
            let target = match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => {
                    Some(rustix::fs::readlinkat(at, name.as_str(), Vec::new())?.into_bytes().into_boxed_slice())
                }
                _ => None,
            };
            let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
            self.out.push(Listed { rel: child.as_str().into(), meta: Meta::from(&stat), target });
            if !is_dir {
                continue;
            }
            if self.split_depth == Some(level.depth) {
                self.later.push((child, self.out.len()));
            } else {
                let below = input_file::open_dir_at(at, &name)?;
                let (names, depth) = (self.names(&below)?, level.depth + 1);
                open.push(Open { dir: Some(below), rel: child, depth, names });
            }
        }
        Ok(())
    }

    /// The names in `dir` that are listed, sorted.
    fn names(&self, dir: &OwnedFd) -> io::Result<std::vec::IntoIter<String>> {
        let mut names = input_file::names(dir)?;
        if self.skip_ignored {
            names.retain(|n| !is_ignored(n) || n == ".gitignore");
        }
        Ok(names.into_iter())
    }
}

/// The order of a listing: component by component, each compared byte-wise, which is the
/// byte-wise order with `/` ranked below every other byte (no name holds a NUL).
fn depth_first(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let rank = |c: u8| if c == b'/' { 0 } else { c };
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => rank(a[at]).cmp(&rank(b[at])),
        None => a.len().cmp(&b.len()),
    }
}

/// Lists what directory `rel` below `top` holds, all of it, on this thread; the directory is
/// reached from `top` one name at a time, never through a symlink.
fn list_subtree(top: &OwnedFd, rel: &str, skip_ignored: bool) -> io::Result<Vec<Listed>> {
    let mut names = rel.split('/');
    let mut dir = input_file::open_dir_at(top, names.next().unwrap_or_default())?;
    for name in names {
        dir = input_file::open_dir_at(&dir, name)?;
    }
    let mut lister = Lister { skip_ignored, split_depth: None, out: Vec::new(), later: Vec::new() };
    lister.list(&dir, rel, 0)?;
    // Held until every subtree is listed: without the room its growth left over.
    lister.out.shrink_to_fit();
    Ok(lister.out)
}

/// An entry's stamp, as it is hashed: mode, inode, size, modification and change times.
#[derive(Debug)]
pub struct Stamp<'a>(pub &'a Meta);

impl std::fmt::Display for Stamp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(f, "{}:{}:{}:{}.{}:{}.{}", m.mode, m.ino, m.size, m.mtime, m.mtime_nsec, m.ctime, m.ctime_nsec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};

    /// A tree deep enough for subtrees to be listed apart (several directories two levels
    /// down), with names whose byte order differs from their order as paths (`a-b` sorts before
    /// `a/…` byte-wise, after it as a path), a symlink, an executable and hidden names.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a/x/deep/er", "a/y", "a-b/z", "b/.hidden", "_notes", "c"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for (f, body) in [
            ("a/x/deep/er/f", "1"),
            ("a/x/g", "22"),
            ("a/y/h", "333"),
            ("a-b/z/i", "4"),
            ("b/.hidden/j", "5"),
            ("top", "6"),
        ] {
            fs::write(dir.path().join(f), body).unwrap();
        }
        fs::write(dir.path().join("c/.gitignore"), "*.tmp\n").unwrap();
        symlink("../top", dir.path().join("a/y/link")).unwrap();
        // Modification times of their own, so that no two fields of a stamp hold the same time.
        for (f, nanos) in [("a/x/g", 123_456_789), ("a/y/h", 1)] {
            let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, nanos);
            fs::File::options().write(true).open(dir.path().join(f)).unwrap().set_modified(when).unwrap();
        }
        dir
    }

    /// The depth-first walk and the stamp bytes, made with the standard library alone: names
    /// sorted byte-wise, each directory followed by what it holds.
    fn std_walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let child = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let m = fs::symlink_metadata(&path).unwrap();
            let mut bytes = format!(
                "{child}\0{}:{}:{}:{}.{}:{}.{}\0",
                m.mode(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            )
            .into_bytes();
            if m.file_type().is_symlink() {
                bytes.extend(fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes());
            }
            out.push((child.clone(), bytes));
            if m.is_dir() {
                std_walk(&path, &child, out);
            }
        }
    }

    #[test]
    fn entries_come_in_depth_first_order_and_hash_to_their_stamps() {
        use sha2::{Digest, Sha256};
        let dir = tree();
        let listing = Listing::of(dir.path(), false).unwrap();
        let mut expected = Vec::new();
        std_walk(dir.path(), "", &mut expected);
        let rels: Vec<&str> = listing.entries().iter().map(|e| &*e.rel).collect();
        let want: Vec<&str> = expected.iter().map(|(rel, _)| rel.as_str()).collect();
        assert_eq!(rels, want);
        assert!(rels.iter().position(|r| *r == "a/y/link") < rels.iter().position(|r| *r == "a-b"), "{rels:?}");

        let mut h = Sha256::new();
        h.update(b"salt");
        expected.iter().for_each(|(_, bytes)| h.update(bytes));
        assert_eq!(listing.stamp_digest(b"salt"), format!("sha256-{}", hex::encode(h.finalize())));
        let link = listing.get("a/y/link").unwrap();
        assert_eq!((link.file_type(), link.target.as_deref()), (FileType::Symlink, Some(&b"../top"[..])));
    }

    #[test]
    fn an_entry_takes_80_bytes_and_its_paths_text() {
        // 16 for the path's pointer and length, 48 for the fields of `Meta` (four of 8 bytes and
        // three of 4, rounded up to a multiple of 8), 16 for the optional link target's.
        assert_eq!(std::mem::size_of::<Listed>(), 16 + 48 + 16);
    }

    #[test]
    fn ignored_names_are_left_out_but_gitignore_files() {
        let dir = tree();
        let listing = Listing::of(dir.path(), true).unwrap();
        let rels: Vec<&str> = listing.entries().iter().map(|e| &*e.rel).collect();
        assert!(rels.contains(&"c/.gitignore"), "{rels:?}");
        assert!(!rels.iter().any(|r| r.contains(".hidden") || r.starts_with("_notes")), "{rels:?}");
        assert!(rels.contains(&"a/x/deep/er/f"), "{rels:?}");
    }

    #[test]
    fn what_a_directory_holds_is_the_run_of_entries_after_it() {
        let dir = tree();
        let listing = Listing::of(dir.path(), false).unwrap();
        let below =
            |rel: &str| listing.below(rel).map(|held| held.iter().map(|e| e.rel.to_string()).collect::<Vec<_>>());
        assert_eq!(below("a/x").unwrap(), ["a/x/deep", "a/x/deep/er", "a/x/deep/er/f", "a/x/g"]);
        assert_eq!(
            below("a").unwrap(),
            ["a/x", "a/x/deep", "a/x/deep/er", "a/x/deep/er/f", "a/x/g", "a/y", "a/y/h", "a/y/link"],
            "nothing of a-b, which sorts between a's entries byte-wise"
        );
        assert_eq!(below("").unwrap().len(), listing.entries().len());
        assert_eq!(below("top"), None, "a file holds nothing");
        assert_eq!(below("a/y/link"), None, "a symlink is not walked through");
        assert_eq!(below("missing"), None);
        assert!(listing.get("a/x/g").is_some_and(|e| e.meta.size == 2));
        assert!(listing.get("a/x/gone").is_none());
    }

    #[test]
    fn a_tree_hundreds_of_levels_deep_is_listed_in_little_stack() {
        use rustix::fs::{Mode, OFlags};
        const LEVELS: usize = 400;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("top/chain")).unwrap();
        let mut at = input_file::open_dir(&dir.path().join("top/chain")).unwrap();
        for _ in 0..LEVELS {
            rustix::fs::mkdirat(&at, "d", Mode::RWXU).unwrap();
            at = rustix::fs::openat(&at, "d", OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        }
        drop(at);
        // A listing's threads may have small stacks; one level must not cost a frame of its own.
        let root = dir.path().to_path_buf();
        let listing = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || Listing::of(&root, false).unwrap())
            .unwrap()
            .join()
            .unwrap();
        let deepest = ["d"; LEVELS].join("/");
        assert!(listing.get(&format!("top/chain/{deepest}")).is_some());
        assert_eq!(listing.entries().len(), LEVELS + 2);
        assert_eq!(listing.below("top/chain/d").unwrap().len(), LEVELS - 1, "the rest of the chain");
    }

    #[test]
    fn a_directory_that_cannot_be_listed_fails_the_listing() {
        let dir = tree();
        fs::remove_dir_all(dir.path().join("a/x/deep")).unwrap();
        symlink("/nonexistent-core-ops", dir.path().join("a/x/deep")).unwrap();
        assert!(Listing::of(dir.path(), false).is_ok(), "a dangling symlink is an entry like any other");
        assert!(Listing::of(&dir.path().join("missing"), false).is_err());
    }
}
