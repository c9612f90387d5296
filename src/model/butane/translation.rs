//! Translation sets: which source (YAML) path each output (Ignition JSON) path came from.
//!
//! Most of a Butane config maps one to one (snake_case key → camelCase key, same indexes), so
//! only the places where the shape changes are recorded: `inline` → `source`, a tree walk →
//! `files.N`, a quadlet → `files.N`, and so on. An output path resolves through its longest
//! recorded prefix, and the rest of it is renamed key by key.

use std::collections::HashMap;

use crate::model::path::{Path, Seg};

/// Recorded output-prefix → source-prefix pairs, with an index by output prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translations {
    pairs: Vec<(Path, Path)>,
    /// Output prefix → source prefix of the last pair recorded for it.
    index: HashMap<Path, Path>,
}

impl Translations {
    /// Records that output `to` (and everything below it) comes from source `from`.
    pub fn add(&mut self, from: Path, to: Path) {
        self.index.insert(to.clone(), from.clone());
        self.pairs.push((to, from));
    }

    fn reindex(&mut self) {
        self.index = self.pairs.iter().map(|(to, from)| (to.clone(), from.clone())).collect();
    }

    /// The source path an output path came from: through its longest recorded prefix (among
    /// equals, the one recorded last), the rest renamed to snake_case.
    pub fn source_of(&self, out: &Path) -> Path {
        for len in (0..=out.len()).rev() {
            if let Some(from) = self.index.get(&out.prefix(len)) {
                return rename_tail(&out.rebase(len, from), from.len());
            }
        }
        rename_tail(out, 0)
    }

    /// Whether an explicit translation was recorded for exactly this output path.
    pub fn has_exact(&self, out: &Path) -> bool {
        self.index.contains_key(out)
    }

    /// Moves the entries of output list `list` to their places after a merge: item `j` goes to
    /// `placed[j]` (or is dropped). Items that had no recorded translation keep pointing at their
    /// old source path.
    pub fn remap_list(&mut self, list: &Path, placed: &[Option<usize>]) {
        let mut moved = Vec::new();
        for (j, slot) in placed.iter().enumerate() {
            if *slot != Some(j) {
                if let Some(k) = slot {
                    moved.push((self.source_of(&list.index(j)), list.index(*k)));
                }
            }
        }
        let depth = list.len();
        self.pairs.retain_mut(|(to, _)| {
            if !to.starts_with(list) || to.len() <= depth {
                return true;
            }
            let Seg::Index(j) = to.segs()[depth] else { return true };
            match placed.get(j) {
                Some(Some(k)) => {
                    *to = to.rebase(depth + 1, &list.index(*k));
                    true
                }
                Some(None) => false,
                None => true,
            }
        });
        for (from, to) in moved {
            self.pairs.insert(0, (to, from));
        }
        self.reindex();
    }

    /// Appends every pair of `other` (later pairs win ties).
    pub fn extend(&mut self, other: Translations) {
        self.pairs.extend(other.pairs);
        self.reindex();
    }
}

/// Renames the camelCase keys after the first `keep` steps to Butane's snake_case.
fn rename_tail(path: &Path, keep: usize) -> Path {
    let mut out = Path::root();
    for (i, seg) in path.segs().iter().enumerate() {
        out = match seg {
            Seg::Key(k) if i >= keep => out.key(&snake_case(k)),
            Seg::Key(k) => out.key(k),
            Seg::Index(n) => out.index(*n),
        };
    }
    out
}

/// `httpHeaders` → `http_headers`, `sizeMiB` → `size_mib`, `typeGuid` → `type_guid`.
pub fn snake_case(camel: &str) -> String {
    let camel = camel.replace("MiB", "Mib");
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_keys_to_snake_case() {
        let cases = [
            ("httpHeaders", "http_headers"),
            ("sizeMiB", "size_mib"),
            ("startMiB", "start_mib"),
            ("typeGuid", "type_guid"),
            ("sshAuthorizedKeys", "ssh_authorized_keys"),
            ("tpm2", "tpm2"),
        ];
        for (camel, snake) in cases {
            assert_eq!(snake_case(camel), snake, "case {camel}");
        }
    }

    #[test]
    fn resolves_through_the_longest_prefix() {
        let mut t = Translations::default();
        t.add(Path::parse("$.storage.trees.0"), Path::parse("$.storage.files.2"));
        t.add(Path::parse("$.storage.files.0.contents.inline"), Path::parse("$.storage.files.0.contents.source"));
        let cases = [
            ("$.storage.files.2.contents.source", "$.storage.trees.0.contents.source"),
            ("$.storage.files.0.contents.source", "$.storage.files.0.contents.inline"),
            ("$.storage.files.0.contents.httpHeaders", "$.storage.files.0.contents.http_headers"),
            ("$.storage.disks.0.partitions.1.sizeMiB", "$.storage.disks.0.partitions.1.size_mib"),
        ];
        for (out, src) in cases {
            assert_eq!(t.source_of(&Path::parse(out)).to_string(), src, "case {out}");
        }
    }

    #[test]
    fn remap_moves_items_and_keeps_their_sources() {
        let mut t = Translations::default();
        t.add(Path::parse("$.storage.trees.0"), Path::parse("$.storage.files.1"));
        t.remap_list(&Path::parse("$.storage.files"), &[Some(2), Some(3)]);
        assert_eq!(t.source_of(&Path::parse("$.storage.files.3.path")).to_string(), "$.storage.trees.0.path");
        assert_eq!(t.source_of(&Path::parse("$.storage.files.2.mode")).to_string(), "$.storage.files.0.mode");
    }
}
