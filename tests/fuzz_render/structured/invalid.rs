//! Mutations that fail validation: Butane's checks of the source, the translation, and
//! Ignition's checks of the generated config, each reported at the value that caused it.

use core_ops::model::path::Path;

use super::mutant::{Expect, Mutant, choose};
use super::tree::{Tree, map, scalar};
use crate::outcome::Class;
use crate::rng::Rng;

/// Free `path` values of storage entries.
fn storage_paths(m: &Mutant) -> Vec<Path> {
    let mut out = m.free_scalars(&["path"]);
    out.retain(|p| p.to_string().starts_with("$.storage."));
    out
}

pub fn relative_path(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let targets = storage_paths(m);
    m.replace_one(rng, &targets, &["etc/gen/relative", "../up", "relative"], "relative path", Class::Invalid)
}

/// Gives a later directory/file/link the path of an earlier one; Ignition reports the later
/// entry (directories, then files, then links share one namespace).
pub fn duplicate_path(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let order = |p: &Path| ["directories", "files", "links"].iter().position(|l| p.to_string().contains(l));
    let mut paths = storage_paths(m);
    paths.sort_by_key(|p| (order(p), p.to_string()));
    if paths.len() < 2 {
        return None;
    }
    let a = rng.below(paths.len() - 1);
    let b = a + 1 + rng.below(paths.len() - a - 1);
    let (first, later) = (paths[a].clone(), paths[b].clone());
    let copied = m.tree.get(&first)?.clone();
    m.replace(&later, copied);
    m.touch(&[&first]);
    Some(Expect::at_value("duplicate path", Class::Invalid, later.parent()))
}

pub fn illegal_mode(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let targets = m.free_scalars(&["mode"]);
    m.replace_one(rng, &targets, &["010000", "-1", "99999"], "illegal mode", Class::Invalid)
}

pub fn unit_without_suffix(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let targets = m.free_item_scalars("name", "$.systemd.units");
    m.replace_one(rng, &targets, &["gen", "gen.txt", "gen.service.d"], "unit suffix", Class::Invalid)
}

pub fn dropin_without_suffix(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["name"]);
    targets.retain(|p| p.to_string().contains(".dropins."));
    m.replace_one(rng, &targets, &["10-gen", "10-gen.service"], "dropin suffix", Class::Invalid)
}

pub fn broken_unit_contents(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["contents"]);
    targets.retain(|p| p.to_string().starts_with("$.systemd."));
    let target = choose(rng, &targets)?;
    let broken = rng.pick(&["[Unit\nDescription=open section\n", "[Unit]\nNoEqualsSign\n", "[Unit] trailing\nA=b\n"]);
    m.replace(&target, Tree::Literal(broken.to_string()));
    Some(Expect::at_value("unit contents", Class::Invalid, target))
}

pub fn bad_url(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let targets = m.free_scalars(&["source"]);
    let urls = ["data:nocomma", "data:bogus/x,y", "data:;base64,@@@", "ftp://example.com/x", "\"%gh\""];
    m.replace_one(rng, &targets, &urls, "bad url", Class::Invalid)
}

pub fn bad_hash(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let targets = m.free_scalars(&["hash"]);
    m.replace_one(rng, &targets, &["sha512-abc", "md5-0123", "sha512"], "bad hash", Class::Invalid)
}

/// Free resources (file `contents`, `ignition.config.merge` items) written with `key`.
fn resources_with(m: &Mutant, key: &str) -> Vec<Path> {
    let is_resource = |p: &Path| {
        let s = p.to_string();
        (s.starts_with("$.storage.files.") && s.ends_with(".contents"))
            || p.parent().to_string() == "$.ignition.config.merge"
    };
    let mut out = m.free_paths();
    out.retain(|p| is_resource(p) && m.tree.get(&p.key(key)).is_some());
    out
}

pub fn unknown_compression(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = resources_with(m, "source");
    targets.retain(|p| p.to_string().starts_with("$.storage."));
    let target = choose(rng, &targets)?;
    m.tree.set(&target, "compression", scalar(rng.pick(&["lzma", "zstd", "GZIP"])));
    let at = target.key("compression");
    m.touch(&[&target]);
    Some(Expect::at_value("compression", Class::Invalid, at))
}

/// A resource with both `inline` and `source`; Butane blames the last of local/inline/source.
pub fn two_sources(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let (has, add, value) = if rng.chance(50) {
        ("source", "inline", scalar("extra"))
    } else {
        ("inline", "source", scalar("https://example.com/extra"))
    };
    let target = choose(rng, &resources_with(m, has))?;
    m.tree.set(&target, add, value);
    m.touch(&[&target]);
    Some(Expect::at_value("two sources", Class::Invalid, target.key("source")))
}

pub fn id_and_name(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let item = choose(rng, &[m.free_items(".storage.files"), m.free_items(".storage.directories")].concat())?;
    let key = rng.pick(&["user", "group"]);
    m.tree.set(&item, key, map(vec![("name", scalar("core")), ("id", scalar("1000"))]));
    let at = item.key(key);
    m.touch(&[&at]);
    Some(Expect::at_value("id and name", Class::Invalid, at))
}

pub fn overwrite_without_contents(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let item = choose(rng, &m.free_items(".storage.files"))?;
    m.tree.remove(&item, "contents");
    m.tree.set(&item, "overwrite", scalar("true"));
    let at = item.key("overwrite");
    m.touch(&[&at, &item.key("contents")]);
    Some(Expect::at_value("overwrite", Class::Invalid, at))
}

/// A merged child config with a value of the wrong type, that is not a JSON object (Butane
/// rejects it before looking for its version), or that is not JSON.
pub fn broken_child_config(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_item_scalars("inline", "$.ignition.config.merge"))?;
    let child = match (m.tree.get(&target).and_then(Tree::text), rng.below(3)) {
        (Some(valid), 0) => valid.replace("}}", "}, \"storage\": {\"files\": 1}}"),
        (_, 1) => "'[1]'".to_string(),
        _ => "'{\"ignition\": '".to_string(),
    };
    m.replace(&target, scalar(child));
    Some(Expect::at_value("broken child", Class::Invalid, target))
}

/// Gives a later user the name of an earlier one (the later is the duplicate).
pub fn duplicate_user(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let names = m.free_item_scalars("name", "$.passwd.users");
    if names.len() < 2 {
        return None;
    }
    let b = 1 + rng.below(names.len() - 1);
    let copied = m.tree.get(&names[0])?.clone();
    m.replace(&names[b], copied);
    m.touch(&[&names[0]]);
    Some(Expect::at_value("duplicate user", Class::Invalid, names[b].parent()))
}

/// A kernel argument both required and forbidden: the forbidden entry is the duplicate.
pub fn duplicate_kernel_argument(_: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let args = Path::parse("kernel_arguments");
    if !m.is_free(&args) || !matches!(m.tree.get(&args), Some(Tree::Map(_))) {
        return None;
    }
    m.tree.set(&args, "should_not_exist", Tree::Seq(vec![scalar("quiet")]));
    m.touch(&[&args]);
    Some(Expect::at_value("duplicate key arg", Class::Invalid, Path::parse("kernel_arguments.should_not_exist.0")))
}

pub fn empty_link_target(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["target"]))?;
    m.replace(&target, scalar("\"\""));
    Some(Expect::at_value("empty target", Class::Invalid, target))
}
