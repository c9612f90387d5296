//! Files under the root that an operator names for CoreOps to trust: the tracking config, the
//! allowed signers, the access token and the CA bundle of the followed repository. Each decides
//! what runs as root or which commits are accepted, so each is used only when only root could
//! have written it: a regular file, reached without following a symlink anywhere on its path
//! under the root, owned by root (or by the user running core-ops on a root of their own), and
//! not writable by its group or others. Anything else is refused with the path and the fix.

use anyhow::{Result, bail};

use crate::host::root::Root;
use crate::model::plan::Observed;

/// The path of `path` under the root, as the operator finds it.
pub fn shown(root: &Root, path: &str) -> String {
    format!("{}{path}", root.path().display().to_string().trim_end_matches('/'))
}

/// The bytes of the trusted file `path` (absolute, under the root); `None` when it does not
/// exist. `what` names it in messages ("the tracking config").
pub fn read(root: &Root, path: &str, what: &str) -> Result<Option<Vec<u8>>> {
    let at = shown(root, path);
    match root.observe(path) {
        Observed::Missing => Ok(None),
        Observed::File { bytes: Some(bytes), mode, uid, .. } => {
            check_writers(&at, what, mode, uid)?;
            Ok(Some(bytes))
        }
        Observed::File { bytes: None, .. } => bail!("{what} {at} is larger than such a file can be; check it"),
        Observed::Unsafe(reason) => bail!("{what} {at} cannot be read safely: {reason}"),
        other => bail!("{what} {at} is {}, not a regular file; replace it with one", kind_name(&other)),
    }
}

/// The bytes of the trusted file `path`; an error naming it when it does not exist.
pub fn read_existing(root: &Root, path: &str, what: &str) -> Result<Vec<u8>> {
    match read(root, path, what)? {
        Some(bytes) => Ok(bytes),
        None => bail!("{what} {} does not exist", shown(root, path)),
    }
}

/// Refuses a file that someone besides root could have written.
fn check_writers(at: &str, what: &str, mode: u32, uid: u32) -> Result<()> {
    if uid != 0 && uid != rustix::process::geteuid().as_raw() {
        bail!(
            "{what} {at} is owned by uid {uid}, not by root: another user could have written what CoreOps would \
             trust, so nothing was done. Check it, then `chown root:root {at}`"
        );
    }
    if mode & 0o022 != 0 {
        bail!(
            "{what} {at} is writable by its group or others (mode {mode:04o}): anyone who can write it could change \
             what CoreOps trusts, so nothing was done. Check it, then `chmod go-w {at}`"
        );
    }
    Ok(())
}

fn kind_name(o: &Observed) -> &'static str {
    match o {
        Observed::Directory { .. } => "a directory",
        Observed::Symlink { .. } => "a symlink",
        _ => "a special file",
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn root_with(path: &str, text: &str, mode: u32) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, text).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(mode)).unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn a_file_only_root_can_write_is_read() {
        let (_dir, root) = root_with("/etc/core-ops/x", "key\n", 0o644);
        assert_eq!(read(&root, "/etc/core-ops/x", "the x").unwrap(), Some(b"key\n".to_vec()));
        assert_eq!(read(&root, "/etc/core-ops/missing", "the x").unwrap(), None);
        assert!(
            read_existing(&root, "/etc/core-ops/missing", "the x").unwrap_err().to_string().contains("does not exist")
        );
    }

    #[test]
    fn a_file_others_can_write_is_refused() {
        let (_dir, root) = root_with("/etc/core-ops/x", "key\n", 0o646);
        let err = read(&root, "/etc/core-ops/x", "the x").unwrap_err().to_string();
        assert!(err.contains("writable by its group or others (mode 0646)"), "{err}");
    }

    #[test]
    fn a_symlink_on_the_way_is_never_followed() {
        let (dir, root) = root_with("/elsewhere/x", "key\n", 0o644);
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("etc")).unwrap();
        assert!(read(&root, "/etc/x", "the x").is_err(), "a symlinked directory on the path is refused");
        std::os::unix::fs::symlink(dir.path().join("elsewhere/x"), dir.path().join("link")).unwrap();
        let err = read(&root, "/link", "the x").unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }
}
