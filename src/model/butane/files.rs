//! The files directory (`-d/--files-dir`) as the pure model sees it: a trait to read files
//! and walk trees, and Butane's lexical rules for `local:` paths.

/// What a tree walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; `executable` when any x bit is set.
    File {
        /// Any of the x bits is set.
        executable: bool,
    },
    /// A directory.
    Dir,
    /// A symbolic link and its raw target.
    Symlink(String),
    /// Anything else (FIFO, socket, device).
    Other,
}

/// One entry of a tree walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Path relative to the walked directory, `/`-separated; `""` for the directory itself.
    pub rel: String,
    /// What it is.
    pub kind: EntryKind,
}

/// Read access to the files directory. Paths are relative to it, already checked with
/// [`resolve_local`]. Errors are the operating system's message, e.g.
/// `open files/x: no such file or directory`.
pub trait FilesDir {
    /// The contents of a file (symlinks followed, as Butane does).
    fn read(&self, rel: &str) -> Result<Vec<u8>, String>;
    /// What `rel` is, following symlinks.
    fn kind(&self, rel: &str) -> Result<EntryKind, String>;
    /// Every entry below directory `rel`, itself first, in lexical depth-first order, without
    /// following symlinks.
    fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String>;
}

/// Why a `local:` path cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// No files directory was given.
    #[error("local file paths are relative to a files directory that must be specified with -d/--files-dir")]
    NoFilesDir,
    /// The path climbs out of the files directory.
    #[error("local file path traverses outside the files directory")]
    Escape,
}

/// Resolves a `local:` path lexically inside the files directory: a leading `/` is ignored,
/// `..` may not climb above the directory. Returns the cleaned relative path (`""` for the
/// directory itself).
pub fn resolve_local(local: &str) -> Result<String, LocalError> {
    let mut parts: Vec<&str> = Vec::new();
    for part in local.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(LocalError::Escape)?;
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_resolve_like_butane() {
        let cases = [
            ("x.txt", Ok("x.txt")),
            ("sub/../x.txt", Ok("x.txt")),
            ("/etc/passwd", Ok("etc/passwd")),
            (".", Ok("")),
            ("../etc/passwd", Err(LocalError::Escape)),
            ("a/../../b", Err(LocalError::Escape)),
        ];
        for (input, want) in cases {
            assert_eq!(resolve_local(input).as_deref().map_err(|e| *e), want, "case {input}");
        }
    }
}
