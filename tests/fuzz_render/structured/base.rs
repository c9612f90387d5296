//! The structure-aware generator's starting point: a valid Butane config (fcos 1.3–1.6) built
//! as a tree, using most of the common sugar, for the mutations to break.

use super::tree::{Tree, map, scalar};
use crate::rng::Rng;

/// A unit that can be enabled: it has an `[Install]` section.
const UNIT_TEXT: &str =
    "[Unit]\nDescription=generated\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n";

/// A valid Butane config (fcos 1.3–1.6) using most of the common sugar.
pub fn butane_document(rng: &mut Rng) -> Tree {
    let minor = 3 + rng.below(4);
    let mut root = vec![("variant", scalar("fcos")), ("version", scalar(format!("1.{minor}.0")))];
    if rng.chance(50) {
        root.push(("ignition", ignition_section(rng, minor)));
    }
    if rng.chance(85) {
        root.push(("storage", storage_section(rng)));
    }
    if rng.chance(70) {
        root.push(("systemd", systemd_section(rng)));
    }
    if rng.chance(50) {
        root.push(("passwd", passwd_section(rng)));
    }
    if minor >= 4 && rng.chance(40) {
        root.push(("kernel_arguments", map(vec![("should_exist", Tree::Seq(vec![scalar("quiet")]))])));
    }
    map(root)
}

/// A well-formed random `sha512-` verification hash.
fn sha512(rng: &mut Rng) -> String {
    let hex: String = (0..128).map(|_| char::from(b"0123456789abcdef"[rng.below(16)])).collect();
    format!("sha512-{hex}")
}

fn ignition_section(rng: &mut Rng, minor: usize) -> Tree {
    let merge = (0..=rng.below(2))
        .map(|i| {
            if i == 0 && rng.chance(60) {
                let child = format!("'{{\"ignition\": {{\"version\": \"3.{}.0\"}}}}'", minor - 1);
                map(vec![("inline", scalar(child))])
            } else {
                let mut entries = vec![("source", scalar(format!("https://example.com/merge-{i}.ign")))];
                if rng.chance(40) {
                    entries.push(("verification", map(vec![("hash", scalar(sha512(rng)))])));
                }
                map(entries)
            }
        })
        .collect();
    map(vec![("config", map(vec![("merge", Tree::Seq(merge))]))])
}

fn storage_section(rng: &mut Rng) -> Tree {
    let directories: Vec<Tree> = (0..rng.below(3))
        .map(|i| {
            let mut d = vec![("path", scalar(format!("/etc/gen/dir-{i}")))];
            if rng.chance(50) {
                d.push(("mode", scalar("0755")));
            }
            map(d)
        })
        .collect();
    let files: Vec<Tree> = (0..=rng.below(3)).map(|i| file_entry(rng, i)).collect();
    let links: Vec<Tree> = (0..rng.below(3))
        .map(|i| {
            let mut l = vec![("path", scalar(format!("/etc/gen/link-{i}"))), ("target", scalar("/etc/gen/file-0"))];
            if rng.chance(30) {
                l.push(("hard", scalar(if rng.chance(50) { "true" } else { "false" })));
            }
            map(l)
        })
        .collect();
    let mut storage = Vec::new();
    for (key, list) in [("directories", directories), ("files", files), ("links", links)] {
        if !list.is_empty() {
            storage.push((key, Tree::Seq(list)));
        }
    }
    map(storage)
}

fn file_entry(rng: &mut Rng, i: usize) -> Tree {
    let dir = if rng.chance(70) { "/etc/gen" } else { "/var/lib/gen" };
    let mut f = vec![("path", scalar(format!("{dir}/file-{i}")))];
    if rng.chance(70) {
        f.push(("mode", scalar(rng.pick(&["0644", "0600", "0640", "0444", "0755"]))));
    }
    let contents = rng.chance(80).then(|| file_contents(rng, i));
    if rng.chance(30) {
        f.push(("overwrite", scalar(if contents.is_some() { "true" } else { "false" })));
    }
    if let Some(contents) = contents {
        f.push(("contents", contents));
    }
    for key in ["user", "group"] {
        if rng.chance(30) {
            let owner = if rng.chance(50) { ("name", scalar("core")) } else { ("id", scalar("1000")) };
            f.push((key, map(vec![owner])));
        }
    }
    if rng.chance(15) {
        f.push(("append", Tree::Seq(vec![map(vec![("inline", scalar("more"))])])));
    }
    map(f)
}

fn file_contents(rng: &mut Rng, i: usize) -> Tree {
    match rng.below(4) {
        0 => map(vec![("inline", scalar(format!("hello-{i}")))]),
        1 => map(vec![("inline", Tree::Literal(format!("line one {i}\nline two\n")))]),
        2 => map(vec![("source", scalar(format!("data:,hello%20{i}")))]),
        _ => {
            let mut c = vec![("source", scalar(format!("https://example.com/file-{i}")))];
            if rng.chance(30) {
                c.push(("compression", scalar("gzip")));
            }
            if rng.chance(50) {
                c.push(("verification", map(vec![("hash", scalar(sha512(rng)))])));
            }
            map(c)
        }
    }
}

fn systemd_section(rng: &mut Rng) -> Tree {
    let units = (0..=rng.below(3))
        .map(|i| {
            let suffix = rng.pick(&["service", "timer", "target"]);
            let mut u = vec![("name", scalar(format!("gen-{i}.{suffix}")))];
            if rng.chance(50) {
                u.push(("enabled", scalar(if rng.chance(50) { "true" } else { "false" })));
            }
            if rng.chance(70) {
                u.push(("contents", Tree::Literal(UNIT_TEXT.to_string())));
            }
            if rng.chance(30) {
                let dropins = (0..=rng.below(2))
                    .map(|j| {
                        map(vec![
                            ("name", scalar(format!("{}-gen.conf", 10 + j))),
                            ("contents", Tree::Literal(format!("[Service]\nEnvironment=GEN={j}\n"))),
                        ])
                    })
                    .collect();
                u.push(("dropins", Tree::Seq(dropins)));
            }
            map(u)
        })
        .collect();
    map(vec![("units", Tree::Seq(units))])
}

fn passwd_section(rng: &mut Rng) -> Tree {
    let users = (0..=rng.below(2))
        .map(|i| {
            let mut u = vec![("name", scalar(format!("gen{i}")))];
            if rng.chance(70) {
                let keys =
                    (0..=rng.below(2)).map(|j| scalar(format!("ssh-ed25519 AAAAC3Nza{i}{j} gen@host"))).collect();
                u.push(("ssh_authorized_keys", Tree::Seq(keys)));
            }
            if rng.chance(40) {
                u.push(("uid", scalar(format!("{}", 1001 + i))));
            }
            if rng.chance(30) {
                u.push(("groups", Tree::Seq(vec![scalar("wheel")])));
            }
            map(u)
        })
        .collect();
    map(vec![("users", Tree::Seq(users))])
}
