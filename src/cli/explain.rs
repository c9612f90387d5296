//! `core-ops explain OBJECT`: one object (a path, or a unit name) — what the next apply would do
//! with it and why, where it is declared, whether CoreOps owns it, and the applied generations
//! that held it.
//!
//! The next apply is decided exactly as `plan` decides it, by the same pipeline
//! ([`pipeline::plan`]): the same planner, and for a unit the same systemd decision table, so the
//! two never disagree; the history is the pipeline's too ([`pipeline::past`]). This file picks
//! the object out of them and prints what concerns it. A unit is shown with its drop-ins and the
//! files whose change restarts it; an object the desired state no longer has, with the
//! generation that removed it.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::input::{self, InputArgs};
use crate::cli::plan::{Style, origin_text, report_with, write_systemd};
use crate::cli::report::{
    EXPLAIN_SCHEMA_VERSION, ExplainFile, ExplainReport, ExplainRevision, PlanObject, PlanOrigin, PlanReport,
    PlanSystemd,
};
use crate::cli::{EXIT_FAILURE, EXIT_OK, Exit, OutputFormat};
use crate::host::agent;
use crate::host::pipeline::{self, Input, Past, PlanHow};
use crate::host::root::Root;
use crate::host::store::{self, Generation};
use crate::model::activation;
use crate::model::desired::{DesiredState, Object, Role};
use crate::model::ignition::children::Offline;
use crate::model::path::{clean, printable};
use crate::model::state::State;

/// Indent of the values in the human output (after `  next apply   `).
const VALUE_INDENT: &str = "               ";

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
    let mut loaded = pipeline::load(&input(args, &root, &state)?, false)?;
    // The next apply as `plan` makes it, without fetching: the systemd actions decided over the
    // units' states where systemd is asked (on `/`), or marked offline where it is not.
    let how = PlanHow { root_dir: &args.root, offline: false, adopt: false, checks: false };
    let planned = pipeline::plan(&root, &state, &loaded.apply_input(), &Offline, how)?;
    let (desired, owned) = (&planned.desired, &planned.owned);
    let past = pipeline::past(&root, &state)?;
    let path = resolve(&args.object, desired, &state, &past).ok_or_else(|| {
        Exit::new(
            EXIT_FAILURE,
            format!("error: {} is neither desired, nor owned, nor in the history of this root", args.object),
        )
    })?;
    let root_shown = args.root.display().to_string();
    let plan = report_with(&loaded, desired, &planned.plan, &planned.activation, &root_shown, true);
    let unit = unit_of(&path, desired, &state, &past);
    let object = plan.objects.iter().find(|o| o.path == path).cloned();
    let record = state.last_applied.iter().flat_map(|a| &a.objects).find(|r| r.path == path);
    let history = history(&past, &path);
    let report = ExplainReport {
        schema_version: EXPLAIN_SCHEMA_VERSION,
        object: args.object.clone(),
        path: path.clone(),
        origin: object
            .as_ref()
            .map(|o| o.origin.clone())
            .or_else(|| record.map(|r| PlanOrigin { file: r.origin_file.clone(), path: r.origin_path.clone() }))
            .or_else(|| past_origin(&past, &path)),
        owned: owned.contains_key(&path),
        last_changed_in: desired.objects.contains_key(&path).then(|| last_changed(&history)).flatten(),
        systemd: unit.as_deref().map(|u| systemd_of(u, &plan, desired)),
        dropins: unit.as_deref().map(|u| files(activation::dropins_of(u, desired))).unwrap_or_default(),
        restarted_by: unit.as_deref().map(|u| files(activation::restarted_by(u, desired))).unwrap_or_default(),
        removed_in: removed_in(&past, &path, desired.objects.contains_key(&path)),
        unit,
        plan: object,
        history,
    };
    let mut out = super::report_output();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the explanation")?;
            writeln!(out)?;
        }
        OutputFormat::Human => render(&mut out, &report, Style::detect(io::stdout().is_terminal()))?,
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// The systemd side of the next apply that concerns `unit`: its own actions and held actions,
/// and the reload when its own files change.
fn systemd_of(unit: &str, plan: &PlanReport, desired: &DesiredState) -> PlanSystemd {
    let dropins: Vec<&str> = activation::dropins_of(unit, desired).iter().map(|o| o.path.as_str()).collect();
    let own_files_change = plan.objects.iter().any(|o| {
        o.action != "no-op"
            && ((o.unit.as_deref() == Some(unit) && o.role.as_deref() != Some("enable"))
                || dropins.contains(&o.path.as_str()))
    });
    let on_unit = |actions: &[crate::cli::report::PlanUnitAction]| {
        actions.iter().filter(|a| a.unit == unit).cloned().collect::<Vec<_>>()
    };
    PlanSystemd {
        daemon_reload: plan.systemd.daemon_reload && own_files_change,
        actions: on_unit(&plan.systemd.actions),
        held: on_unit(&plan.systemd.held),
        offline: plan.systemd.offline.clone(),
        ..PlanSystemd::default()
    }
}

fn files(objects: Vec<&Object>) -> Vec<ExplainFile> {
    objects
        .into_iter()
        .map(|o| ExplainFile {
            path: o.path.clone(),
            origin: PlanOrigin { file: o.origin.file.clone(), path: o.origin.path.clone() },
        })
        .collect()
}

/// The input named on the command line, else the source the last apply recorded.
fn input(args: &Args, root: &Root, state: &State) -> Result<Input> {
    if args.input.source_repo.is_some() || args.input.config.is_some() {
        return Ok(args.input.input()?);
    }
    let Some(source) = &state.source else {
        return Err(Exit::new(
            EXIT_FAILURE,
            "error: nothing was applied here yet; name the input with --source-repo/--host or --config",
        )
        .into());
    };
    if source.kind == "git" {
        return Ok(agent::tracked_input(root, None)?.ok_or_else(input::no_input)?);
    }
    Ok(pipeline::recorded_input(source).ok_or_else(input::no_input)?)
}

/// The path an object name stands for: a path as given, else the unit or file of that name in
/// the desired state, the owned objects, or the history (newest first).
fn resolve(object: &str, desired: &DesiredState, state: &State, past: &[Past]) -> Option<String> {
    if object.starts_with('/') {
        return Some(clean(object));
    }
    let owned = state.owned();
    let named = |p: &&String| p.rsplit('/').next() == Some(object) && !p.contains(".wants/");
    let in_desired = |d: &DesiredState| unit_path(object, d).or_else(|| d.objects.keys().find(named).cloned());
    in_desired(desired)
        .or_else(|| owned.keys().find(named).cloned())
        .or_else(|| past.iter().filter_map(|p| p.desired.as_deref()).find_map(in_desired))
}

/// The path of the file that makes unit `name` (its unit file, Quadlet or mask).
fn unit_path(name: &str, desired: &DesiredState) -> Option<String> {
    desired
        .objects
        .values()
        .find(|o| matches!(&o.role, Role::UnitFile(u) | Role::Mask(u) | Role::Quadlet(u) if u == name))
        .map(|o| o.path.clone())
}

/// The unit whose file `path` is (a unit file, Quadlet or mask), in the desired state, the
/// state's records, or the history.
fn unit_of(path: &str, desired: &DesiredState, state: &State, past: &[Past]) -> Option<String> {
    let of = |o: &Object| match &o.role {
        Role::UnitFile(u) | Role::Mask(u) | Role::Quadlet(u) => Some(u.clone()),
        _ => None,
    };
    if let Some(o) = desired.objects.get(path) {
        return of(o);
    }
    let recorded = state.last_applied.iter().flat_map(|a| &a.objects).find(|r| r.path == path);
    recorded
        .and_then(|r| of(&r.object()))
        .or_else(|| past.iter().filter_map(|p| p.desired.as_deref()?.objects.get(path)).find_map(of))
}

/// Where the newest kept generation that held `path` declared it.
fn past_origin(past: &[Past], path: &str) -> Option<PlanOrigin> {
    let o = past.iter().find_map(|p| p.desired.as_deref()?.objects.get(path).cloned())?;
    Some(PlanOrigin { file: o.origin.file, path: o.origin.path })
}

/// The object in every kept generation that holds it, newest first.
fn history(past: &[Past], path: &str) -> Vec<ExplainRevision> {
    past.iter()
        .filter_map(|p| {
            let o = p.desired.as_deref()?.objects.get(path)?;
            Some(revision_entry(&p.generation, o.digest().or_else(|| o.target.clone())))
        })
        .collect()
}

fn revision_entry(g: &Generation, fingerprint: Option<String>) -> ExplainRevision {
    ExplainRevision {
        revision: g.revision.clone(),
        generation: g.generation,
        applied_at: g.applied_at.clone(),
        fingerprint,
        commit: g.source.as_ref().and_then(|s| s.commit.clone()),
        commit_summary: g.source.as_ref().and_then(|s| s.summary.clone()),
    }
}

/// ` (commit C "summary")` of a revision read from git, or nothing.
fn commit_note(h: Option<&ExplainRevision>) -> String {
    let Some(commit) = h.and_then(|h| h.commit.as_deref()) else { return String::new() };
    let short = commit.get(..12).unwrap_or(commit);
    match h.and_then(|h| h.commit_summary.as_deref()) {
        Some(summary) => format!(", commit {} \"{}\"", printable(short), printable(summary)),
        None => format!(", commit {}", printable(short)),
    }
}

/// For an object no longer desired: the generation that removed it, i.e. the oldest of the
/// newest generations without it, when an older generation had it.
fn removed_in(past: &[Past], path: &str, desired_now: bool) -> Option<ExplainRevision> {
    if desired_now {
        return None;
    }
    let mut removal = None;
    for p in past {
        let Some(desired) = p.desired.as_deref() else { continue };
        if desired.objects.contains_key(path) {
            return removal.map(|g: &Generation| revision_entry(g, None));
        }
        removal = Some(&p.generation);
    }
    None
}

/// The oldest revision of the newest run of generations with the same fingerprint.
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
        Some(p) => write_next_action(out, p, style)?,
        None => writeln!(out, "  next apply   nothing (not desired and not owned)")?,
    }
    if let Some(s) = &r.systemd {
        write_systemd(out, s, VALUE_INDENT, style)?;
    }
    write_files(out, "drop-ins    ", &r.dropins)?;
    write_files(out, "restarted by", &r.restarted_by)?;
    if let Some(g) = &r.removed_in {
        let (revision, at) = (printable(&g.revision), printable(&g.applied_at));
        writeln!(out, "  removed in generation {} (revision {revision}, {at})", g.generation)?;
    }
    if let Some(rev) = &r.last_changed_in {
        let since = r.history.iter().rev().find(|h| &h.revision == rev);
        writeln!(out, "  desired as it is now since revision {}{}", printable(rev), commit_note(since))?;
    }
    for h in &r.history {
        let (revision, at) = (printable(&h.revision), printable(&h.applied_at));
        writeln!(out, "  revision {revision} (generation {}, {at}{})", h.generation, commit_note(Some(h)))?;
    }
    Ok(())
}

/// The object's own action in the next apply, with its details.
fn write_next_action(out: &mut impl Write, p: &PlanObject, style: Style) -> io::Result<()> {
    let why = p.drift.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    let (mark, color) = crate::cli::plan::action_mark(&p.action);
    writeln!(out, "  next apply   {} {}{why}", style.paint(color, mark), p.action)?;
    for d in &p.changes {
        match (&d.from, &d.to) {
            (Some(f), Some(t)) => writeln!(out, "{VALUE_INDENT}{}: {} → {}", d.field, printable(f), printable(t))?,
            _ => writeln!(out, "{VALUE_INDENT}{} changes", d.field)?,
        }
    }
    if let Some(reason) = &p.reason {
        writeln!(out, "{VALUE_INDENT}{}", printable(reason))?;
    }
    Ok(())
}

/// `  LABEL PATH (ORIGIN)` for the first file, the others aligned below it.
fn write_files(out: &mut impl Write, label: &str, files: &[ExplainFile]) -> io::Result<()> {
    for (i, f) in files.iter().enumerate() {
        let lead = if i == 0 { format!("  {label} ") } else { VALUE_INDENT.to_string() };
        writeln!(out, "{lead}{} ({})", printable(&f.path), origin_text(&f.origin))?;
    }
    Ok(())
}
