//! The allowed-signers file read from disk (`init --trust FILE`), for checking signed commits.
//!
//! Reading is the only effect here: the file is read as any input named by the operator
//! ([`input_file::read_named`]: a regular file, size-capped), and the parsing and the checks
//! are the model's ([`crate::model::signature`]), re-exported so that callers need one path.

use std::path::Path;

use crate::host::input_file;
use crate::model::path::printable;
pub use crate::model::signature::{AllowedSigners, SignatureError, Signer, verify_commit};

/// Reads and parses the allowed-signers file at `path`. Every error is a message starting with
/// the file's name (and the line, for a bad line).
pub fn read_allowed_signers(path: &Path) -> Result<AllowedSigners, Vec<String>> {
    let name = path.display().to_string();
    let name = printable(&name);
    let bytes =
        input_file::read_named(path).map_err(|e| vec![format!("{name}: cannot read the allowed-signers file: {e}")])?;
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
        let path = dir.path().join("allowed_signers");
        std::fs::write(&path, format!("a@b {KEY}\n")).unwrap();
        assert!(read_allowed_signers(&path).is_ok());
        std::fs::write(&path, "a@b ssh-ed25519\n").unwrap();
        let errors = read_allowed_signers(&path).unwrap_err();
        assert!(errors[0].starts_with(&format!("{}:1: ", path.display())), "{errors:?}");
    }

    #[test]
    fn unreadable_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let errors = read_allowed_signers(&missing).unwrap_err();
        assert!(errors[0].starts_with(&format!("{}: cannot read", missing.display())), "{errors:?}");
        let errors = read_allowed_signers(dir.path()).unwrap_err();
        assert!(errors[0].contains("not a regular file"), "{errors:?}");
        let binary = dir.path().join("binary");
        std::fs::write(&binary, b"a@b \xff\n").unwrap();
        let errors = read_allowed_signers(&binary).unwrap_err();
        assert!(errors[0].contains("not UTF-8"), "{errors:?}");
    }
}
