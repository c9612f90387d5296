//! The command line: clap definitions and dispatch, one file per subcommand. Commands parse their
//! arguments, call the host side (the run itself is [`crate::host::pipeline`]'s) and print.
//! - [`render_ignition`] — `core-ops render-ignition`, a drop-in for `butane`.
//! - [`track`] — `render-ignition --track`: the first-boot bootstrap that follows a repository.
//! - [`plan`] — `core-ops plan`, the read-only preview of a host's changes.
//! - [`apply`] — `core-ops apply`, converging the host.
//! - [`status`] — `core-ops status`, the last apply and drift since.
//! - [`explain`] — `core-ops explain`, one object's action, origin and history.
//! - [`history`] — `core-ops history`, the applied generations.
//! - [`rollback`] — `core-ops rollback`, back to an earlier applied revision.
//! - [`input`] — the input options those share (a source repository or one config), and how an
//!   input that does not load ends the process.
//! - [`converge`] — what `apply` and `rollback` share: options, the checks first, approval, the
//!   report.
//! - [`identity`] — the host a root belongs to, and the guard against applying another.
//! - [`confirm`] — the question `apply` and `rollback` ask on a terminal.
//! - [`root_dir`] — `--root`: privileges on `/`, and a missing root for `plan`.
//! - [`report`] — the JSON documents and their schemas.

pub mod agent;
pub mod apply;
pub mod confirm;
pub mod converge;
pub mod explain;
pub mod history;
pub mod identity;
pub mod init;
pub mod input;
pub mod plan;
pub mod render_ignition;
pub mod report;
pub mod rollback;
pub mod root_dir;
pub mod status;
pub mod suspend;
pub mod track;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::host::pipeline::LoadError;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failure (invalid input, failed run).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `plan --exit-code` when changes are pending.
pub const EXIT_CHANGES_PENDING: u8 = 3;
/// Exit code of `status --exit-code` when owned objects drifted, or the last run failed, was
/// partial or was interrupted.
pub const EXIT_NEEDS_ATTENTION: u8 = 3;
/// Exit code when the source repository path is unusable (not a directory).
pub const EXIT_UNUSABLE_SOURCE: u8 = 64;
/// Exit code when the source repository is invalid.
pub const EXIT_INVALID_SOURCE: u8 = 65;

/// An error that ends the process with a specific exit code; its message is printed as is,
/// having been made [`printable`](crate::model::path::printable) when it was built.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    /// What to print on standard error.
    pub message: String,
}

impl Exit {
    /// An exit with `code` and `message`, its control characters escaped: a name in it cannot
    /// forge a line.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        let message = message.into();
        Exit { code, message: crate::model::path::printable(&message).into_owned() }
    }

    /// An exit with `code` and one line per message, each escaped as [`Exit::new`] escapes.
    pub fn lines(code: u8, messages: impl IntoIterator<Item = String>) -> Self {
        let lines: Vec<String> = messages.into_iter().map(|m| crate::model::path::printable(&m).into_owned()).collect();
        Exit { code, message: lines.join("\n") }
    }

    /// A usage error (exit 2).
    pub fn usage(message: &str) -> Self {
        Exit::new(EXIT_USAGE, format!("error: {message}"))
    }
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Human,
    /// A stable, versioned JSON document (schemas/).
    Json,
}

/// Every exit code, for `core-ops --help` (README "Exit codes" is the same list).
const EXIT_CODES: &str = "Exit codes:
  0   success
  1   failure: invalid input, a blocked plan, a failed or partial apply, another host's root, declined, not root
  2   usage error
  3   plan --exit-code: changes pending; status --exit-code: drift, or the last run failed, was partial or interrupted
  64  the source repository path is not a directory
  65  the source repository is invalid (for agent and init: at the tip of the followed ref)
  75  agent, init: the remote could not be reached";

/// Keep systemd hosts in git: render first-boot Ignition, plan and apply day-2 changes.
#[derive(Debug, Parser)]
#[command(name = "core-ops", version = crate::VERSION, help_expected = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate Butane (or Ignition, or a host of a source repository) into an Ignition config.
    RenderIgnition(render_ignition::Args),
    /// Show what applying would change on the host, and why (writes nothing).
    Plan(plan::Args),
    /// Make the host match the desired state, and record what was written.
    Apply(apply::Args),
    /// Show what was last applied, how the last run ended, and drift since.
    Status(status::Args),
    /// Explain one object: its next action and why, its origin, its history.
    Explain(explain::Args),
    /// List the applied generations: when, which revision from where, the result and the counts.
    History(history::Args),
    /// Converge back to an earlier applied revision.
    Rollback(rollback::Args),
    /// Make this host follow a git repository (fetch, check, record; applies nothing).
    Init(init::Args),
    /// Run one cycle for the timer: fetch the followed ref, plan, apply, verify, record.
    Agent(agent::Args),
    /// Hold the agent's cycles during hands-on work (the timer stays enabled).
    Suspend(suspend::SuspendArgs),
    /// Let the agent's cycles run again.
    Resume(suspend::ResumeArgs),
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
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::History(args) => history::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Agent(args) => agent::run(&args),
        Command::Suspend(args) => suspend::suspend(&args),
        Command::Resume(args) => suspend::resume(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`core-ops plan | head`) is the reader's choice, not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(EXIT_OK),
        Err(err) => {
            // An input that does not load ends with its own exit code, whichever command met it.
            let load = err.downcast_ref::<LoadError>().map(input::load_exit);
            match load.as_ref().or_else(|| err.downcast_ref::<Exit>()) {
                Some(exit) => {
                    eprintln!("{}", exit.message);
                    ExitCode::from(exit.code)
                }
                None => {
                    // Paths and names in the chain are shown escaped: none can forge a line.
                    eprintln!("error: {}", crate::model::path::printable(&crate::host::fs::explained(&err)));
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

/// Standard output for a report, buffered in blocks large enough that a report of thousands of
/// objects takes tens of writes, not thousands.
pub fn report_output() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    const REPORT_BUFFER: usize = 64 * 1024;
    std::io::BufWriter::with_capacity(REPORT_BUFFER, std::io::stdout().lock())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(|e| e.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
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
