//! `core-ops history`: the applied generations of a root, newest first — when each was applied,
//! the revision and where it came from (with the git commit when known), how the run ended and
//! what it changed. Read from the kept snapshots (`/var/lib/core-ops/history/`), which is what
//! `rollback` and `explain` go back to.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::report::{HISTORY_SCHEMA_VERSION, HistoryChanges, HistoryEntry, HistoryReport};
use crate::cli::status::source_text;
use crate::cli::{EXIT_OK, OutputFormat};
use crate::host::root::Root;
use crate::host::store::{self, Generation};
use crate::model::path::printable;
use crate::model::state::State;

/// Exit codes of `history`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   success (also when nothing was applied yet)
  1   failure: the state or a snapshot cannot be read
  2   usage error";

/// Arguments of `history`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The root directory to inspect.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Report format: human, or the versioned JSON document of `schemas/`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let root = Root::open(&args.root)?;
    let state = store::load_state(&root)?;
    let report = history(&root, &state)?;
    let mut out = super::report_output();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the history")?;
            writeln!(out)?;
        }
        OutputFormat::Human => render(&mut out, &report)?,
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// The history of a root: every kept generation, newest first, each once.
pub fn history(root: &Root, state: &State) -> Result<HistoryReport> {
    let snapshots = store::snapshots(root, state)?;
    let entries = store::generations(&snapshots).into_iter().map(|(g, _)| entry(g, state)).collect();
    Ok(HistoryReport { schema_version: HISTORY_SCHEMA_VERSION, root: root.path().display().to_string(), entries })
}

fn entry(g: Generation, state: &State) -> HistoryEntry {
    let current =
        g.generation == state.generation && state.last_applied.as_ref().is_some_and(|a| a.revision == g.revision);
    HistoryEntry {
        generation: g.generation,
        applied_at: g.applied_at,
        revision: g.revision,
        commit: g.source.as_ref().and_then(|s| s.commit.clone()),
        source: g.source,
        result: g.result,
        changes: g.changes.map(|c| HistoryChanges { created: c.created, updated: c.updated, deleted: c.deleted }),
        current,
    }
}

/// Two lines per generation; every value is shown [`printable`].
fn render(out: &mut impl Write, r: &HistoryReport) -> io::Result<()> {
    if r.entries.is_empty() {
        return writeln!(out, "Nothing applied to {} yet.", printable(&r.root));
    }
    for e in &r.entries {
        let current = if e.current { " (current)" } else { "" };
        let result = printable(e.result.as_deref().unwrap_or("result not recorded"));
        let changes = match &e.changes {
            Some(c) => format!("{} created, {} updated, {} deleted", c.created, c.updated, c.deleted),
            None => "changes not recorded".to_string(),
        };
        let at = printable(&e.applied_at);
        writeln!(out, "generation {}{current}  {at}  {result}  {changes}", e.generation)?;
        let source = e.source.as_ref().map_or_else(|| "an unrecorded source".to_string(), source_text);
        writeln!(out, "    revision {}  from {source}", printable(&e.revision))?;
    }
    Ok(())
}
