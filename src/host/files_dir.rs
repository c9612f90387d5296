//! The Butane files directory (`-d/--files-dir`) on disk, behind the model's [`FilesDir`] trait.
//!
//! Like Butane, reads follow symlinks inside the directory and tree walks do not; error texts
//! are the operating system's, prefixed with the operation and the path as given.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::model::butane::files::{EntryKind, FilesDir, WalkEntry};

/// A files directory rooted at a path (relative paths are taken from the working directory).
#[derive(Debug, Clone)]
pub struct DiskFilesDir {
    root: PathBuf,
}

impl DiskFilesDir {
    /// The files directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskFilesDir { root: root.into() }
    }

    fn full(&self, rel: &str) -> PathBuf {
        if rel.is_empty() { self.root.clone() } else { self.root.join(rel) }
    }
}

/// `open files/x: no such file or directory`, as Go prints an `*os.PathError`.
fn os_error(op: &str, path: &Path, err: &io::Error) -> String {
    let text = match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "is a directory".to_string(),
        io::ErrorKind::NotADirectory => "not a directory".to_string(),
        _ => err.to_string(),
    };
    format!("{op} {}: {text}", path.display())
}

fn kind_of(meta: &fs::Metadata, path: &Path) -> EntryKind {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
        EntryKind::Symlink(target)
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File { executable: meta.permissions().mode() & 0o111 != 0 }
    } else {
        EntryKind::Other
    }
}

impl FilesDir for DiskFilesDir {
    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let path = self.full(rel);
        fs::read(&path).map_err(|e| os_error("open", &path, &e))
    }

    fn kind(&self, rel: &str) -> Result<EntryKind, String> {
        let path = self.full(rel);
        let meta = fs::metadata(&path).map_err(|e| os_error("stat", &path, &e))?;
        Ok(kind_of(&meta, &path))
    }

    fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String> {
        let mut out = Vec::new();
        walk_into(&self.full(rel), "", &mut out)?;
        Ok(out)
    }
}

fn walk_into(path: &Path, rel: &str, out: &mut Vec<WalkEntry>) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| os_error("lstat", path, &e))?;
    let kind = kind_of(&meta, path);
    let is_dir = kind == EntryKind::Dir;
    out.push(WalkEntry { rel: rel.to_string(), kind });
    if !is_dir {
        return Ok(());
    }
    let mut names: Vec<String> = fs::read_dir(path)
        .map_err(|e| os_error("open", path, &e))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| os_error("readdirent", path, &e))?;
    names.sort();
    for name in names {
        let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        walk_into(&path.join(&name), &child_rel, out)?;
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
    fn missing_files_read_like_go_errors() {
        let files = DiskFilesDir::new("files");
        assert_eq!(files.read("nope.txt").unwrap_err(), "open files/nope.txt: no such file or directory");
    }
}
