//! `core-ops agent`: one unattended cycle, as `core-ops.timer` runs it (the cycle itself is
//! [`agent::run`]). Without `/etc/core-ops/tracking.yaml` it says so and exits 0 (the timer may be
//! enabled before `init`); while suspended it does nothing and exits 0. It never asks: there is
//! no one to ask.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::converge::{Approval, ConvergeArgs, apply_json, write_human};
use crate::cli::report::{AGENT_SCHEMA_VERSION, AgentCommit, AgentFetch, AgentReportJson, AgentTracking};
use crate::cli::{EXIT_OK, OutputFormat, confirm};
use crate::host::agent::{self, Cycle, CycleOptions, CycleReport, Effects, FetchOutcome, short};
use crate::host::git::CommitInfo;
use crate::host::store;
use crate::host::tracking_file;
use crate::model::agent::Suspension;
use crate::model::path::printable;
use crate::model::tracking::Tracking;

/// Exit codes of `agent`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   converged, nothing to do, suspended, or not initialised
  1   failed: the tip rewinds the last applied commit or is not signed by a trusted key (kept out), an apply failed
  2   usage error
  65  the repository at the tip is invalid for this host (kept out; the last good commit stays applied)
  75  the remote could not be reached (the host was still converged to the cached commit)";

/// Arguments of `agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The root directory to converge.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Fetch nothing and talk to no systemd: converge the files to the cached commit.
    #[arg(long)]
    pub offline: bool,
    /// Evaluate the tip again even though an earlier cycle kept it out.
    #[arg(long)]
    pub retry: bool,
    /// Report format: human, or the versioned JSON document of `schemas/`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Seconds to wait for another run to release the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Seconds the fetch may take; after that the cycle converges the cached commit and exits 75.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub fetch_timeout: u64,
    /// Seconds each started or restarted unit gets to become active.
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    pub unit_timeout: u64,
    /// Show unchanged objects and whole diffs.
    #[arg(short, long)]
    pub verbose: bool,
}

impl Args {
    /// The options of the apply inside the cycle: never asking, never adopting.
    fn converge(&self, switch_host: bool) -> ConvergeArgs {
        ConvergeArgs {
            root: self.root.clone(),
            offline: self.offline,
            unit_timeout: self.unit_timeout,
            adopt: false,
            format: self.format,
            lock_timeout: self.lock_timeout,
            verbose: self.verbose,
            strict: false,
            yes: true,
            switch_host,
        }
    }
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let probe = args.converge(false);
    let (root, state) = probe.open_root("agent")?;
    let Some(tracking) = tracking_file::load(&root)? else {
        return finish(args, Cycle::NotInitialised);
    };
    let record = store::load_agent(&root)?;
    if let Some(s) = record.suspended {
        // Suspended cycles do nothing, whatever the root: not even the host check.
        return finish(args, Cycle::Suspended(s));
    }
    let switch_host = record.host_switch.as_deref() == Some(tracking.host.as_str());
    let c = args.converge(switch_host);
    let guarded = c.guard(&root, &state, Some(&tracking.host))?;
    let approval = Approval::new(&c, &guarded, &root, "Agent cycle cancelled.");
    let reach = c.reach();
    let opts = CycleOptions {
        offline: args.offline,
        retry: args.retry,
        progress: io::stderr().is_terminal(),
        fetch_timeout: std::time::Duration::from_secs(args.fetch_timeout),
        apply: c.options(),
    };
    let cycle = agent::run(&root, &tracking, Effects { reach: &reach, caller: &approval }, opts)?;
    finish(args, cycle)
}

/// Prints a cycle as asked and returns its exit code.
fn finish(args: &Args, cycle: Cycle) -> Result<u8> {
    let code = exit_code(&cycle);
    if let Cycle::Ran(report) = &cycle {
        write_problems(report);
    }
    let mut out = super::report_output();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &json(args, &cycle)).context("writing the report")?;
            writeln!(out)?;
        }
        OutputFormat::Human => write_cycle(&mut out, args, &cycle)?,
    }
    out.flush()?;
    Ok(code)
}

fn exit_code(cycle: &Cycle) -> u8 {
    match cycle {
        Cycle::Ran(report) => report.exit_code,
        Cycle::NotInitialised | Cycle::Suspended(_) => EXIT_OK,
    }
}

/// The notice of a host that follows no repository.
const NOT_INITIALISED: &str = "core-ops agent: this host follows no repository yet (no /etc/core-ops/tracking.yaml); run `core-ops init REPO REF`.";

fn suspended_line(s: &Suspension) -> String {
    let why = s.reason.as_deref().map(|r| format!(": {}", printable(r))).unwrap_or_default();
    format!("core-ops agent: suspended since {}{why}; nothing fetched or changed (`core-ops resume` ends it).", s.since)
}

/// Writes a cycle for people: problems on standard error, the apply's report (when it changed
/// anything) and one summary line on standard output.
fn write_cycle(out: &mut impl Write, args: &Args, cycle: &Cycle) -> Result<()> {
    let report = match cycle {
        Cycle::NotInitialised => return Ok(writeln!(out, "{NOT_INITIALISED}")?),
        Cycle::Suspended(s) => return Ok(writeln!(out, "{}", suspended_line(s))?),
        Cycle::Ran(report) => report,
    };
    if let (Some(loaded), Some(apply)) = (&report.loaded, &report.apply) {
        let did_something =
            confirm::has_work(&apply.plan, &apply.activation) || !apply.errors.is_empty() || args.verbose;
        if did_something {
            write_human(out, loaded, apply, &args.root, args.verbose, false)?;
        }
    }
    writeln!(out, "core-ops agent: {}.", printable(&report.summary))?;
    Ok(())
}

/// The fetch's warnings and error, the refusal and other errors, on standard error (whatever the
/// report's format, as other commands do).
fn write_problems(report: &CycleReport) {
    match &report.fetch {
        FetchOutcome::Fetched { warnings, .. } => {
            for w in warnings {
                eprintln!("warning: {}", printable(w));
            }
        }
        FetchOutcome::Failed { error, .. } => eprintln!(
            "error: fetching {} from {}: {}",
            printable(&report.tracking.reference),
            printable(&report.tracking.repository),
            printable(error)
        ),
        FetchOutcome::Skipped => {}
    }
    if let Some(r) = &report.refusal {
        if !report.refusal_is_new {
            eprintln!(
                "error: the tip {} stays kept out (since {}); it is tried again when {} moves, or now with `core-ops agent --retry`:",
                short(&r.commit),
                r.at,
                printable(&report.tracking.reference)
            );
        }
        for line in r.reason.lines() {
            eprintln!("{}", error_line(line));
        }
    }
    for e in &report.errors {
        eprintln!("{}", error_line(e));
    }
}

/// `line` as an error line: prefixed with `error: `, unless it names its severity already (the
/// located issues of a layout do).
fn error_line(line: &str) -> String {
    let line = printable(line);
    if line.starts_with("error: ") || line.starts_with("warning: ") {
        line.into_owned()
    } else {
        format!("error: {line}")
    }
}

/// The JSON document of a cycle.
fn json(args: &Args, cycle: &Cycle) -> AgentReportJson {
    let mut doc = AgentReportJson {
        schema_version: AGENT_SCHEMA_VERSION,
        result: String::new(),
        exit_code: exit_code(cycle),
        summary: String::new(),
        tracking: None,
        suspended: None,
        fetch: None,
        tip: None,
        refused: None,
        commit: None,
        errors: Vec::new(),
        apply: None,
    };
    match cycle {
        Cycle::NotInitialised => {
            doc.result = "not-initialised".into();
            doc.summary = NOT_INITIALISED.into();
        }
        Cycle::Suspended(s) => {
            doc.result = "suspended".into();
            doc.summary = suspended_line(s);
            doc.suspended = Some(s.clone());
        }
        Cycle::Ran(r) => {
            doc.result = result_name(r).into();
            doc.summary = r.summary.clone();
            doc.tracking = Some(tracking_json(&r.tracking));
            doc.fetch = Some(fetch_json(&r.fetch));
            doc.tip = r.tip.clone();
            doc.refused = r.refusal.clone();
            doc.commit = r.converged_to.as_ref().map(commit_json);
            doc.errors = r.errors.clone();
            doc.apply = match (&r.loaded, &r.apply) {
                (Some(l), Some(a)) => Some(apply_json(l, a, &args.root, args.verbose)),
                _ => None,
            };
        }
    }
    doc
}

fn result_name(r: &CycleReport) -> &'static str {
    let apply_failed = r.apply.as_ref().is_some_and(|a| a.outcome != crate::host::execute::Outcome::Converged);
    if apply_failed || !r.errors.is_empty() {
        "failed"
    } else if r.refusal.is_some() {
        "refused"
    } else if matches!(r.fetch, FetchOutcome::Failed { .. }) {
        "fetch-failed"
    } else {
        "converged"
    }
}

/// The tracking part of a report (also `status`'s).
pub fn tracking_json(t: &Tracking) -> AgentTracking {
    AgentTracking {
        repository: t.repository.clone(),
        reference: t.reference.clone(),
        host: t.host.clone(),
        trust: t.trust.clone(),
    }
}

fn fetch_json(f: &FetchOutcome) -> AgentFetch {
    match f {
        FetchOutcome::Skipped => {
            AgentFetch { result: "skipped".into(), commit: None, error: None, unreachable: false, warnings: Vec::new() }
        }
        FetchOutcome::Fetched { commit, warnings } => AgentFetch {
            result: "fetched".into(),
            commit: Some(commit.clone()),
            error: None,
            unreachable: false,
            warnings: warnings.clone(),
        },
        FetchOutcome::Failed { error, unreachable } => AgentFetch {
            result: "failed".into(),
            commit: None,
            error: Some(error.clone()),
            unreachable: *unreachable,
            warnings: Vec::new(),
        },
    }
}

fn commit_json(c: &CommitInfo) -> AgentCommit {
    AgentCommit { id: c.id.clone(), summary: c.summary.clone(), author: c.author.clone(), time: c.time.clone() }
}
