//! `core-ops rollback`: converge back to an earlier applied revision, through the same planner
//! and apply as any other change.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::input::Loaded;
use crate::cli::{EXIT_FAILURE, EXIT_OK, OutputFormat, apply};
use crate::host::execute::{self, ApplyInput, ApplyOptions, Outcome};
use crate::host::fetch::HttpFetch;
use crate::host::root::Root;
use crate::host::store;
use crate::model::ignition::children::{Fetch, Offline};
use crate::model::state::SourceRef;

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to return to (a prefix is enough); default: the one before the current.
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// The root directory to converge.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Fetch nothing over the network and talk to no systemd.
    #[arg(long)]
    pub offline: bool,
    /// Take over paths that exist, differ and were not written by CoreOps.
    #[arg(long)]
    pub adopt: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Seconds to wait for another run to release the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Show unchanged objects and whole diffs.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let root = Root::open(&args.root)?;
    let state = store::load_state(&root)?;
    let current = state.last_applied.as_ref().map(|a| a.revision.clone());
    let snapshot = store::load_snapshot(&root, args.to.as_deref(), current.as_deref())?;
    let config = store::snapshot_config(&snapshot)?;
    let origins = store::origins_from_snapshot(&snapshot);
    let source = snapshot.source.clone().unwrap_or(SourceRef {
        kind: "snapshot".into(),
        location: snapshot.revision.clone(),
        host: None,
        reference: None,
    });
    let loaded = Loaded {
        host: snapshot.host.clone(),
        source: format!("snapshot {} (generation {})", snapshot.revision, snapshot.generation),
        config: config.clone(),
        origins: origins.clone(),
        overrides: Vec::new(),
        warnings: Vec::new(),
        input_digest: None,
    };
    let input = ApplyInput { host: snapshot.host.clone(), config, origins, source, input_digest: None };
    let fetch: Box<dyn Fetch> = if args.offline { Box::new(Offline) } else { Box::new(HttpFetch::new()?) };
    let opts = ApplyOptions { adopt: args.adopt, lock_timeout: Duration::from_secs(args.lock_timeout) };
    let report = execute::apply(&root, &input, fetch.as_ref(), opts).context("rolling back")?;
    apply::print(&loaded, &report, &args.root, args.output, args.verbose)?;
    Ok(if report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE })
}
