//! Generator 4: structure-aware documents. A valid Butane config is built as a tree
//! ([`tree`], [`base`]), given targeted mutations whose outcome and position are known
//! ([`mutant`]: wrong types, invalid values, unknown keys, broken syntax, bad versions, from
//! [`fatal`], [`invalid`] and [`warnings`]), written out as YAML recording where every node
//! landed ([`layout`]), and its render judged against the mutations ([`check`]).

mod base;
mod check;
mod fatal;
mod invalid;
mod layout;
mod mutant;
mod tree;
mod warnings;

pub use check::{check_mutant, numbered};
pub use mutant::{Expect, MUTATORS};

use crate::rng::Rng;
use base::butane_document;
use layout::Layout;
use mutant::{Mutant, mutate_structure};

/// A valid document given zero to three mutations and written out, with what the mutations
/// expect.
pub fn mutated_document(rng: &mut Rng) -> (Layout, Vec<Expect>) {
    let mut m = Mutant::new(butane_document(rng));
    let count = mutation_count(rng);
    let expects = (0..count).filter_map(|_| mutate_structure(rng, &mut m)).collect();
    (Layout::of(&m.tree), expects)
}

/// Mostly one mutation (exactly predictable), some clean documents, some with several.
fn mutation_count(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..10 => 0,
        10..80 => 1,
        _ => 2 + rng.below(2),
    }
}
