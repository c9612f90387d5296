//! `core-ops explain OBJECT`: one object (a path, or a unit name) — what the next apply would do
//! with it and why, where it is declared, whether CoreOps owns it, and the applied revision
//! since which it has had its current content.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::apply::apply_input;
use crate::cli::input::{self, InputArgs, Loaded};
use crate::cli::plan::{Style, origin_text, report as plan_report};
use crate::cli::report::{EXPLAIN_SCHEMA_VERSION, ExplainReport, ExplainRevision, PlanOrigin};
use crate::cli::{EXIT_FAILURE, EXIT_OK, Exit, OutputFormat};
use crate::host::execute::{self, ApplyInput};
use crate::host::root::Root;
use crate::host::store;
use crate::model::desired::{DesiredState, Role};
use crate::model::ignition::children::Offline;
use crate::model::path::{clean, printable};
use crate::model::plan::{self, PlanOptions};
use crate::model::state::State;

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An absolute path, or a unit name (`caddy.service`, `web.container`).
    pub object: String,
    /// Where the desired state comes from (default: the source of the last apply).
    #[command(flatten)]
    pub input: InputArgs,
    /// The root directory.
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
    let mut loaded = load(args, &state)?;
    let input = apply_input(&mut loaded, &args.input);
    let (desired, _) = execute::build_desired(&root, &input, &Offline, false)
        .map_err(|e| Exit::new(EXIT_FAILURE, format!("error: {e}")))?;
    let path = resolve(&args.object, &desired, &state).ok_or_else(|| {
        Exit::new(EXIT_FAILURE, format!("error: {} is neither desired nor owned on this root", args.object))
    })?;
    let (observed, owned) = execute::observe(&root, &desired, &state);
    let the_plan = plan::plan(&desired, &observed, &owned, PlanOptions::default());
    let full = plan_report(&loaded, &desired, &the_plan, &args.root.display().to_string(), true);
    let object = full.objects.into_iter().find(|o| o.path == path);
    let record = state.last_applied.iter().flat_map(|a| &a.objects).find(|r| r.path == path);
    let history = history(&root, &path, &state)?;
    let report = ExplainReport {
        schema_version: EXPLAIN_SCHEMA_VERSION,
        object: args.object.clone(),
        path: path.clone(),
        origin: object
            .as_ref()
            .map(|o| o.origin.clone())
            .or_else(|| record.map(|r| PlanOrigin { file: r.origin_file.clone(), path: r.origin_path.clone() })),
        owned: owned.contains_key(&path),
        last_changed_in: last_changed(&history),
        plan: object,
        history,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the explanation")?;
            writeln!(out)?;
        }
        OutputFormat::Human => render(&mut out, &report, Style::detect(io::stdout().is_terminal()))?,
    }
    Ok(EXIT_OK)
}

/// The input named on the command line, else the source the last apply recorded.
fn load(args: &Args, state: &State) -> Result<Loaded> {
    if args.input.source_repo.is_some() || args.input.config.is_some() {
        return input::load(&args.input, false);
    }
    let Some(source) = &state.source else {
        return Err(Exit::new(
            EXIT_FAILURE,
            "error: nothing was applied here yet; name the input with --source-repo/--host or --config",
        )
        .into());
    };
    let recorded = match source.kind.as_str() {
        "source-repo" => InputArgs {
            source_repo: Some(source.location.clone().into()),
            host: source.host.clone(),
            config: None,
            files_dir: None,
        },
        _ => InputArgs { source_repo: None, host: None, config: Some(source.location.clone().into()), files_dir: None },
    };
    input::load(&recorded, false)
}

/// The path an object name stands for.
fn resolve(object: &str, desired: &DesiredState, state: &State) -> Option<String> {
    if object.starts_with('/') {
        return Some(clean(object));
    }
    let by_role = desired.objects.values().find(|o| match &o.role {
        Role::UnitFile(u) | Role::Mask(u) | Role::Quadlet(u) => u == object,
        _ => false,
    });
    let owned = state.owned();
    let by_name = desired
        .objects
        .keys()
        .chain(owned.keys())
        .find(|p| p.rsplit('/').next() == Some(object) && !p.contains(".wants/"));
    by_role.map(|o| o.path.clone()).or_else(|| by_name.cloned())
}

/// The object in every kept snapshot, newest first.
fn history(root: &Root, path: &str, state: &State) -> Result<Vec<ExplainRevision>> {
    let mut out = Vec::new();
    for name in store::list_history(root, state)?.iter().rev() {
        let revision = name.trim_end_matches(".json").split_once('-').map_or("", |(_, r)| r);
        let Ok(snapshot) = store::load_snapshot(root, Some(revision), state) else { continue };
        let Ok(config) = store::snapshot_config(&snapshot) else { continue };
        let input = ApplyInput {
            host: snapshot.host.clone(),
            config,
            origins: store::origins_from_snapshot(&snapshot),
            source: crate::model::state::SourceRef {
                kind: "snapshot".into(),
                location: revision.into(),
                host: None,
                reference: None,
            },
            input_digest: None,
        };
        let Ok((desired, _)) = execute::build_desired(root, &input, &Offline, false) else { continue };
        let Some(o) = desired.objects.get(path) else { continue };
        out.push(ExplainRevision {
            revision: snapshot.revision.clone(),
            generation: snapshot.generation,
            applied_at: snapshot.applied_at.clone(),
            fingerprint: o.digest().or_else(|| o.target.clone()),
        });
    }
    Ok(out)
}

/// The oldest revision of the newest run of revisions with the same fingerprint.
fn last_changed(history: &[ExplainRevision]) -> Option<String> {
    let newest = history.first()?;
    history.iter().take_while(|r| r.fingerprint == newest.fingerprint).last().map(|r| r.revision.clone())
}

/// Writes the explanation for a person; every name, path and reason is shown [`printable`].
fn render(out: &mut impl Write, r: &ExplainReport, style: Style) -> io::Result<()> {
    writeln!(out, "{} ({})", printable(&r.path), printable(&r.object))?;
    if let Some(o) = &r.origin {
        writeln!(out, "  declared in  {}", origin_text(o))?;
    }
    writeln!(out, "  owned        {}", if r.owned { "yes, written by CoreOps" } else { "no" })?;
    match &r.plan {
        Some(p) => {
            let why = p.drift.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            let (mark, color) = crate::cli::plan::action_mark(&p.action);
            writeln!(out, "  next apply   {} {}{why}", style.paint(color, mark), p.action)?;
            for d in &p.changes {
                match (&d.from, &d.to) {
                    (Some(f), Some(t)) => {
                        writeln!(out, "               {}: {} → {}", d.field, printable(f), printable(t))?
                    }
                    _ => writeln!(out, "               {} changes", d.field)?,
                }
            }
            if let Some(reason) = &p.reason {
                writeln!(out, "               {}", printable(reason))?;
            }
        }
        None => writeln!(out, "  next apply   nothing (not desired and not owned)")?,
    }
    if let Some(rev) = &r.last_changed_in {
        writeln!(out, "  desired as it is now since revision {}", printable(rev))?;
    }
    for h in &r.history {
        let (revision, at) = (printable(&h.revision), printable(&h.applied_at));
        writeln!(out, "  revision {revision} (generation {}, {at})", h.generation)?;
    }
    Ok(())
}
