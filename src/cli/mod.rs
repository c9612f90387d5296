//! The command line: clap definitions and dispatch, one file per subcommand.
//! - [`render_ignition`] — `core-ops render-ignition`, a drop-in for `butane`.

pub mod render_ignition;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failure (invalid input, failed run).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;

/// Version text: the crate version, the git revision it was built from and whether the tree
/// was dirty.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("CORE_OPS_GIT_REVISION"), ", ", env!("CORE_OPS_GIT_DIRTY"), ")");

/// Keep systemd hosts in git: render first-boot Ignition, plan and apply day-2 changes.
#[derive(Debug, Parser)]
#[command(name = "core-ops", version = VERSION, help_expected = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate Butane (or Ignition) into an Ignition config, like `butane`.
    RenderIgnition(render_ignition::Args),
}

/// Parses `args` and runs the command; returns the process exit code.
pub fn run_from_iter<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let result = match cli.command {
        Command::RenderIgnition(args) => render_ignition::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
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
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
