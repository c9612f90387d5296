//! A source repository read from a plain directory (`--source-repo DIR`) into the model's
//! in-memory tree. Names starting with `.` or `_` are skipped, as the layout ignores them;
//! symlinks are refused so that a repository can never point CoreOps at files outside it.
//! The walk goes through directory handles without following any symlink, and only regular
//! files are read, each and all together under a cap ([`input_file`]): a FIFO or a device in
//! the repository is an error, never a hang or an endless read.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::FileType;

use crate::host::input_file::{self, Budget, InputError};
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, is_ignored};

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

/// Reads every file of `dir`.
pub fn read(dir: &Path) -> Result<SourceTree, SourceDirError> {
    let not_a_directory = || SourceDirError::NotADirectory(dir.display().to_string());
    if !dir.is_dir() {
        return Err(not_a_directory());
    }
    let handle = input_file::open_dir(dir).map_err(|_| not_a_directory())?;
    let mut reader = Reader { tree: SourceTree::default(), issues: Vec::new(), budget: Budget::default() };
    reader.walk(&handle, "");
    if reader.issues.is_empty() { Ok(reader.tree) } else { Err(SourceDirError::Invalid(reader.issues)) }
}

/// One read of a repository: what was read, what was wrong, and what may still be read.
struct Reader {
    tree: SourceTree,
    issues: Vec<SourceIssue>,
    budget: Budget,
}

impl Reader {
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
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => Err("symlinks are not allowed in a source repository; commit the file itself".into()),
            FileType::Directory => {
                let child = input_file::open_dir_at(dir, name).map_err(|e| format!("cannot read the folder: {e}"))?;
                self.walk(&child, rel);
                Ok(())
            }
            _ => {
                let bytes = input_file::read_at(dir, name, &self.budget).map_err(|e| match e {
                    InputError::Os(e) => format!("cannot read: {e}"),
                    other => other.to_string(),
                })?;
                self.tree.insert(rel, bytes, stat.st_mode & 0o111 != 0);
                Ok(())
            }
        }
    }
}

/// A hash of every entry's stamp below `dir` (name, kind, mode, size, inode, modification and
/// change times, link targets), without reading contents — the way git's index notices edits.
/// `skip_ignored` leaves out `.…` and `_…` names, as the repository layout does. `None` when
/// something cannot be inspected.
pub fn stamp_digest(dir: &Path, skip_ignored: bool, salt: &[u8]) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(salt);
    stamp_walk(dir, "", skip_ignored, &mut h)?;
    Some(format!("sha256-{}", hex::encode(h.finalize())))
}

fn stamp_walk(dir: &Path, rel: &str, skip_ignored: bool, h: &mut sha2::Sha256) -> Option<()> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut names: Vec<String> =
        fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names.into_iter().filter(|n| !skip_ignored || !is_ignored(n)) {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).ok()?;
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        h.update(format!(
            "{child}\0{}:{}:{}:{}.{}:{}.{}\0",
            meta.mode(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ));
        if meta.file_type().is_symlink() {
            h.update(fs::read_link(&path).ok()?.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            stamp_walk(&path, &child, skip_ignored, h)?;
        }
    }
    Some(())
}

fn display(rel: &str) -> String {
    if rel.is_empty() { ".".to_string() } else { rel.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_skips_ignored_names() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("services/web/config")).unwrap();
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        fs::write(dir.path().join("services/web/config/a"), "a").unwrap();
        fs::write(dir.path().join("services/web/_notes"), "n").unwrap();
        let tree = read(dir.path()).unwrap();
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.get("services/web/config/a").unwrap().bytes, b"a");
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
