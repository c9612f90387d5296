//! `core-ops-release`: the maintainers' release tool. It owns the release contract: every
//! releasable change carries its SemVer intent in `changes/<change-id>.md`, the version in
//! `Cargo.toml` matches it, and `CHANGELOG.md` stays in Keep a Changelog form with an empty
//! `[Unreleased]` block that `promote` turns into `[<version>] - <date>` (docs/releasing.md).
//!
//! This file parses the command line and dispatches, one arm per command; it shares no code
//! path with the `core-ops` product. Modules:
//! - [`validate`], [`unreleased`], [`promote`]: the commands;
//! - [`gate`]: the file checks and the version rule; [`binary`]: the `--version` check;
//! - [`fragment`], [`changelog`], [`sections`], [`version`], [`date`]: pure parsers;
//! - [`repo`]: the only module that touches the checkout's files; [`problem`]: located problems;
//! - [`bundle`]: `bundle`, the static binary of a target with its archive and SHA256SUMS. It reads
//!   `core_ops::cli::Cli` only as a clap definition, for man pages and completions.

mod binary;
mod bundle;
mod changelog;
mod date;
mod fragment;
mod gate;
mod problem;
mod promote;
mod repo;
mod sections;
mod unreleased;
mod validate;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::repo::Checkout;

/// Exit code: every check passed, or the command did its work.
pub const EXIT_OK: u8 = 0;
/// Exit code: a check failed, or the command refused.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command line was wrong.
pub const EXIT_USAGE: u8 = 2;

/// Release tool for CoreOps maintainers: the release gate, the changelog from change fragments,
/// and promotion of the fragments into a release.
#[derive(Debug, Parser)]
#[command(name = "core-ops-release", version, help_expected = true, after_help = EXIT_CODES)]
struct Cli {
    /// The project checkout to work on.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// Shown after `--help`.
const EXIT_CODES: &str = "Exit codes: 0 ok, 1 a check failed or the command refused, 2 usage.";

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// The release gate: fragments, CHANGELOG.md, the Cargo.toml version and `core-ops --version`.
    Validate(validate::Args),
    /// Print the `## [Unreleased]` block rendered from the fragments in changes/.
    Changelog(unreleased::Args),
    /// Write the fragments into CHANGELOG.md as a release and remove them (after validate).
    Promote(promote::Args),
    /// Build the static release binary for a target and write its bundle and SHA256SUMS.
    Bundle(bundle::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let checkout = Checkout::at(&cli.repo);
    let code = match &cli.command {
        Command::Validate(args) => validate::run(&checkout, args),
        Command::Changelog(args) => unreleased::run(&checkout, args),
        Command::Promote(args) => promote::run(&checkout, args),
        Command::Bundle(args) => run_bundle(&cli.repo, args),
    };
    ExitCode::from(code)
}

/// `bundle`, its error chain printed on standard error.
fn run_bundle(repo: &std::path::Path, args: &bundle::Args) -> u8 {
    match bundle::run(repo, args) {
        Ok(_) => EXIT_OK,
        Err(err) => {
            eprintln!("error: {err:#}");
            EXIT_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_unsupported_target_is_a_usage_error() {
        let err = Cli::try_parse_from(["core-ops-release", "bundle", "--target", "x86_64-apple-darwin"]).unwrap_err();
        assert!(err.use_stderr());
        assert!(err.to_string().contains("not a release target"), "{err}");
    }
}
