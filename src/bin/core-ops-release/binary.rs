//! The last check of the gate: `core-ops --version` of the product reports the `Cargo.toml`
//! version. Builds the `core-ops` binary with cargo (honouring `CARGO_TARGET_DIR`) or takes
//! the one `--binary` names, runs it with `--version`, and compares.
//!
//! Runs processes; owns nothing else. Its problems are located at `Cargo.toml`'s version line,
//! the version the binary must report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use semver::Version;
use serde_json::Value;

use crate::problem::Problem;
use crate::version::{CARGO_TOML, PackageVersion};

/// The product's binary (and the first word of its `--version`).
const PRODUCT: &str = "core-ops";
/// The environment variable cargo sets to itself for the programs it runs.
const CARGO_ENV: &str = "CARGO";

/// Builds `core-ops` in `repo` and returns the executable cargo reports. Cargo's diagnostics
/// and progress go to standard error.
pub fn build(repo: &Path, version: &PackageVersion) -> Result<PathBuf, Problem> {
    let cargo = std::env::var_os(CARGO_ENV).unwrap_or_else(|| "cargo".into());
    let problem = |what: String| Problem::at(CARGO_TOML, version.line, what);
    let output = Command::new(&cargo)
        .current_dir(repo)
        .args(["build", "--bin", PRODUCT, "--message-format=json-render-diagnostics"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| problem(format!("cannot run `cargo build` ({e}); install cargo or pass --binary PATH")))?;
    if !output.status.success() {
        return Err(problem(format!(
            "`cargo build --bin {PRODUCT}` failed ({}); fix the build errors above",
            output.status
        )));
    }
    executable(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        problem(format!("`cargo build` reported no `{PRODUCT}` executable; is this the core-ops checkout (--repo)?"))
    })
}

/// The executable of the `core-ops` binary in cargo's JSON messages (the last one reported).
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == PRODUCT)
        .filter(|m| m["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin")))
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// Runs `binary --version` and checks that it reports `version`; returns what it printed.
pub fn check(binary: &Path, version: &PackageVersion) -> Result<String, Problem> {
    let problem = |what: String| Problem::at(CARGO_TOML, version.line, what);
    let shown = binary.display();
    let output = Command::new(binary).arg("--version").stdin(Stdio::null()).output().map_err(|e| {
        problem(format!("cannot run `{shown} --version` ({e}); build it, or pass an existing --binary"))
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first_line = stdout.lines().next().unwrap_or("").to_string();
    if !output.status.success() {
        return Err(problem(format!("`{shown} --version` failed ({}); check the binary", output.status)));
    }
    if reports(&first_line, &version.version) {
        Ok(first_line)
    } else {
        Err(problem(format!(
            "`{shown} --version` printed `{first_line}`, not `{PRODUCT} {} …`; rebuild it from this checkout",
            version.version
        )))
    }
}

/// Whether a `--version` line reads `core-ops <version>`, possibly followed by more words.
fn reports(line: &str, version: &Version) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some(PRODUCT) && words.next() == Some(version.to_string().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_line() {
        let v = Version::new(0, 2, 0);
        for (line, ok) in [
            ("core-ops 0.2.0 (3c1485f0a1b2, clean)", true),
            ("core-ops 0.2.0", true),
            ("core-ops 0.2.01", false),
            ("core-ops 0.1.0 (3c1485f0a1b2, clean)", false),
            ("core-ops-release 0.2.0", false),
            ("", false),
        ] {
            assert_eq!(reports(line, &v), ok, "{line:?}");
        }
    }

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        // Shapes from `cargo build --message-format=json` (cargo 1.95): a library artifact of
        // the same package, the bin artifact, and the closing message.
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"core_ops"},"executable":null}
{"reason":"build-script-executed","package_id":"x"}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"core-ops"},"executable":"/t/debug/core-ops"}
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"other"},"executable":"/t/debug/other"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable(messages), Some(PathBuf::from("/t/debug/core-ops")));
        assert_eq!(executable(r#"{"reason":"build-finished","success":true}"#), None);
    }
}
