//! Generator 2: random Butane-shaped documents: nested maps and lists over Butane's keys,
//! mostly where Butane expects them, with plausible values and some raw tokens.

use crate::rng::Rng;
use crate::vocabulary::{KEYS, TOKENS, VALUES};

/// Butane's keys under each parent key (`""` is the root), so that random documents often
/// put a key where it belongs and get past the decoder.
const SCHEMA: &[(&str, &[&str])] = &[
    ("", &["ignition", "storage", "systemd", "passwd", "kernel_arguments", "boot_device"]),
    ("ignition", &["config"]),
    ("config", &["merge", "replace"]),
    ("merge", &["source", "inline", "verification"]),
    ("replace", &["source", "inline", "verification"]),
    ("storage", &["files", "directories", "links", "filesystems", "disks"]),
    ("files", &["path", "contents", "mode", "user", "group", "overwrite", "append"]),
    ("directories", &["path", "mode", "user", "group"]),
    ("links", &["path", "target", "hard", "user"]),
    ("contents", &["inline", "source", "compression", "verification"]),
    ("append", &["inline", "source"]),
    ("verification", &["hash"]),
    ("user", &["id", "name"]),
    ("group", &["id", "name"]),
    ("filesystems", &["device", "format", "path", "with_mount_unit", "label"]),
    ("disks", &["device", "partitions"]),
    ("partitions", &["number", "label", "size_mib"]),
    ("systemd", &["units"]),
    ("units", &["name", "enabled", "mask", "contents", "dropins"]),
    ("dropins", &["name", "contents"]),
    ("passwd", &["users"]),
    ("users", &["name", "ssh_authorized_keys"]),
    ("kernel_arguments", &["should_exist"]),
    ("boot_device", &["layout", "mirror"]),
    ("mirror", &["devices"]),
];

/// Keys whose value is a list.
const LIST_KEYS: &[&str] = &[
    "merge",
    "files",
    "directories",
    "links",
    "append",
    "filesystems",
    "disks",
    "partitions",
    "units",
    "dropins",
    "users",
    "ssh_authorized_keys",
    "should_exist",
    "devices",
];

/// A random Butane-shaped document: nested maps and lists, mostly over the keys Butane expects
/// where they are written, with plausible or raw-token values.
pub fn random_document(rng: &mut Rng) -> String {
    let mut out =
        format!("variant: fcos\nversion: {}\n", rng.pick(&["1.0.0", "1.4.0", "1.6.0", "1.7.0", "1.8.0-experimental"]));
    write_map(rng, &mut out, 0, 4, "");
    out
}

/// A value for a random document: mostly plausible scalars, sometimes raw tokens.
fn random_value(rng: &mut Rng) -> String {
    let token = if rng.chance(85) { rng.pick(VALUES) } else { rng.pick(TOKENS) };
    token.trim_matches('\n').to_string()
}

/// A child key of `parent`: usually one Butane has there, otherwise any of its keys.
fn random_key(rng: &mut Rng, parent: &str) -> &'static str {
    match SCHEMA.iter().find(|(p, _)| *p == parent) {
        Some((_, children)) if rng.chance(80) => rng.pick(children),
        _ => rng.pick(KEYS),
    }
}

fn write_map(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, parent: &str) {
    let mut written = Vec::new();
    for _ in 0..=rng.below(3) {
        let key = random_key(rng, parent);
        // A repeated key is a YAML error; the raw tokens already make enough of those.
        if written.contains(&key) {
            continue;
        }
        written.push(key);
        out.push_str(&format!("{}{key}:", " ".repeat(indent)));
        let is_list = LIST_KEYS.contains(&key);
        let is_parent = is_list || SCHEMA.iter().any(|(p, _)| *p == key);
        // Containers usually get their kind, leaves a scalar; sometimes the other way round.
        match (depth, rng.chance(if is_parent { 85 } else { 15 }), is_list) {
            (0, _, _) | (_, false, _) => out.push_str(&format!(" {}\n", random_value(rng))),
            (_, true, false) => {
                out.push('\n');
                write_map(rng, out, indent + 2, depth - 1, key);
            }
            (_, true, true) => {
                out.push('\n');
                write_list(rng, out, indent + 2, depth - 1, key);
            }
        }
    }
}

/// List items: small maps of the list key's children, or scalars for lists of strings.
fn write_list(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, key: &str) {
    let of_maps = SCHEMA.iter().any(|(p, _)| *p == key);
    for _ in 0..=rng.below(2) {
        if !of_maps || depth == 0 {
            out.push_str(&format!("{}- {}\n", " ".repeat(indent), random_value(rng)));
            continue;
        }
        let mut item = String::new();
        write_map(rng, &mut item, indent + 2, depth - 1, key);
        item.replace_range(indent..indent + 2, "- ");
        out.push_str(&item);
    }
}
