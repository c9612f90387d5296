//! `core-ops apply`: make the host match the desired state — atomic writes, recorded ownership,
//! nothing deleted that CoreOps does not own.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::input::{self, InputArgs, Loaded};
use crate::cli::plan::{Style, render_human};
use crate::cli::report::{APPLY_SCHEMA_VERSION, ApplyJob, ApplyReportJson, ApplySystemd, ApplyUnitFailure};
use crate::cli::{EXIT_FAILURE, EXIT_OK, OutputFormat};
use crate::host::activate::SystemdRun;
use crate::host::execute::{self, ApplyInput, ApplyOptions, ApplyReport, Outcome};
use crate::host::fetch::HttpFetch;
use crate::host::root::Root;
use crate::host::systemd::{DbusSystemd, Systemd};
use crate::model::ignition::children::{Fetch, Offline};
use crate::model::path::printable;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
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
}

impl ConvergeArgs {
    /// The executor's options.
    pub fn options(&self) -> ApplyOptions {
        ApplyOptions {
            adopt: self.adopt,
            lock_timeout: Duration::from_secs(self.lock_timeout),
            unit_timeout: Duration::from_secs(self.unit_timeout),
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

    /// Prints a report as these options ask.
    pub fn print(&self, loaded: &Loaded, report: &ApplyReport) -> Result<()> {
        print(loaded, report, &self.root, self.format, self.verbose)
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
    let root = Root::open(&c.root)?;
    let opts = c.options();
    let meta = input::meta(&args.input)?;
    if let Some(report) = execute::try_converged(&root, &meta, opts.lock_timeout)? {
        let loaded = Loaded {
            host: meta.host.clone(),
            source: meta.source.location.clone(),
            config: Default::default(),
            origins: Default::default(),
            overrides: Vec::new(),
            warnings: Vec::new(),
            input_digest: meta.input_digest.clone(),
        };
        c.print(&loaded, &report)?;
        return Ok(EXIT_OK);
    }
    let mut loaded = input::load(&args.input, false)?;
    for w in &loaded.warnings {
        eprintln!("{}", printable(w));
    }
    let fetch = c.fetcher()?;
    let systemd = c.systemd()?;
    let input = apply_input(&mut loaded, &args.input);
    let report = execute::apply(&root, &input, fetch.as_ref(), opts, systemd.as_ref().map(|s| s as &dyn Systemd))?;
    c.print(&loaded, &report)?;
    Ok(if report.outcome == Outcome::Converged { EXIT_OK } else { EXIT_FAILURE })
}

/// The apply input of a loaded source; its config and origins move into it (the rest of
/// `loaded` still serves the report).
pub fn apply_input(loaded: &mut Loaded, args: &InputArgs) -> ApplyInput {
    let source = match &args.source_repo {
        Some(repo) => input::repo_source(repo, &loaded.host),
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
) -> Result<()> {
    let plan = crate::cli::plan::report_with(
        loaded,
        &report.desired,
        &report.plan,
        &report.activation,
        &root.display().to_string(),
        verbose,
    );
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
            render_human(&mut out, &plan, verbose, Style::detect(io::stdout().is_terminal()))?;
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
