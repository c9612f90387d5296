//! The keys Podman's Quadlet generator accepts, per file type and section: a built-in table, so
//! that a misspelt key (`Imgae=`) is caught where Podman is not installed too.
//!
//! The table is Podman 5's: every key that podman-systemd.unit(5) documents for Podman 5.0 to
//! 5.8 and its development branch, plus the keys that Podman 5.4's generator still accepts
//! without documenting them (the deprecated `RemapUsers=` family, `VolatileTmp=`, `LogOpt=` in
//! `.kube` files). A key from a newer Podman than the host's passes here; the host's generator,
//! when installed, has the last word.
//!
//! What the generator checks, and so what is checked here:
//! - the file type's own section (`[Container]` in a `.container` file, …) and `[Quadlet]`
//!   accept only their keys, spelt exactly (keys are case-sensitive);
//! - `[Unit]`, `[Service]` and `[Install]` pass through to systemd, and so does a `X-` section:
//!   their keys are systemd's business, not this table's;
//! - a section that neither Podman nor systemd knows (`[Contianer]`) is a mistake;
//! - a key before the first section makes the file unreadable for the generator.
//!
//! A drop-in (`web.container.d/10-x.conf`, or `container.d/…` for every file of a type) is
//! checked as part of the file type it extends.

use crate::model::spelling;

/// One Quadlet file type: its extension, its own section and the keys that section accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuadletType {
    /// The file extension, without the dot.
    pub extension: &'static str,
    /// The section Podman reads, e.g. `Container`.
    pub section: &'static str,
    /// The keys that section accepts.
    pub keys: &'static [&'static str],
}

/// Every Quadlet file type and its keys.
pub const TYPES: &[QuadletType] = &[
    QuadletType { extension: "container", section: "Container", keys: CONTAINER },
    QuadletType { extension: "pod", section: "Pod", keys: POD },
    QuadletType { extension: "kube", section: "Kube", keys: KUBE },
    QuadletType { extension: "network", section: "Network", keys: NETWORK },
    QuadletType { extension: "volume", section: "Volume", keys: VOLUME },
    QuadletType { extension: "image", section: "Image", keys: IMAGE },
    QuadletType { extension: "build", section: "Build", keys: BUILD },
    QuadletType { extension: "artifact", section: "Artifact", keys: ARTIFACT },
];

/// The `[Quadlet]` section's keys, in every file type.
pub const QUADLET_SECTION_KEYS: &[&str] = &["DefaultDependencies"];

/// The sections passed through to systemd's generated service.
pub const SYSTEMD_SECTIONS: &[&str] = &["Unit", "Service", "Install"];

const CONTAINER: &[&str] = &[
    "AddCapability",
    "AddDevice",
    "AddHost",
    "Annotation",
    "AppArmor",
    "AutoUpdate",
    "CgroupsMode",
    "ContainerName",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "DropCapability",
    "Entrypoint",
    "Environment",
    "EnvironmentFile",
    "EnvironmentHost",
    "Exec",
    "ExposeHostPort",
    "GIDMap",
    "GlobalArgs",
    "Group",
    "GroupAdd",
    "HealthCmd",
    "HealthInterval",
    "HealthLogDestination",
    "HealthMaxLogCount",
    "HealthMaxLogSize",
    "HealthOnFailure",
    "HealthRetries",
    "HealthStartPeriod",
    "HealthStartupCmd",
    "HealthStartupInterval",
    "HealthStartupRetries",
    "HealthStartupSuccess",
    "HealthStartupTimeout",
    "HealthTimeout",
    "HostName",
    "HttpProxy",
    "IP",
    "IP6",
    "Image",
    "Label",
    "LogDriver",
    "LogOpt",
    "Mask",
    "Memory",
    "Mount",
    "Network",
    "NetworkAlias",
    "NoNewPrivileges",
    "Notify",
    "PidsLimit",
    "Pod",
    "PodmanArgs",
    "PublishPort",
    "Pull",
    "ReadOnly",
    "ReadOnlyTmpfs",
    "ReloadCmd",
    "ReloadSignal",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "Retry",
    "RetryDelay",
    "Rootfs",
    "RunInit",
    "SeccompProfile",
    "Secret",
    "SecurityLabelDisable",
    "SecurityLabelFileType",
    "SecurityLabelLevel",
    "SecurityLabelNested",
    "SecurityLabelType",
    "ServiceName",
    "ShmSize",
    "StartWithPod",
    "StopSignal",
    "StopTimeout",
    "SubGIDMap",
    "SubUIDMap",
    "Sysctl",
    "Timezone",
    "Tmpfs",
    "UIDMap",
    "Ulimit",
    "Unmask",
    "User",
    "UserNS",
    "VolatileTmp",
    "Volume",
    "WorkingDir",
];

const POD: &[&str] = &[
    "AddHost",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "ExitPolicy",
    "GIDMap",
    "GlobalArgs",
    "HostName",
    "IP",
    "IP6",
    "Label",
    "Network",
    "NetworkAlias",
    "PodName",
    "PodmanArgs",
    "PublishPort",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "ServiceName",
    "ShmSize",
    "StopTimeout",
    "SubGIDMap",
    "SubUIDMap",
    "UIDMap",
    "UserNS",
    "Volume",
];

const KUBE: &[&str] = &[
    "AutoUpdate",
    "ConfigMap",
    "ContainersConfModule",
    "ExitCodePropagation",
    "GlobalArgs",
    "KubeDownForce",
    "LogDriver",
    "LogOpt",
    "Network",
    "PodmanArgs",
    "PublishPort",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "ServiceName",
    "SetWorkingDirectory",
    "UserNS",
    "Yaml",
];

const NETWORK: &[&str] = &[
    "ContainersConfModule",
    "DNS",
    "DisableDNS",
    "Driver",
    "Gateway",
    "GlobalArgs",
    "IPAMDriver",
    "IPRange",
    "IPv6",
    "InterfaceName",
    "Internal",
    "Label",
    "NetworkDeleteOnStop",
    "NetworkName",
    "Options",
    "PodmanArgs",
    "ServiceName",
    "Subnet",
];

const VOLUME: &[&str] = &[
    "ContainersConfModule",
    "Copy",
    "Device",
    "Driver",
    "GID",
    "GlobalArgs",
    "Group",
    "Image",
    "Label",
    "Options",
    "PodmanArgs",
    "ServiceName",
    "Type",
    "UID",
    "User",
    "VolumeName",
];

const IMAGE: &[&str] = &[
    "AllTags",
    "Arch",
    "AuthFile",
    "CertDir",
    "ContainersConfModule",
    "Creds",
    "DecryptionKey",
    "GlobalArgs",
    "Image",
    "ImageTag",
    "OS",
    "PodmanArgs",
    "Policy",
    "Retry",
    "RetryDelay",
    "ServiceName",
    "TLSVerify",
    "Variant",
];

const BUILD: &[&str] = &[
    "Annotation",
    "Arch",
    "AuthFile",
    "BuildArg",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "Environment",
    "File",
    "ForceRM",
    "GlobalArgs",
    "GroupAdd",
    "IgnoreFile",
    "ImageTag",
    "Label",
    "Network",
    "PodmanArgs",
    "Pull",
    "Retry",
    "RetryDelay",
    "Secret",
    "ServiceName",
    "SetWorkingDirectory",
    "TLSVerify",
    "Target",
    "Variant",
    "Volume",
];

const ARTIFACT: &[&str] = &[
    "Artifact",
    "AuthFile",
    "CertDir",
    "ContainersConfModule",
    "Creds",
    "DecryptionKey",
    "GlobalArgs",
    "PodmanArgs",
    "Quiet",
    "Retry",
    "RetryDelay",
    "ServiceName",
    "TLSVerify",
];

/// The file type of `extension` (`container`, `volume`, …).
pub fn quadlet_type(extension: &str) -> Option<&'static QuadletType> {
    TYPES.iter().find(|t| t.extension == extension)
}

/// Whether `section` of a file of type `ty` accepts `key`; `None` when the table has no say
/// over that section (systemd's sections, `X-` sections, another type's section).
pub fn accepts(ty: &QuadletType, section: &str, key: &str) -> Option<bool> {
    if section == ty.section {
        Some(ty.keys.contains(&key))
    } else if section == "Quadlet" {
        Some(QUADLET_SECTION_KEYS.contains(&key))
    } else {
        None
    }
}

/// One mistake in a Quadlet file, at a line (counted from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIssue {
    /// The line.
    pub line: usize,
    /// What is wrong, and the likely fix.
    pub message: String,
}

/// The mistakes the table finds in `text`, a Quadlet file (or a drop-in of one) of type `ty`.
pub fn check(ty: &QuadletType, text: &str) -> Vec<KeyIssue> {
    let mut issues = Vec::new();
    let mut section: Option<&str> = None;
    for (line, entry) in entries(text) {
        match entry {
            Entry::Section(name) => {
                if !is_known_section(name) {
                    issues.push(KeyIssue { line, message: unknown_section(ty, name) });
                }
                section = Some(name);
            }
            Entry::Key(key) => match section {
                None => issues.push(KeyIssue {
                    line,
                    message: format!(
                        "`{key}=` stands before any section: a Quadlet file starts with a section such as `[{}]`",
                        ty.section
                    ),
                }),
                Some(section) if accepts(ty, section, key) == Some(false) => {
                    issues.push(KeyIssue { line, message: unknown_key(ty, section, key) });
                }
                Some(_) => {}
            },
        }
    }
    issues
}

fn is_known_section(name: &str) -> bool {
    SYSTEMD_SECTIONS.contains(&name)
        || name == "Quadlet"
        || name.starts_with("X-")
        || TYPES.iter().any(|t| t.section == name)
}

fn unknown_section(ty: &QuadletType, name: &str) -> String {
    let known = std::iter::once(ty.section).chain(SYSTEMD_SECTIONS.iter().copied()).chain(["Quadlet"]);
    let mut message = format!("unknown section `[{name}]` in a .{} file", ty.extension);
    if let Some(close) = spelling::closest(name, known) {
        message.push_str(&format!("; did you mean `[{close}]`?"));
    }
    message
}

fn unknown_key(ty: &QuadletType, section: &str, key: &str) -> String {
    let keys = if section == "Quadlet" { QUADLET_SECTION_KEYS } else { ty.keys };
    let mut message = format!("unknown key `{key}` in [{section}]");
    match spelling::closest(key, keys.iter().copied()) {
        Some(close) => message.push_str(&format!("; did you mean `{close}`?")),
        None => message.push_str(&format!(" (podman-systemd.unit(5) lists the keys of a .{} file)", ty.extension)),
    }
    message
}

/// One meaningful line of a unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry<'a> {
    /// `[Name]`.
    Section(&'a str),
    /// `Key=…` (the key only).
    Key(&'a str),
}

/// The sections and keys of unit-file text with their line numbers: comments (`#`, `;`), blank
/// lines and the continuation lines of a value ending in `\` are skipped, as systemd does.
fn entries(text: &str) -> Vec<(usize, Entry<'_>)> {
    let mut out = Vec::new();
    let mut continued = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if continued {
            if !line.starts_with(['#', ';']) {
                continued = line.ends_with('\\');
            }
            continue;
        }
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.split_once(']')).map(|(name, _)| name) {
            out.push((index + 1, Entry::Section(name)));
        } else if let Some((key, value)) = line.split_once('=') {
            continued = value.ends_with('\\');
            out.push((index + 1, Entry::Key(key.trim_end())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(extension: &str, text: &str) -> Vec<(usize, String)> {
        check(quadlet_type(extension).unwrap(), text).into_iter().map(|i| (i.line, i.message)).collect()
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line_and_the_likely_key() {
        let text = "[Unit]\nDescription=web\n\n[Container]\nImgae=docker.io/library/caddy\nPublishPort=80:80\n";
        assert_eq!(
            issues("container", text),
            [(5, "unknown key `Imgae` in [Container]; did you mean `Image`?".into())]
        );
    }

    /// A file type, a file's text, and the issues expected at their lines.
    type Case<'a> = (&'a str, &'a str, &'a [(usize, &'a str)]);

    #[test]
    fn each_type_checks_its_own_section_and_quadlet() {
        let cases: &[Case] = &[
            ("volume", "[Volume]\nVolumeName=data\nImage=x\n", &[]),
            (
                "pod",
                "[Pod]\nImage=x\n",
                &[(2, "unknown key `Image` in [Pod] (podman-systemd.unit(5) lists the keys of a .pod file)")],
            ),
            (
                "network",
                "[Network]\nSubnet=10.0.0.0/24\nSubnett=x\n",
                &[(3, "unknown key `Subnett` in [Network]; did you mean `Subnet`?")],
            ),
            (
                "container",
                "[Container]\nImage=x\n[Quadlet]\nDefaultDependency=false\n",
                &[(4, "unknown key `DefaultDependency` in [Quadlet]; did you mean `DefaultDependencies`?")],
            ),
            (
                "container",
                "[Container]\nimage=x\n",
                &[(2, "unknown key `image` in [Container]; did you mean `Image`?")],
            ),
            ("kube", "[Kube]\nYaml=/k.yaml\nLogOpt=tag=x\n", &[]),
            ("artifact", "[Artifact]\nArtifact=quay.io/a:1\nQuiet=true\n", &[]),
        ];
        for (extension, text, want) in cases {
            let want: Vec<(usize, String)> = want.iter().map(|(l, m)| (*l, m.to_string())).collect();
            assert_eq!(issues(extension, text), want, "{extension}: {text:?}");
        }
    }

    #[test]
    fn systemd_and_extension_sections_are_not_this_tables_business() {
        let text = "[Unit]\nFooBar=1\n[Service]\nRestart=always\n[Install]\nWantedBy=default.target\n[X-Mine]\nAnything=1\n[Container]\nImage=x\n";
        assert_eq!(issues("container", text), []);
    }

    #[test]
    fn unknown_sections_and_keys_before_any_section_are_mistakes() {
        assert_eq!(
            issues("container", "Image=x\n[Contianer]\nImage=x\n"),
            [
                (
                    1,
                    "`Image=` stands before any section: a Quadlet file starts with a section such as `[Container]`"
                        .into()
                ),
                (2, "unknown section `[Contianer]` in a .container file; did you mean `[Container]`?".into()),
            ]
        );
    }

    #[test]
    fn comments_blank_lines_and_continuations_are_skipped() {
        let text =
            "# Imgae=x\n; Imgae=x\n\n[Container]\nImage=x\nExec=sleep \\\n  Imgae=1 \\\n# Imgae=y\n  10\n  Imgae=z\n";
        assert_eq!(
            issues("container", text),
            [(10, "unknown key `Imgae` in [Container]; did you mean `Image`?".into())]
        );
    }
}
