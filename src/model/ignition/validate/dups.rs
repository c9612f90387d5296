//! Duplicate entries: Ignition's "duplicate entry defined" over every keyed list, checked
//! before any other rule. Files, directories and links share one key space (their paths).

use std::collections::HashSet;

use super::{DUPLICATE, Validator, resources, root};
use crate::model::ignition::types::{Config, Resource, Storage};
use crate::model::path::Path;

impl Validator {
    fn dup_keys<I: IntoIterator<Item = String>>(&mut self, seen: &mut HashSet<String>, keys: I, at: &Path) {
        for (i, key) in keys.into_iter().enumerate() {
            if !seen.insert(key) {
                self.error(at.index(i), DUPLICATE);
            }
        }
    }

    fn dup_list<I: IntoIterator<Item = String>>(&mut self, keys: I, at: &Path) {
        self.dup_keys(&mut HashSet::new(), keys, at);
    }

    pub(super) fn dups(&mut self, cfg: &Config) {
        let ign = root(&["ignition"]);
        self.dup_list(cfg.ignition.config.merge.iter().map(resource_key), &ign.key("config").key("merge"));
        self.dup_list(cfg.ignition.proxy.no_proxy.iter().cloned(), &ign.key("proxy").key("noProxy"));
        let cas = ign.key("security").key("tls").key("certificateAuthorities");
        self.dup_list(cfg.ignition.security.tls.certificate_authorities.iter().map(resource_key), &cas);
        let kargs = root(&["kernelArguments"]);
        let mut seen = HashSet::new();
        self.dup_keys(&mut seen, cfg.kernel_arguments.should_exist.iter().cloned(), &kargs.key("shouldExist"));
        self.dup_keys(&mut seen, cfg.kernel_arguments.should_not_exist.iter().cloned(), &kargs.key("shouldNotExist"));
        let passwd = root(&["passwd"]);
        self.dup_list(cfg.passwd.groups.iter().map(|g| g.name.clone()), &passwd.key("groups"));
        self.dup_list(cfg.passwd.users.iter().map(|u| u.name.clone()), &passwd.key("users"));
        for (i, u) in cfg.passwd.users.iter().enumerate() {
            let at = passwd.key("users").index(i);
            self.dup_list(u.groups.iter().cloned(), &at.key("groups"));
            self.dup_list(u.ssh_authorized_keys.iter().cloned(), &at.key("sshAuthorizedKeys"));
        }
        self.storage_dups(&cfg.storage);
        let units = root(&["systemd", "units"]);
        self.dup_list(cfg.systemd.units.iter().map(|u| u.name.clone()), &units);
        for (i, u) in cfg.systemd.units.iter().enumerate() {
            self.dup_list(u.dropins.iter().map(|d| d.name.clone()), &units.index(i).key("dropins"));
        }
        self.header_dups_everywhere(cfg);
    }

    fn storage_dups(&mut self, s: &Storage) {
        let st = root(&["storage"]);
        let mut nodes = HashSet::new();
        self.dup_keys(&mut nodes, s.directories.iter().map(|d| d.path.clone()), &st.key("directories"));
        self.dup_list(s.disks.iter().map(|d| d.device.clone()), &st.key("disks"));
        for (i, d) in s.disks.iter().enumerate() {
            let keys = d.partitions.iter().map(crate::model::ignition::merge::Keyed::merge_key);
            self.dup_list(keys, &st.key("disks").index(i).key("partitions"));
        }
        self.dup_keys(&mut nodes, s.files.iter().map(|f| f.path.clone()), &st.key("files"));
        self.dup_list(s.filesystems.iter().map(|f| f.device.clone()), &st.key("filesystems"));
        self.dup_keys(&mut nodes, s.links.iter().map(|l| l.path.clone()), &st.key("links"));
        self.dup_list(s.luks.iter().map(|l| l.name.clone()), &st.key("luks"));
        for (i, l) in s.luks.iter().enumerate() {
            let at = st.key("luks").index(i);
            self.dup_list(l.open_options.iter().cloned(), &at.key("openOptions"));
            self.dup_list(l.clevis.tang.iter().map(|t| t.url.clone()), &at.key("clevis").key("tang"));
        }
        self.dup_list(s.raid.iter().map(|r| r.name.clone()), &st.key("raid"));
        for (i, r) in s.raid.iter().enumerate() {
            self.dup_list(r.devices.iter().cloned(), &st.key("raid").index(i).key("devices"));
        }
    }

    fn header_dups_everywhere(&mut self, cfg: &Config) {
        for (at, res) in resources(cfg).into_iter().filter(|(_, res)| !res.http_headers.is_empty()) {
            self.dup_list(res.http_headers.iter().map(|h| h.name.clone()), &at.path().key("httpHeaders"));
        }
    }
}

fn resource_key(r: &Resource) -> String {
    r.source.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::model::ignition::types::{Directory, File};
    use crate::model::ignition::validate::fixtures::*;

    #[test]
    fn duplicates_share_the_node_key_space() {
        let mut cfg = base(5);
        cfg.storage.directories.push(Directory { path: "/a".into(), ..Directory::default() });
        cfg.storage.files.push(File { path: "/a".into(), ..File::default() });
        assert_eq!(messages(&cfg, 5), ["$.storage.files.0 duplicate entry defined"]);
    }
}
