//! `core-ops-release validate`: the release gate. Runs the file checks of [`crate::gate`] and
//! the `--version` check of [`crate::binary`], prints every problem located, and exits 1 when
//! any check failed.
//!
//! Owns the order of the checks and their report; `promote` runs the same [`run_gate`]. It
//! never writes to the checkout.

use std::path::PathBuf;

use crate::binary;
use crate::changelog::{CHANGELOG, Changelog};
use crate::fragment::Fragment;
use crate::gate::{self, Intent, Sources};
use crate::problem::Problem;
use crate::repo::{Checkout, FragmentFile};
use crate::version::{CARGO_TOML, PackageVersion};
use crate::{EXIT_FAILED, EXIT_OK};

/// The binary whose `--version` is checked.
#[derive(Debug, clap::Args)]
pub struct BinaryArg {
    /// Check this core-ops binary's --version instead of building one with cargo.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary to check.
    #[command(flatten)]
    pub binary: BinaryArg,
}

/// A checkout that passed the gate, with what the checks read.
#[derive(Debug)]
pub struct Passed {
    /// The fragments, sorted by file name.
    pub fragments: Vec<(FragmentFile, Fragment)>,
    /// `CHANGELOG.md` as read.
    pub changelog_text: String,
    /// `CHANGELOG.md` parsed.
    pub changelog: Changelog,
    /// The `Cargo.toml` version.
    pub version: PackageVersion,
    /// Why that version is the right one.
    pub intent: Intent,
    /// The binary's `--version` line.
    pub reported: String,
}

/// Runs every check on `checkout`: all problems, or what passed.
pub fn run_gate(checkout: &Checkout, binary_arg: &BinaryArg) -> Result<Passed, Vec<Problem>> {
    let changelog_text = checkout.read(CHANGELOG);
    let sources = Sources {
        cargo_toml: checkout.read(CARGO_TOML),
        changelog: changelog_text.clone(),
        fragments: checkout.fragment_files(),
    };
    let mut findings = gate::check(sources);
    let reported = findings.version.as_ref().map(|version| {
        let binary = match &binary_arg.binary {
            Some(path) => Ok(path.clone()),
            None => binary::build(checkout.root(), version),
        };
        binary.and_then(|path| binary::check(&path, version))
    });
    if let Some(Err(problem)) = &reported {
        findings.problems.push(problem.clone());
    }
    let (Some(fragments), Ok(changelog_text), Some(changelog), Some(version), Some(intent), Some(Ok(reported))) =
        (findings.fragments, changelog_text, findings.changelog, findings.version, findings.intent, reported)
    else {
        return Err(findings.problems);
    };
    if !findings.problems.is_empty() {
        return Err(findings.problems);
    }
    Ok(Passed { fragments, changelog_text, changelog, version, intent, reported })
}

/// Prints `problems` on standard error, one located line each.
pub fn print_problems(problems: &[Problem]) {
    for problem in problems {
        eprintln!("{problem}");
    }
}

/// Runs the command.
pub fn run(checkout: &Checkout, args: &Args) -> u8 {
    match run_gate(checkout, &args.binary) {
        Ok(passed) => {
            print_summary(&passed);
            EXIT_OK
        }
        Err(problems) => {
            print_problems(&problems);
            eprintln!("validate: {} problem(s); the release gate is closed", problems.len());
            EXIT_FAILED
        }
    }
}

fn print_summary(passed: &Passed) {
    let intent = &passed.intent;
    let rule = match intent.bump {
        Some(bump) => format!("{} bumped by `{}` ({})", intent.base, bump.name(), intent.carriers.join(", ")),
        None => format!("{}, no fragments", intent.base),
    };
    println!("validate: ok");
    println!("  {CARGO_TOML} version {} = {rule}", passed.version.version);
    println!(
        "  {} fragment(s) in changes/, {} release(s) in {CHANGELOG}",
        passed.fragments.len(),
        passed.changelog.releases.len()
    );
    println!("  --version: {}", passed.reported);
}
