//! The registry of Butane variants and versions, and the Ignition spec each one emits.
//!
//! Lookup is an exact match on variant and semantic version, as in Butane's `config.go`;
//! experimental versions match only their exact string. Stable versions are frozen: their
//! entry never changes meaning.

use crate::model::decode::{Dialect, Gates};

/// A Butane variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Fedora CoreOS.
    Fcos,
    /// Flatcar Container Linux.
    Flatcar,
    /// RHEL for Edge.
    R4e,
    /// Fedora IoT.
    Fiot,
}

impl Variant {
    /// The name used in the `variant` key.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Fcos => "fcos",
            Variant::Flatcar => "flatcar",
            Variant::R4e => "r4e",
            Variant::Fiot => "fiot",
        }
    }
}

/// An Ignition spec version: `3.minor.0`, possibly experimental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spec {
    /// The minor number.
    pub minor: u8,
    /// Whether this is `3.minor.0-experimental`.
    pub experimental: bool,
}

impl Spec {
    /// The version string written to `ignition.version`.
    pub fn version(self) -> String {
        if self.experimental { format!("3.{}.0-experimental", self.minor) } else { format!("3.{}.0", self.minor) }
    }

    /// Whether data URLs carry a `compression` key and may be gzipped (not in spec 3.0).
    pub fn has_compression(self) -> bool {
        self.minor >= 1
    }

    /// Whether setuid/setgid/sticky bits take effect (spec ≥ 3.6).
    pub fn honors_special_mode_bits(self) -> bool {
        self.minor >= 6
    }
}

/// What a (variant, version) pair selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The variant.
    pub variant: Variant,
    /// fcos-equivalent minor version of the variant's schema (fcos 1.N → N).
    pub fcos_minor: u8,
    /// The spec the output uses.
    pub spec: Spec,
}

impl Target {
    /// Field gates for decoding this target's Butane schema.
    pub fn gates(self) -> Gates {
        let fcos = self.variant == Variant::Fcos;
        Gates {
            dialect: Dialect::Butane,
            level: self.spec.minor + 1,
            boot_device: fcos && self.fcos_minor >= 3,
            grub: fcos && self.fcos_minor >= 5,
            fcos_level: if fcos { self.fcos_minor } else { 0 },
        }
    }
}

const fn spec(minor: u8) -> Spec {
    Spec { minor, experimental: false }
}

const EXPERIMENTAL: Spec = Spec { minor: 7, experimental: true };

/// (variant, version, fcos-equivalent minor, spec)
const REGISTRY: &[(Variant, &str, u8, Spec)] = &[
    (Variant::Fcos, "1.0.0", 0, spec(0)),
    (Variant::Fcos, "1.1.0", 1, spec(1)),
    (Variant::Fcos, "1.2.0", 2, spec(2)),
    (Variant::Fcos, "1.3.0", 3, spec(2)),
    (Variant::Fcos, "1.4.0", 4, spec(3)),
    (Variant::Fcos, "1.5.0", 5, spec(4)),
    (Variant::Fcos, "1.6.0", 6, spec(5)),
    (Variant::Fcos, "1.7.0", 7, spec(6)),
    (Variant::Fcos, "1.8.0-experimental", 8, EXPERIMENTAL),
    (Variant::Flatcar, "1.0.0", 4, spec(3)),
    (Variant::Flatcar, "1.1.0", 5, spec(4)),
    (Variant::Flatcar, "1.2.0-experimental", 8, EXPERIMENTAL),
    (Variant::R4e, "1.0.0", 4, spec(3)),
    (Variant::R4e, "1.1.0", 5, spec(4)),
    (Variant::R4e, "1.2.0-experimental", 8, EXPERIMENTAL),
    (Variant::Fiot, "1.0.0", 5, spec(4)),
    (Variant::Fiot, "1.1.0-experimental", 8, EXPERIMENTAL),
];

/// Why no translator could be chosen. The texts are Butane's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No `variant` key.
    #[error("error parsing variant; must be specified")]
    NoVariant,
    /// `version` is missing or not a semantic version.
    #[error("error parsing version; must be a valid semver")]
    BadVersion,
    /// The removed `rhcos` variant.
    #[error(
        "rhcos variant has been removed; use openshift variant instead: https://coreos.github.io/butane/upgrading-openshift/"
    )]
    Rhcos,
    /// The `openshift` variant, whose MachineConfig output CoreOps does not produce.
    #[error("the openshift variant is not supported by core-ops; use butane for MachineConfigs")]
    Openshift,
    /// Any other pair.
    #[error("No translator exists for variant {0} with version {1}")]
    Unknown(String, String),
}

/// Chooses the target for a `variant` and `version` as written in the config.
pub fn select(variant: Option<&str>, version: Option<&str>) -> Result<Target, SelectError> {
    let variant = variant.filter(|v| !v.is_empty()).ok_or(SelectError::NoVariant)?;
    let version = version.unwrap_or("");
    let parsed = semver::Version::parse(version).map_err(|_| SelectError::BadVersion)?;
    match variant {
        "rhcos" => return Err(SelectError::Rhcos),
        "openshift" => return Err(SelectError::Openshift),
        _ => {}
    }
    let canonical = parsed.to_string();
    REGISTRY
        .iter()
        .find(|(v, ver, _, _)| v.name() == variant && *ver == canonical)
        .map(|&(variant, _, fcos_minor, spec)| Target { variant, fcos_minor, spec })
        .ok_or_else(|| SelectError::Unknown(variant.to_string(), canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_each_registered_pair() {
        for (variant, version, _, spec) in REGISTRY {
            let t = select(Some(variant.name()), Some(version)).unwrap();
            assert_eq!(t.spec, *spec, "case {} {version}", variant.name());
        }
    }

    #[test]
    fn rejects_like_butane() {
        let cases = [
            (None, Some("1.6.0"), "error parsing variant; must be specified"),
            (Some("fcos"), None, "error parsing version; must be a valid semver"),
            (Some("fcos"), Some("1.6"), "error parsing version; must be a valid semver"),
            (Some("coreos"), Some("1.6.0"), "No translator exists for variant coreos with version 1.6.0"),
            (
                Some("fcos"),
                Some("1.7.0-experimental"),
                "No translator exists for variant fcos with version 1.7.0-experimental",
            ),
        ];
        for (variant, version, want) in cases {
            assert_eq!(select(variant, version).unwrap_err().to_string(), want, "case {variant:?} {version:?}");
        }
        assert_eq!(select(Some("fcos"), Some("1.6.0")).unwrap().spec.version(), "3.5.0");
        assert_eq!(select(Some("fcos"), Some("1.8.0-experimental")).unwrap().spec.version(), "3.7.0-experimental");
    }
}
