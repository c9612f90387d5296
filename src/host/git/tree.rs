//! A commit's tree read into the model's [`SourceTree`], by the rules of a source directory
//! ([`source_dir`](crate::host::source_dir)): names the layout skips are never read (nor what is
//! below them), a symlink or a submodule is a located error, and blobs are read under the same
//! caps ([`input_file`](crate::host::input_file)): each checked from its object header before it
//! is inflated. What `.gitignore` says does not matter here: a commit holds what git tracks.

use gix::objs::tree::EntryKind;

use crate::host::fetch::with_causes;
use crate::host::input_file::Budget;
use crate::host::source_dir::{CANNOT_READ, SUBMODULE_REFUSED, SYMLINK_REFUSED};
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, is_ignored};

use super::Cache;
use super::commits::commit_id;

/// One entry of a commit's tree that is not a tree: a file, a symlink or a submodule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The repository path, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its object (a blob; for a submodule, the commit it pins).
    pub id: gix::ObjectId,
}

/// How deep a repository's folders may nest. The layout needs a handful of levels; a tree
/// deeper than this (git servers refuse 2,048) is refused rather than walked.
const MAX_DEPTH: usize = 64;

/// Visits every entry below `tree` that is not a tree, depth first in tree order, with its path
/// under `base` (`""` at the top). Names the layout skips are left out, with everything below
/// them. A tree that cannot be read, or that nests deeper than [`MAX_DEPTH`], stops the walk
/// with an issue located there.
pub fn walk(tree: &gix::Tree<'_>, base: &str, visit: &mut dyn FnMut(TreeEntry)) -> Result<(), SourceIssue> {
    if base.split('/').count() > MAX_DEPTH {
        return Err(SourceIssue::error(base, format!("folders nest deeper than {MAX_DEPTH} levels; flatten them")));
    }
    let located = |path: &str, e: &dyn std::error::Error| {
        SourceIssue::error(if path.is_empty() { "." } else { path }, format!("{CANNOT_READ}: {e}"))
    };
    for entry in tree.iter() {
        let entry = entry.map_err(|e| located(base, &e))?;
        let name = entry.filename().to_string();
        if is_ignored(&name) {
            continue;
        }
        let path = if base.is_empty() { name } else { format!("{base}/{name}") };
        match entry.mode().kind() {
            EntryKind::Tree => {
                let subtree = entry.object().map_err(|e| located(&path, &e))?.into_tree();
                walk(&subtree, &path, visit)?;
            }
            kind => visit(TreeEntry { path, kind, id: entry.object_id() }),
        }
    }
    Ok(())
}

impl Cache {
    /// The files of `commit`'s tree, read with the same rules as a source directory: every
    /// problem is returned, each located at its path (`.` for the commit itself).
    pub fn read_tree(&self, commit: &str) -> Result<SourceTree, Vec<SourceIssue>> {
        let as_issues = |e: super::GitError| vec![SourceIssue::error(".", format!("git: {e}"))];
        let repo = self.open_existing().map_err(as_issues)?;
        let id = commit_id(&repo, commit).map_err(as_issues)?;
        read_commit(&repo, id, &Budget::default())
    }
}

/// The files of commit `id`, spending `budget`.
pub(super) fn read_commit(
    repo: &gix::Repository,
    id: gix::ObjectId,
    budget: &Budget,
) -> Result<SourceTree, Vec<SourceIssue>> {
    let unreadable = |e: &dyn std::error::Error| {
        vec![SourceIssue::error(".", format!("git: reading the tree of commit {id}: {}", with_causes(e)))]
    };
    let root = repo.find_commit(id).map_err(|e| unreadable(&e))?.tree().map_err(|e| unreadable(&e))?;
    let mut tree = SourceTree::default();
    let mut issues = Vec::new();
    let walked = walk(&root, "", &mut |entry| match read_entry(repo, &entry, budget) {
        Ok((bytes, executable)) => tree.insert(&entry.path, bytes, executable),
        Err(message) => issues.push(SourceIssue::error(entry.path, message)),
    });
    issues.extend(walked.err());
    if issues.is_empty() { Ok(tree) } else { Err(issues) }
}

/// The bytes and executable bit of a file entry; a message for anything else.
fn read_entry(repo: &gix::Repository, entry: &TreeEntry, budget: &Budget) -> Result<(Vec<u8>, bool), String> {
    let executable = match entry.kind {
        EntryKind::Blob => false,
        EntryKind::BlobExecutable => true,
        EntryKind::Link => return Err(SYMLINK_REFUSED.into()),
        EntryKind::Commit => return Err(SUBMODULE_REFUSED.into()),
        EntryKind::Tree => return Err(format!("{CANNOT_READ}: a tree where a file was expected")),
    };
    let header = repo.find_header(entry.id).map_err(|e| format!("{CANNOT_READ}: {e}"))?;
    budget.admit(header.size()).map_err(|e| e.to_string())?;
    let mut blob = repo.find_blob(entry.id).map_err(|e| format!("{CANNOT_READ}: {e}"))?;
    Ok((blob.take_data(), executable))
}
