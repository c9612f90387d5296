//! The source repository as an in-memory tree of files, so the layout rules stay pure. The
//! host layer fills it from a directory or a git commit.

use std::collections::BTreeMap;

use crate::model::butane::files::{EntryKind, FilesDir, WalkEntry, resolve_local};

/// One file of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Any x bit was set.
    pub executable: bool,
}

/// Repository-relative paths (`/`-separated) to files. Directories are implied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTree {
    files: BTreeMap<String, SourceFile>,
}

impl SourceTree {
    /// Adds a file.
    pub fn insert(&mut self, path: &str, bytes: Vec<u8>, executable: bool) {
        self.files.insert(path.to_string(), SourceFile { bytes, executable });
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&SourceFile> {
        self.files.get(path)
    }

    /// Whether `path` is a directory (has files below it).
    pub fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.files.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// The names directly inside directory `dir` (`""` for the root), each once, sorted.
    pub fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let mut names: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k[prefix.len()..].split('/').next().unwrap_or("").to_string())
            .collect();
        names.dedup();
        names
    }

    /// Every file below `dir`, with its path relative to `dir`.
    pub fn files_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a SourceFile)> + 'a {
        let prefix = format!("{dir}/");
        let len = prefix.len();
        self.files
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(move |(k, f)| (&k[len..], f))
    }

    /// Every file with its repository path, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SourceFile)> {
        self.files.iter().map(|(k, f)| (k.as_str(), f))
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// A Butane files directory rooted at `dir`, which `local:` paths cannot leave.
    pub fn files_dir<'a>(&'a self, dir: &str) -> TreeFilesDir<'a> {
        TreeFilesDir { tree: self, base: dir.to_string() }
    }
}

/// A view of one folder of a [`SourceTree`] as Butane's files directory.
#[derive(Debug, Clone)]
pub struct TreeFilesDir<'a> {
    tree: &'a SourceTree,
    base: String,
}

impl TreeFilesDir<'_> {
    fn full(&self, rel: &str) -> String {
        match (self.base.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (_, true) => self.base.clone(),
            _ => format!("{}/{rel}", self.base),
        }
    }
}

impl FilesDir for TreeFilesDir<'_> {
    fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let rel = resolve_local(rel).map_err(|e| e.to_string())?;
        let full = self.full(&rel);
        self.tree.get(&full).map(|f| f.bytes.clone()).ok_or_else(|| format!("open {full}: no such file or directory"))
    }

    fn kind(&self, rel: &str) -> Result<EntryKind, String> {
        let full = self.full(rel);
        match self.tree.get(&full) {
            Some(f) => Ok(EntryKind::File { executable: f.executable }),
            None if rel.is_empty() || self.tree.is_dir(&full) => Ok(EntryKind::Dir),
            None => Err(format!("stat {full}: no such file or directory")),
        }
    }

    fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String> {
        let root = self.full(rel);
        let kind = self.kind(rel)?;
        let mut out = vec![WalkEntry { rel: String::new(), kind }];
        let mut seen_dirs = std::collections::BTreeSet::new();
        let mut entries: Vec<(String, EntryKind)> = Vec::new();
        for (path, file) in self.tree.files_under(&root) {
            let mut parent = path;
            while let Some((dir, _)) = parent.rsplit_once('/') {
                if seen_dirs.insert(dir.to_string()) {
                    entries.push((dir.to_string(), EntryKind::Dir));
                }
                parent = dir;
            }
            entries.push((path.to_string(), EntryKind::File { executable: file.executable }));
        }
        entries.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        out.extend(entries.into_iter().map(|(rel, kind)| WalkEntry { rel, kind }));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> SourceTree {
        let mut t = SourceTree::default();
        t.insert("hosts/a/host.yaml", b"host: a\n".to_vec(), false);
        t.insert("services/web/quadlet/web.container", b"[Container]\n".to_vec(), false);
        t.insert("services/web/config/site/index.html", b"hi".to_vec(), false);
        t.insert("services/webapp/service.yaml", b"".to_vec(), false);
        t
    }

    #[test]
    fn lists_children_once() {
        let t = tree();
        assert_eq!(t.children(""), ["hosts", "services"]);
        assert_eq!(t.children("services"), ["web", "webapp"]);
        assert_eq!(t.children("services/web"), ["config", "quadlet"]);
        assert!(t.is_dir("services/web/config"));
        assert!(!t.is_dir("services/we"));
    }

    #[test]
    fn files_dir_views_stay_inside_their_folder() {
        let t = tree();
        let view = t.files_dir("services/web");
        assert_eq!(view.read("config/site/index.html").unwrap(), b"hi");
        assert!(view.read("../webapp/service.yaml").is_err(), "no climbing out");
        let walked: Vec<String> = view.walk("config").unwrap().into_iter().map(|e| e.rel).collect();
        assert_eq!(walked, ["", "site", "site/index.html"]);
    }
}
