//! Translation sets: which source (YAML) path each output (Ignition JSON) path came from.
//!
//! Most of a Butane config maps one to one (snake_case key → camelCase key, same indexes), so
//! only the places where the shape changes are recorded: `inline` → `source`, a tree walk →
//! `files.N`, a quadlet → `files.N`, and so on. An output path resolves through its longest
//! recorded prefix, and the rest of it is renamed key by key.

use crate::model::path::{Path, Seg};

/// Recorded output-prefix → source-prefix pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translations {
    pairs: Vec<(Path, Path)>,
}

impl Translations {
    /// Records that output `to` (and everything below it) comes from source `from`.
    pub fn add(&mut self, from: Path, to: Path) {
        self.pairs.push((to, from));
    }

    /// The source path an output path came from.
    pub fn source_of(&self, out: &Path) -> Path {
        let best = self
            .pairs
            .iter()
            .rev()
            .filter(|(to, _)| out.starts_with(to))
            .max_by_key(|(to, _)| to.len());
        match best {
            Some((to, from)) => rename_tail(&out.rebase(to.len(), from), from.len()),
            None => rename_tail(out, 0),
        }
    }

    /// Whether an explicit translation was recorded for exactly this output path.
    pub fn has_exact(&self, out: &Path) -> bool {
        self.pairs.iter().any(|(to, _)| to == out)
    }

    /// Shifts every recorded output path under `list` by `offset` indexes (used when generated
    /// entries are placed in front of the user's).
    pub fn shift(&mut self, list: &Path, offset: usize) {
        for (to, _) in &mut self.pairs {
            if to.starts_with(list) && to.len() > list.len() {
                if let Seg::Index(i) = to.segs()[list.len()] {
                    let tail = to.rebase(list.len() + 1, &Path::root());
                    let mut shifted = list.index(i + offset);
                    for seg in tail.segs() {
                        shifted = match seg {
                            Seg::Key(k) => shifted.key(k),
                            Seg::Index(n) => shifted.index(*n),
                        };
                    }
                    *to = shifted;
                }
            }
        }
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
    fn shift_moves_recorded_entries() {
        let mut t = Translations::default();
        t.add(Path::parse("$.storage.trees.0"), Path::parse("$.storage.files.1"));
        t.shift(&Path::parse("$.storage.files"), 2);
        assert_eq!(t.source_of(&Path::parse("$.storage.files.3.path")).to_string(), "$.storage.trees.0.path");
    }
}
