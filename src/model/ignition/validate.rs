//! Ignition's semantic validation of a config (spec 3.x), reported at output (camelCase)
//! paths. Butane runs it on the config it generated and maps the paths back to the YAML.
//!
//! The checks and their texts are Ignition v2.26's: duplicates, node paths and modes,
//! resources and URLs, links, disks and partitions, filesystems, RAID, LUKS, systemd units.

use std::collections::{HashMap, HashSet};

use crate::model::butane::variant::Spec;
use crate::model::ignition::types::{
    Clevis, Config, Directory, Disk, File, Filesystem, HttpHeader, Link, Luks, NodeGroup, NodeUser, Partition, Proxy,
    Raid, Resource, Storage, Systemd, Tang, Unit,
};
use crate::model::ignition::url::{self, UrlError};
use crate::model::path::{Path, clean};
use crate::model::report::Report;
use crate::model::unit;

/// `duplicate entry defined`.
pub const DUPLICATE: &str = "duplicate entry defined";
/// Where systemd unit files are written.
pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";
const UNIT_EXTENSIONS: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];
const FS_FORMATS: &[&str] = &["ext4", "btrfs", "xfs", "swap", "vfat", "none"];

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

    // ---- duplicates -------------------------------------------------------------------

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

    fn dups(&mut self, cfg: &Config) {
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
        for (at, res) in resources(cfg) {
            self.dup_list(res.http_headers.iter().map(|h| h.name.clone()), &at.key("httpHeaders"));
        }
    }

    // ---- semantics ----------------------------------------------------------------------

    fn config(&mut self, cfg: &Config) {
        self.unit_path_conflicts(cfg);
        self.ignition(cfg);
        self.storage(&cfg.storage);
        self.systemd(&cfg.systemd);
    }

    fn unit_path_conflicts(&mut self, cfg: &Config) {
        let mut paths = HashSet::new();
        for u in &cfg.systemd.units {
            if !is_empty(&u.contents) {
                paths.insert(format!("{SYSTEMD_UNIT_DIR}/{}", u.name));
            }
            for d in u.dropins.iter().filter(|d| !is_empty(&d.contents)) {
                paths.insert(format!("{SYSTEMD_UNIT_DIR}/{}.d/{}", u.name, d.name));
            }
        }
        let st = root(&["storage"]);
        let lists: [(&str, Vec<&str>); 3] = [
            ("files", cfg.storage.files.iter().map(|f| f.path.as_str()).collect()),
            ("directories", cfg.storage.directories.iter().map(|d| d.path.as_str()).collect()),
            ("links", cfg.storage.links.iter().map(|l| l.path.as_str()).collect()),
        ];
        for (list, node_paths) in lists {
            for (i, p) in node_paths.into_iter().enumerate() {
                if paths.contains(p) {
                    self.error(st.key(list).index(i).key("path"), "path conflicts with systemd unit or dropin");
                }
            }
        }
    }

    fn ignition(&mut self, cfg: &Config) {
        let ign = root(&["ignition"]);
        if cfg.ignition.version != self.spec.version() {
            let msg = if crate::model::ignition::spec::parse_version(&cfg.ignition.version).is_none()
                && semver::Version::parse(&cfg.ignition.version).is_err()
            {
                "invalid config version (couldn't parse)"
            } else {
                "unsupported config version"
            };
            self.error(ign.key("version"), msg);
        }
        for (i, r) in cfg.ignition.config.merge.iter().enumerate() {
            let at = ign.key("config").key("merge").index(i);
            match r.source.as_deref().filter(|s| !s.is_empty()) {
                None => self.error(at.clone(), "source is required"),
                Some(src) => {
                    if let Err(e) = url::validate(src) {
                        self.error(at.clone(), e.to_string());
                    }
                }
            }
        }
        self.proxy(&cfg.ignition.proxy, &ign.key("proxy"));
        for (at, res) in resources(cfg) {
            self.resource(res, &at);
        }
    }

    fn proxy(&mut self, proxy: &Proxy, at: &Path) {
        for (key, value, http_ok) in [("httpProxy", &proxy.http_proxy, true), ("httpsProxy", &proxy.https_proxy, false)]
        {
            let Some(value) = value else { continue };
            match url::parse(value) {
                None => self.error(at.key(key), UrlError::Unparsable.to_string()),
                Some(u) if u.scheme != "http" && u.scheme != "https" => {
                    self.error(at.key(key), "proxies must be http(s)")
                }
                Some(u) if u.scheme == "http" && !http_ok => {
                    self.warn(at.key(key), "insecure plaintext HTTP proxy specified for HTTPS resources")
                }
                Some(_) => {}
            }
        }
    }

    fn resource(&mut self, r: &Resource, at: &Path) {
        if r.compression.as_deref().is_some_and(|c| !c.is_empty() && c != "gzip") {
            self.error(at.key("compression"), "invalid compression method");
        }
        if r.verification.hash.is_some() && r.source.is_none() {
            self.error(at.key("verification").key("hash"), "source must be specified if verification is specified");
        }
        if let Some(src) = r.source.as_deref().filter(|s| !s.is_empty()) {
            if let Err(e) = url::validate(src) {
                self.error(at.key("source"), e.to_string());
            }
        }
        if !r.http_headers.is_empty() {
            let scheme = r.source.as_deref().filter(|s| !s.is_empty()).and_then(url::parse).map(|u| u.scheme);
            match scheme.as_deref() {
                None => self.error(at.key("httpHeaders"), UrlError::Unparsable.to_string()),
                Some("http" | "https") => {}
                Some(_) => self.error(at.key("httpHeaders"), "cannot use HTTP headers with this source scheme"),
            }
        }
        for (j, h) in r.http_headers.iter().enumerate() {
            self.header(h, &at.key("httpHeaders").index(j));
        }
        if let Some(hash) = &r.verification.hash {
            if let Err(msg) = check_hash(hash) {
                self.error(at.key("verification").key("hash"), msg);
            }
        }
    }

    fn header(&mut self, h: &HttpHeader, at: &Path) {
        if h.name.is_empty() {
            self.error(at.key("name"), "HTTP header name can't be empty");
        }
        if h.value.as_deref() == Some("") {
            self.error(at.key("value"), "unable to parse HTTP header");
        }
    }

    fn storage(&mut self, s: &Storage) {
        let st = root(&["storage"]);
        self.links_and_parents(s, &st);
        self.filesystem_disk_overlaps(s, &st);
        for (i, d) in s.directories.iter().enumerate() {
            self.directory(d, &st.key("directories").index(i));
        }
        for (i, d) in s.disks.iter().enumerate() {
            self.disk(d, &st.key("disks").index(i));
        }
        for (i, f) in s.files.iter().enumerate() {
            self.file(f, &st.key("files").index(i));
        }
        for (i, f) in s.filesystems.iter().enumerate() {
            self.filesystem(f, &st.key("filesystems").index(i));
        }
        for (i, l) in s.links.iter().enumerate() {
            self.link(l, &st.key("links").index(i));
        }
        for (i, l) in s.luks.iter().enumerate() {
            self.luks(l, &st.key("luks").index(i));
        }
        for (i, r) in s.raid.iter().enumerate() {
            self.raid(r, &st.key("raid").index(i));
        }
    }

    fn links_and_parents(&mut self, s: &Storage, st: &Path) {
        let link_paths: Vec<&str> = s.links.iter().map(|l| l.path.as_str()).collect();
        let under_link = |p: &str| link_paths.iter().filter(|l| p.starts_with(&format!("{l}/"))).count();
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

    fn filesystem_disk_overlaps(&mut self, s: &Storage, st: &Path) {
        let disks: HashMap<&str, &Disk> = s.disks.iter().map(|d| (d.device.as_str(), d)).collect();
        for (i, f) in s.filesystems.iter().enumerate() {
            let Some(disk) = disks.get(f.device.as_str()) else { continue };
            let at = st.key("filesystems").index(i).key("device");
            if !disk.partitions.is_empty() {
                self.warn(at, "filesystem overwrites partitioned device");
            } else if f.wipe_filesystem != Some(true) && disk.wipe_table == Some(true) {
                self.warn(at, "device matches disk with wipeTable enabled; filesystem will be wiped");
            }
        }
    }

    fn node(&mut self, path: &str, user: &NodeUser, group: &NodeGroup, at: &Path) {
        if let Err(msg) = check_path(path) {
            self.error(at.key("path"), msg);
        }
        if group.id.is_some() && !is_empty(&group.name) {
            self.error(at.key("group"), "cannot set both id and name");
        }
        if user.id.is_some() && !is_empty(&user.name) {
            self.error(at.key("user"), "cannot set both id and name");
        }
    }

    fn mode(&mut self, mode: Option<i64>, at: &Path) {
        let Some(mode) = mode else { return };
        if mode & !0o7777 != 0 {
            self.error(at.key("mode"), "illegal file mode");
        }
        if mode & 0o7000 != 0 && !self.spec.honors_special_mode_bits() {
            self.warn(
                at.key("mode"),
                "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0",
            );
        }
    }

    fn directory(&mut self, d: &Directory, at: &Path) {
        self.node(&d.path, &d.user, &d.group, at);
        self.mode(d.mode, at);
    }

    fn file(&mut self, f: &File, at: &Path) {
        self.node(&f.path, &f.user, &f.group, at);
        self.mode(f.mode, at);
        if f.overwrite == Some(true) && f.contents.source.is_none() {
            self.error(at.key("overwrite"), "overwrite must be false if source is unspecified");
        }
    }

    fn link(&mut self, l: &Link, at: &Path) {
        self.node(&l.path, &l.user, &l.group, at);
    }

    fn disk(&mut self, d: &Disk, at: &Path) {
        if d.device.is_empty() {
            self.error(at.key("device"), "disk device is required");
            return;
        }
        if let Err(msg) = check_path(&d.device) {
            self.error(at.key("device"), msg);
        }
        let parts = at.key("partitions");
        let mut numbers: HashMap<i64, usize> = HashMap::new();
        for (i, p) in d.partitions.iter().enumerate().filter(|(_, p)| p.number != 0) {
            if numbers.insert(p.number, i).is_some() {
                self.error(parts.index(i), "partition numbers collide");
                break;
            }
        }
        if let Some(i) = overlapping_partition(&d.partitions) {
            self.error(parts.index(i), "partitions overlap");
        }
        let any_absent = d.partitions.iter().any(|p| p.should_exist == Some(false));
        if any_absent && d.partitions.iter().any(|p| p.number == 0) {
            self.error(
                parts.clone(),
                "shouldExist is false for a partition and other partition(s) has start or size 0",
            );
        }
        let mut labels = HashSet::new();
        for (i, p) in d.partitions.iter().enumerate() {
            if let Some(label) = &p.label {
                if !labels.insert(label.clone()) {
                    self.error(parts.index(i), "cannot use the same partition label twice");
                }
            }
        }
        for (i, p) in d.partitions.iter().enumerate() {
            self.partition(p, &parts.index(i));
        }
    }

    fn partition(&mut self, p: &Partition, at: &Path) {
        let others = p.label.is_some()
            || !is_empty(&p.type_guid)
            || !is_empty(&p.guid)
            || p.start_mib.is_some()
            || p.size_mib.is_some();
        if p.should_exist == Some(false) && others {
            self.error(at.clone(), "shouldExist specified false with other options also specified");
        }
        if p.number == 0 && p.label.is_none() {
            self.error(at.clone(), "a partition number >= 1 or a label must be specified");
        }
        if let Some(label) = &p.label {
            if label.len() > 36 {
                self.error(at.key("label"), "partition labels may not exceed 36 characters");
            } else if label.contains(':') {
                self.error(at.key("label"), "partition label will be truncated to text before the colon");
            }
        }
        for (key, value) in [("guid", &p.guid), ("typeGuid", &p.type_guid)] {
            if value.as_deref().is_some_and(|g| !is_guid(g)) {
                self.error(at.key(key), "doesn't match the form \"01234567-89AB-CDEF-EDCB-A98765432101\"");
            }
        }
    }

    fn filesystem(&mut self, f: &Filesystem, at: &Path) {
        if let Some(p) = f.path.as_deref().filter(|p| !p.is_empty()) {
            if let Err(msg) = check_path(p) {
                self.error(at.key("path"), msg);
            }
        }
        if let Err(msg) = check_path(&f.device) {
            self.error(at.key("device"), msg);
        }
        match f.format.as_deref().filter(|s| !s.is_empty()) {
            None => {
                let needs = !is_empty(&f.path)
                    || !is_empty(&f.label)
                    || !is_empty(&f.uuid)
                    || f.wipe_filesystem == Some(true)
                    || !f.mount_options.is_empty()
                    || !f.options.is_empty();
                if needs {
                    self.error(
                        at.key("format"),
                        "format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified",
                    );
                }
            }
            Some(fmt) if !FS_FORMATS.contains(&fmt) => self.error(at.key("format"), "invalid filesystem format"),
            Some(_) => {}
        }
        let Some(label) = f.label.as_deref().filter(|l| !l.is_empty()) else { return };
        let max = match f.format.as_deref().unwrap_or("") {
            "" => {
                self.error(at.key("label"), "filesystem must specify format if label is specified");
                return;
            }
            "ext4" => 16,
            "btrfs" => 256,
            "xfs" => 12,
            "swap" => 15,
            "vfat" => 11,
            _ => return,
        };
        if label.len() > max {
            let fmt = f.format.as_deref().unwrap_or("");
            self.error(
                at.key("label"),
                format!("filesystem labels cannot be longer than {max} characters when using {fmt}"),
            );
        }
    }

    fn raid(&mut self, r: &Raid, at: &Path) {
        let level = r.level.as_deref().unwrap_or("");
        let level_error = match level {
            "" => Some("raid level is required"),
            "linear" | "raid0" | "0" | "stripe" if r.spares.is_some_and(|s| s != 0) => {
                Some("spares unsupported for linear and raid0 arrays")
            }
            "linear" | "raid0" | "0" | "stripe" | "raid1" | "1" | "mirror" | "raid4" | "4" | "raid5" | "5"
            | "raid6" | "6" | "raid10" | "10" => None,
            _ => Some("unrecognized raid level"),
        };
        if let Some(msg) = level_error {
            self.error(at.key("level"), msg);
        }
        if r.devices.is_empty() {
            self.error(at.key("devices"), "raid devices required");
        }
    }

    fn luks(&mut self, l: &Luks, at: &Path) {
        if l.name.contains('/') {
            self.error(at.key("name"), "device names cannot contain slashes");
        }
        if l.label.as_deref().is_some_and(|s| s.len() > 47) {
            self.error(at.key("label"), "luks device labels cannot be longer than 47 characters");
        }
        match l.device.as_deref().filter(|d| !d.is_empty()) {
            None => self.error(at.key("device"), "disk device is required"),
            Some(d) => {
                if let Err(msg) = check_path(d) {
                    self.error(at.key("device"), msg);
                }
            }
        }
        let c = &l.clevis;
        let builtin = !c.tang.is_empty() || c.tpm2 == Some(true) || c.threshold.is_some_and(|t| t != 0);
        if !is_empty(&c.custom.pin) && builtin {
            self.error(at.key("clevis"), "cannot use custom clevis config with tpm2, tang, or threshold");
        }
        if l.key_file.source.as_deref().is_some_and(|s| !s.is_empty() && url::validate(s).is_err()) {
            self.error(at.key("keys"), "invalid key-file source");
        }
        let cex = l.cex.enabled == Some(true);
        if cex && clevis_present(c) {
            self.error(at.key("cex"), "cannot use cex with clevis");
        }
        if cex && !is_empty(&l.key_file.source) {
            self.error(at.key("cex"), "cannot use cex with a key file");
        }
        self.clevis(c, &at.key("clevis"));
    }

    fn clevis(&mut self, c: &Clevis, at: &Path) {
        let custom = &c.custom;
        if !is_empty(&custom.pin) || !is_empty(&custom.config) || custom.needs_network.is_some() {
            let cat = at.key("custom");
            match custom.pin.as_deref().filter(|p| !p.is_empty()) {
                None => self.error(cat.key("pin"), "missing required custom clevis pin"),
                Some(pin) if self.spec.minor < 6 && !["tpm2", "tang", "sss"].contains(&pin) => {
                    self.error(cat.key("pin"), "unsupported clevis pin")
                }
                Some(_) => {}
            }
            if is_empty(&custom.config) {
                self.error(cat.key("config"), "missing required custom clevis config");
            }
        }
        for (k, t) in c.tang.iter().enumerate() {
            self.tang(t, &at.key("tang").index(k));
        }
    }

    fn tang(&mut self, t: &Tang, at: &Path) {
        match url::parse(&t.url) {
            None => self.error(at.key("url"), UrlError::Unparsable.to_string()),
            Some(u) if u.scheme != "http" && u.scheme != "https" => {
                self.error(at.key("url"), UrlError::Scheme.to_string())
            }
            Some(_) => {}
        }
        if is_empty(&t.thumbprint) {
            self.error(at.key("thumbprint"), "thumbprint is required");
        }
        if let Some(ad) = t.advertisement.as_deref().filter(|a| !a.is_empty()) {
            if serde_json::from_str::<serde_json::Value>(ad).is_err() {
                self.error(at.key("advertisement"), "advertisement is not valid JSON");
            }
        }
    }

    fn systemd(&mut self, s: &Systemd) {
        let units = root(&["systemd", "units"]);
        self.template_install_sections(s, &units);
        for (i, u) in s.units.iter().enumerate() {
            self.unit(u, &units.index(i));
        }
    }

    fn template_install_sections(&mut self, s: &Systemd, units: &Path) {
        let by_name: HashMap<&str, &Unit> = s.units.iter().map(|u| (u.name.as_str(), u)).collect();
        for (i, u) in s.units.iter().enumerate() {
            if u.enabled != Some(true) {
                continue;
            }
            let Some(template) = service_template(&u.name) else { continue };
            let Some(contents) =
                by_name.get(template.as_str()).and_then(|t| t.contents.as_deref()).filter(|c| !c.is_empty())
            else {
                continue;
            };
            if let Ok(parsed) = unit::parse(contents) {
                if !parsed.has_install_options() {
                    let msg = format!("template unit {template:?} for {:?} doesn't have Install section", u.name);
                    self.warn(units.index(i).key("contents"), msg);
                }
            }
        }
    }

    fn unit(&mut self, u: &Unit, at: &Path) {
        if !UNIT_EXTENSIONS.contains(&ext(&u.name)) {
            self.error(at.key("name"), "invalid systemd unit extension");
        }
        let parsed = self.unit_contents(u.contents.as_deref(), &at.key("contents"));
        let has_contents = u.contents.as_deref().is_some_and(|c| !c.is_empty());
        if let (Some(parsed), true, true) = (parsed, u.enabled == Some(true), has_contents) {
            if !parsed.has_install_options() {
                let msg = format!("unit {:?} is enabled, but has no install section so enable does nothing", u.name);
                self.warn(at.key("contents"), msg);
            }
        }
        for (j, d) in u.dropins.iter().enumerate() {
            let dat = at.key("dropins").index(j);
            self.unit_contents(d.contents.as_deref(), &dat.key("contents"));
            if ext(&d.name) != ".conf" {
                self.error(dat.key("name"), "invalid systemd drop-in extension");
            }
        }
    }

    fn unit_contents(&mut self, contents: Option<&str>, at: &Path) -> Option<unit::UnitFile> {
        match unit::parse(contents.unwrap_or("")) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.error(at.clone(), format!("invalid unit content: {e}"));
                None
            }
        }
    }
}

/// Every resource of a config with its output path (merge/replace, CAs, file contents and
/// appends, LUKS key files).
pub fn resources(cfg: &Config) -> Vec<(Path, &Resource)> {
    let mut out = Vec::new();
    let ign = root(&["ignition"]);
    for (i, r) in cfg.ignition.config.merge.iter().enumerate() {
        out.push((ign.key("config").key("merge").index(i), r));
    }
    out.push((ign.key("config").key("replace"), &cfg.ignition.config.replace));
    for (i, r) in cfg.ignition.security.tls.certificate_authorities.iter().enumerate() {
        out.push((ign.key("security").key("tls").key("certificateAuthorities").index(i), r));
    }
    let st = root(&["storage"]);
    for (i, f) in cfg.storage.files.iter().enumerate() {
        let at = st.key("files").index(i);
        for (j, a) in f.append.iter().enumerate() {
            out.push((at.key("append").index(j), a));
        }
        out.push((at.key("contents"), &f.contents));
    }
    for (i, l) in cfg.storage.luks.iter().enumerate() {
        out.push((st.key("luks").index(i).key("keyFile"), &l.key_file));
    }
    out
}

fn resource_key(r: &Resource) -> String {
    r.source.clone().unwrap_or_default()
}

fn clevis_present(c: &Clevis) -> bool {
    !is_empty(&c.custom.pin) || !c.tang.is_empty() || c.tpm2 == Some(true) || c.threshold.is_some_and(|t| t != 0)
}

/// For an instance `foo@bar.service`, its template `foo@.service` (services only).
fn service_template(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".service")?;
    let (prefix, instance) = stem.split_once('@')?;
    (!prefix.is_empty() && !instance.is_empty()).then(|| format!("{prefix}@.service"))
}

/// Ignition's node path rule: present, absolute and already clean.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        Err("path not specified")
    } else if !p.starts_with('/') {
        Err("path not absolute")
    } else if clean(p) != p {
        Err("path is not fully simplified")
    } else {
        Ok(())
    }
}

/// Ignition's verification hash rule: `sha256-<64>` or `sha512-<128>`.
pub fn check_hash(hash: &str) -> Result<(), &'static str> {
    let (function, sum) = hash.split_once('-').ok_or("malformed hash specifier")?;
    let size = match function {
        "sha512" => 64,
        "sha256" => 32,
        _ => return Err("unrecognized hash function"),
    };
    if sum.len() != size * 2 {
        return Err("incorrect size for hash sum");
    }
    Ok(())
}

fn is_guid(g: &str) -> bool {
    if g.is_empty() {
        return true;
    }
    let groups: Vec<&str> = g.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups.iter().zip(lens).all(|(grp, n)| grp.len() == n && grp.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn overlapping_partition(parts: &[Partition]) -> Option<usize> {
    let placed = |p: &Partition| match (p.start_mib, p.size_mib) {
        (Some(start), Some(size)) if start != 0 => Some((start, if size == 0 { start } else { start + size - 1 })),
        _ => None,
    };
    for (pi, p) in parts.iter().enumerate() {
        let Some((ps, pe)) = placed(p) else { continue };
        for (oi, o) in parts.iter().enumerate() {
            if oi == pi {
                continue;
            }
            let Some((os, oe)) = placed(o) else { continue };
            if (os..=oe).contains(&ps) || (os..=oe).contains(&pe) || (ps < os && pe > oe) {
                return Some(oi);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(minor: u8) -> Spec {
        Spec { minor, experimental: false }
    }

    fn messages(cfg: &Config, minor: u8) -> Vec<String> {
        validate(cfg, spec(minor))
            .entries
            .into_iter()
            .map(|d| format!("{} {}", d.path.map(|p| p.to_string()).unwrap_or_default(), d.message))
            .collect()
    }

    fn base(minor: u8) -> Config {
        let mut cfg = Config::default();
        cfg.ignition.version = spec(minor).version();
        cfg
    }

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
    fn hashes() {
        let cases = [
            ("sha512", Some("malformed hash specifier")),
            ("md5-abc", Some("unrecognized hash function")),
            ("sha256-abc", Some("incorrect size for hash sum")),
            (&*format!("sha256-{}", "0".repeat(64)), None),
            (&*format!("sha512-{}", "a".repeat(128)), None),
        ];
        for (hash, want) in cases {
            assert_eq!(check_hash(hash).err(), want, "case {hash}");
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
    fn duplicates_share_the_node_key_space() {
        let mut cfg = base(5);
        cfg.storage.directories.push(Directory { path: "/a".into(), ..Directory::default() });
        cfg.storage.files.push(File { path: "/a".into(), ..File::default() });
        assert_eq!(messages(&cfg, 5), ["$.storage.files.0 duplicate entry defined"]);
    }

    #[test]
    fn units_extensions_contents_and_install_sections() {
        let mut cfg = base(5);
        cfg.systemd.units.push(Unit { name: "x.conf".into(), ..Unit::default() });
        cfg.systemd.units.push(Unit { name: "y.service".into(), contents: Some("[Service".into()), ..Unit::default() });
        cfg.systemd.units.push(Unit {
            name: "z.service".into(),
            enabled: Some(true),
            contents: Some("[Service]\nExecStart=/bin/true\n".into()),
            ..Unit::default()
        });
        assert_eq!(
            messages(&cfg, 5),
            [
                "$.systemd.units.0.name invalid systemd unit extension",
                "$.systemd.units.1.contents invalid unit content: unable to find end of section",
                "$.systemd.units.2.contents unit \"z.service\" is enabled, but has no install section so enable does nothing",
            ]
        );
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

    #[test]
    fn partitions() {
        let mut cfg = base(5);
        cfg.storage.disks.push(Disk {
            device: "/dev/vdb".into(),
            partitions: vec![Partition {
                number: 3,
                label: Some("gone".into()),
                should_exist: Some(false),
                ..Partition::default()
            }],
            ..Disk::default()
        });
        assert_eq!(
            messages(&cfg, 5),
            ["$.storage.disks.0.partitions.0 shouldExist specified false with other options also specified"]
        );
    }
}
