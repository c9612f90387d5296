//! `core-ops status`: what CoreOps last applied to this root, how the last run ended, which
//! owned objects drifted since and, on a host that follows a repository, what it follows, the
//! last fetch, whether the host is behind, and the agent's last error or suspension.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::report::{PlanOrigin, STATUS_SCHEMA_VERSION, StatusFollowing, StatusObject, StatusReport};
use crate::cli::{EXIT_NEEDS_ATTENTION, EXIT_OK, OutputFormat};
use crate::host::agent::short;
use crate::host::root::Root;
use crate::host::store;
use crate::host::tracking_file;
use crate::model::path::printable;
use crate::model::plan::{self, Observed};
use crate::model::state::{FIRST_BOOT, RunResult, SourceRef};

/// Exit codes of `status`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   success (with --exit-code: converged and no drift)
  1   failure: the state cannot be read
  2   usage error
  3   with --exit-code: owned objects drifted, or the last run failed, was partial or was interrupted";

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
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
    /// Exit with 3 when owned objects drifted, or the last run failed, was partial or was
    /// interrupted (0 otherwise).
    #[arg(long)]
    pub exit_code: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    let root = Root::open(&args.root)?;
    let report = status(&root)?;
    let mut out = super::report_output();
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report).context("writing the status")?;
            writeln!(out)?;
        }
        OutputFormat::Human => render(&mut out, &report, args.verbose)?,
    }
    out.flush()?;
    Ok(if args.exit_code && needs_attention(&report) { EXIT_NEEDS_ATTENTION } else { EXIT_OK })
}

/// Whether CI should hear about this root (`--exit-code`): owned objects drifted, or the last
/// run did not converge (it failed, was partial, or was interrupted).
fn needs_attention(r: &StatusReport) -> bool {
    let unconverged = r.last_run.as_ref().is_some_and(|run| run.result != "converged");
    let agent_failed = r.following.as_ref().and_then(|f| f.last_cycle.as_ref()).is_some_and(|c| c.exit_code != 0);
    r.drifted > 0 || unconverged || r.interrupted.is_some() || agent_failed
}

/// What the followed repository and the agent's record say, when the host follows one.
fn following(root: &Root, source: Option<&SourceRef>) -> Result<Option<StatusFollowing>> {
    let Some(tracking) = tracking_file::load(root)? else { return Ok(None) };
    let record = store::load_agent(root)?;
    let applied_commit =
        source.filter(|s| s.kind == "git" && s.location == tracking.repository).and_then(|s| s.commit.clone());
    let fetched = record.last_fetch.as_ref().and_then(|f| f.commit.clone());
    Ok(Some(StatusFollowing {
        tracking: crate::cli::agent::tracking_json(&tracking),
        behind: fetched.is_some() && fetched != applied_commit,
        last_fetch: record.last_fetch,
        applied_commit,
        suspended: record.suspended,
        refused: record.refused,
        last_cycle: record.last_cycle,
    }))
}

/// The status of a root.
pub fn status(root: &Root) -> Result<StatusReport> {
    let state = store::load_state(root)?;
    let records = state.last_applied.as_ref().map(|a| a.objects.clone()).unwrap_or_default();
    let owned: Vec<StatusObject> = records
        .iter()
        .map(|r| {
            let seen = root.observe(&r.path);
            let (condition, reason) = match seen {
                Observed::Missing => ("missing", None),
                Observed::Unsafe(why) => ("unsafe", Some(why)),
                s if plan::matches_record(&s, &r.owned()) => ("ok", None),
                _ => ("modified", None),
            };
            StatusObject {
                path: r.path.clone(),
                kind: r.kind.clone(),
                state: condition.into(),
                reason,
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
        following: following(root, state.source.as_ref())?,
    })
}

/// Writes the status for a person; every name, path and message is shown [`printable`].
fn render(out: &mut impl Write, r: &StatusReport, verbose: bool) -> io::Result<()> {
    if let Some(f) = &r.following {
        write_following(out, f)?;
    }
    write_applied_status(out, r, verbose)?;
    if r.following.is_none() {
        writeln!(out, "Following:   no repository (`core-ops init REPO REF` makes this host follow one)")?;
    }
    Ok(())
}

/// The lines of what was applied: the revision, the last run, an interrupted apply, the owned
/// objects and their drift.
fn write_applied_status(out: &mut impl Write, r: &StatusReport, verbose: bool) -> io::Result<()> {
    if r.revision.is_none() && r.last_run.is_none() && r.interrupted.is_none() {
        writeln!(out, "Nothing applied to {} yet (no {}).", printable(&r.root), store::STATE_FILE)?;
        return Ok(());
    }
    match &r.revision {
        Some(revision) => write_applied(out, r, revision)?,
        None => writeln!(out, "Revision:    none applied yet: no run has converged on {}", printable(&r.root))?,
    }
    if let Some(run) = &r.last_run {
        write_last_run(out, run)?;
    }
    if let Some(p) = &r.interrupted {
        let p = printable(p);
        writeln!(out, "Interrupted: an apply of revision {p} did not finish; the next apply completes it")?;
    }
    if r.revision.is_none() {
        return Ok(());
    }
    writeln!(out, "Owned:       {} objects, {} drifted since the last apply", r.owned.len(), r.drifted)?;
    for o in r.owned.iter().filter(|o| verbose || o.state != "ok") {
        let why = o.reason.as_deref().map(|w| format!(" — {}", printable(w))).unwrap_or_default();
        writeln!(out, "  {:<8} {} ({}){why}", o.state, printable(&o.path), printable(&o.origin.file))?;
    }
    Ok(())
}

/// The `Source:` and `Revision:` lines of an applied revision. The state Ignition wrote at first
/// boot names where `render-ignition` ran, which means nothing on this host: it is described as
/// the rendered config, with the repository's address and commit when they are known.
fn write_applied(out: &mut impl Write, r: &StatusReport, revision: &str) -> io::Result<()> {
    let first_boot = r.applied_at.as_deref() == Some(FIRST_BOOT);
    if let Some(s) = &r.source {
        let line = if first_boot { first_boot_source(s) } else { source_text(s) };
        writeln!(out, "Source:      {line}")?;
        if let Some(details) = commit_details(s) {
            writeln!(out, "Commit:      {details}")?;
        }
    }
    let revision = printable(revision);
    if first_boot {
        writeln!(out, "Revision:    {revision} (generation {}, written by Ignition at first boot)", r.generation)
    } else {
        let at = printable(r.applied_at.as_deref().unwrap_or("?"));
        writeln!(out, "Revision:    {revision} (generation {}, applied {at})", r.generation)
    }
}

/// The lines of a host that follows a repository.
fn write_following(out: &mut impl Write, f: &StatusFollowing) -> io::Result<()> {
    let t = &f.tracking;
    let signed = t.trust.as_deref().map(|p| format!(", signed tips only ({})", printable(p))).unwrap_or_default();
    let (repo, reference, host) = (printable(&t.repository), printable(&t.reference), printable(&t.host));
    writeln!(out, "Following:   {repo} at {reference} as host {host}{signed}")?;
    if let Some(s) = &f.suspended {
        let why = s.reason.as_deref().map(|r| format!(": {}", printable(r))).unwrap_or_default();
        writeln!(out, "Suspended:   since {}{why} (`core-ops resume` ends it)", printable(&s.since))?;
    }
    match &f.last_fetch {
        None => writeln!(out, "Fetched:     never")?,
        Some(fetch) => {
            let tip = fetch.commit.as_deref().map(short).unwrap_or("nothing");
            match &fetch.error {
                None => writeln!(out, "Fetched:     {tip} at {}", printable(&fetch.at))?,
                Some(e) => {
                    let ok = fetch.last_success.as_deref().map(printable).unwrap_or("never".into());
                    writeln!(
                        out,
                        "Fetched:     {tip} (last success {ok}); the fetch at {} failed:",
                        printable(&fetch.at)
                    )?;
                    writeln!(out, "             {}", printable(e))?;
                }
            }
        }
    }
    let applied = f.applied_commit.as_deref().map(short).unwrap_or("none");
    let behind = if f.behind { " — behind the fetched tip" } else { "" };
    writeln!(out, "Applied:     commit {applied}{behind}")?;
    if let Some(r) = &f.refused {
        writeln!(out, "Kept out:    {} since {} (exit {}):", short(&r.commit), printable(&r.at), r.exit_code)?;
        for line in r.reason.lines() {
            writeln!(out, "             {}", printable(line))?;
        }
    }
    if let Some(c) = &f.last_cycle {
        writeln!(out, "Last cycle:  exit {} at {}: {}", c.exit_code, printable(&c.at), printable(&c.summary))?;
    }
    Ok(())
}

/// Where a day-2 apply's desired state came from, with the commit when known.
pub fn source_text(s: &SourceRef) -> String {
    let host = s.host.as_deref().map(|h| format!(", host {}", printable(h))).unwrap_or_default();
    format!("{} {}{host}{}", printable(&s.kind), printable(&s.location), commit_text(s))
}

fn first_boot_source(s: &SourceRef) -> String {
    let host = s.host.as_deref().map(|h| format!(" for host {}", printable(h))).unwrap_or_default();
    let from = if is_remote(&s.location) { format!(", from {}", printable(&s.location)) } else { String::new() };
    let commit = match (&s.commit, from.is_empty()) {
        (Some(_), true) => format!(",{}", commit_text(s)),
        _ => commit_text(s),
    };
    format!("the config core-ops render-ignition rendered{host} (first boot){from}{commit}")
}

/// What a recorded commit says of itself: its subject, author, committer time and the ref it was
/// taken from; `None` when nothing of it was recorded.
fn commit_details(s: &SourceRef) -> Option<String> {
    let summary = s.summary.as_deref()?;
    let mut details = vec![format!("\"{}\"", printable(summary))];
    details.extend(s.author.as_deref().map(|a| format!("by {}", printable(a))));
    details.extend(s.committed_at.as_deref().map(|t| format!("committed {}", printable(t))));
    details.extend(s.reference.as_deref().map(|r| format!("on {}", printable(r))));
    Some(details.join(", "))
}

/// ` at commit C` (with ` (with uncommitted changes)` for a dirty tree), or nothing.
fn commit_text(s: &SourceRef) -> String {
    match &s.commit {
        Some(c) if s.dirty => format!(" at commit {} (with uncommitted changes)", printable(c)),
        Some(c) => match &s.summary {
            Some(summary) => format!(" at commit {} \"{}\"", printable(c), printable(summary)),
            None => format!(" at commit {}", printable(c)),
        },
        None => String::new(),
    }
}

/// Whether a repository location is an address other hosts can reach (`https://…`,
/// `ssh://…`, `git@host:path`) rather than a path on the machine that rendered the config.
fn is_remote(location: &str) -> bool {
    location.contains("://") || location.split_once(':').is_some_and(|(user_host, _)| user_host.contains('@'))
}

/// The `Last run:` lines: how it ended, what went wrong, and what an offline run left undone.
fn write_last_run(out: &mut impl Write, run: &RunResult) -> io::Result<()> {
    let repeats =
        if run.repeats > 0 { format!(", same result {} runs in a row", run.repeats + 1) } else { String::new() };
    let files_only = if run.systemd_skipped.is_empty() { "" } else { " (files only; systemd skipped, offline)" };
    let (result, run_revision, at) = (printable(&run.result), printable(&run.revision), printable(&run.at));
    writeln!(out, "Last run:    {result} on revision {run_revision} at {at}{repeats}{files_only}")?;
    if let Some(m) = &run.message {
        writeln!(out, "             {}", printable(m))?;
    }
    if !run.systemd_skipped.is_empty() {
        writeln!(out, "             not run: {}", printable(&run.systemd_skipped.join(", ")))?;
    }
    Ok(())
}
