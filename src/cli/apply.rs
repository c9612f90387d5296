//! `core-ops apply`: make the host match the desired state — atomic writes, recorded ownership,
//! nothing deleted that CoreOps does not own. Before anything is written it checks, in order:
//! root privileges, the host the root belongs to, and, on a terminal, the person's approval of
//! the plan it is about to execute ([`converge`](crate::cli::converge)). The run is the pipeline's
//! ([`pipeline::converge`]): this file parses the arguments and hands them over.

use anyhow::Result;

use crate::cli::converge::{Approval, ConvergeArgs};
use crate::cli::input::{FollowArgs, InputArgs};
use crate::host::pipeline;

/// Exit codes of `apply`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   converged (or nothing to do)
  1   failed: blocked or an error of the checks (nothing written; with --strict any warning), partially applied, a unit did not come up, another host's root, declined, not root
  2   usage error
  64  the source repository path is not a directory
  65  the source repository is invalid";

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Where the desired state comes from.
    #[command(flatten)]
    pub input: InputArgs,
    /// The followed repository.
    #[command(flatten)]
    pub follow: FollowArgs,
    /// How to converge.
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let c = &args.converge;
    let (root, state) = c.open_root("apply")?;
    let input = args.input.resolve(&root, &args.follow, c.options().lock_timeout)?;
    let guarded = c.guard(&root, &state, input.host())?;
    let approval = Approval::new(c, &guarded, &root, "Apply cancelled.");
    let run = pipeline::converge(&root, &input, c.options(), &c.reach(), &approval)?;
    c.finish(run, approval.plan_shown())
}
