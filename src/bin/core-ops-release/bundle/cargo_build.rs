//! The release build of the product binary: `cargo build --locked --profile dist --target TRIPLE
//! --bin core-ops` in the repository, made reproducible. The compiler sees every build location
//! (the workspace, the target directory, CARGO_HOME, $HOME) through `--remap-path-prefix`, so no
//! path of the build machine lands in the binary, and the build runs with `SOURCE_DATE_EPOCH`.
//!
//! The flags go in `CARGO_ENCODED_RUSTFLAGS`, which takes precedence over `RUSTFLAGS` and every
//! `rustflags` of cargo's configuration: flags from those sources are NOT applied to a bundle
//! build (RUSTFLAGS is removed from the environment so that nobody believes otherwise). This
//! module runs cargo and reports where the binary is; it must not read or package the binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::epoch::SOURCE_DATE_EPOCH;
use super::target::Target;

/// The cargo profile of release binaries (Cargo.toml `[profile.dist]`).
pub const DIST_PROFILE: &str = "dist";

/// The product binary the bundle ships.
pub const PRODUCT_BIN: &str = "core-ops";

/// What each build location reads as inside the binary.
const REMAPPED_HOME: &str = "/home/builder";
const REMAPPED_CARGO_HOME: &str = "/cargo";
const REMAPPED_WORKSPACE: &str = "/core-ops";
const REMAPPED_TARGET_DIR: &str = "/core-ops/target";

/// The separator of `CARGO_ENCODED_RUSTFLAGS` (ASCII unit separator).
const ENCODED_FLAGS_SEPARATOR: &str = "\x1f";

/// Where cargo builds, as `cargo metadata` reports it.
#[derive(Debug, Deserialize)]
struct Layout {
    workspace_root: PathBuf,
    target_directory: PathBuf,
}

/// Builds the product for `target` in `repo` and returns the path of the binary.
pub fn build(repo: &Path, target: &Target, epoch: u64) -> Result<PathBuf> {
    let layout = layout(repo)?;
    let remaps = remaps(&layout, &build_homes());
    let flags = remap_flags(&remaps)?;
    let status = cargo()
        .current_dir(repo)
        .args(["build", "--locked", "--profile", DIST_PROFILE, "--target", target.triple(), "--bin", PRODUCT_BIN])
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join(ENCODED_FLAGS_SEPARATOR))
        .env_remove("RUSTFLAGS")
        .env(SOURCE_DATE_EPOCH, epoch.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("running cargo (is it on PATH, or CARGO set?)")?;
    if !status.success() {
        bail!(
            "cargo build --profile {DIST_PROFILE} --target {target} failed ({status}); its messages are above \
             (a missing target is added with `rustup target add {target}`)"
        );
    }
    let binary = layout.target_directory.join(target.triple()).join(DIST_PROFILE).join(PRODUCT_BIN);
    if !binary.is_file() {
        bail!("cargo reported success but {} is missing; run the build again", binary.display());
    }
    Ok(binary)
}

/// The cargo that runs this tool (`cargo run` sets CARGO), else `cargo` from PATH.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// The workspace root and target directory cargo uses in `repo` (it honours CARGO_TARGET_DIR
/// and `build.target-dir`).
fn layout(repo: &Path) -> Result<Layout> {
    let output = cargo()
        .current_dir(repo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo metadata in {}", repo.display()))?;
    if !output.status.success() {
        bail!("cargo metadata in {} failed ({}); is it the CoreOps repository?", repo.display(), output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the output of cargo metadata")
}

/// The home directories a build reads from: $HOME and CARGO_HOME (default `$HOME/.cargo`).
#[derive(Debug, Default)]
struct BuildHomes {
    home: Option<PathBuf>,
    cargo_home: Option<PathBuf>,
}

fn build_homes() -> BuildHomes {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let cargo_home = std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    BuildHomes { home, cargo_home }
}

/// Each build location (as given and, when it differs, with symlinks resolved) with what it
/// reads as, least specific first: rustc applies the last matching prefix, so the target
/// directory wins inside the workspace and CARGO_HOME wins inside $HOME.
fn remaps(layout: &Layout, homes: &BuildHomes) -> Vec<(PathBuf, &'static str)> {
    let locations = [
        (homes.home.as_deref(), REMAPPED_HOME),
        (homes.cargo_home.as_deref(), REMAPPED_CARGO_HOME),
        (Some(layout.workspace_root.as_path()), REMAPPED_WORKSPACE),
        (Some(layout.target_directory.as_path()), REMAPPED_TARGET_DIR),
    ];
    let mut remaps: Vec<(PathBuf, &'static str)> = Vec::new();
    for (path, to) in locations.into_iter().filter_map(|(path, to)| Some((path?, to))) {
        let resolved = path.canonicalize().ok().filter(|resolved| resolved != path);
        remaps.push((path.to_path_buf(), to));
        remaps.extend(resolved.map(|resolved| (resolved, to)));
    }
    remaps.sort_by_key(|(path, _)| path.components().count());
    remaps
}

/// One `--remap-path-prefix=FROM=TO` flag per remap; a location that is not UTF-8 cannot be
/// passed in CARGO_ENCODED_RUSTFLAGS and is refused.
fn remap_flags(remaps: &[(PathBuf, &str)]) -> Result<Vec<String>> {
    remaps
        .iter()
        .map(|(from, to)| {
            let from = from.to_str().with_context(|| {
                format!("the build location {} is not UTF-8; build from a UTF-8 path", from.display())
            })?;
            Ok(format!("--remap-path-prefix={from}={to}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(layout: Layout, homes: BuildHomes) -> Vec<String> {
        remap_flags(&remaps(&layout, &homes)).unwrap()
    }

    #[test]
    fn the_most_specific_location_comes_last_so_that_rustc_applies_it() {
        let layout = Layout {
            workspace_root: "/nonexistent/home/me/src/core-ops".into(),
            target_directory: "/nonexistent/home/me/src/core-ops/target".into(),
        };
        let homes = BuildHomes {
            home: Some("/nonexistent/home/me".into()),
            cargo_home: Some("/nonexistent/home/me/.cargo".into()),
        };
        assert_eq!(
            flags(layout, homes),
            [
                "--remap-path-prefix=/nonexistent/home/me=/home/builder",
                "--remap-path-prefix=/nonexistent/home/me/.cargo=/cargo",
                "--remap-path-prefix=/nonexistent/home/me/src/core-ops=/core-ops",
                "--remap-path-prefix=/nonexistent/home/me/src/core-ops/target=/core-ops/target",
            ]
        );
    }

    /// rustc's documented rule (the rustc book, "Remap source paths"): a textual prefix match,
    /// and when several remappings match, the last one given is applied.
    fn as_rustc_remaps(flags: &[String], path: &str) -> String {
        let matching = flags.iter().rev().find_map(|flag| {
            let (from, to) = flag.strip_prefix("--remap-path-prefix=")?.rsplit_once('=')?;
            Some(format!("{to}{}", path.strip_prefix(from)?))
        });
        matching.unwrap_or_else(|| path.to_string())
    }

    #[test]
    fn every_build_location_reads_as_its_own_name_whichever_holds_which() {
        // CI systems put CARGO_HOME inside the checkout (GitLab) or the target directory outside it.
        let layout = Layout {
            workspace_root: "/nonexistent/ci/core-ops".into(),
            target_directory: "/nonexistent/cache/t".into(),
        };
        let homes = BuildHomes {
            home: Some("/nonexistent/ci".into()),
            cargo_home: Some("/nonexistent/ci/core-ops/.cargo".into()),
        };
        let flags = flags(layout, homes);
        for (path, seen) in [
            ("/nonexistent/ci/core-ops/.cargo/registry/src/x/lib.rs", "/cargo/registry/src/x/lib.rs"),
            ("/nonexistent/ci/core-ops/src/lib.rs", "/core-ops/src/lib.rs"),
            ("/nonexistent/cache/t/x86_64/dist/build/out.rs", "/core-ops/target/x86_64/dist/build/out.rs"),
            ("/nonexistent/ci/.rustup/lib.rs", "/home/builder/.rustup/lib.rs"),
            ("/elsewhere/lib.rs", "/elsewhere/lib.rs"),
        ] {
            assert_eq!(as_rustc_remaps(&flags, path), seen, "{flags:?}");
        }
    }

    #[test]
    fn a_symlinked_location_is_remapped_as_given_and_as_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = real.parent().unwrap().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let layout = Layout { workspace_root: link.clone(), target_directory: link.join("target") };
        let got = flags(layout, BuildHomes::default());
        assert!(got.contains(&format!("--remap-path-prefix={}=/core-ops", link.display())), "{got:?}");
        assert!(got.contains(&format!("--remap-path-prefix={}=/core-ops", real.display())), "{got:?}");
    }
}
