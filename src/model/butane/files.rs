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
    /// The contents of each of `rels`, in their order, as [`FilesDir::read`] gives them one by
    /// one; a files directory may read them at once.
    fn read_all(&self, rels: &[String]) -> Vec<Result<Vec<u8>, String>> {
        rels.iter().map(|rel| self.read(rel)).collect()
    }
}

/// A files directory held in memory: for tests, and for sources read from git objects.
#[derive(Debug, Clone, Default)]
pub struct MemFilesDir {
    entries: std::collections::BTreeMap<String, (EntryKind, Vec<u8>)>,
}

impl MemFilesDir {
    /// Adds a regular file (its parent directories are implied).
    pub fn file(mut self, rel: &str, bytes: &[u8], executable: bool) -> Self {
        self.add_parents(rel);
        self.entries.insert(rel.to_string(), (EntryKind::File { executable }, bytes.to_vec()));
        self
    }

    /// Adds a symbolic link.
    pub fn symlink(mut self, rel: &str, target: &str) -> Self {
        self.add_parents(rel);
        self.entries.insert(rel.to_string(), (EntryKind::Symlink(target.to_string()), Vec::new()));
        self
    }

    fn add_parents(&mut self, rel: &str) {
        let mut dir = rel;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            self.entries.entry(parent.to_string()).or_insert((EntryKind::Dir, Vec::new()));
            dir = parent;
        }
    }

    fn missing(rel: &str) -> String {
        format!("open {rel}: no such file or directory")
    }
}

impl FilesDir for MemFilesDir {
    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        match self.entries.get(rel) {
            Some((EntryKind::File { .. }, bytes)) => Ok(bytes.clone()),
            Some((EntryKind::Symlink(target), _)) => self.read(&resolve_local(target).map_err(|e| e.to_string())?),
            Some(_) => Err(format!("read {rel}: is a directory")),
            None => Err(Self::missing(rel)),
        }
    }

    fn kind(&self, rel: &str) -> Result<EntryKind, String> {
        if rel.is_empty() {
            return Ok(EntryKind::Dir);
        }
        self.entries.get(rel).map(|(k, _)| k.clone()).ok_or_else(|| Self::missing(rel))
    }

    fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String> {
        let root_kind = self.kind(rel)?;
        let prefix = if rel.is_empty() { String::new() } else { format!("{rel}/") };
        let mut out = vec![WalkEntry { rel: String::new(), kind: root_kind }];
        let mut below: Vec<(&String, &EntryKind)> =
            self.entries.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, (kind, _))| (k, kind)).collect();
        // Depth-first, names sorted per directory: compare path components, not whole strings.
        below.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        out.extend(
            below.into_iter().map(|(k, kind)| WalkEntry { rel: k[prefix.len()..].to_string(), kind: kind.clone() }),
        );
        Ok(out)
    }
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
