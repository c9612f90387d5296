//! The config types: Ignition's spec 3.x structs, extended with Butane's sugar fields.
//!
//! One declaration serves both dialects. Each field names its Butane key and its Ignition key
//! (an empty name: the dialect has no such field) and the schema level that introduced it.
//! Fields are declared in Go's struct order, which is the JSON key order Butane emits.
//! Butane-only fields (inline, local, trees, quadlets, ...) are expanded by the translator
//! and never serialized.

use std::sync::Arc;

use crate::model::decode::{Decode, Decoder, IsZero, ToJson, since2, since3, since4, since5, since6, since7, since8};
use crate::model::ignition::merge::MergeField;
use crate::model::json::Json;
use crate::model::path::Path;
use crate::model::yaml::Node;
use crate::schema;

schema! {
    /// A whole config: Ignition's top level plus Butane's variant, version and sugar sections.
    pub struct Config {
        variant: Option<String> => "variant", "";
        version: Option<String> => "version", "";
        ignition: Ignition => "ignition", "ignition";
        kernel_arguments: KernelArguments => "kernel_arguments", "kernelArguments", since4;
        passwd: Passwd => "passwd", "passwd";
        storage: Storage => "storage", "storage";
        systemd: Systemd => "systemd", "systemd";
        boot_device: BootDevice => "boot_device", "", crate::model::butane::gates::has_boot_device;
        grub: Grub => "grub", "", crate::model::butane::gates::has_grub;
    }

    /// The `ignition` section.
    pub struct Ignition {
        config: IgnitionConfig => "config", "config";
        proxy: Proxy => "proxy", "proxy", since2;
        security: Security => "security", "security";
        timeouts: Timeouts => "timeouts", "timeouts";
        version: String => "", "version";
    }

    /// `ignition.config`: configs to merge or to replace this one with.
    pub struct IgnitionConfig {
        merge: Vec<Resource> => "merge", "merge";
        replace: Resource => "replace", "replace";
    }

    /// `ignition.proxy`.
    pub struct Proxy {
        http_proxy: Option<String> => "http_proxy", "httpProxy";
        https_proxy: Option<String> => "https_proxy", "httpsProxy";
        no_proxy: Vec<String> => "no_proxy", "noProxy";
    }

    /// `ignition.security`.
    pub struct Security {
        tls: Tls => "tls", "tls";
    }

    /// `ignition.security.tls`.
    pub struct Tls {
        certificate_authorities: Vec<Resource> => "certificate_authorities", "certificateAuthorities";
    }

    /// `ignition.timeouts`.
    pub struct Timeouts {
        http_response_headers: Option<i64> => "http_response_headers", "httpResponseHeaders";
        http_total: Option<i64> => "http_total", "httpTotal";
    }

    /// A resource: where contents come from and how to check them.
    pub struct Resource {
        compression: Option<String> => "compression", "compression";
        http_headers: Vec<HttpHeader> => "http_headers", "httpHeaders", since2;
        source: Option<String> => "source", "source";
        verification: Verification => "verification", "verification";
        inline: Option<String> => "inline", "";
        local: Option<String> => "local", "", since2;
        payload: Payload => "", "";
    }

    /// One HTTP header sent when fetching a resource.
    pub struct HttpHeader {
        name: String => "name", "name";
        value: Option<String> => "value", "value";
    }

    /// A resource's expected hash.
    pub struct Verification {
        hash: Option<String> => "hash", "hash";
    }

    /// The `storage` section.
    pub struct Storage {
        directories: Vec<Directory> => "directories", "directories";
        disks: Vec<Disk> => "disks", "disks";
        files: Vec<File> => "files", "files";
        filesystems: Vec<Filesystem> => "filesystems", "filesystems";
        links: Vec<Link> => "links", "links";
        luks: Vec<Luks> => "luks", "luks", since3;
        raid: Vec<Raid> => "raid", "raid";
        trees: Vec<Tree> => "trees", "", since2;
    }

    /// A file.
    pub struct File {
        group: NodeGroup => "group", "group";
        overwrite: Option<bool> => "overwrite", "overwrite";
        path: String => "path", "path";
        user: NodeUser => "user", "user";
        append: Vec<Resource> => "append", "append";
        contents: Resource => "contents", "contents";
        mode: Option<i64> => "mode", "mode";
    }

    /// A directory.
    pub struct Directory {
        group: NodeGroup => "group", "group";
        overwrite: Option<bool> => "overwrite", "overwrite";
        path: String => "path", "path";
        user: NodeUser => "user", "user";
        mode: Option<i64> => "mode", "mode";
    }

    /// A symbolic or hard link.
    pub struct Link {
        group: NodeGroup => "group", "group";
        overwrite: Option<bool> => "overwrite", "overwrite";
        path: String => "path", "path";
        user: NodeUser => "user", "user";
        hard: Option<bool> => "hard", "hard";
        target: Option<String> => "target", "target";
    }

    /// The owning user of a node, by id or by name.
    pub struct NodeUser {
        id: Option<i64> => "id", "id";
        name: Option<String> => "name", "name";
    }

    /// The owning group of a node, by id or by name.
    pub struct NodeGroup {
        id: Option<i64> => "id", "id";
        name: Option<String> => "name", "name";
    }

    /// Butane's `storage.trees`: a directory of the files-dir copied to `path`.
    pub struct Tree {
        local: Option<String> => "local", "";
        path: Option<String> => "path", "";
        file_mode: Option<i64> => "file_mode", "", since7;
        dir_mode: Option<i64> => "dir_mode", "", since7;
        user: NodeUser => "user", "", since7;
        group: NodeGroup => "group", "", since7;
    }

    /// A disk and its partition table.
    pub struct Disk {
        device: String => "device", "device";
        partitions: Vec<Partition> => "partitions", "partitions";
        wipe_table: Option<bool> => "wipe_table", "wipeTable";
    }

    /// A partition.
    pub struct Partition {
        guid: Option<String> => "guid", "guid";
        label: Option<String> => "label", "label";
        number: i64 => "number", "number";
        resize: Option<bool> => "resize", "resize", since3;
        should_exist: Option<bool> => "should_exist", "shouldExist";
        size_mib: Option<i64> => "size_mib", "sizeMiB";
        start_mib: Option<i64> => "start_mib", "startMiB";
        type_guid: Option<String> => "type_guid", "typeGuid";
        wipe_partition_entry: Option<bool> => "wipe_partition_entry", "wipePartitionEntry";
    }

    /// A filesystem.
    pub struct Filesystem {
        device: String => "device", "device";
        format: Option<String> => "format", "format";
        label: Option<String> => "label", "label";
        mount_options: Vec<String> => "mount_options", "mountOptions", since2;
        options: Vec<String> => "options", "options";
        path: Option<String> => "path", "path";
        uuid: Option<String> => "uuid", "uuid";
        wipe_filesystem: Option<bool> => "wipe_filesystem", "wipeFilesystem";
        with_mount_unit: Option<bool> => "with_mount_unit", "", since2;
    }

    /// A LUKS volume.
    pub struct Luks {
        cex: Cex => "cex", "cex", since6;
        clevis: Clevis => "clevis", "clevis";
        device: Option<String> => "device", "device";
        discard: Option<bool> => "discard", "discard", since5;
        key_file: Resource => "key_file", "keyFile";
        label: Option<String> => "label", "label";
        name: String => "name", "name";
        open_options: Vec<String> => "open_options", "openOptions", since5;
        options: Vec<String> => "options", "options";
        uuid: Option<String> => "uuid", "uuid";
        wipe_volume: Option<bool> => "wipe_volume", "wipeVolume";
    }

    /// IBM Crypto Express binding of a LUKS volume.
    pub struct Cex {
        enabled: Option<bool> => "enabled", "enabled";
    }

    /// Clevis binding of a LUKS volume.
    pub struct Clevis {
        custom: ClevisCustom => "custom", "custom";
        tang: Vec<Tang> => "tang", "tang";
        threshold: Option<i64> => "threshold", "threshold";
        tpm2: Option<bool> => "tpm2", "tpm2";
    }

    /// A custom Clevis pin.
    pub struct ClevisCustom {
        config: Option<String> => "config", "config";
        needs_network: Option<bool> => "needs_network", "needsNetwork";
        pin: Option<String> => "pin", "pin";
    }

    /// A Tang server.
    pub struct Tang {
        advertisement: Option<String> => "advertisement", "advertisement", since5;
        thumbprint: Option<String> => "thumbprint", "thumbprint";
        url: String => "url", "url";
    }

    /// A software RAID array.
    pub struct Raid {
        devices: Vec<String> => "devices", "devices";
        level: Option<String> => "level", "level";
        name: String => "name", "name";
        options: Vec<String> => "options", "options";
        spares: Option<i64> => "spares", "spares";
    }

    /// The `systemd` section.
    pub struct Systemd {
        units: Vec<Unit> => "units", "units";
        quadlets: Vec<Quadlet> => "quadlets", "", since8;
    }

    /// A systemd unit.
    pub struct Unit {
        contents: Option<String> => "contents", "contents";
        dropins: Vec<Dropin> => "dropins", "dropins";
        enabled: Option<bool> => "enabled", "enabled";
        mask: Option<bool> => "mask", "mask";
        name: String => "name", "name";
        contents_local: Option<String> => "contents_local", "", since5;
    }

    /// A systemd drop-in.
    pub struct Dropin {
        contents: Option<String> => "contents", "contents";
        name: String => "name", "name";
        contents_local: Option<String> => "contents_local", "", since5;
    }

    /// Butane's `systemd.quadlets`: a Podman Quadlet file and its drop-ins.
    pub struct Quadlet {
        name: String => "name", "";
        rootful: Option<bool> => "rootful", "";
        contents: Option<String> => "contents", "";
        contents_local: Option<String> => "contents_local", "";
        dropins: Vec<Dropin> => "dropins", "";
    }

    /// The `passwd` section.
    pub struct Passwd {
        groups: Vec<PasswdGroup> => "groups", "groups";
        users: Vec<PasswdUser> => "users", "users";
    }

    /// A group account.
    pub struct PasswdGroup {
        gid: Option<i64> => "gid", "gid";
        name: String => "name", "name";
        password_hash: Option<String> => "password_hash", "passwordHash";
        should_exist: Option<bool> => "should_exist", "shouldExist", since3;
        system: Option<bool> => "system", "system";
    }

    /// A user account.
    pub struct PasswdUser {
        gecos: Option<String> => "gecos", "gecos";
        groups: Vec<String> => "groups", "groups";
        home_dir: Option<String> => "home_dir", "homeDir";
        name: String => "name", "name";
        no_create_home: Option<bool> => "no_create_home", "noCreateHome";
        no_log_init: Option<bool> => "no_log_init", "noLogInit";
        no_user_group: Option<bool> => "no_user_group", "noUserGroup";
        password_hash: Option<String> => "password_hash", "passwordHash";
        primary_group: Option<String> => "primary_group", "primaryGroup";
        ssh_authorized_keys: Vec<String> => "ssh_authorized_keys", "sshAuthorizedKeys";
        shell: Option<String> => "shell", "shell";
        should_exist: Option<bool> => "should_exist", "shouldExist", since3;
        system: Option<bool> => "system", "system";
        uid: Option<i64> => "uid", "uid";
        ssh_authorized_keys_local: Vec<String> => "ssh_authorized_keys_local", "", since5;
    }

    /// Kernel arguments to ensure present or absent.
    pub struct KernelArguments {
        should_exist: Vec<String> => "should_exist", "shouldExist";
        should_not_exist: Vec<String> => "should_not_exist", "shouldNotExist";
    }

    /// fcos `boot_device`: root-disk encryption and mirroring sugar.
    pub struct BootDevice {
        layout: Option<String> => "layout", "";
        luks: BootDeviceLuks => "luks", "";
        mirror: BootDeviceMirror => "mirror", "";
    }

    /// fcos `boot_device.luks`.
    pub struct BootDeviceLuks {
        cex: Cex => "cex", "", since6;
        device: Option<String> => "device", "", since6;
        discard: Option<bool> => "discard", "", since5;
        tang: Vec<Tang> => "tang", "";
        threshold: Option<i64> => "threshold", "";
        tpm2: Option<bool> => "tpm2", "";
    }

    /// fcos `boot_device.mirror`.
    pub struct BootDeviceMirror {
        devices: Vec<String> => "devices", "";
    }

    /// fcos `grub`: GRUB superusers.
    pub struct Grub {
        users: Vec<GrubUser> => "users", "";
    }

    /// One GRUB superuser.
    pub struct GrubUser {
        name: String => "name", "";
        password_hash: Option<String> => "password_hash", "";
    }
}

/// The bytes that a resource's `data:` URL stands for, kept beside it by the translator when the
/// config is applied right away (plan and apply), so that they are not decoded back from the URL.
/// No config names it: it is never read, never written, equal to any other payload (it only
/// repeats the URL), and a merge drops it (the merged URL is then decoded as any other). Shown
/// for debugging by its length only.
#[derive(Clone, Default)]
pub struct Payload(pub Option<Arc<Vec<u8>>>);

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(bytes) => write!(f, "Payload({} bytes)", bytes.len()),
            None => f.write_str("Payload(none)"),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, _: &Payload) -> bool {
        true
    }
}

impl Decode for Payload {
    const EXPECTED: &'static str = "payload";
    fn decode(_: &Node, _: &mut Decoder, _: &Path) -> Self {
        Payload::default()
    }
}

impl IsZero for Payload {
    fn is_zero(&self) -> bool {
        true
    }
}

impl ToJson for Payload {
    fn to_json(&self) -> Json {
        Json::Null
    }
    fn omitted(&self) -> bool {
        true
    }
    fn serialize_json<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl MergeField for Payload {
    fn merge_field(_: &str, _: Self, _: Self) -> Self {
        Payload::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ignition::merge::Merge;

    fn kept(url: &str, bytes: &[u8]) -> Resource {
        Resource { source: Some(url.into()), payload: Payload(Some(Arc::new(bytes.to_vec()))), ..Resource::default() }
    }

    #[test]
    fn kept_bytes_never_outlive_the_url_they_stand_for() {
        let parent = File { path: "/a".into(), contents: kept("data:,old", b"old"), ..File::default() };
        let child = File {
            path: "/a".into(),
            contents: Resource { source: Some("data:,new".into()), ..Resource::default() },
            ..File::default()
        };
        let merged = File::merge(parent.clone(), child);
        assert_eq!(merged.contents.source.as_deref(), Some("data:,new"));
        assert!(merged.contents.payload.0.is_none(), "the parent's bytes were kept beside the child's URL");
        let same = File::merge(parent.clone(), File { path: "/a".into(), ..File::default() });
        assert_eq!(same.contents.source.as_deref(), Some("data:,old"));
        assert!(same.contents.payload.0.is_none(), "a merged resource is decoded from its URL");
    }

    #[test]
    fn kept_bytes_are_shown_by_their_length_only() {
        assert_eq!(format!("{:?}", kept("data:,secret", b"secret").payload), "Payload(6 bytes)");
        assert_eq!(format!("{:?}", Payload::default()), "Payload(none)");
    }

    #[test]
    fn kept_bytes_are_no_part_of_the_config() {
        let with = kept("data:,x", b"x");
        let without = Resource { source: Some("data:,x".into()), ..Resource::default() };
        assert_eq!(with, without);
        assert_eq!(with.to_json(), without.to_json());
        assert_eq!(serde_json::to_string(&crate::model::decode::AsJson(&with)).unwrap(), r#"{"source":"data:,x"}"#);
    }
}
