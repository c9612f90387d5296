//! `core-ops apply`: make the host match the desired state — atomic writes, recorded ownership,
//! nothing deleted that CoreOps does not own. Before anything is written it checks, in order:
//! privileges on `/` ([`root_dir`]), the host the root belongs to ([`identity`]), and, on a
//! terminal, the person's approval of the plan it is about to execute ([`confirm`]).

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::identity::{self, Guarded, Purpose};
use crate::cli::input::{self, InputArgs, Loaded};
use crate::cli::plan::{Style, render_human};
use crate::cli::report::{APPLY_SCHEMA_VERSION, ApplyJob, ApplyReportJson, ApplySystemd, ApplyUnitFailure, PlanReport};
use crate::cli::{EXIT_FAILURE, EXIT_OK, Exit, OutputFormat, confirm, root_dir};
use crate::host::activate::SystemdRun;
use crate::host::execute::{self, ApplyInput, ApplyOptions, ApplyReport, Outcome};
use crate::host::fetch::HttpFetch;
use crate::host::root::Root;
use crate::host::store;
use crate::host::systemd::{DbusSystemd, Systemd};
use crate::model::ignition::children::{Fetch, Offline};
use crate::model::path::printable;

/// Exit codes of `apply`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   converged (or nothing to do)
  1   failed: blocked or an error of the checks (nothing written; with --strict any warning), partially applied, a unit did not come up, another host's root, declined, not root on /
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
    /// How to converge.
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

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

    /// systemd on the system bus, unless offline or converging another root than `/`.
    pub fn systemd(&self) -> Result<Option<DbusSystemd>> {
        if !talks_to_systemd(&self.root, self.offline) {
            return Ok(None);
        }
        DbusSystemd::connect().map(Some)
    }

    /// The fetcher: none with `--offline`.
    pub fn fetcher(&self) -> Result<Box<dyn Fetch>> {
        Ok(if self.offline { Box::new(Offline) } else { Box::new(HttpFetch::new()?) })
    }

    /// Prints a report as these options ask; `plan_shown` when the plan was already shown for
    /// approval (a person's terminal then gets only the outcome).
    pub fn print(&self, loaded: &Loaded, report: &ApplyReport, plan_shown: bool) -> Result<()> {
        print(loaded, report, &self.root, self.format, self.verbose, plan_shown)
    }

    /// The checks every converging command (`command`: `apply`, `rollback`) makes before it reads
    /// anything: privileges on `/`, then the root opened and its state loaded.
    pub fn open_root(&self, command: &str) -> Result<(Root, crate::model::state::State)> {
        root_dir::require_privileges(command, &self.root)?;
        let root = Root::open(&self.root)?;
        let state = store::load_state(&root)?;
        Ok((root, state))
    }

    /// The host identity guard for a run for `host` (none for a `--config` run).
    pub fn guard(&self, root: &Root, state: &crate::model::state::State, host: Option<&str>) -> Result<Guarded> {
        let shown = self.root.display().to_string();
        Ok(identity::guard(root, &shown, state, host, self.switch_host, Purpose::Converge)?)
    }
}

/// The executor's last say before it writes, under the run lock: the root still belongs to the
/// host the guard let through and, when a person is at the terminal (and not `--yes`) and the
/// plan changes anything, they approve the plan shown, which is the plan executed.
#[derive(Debug)]
pub struct Approval<'a> {
    /// The options of the run.
    pub converge: &'a ConvergeArgs,
    /// The input, for the plan's header.
    pub loaded: &'a Loaded,
    /// What the host identity guard let through.
    pub guarded: &'a Guarded,
    /// The root.
    pub root: &'a Root,
    /// What a "no" says: `Apply cancelled.` or `Rollback cancelled.`.
    pub cancelled: &'static str,
    /// Whether the plan was shown.
    pub shown: Cell<bool>,
}

impl Approval<'_> {
    /// The check [`execute::apply_approved`] calls.
    pub fn approve(&self, so_far: &ApplyReport) -> Result<()> {
        self.guarded.still_holds(self.root)?;
        let has_work = confirm::has_work(&so_far.plan, &so_far.activation);
        if self.converge.yes || !has_work || !confirm::person_at_terminal() {
            return Ok(());
        }
        let c = self.converge;
        let plan = plan_report(self.loaded, so_far, &c.root, c.verbose);
        let mut out = io::stdout().lock();
        render_human(&mut out, &plan, c.verbose, Style::detect(true))?;
        writeln!(out)?;
        self.shown.set(true);
        if confirm::ask(&mut out, &mut io::stdin().lock())? {
            return Ok(());
        }
        Err(Exit::new(EXIT_FAILURE, self.cancelled).into())
    }
}

/// Whether a run on `root` involves the running systemd: only on `/`, and never offline
/// (DESIGN §3.3).
pub fn talks_to_systemd(root: &std::path::Path, offline: bool) -> bool {
    !offline && root == std::path::Path::new("/")
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let c = &args.converge;
    let (root, state) = c.open_root("apply")?;
    let guarded = c.guard(&root, &state, args.input.host.as_deref())?;
    let opts = c.options();
    let meta = input::meta(&args.input)?;
    // --strict reads and checks the input whatever the last run did with it: no fast path.
    let converged = if c.strict { None } else { execute::try_converged(&root, &meta, opts.lock_timeout)? };
    if let Some(report) = converged {
        let loaded = Loaded {
            host: meta.host.clone(),
            source: meta.source.location.clone(),
            config: Default::default(),
            origins: Default::default(),
            overrides: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            git: None,
            input_digest: meta.input_digest.clone(),
        };
        c.print(&loaded, &report, false)?;
        return Ok(EXIT_OK);
    }
    let mut loaded = input::load(&args.input, false)?;
    input::show_warnings(&loaded, c.strict)?;
    for n in loaded.notes.iter().filter(|_| c.verbose) {
        eprintln!("{}", printable(n));
    }
    let fetch = c.fetcher()?;
    let systemd = c.systemd()?;
    let mut input = apply_input(&mut loaded, &args.input);
    guarded.keep_recorded_host(&mut input.source);
    let approval = Approval {
        converge: c,
        loaded: &loaded,
        guarded: &guarded,
        root: &root,
        cancelled: "Apply cancelled.",
        shown: Cell::new(false),
    };
    let systemd = systemd.as_ref().map(|s| s as &dyn Systemd);
    let report = execute::apply_approved(&root, &input, fetch.as_ref(), opts, systemd, &|r| approval.approve(r))?;
    c.print(&loaded, &report, approval.shown.get())?;
    Ok(if report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE })
}

/// The apply input of a loaded source; its config and origins move into it (the rest of
/// `loaded` still serves the report).
pub fn apply_input(loaded: &mut Loaded, args: &InputArgs) -> ApplyInput {
    let source = match &args.source_repo {
        Some(repo) => input::repo_source(repo, &loaded.host, loaded.git.as_ref()),
        None => input::config_source(std::path::Path::new(&loaded.source)),
    };
    ApplyInput {
        host: loaded.host.clone(),
        config: std::mem::take(&mut loaded.config),
        origins: std::mem::take(&mut loaded.origins),
        source,
        input_digest: loaded.input_digest.clone(),
    }
}

/// Prints an apply report.
pub fn print(
    loaded: &Loaded,
    report: &ApplyReport,
    root: &std::path::Path,
    output: OutputFormat,
    verbose: bool,
    plan_shown: bool,
) -> Result<()> {
    let plan = plan_report(loaded, report, root, verbose);
    let mut out = io::BufWriter::new(io::stdout().lock());
    match output {
        OutputFormat::Json => {
            let doc = ApplyReportJson {
                schema_version: APPLY_SCHEMA_VERSION,
                result: report.outcome.name().into(),
                revision: report.revision.clone(),
                generation: report.generation,
                errors: report.errors.clone(),
                cleaned_temp_files: report.cleaned,
                plan,
                systemd: systemd_json(&report.systemd),
                repeats: report.repeats,
            };
            serde_json::to_writer_pretty(&mut out, &doc).context("writing the report")?;
            writeln!(out)?;
        }
        OutputFormat::Human => {
            if !plan_shown {
                render_human(&mut out, &plan, verbose, Style::detect(io::stdout().is_terminal()))?;
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
                    write_journals(&mut out, &report.systemd)?;
                    if report.repeats > 0 {
                        writeln!(
                            out,
                            "Not converging: the {} previous run(s) of this revision failed the same way.",
                            report.repeats
                        )?;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The plan part of an apply report, as shown before the question and printed after the run.
fn plan_report(loaded: &Loaded, report: &ApplyReport, root: &std::path::Path, verbose: bool) -> PlanReport {
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
