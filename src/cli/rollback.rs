//! `core-ops rollback`: converge back to an earlier applied revision, through the same planner
//! and apply as any other change.

use anyhow::{Context, Result};

use crate::cli::apply::ConvergeArgs;
use crate::cli::input::Loaded;
use crate::cli::{EXIT_FAILURE, EXIT_OK};
use crate::host::execute::{self, ApplyInput, Outcome};
use crate::host::root::Root;
use crate::host::store;
use crate::host::systemd::Systemd;
use crate::model::state::SourceRef;

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to return to (a prefix is enough); default: the one before the current.
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// How to converge.
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let c = &args.converge;
    let root = Root::open(&c.root)?;
    let state = store::load_state(&root)?;
    let snapshot = store::load_snapshot(&root, args.to.as_deref(), &state)?;
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
    let systemd = c.systemd()?;
    let systemd = systemd.as_ref().map(|s| s as &dyn Systemd);
    let report = execute::apply(&root, &input, c.fetcher()?.as_ref(), c.options(), systemd).context("rolling back")?;
    c.print(&loaded, &report)?;
    Ok(if report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE })
}
