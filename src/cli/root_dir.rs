//! The root directory a command works on (`--root`, default `/`): converging `/` needs root, and
//! `plan` on a directory that does not exist plans against an empty root, saying so.

use std::path::Path;

use anyhow::Result;

use crate::cli::{EXIT_FAILURE, Exit};
use crate::host::root::Root;
use crate::model::path::printable;

/// Whether `path` is the system's `/` (the same directory, however it is spelled).
pub fn is_system_root(path: &Path) -> bool {
    let same = |a: &rustix::fs::Stat, b: &rustix::fs::Stat| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino);
    match (rustix::fs::stat(path), rustix::fs::stat("/")) {
        (Ok(a), Ok(b)) => same(&a, &b),
        _ => false,
    }
}

/// Refuses `command` (`apply`, `rollback`) on `/` without root privileges, before it reads or
/// locks anything, naming the two ways forward.
pub fn require_privileges(command: &str, root: &Path) -> Result<(), Exit> {
    if rustix::process::geteuid().is_root() || !is_system_root(root) {
        return Ok(());
    }
    Err(Exit::new(
        EXIT_FAILURE,
        format!(
            "error: {command} on / needs root: run it as root (e.g. with sudo), or give --root DIR --offline to converge another tree."
        ),
    ))
}

/// The root `plan` reads: `path`, or, when it does not exist, an empty directory standing in for
/// it (kept alive by the returned guard) with a note on standard error.
pub fn open_for_plan(path: &Path) -> Result<(Root, Option<tempfile::TempDir>)> {
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        eprintln!(
            "note: the root {} does not exist: planning against an empty root.",
            printable(&path.display().to_string())
        );
        let empty = tempfile::tempdir()?;
        let root = Root::open(empty.path())?;
        return Ok((root, Some(empty)));
    }
    Ok((Root::open(path)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_is_recognised_however_it_is_spelled() {
        assert!(is_system_root(Path::new("/")));
        assert!(is_system_root(Path::new("//.")));
        assert!(is_system_root(Path::new("/tmp/..")));
        assert!(!is_system_root(Path::new("/tmp")));
        assert!(!is_system_root(Path::new("/does/not/exist")));
    }
}
