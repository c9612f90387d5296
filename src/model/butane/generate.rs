//! Generated merge parents: mount units for `with_mount_unit`, fcos `boot_device` and `grub`.
//!
//! Butane builds each as a separate Ignition config and merges the user's translated config
//! into it ([`merge_under`]), so generated entries come first and the user's same-keyed entries
//! merge into them. Also here: fcos's partition-layout warnings, checked after `boot_device`.

use crate::model::butane::translation::Translations;
use crate::model::ignition::dataurl;
use crate::model::ignition::merge::{Keyed, Merge, drop_shadowed_nodes};
use crate::model::ignition::types::{
    BootDevice, Cex, Clevis, Config, Disk, File, Filesystem, Luks, Partition, Raid, Resource, Unit,
};
use crate::model::path::Path;
use crate::model::report::Report;
use crate::model::unit::escape_path;

/// The boot disk's stable name on Fedora CoreOS.
pub const BOOT_DISK: &str = "/dev/disk/by-id/coreos-boot-disk";
const GUID_BIOS: &str = "21686148-6449-6E6F-744E-656564454649";
const GUID_PREP: &str = "9E1A2D38-C612-4316-AA26-8B49521E5A8B";
const GUID_RESERVED: &str = "8DA63339-0007-60C0-C436-083AC8230908";
const GUID_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// GRUB's superuser file.
const GRUB_USER_CFG: &str = "/boot/grub2/user.cfg";
/// Minimum root size below which fcos warns.
const ROOT_MIN_MIB: i64 = 8192;

/// Merges `child` (with its translations) over the generated `parent` (with its own), as
/// Butane's `MergeTranslatedConfigs` does.
pub fn merge_under(
    mut parent: Config,
    parent_tr: Translations,
    child: Config,
    child_tr: Translations,
) -> (Config, Translations) {
    drop_shadowed_nodes(&mut parent.storage, &child.storage);
    let mut child_tr = child_tr;
    remap_lists(&parent, &child, &mut child_tr);
    let mut tr = parent_tr;
    tr.extend(child_tr);
    (Config::merge(parent, child), tr)
}

/// Where each child list item lands after the merge, per keyed list.
fn remap_lists(parent: &Config, child: &Config, tr: &mut Translations) {
    fn keys<T: Keyed>(items: &[T]) -> Vec<String> {
        items.iter().map(Keyed::merge_key).collect()
    }
    let storage = Path::root().key("storage");
    let lists = [
        (storage.key("directories"), keys(&parent.storage.directories), keys(&child.storage.directories)),
        (storage.key("disks"), keys(&parent.storage.disks), keys(&child.storage.disks)),
        (storage.key("files"), keys(&parent.storage.files), keys(&child.storage.files)),
        (storage.key("filesystems"), keys(&parent.storage.filesystems), keys(&child.storage.filesystems)),
        (storage.key("links"), keys(&parent.storage.links), keys(&child.storage.links)),
        (storage.key("luks"), keys(&parent.storage.luks), keys(&child.storage.luks)),
        (storage.key("raid"), keys(&parent.storage.raid), keys(&child.storage.raid)),
        (Path::root().key("systemd").key("units"), keys(&parent.systemd.units), keys(&child.systemd.units)),
    ];
    for (list, parent_keys, child_keys) in lists {
        tr.remap_list(&list, &placement(&parent_keys, &child_keys));
    }
}

/// The merge's placement of child items: merged into the parent's item of the same key, or
/// appended after the parent's items.
fn placement(parent_keys: &[String], child_keys: &[String]) -> Vec<Option<usize>> {
    let mut next = parent_keys.len();
    child_keys
        .iter()
        .map(|k| match parent_keys.iter().position(|p| p == k) {
            Some(i) => Some(i),
            None => {
                next += 1;
                Some(next - 1)
            }
        })
        .collect()
}

/// Mount and swap units for filesystems with `with_mount_unit: true`, merged under `out`.
pub fn mount_units(src: &Config, out: Config, tr: Translations) -> (Config, Translations) {
    let mut parent = Config::default();
    let mut ptr = Translations::default();
    for (i, fs) in src.storage.filesystems.iter().enumerate() {
        if fs.with_mount_unit != Some(true) {
            continue;
        }
        let remote = tang_bound(src, &fs.device);
        let at = Path::root().key("storage").key("filesystems").index(i).key("with_mount_unit");
        ptr.add_whole(at, Path::root().key("systemd").key("units").index(parent.systemd.units.len()));
        parent.systemd.units.push(mount_unit(fs, remote));
    }
    if parent.systemd.units.is_empty() {
        return (out, tr);
    }
    merge_under(parent, ptr, out, tr)
}

/// Whether `device` is the mapper of a user LUKS volume bound to Tang (needs the network).
fn tang_bound(src: &Config, device: &str) -> bool {
    let name = device.strip_prefix("/dev/mapper/").or_else(|| device.strip_prefix("/dev/disk/by-id/dm-name-"));
    name.is_some_and(|name| src.storage.luks.iter().any(|l| l.name == name && !l.clevis.tang.is_empty()))
}

fn mount_unit(fs: &Filesystem, remote: bool) -> Unit {
    let swap = fs.format.as_deref() == Some("swap");
    let mut options = fs.mount_options.join(",");
    if remote {
        options.push_str(if options.is_empty() { "_netdev" } else { ",_netdev" });
    }
    let options_line = if options.is_empty() { String::new() } else { format!("\nOptions={options}") };
    let (name, contents) = if swap {
        let contents = format!(
            "# Generated by Butane\n[Swap]\nWhat={}{options_line}\n\n[Install]\nRequiredBy=swap.target",
            fs.device
        );
        (format!("{}.swap", escape_path(&fs.device)), contents)
    } else {
        let path = fs.path.clone().unwrap_or_default();
        let fsck = escape_path(&fs.device);
        let target = if remote { "remote-fs.target" } else { "local-fs.target" };
        let contents = format!(
            "# Generated by Butane\n[Unit]\nRequires=systemd-fsck@{fsck}.service\nAfter=systemd-fsck@{fsck}.service\n\n[Mount]\nWhere={path}\nWhat={}\nType={}{options_line}\n\n[Install]\nRequiredBy={target}",
            fs.device,
            fs.format.as_deref().unwrap_or("")
        );
        (format!("{}.mount", escape_path(&path)), contents)
    };
    Unit { name, enabled: Some(true), contents: Some(contents), ..Unit::default() }
}

/// The disks, RAID, LUKS and filesystems of fcos `boot_device`, merged under `out`.
pub fn boot_device(bd: &BootDevice, out: Config, tr: Translations) -> (Config, Translations) {
    let luks = &bd.luks;
    let want_luks = luks.tpm2 == Some(true) || !luks.tang.is_empty() || luks.cex.enabled == Some(true);
    let want_mirror = !bd.mirror.devices.is_empty();
    if !want_luks && !want_mirror {
        return (out, tr);
    }
    let layout = bd.layout.as_deref().unwrap_or("x86_64");
    let bios = layout == "x86_64";
    let efi = matches!(layout, "x86_64" | "aarch64");
    let prep = layout == "ppc64le";
    let base = Path::root().key("boot_device");
    let mut parent = Config::default();
    let mut ptr = Translations::default();
    ptr.add_whole(base.clone(), Path::root().key("storage"));
    if want_mirror {
        let storage = &mut parent.storage;
        for (i, device) in bd.mirror.devices.iter().enumerate() {
            let n = i + 1;
            let first = if bios {
                partition(format!("bios-{n}"), 1, Some(GUID_BIOS))
            } else if prep {
                partition(format!("prep-{n}"), 4, Some(GUID_PREP))
            } else {
                partition(format!("reserved-{n}"), 1, Some(GUID_RESERVED))
            };
            let second = if efi {
                partition(format!("esp-{n}"), 127, Some(GUID_ESP))
            } else {
                partition(format!("reserved-{n}"), 1, Some(GUID_RESERVED))
            };
            let partitions = vec![
                first,
                second,
                partition(format!("boot-{n}"), 384, None),
                Partition { label: Some(format!("root-{n}")), ..Partition::default() },
            ];
            ptr.add_whole(
                base.key("mirror").key("devices").index(i),
                Path::root().key("storage").key("disks").index(i),
            );
            storage.disks.push(Disk { device: device.clone(), partitions, wipe_table: Some(true) });
            if efi {
                ptr.add_whole(
                    base.key("mirror").key("devices").index(i),
                    Path::root().key("storage").key("filesystems").index(storage.filesystems.len()),
                );
                storage.filesystems.push(Filesystem {
                    device: format!("/dev/disk/by-partlabel/esp-{n}"),
                    format: Some("vfat".into()),
                    label: Some(format!("esp-{n}")),
                    wipe_filesystem: Some(true),
                    ..Filesystem::default()
                });
            }
        }
        let members = |what: &str| {
            (1..=bd.mirror.devices.len()).map(|n| format!("/dev/disk/by-partlabel/{what}-{n}")).collect::<Vec<_>>()
        };
        storage.raid.push(Raid {
            devices: members("boot"),
            level: Some("raid1".into()),
            name: "md-boot".into(),
            options: vec!["--metadata=1.0".into()],
            ..Raid::default()
        });
        storage.raid.push(Raid {
            devices: members("root"),
            level: Some("raid1".into()),
            name: "md-root".into(),
            ..Raid::default()
        });
        ptr.add_whole(base.key("mirror"), Path::root().key("storage").key("raid"));
        ptr.add_whole(
            base.key("mirror"),
            Path::root().key("storage").key("filesystems").index(storage.filesystems.len()),
        );
        storage.filesystems.push(Filesystem {
            device: "/dev/md/md-boot".into(),
            format: Some("ext4".into()),
            label: Some("boot".into()),
            wipe_filesystem: Some(true),
            ..Filesystem::default()
        });
    }
    if want_luks {
        let device = match layout {
            "s390x-eckd" => format!("{}2", luks.device.as_deref().unwrap_or("")),
            "s390x-zfcp" => format!("{}4", luks.device.as_deref().unwrap_or("")),
            _ if want_mirror => "/dev/md/md-root".to_string(),
            _ => "/dev/disk/by-partlabel/root".to_string(),
        };
        let mut entry = Luks {
            device: Some(device),
            discard: luks.discard,
            label: Some("luks-root".into()),
            name: "root".into(),
            wipe_volume: Some(true),
            ..Luks::default()
        };
        if luks.cex.enabled == Some(true) {
            entry.cex = Cex { enabled: Some(true) };
        } else {
            entry.clevis =
                Clevis { tang: luks.tang.clone(), threshold: luks.threshold, tpm2: luks.tpm2, ..Clevis::default() };
        }
        ptr.add_whole(base.key("luks"), Path::root().key("storage").key("luks").index(0));
        parent.storage.luks.push(entry);
    }
    ptr.add_whole(base.clone(), Path::root().key("storage").key("filesystems").index(parent.storage.filesystems.len()));
    parent.storage.filesystems.push(Filesystem {
        device: if want_luks { "/dev/mapper/root".into() } else { "/dev/md/md-root".into() },
        format: Some("xfs".into()),
        label: Some("root".into()),
        wipe_filesystem: Some(true),
        ..Filesystem::default()
    });
    merge_under(parent, ptr, out, tr)
}

fn partition(label: String, size_mib: i64, type_guid: Option<&str>) -> Partition {
    Partition {
        label: Some(label),
        size_mib: Some(size_mib),
        type_guid: type_guid.map(str::to_string),
        ..Partition::default()
    }
}

/// fcos's warnings about partition layouts that will not do what the user expects, at output
/// paths.
pub fn partition_warnings(out: &Config) -> Report {
    let mut report = Report::default();
    for (i, disk) in out.storage.disks.iter().enumerate() {
        for (p, part) in disk.partitions.iter().enumerate() {
            let Some(label) = part.label.as_deref() else { continue };
            let at = Path::root().key("storage").key("disks").index(i).key("partitions").index(p);
            if label == "root" {
                let size = part.size_mib.unwrap_or(0);
                let followed = disk.partitions[p + 1..].iter().any(|q| q.start_mib.unwrap_or(0) == 0);
                if size == 0 && followed {
                    report.warning(
                        at.key("label"),
                        "root partition cannot expand; it is set to fill available space but is followed by an auto-positioned partition",
                    );
                } else if size != 0 && size < ROOT_MIN_MIB {
                    report.warning(at.key("size_mib"), "root should have 8GiB of space assigned");
                }
            }
            let expected_number = match label {
                "BIOS-BOOT" | "PowerPC-PReP-boot" => Some(1),
                "EFI-SYSTEM" => Some(2),
                "boot" => Some(3),
                "root" => Some(4),
                _ => None,
            };
            if disk.wipe_table != Some(true) && expected_number.is_some_and(|n| n != part.number) {
                report.warning(
                    at.key("label"),
                    "incorrect partition number; a new partition will be created using reserved label",
                );
            }
        }
    }
    report
}

/// The GRUB superuser file and the boot filesystem for fcos `grub.users`, merged under `out`.
pub fn grub(src: &Config, encoding: dataurl::Encoding, out: Config, tr: Translations) -> (Config, Translations) {
    let users = &src.grub.users;
    if users.is_empty() {
        return (out, tr);
    }
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let lines: Vec<String> = users
        .iter()
        .map(|u| format!("password_pbkdf2 {} {}", u.name, u.password_hash.as_deref().unwrap_or("")))
        .collect();
    let content = format!("# Generated by Butane\n\nset superusers=\"{}\"\n{}\n", names.join(" "), lines.join("\n"));
    let made = dataurl::make(content.as_bytes(), None, encoding);
    let mut parent = Config::default();
    parent.storage.filesystems.push(Filesystem {
        device: "/dev/disk/by-label/boot".into(),
        format: Some("ext4".into()),
        path: Some("/boot".into()),
        ..Filesystem::default()
    });
    parent.storage.files.push(File {
        path: GRUB_USER_CFG.into(),
        append: vec![Resource { compression: made.compression, source: Some(made.url), ..Resource::default() }],
        ..File::default()
    });
    let mut ptr = Translations::default();
    let from = Path::root().key("grub").key("users");
    ptr.add_whole(from.clone(), Path::root().key("storage").key("files").index(0));
    ptr.add_whole(from, Path::root().key("storage").key("filesystems").index(0));
    merge_under(parent, ptr, out, tr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_unit_text_matches_butane() {
        let fs = Filesystem {
            device: "/dev/disk/by-partlabel/data".into(),
            format: Some("ext4".into()),
            path: Some("/var/lib/data".into()),
            mount_options: vec!["noatime".into(), "nodev".into()],
            ..Filesystem::default()
        };
        let unit = mount_unit(&fs, false);
        assert_eq!(unit.name, "var-lib-data.mount");
        assert_eq!(
            unit.contents.unwrap(),
            "# Generated by Butane\n[Unit]\nRequires=systemd-fsck@dev-disk-by\\x2dpartlabel-data.service\nAfter=systemd-fsck@dev-disk-by\\x2dpartlabel-data.service\n\n[Mount]\nWhere=/var/lib/data\nWhat=/dev/disk/by-partlabel/data\nType=ext4\nOptions=noatime,nodev\n\n[Install]\nRequiredBy=local-fs.target"
        );
    }

    #[test]
    fn swap_units_are_named_after_the_device_and_remote_adds_netdev() {
        let fs = Filesystem { device: "/dev/mapper/s".into(), format: Some("swap".into()), ..Filesystem::default() };
        let unit = mount_unit(&fs, true);
        assert_eq!(unit.name, "dev-mapper-s.swap");
        assert_eq!(
            unit.contents.unwrap(),
            "# Generated by Butane\n[Swap]\nWhat=/dev/mapper/s\nOptions=_netdev\n\n[Install]\nRequiredBy=swap.target"
        );
    }

    #[test]
    fn placement_merges_same_keys_and_appends_the_rest() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(placement(&p(&["a", "b"]), &p(&["c", "a", "d"])), vec![Some(2), Some(0), Some(3)]);
    }
}
