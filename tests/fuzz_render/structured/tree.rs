//! The structure-aware generator's document model: a tree of maps, lists and raw scalar text,
//! addressed by the same paths as the renderer's diagnostics.

use core_ops::model::path::{Path, Seg};

/// A node of a generated document; scalars hold raw YAML text, written as is.
#[derive(Debug, Clone)]
pub enum Tree {
    Scalar(String),
    /// A `|` block scalar.
    Literal(String),
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
}

/// A scalar of raw YAML text.
pub fn scalar(text: impl Into<String>) -> Tree {
    Tree::Scalar(text.into())
}

/// A map, in the order given.
pub fn map(entries: Vec<(&str, Tree)>) -> Tree {
    Tree::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Tree {
    /// The node at `path`, if the tree has one.
    pub fn get(&self, path: &Path) -> Option<&Tree> {
        path.segs().iter().try_fold(self, |node, seg| match (seg, node) {
            (Seg::Key(k), Tree::Map(entries)) => entries.iter().find(|(key, _)| **key == **k).map(|(_, v)| v),
            (Seg::Index(i), Tree::Seq(items)) => items.get(*i),
            _ => None,
        })
    }

    pub fn get_mut(&mut self, path: &Path) -> Option<&mut Tree> {
        path.segs().iter().try_fold(self, |node, seg| match (seg, node) {
            (Seg::Key(k), Tree::Map(entries)) => entries.iter_mut().find(|(key, _)| **key == **k).map(|(_, v)| v),
            (Seg::Index(i), Tree::Seq(items)) => items.get_mut(*i),
            _ => None,
        })
    }

    /// The raw text of a scalar or block scalar.
    pub fn text(&self) -> Option<&str> {
        match self {
            Tree::Scalar(t) | Tree::Literal(t) => Some(t),
            _ => None,
        }
    }

    /// Sets `key` in the map at `path` (replacing or appending).
    pub fn set(&mut self, path: &Path, key: &str, value: Tree) {
        let Some(Tree::Map(entries)) = self.get_mut(path) else { panic!("no map at {path}") };
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    pub fn remove(&mut self, path: &Path, key: &str) {
        if let Some(Tree::Map(entries)) = self.get_mut(path) {
            entries.retain(|(k, _)| k != key);
        }
    }

    /// Every node's path, parents before children.
    pub fn paths(&self, at: &Path, out: &mut Vec<Path>) {
        out.push(at.clone());
        match self {
            Tree::Map(entries) => entries.iter().for_each(|(k, v)| v.paths(&at.key(k), out)),
            Tree::Seq(items) => items.iter().enumerate().for_each(|(i, v)| v.paths(&at.index(i), out)),
            _ => {}
        }
    }
}
