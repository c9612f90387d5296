//! The allowed-signers file under the root (`init --trust FILE`), for checking signed commits.
//!
//! Reading is the only effect here: the file decides which commits are applied, so it is read as
//! [`trusted_file`] reads what CoreOps trusts (no symlink followed, only root could have written
//! it). The parsing and the checks are the model's ([`crate::model::signature`]), re-exported so
//! that callers need one path.

use crate::host::root::Root;
use crate::host::trusted_file;
pub use crate::model::signature::{AllowedSigners, SignatureError, Signer, verify_commit};

/// Reads and parses the allowed-signers file at `path` (absolute, under the root). Every error
/// is a message naming the file (and the line, for a bad line).
pub fn read_allowed_signers(root: &Root, path: &str) -> Result<AllowedSigners, Vec<String>> {
    let what = "the allowed-signers file";
    let bytes = trusted_file::read_existing(root, path, what).map_err(|e| vec![format!("{e:#}")])?;
    let name = trusted_file::shown(root, path);
    let text = String::from_utf8(bytes).map_err(|_| {
        vec![format!("{name}: not UTF-8 text; an allowed-signers file lists OpenSSH public keys, one per line")]
    })?;
    AllowedSigners::parse(&name, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 public key (made with `ssh-keygen -t ed25519`).
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4ALkbHygCFM0h3s5RM+puZPriyAAyrMCjkex5rq/ZZ";

    #[test]
    fn a_file_is_read_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let path = dir.path().join("allowed_signers");
        std::fs::write(&path, format!("a@b {KEY}\n")).unwrap();
        assert!(read_allowed_signers(&root, "/allowed_signers").is_ok());
        std::fs::write(&path, "a@b ssh-ed25519\n").unwrap();
        let errors = read_allowed_signers(&root, "/allowed_signers").unwrap_err();
        assert!(errors[0].starts_with(&format!("{}:1: ", path.display())), "{errors:?}");
    }

    #[test]
    fn unreadable_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let errors = read_allowed_signers(&root, "/missing").unwrap_err();
        assert!(errors[0].contains("/missing does not exist"), "{errors:?}");
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        let errors = read_allowed_signers(&root, "/dir").unwrap_err();
        assert!(errors[0].contains("not a regular file"), "{errors:?}");
        std::fs::write(dir.path().join("binary"), b"a@b \xff\n").unwrap();
        let errors = read_allowed_signers(&root, "/binary").unwrap_err();
        assert!(errors[0].contains("not UTF-8"), "{errors:?}");
    }
}
