//! SemVer intents and the version rule: the last release bumped by the highest intent, with the
//! pre-1.0 rule; and the `[package] version` line of `Cargo.toml`.
//!
//! Pure: it takes text and versions and never reads a file.

use semver::Version;

use crate::problem::Problem;

/// The file the crate's version lives in.
pub const CARGO_TOML: &str = "Cargo.toml";

/// A change's SemVer intent. Ordered from the smallest to the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

/// The intents, as written in front matter.
pub const BUMP_NAMES: [&str; 3] = ["major", "minor", "patch"];

impl Bump {
    /// Parses `major`, `minor` or `patch`.
    pub fn parse(text: &str) -> Option<Bump> {
        match text {
            "major" => Some(Bump::Major),
            "minor" => Some(Bump::Minor),
            "patch" => Some(Bump::Patch),
            _ => None,
        }
    }

    /// The word written in front matter.
    pub fn name(self) -> &'static str {
        match self {
            Bump::Major => "major",
            Bump::Minor => "minor",
            Bump::Patch => "patch",
        }
    }
}

/// `base` bumped by `bump`. From 1.0.0 on: major → (x+1).0.0, minor → x.(y+1).0,
/// patch → x.y.(z+1). Before 1.0.0 (0.y.z) the minor number plays the major's part:
/// major and minor → 0.(y+1).0, patch → 0.y.(z+1).
pub fn bumped(base: &Version, bump: Bump) -> Version {
    let pre_1_0 = base.major == 0;
    match bump {
        Bump::Major if !pre_1_0 => Version::new(base.major + 1, 0, 0),
        Bump::Major | Bump::Minor => Version::new(base.major, base.minor + 1, 0),
        Bump::Patch => Version::new(base.major, base.minor, base.patch + 1),
    }
}

/// The `version = "…"` line of `Cargo.toml`'s `[package]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageVersion {
    /// Its 1-based line.
    pub line: usize,
    /// The version.
    pub version: Version,
}

/// Finds and parses the `version = "x.y.z"` line of `[package]` in `cargo_toml`.
///
/// A line scan, not a TOML parser: the key must be written `version = "…"` on one line of the
/// `[package]` table (the form `cargo new` writes), which is what gives it a line number.
pub fn package_version(cargo_toml: &str) -> Result<PackageVersion, Problem> {
    let mut in_package = false;
    let mut package_line = None;
    for (index, raw) in cargo_toml.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.starts_with('[') {
            in_package = text == "[package]";
            if in_package {
                package_line = Some(line);
            }
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = text.split_once('=') else { continue };
        let key = key.trim();
        if key == "version" {
            return version_value(value, line).map(|version| PackageVersion { line, version });
        }
        if key.starts_with("version.") {
            return Err(Problem::at(
                CARGO_TOML,
                line,
                "the version is not written here; write `version = \"x.y.z\"` in [package]",
            ));
        }
    }
    let message = "no `version = \"x.y.z\"` in [package]; add one";
    Err(match package_line {
        Some(line) => Problem::at(CARGO_TOML, line, message),
        None => Problem::in_file(CARGO_TOML, format!("no [package] table; {message}")),
    })
}

/// Parses the right-hand side `"x.y.z"` (an optional `# comment` after it).
fn version_value(value: &str, line: usize) -> Result<Version, Problem> {
    let quoted = value.trim().strip_prefix('"').and_then(|rest| rest.split_once('"'));
    let text = match quoted {
        Some((text, after)) if after.trim().is_empty() || after.trim().starts_with('#') => text,
        _ => {
            return Err(Problem::at(CARGO_TOML, line, "write the version as a quoted string: `version = \"x.y.z\"`"));
        }
    };
    Version::parse(text).map_err(|e| {
        Problem::at(CARGO_TOML, line, format!("version `{text}` is not valid SemVer ({e}); write it as x.y.z"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn bumps_by_hand() {
        for (base, bump, want) in [
            ("1.4.2", Bump::Major, "2.0.0"),
            ("1.4.2", Bump::Minor, "1.5.0"),
            ("1.4.2", Bump::Patch, "1.4.3"),
            ("0.3.7", Bump::Major, "0.4.0"),
            ("0.3.7", Bump::Minor, "0.4.0"),
            ("0.3.7", Bump::Patch, "0.3.8"),
            ("0.0.0", Bump::Minor, "0.1.0"),
            ("0.0.0", Bump::Patch, "0.0.1"),
            ("0.1.0", Bump::Major, "0.2.0"),
            ("9.9.9", Bump::Major, "10.0.0"),
        ] {
            assert_eq!(bumped(&v(base), bump), v(want), "{base} + {}", bump.name());
        }
    }

    #[test]
    fn intents_order_from_patch_to_major() {
        assert!(Bump::Patch < Bump::Minor && Bump::Minor < Bump::Major);
        for name in BUMP_NAMES {
            assert_eq!(Bump::parse(name).map(Bump::name), Some(name));
        }
        assert_eq!(Bump::parse("Minor"), None);
    }

    #[test]
    fn reads_the_package_version_line() {
        let toml = "[package]\nname = \"x\"\nversion = \"0.2.0\" # the release\n\n[dependencies]\nversion = \"9\"\n";
        assert_eq!(package_version(toml), Ok(PackageVersion { line: 3, version: v("0.2.0") }));
        let later = "[dependencies]\nsemver = \"1\"\n[package]\nversion = \"1.0.0\"\n";
        assert_eq!(package_version(later).map(|p| p.line), Ok(4));
    }

    #[test]
    fn locates_what_it_cannot_read() {
        for (label, toml, want) in [
            ("not SemVer", "[package]\nversion = \"1.2\"\n", "Cargo.toml:2: version `1.2` is not valid SemVer"),
            ("unquoted", "[package]\nversion = 1\n", "Cargo.toml:2: write the version as a quoted string"),
            ("inherited", "[package]\nversion.workspace = true\n", "Cargo.toml:2: the version is not written here"),
            ("missing", "[package]\nname = \"x\"\n", "Cargo.toml:1: no `version = \"x.y.z\"` in [package]; add one"),
            ("no package", "[workspace]\nversion = \"1.0.0\"\n", "Cargo.toml: no [package] table"),
        ] {
            let got = package_version(toml).unwrap_err().to_string();
            assert!(got.starts_with(want), "{label}: {got}");
        }
    }
}
