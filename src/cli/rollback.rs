//! `core-ops rollback`: converge back to an earlier applied revision, through the same planner
//! and apply as any other change ([`pipeline`]), with the same checks first: privileges on `/`,
//! the host the root belongs to (a revision applied as another host needs `--switch-host`), and
//! approval on a terminal.

use anyhow::{Context, Result};

use crate::cli::converge::{Approval, ConvergeArgs};
use crate::cli::input::InputArgs;
use crate::cli::plan;
use crate::host::pipeline::{self, Loaded, Reach};
use crate::host::store;
use crate::model::state::SourceRef;

/// Exit codes of `rollback`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   converged back to the revision
  1   failed: no such revision, blocked, partially applied, another host's revision, declined, not root
  2   usage error";

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The revision to return to (a prefix is enough); default: the one before the current.
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// Only show what the rollback would do, planned exactly as `plan` plans; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// How to converge.
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let c = &args.converge;
    let (root, state) = c.open_root("rollback")?;
    let snapshot = store::load_snapshot(&root, args.to.as_deref(), &state)?;
    let mut source = snapshot.source.clone().unwrap_or_else(|| SourceRef::snapshot(&snapshot.revision));
    let guarded = c.guard(&root, &state, source.host.as_deref())?;
    guarded.keep_recorded_host(&mut source);
    let mut loaded = Loaded::from_snapshot(&snapshot, source)?;
    if args.plan {
        let like = plan_args(c);
        let planned = pipeline::plan(&root, &state, &loaded.apply_input(), c.reach().fetch()?, like.how())?;
        return plan::print(&like, &loaded, planned);
    }
    let reach = c.reach();
    // Reached first: a bus that cannot be reached is not an error of the rollback itself.
    reach.systemd()?;
    reach.fetch()?;
    let approval = Approval::new(c, &guarded, &root, "Rollback cancelled.");
    let run = pipeline::apply_loaded(&root, loaded, c.options(), &reach, &approval).context("rolling back")?;
    c.finish(run, approval.plan_shown())
}

/// The options of the plan that a converging run with `c` would make, for `rollback --plan`:
/// the same root, format, verbosity, offline, adoption, host switch and strictness.
fn plan_args(c: &ConvergeArgs) -> plan::Args {
    plan::Args {
        input: InputArgs { source_repo: None, host: None, config: None, files_dir: None },
        follow: crate::cli::input::FollowArgs { fetch: false },
        root: c.root.clone(),
        format: c.format,
        verbose: c.verbose,
        exit_code: false,
        offline: c.offline,
        adopt: c.adopt,
        switch_host: c.switch_host,
        strict: c.strict,
    }
}
