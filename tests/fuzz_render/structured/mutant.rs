//! The structure-aware generator's mutation framework: the document being mutated, what each
//! mutation expects the renderer to report and where, and the weighted table of mutations.

use core_ops::model::path::{Path, Seg};

use super::fatal::{bad_variant, bad_version, break_syntax, duplicate_key, wrong_type};
use super::invalid::{
    bad_hash, bad_url, broken_child_config, broken_unit_contents, dropin_without_suffix, duplicate_kernel_argument,
    duplicate_path, duplicate_user, empty_link_target, id_and_name, illegal_mode, overwrite_without_contents,
    relative_path, two_sources, unit_without_suffix, unknown_compression,
};
use super::tree::{Tree, scalar};
use super::warnings::{
    child_config_other_version, decimal_mode, enabled_without_install, special_mode_bits, unknown_key,
};
use crate::outcome::Class;
use crate::rng::Rng;

/// Where the diagnostic of a mutation must point, resolved once the document is written.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// The start of the value at this path.
    Value(Path),
    /// The key at this path.
    Key(Path),
    /// Nowhere (variant/version errors carry no position).
    Nowhere,
}

/// What one mutation must make the renderer report.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Which mutation it was.
    pub name: &'static str,
    pub class: Class,
    /// The path a diagnostic must carry (none for YAML errors).
    pub path: Option<Path>,
    pub anchor: Anchor,
    /// How many lines after the anchor a YAML error may be reported.
    pub late: usize,
}

impl Expect {
    /// A diagnostic at `path`, located at its value.
    pub fn at_value(name: &'static str, class: Class, path: Path) -> Self {
        Expect { name, class, path: Some(path.clone()), anchor: Anchor::Value(path), late: 0 }
    }

    /// A diagnostic at `path`, located at its key.
    pub fn at_key(name: &'static str, class: Class, path: Path) -> Self {
        Expect { name, class, path: Some(path.clone()), anchor: Anchor::Key(path), late: 0 }
    }

    /// A YAML error on the anchor's line or up to `late` lines after it.
    pub fn yaml(name: &'static str, anchor: Anchor, late: usize) -> Self {
        Expect { name, class: Class::Yaml, path: None, anchor, late }
    }

    /// No translator for the variant and version (such errors carry no position).
    pub fn no_translator(name: &'static str) -> Self {
        Expect { name, class: Class::Select, path: None, anchor: Anchor::Nowhere, late: 0 }
    }
}

/// The document being mutated and the paths that earlier mutations own.
pub struct Mutant {
    pub tree: Tree,
    pub touched: Vec<Path>,
}

impl Mutant {
    /// `tree`, not yet mutated.
    pub fn new(tree: Tree) -> Self {
        Mutant { tree, touched: Vec::new() }
    }

    /// Paths that no earlier mutation is inside of or contains, so mutations do not undo or
    /// rewrite each other.
    pub fn free_paths(&self) -> Vec<Path> {
        let mut all = Vec::new();
        self.tree.paths(&Path::root(), &mut all);
        all.retain(|p| !p.is_empty() && self.is_free(p));
        all
    }

    pub fn is_free(&self, p: &Path) -> bool {
        !self.touched.iter().any(|t| t.starts_with(p) || p.starts_with(t))
    }

    /// Free paths whose last key is one of `keys`, with a scalar value.
    pub fn free_scalars(&self, keys: &[&str]) -> Vec<Path> {
        let mut out = self.free_paths();
        out.retain(|p| {
            last_key(p).is_some_and(|k| keys.contains(&k)) && self.tree.get(p).and_then(Tree::text).is_some()
        });
        out
    }

    /// Free scalars named `key` in the items of the list at `list` (`$.systemd.units`).
    pub fn free_item_scalars(&self, key: &str, list: &str) -> Vec<Path> {
        let mut out = self.free_scalars(&[key]);
        out.retain(|p| p.parent().parent().to_string() == list);
        out
    }

    /// Free paths of the items of lists whose path ends in `list_suffix` (`$.storage.files.N`).
    pub fn free_items(&self, list_suffix: &str) -> Vec<Path> {
        let mut out = self.free_paths();
        out.retain(|p| matches!(p.last(), Some(Seg::Index(_))) && p.parent().to_string().ends_with(list_suffix));
        out
    }

    /// Marks `paths` as owned by the current mutation.
    pub fn touch(&mut self, paths: &[&Path]) {
        self.touched.extend(paths.iter().map(|p| (*p).clone()));
    }

    /// Replaces the node at `path` and marks it owned.
    pub fn replace(&mut self, path: &Path, value: Tree) {
        *self.tree.get_mut(path).expect("mutated path exists") = value;
        self.touch(&[path]);
    }

    /// Replaces a random one of `targets` with a random one of `values`, which must give a
    /// `class` diagnostic at that value.
    pub fn replace_one(
        &mut self,
        rng: &mut Rng,
        targets: &[Path],
        values: &[&str],
        name: &'static str,
        class: Class,
    ) -> Option<Expect> {
        let target = choose(rng, targets)?;
        self.replace(&target, scalar(rng.pick(values)));
        Some(Expect::at_value(name, class, target))
    }
}

/// The key a path ends in, unless it ends in a list index.
pub fn last_key(p: &Path) -> Option<&str> {
    match p.last() {
        Some(Seg::Key(k)) => Some(k),
        _ => None,
    }
}

/// A random one of `items`, or `None` when there are none.
pub fn choose<T: Clone>(rng: &mut Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.below(items.len())].clone())
}

/// A mutation: changes the document and says what must come of it, or `None` when the
/// document has no place for it.
pub type Mutator = fn(&mut Rng, &mut Mutant) -> Option<Expect>;

/// Every mutation with its weight (how often it is tried).
pub const MUTATORS: &[(&str, usize, Mutator)] = &[
    ("syntax", 10, break_syntax),
    ("duplicate key", 4, duplicate_key),
    ("bad version", 4, bad_version),
    ("bad variant", 2, bad_variant),
    ("wrong type", 25, wrong_type),
    ("relative path", 5, relative_path),
    ("duplicate path", 4, duplicate_path),
    ("illegal mode", 4, illegal_mode),
    ("unit suffix", 4, unit_without_suffix),
    ("dropin suffix", 2, dropin_without_suffix),
    ("unit contents", 3, broken_unit_contents),
    ("bad url", 4, bad_url),
    ("bad hash", 3, bad_hash),
    ("compression", 2, unknown_compression),
    ("two sources", 3, two_sources),
    ("id and name", 3, id_and_name),
    ("overwrite", 2, overwrite_without_contents),
    ("broken child", 3, broken_child_config),
    ("duplicate user", 2, duplicate_user),
    ("duplicate key arg", 2, duplicate_kernel_argument),
    ("empty target", 2, empty_link_target),
    ("unknown key", 8, unknown_key),
    ("decimal mode", 3, decimal_mode),
    ("special bits", 2, special_mode_bits),
    ("no install", 2, enabled_without_install),
    ("child version", 2, child_config_other_version),
];

/// Applies one weighted-random mutation that fits the document, if one is found in a hundred
/// tries (a document of only `variant` and `version` has room for two).
pub fn mutate_structure(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    (0..100).find_map(|_| weighted_mutator(rng)(rng, m))
}

fn weighted_mutator(rng: &mut Rng) -> Mutator {
    let total: usize = MUTATORS.iter().map(|(_, weight, _)| weight).sum();
    let mut roll = rng.below(total);
    for (_, weight, mutator) in MUTATORS {
        if roll < *weight {
            return *mutator;
        }
        roll -= weight;
    }
    unreachable!("roll below the total weight")
}
