//! `core-ops status`: what CoreOps last applied to this root, how the last run ended, and
//! which owned objects drifted since.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::report::{PlanOrigin, STATUS_SCHEMA_VERSION, StatusObject, StatusReport};
use crate::cli::{EXIT_OK, OutputFormat};
use crate::host::root::Root;
use crate::host::store;
use crate::model::path::printable;
use crate::model::plan::{self, Observed};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The root directory to inspect.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Report format: human, or the versioned JSON document of `schemas/`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// List every owned object, not only drifted ones.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let root = Root::open(&args.root)?;
    let report = status(&root)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the status")?;
            writeln!(out)?;
        }
        OutputFormat::Human => render(&mut out, &report, args.verbose)?,
    }
    Ok(EXIT_OK)
}

/// The status of a root.
pub fn status(root: &Root) -> Result<StatusReport> {
    let state = store::load_state(root)?;
    let records = state.last_applied.as_ref().map(|a| a.objects.clone()).unwrap_or_default();
    let owned: Vec<StatusObject> = records
        .iter()
        .map(|r| {
            let seen = root.observe(&r.path);
            let condition = match &seen {
                Observed::Missing => "missing",
                s if plan::matches_record(s, &r.owned()) => "ok",
                _ => "modified",
            };
            StatusObject {
                path: r.path.clone(),
                kind: r.kind.clone(),
                state: condition.into(),
                origin: PlanOrigin { file: r.origin_file.clone(), path: r.origin_path.clone() },
            }
        })
        .collect();
    Ok(StatusReport {
        schema_version: STATUS_SCHEMA_VERSION,
        root: root.path().display().to_string(),
        source: state.source.clone(),
        revision: state.last_applied.as_ref().map(|a| a.revision.clone()),
        generation: state.generation,
        applied_at: state.last_applied.as_ref().map(|a| a.applied_at.clone()),
        last_run: state.last_run.clone(),
        interrupted: state.pending.as_ref().map(|p| p.revision.clone()),
        drifted: owned.iter().filter(|o| o.state != "ok").count(),
        owned,
    })
}

/// Writes the status for a person; every name, path and message is shown [`printable`].
fn render(out: &mut impl Write, r: &StatusReport, verbose: bool) -> io::Result<()> {
    let Some(revision) = &r.revision else {
        writeln!(out, "Nothing applied to {} yet (no {}).", printable(&r.root), store::STATE_FILE)?;
        return Ok(());
    };
    let revision = printable(revision);
    if let Some(s) = &r.source {
        let host = s.host.as_deref().map(|h| format!(", host {}", printable(h))).unwrap_or_default();
        writeln!(out, "Source:      {} {}{host}", printable(&s.kind), printable(&s.location))?;
    }
    writeln!(
        out,
        "Revision:    {revision} (generation {}, applied {})",
        r.generation,
        printable(r.applied_at.as_deref().unwrap_or("?"))
    )?;
    if let Some(run) = &r.last_run {
        let repeats =
            if run.repeats > 0 { format!(", same result {} runs in a row", run.repeats + 1) } else { String::new() };
        let (result, run_revision, at) = (printable(&run.result), printable(&run.revision), printable(&run.at));
        writeln!(out, "Last run:    {result} on revision {run_revision} at {at}{repeats}")?;
        if let Some(m) = &run.message {
            writeln!(out, "             {}", printable(m))?;
        }
    }
    if let Some(p) = &r.interrupted {
        let p = printable(p);
        writeln!(out, "Interrupted: an apply of revision {p} did not finish; the next apply completes it")?;
    }
    writeln!(out, "Owned:       {} objects, {} drifted since the last apply", r.owned.len(), r.drifted)?;
    for o in r.owned.iter().filter(|o| verbose || o.state != "ok") {
        writeln!(out, "  {:<8} {} ({})", o.state, printable(&o.path), printable(&o.origin.file))?;
    }
    Ok(())
}
