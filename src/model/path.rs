//! JSON-style paths (`$.storage.files.0.path`) that name a place in a config.
//!
//! Paths are how every diagnostic, translation and origin points back at the source. They are
//! plain values: building one never touches the document it refers to.

use std::fmt;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root, rendered as `$.a.0.b`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The root path `$`.
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// Builds a path from dotted text without the `$`; numeric parts become indexes.
    pub fn parse(dotted: &str) -> Self {
        let text = dotted.trim_start_matches('$').trim_start_matches('.');
        if text.is_empty() {
            return Path::root();
        }
        Path(
            text.split('.')
                .map(|part| match part.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(part.to_string()),
                })
                .collect(),
        )
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Path(segs)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    /// The steps of the path.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This path with its first `n` steps replaced by `new_prefix`.
    pub fn rebase(&self, n: usize, new_prefix: &Path) -> Self {
        let mut segs = new_prefix.0.clone();
        segs.extend_from_slice(&self.0[n..]);
        Path(segs)
    }

    /// The first `len` steps.
    pub fn prefix(&self, len: usize) -> Self {
        Path(self.0[..len.min(self.0.len())].to_vec())
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent path (the root is its own parent).
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Path(segs)
    }

    /// The last step, if any.
    pub fn last(&self) -> Option<&Seg> {
        self.0.last()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, ".{i}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_round_trip() {
        for text in ["$", "$.storage.files.0.path", "$.systemd.units.12.dropins.0"] {
            assert_eq!(Path::parse(text).to_string(), text, "case {text}");
        }
    }

    #[test]
    fn rebase_replaces_prefix() {
        let p = Path::parse("$.storage.files.3.contents.source");
        let q = p.rebase(3, &Path::parse("$.storage.trees.0"));
        assert_eq!(q.to_string(), "$.storage.trees.0.contents.source");
        assert!(p.starts_with(&Path::parse("$.storage.files")));
        assert!(!p.starts_with(&Path::parse("$.storage.links")));
    }
}
