//! Butane's own checks of the source config (before translation), and the variants' field
//! filters (after translation). Source findings are at YAML paths; filter findings at output
//! paths, mapped back by the caller.

use crate::model::butane::translate::is_instance;
use crate::model::butane::variant::{Target, Variant};
use crate::model::decode::{Decode, Decoder, Gates, IsZero};
use crate::model::ignition::spec::{self, IgnitionError};
use crate::model::ignition::types::{BootDevice, Config, Dropin, Quadlet, Resource, Unit};
use crate::model::path::Path;
use crate::model::report::{Diagnostic, Mark, Report, Severity};
use crate::model::yaml;

/// The decimal-looking-mode warning.
pub const DECIMAL_MODE: &str =
    "unreasonable mode would be reasonable if specified in octal; remember to add a leading zero";
const BOOT_DISK: &str = "/dev/disk/by-id/coreos-boot-disk";
const QUADLET_EXTENSION: &str = "unsupported file extension for quadlet: must be one of .container, .volume, .network, .kube, .image, .build, .pod, or .artifact";
const TOO_MANY_SYSTEMD_SOURCES: &str = "only one of the following can be set: contents, contents_local";
/// Ignition's message for a missing or unparsable `ignition.version`.
const UNPARSABLE_VERSION: &str = "invalid config version (couldn't parse)";
/// Go's message for JSON input with no value, which Butane passes on for an empty child config.
const EMPTY_JSON: &str = "unexpected end of JSON input";

/// Validates the Butane source.
pub fn source(cfg: &Config, target: Target) -> Report {
    let mut v = Source { r: Report::default(), target };
    if target.variant == Variant::Fcos && target.fcos_minor >= 6 {
        v.fcos_layout(cfg);
    }
    v.ignition(cfg);
    v.storage(cfg);
    v.systemd(cfg);
    if target.gates().boot_device {
        v.boot_device(&cfg.boot_device);
    }
    if target.gates().grub {
        v.grub(cfg);
    }
    v.r
}

struct Source {
    r: Report,
    target: Target,
}

fn p(keys: &[&str]) -> Path {
    keys.iter().fold(Path::root(), |p, k| p.key(k))
}

/// Parses a child config's text, which as JSON cannot be empty.
fn parse_child(raw: &str) -> Result<yaml::Document, String> {
    if raw.trim().is_empty() {
        return Err(EMPTY_JSON.to_string());
    }
    yaml::parse(raw).map_err(|e| e.message)
}

impl Source {
    fn fcos_layout(&mut self, cfg: &Config) {
        let mirror = &cfg.boot_device.mirror.devices;
        for (i, disk) in cfg.storage.disks.iter().enumerate() {
            if disk.device == BOOT_DISK || disk.wipe_table == Some(true) || mirror.contains(&disk.device) {
                continue;
            }
            for (j, part) in disk.partitions.iter().enumerate() {
                if part.number == 0 && part.label.is_some() {
                    let at = p(&["storage", "disks"]).index(i).key("partitions").index(j).key("number");
                    self.r.warning(at, "partitions cannot be reused by label; number must be specified except on boot disk (/dev/disk/by-id/coreos-boot-disk) or when wipe_table is true");
                }
            }
        }
        for (i, fs) in cfg.storage.filesystems.iter().enumerate() {
            let Some(path) = &fs.path else { continue };
            let allowed = ["/etc", "/var"].iter().any(|base| path == base || crate::model::path::is_below(path, base));
            if fs.with_mount_unit == Some(true) && !allowed {
                let at = p(&["storage", "filesystems"]).index(i).key("path");
                self.r.error(at, "path must be under /etc or /var if with_mount_unit is true");
            }
        }
    }

    fn ignition(&mut self, cfg: &Config) {
        let config = p(&["ignition", "config"]);
        for (i, r) in cfg.ignition.config.merge.iter().enumerate() {
            self.resource(r, &config.key("merge").index(i));
        }
        self.resource(&cfg.ignition.config.replace, &config.key("replace"));
        let cas = p(&["ignition", "security", "tls", "certificate_authorities"]);
        for (i, r) in cfg.ignition.security.tls.certificate_authorities.iter().enumerate() {
            self.resource(r, &cas.index(i));
        }
    }

    fn resource(&mut self, r: &Resource, at: &Path) {
        let present: Vec<&str> =
            [("local", r.local.is_some()), ("inline", r.inline.is_some()), ("source", r.source.is_some())]
                .into_iter()
                .filter_map(|(k, set)| set.then_some(k))
                .collect();
        if present.len() > 1 {
            let last = present[present.len() - 1];
            self.r.error(at.key(last), "only one of the following can be set: inline, local, source");
            return;
        }
        if let (Some(inline), true) = (&r.inline, at.to_string().starts_with("$.ignition.config")) {
            self.child_config(inline, at);
        }
    }

    /// Validates an inline `ignition.config` child as an Ignition config of the target spec.
    /// As in Butane, the child must be JSON of the right types before its version counts: a
    /// child that is not a JSON object, or has a value of the wrong type, is not valid,
    /// whatever its version.
    fn child_config(&mut self, raw: &str, at: &Path) {
        let doc = match parse_child(raw) {
            Ok(doc) => doc,
            Err(message) => return self.invalid_child(message, at),
        };
        if let Some(message) = self.child_type_error(&doc) {
            return self.invalid_child(message, at);
        }
        let version = doc.root.get("ignition").and_then(|i| i.get("version")).and_then(|v| v.as_scalar());
        if version
            .is_some_and(|v| spec::parse_version(v) != Some(self.target.spec) && semver::Version::parse(v).is_ok())
        {
            self.r.warning(
                at.key("version"),
                "skipping validation for the merge/replace ignition config due to an unkown version",
            );
            return;
        }
        match spec::parse_document(&doc) {
            Ok(parsed) => {
                for mut d in parsed.report.entries {
                    d.mark = None;
                    self.r.push(d);
                }
            }
            Err(IgnitionError::Syntax(e)) => self.invalid_child(e.message, at),
            Err(IgnitionError::Types(report)) => {
                let message = report.entries.first().map(|d| d.message.clone()).unwrap_or_default();
                self.invalid_child(message, at);
            }
            Err(IgnitionError::Version(_)) => self.r.error(p(&["ignition", "version"]), UNPARSABLE_VERSION),
        }
    }

    /// The first value of the wrong type in a child config read as the target's Ignition
    /// config, the way Butane unmarshals it (a root that is not an object included).
    fn child_type_error(&self, doc: &yaml::Document) -> Option<String> {
        let mut decoder = Decoder::new(doc, Gates::ignition(self.target.spec.minor));
        Config::decode(&doc.root, &mut decoder, &Path::root());
        decoder.type_errors.into_iter().next().map(|d| d.message)
    }

    fn invalid_child(&mut self, message: String, at: &Path) {
        self.r.push(Diagnostic::new(Severity::Error, None, message).at(Mark { line: 1, col: 1 }, 0));
        self.r.error(at.key("inline"), "config is not valid");
    }

    fn storage(&mut self, cfg: &Config) {
        let st = p(&["storage"]);
        for (i, d) in cfg.storage.directories.iter().enumerate() {
            self.decimal_mode(d.mode, true, &st.key("directories").index(i).key("mode"));
        }
        for (i, f) in cfg.storage.files.iter().enumerate() {
            let at = st.key("files").index(i);
            for (j, a) in f.append.iter().enumerate() {
                self.resource(a, &at.key("append").index(j));
            }
            self.resource(&f.contents, &at.key("contents"));
            self.decimal_mode(f.mode, false, &at.key("mode"));
        }
        for (i, fs) in cfg.storage.filesystems.iter().enumerate() {
            if fs.with_mount_unit != Some(true) {
                continue;
            }
            let at = st.key("filesystems").index(i);
            match fs.format.as_deref().filter(|f| !f.is_empty()) {
                None => self.r.error(at.key("format"), "format is required if with_mount_unit is true"),
                Some(f) if f != "swap" && fs.path.as_deref().is_none_or(str::is_empty) => {
                    self.r.error(at.key("path"), "path is required if with_mount_unit is true and format is not swap")
                }
                Some(_) => {}
            }
        }
        for (i, l) in cfg.storage.luks.iter().enumerate() {
            self.resource(&l.key_file, &st.key("luks").index(i).key("key_file"));
        }
        for (i, t) in cfg.storage.trees.iter().enumerate() {
            if t.local.as_deref().is_none_or(str::is_empty) {
                self.r.error(st.key("trees").index(i), "local is required");
            }
        }
    }

    fn decimal_mode(&mut self, mode: Option<i64>, directory: bool, at: &Path) {
        if mode.is_some_and(|m| looks_decimal(m, directory)) {
            self.r.warning(at.clone(), DECIMAL_MODE);
        }
    }

    fn systemd(&mut self, cfg: &Config) {
        let units = p(&["systemd", "units"]);
        for (i, u) in cfg.systemd.units.iter().enumerate() {
            self.unit(u, &units.index(i));
        }
        let quadlets = p(&["systemd", "quadlets"]);
        for (i, q) in cfg.systemd.quadlets.iter().enumerate() {
            self.quadlet(q, &quadlets.index(i));
        }
    }

    fn unit(&mut self, u: &Unit, at: &Path) {
        if u.contents.is_some() && u.contents_local.is_some() {
            self.r.error(at.key("contents_local"), TOO_MANY_SYSTEMD_SOURCES);
        }
        self.dropins(&u.dropins, at);
    }

    fn dropins(&mut self, dropins: &[Dropin], at: &Path) {
        for (j, d) in dropins.iter().enumerate() {
            if d.contents.is_some() && d.contents_local.is_some() {
                self.r.error(at.key("dropins").index(j).key("contents_local"), TOO_MANY_SYSTEMD_SOURCES);
            }
        }
    }

    fn quadlet(&mut self, q: &Quadlet, at: &Path) {
        let known = crate::model::butane::translate::QUADLET_EXTENSIONS.iter().any(|e| q.name.ends_with(e));
        if !known {
            self.r.error(at.key("name"), QUADLET_EXTENSION);
            return;
        }
        if is_instance(&q.name) {
            for (key, set) in [("contents", q.contents.is_some()), ("contents_local", q.contents_local.is_some())] {
                if set {
                    self.r.error(at.key(key), "template instances cannot have contents or contents_local");
                }
            }
        } else if q.contents.is_some() && q.contents_local.is_some() {
            self.r.error(at.key("contents_local"), TOO_MANY_SYSTEMD_SOURCES);
        }
        self.dropins(&q.dropins, at);
    }

    fn boot_device(&mut self, bd: &BootDevice) {
        let at = p(&["boot_device"]);
        let fcos = self.target.fcos_minor;
        let mirrored = !bd.mirror.devices.is_empty();
        if mirrored && bd.layout.is_none() {
            let msg = "boot_device.layout should be specified when boot_device.mirror is specified";
            if fcos >= 7 { self.r.error(at.key("mirror"), msg) } else { self.r.warning(at.key("mirror"), msg) }
        }
        if let Some(layout) = bd.layout.as_deref() {
            self.layout(bd, layout, fcos, &at);
        }
        let luks = &bd.luks;
        if luks.cex.enabled == Some(true) {
            let msg = "when using cex the targeted architecture must match s390x";
            match bd.layout.as_deref() {
                None => self.r.error(at.key("luks").key("cex"), msg),
                Some(l) if !l.starts_with("s390x") => self.r.error(at.key("layout"), msg),
                Some(_) => {}
            }
            if !luks.tang.is_empty() || luks.tpm2 == Some(true) {
                self.r.error(at.key("luks"), "cannot use cex with clevis");
            }
        }
        if fcos >= 7 && luks.device.as_deref().is_some_and(|d| !d.is_empty()) {
            let method = luks.tpm2 == Some(true) || !luks.tang.is_empty() || luks.cex.enabled == Some(true);
            if !method {
                self.r.error(at.key("luks").key("luks"), "no method specified for luks");
            }
        }
        // Butane checks the mirror twice: once explicitly and once in its struct walk.
        for _ in 0..2 {
            if bd.mirror.devices.len() == 1 {
                self.r.error(at.key("mirror").key("devices"), "mirroring requires at least two devices");
            }
        }
    }

    fn layout(&mut self, bd: &BootDevice, layout: &str, fcos: u8, at: &Path) {
        let at = at.key("layout");
        let device = bd.luks.device.as_deref().unwrap_or("");
        let s390x = fcos >= 6;
        match layout {
            "aarch64" | "ppc64le" | "x86_64" => {}
            "s390x-eckd" | "s390x-zfcp" if s390x => {
                let prefix = if layout == "s390x-eckd" { "/dev/dasd" } else { "/dev/sd" };
                if device.is_empty() {
                    self.r.error(at.clone(), "device is required for layouts: s390x-eckd, s390x-zfcp");
                } else if !device_matches(device, prefix) {
                    self.r.error(
                        at.clone(),
                        "device name must start with /dev/dasd on s390x-eckd layout or /dev/sd on s390x-zfcp layout",
                    );
                }
            }
            "s390x-virt" if s390x => {}
            _ if s390x => self.r.error(
                at.clone(),
                "layout must be one of: aarch64, ppc64le, s390x-eckd, s390x-virt, s390x-zfcp, x86_64",
            ),
            _ => self.r.error(at.clone(), "layout must be one of: aarch64, ppc64le, x86_64"),
        }
        if layout.starts_with("s390x") && !bd.mirror.devices.is_empty() {
            self.r.error(at, "mirroring not supported on layouts: s390x-eckd, s390x-zfcp, s390x-virt");
        }
    }

    fn grub(&mut self, cfg: &Config) {
        for (i, u) in cfg.grub.users.iter().enumerate() {
            let at = p(&["grub", "users"]).index(i);
            if u.name.is_empty() {
                self.r.error(at.key("name"), "field \"name\" is required");
            }
            if u.password_hash.as_deref().is_none_or(str::is_empty) {
                self.r.error(at.key("password_hash"), "field \"password_hash\" is required");
            }
        }
    }
}

/// `<prefix>[a-z]` at the end of the device name (Butane's unanchored regex).
fn device_matches(device: &str, prefix: &str) -> bool {
    let b = device.as_bytes();
    b.len() > prefix.len() && b[b.len() - 1].is_ascii_lowercase() && device[..device.len() - 1].ends_with(prefix)
}

/// Butane's `CheckForDecimalMode`: the mode reads as a typical one only when its decimal digits
/// are taken as octal.
pub fn looks_decimal(mode: i64, directory: bool) -> bool {
    decimal_to_octal(mode).is_some_and(|octal| !is_typical(mode, directory) && is_typical(octal, directory))
}

fn decimal_to_octal(mode: i64) -> Option<i64> {
    if !(0..=7777).contains(&mode) {
        return None;
    }
    let digits = [mode / 1000, mode / 100 % 10, mode / 10 % 10, mode % 10];
    digits.iter().try_fold(0, |acc, &d| (d <= 7).then_some(acc * 8 + d))
}

fn is_typical(mode: i64, directory: bool) -> bool {
    if mode == 0 {
        return true;
    }
    let (mut had_r, mut had_w, mut had_x) = (false, false, false);
    for perm in [mode & 7, (mode >> 3) & 7, (mode >> 6) & 7] {
        let (r, w, x) = (perm & 4 != 0, perm & 2 != 0, perm & 1 != 0);
        if (!r && had_r) || (!w && had_w) || (!x && had_x) || (x && had_r && !had_x) || ((w || x) && !r) {
            return false;
        }
        had_r |= r;
        had_w |= w;
        had_x |= x;
    }
    if !had_r {
        return false;
    }
    if directory {
        had_x && mode & 0o4000 == 0 && (mode & 0o3000 == 0 || had_w)
    } else {
        (mode & 0o6000 == 0 || (had_x && mode & 2 == 0)) && mode & 0o1000 == 0
    }
}

/// The variant's field filters over the generated config, at output paths.
pub fn filters(out: &Config, target: Target) -> Report {
    let mut r = Report::default();
    let st = p(&["storage"]);
    match target.variant {
        Variant::Flatcar => {
            let experimental = target.spec.experimental;
            for (i, l) in out.storage.luks.iter().enumerate() {
                let at = st.key("luks").index(i);
                if !experimental && !l.clevis.is_zero() {
                    r.error(at.key("clevis"), "clevis is not supported in this spec version");
                }
                if experimental && !l.cex.is_zero() {
                    r.error(at.key("cex"), "cex is not currently supported on the target platform");
                }
            }
        }
        Variant::R4e | Variant::Fiot => {
            let checks = [
                (
                    out.kernel_arguments.is_zero(),
                    p(&["kernelArguments"]),
                    "kernel argument customization is not supported in this spec version",
                ),
                (
                    out.storage.disks.is_empty(),
                    st.key("disks"),
                    "disk customization is not supported in this spec version",
                ),
                (
                    out.storage.filesystems.is_empty(),
                    st.key("filesystems"),
                    "filesystem customization is not supported in this spec version",
                ),
                (out.storage.luks.is_empty(), st.key("luks"), "luks is not supported in this spec version"),
                (out.storage.raid.is_empty(), st.key("raid"), "raid is not supported in this spec version"),
            ];
            for (empty, at, msg) in checks {
                if !empty {
                    r.error(at, msg);
                }
            }
        }
        Variant::Fcos => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_modes() {
        let cases = [
            (644, false, true),
            (755, false, true),
            (600, false, true),
            (420, false, false),
            (0o644, false, false),
            (777, true, true),
            (0, false, false),
            (8888, false, false),
        ];
        for (mode, dir, want) in cases {
            assert_eq!(looks_decimal(mode, dir), want, "case {mode} dir={dir}");
        }
    }

    #[test]
    fn s390x_device_names() {
        assert!(device_matches("/dev/dasda", "/dev/dasd"));
        assert!(!device_matches("/dev/dasd1", "/dev/dasd"));
        assert!(device_matches("/dev/sdb", "/dev/sd"));
    }
}

#[cfg(test)]
mod rule_tests {
    //! One labelled case per Butane-side rule: the message, its path and its line.

    use crate::model::butane::{Failure, render};
    use crate::model::report::Report;

    fn findings(src: &str) -> Report {
        match render(src, None) {
            Ok(r) => r.report,
            Err(Failure::Invalid { report, .. }) => report,
            Err(other) => panic!("unexpected failure {other:?} for {src}"),
        }
    }

    #[test]
    fn source_rules() {
        let cases = [
            (
                "only one source",
                "1.6.0",
                "storage:\n  files:\n    - path: /a\n      contents:\n        inline: x\n        source: https://e.x/a\n",
                "$.storage.files.0.contents.source",
                8,
                "only one of the following can be set: inline, local, source",
            ),
            (
                "contents and contents_local",
                "1.6.0",
                "systemd:\n  units:\n    - name: a.service\n      contents: x\n      contents_local: y\n",
                "$.systemd.units.0.contents_local",
                7,
                "only one of the following can be set: contents, contents_local",
            ),
            (
                "mount unit needs format",
                "1.6.0",
                "storage:\n  filesystems:\n    - device: /dev/vdb\n      path: /var/x\n      with_mount_unit: true\n",
                "$.storage.filesystems.0.format",
                5,
                "format is required if with_mount_unit is true",
            ),
            (
                "mount unit needs path",
                "1.6.0",
                "storage:\n  filesystems:\n    - device: /dev/vdb\n      format: xfs\n      with_mount_unit: true\n",
                "$.storage.filesystems.0.path",
                5,
                "path is required if with_mount_unit is true and format is not swap",
            ),
            (
                "mount under /etc or /var",
                "1.6.0",
                "storage:\n  filesystems:\n    - device: /dev/vdb\n      format: xfs\n      path: /srv\n      with_mount_unit: true\n",
                "$.storage.filesystems.0.path",
                7,
                "path must be under /etc or /var if with_mount_unit is true",
            ),
            (
                "quadlet extension",
                "1.8.0-experimental",
                "systemd:\n  quadlets:\n    - name: a.service\n",
                "$.systemd.quadlets.0.name",
                5,
                "unsupported file extension for quadlet: must be one of .container, .volume, .network, .kube, .image, .build, .pod, or .artifact",
            ),
            (
                "grub name",
                "1.6.0",
                "grub:\n  users:\n    - password_hash: x\n",
                "$.grub.users.0.name",
                5,
                "field \"name\" is required",
            ),
            (
                "layout",
                "1.6.0",
                "boot_device:\n  layout: sparc\n",
                "$.boot_device.layout",
                4,
                "layout must be one of: aarch64, ppc64le, s390x-eckd, s390x-virt, s390x-zfcp, x86_64",
            ),
            (
                "s390x needs device",
                "1.6.0",
                "boot_device:\n  layout: s390x-eckd\n  luks:\n    tpm2: true\n",
                "$.boot_device.layout",
                4,
                "device is required for layouts: s390x-eckd, s390x-zfcp",
            ),
            (
                "cex needs s390x",
                "1.6.0",
                "boot_device:\n  layout: x86_64\n  luks:\n    cex:\n      enabled: true\n",
                "$.boot_device.layout",
                4,
                "when using cex the targeted architecture must match s390x",
            ),
            (
                "decimal mode",
                "1.6.0",
                "storage:\n  files:\n    - path: /a\n      mode: 755\n",
                "$.storage.files.0.mode",
                6,
                super::DECIMAL_MODE,
            ),
            (
                "tree local required",
                "1.6.0",
                "storage:\n  trees:\n    - path: /x\n",
                "$.storage.trees.0",
                5,
                "local is required",
            ),
            (
                "child of another version",
                "1.6.0",
                "ignition:\n  config:\n    replace:\n      inline: '{\"ignition\": {\"version\": \"3.4.0\"}}'\n",
                "$.ignition.config.replace.version",
                6,
                "skipping validation for the merge/replace ignition config due to an unkown version",
            ),
            (
                "invalid child",
                "1.6.0",
                "ignition:\n  config:\n    merge:\n      - inline: '{\"ignition\": {\"version\": \"3.5.0\"}, \"storage\": {\"files\": [{\"path\": \"rel\"}]}}'\n",
                "$.storage.files.0.path",
                1,
                "path not absolute",
            ),
            (
                "unparsable child",
                "1.6.0",
                "ignition:\n  config:\n    merge:\n      - inline: '{nope'\n",
                "$.ignition.config.merge.0.inline",
                6,
                "config is not valid",
            ),
        ];
        for (label, version, body, path, line, message) in cases {
            let src = format!("variant: fcos\nversion: {version}\n{body}");
            let report = findings(&src);
            let found = report.entries.iter().any(|d| {
                d.path.as_ref().map(ToString::to_string).as_deref() == Some(path)
                    && d.mark.map(|m| m.line) == Some(line)
                    && d.message == message
            });
            let got: Vec<String> = report.entries.iter().map(|d| d.raw_line()).collect();
            assert!(found, "case {label}: want {path} line {line}: {message}\n got {got:#?}");
        }
    }

    /// Whether a line of ours says what Butane's says: the same line, or, where Butane's message
    /// is Go's JSON decoder naming Go types (`json: cannot unmarshal ...`), one at the same place.
    fn says_what_butane_says(ours: &str, butane: &str) -> bool {
        match butane.split_once(": json: ") {
            Some((place, _)) => ours.split_once(": ").is_some_and(|(at, _)| at == place),
            None => ours == butane,
        }
    }

    #[test]
    fn child_configs_must_be_json_objects_of_the_right_types_before_their_version_counts() {
        // The expected lines are the reference Butane's (v0.29, `butane --strict --raw-errors`)
        // for each child in `ignition: {config: {merge: [{inline: CHILD}]}}` of an fcos 1.5.0
        // config.
        let not_valid = "error at $.ignition.config.merge.0.inline, line 3 col 38: config is not valid";
        let cases: [(&str, &[&str]); 7] = [
            (
                "'[1]'",
                &["error at line 1 col 1: json: cannot unmarshal array into Go value of type types.Config", not_valid],
            ),
            (
                "'true'",
                &["error at line 1 col 1: json: cannot unmarshal bool into Go value of type types.Config", not_valid],
            ),
            ("''", &["error at line 1 col 1: unexpected end of JSON input", not_valid]),
            (
                r#"'{"ignition": {"version": 5}}'"#,
                &[
                    "error at line 1 col 1: json: cannot unmarshal number into Go struct field Ignition.ignition.version of type string",
                    not_valid,
                ],
            ),
            (
                r#"'{"storage": {"files": 1}}'"#,
                &[
                    "error at line 1 col 1: json: cannot unmarshal number into Go struct field Storage.storage.files of type []types.File",
                    not_valid,
                ],
            ),
            (
                r#"'{"ignition": {"version": "3.0.0"}, "storage": {"files": 1}}'"#,
                &[
                    "error at line 1 col 1: json: cannot unmarshal number into Go struct field Storage.storage.files of type []types.File",
                    not_valid,
                ],
            ),
            ("'{}'", &["error at $.ignition.version, line 3 col 11: invalid config version (couldn't parse)"]),
        ];
        for (child, butane) in cases {
            let src =
                format!("variant: fcos\nversion: 1.5.0\nignition: {{config: {{merge: [{{inline: {child}}}]}}}}\n");
            let ours: Vec<String> = findings(&src).entries.iter().map(|d| d.raw_line()).collect();
            let same = ours.len() == butane.len() && ours.iter().zip(butane).all(|(o, b)| says_what_butane_says(o, b));
            assert!(same, "child {child}: Butane says {butane:#?}\n we say {ours:#?}");
        }
    }

    #[test]
    fn variant_filters() {
        let cases = [
            (
                "r4e",
                "1.1.0",
                "kernel_arguments:\n  should_exist: [quiet]\n",
                "$.kernel_arguments",
                "kernel argument customization is not supported in this spec version",
            ),
            (
                "fiot",
                "1.0.0",
                "storage:\n  raid:\n    - name: md\n      level: raid1\n      devices: [/dev/a]\n",
                "$.storage.raid",
                "raid is not supported in this spec version",
            ),
            (
                "flatcar",
                "1.0.0",
                "storage:\n  luks:\n    - name: d\n      device: /dev/vdb\n      clevis:\n        tpm2: false\n",
                "$.storage.luks.0.clevis",
                "clevis is not supported in this spec version",
            ),
        ];
        for (variant, version, body, path, message) in cases {
            let src = format!("variant: {variant}\nversion: {version}\n{body}");
            let report = findings(&src);
            let found = report
                .entries
                .iter()
                .any(|d| d.path.as_ref().map(ToString::to_string).as_deref() == Some(path) && d.message == message);
            assert!(found, "case {variant}: {:#?}", report.entries);
        }
    }
}
