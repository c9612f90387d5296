//! What the two converging commands, `apply` and `rollback`, share on the command line: their
//! options ([`ConvergeArgs`]), the checks they make before they read anything (root privileges,
//! through [`root_dir`], then the host the root belongs to, through [`identity`]), the person's
//! say in the run ([`Approval`], asked through [`confirm`]), and the report printed at the end.
//! The run itself is the pipeline's ([`pipeline::converge`], [`pipeline::apply_loaded`]).

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::identity::{self, Guarded, Purpose};
use crate::cli::plan::{Style, render_human};
use crate::cli::report::{APPLY_SCHEMA_VERSION, ApplyJob, ApplyReportJson, ApplySystemd, ApplyUnitFailure, PlanReport};
use crate::cli::{EXIT_FAILURE, EXIT_OK, Exit, OutputFormat, confirm, input, root_dir};
use crate::host::activate::SystemdRun;
use crate::host::execute::{ApplyOptions, ApplyReport, Outcome};
use crate::host::pipeline::{self, Caller, Loaded, Machine};
use crate::host::root::Root;
use crate::host::store;
use crate::model::path::printable;
use crate::model::state::State;

/// The options every converging command (`apply`, `rollback`) takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvergeArgs {
    /// The root directory to converge.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Fetch nothing over the network and talk to no systemd: only write files. Implied for
    /// systemd when --root is not `/`.
    #[arg(long)]
    pub offline: bool,
    /// Seconds each started or restarted unit gets to become active.
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    pub unit_timeout: u64,
    /// Take over paths that exist, differ and were not written by CoreOps.
    #[arg(long)]
    pub adopt: bool,
    /// Report format: human, or the versioned JSON document of `schemas/`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Seconds to wait for another run to release the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Show unchanged objects and whole diffs.
    #[arg(short, long)]
    pub verbose: bool,
    /// Fail on any warning: of the input (as in `render-ignition --strict`) and of the checks
    /// before the writes. Nothing is written then.
    #[arg(long)]
    pub strict: bool,
    /// Apply without asking, even on a terminal (a run without a terminal never asks).
    #[arg(short, long)]
    pub yes: bool,
    /// Converge a root that was last applied as another host (or that /etc/hostname names
    /// otherwise): a deliberate move of the machine to this host.
    #[arg(long)]
    pub switch_host: bool,
}

impl ConvergeArgs {
    /// The executor's options.
    pub fn options(&self) -> ApplyOptions {
        ApplyOptions {
            adopt: self.adopt,
            lock_timeout: Duration::from_secs(self.lock_timeout),
            unit_timeout: Duration::from_secs(self.unit_timeout),
            strict: self.strict,
        }
    }

    /// What the run reaches: the network unless `--offline`, systemd on `/` unless `--offline`.
    pub fn reach(&self) -> Machine {
        Machine::new(&self.root, self.offline)
    }

    /// The checks every converging command (`command`: `apply`, `rollback`) makes before it reads
    /// anything: root privileges, then the root opened and its state loaded.
    pub fn open_root(&self, command: &str) -> Result<(Root, State)> {
        root_dir::require_privileges_to_converge(command, &self.root)?;
        let root = Root::open(&self.root)?;
        let state = store::load_state(&root)?;
        Ok((root, state))
    }

    /// The host identity guard for a run for `host` (none for a `--config` run).
    pub fn guard(&self, root: &Root, state: &State, host: Option<&str>) -> Result<Guarded> {
        let shown = self.root.display().to_string();
        Ok(identity::guard(root, &shown, state, host, self.switch_host, Purpose::Converge)?)
    }

    /// Prints the run's report as these options ask and returns the exit code; `plan_shown`
    /// when the plan was already shown for approval (a person's terminal then gets only the
    /// outcome). The run is the command's last work: its memory is left to the process's end.
    pub fn finish(&self, run: pipeline::Converged, plan_shown: bool) -> Result<u8> {
        print(&run.loaded, &run.report, &self.root, self.format, self.verbose, plan_shown)?;
        let code = if run.report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE };
        // The process ends right after this: its memory goes back to the system at once, rather
        // than every object of a large run being freed one by one first.
        std::mem::forget(run);
        Ok(code)
    }
}

/// The person's say in a converging run: the input's warnings shown (under `--strict` they stop
/// it), and the last say before anything is written, under the run lock: the root still belongs
/// to the host the guard let through and, when a person is at the terminal (and not `--yes`) and
/// the plan changes anything, they approve the plan shown, which is the plan executed.
#[derive(Debug)]
pub struct Approval<'a> {
    /// The options of the run.
    converge: &'a ConvergeArgs,
    /// What the host identity guard let through.
    guarded: &'a Guarded,
    /// The root.
    root: &'a Root,
    /// What a "no" says: `Apply cancelled.` or `Rollback cancelled.`.
    cancelled: &'static str,
    /// Whether the plan was shown.
    shown: Cell<bool>,
}

impl<'a> Approval<'a> {
    /// The say of a run with `converge`'s options on `root`, which `guarded` let through;
    /// `cancelled` is what a "no" prints.
    pub fn new(converge: &'a ConvergeArgs, guarded: &'a Guarded, root: &'a Root, cancelled: &'static str) -> Self {
        Approval { converge, guarded, root, cancelled, shown: Cell::new(false) }
    }

    /// Whether the plan was shown for approval.
    pub fn plan_shown(&self) -> bool {
        self.shown.get()
    }
}

impl Caller for Approval<'_> {
    fn loaded(&self, loaded: &mut Loaded) -> Result<()> {
        input::show_warnings(loaded, self.converge.strict)?;
        input::show_notes(loaded, self.converge.verbose);
        self.guarded.keep_recorded_host(&mut loaded.source_ref);
        Ok(())
    }

    fn approve(&self, loaded: &Loaded, so_far: &ApplyReport) -> Result<()> {
        self.guarded.still_holds(self.root)?;
        let has_work = confirm::has_work(&so_far.plan, &so_far.activation);
        if self.converge.yes || !has_work || !confirm::person_at_terminal() {
            return Ok(());
        }
        let c = self.converge;
        let plan = plan_report(loaded, so_far, &c.root, c.verbose);
        let mut out = io::stdout().lock();
        render_human(&mut out, &plan, c.verbose, Style::detect(true))?;
        writeln!(out)?;
        self.shown.set(true);
        if confirm::ask(&mut out, &mut io::stdin().lock())? {
            return Ok(());
        }
        Err(Exit::new(EXIT_FAILURE, self.cancelled).into())
    }

    fn may_wait(&self) -> bool {
        !self.converge.yes && confirm::person_at_terminal()
    }
}

/// Prints an apply report.
fn print(
    loaded: &Loaded,
    report: &ApplyReport,
    root: &Path,
    output: OutputFormat,
    verbose: bool,
    plan_shown: bool,
) -> Result<()> {
    let mut out = super::report_output();
    match output {
        OutputFormat::Json => {
            let doc = apply_json(loaded, report, root, verbose);
            serde_json::to_writer_pretty(&mut out, &doc).context("writing the report")?;
            writeln!(out)?;
        }
        OutputFormat::Human => write_human(&mut out, loaded, report, root, verbose, plan_shown)?,
    }
    out.flush()?;
    Ok(())
}

/// The JSON document of an apply report.
pub fn apply_json(loaded: &Loaded, report: &ApplyReport, root: &Path, verbose: bool) -> ApplyReportJson {
    ApplyReportJson {
        schema_version: APPLY_SCHEMA_VERSION,
        result: report.outcome.name().into(),
        revision: report.revision.clone(),
        generation: report.generation,
        errors: report.errors.clone(),
        cleaned_temp_files: report.cleaned,
        plan: plan_report(loaded, report, root, verbose),
        systemd: systemd_json(&report.systemd),
        repeats: report.repeats,
    }
}

/// Writes an apply report for people: the plan (unless it was shown for approval), then how the
/// run ended.
pub fn write_human(
    out: &mut impl Write,
    loaded: &Loaded,
    report: &ApplyReport,
    root: &Path,
    verbose: bool,
    plan_shown: bool,
) -> Result<()> {
    if !plan_shown {
        let plan = plan_report(loaded, report, root, verbose);
        render_human(out, &plan, verbose, Style::detect(io::stdout().is_terminal()))?;
    }
    if report.cleaned > 0 {
        writeln!(out, "Removed {} leftover temp file(s) of an interrupted run.", report.cleaned)?;
    }
    match report.outcome {
        Outcome::Converged => {
            writeln!(out, "Apply complete: revision {} is generation {}.", report.revision, report.generation)?
        }
        other => {
            writeln!(out, "Apply {}: revision {} was not recorded as applied.", other.name(), report.revision)?;
            for e in &report.errors {
                writeln!(out, "  error: {}", printable(e))?;
            }
            write_journals(out, &report.systemd)?;
            if report.repeats > 0 {
                writeln!(
                    out,
                    "Not converging: the {} previous run(s) of this revision failed the same way.",
                    report.repeats
                )?;
            }
        }
    }
    Ok(())
}

/// The plan part of an apply report, as shown before the question and printed after the run.
fn plan_report(loaded: &Loaded, report: &ApplyReport, root: &Path, verbose: bool) -> PlanReport {
    let mut plan = crate::cli::plan::report_with(
        loaded,
        &report.desired,
        &report.plan,
        &report.activation,
        &root.display().to_string(),
        verbose,
    );
    // What stopped the run is listed with its errors; what did not is shown with the plan.
    plan.systemd.check_warnings = report.checks.warnings.clone();
    plan.systemd.check_notes = report.checks.notes.clone();
    plan
}

fn systemd_json(run: &SystemdRun) -> ApplySystemd {
    ApplySystemd {
        reloaded: run.reloaded,
        jobs: run
            .done
            .iter()
            .map(|(a, result)| ApplyJob {
                verb: a.verb.name().into(),
                unit: a.unit.clone(),
                cause: a.cause.clone(),
                result: result.clone(),
            })
            .collect(),
        failures: run
            .failures
            .iter()
            .map(|f| ApplyUnitFailure {
                unit: f.unit.clone(),
                reason: f.reason.clone(),
                active_state: f.state.active_state.clone(),
                sub_state: f.state.sub_state.clone(),
                result: f.state.result.clone(),
                journal: f.journal.clone(),
            })
            .collect(),
    }
}

/// The journal excerpts of failed units, indented under their name, [`printable`].
fn write_journals(out: &mut impl Write, run: &SystemdRun) -> io::Result<()> {
    for f in run.failures.iter().filter(|f| !f.journal.is_empty()) {
        writeln!(out, "  journal of {}:", printable(&f.unit))?;
        for line in &f.journal {
            writeln!(out, "    {}", printable(line))?;
        }
    }
    Ok(())
}
