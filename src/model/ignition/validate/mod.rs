//! Ignition's semantic validation of a config (spec 3.x), reported at output (camelCase)
//! paths. Butane runs it on the config it generated and maps the paths back to the YAML.
//!
//! The checks and their texts are Ignition v2.26's: duplicates, node paths and modes,
//! resources and URLs, links, disks and partitions, filesystems, RAID, LUKS, systemd units.
//!
//! This module holds the entry point [`validate`], the `Validator` that collects the report,
//! and the walk over the config's sections; each section's checks live in a submodule:
//! - `dups` — duplicate entries, checked first (Butane's order).
//! - `ignition` — the `ignition` section (version, config merge, proxy) and every resource
//!   wherever it sits (sources, HTTP headers, hashes): [`resources`], [`check_hash`].
//! - `nodes` — storage files, directories and links: node paths, owners, modes, links in
//!   paths, hard link targets: [`check_path`].
//! - `devices` — storage disks and partitions, filesystems, RAID, LUKS and Clevis.
//! - `systemd` — units and drop-ins: extensions, contents, `[Install]` sections, and unit
//!   paths that conflict with storage nodes.
//!
//! `passwd` and `kernelArguments` have no checks of their own beyond duplicates.

use crate::model::butane::variant::Spec;
use crate::model::ignition::types::{Config, Storage};
use crate::model::path::Path;
use crate::model::report::Report;

mod devices;
mod dups;
#[cfg(test)]
mod fixtures;
mod ignition;
mod nodes;
mod systemd;

pub use ignition::{check_hash, resources};
pub use nodes::check_path;

/// `duplicate entry defined`.
pub const DUPLICATE: &str = "duplicate entry defined";
/// Where systemd unit files are written.
pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";

/// Validates a config as Ignition would for `spec`: duplicates first (Butane's order), then
/// every type's checks.
pub fn validate(cfg: &Config, spec: Spec) -> Report {
    let mut v = Validator { r: Report::default(), spec };
    v.dups(cfg);
    v.config(cfg);
    v.r
}

struct Validator {
    r: Report,
    spec: Spec,
}

fn root(keys: &[&str]) -> Path {
    keys.iter().fold(Path::root(), |p, k| p.key(k))
}

fn is_empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// Go's `path.Ext`.
fn ext(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rfind('.').map_or("", |i| &last[i..])
}

impl Validator {
    fn error(&mut self, at: Path, message: impl Into<String>) {
        self.r.error(at, message);
    }

    fn warn(&mut self, at: Path, message: impl Into<String>) {
        self.r.warning(at, message);
    }

    fn config(&mut self, cfg: &Config) {
        self.unit_path_conflicts(cfg);
        self.ignition(cfg);
        self.storage(&cfg.storage);
        self.systemd(&cfg.systemd);
    }

    fn storage(&mut self, s: &Storage) {
        let st = root(&["storage"]);
        self.links_and_parents(s, &st);
        self.filesystem_disk_overlaps(s, &st);
        for (i, d) in s.directories.iter().enumerate() {
            self.directory(d, &|| st.key("directories").index(i));
        }
        for (i, d) in s.disks.iter().enumerate() {
            self.disk(d, &st.key("disks").index(i));
        }
        for (i, f) in s.files.iter().enumerate() {
            self.file(f, &|| st.key("files").index(i));
        }
        for (i, f) in s.filesystems.iter().enumerate() {
            self.filesystem(f, &st.key("filesystems").index(i));
        }
        for (i, l) in s.links.iter().enumerate() {
            self.link(l, &|| st.key("links").index(i));
        }
        for (i, l) in s.luks.iter().enumerate() {
            self.luks(l, &st.key("luks").index(i));
        }
        for (i, r) in s.raid.iter().enumerate() {
            self.raid(r, &st.key("raid").index(i));
        }
    }
}
