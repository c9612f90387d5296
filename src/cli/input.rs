//! The input options `plan`, `apply` and `explain` share (a source repository and host, or one
//! Butane or Ignition config with its files directory), turned into the pipeline's
//! [`Input`]; the exit codes of an input that does not load; and the input's warnings and notes
//! as they are shown. Loading itself is the pipeline's
//! ([`pipeline::load`](crate::host::pipeline::load)).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{EXIT_FAILURE, EXIT_INVALID_SOURCE, EXIT_UNUSABLE_SOURCE, Exit};
use crate::host::agent;
use crate::host::pipeline::{Input, LoadError, Loaded};
use crate::host::root::Root;
use crate::model::path::printable;

/// Where the desired state comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// A source repository (a folder with hosts/ and services/).
    #[arg(long, value_name = "DIR", conflicts_with = "config", requires = "host")]
    pub source_repo: Option<PathBuf>,
    /// The host of the source repository.
    #[arg(long, value_name = "HOST", requires = "source_repo")]
    pub host: Option<String>,
    /// A single Butane (.bu) or Ignition (.ign, .json) config instead of a repository.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Files directory for `local:` paths of --config.
    #[arg(short = 'd', long, value_name = "DIR", requires = "config")]
    pub files_dir: Option<PathBuf>,
}

impl InputArgs {
    /// The input these options name; a usage error (exit 2) when they name none.
    pub fn input(&self) -> Result<Input, Exit> {
        self.named().ok_or_else(no_input)
    }

    /// The input these options name, if they name one.
    fn named(&self) -> Option<Input> {
        match (&self.source_repo, &self.host, &self.config) {
            (Some(dir), Some(host), _) => Some(Input::Repo { dir: dir.clone(), host: host.clone() }),
            (_, _, Some(file)) => Some(Input::Config { file: file.clone(), files_dir: self.files_dir.clone() }),
            _ => None,
        }
    }

    /// The input these options name, else the followed repository at its cached tip (fetched
    /// first with `follow.fetch`); a usage error when there is neither.
    pub fn resolve(&self, root: &Root, follow: &FollowArgs, lock_timeout: std::time::Duration) -> Result<Input> {
        if let Some(input) = self.named() {
            return Ok(input);
        }
        let fetch = follow.fetch.then(|| (std::io::stderr().is_terminal(), lock_timeout));
        Ok(agent::tracked_input(root, fetch)?.ok_or_else(no_input)?)
    }
}

/// The option of `plan` and `apply` for the repository this host follows.
#[derive(Debug, Clone, clap::Args)]
pub struct FollowArgs {
    /// Without --source-repo or --config, the followed repository (`core-ops init`) is read at its
    /// cached tip: fetch its ref first.
    #[arg(long, conflicts_with_all = ["source_repo", "config"])]
    pub fetch: bool,
}

/// The usage error of a command given no input.
pub fn no_input() -> Exit {
    Exit::usage(
        "give either --source-repo DIR --host HOST or --config FILE (or make this host follow a repository with `core-ops init REPO REF`)",
    )
}

/// How an input that does not load ends the process (wherever a command meets the error): 64
/// for a source repository path that is not a directory, 65 for an invalid repository (its
/// located issues, one a line), 1 for a config that cannot be read or rendered.
pub fn load_exit(error: &LoadError) -> Exit {
    match error {
        LoadError::Unusable(message) => Exit::new(EXIT_UNUSABLE_SOURCE, format!("error: {message}")),
        LoadError::Invalid(issues) => Exit::lines(EXIT_INVALID_SOURCE, issues.iter().map(ToString::to_string)),
        LoadError::Failed(lines) => Exit::lines(EXIT_FAILURE, lines.iter().cloned()),
    }
}

/// The last line of a run that `--strict` stopped, as Butane words it.
pub const STRICT_STOP: &str = "Config produced warnings and --strict was specified";

/// Shows the input's warnings on standard error. Under `--strict` (`strict`) warnings are
/// errors, as in `render-ignition --strict`: they are listed as errors, and the run stops with
/// exit 1 before anything is planned.
pub fn show_warnings(loaded: &Loaded, strict: bool) -> Result<()> {
    if strict && !loaded.warnings.is_empty() {
        let errors = loaded.warnings.iter().map(|w| as_error(w));
        return Err(Exit::lines(EXIT_FAILURE, errors.chain([STRICT_STOP.to_string()])).into());
    }
    for w in &loaded.warnings {
        eprintln!("{}", printable(w));
    }
    Ok(())
}

/// Shows the input's notes on standard error under `-v` (`verbose`).
pub fn show_notes(loaded: &Loaded, verbose: bool) {
    for n in loaded.notes.iter().filter(|_| verbose) {
        eprintln!("{}", printable(n));
    }
}

/// A warning line (`warning: FILE:L:C: …`) as the error it is under `--strict`.
fn as_error(warning: &str) -> String {
    match warning.strip_prefix("warning: ") {
        Some(rest) => format!("error: {rest}"),
        None => format!("error: {warning}"),
    }
}
