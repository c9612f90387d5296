//! Storage files, directories and links: node paths (present, absolute, clean), owners set by
//! id or by name, modes and special bits, a file's `overwrite`, paths under a configured
//! link, and hard links (a target that is not a directory, no owner).

use super::{Validator, is_empty};
use crate::model::ignition::types::{Directory, File, Link, NodeGroup, NodeUser, Storage};
use crate::model::path::{Path, clean};

impl Validator {
    pub(super) fn links_and_parents(&mut self, s: &Storage, st: &Path) {
        let link_paths: Vec<&str> = s.links.iter().map(|l| l.path.as_str()).collect();
        let under_link = |p: &str| link_paths.iter().filter(|l| crate::model::path::is_below(p, l)).count();
        for (i, d) in s.directories.iter().enumerate() {
            for _ in 0..under_link(&d.path) {
                self.error(st.key("directories").index(i), "directory path includes link in config");
            }
        }
        for (i, f) in s.files.iter().enumerate() {
            for _ in 0..under_link(&f.path) {
                self.error(st.key("files").index(i), "file path includes link in config");
            }
        }
        for (i, l) in s.links.iter().enumerate() {
            let at = st.key("links").index(i);
            for _ in 0..under_link(&l.path) {
                self.error(at.clone(), "link path includes link in config");
            }
            let Some(target) = l.target.as_deref().filter(|t| !t.is_empty()) else {
                self.error(at.key("target"), "link target is required");
                continue;
            };
            if l.hard != Some(true) {
                continue;
            }
            let cleaned = clean(target);
            let resolved = if cleaned.starts_with('/') { cleaned } else { clean(&format!("{}/{target}", l.path)) };
            for _ in s.directories.iter().filter(|d| d.path == resolved) {
                self.error(at.clone(), "hard link target is a directory");
            }
            let owners = [
                (l.user.id.is_some(), at.key("user").key("id")),
                (l.user.name.is_some(), at.key("user").key("name")),
                (l.group.id.is_some(), at.key("group").key("id")),
                (l.group.name.is_some(), at.key("group").key("name")),
            ];
            for (set, path) in owners {
                if set {
                    self.warn(path, "user/group ignored for hard link");
                }
            }
        }
    }

    // A node's output path (`at`) is built only when a message needs it: a config may hold
    // thousands of nodes.

    fn node(&mut self, path: &str, user: &NodeUser, group: &NodeGroup, at: &dyn Fn() -> Path) {
        if let Err(msg) = check_path(path) {
            self.error(at().key("path"), msg);
        }
        if group.id.is_some() && !is_empty(&group.name) {
            self.error(at().key("group"), "cannot set both id and name");
        }
        if user.id.is_some() && !is_empty(&user.name) {
            self.error(at().key("user"), "cannot set both id and name");
        }
    }

    fn mode(&mut self, mode: Option<i64>, at: &dyn Fn() -> Path) {
        let Some(mode) = mode else { return };
        if mode & !0o7777 != 0 {
            self.error(at().key("mode"), "illegal file mode");
        }
        if mode & 0o7000 != 0 && !self.spec.honors_special_mode_bits() {
            self.warn(
                at().key("mode"),
                "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0",
            );
        }
    }

    pub(super) fn directory(&mut self, d: &Directory, at: &dyn Fn() -> Path) {
        self.node(&d.path, &d.user, &d.group, at);
        self.mode(d.mode, at);
    }

    pub(super) fn file(&mut self, f: &File, at: &dyn Fn() -> Path) {
        self.node(&f.path, &f.user, &f.group, at);
        self.mode(f.mode, at);
        if f.overwrite == Some(true) && f.contents.source.is_none() {
            self.error(at().key("overwrite"), "overwrite must be false if source is unspecified");
        }
    }

    pub(super) fn link(&mut self, l: &Link, at: &dyn Fn() -> Path) {
        self.node(&l.path, &l.user, &l.group, at);
    }
}

/// Ignition's node path rule: present, absolute and already clean.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        Err("path not specified")
    } else if !p.starts_with('/') {
        Err("path not absolute")
    } else if !crate::model::path::is_clean_absolute(p) {
        Err("path is not fully simplified")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ignition::validate::fixtures::*;

    #[test]
    fn node_paths() {
        let cases = [
            ("", Some("path not specified")),
            ("etc/x", Some("path not absolute")),
            ("/etc//x", Some("path is not fully simplified")),
            ("/etc/x/", Some("path is not fully simplified")),
            ("/etc/./x", Some("path is not fully simplified")),
            ("/etc/x", None),
        ];
        for (path, want) in cases {
            assert_eq!(check_path(path).err(), want, "case {path:?}");
        }
    }

    #[test]
    fn modes_and_special_bits_depend_on_spec() {
        let mut cfg = base(5);
        cfg.storage.files.push(File { path: "/a".into(), mode: Some(0o4755), ..File::default() });
        cfg.storage.files.push(File { path: "/b".into(), mode: Some(0o10000), ..File::default() });
        let got = messages(&cfg, 5);
        assert!(got.contains(&"$.storage.files.0.mode setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0".to_string()), "{got:?}");
        assert!(got.contains(&"$.storage.files.1.mode illegal file mode".to_string()), "{got:?}");
        cfg.ignition.version = spec(6).version();
        assert_eq!(messages(&cfg, 6), ["$.storage.files.1.mode illegal file mode"]);
    }

    #[test]
    fn hard_links_to_configured_directories() {
        let mut cfg = base(5);
        cfg.storage.directories.push(Directory { path: "/srv/dir".into(), ..Directory::default() });
        cfg.storage.links.push(Link {
            path: "/srv/l".into(),
            hard: Some(true),
            target: Some("/srv/dir".into()),
            ..Link::default()
        });
        cfg.storage.links.push(Link { path: "/srv/m".into(), ..Link::default() });
        assert_eq!(
            messages(&cfg, 5),
            ["$.storage.links.0 hard link target is a directory", "$.storage.links.1.target link target is required"]
        );
    }
}
