//! The release targets `bundle` accepts: Linux triples for x86_64 and aarch64, and the `<arch>`
//! that names their artefacts. Parsing only: it must not look at the toolchain or the machine
//! (whether rustup has the target installed is cargo's error to report).

use std::fmt;

/// The architectures CoreOps is released for (the first component of the triple).
pub const SUPPORTED_ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// The operating-system component every accepted triple carries.
const LINUX: &str = "linux";

/// The triples a release is built for, named in the refusal message.
const RELEASE_TRIPLES: &str = "x86_64-unknown-linux-musl, aarch64-unknown-linux-musl";

/// A Linux target triple for one of [`SUPPORTED_ARCHES`], e.g. `aarch64-unknown-linux-musl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    triple: String,
}

impl Target {
    /// Accepts `<arch>-<vendor>-linux-<env>` with `<arch>` in [`SUPPORTED_ARCHES`]; refuses
    /// anything else with a message that names the release triples.
    pub fn parse(triple: &str) -> Result<Self, String> {
        let parts: Vec<&str> = triple.split('-').collect();
        let supported = match parts.as_slice() {
            [arch, vendor, os, env] => {
                SUPPORTED_ARCHES.contains(arch) && !vendor.is_empty() && *os == LINUX && !env.is_empty()
            }
            _ => false,
        };
        if supported {
            Ok(Self { triple: triple.to_string() })
        } else {
            Err(format!(
                "`{triple}` is not a release target: CoreOps is released for Linux on {} \
                 (<arch>-<vendor>-linux-<env>); use one of {RELEASE_TRIPLES}",
                SUPPORTED_ARCHES.join(" and ")
            ))
        }
    }

    /// The triple, as cargo's `--target` takes it.
    pub fn triple(&self) -> &str {
        &self.triple
    }

    /// The architecture: the triple's first component (`x86_64`, `aarch64`).
    pub fn arch(&self) -> &str {
        self.triple.split('-').next().unwrap_or_default()
    }

    /// The name of the raw binary artefact, which is also its name inside the archive.
    pub fn binary_name(&self) -> String {
        format!("core-ops-linux-{}", self.arch())
    }

    /// The name of the archive artefact.
    pub fn archive_name(&self) -> String {
        format!("{}.tar.gz", self.binary_name())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.triple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_triples_for_the_two_arches_are_accepted_and_named_by_their_first_component() {
        for (triple, binary) in [
            ("x86_64-unknown-linux-musl", "core-ops-linux-x86_64"),
            ("aarch64-unknown-linux-musl", "core-ops-linux-aarch64"),
            ("x86_64-unknown-linux-gnu", "core-ops-linux-x86_64"),
            ("aarch64-unknown-linux-gnu", "core-ops-linux-aarch64"),
        ] {
            let target = Target::parse(triple).unwrap_or_else(|e| panic!("{triple}: {e}"));
            assert_eq!(target.binary_name(), binary, "{triple}");
            assert_eq!(target.archive_name(), format!("{binary}.tar.gz"), "{triple}");
            assert_eq!(target.triple(), triple);
        }
    }

    #[test]
    fn other_systems_arches_and_shapes_are_refused_naming_the_release_triples() {
        for triple in [
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "riscv64gc-unknown-linux-gnu",
            "armv7-unknown-linux-musleabihf",
            "x86_64-linux-musl",
            "x86_64-unknown-linux-musl-extra",
            "x86_64--linux-musl",
            "",
        ] {
            let err = Target::parse(triple).expect_err(triple);
            assert!(err.contains("x86_64-unknown-linux-musl, aarch64-unknown-linux-musl"), "{triple}: {err}");
            assert!(err.contains(&format!("`{triple}`")), "{triple}: {err}");
        }
    }
}
