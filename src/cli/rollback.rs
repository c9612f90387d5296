//! `core-ops rollback`: converge back to an earlier applied revision, through the same planner
//! and apply as any other change, with the same checks first: privileges on `/`, the host the
//! root belongs to (a revision applied as another host needs `--switch-host`), and approval on a
//! terminal.

use std::cell::Cell;

use anyhow::{Context, Result};

use crate::cli::apply::{Approval, ConvergeArgs};
use crate::cli::input::Loaded;
use crate::cli::{EXIT_FAILURE, EXIT_OK};
use crate::host::execute::{self, ApplyInput, Outcome};
use crate::host::store;
use crate::host::systemd::Systemd;
use crate::model::state::SourceRef;

/// Exit codes of `rollback`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   converged back to the revision
  1   failed: no such revision, blocked, partially applied, another host's revision, declined, not root on /
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
    let config = store::snapshot_config(&snapshot)?;
    let origins = store::origins_from_snapshot(&snapshot);
    let loaded = Loaded {
        host: snapshot.host.clone(),
        source: format!("snapshot {} (generation {})", snapshot.revision, snapshot.generation),
        config: config.clone(),
        origins: origins.clone(),
        overrides: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        git: None,
        input_digest: None,
    };
    let input = ApplyInput { host: snapshot.host.clone(), config, origins, source, input_digest: None };
    if args.plan {
        return crate::cli::plan::plan_loaded(&crate::cli::plan::Args::like(c), &root, &state, &loaded, input);
    }
    let systemd = c.systemd()?;
    let systemd = systemd.as_ref().map(|s| s as &dyn Systemd);
    let approval = Approval {
        converge: c,
        loaded: &loaded,
        guarded: &guarded,
        root: &root,
        cancelled: "Rollback cancelled.",
        shown: Cell::new(false),
    };
    let fetch = c.fetcher()?;
    let report = execute::apply_approved(&root, &input, fetch.as_ref(), c.options(), systemd, &|r| approval.approve(r))
        .context("rolling back")?;
    c.print(&loaded, &report, approval.shown.get())?;
    Ok(if report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE })
}
