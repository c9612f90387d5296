//! Storage devices: disks and their partitions (numbers, labels, overlaps, GUIDs),
//! filesystems (formats, labels, and a disk they overwrite), RAID arrays, and LUKS volumes
//! with their Clevis and Tang settings.

use std::collections::{HashMap, HashSet};

use super::{Validator, check_path, is_empty};
use crate::model::ignition::types::{Clevis, Disk, Filesystem, Luks, Partition, Raid, Storage, Tang};
use crate::model::ignition::url::{self, UrlError};
use crate::model::path::Path;

const FS_FORMATS: &[&str] = &["ext4", "btrfs", "xfs", "swap", "vfat", "none"];

impl Validator {
    pub(super) fn filesystem_disk_overlaps(&mut self, s: &Storage, st: &Path) {
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

    pub(super) fn disk(&mut self, d: &Disk, at: &Path) {
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

    pub(super) fn filesystem(&mut self, f: &Filesystem, at: &Path) {
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

    pub(super) fn raid(&mut self, r: &Raid, at: &Path) {
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

    pub(super) fn luks(&mut self, l: &Luks, at: &Path) {
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
}

fn clevis_present(c: &Clevis) -> bool {
    !is_empty(&c.custom.pin) || !c.tang.is_empty() || c.tpm2 == Some(true) || c.threshold.is_some_and(|t| t != 0)
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
    use crate::model::ignition::validate::fixtures::*;

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
