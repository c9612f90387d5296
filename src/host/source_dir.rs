//! A source repository read from a plain directory (`--source-repo DIR`) into the model's
//! in-memory tree. Names the layout skips (`.…`, `_…`, editor leftovers such as `…~` and
//! `….swp`) are never read; symlinks are refused so that a repository can never point CoreOps at
//! files outside it. The walk goes through directory handles without following any symlink, and
//! only regular files are read, each and all together under a cap ([`input_file`]): a FIFO or a
//! device in the repository is an error, never a hang or an endless read.
//!
//! When the folder is (part of) a git work tree, it is read as git sees it: what git ignores
//! (`.gitignore`, `.git/info/exclude`, `core.excludesFile`) is skipped unless git tracks it, and
//! the HEAD commit is noted, with whether the files read differ from it ([`GitHead`]).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;

use gix::objs::tree::EntryKind;
use rustix::fs::FileType;

use crate::host::git;
use crate::host::input_file::{self, Budget, InputError};
use crate::host::listing::{Listing, Meta, Stamp};
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, is_ignored};

/// The message for a symlink in a source repository (a directory or a commit).
pub const SYMLINK_REFUSED: &str = "symlinks are not allowed in a source repository; commit the file itself";

/// The message for a submodule in a source repository's commit.
pub const SUBMODULE_REFUSED: &str =
    "submodules are not allowed in a source repository; commit the files themselves in this repository";

/// How a message about an entry that could not be read starts (`cannot read: …`).
pub const CANNOT_READ: &str = "cannot read";

/// Why a source directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceDirError {
    /// The path is not a directory (exit code 64).
    #[error("{0} is not a directory; --source-repo takes the folder that holds hosts/ and services/")]
    NotADirectory(String),
    /// Something in it is unusable (exit code 65).
    #[error("the source repository is invalid")]
    Invalid(Vec<SourceIssue>),
}

/// A repository as read: its files and, in a git work tree, where it stands in git.
#[derive(Debug, Clone)]
pub struct SourceRead {
    /// Every file read.
    pub tree: SourceTree,
    /// HEAD and the dirty flag, when the folder is part of a git work tree.
    pub git: Option<GitHead>,
}

/// Where a work tree stands in git when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHead {
    /// The commit HEAD points to (hex); `None` before the first commit.
    pub commit: Option<String>,
    /// The branch HEAD names (`refs/heads/main`); `None` when detached.
    pub reference: Option<String>,
    /// The files read differ from the commit's: edited, added (untracked but not ignored) or
    /// deleted files.
    pub dirty: bool,
}

/// Reads every file of `dir`.
pub fn read(dir: &Path) -> Result<SourceRead, SourceDirError> {
    let not_a_directory = || SourceDirError::NotADirectory(dir.display().to_string());
    if !dir.is_dir() {
        return Err(not_a_directory());
    }
    let handle = input_file::open_dir(dir).map_err(|_| not_a_directory())?;
    let git_error = |e: String| SourceDirError::Invalid(vec![SourceIssue::error(".", format!("git: {e}"))]);
    let work_tree = WorkTree::discover(dir).map_err(git_error)?;
    let ignores = work_tree.as_ref().map(WorkTree::ignore_rules).transpose().map_err(git_error)?;
    let mut reader = Reader { tree: SourceTree::default(), issues: Vec::new(), budget: Budget::default(), ignores };
    reader.walk(&handle, "");
    if !reader.issues.is_empty() {
        return Err(SourceDirError::Invalid(reader.issues));
    }
    let tree = reader.tree;
    let git = work_tree.map(|w| w.head(&tree)).transpose().map_err(git_error)?;
    Ok(SourceRead { tree, git })
}

/// One read of a repository: what was read, what was wrong, and what may still be read.
struct Reader<'r> {
    tree: SourceTree,
    issues: Vec<SourceIssue>,
    budget: Budget,
    ignores: Option<IgnoreRules<'r>>,
}

impl Reader<'_> {
    fn walk(&mut self, dir: &OwnedFd, rel: &str) {
        let names = match input_file::names(dir) {
            Ok(names) => names,
            Err(e) => {
                return self.issues.push(SourceIssue::error(display(rel), format!("cannot read the folder: {e}")));
            }
        };
        for name in names.into_iter().filter(|n| !is_ignored(n)) {
            let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if let Err(message) = self.entry(dir, &name, &child_rel) {
                self.issues.push(SourceIssue::error(&child_rel, message));
            }
        }
    }

    /// Reads entry `name` of `dir` (at `rel` in the repository) into the tree.
    fn entry(&mut self, dir: &OwnedFd, name: &str, rel: &str) -> Result<(), String> {
        let stat = input_file::stat_at(dir, name).map_err(|e| format!("cannot inspect: {e}"))?;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        if let Some(ignores) = &mut self.ignores {
            if ignores.skips(rel, file_type == FileType::Directory)? {
                return Ok(());
            }
        }
        match file_type {
            FileType::Symlink => Err(SYMLINK_REFUSED.into()),
            FileType::Directory => {
                let child = input_file::open_dir_at(dir, name).map_err(|e| format!("cannot read the folder: {e}"))?;
                self.walk(&child, rel);
                Ok(())
            }
            _ => {
                let bytes = input_file::read_at(dir, name, &self.budget).map_err(|e| match e {
                    InputError::Os(e) => format!("{CANNOT_READ}: {e}"),
                    other => other.to_string(),
                })?;
                self.tree.insert(rel, bytes, stat.st_mode & 0o111 != 0);
                Ok(())
            }
        }
    }
}

/// The git work tree a source folder is part of.
struct WorkTree {
    repo: gix::Repository,
    /// The source folder's path inside the work tree, `/`-separated (`""` at its top).
    prefix: String,
    index: gix::worktree::Index,
}

impl WorkTree {
    /// The work tree `dir` is part of: it is the work tree's top, or the work tree tracks files
    /// below it. A folder that merely lies inside an unrelated work tree (a home directory kept
    /// in git) is read as a plain folder.
    fn discover(dir: &Path) -> Result<Option<WorkTree>, String> {
        let Ok(repo) = gix::discover(dir) else { return Ok(None) };
        let Some(top) = repo.workdir().and_then(|w| w.canonicalize().ok()) else { return Ok(None) };
        let Ok(dir) = dir.canonicalize() else { return Ok(None) };
        let Ok(inside) = dir.strip_prefix(&top) else { return Ok(None) };
        let Some(prefix) = inside.to_str().map(str::to_string) else { return Ok(None) };
        let index = repo.index_or_empty().map_err(|e| format!("reading the index: {e}"))?;
        let work_tree = WorkTree { repo, prefix, index };
        let belongs = work_tree.prefix.is_empty() || work_tree.tracks(&work_tree.prefix, true);
        Ok(belongs.then_some(work_tree))
    }

    /// `rel` (relative to the source folder) as a path of the work tree.
    fn path_of(&self, rel: &str) -> String {
        if self.prefix.is_empty() { rel.to_string() } else { format!("{}/{rel}", self.prefix) }
    }

    /// Whether the index holds `path` (a file), or files below it (a folder).
    fn tracks(&self, path: &str, is_dir: bool) -> bool {
        let state: &gix::index::State = &self.index;
        if is_dir {
            state.prefixed_entries(format!("{path}/").as_str().into()).is_some_and(|entries| !entries.is_empty())
        } else {
            state.entry_by_path(path.into()).is_some()
        }
    }

    fn ignore_rules(&self) -> Result<IgnoreRules<'_>, String> {
        let excludes = self
            .repo
            .excludes(&self.index, None, gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped)
            .map_err(|e| format!("reading the ignore rules: {e}"))?;
        Ok(IgnoreRules { work_tree: self, excludes })
    }

    /// HEAD, and whether `tree` (the files read) differs from its commit.
    fn head(&self, tree: &SourceTree) -> Result<GitHead, String> {
        let head = self.repo.head().map_err(|e| format!("reading HEAD: {e}"))?;
        let reference = head.referent_name().map(|name| name.as_bstr().to_string());
        if head.is_unborn() {
            return Ok(GitHead { commit: None, reference, dirty: !tree.is_empty() });
        }
        let commit = self.repo.head_commit().map_err(|e| format!("reading the HEAD commit: {e}"))?;
        let root = commit.tree().map_err(|e| format!("reading the HEAD commit's tree: {e}"))?;
        let mut committed = BTreeMap::new();
        if let Some(folder) = self.subtree(root)? {
            committed_files(folder, &mut committed)?;
        }
        let dirty = differs(tree, &committed, self.repo.object_hash())?;
        Ok(GitHead { commit: Some(commit.id.to_string()), reference, dirty })
    }

    /// The source folder's tree inside a commit's `root` tree, if the commit has it.
    fn subtree<'r>(&self, root: gix::Tree<'r>) -> Result<Option<gix::Tree<'r>>, String> {
        if self.prefix.is_empty() {
            return Ok(Some(root));
        }
        let entry = root.lookup_entry_by_path(&self.prefix).map_err(|e| format!("reading {}: {e}", self.prefix))?;
        match entry {
            Some(entry) if entry.mode().is_tree() => {
                let object = entry.object().map_err(|e| format!("reading {}: {e}", self.prefix))?;
                Ok(Some(object.into_tree()))
            }
            _ => Ok(None),
        }
    }
}

/// The ignore rules of a work tree, loaded folder by folder as the walk goes.
struct IgnoreRules<'r> {
    work_tree: &'r WorkTree,
    excludes: gix::AttributeStack<'r>,
}

impl IgnoreRules<'_> {
    /// Whether git leaves `rel` out: it is ignored, and not tracked (git keeps tracked files
    /// whatever `.gitignore` says, and so does the commit the agent reads).
    fn skips(&mut self, rel: &str, is_dir: bool) -> Result<bool, String> {
        let path = self.work_tree.path_of(rel);
        let mode = if is_dir { gix::index::entry::Mode::DIR } else { gix::index::entry::Mode::FILE };
        let platform = self
            .excludes
            .at_path(Path::new(&path), Some(mode))
            .map_err(|e| format!("reading its ignore rules: {e}"))?;
        Ok(platform.is_excluded() && !self.work_tree.tracks(&path, is_dir))
    }
}

/// Every file of a commit's `tree` that the reader would read (no hidden names or editor
/// leftovers), with its blob id and executable bit. Symlinks and submodules are left out: the
/// reader never takes them either.
fn committed_files(tree: gix::Tree<'_>, out: &mut BTreeMap<String, (gix::ObjectId, bool)>) -> Result<(), String> {
    git::tree::walk(&tree, "", &mut |entry| {
        if let EntryKind::Blob | EntryKind::BlobExecutable = entry.kind {
            out.insert(entry.path, (entry.id, entry.kind == EntryKind::BlobExecutable));
        }
    })
    .map_err(|issue| format!("{}: {}", issue.file, issue.message))
}

/// Whether the files read differ from the committed ones: a file more or less, other bytes (by
/// blob id) or another executable bit.
fn differs(
    tree: &SourceTree,
    committed: &BTreeMap<String, (gix::ObjectId, bool)>,
    hash: gix::hash::Kind,
) -> Result<bool, String> {
    if tree.len() != committed.len() {
        return Ok(true);
    }
    for (path, file) in tree.iter() {
        let Some((id, executable)) = committed.get(path) else { return Ok(true) };
        let read = gix::objs::compute_hash(hash, gix::objs::Kind::Blob, &file.bytes)
            .map_err(|e| format!("hashing {path}: {e}"))?;
        if read != *id || file.executable != *executable {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A hash that changes whenever what [`read`] returns for `dir` may have changed: the stamps of
/// every entry (see [`stamp_digest`]), `.gitignore` files included, and in a git work tree the
/// HEAD commit, its branch and the index's stamp (what git tracks). `salt` is mixed in first.
pub fn repo_digest(dir: &Path, salt: &[u8]) -> Option<String> {
    let mut salted = salt.to_vec();
    if let Ok(Some(work_tree)) = WorkTree::discover(dir) {
        let head = work_tree.repo.head_id().map(|id| id.to_string()).unwrap_or_default();
        let name = work_tree.repo.head_name().ok().flatten().map(|n| n.as_bstr().to_string()).unwrap_or_default();
        let index = stamp_of(&work_tree.repo.index_path()).unwrap_or_default();
        salted.extend(format!("\0git\0{head}\0{name}\0{index}").as_bytes());
    }
    stamp_digest(dir, true, &salted)
}

/// A hash of every entry's stamp below `dir` (name, kind, mode, size, inode, modification and
/// change times, link targets), without reading contents ([`Listing::stamp_digest`]).
/// `skip_ignored` leaves out `.…` and `_…` names, as the repository layout does. `None` when
/// something cannot be inspected.
pub fn stamp_digest(dir: &Path, skip_ignored: bool, salt: &[u8]) -> Option<String> {
    Listing::of(dir, skip_ignored).ok().map(|listing| listing.stamp_digest(salt))
}

/// The stamp of the file at `path`, a symlink there followed (a file the operator named).
pub fn file_stamp(path: &Path) -> Option<String> {
    rustix::fs::stat(path).ok().map(|st| Stamp(&Meta::from(&st)).to_string())
}

fn stamp_of(path: &Path) -> Option<String> {
    rustix::fs::lstat(path).ok().map(|st| Stamp(&Meta::from(&st)).to_string())
}

fn display(rel: &str) -> String {
    if rel.is_empty() { ".".to_string() } else { rel.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_files_and_skips_ignored_names() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("services/web/config")).unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        fs::write(dir.path().join("services/web/config/a"), "a").unwrap();
        fs::write(dir.path().join("services/web/_notes"), "n").unwrap();
        fs::write(dir.path().join("services/web/config/a~"), "backup").unwrap();
        let read = read(dir.path()).unwrap();
        assert_eq!(read.tree.len(), 1);
        assert_eq!(read.tree.get("services/web/config/a").unwrap().bytes, b"a");
        assert_eq!(read.git, None, "a folder with an empty .git/ is not a work tree");
    }

    #[test]
    fn refuses_symlinks_and_non_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        assert!(matches!(read(dir.path()), Err(SourceDirError::Invalid(issues)) if issues[0].file == "passwd"));
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        assert!(matches!(read(&file), Err(SourceDirError::NotADirectory(_))));
    }
}
