//! Translation sets: which source (YAML) path each output (Ignition JSON) path came from.
//!
//! Most of a Butane config maps one to one (snake_case key → camelCase key, same indexes), so
//! only the places where the shape changes are recorded: `inline` → `source`, a tree walk →
//! `files.N`, a quadlet → `files.N`, and so on. An output path resolves through its longest
//! recorded prefix, and the rest of it is renamed key by key — unless that prefix was generated
//! from one source node (a tree, a quadlet, a `boot_device`): then every field below it comes
//! from that node itself, as in Butane, since the node has no such fields of its own.

use std::collections::HashMap;

use crate::model::path::{Path, Seg};

/// Where an output prefix comes from.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    /// The source prefix.
    from: Path,
    /// Whether everything below the output prefix comes from `from` itself (a generated node)
    /// rather than from the same steps below `from` (a moved or renamed one).
    whole: bool,
}

/// Recorded output-prefix → source pairs, with an index by output prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translations {
    pairs: Vec<(Path, Source)>,
    /// Output prefix → source of the last pair recorded for it.
    index: HashMap<Path, Source>,
}

impl Translations {
    /// Records that output `to` comes from source `from`, and everything below `to` from the
    /// same steps below `from`.
    pub fn add(&mut self, from: Path, to: Path) {
        self.record(to, Source { from, whole: false });
    }

    /// Records that output `to` and everything below it was generated from the source node
    /// `from` (Butane's "common source").
    pub fn add_whole(&mut self, from: Path, to: Path) {
        self.record(to, Source { from, whole: true });
    }

    fn record(&mut self, to: Path, source: Source) {
        self.index.insert(to.clone(), source.clone());
        self.pairs.push((to, source));
    }

    fn reindex(&mut self) {
        self.index = self.pairs.iter().cloned().collect();
    }

    /// The source path an output path came from: through its longest recorded prefix (among
    /// equals, the one recorded last), the rest renamed to snake_case, or nothing more when the
    /// prefix was generated whole.
    pub fn source_of(&self, out: &Path) -> Path {
        self.resolve(out).from
    }

    /// The source of an output path, and whether it lies in a node generated whole.
    fn resolve(&self, out: &Path) -> Source {
        for len in (0..=out.len()).rev() {
            match self.index.get(&out.prefix(len)) {
                Some(whole @ Source { whole: true, .. }) => return whole.clone(),
                Some(Source { from, whole: false }) => {
                    return Source { from: rename_tail(&out.rebase(len, from), from.len()), whole: false };
                }
                None => {}
            }
        }
        Source { from: rename_tail(out, 0), whole: false }
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
                    moved.push((list.index(*k), self.resolve(&list.index(j))));
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
        for pair in moved {
            self.pairs.insert(0, pair);
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
    fn a_node_generated_whole_is_the_source_of_every_field_below_it() {
        let mut t = Translations::default();
        t.add_whole(Path::parse("$.storage.trees.0"), Path::parse("$.storage.files.2"));
        t.add(Path::parse("$.storage.files.0.contents.inline"), Path::parse("$.storage.files.0.contents.source"));
        let cases = [
            ("$.storage.files.2", "$.storage.trees.0"),
            ("$.storage.files.2.contents.source", "$.storage.trees.0"),
            ("$.storage.files.2.mode", "$.storage.trees.0"),
            ("$.storage.files.0.contents.source", "$.storage.files.0.contents.inline"),
        ];
        for (out, src) in cases {
            assert_eq!(t.source_of(&Path::parse(out)).to_string(), src, "case {out}");
        }
        t.remap_list(&Path::parse("$.storage.files"), &[Some(0), Some(1), Some(5)]);
        assert_eq!(t.source_of(&Path::parse("$.storage.files.5.path")).to_string(), "$.storage.trees.0", "moved");
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
