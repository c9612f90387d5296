//! Mutations that only warn: the document still renders, with a warning at the mutation.

use core_ops::model::path::Path;

use super::mutant::{Expect, Mutant, choose};
use super::tree::{Tree, scalar};
use crate::outcome::Class;
use crate::rng::Rng;

/// An unknown key in any map outside earlier mutations: a warning at the key.
pub fn unknown_key(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut maps = vec![Path::root()];
    maps.extend(m.free_paths());
    maps.retain(|p| matches!(m.tree.get(p), Some(Tree::Map(_))) && !m.touched.iter().any(|t| p.starts_with(t)));
    let target = choose(rng, &maps)?;
    let key = rng.pick(&["frobnicate", "pathh", "Mode", "contents_typo"]);
    if m.tree.get(&target.key(key)).is_some() {
        return None;
    }
    let Some(Tree::Map(entries)) = m.tree.get_mut(&target) else { return None };
    let at = rng.below(entries.len() + 1);
    entries.insert(at, (key.to_string(), scalar("1")));
    let path = target.key(key);
    m.touch(&[&path]);
    Some(Expect::at_key("unknown key", Class::Warned, path))
}

/// A mode written in decimal that reads as a typical one in octal: a warning.
pub fn decimal_mode(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["mode"]))?;
    let directory = target.to_string().contains(".directories.");
    let mode = if directory { "755" } else { rng.pick(&["644", "600", "444"]) };
    m.replace(&target, scalar(mode));
    Some(Expect::at_value("decimal mode", Class::Warned, target))
}

/// Setuid/setgid bits warn: Ignition specs before 3.6.0 (all of fcos 1.3–1.6) ignore them.
pub fn special_mode_bits(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["mode"]);
    targets.retain(|p| p.to_string().contains(".files."));
    m.replace_one(rng, &targets, &["04755", "02755"], "special bits", Class::Warned)
}

/// An enabled unit without an `[Install]` section: a warning at its contents.
pub fn enabled_without_install(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let contents = choose(rng, &m.free_item_scalars("contents", "$.systemd.units"))?;
    let unit = contents.parent();
    if !m.is_free(&unit.key("enabled")) {
        return None;
    }
    m.replace(&contents, Tree::Literal("[Service]\nExecStart=/usr/bin/true\n".to_string()));
    m.tree.set(&unit, "enabled", scalar("true"));
    m.touch(&[&unit.key("enabled")]);
    Some(Expect::at_value("no install", Class::Warned, contents))
}

/// A child config of another spec version is not validated, with a warning at its resource.
pub fn child_config_other_version(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_item_scalars("inline", "$.ignition.config.merge"))?;
    m.replace(&target, scalar("'{\"ignition\": {\"version\": \"3.0.0\"}}'"));
    let item = target.parent();
    Some(Expect { path: Some(item.key("version")), ..Expect::at_value("child version", Class::Warned, item) })
}
