//! `core-ops-release`: the maintainers' release tool (not shipped to hosts). It parses the
//! command line, runs one command and maps the outcome to an exit code: 0 done, 1 failed, 2 usage.
//! It shares no code path with the product at run time; it reads `core_ops::cli::Cli` only as a
//! clap definition, for man pages and completions.

mod bundle;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_OK: u8 = 0;
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Release tooling for CoreOps: build the release bundles.
#[derive(Debug, Parser)]
#[command(name = "core-ops-release", version, help_expected = true)]
struct Cli {
    /// The CoreOps repository to work on.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    repo: PathBuf,
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
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
    let result = match &cli.command {
        Command::Bundle(args) => bundle::run(&cli.repo, args).map(drop),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_unsupported_target_is_a_usage_error() {
        let err = Cli::try_parse_from(["core-ops-release", "bundle", "--target", "x86_64-apple-darwin"]).unwrap_err();
        assert!(err.use_stderr());
        assert!(err.to_string().contains("not a release target"), "{err}");
    }
}
