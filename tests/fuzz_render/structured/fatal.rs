//! Mutations that stop the pipeline before validation: broken YAML syntax, a duplicate key, a
//! variant or version without a translator, and values of the wrong type.

use core_ops::model::path::Path;

use super::mutant::{Anchor, Expect, Mutant, choose, last_key};
use super::tree::{Tree, map, scalar};
use crate::outcome::Class;
use crate::rng::Rng;

/// Values that break the YAML, with how many lines later the parser may notice: an unclosed
/// flow collection is only found unclosed at the next line (or at the end of the input).
const SYNTAX_BREAKERS: &[(&str, usize)] = &[
    ("x: y", 0),
    ("@at", 0),
    ("`tick", 0),
    ("%percent", 0),
    ("'a' b", 0),
    ("\"a\" b", 0),
    ("&", 0),
    ("[a, b", 1),
    ("{a: 1", 1),
];

/// Replaces a scalar value with one that breaks the YAML.
pub fn break_syntax(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| last_key(p).is_some() && matches!(m.tree.get(p), Some(Tree::Scalar(_))));
    let target = choose(rng, &targets)?;
    let (breaker, late) = SYNTAX_BREAKERS[rng.below(SYNTAX_BREAKERS.len())];
    m.replace(&target, scalar(breaker));
    Some(Expect::yaml("syntax", Anchor::Value(target), late))
}

/// Repeats a key right after itself, which YAML refuses.
pub fn duplicate_key(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| last_key(p).is_some());
    let target = choose(rng, &targets)?;
    let key = last_key(&target)?.to_string();
    let value = m.tree.get(&target)?.clone();
    let Some(Tree::Map(entries)) = m.tree.get_mut(&target.parent()) else { return None };
    let at = entries.iter().position(|(k, _)| *k == key)? + 1;
    entries.insert(at, (key, value));
    m.touch(&[&target]);
    Some(Expect::yaml("duplicate key", Anchor::Key(target), 0))
}

pub fn bad_version(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    replace_header(rng, m, "bad version", "version", &["1.99.0", "one", "\"\"", "[1, 6, 0]", "~"])
}

pub fn bad_variant(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    replace_header(rng, m, "bad variant", "variant", &["nope", "rhcos", "FCOS", "{}"])
}

/// Gives the root `key` (`variant` or `version`) one of `values`, none of which has a translator.
fn replace_header(rng: &mut Rng, m: &mut Mutant, name: &'static str, key: &str, values: &[&str]) -> Option<Expect> {
    let target = Path::parse(key);
    if !m.is_free(&target) {
        return None;
    }
    m.replace(&target, scalar(rng.pick(values)));
    Some(Expect::no_translator(name))
}

/// Values of another type than the node's: ints and bools written in the base are plain
/// digits and `true`/`false`, everything else scalar is a string.
pub fn wrong_type(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| !matches!(p.to_string().as_str(), "$.variant" | "$.version"));
    let target = choose(rng, &targets)?;
    let block_map = || map(vec![("a", scalar("b"))]);
    let block_seq = || Tree::Seq(vec![scalar("a"), scalar("b")]);
    let replacement = match m.tree.get(&target)? {
        Tree::Map(_) => [scalar("x"), scalar("[1, 2]"), scalar("42"), block_seq()][rng.below(4)].clone(),
        Tree::Seq(_) => [scalar("x"), scalar("{a: 1}"), scalar("7"), block_map()][rng.below(4)].clone(),
        Tree::Scalar(t) if t == "true" || t == "false" => {
            [scalar("maybe"), scalar("2"), scalar("[true]"), block_map()][rng.below(4)].clone()
        }
        Tree::Scalar(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
            [scalar("abc"), scalar("1.5"), scalar("true"), scalar("[1]"), block_seq()][rng.below(5)].clone()
        }
        Tree::Scalar(_) | Tree::Literal(_) => {
            [scalar("[a, b]"), scalar("{a: b}"), block_map(), block_seq()][rng.below(4)].clone()
        }
    };
    m.replace(&target, replacement);
    Some(Expect::at_value("wrong type", Class::Types, target))
}
