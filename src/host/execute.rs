//! The executor: run a plan on the root and record what happened. Commands reach it through
//! the [`pipeline`](crate::host::pipeline), which loads the input and hands it over; the fast
//! path ([`try_converged`]) hashes the input with this build ([`crate::VERSION`]), so that
//! another build of CoreOps checks the host again.
//!
//! Order of work: take the lock; resolve `ignition.config` children and remote contents;
//! clean leftovers of interrupted runs; plan; refuse if anything is blocked, or if a read-only
//! filesystem or an immutable path keeps a change from being made (nothing is written); ask the
//! caller's approval of the plan (`apply` asks on a terminal); record the pending revision;
//! create directories; stage every file and link next to its destination; sync once; rename
//! them into place; hard links; mode and owner changes; removals of stale owned objects and
//! disabled units' links; sync; check the result; save the history snapshot, then record the
//! converged revision and an audit line. A crash at any point
//! leaves every file old or new, a recorded revision always has its snapshot, and the next run
//! finishes the job.
//!
//! Before anything changes, whatever the root, the checks of [`preflight`] run (the Quadlet
//! files, the changed units): their errors, and with `strict` their warnings, stop the run.
//! With systemd (online runs on `/`): the activation is decided from the plan and the units' states,
//! stops run before the writes, and the reload, starts, restarts and verification after them.
//! A unit that does not come up fails the run (exit 1); its files stay in place and recorded,
//! the fast path is disabled, and the next run retries it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::host::activate::{self, SystemdRun};
use crate::host::analyze;
use crate::host::failpoint;
use crate::host::fs;
use crate::host::preflight::{self, Checks};
use crate::host::root::Root;
use crate::host::store::{self, RunLock, Snapshot};
use crate::host::systemd::Systemd;
use crate::model::activation::{self, Activation};
use crate::model::desired::{self, DesiredState, Kind, Object, Owner, Role};
use crate::model::ignition::children::{self, Fetch};
use crate::model::ignition::types::Config;
use crate::model::plan::{self, Action, Detail, Observed, ObservedState, Owned, Plan, PlanOptions};
use crate::model::source::compose::{EntryKey, Origin};
use crate::model::state::{self, Applied, ObjectRecord, Pending, RunResult, SourceRef, State};
use crate::spread;

/// What a run whose files are in place says when their revision cannot be recorded as applied.
const NOT_RECORDED: &str = "the files are written, but the revision could not be recorded as applied (the state \
                            still names the one before, and what was being written); the next run records it";

/// Unit directories searched for units that are not part of the desired state.
const VENDOR_UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/// What to apply.
#[derive(Debug, Clone)]
pub struct ApplyInput {
    /// Host name.
    pub host: String,
    /// The desired config (children unresolved); the history snapshot shares it.
    pub config: Arc<Config>,
    /// Entry origins.
    pub origins: BTreeMap<EntryKey, Origin>,
    /// Where it came from.
    pub source: SourceRef,
    /// A fingerprint of the input, taken before it was read, when known (enables the converged
    /// fast path).
    pub input_digest: Option<String>,
}

/// How to apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Take over differing unowned paths.
    pub adopt: bool,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
    /// How long each unit gets to become active.
    pub unit_timeout: Duration,
    /// Whether the checks' warnings stop the run, as their errors do (`--strict`).
    pub strict: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The host matches the desired state.
    Converged,
    /// Nothing was changed: the plan was blocked or inputs were unusable.
    Failed,
    /// Some changes were made, then something failed.
    PartiallyApplied,
}

impl Outcome {
    /// The name recorded in the state.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::Failed => "failed",
            Outcome::PartiallyApplied => "partially-applied",
        }
    }
}

/// The result of an apply.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// The plan that was executed.
    pub plan: Plan,
    /// The desired state it came from.
    pub desired: DesiredState,
    /// The revision applied.
    pub revision: String,
    /// The generation recorded (when converged).
    pub generation: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What went wrong.
    pub errors: Vec<String>,
    /// Leftover temp files of earlier runs that were removed.
    pub cleaned: usize,
    /// The systemd actions decided for the plan.
    pub activation: Activation,
    /// What systemd did.
    pub systemd: SystemdRun,
    /// How many runs before this one ended with the same failure on the same revision.
    pub repeats: u32,
    /// What the checks before the writes found (when the run stopped on them, what stopped it
    /// is in `errors` instead).
    pub checks: Checks,
}

/// The caller's last say before anything is written.
#[derive(Clone, Copy)]
pub struct Approve<'a> {
    /// Given the report so far (the desired state, the plan, the checks' findings and the
    /// systemd actions exactly as they will be executed), under the run lock: an error stops the
    /// run with nothing written and nothing recorded (`apply` asks for confirmation there).
    pub ask: &'a dyn Fn(&ApplyReport) -> Result<()>,
    /// Whether `ask` may wait for a person's answer: then nothing is written before it returns,
    /// not even a temporary file. Otherwise the run's own records are written under temporary
    /// names while the checks run.
    pub may_wait: bool,
}

impl std::fmt::Debug for Approve<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approve").field("may_wait", &self.may_wait).finish_non_exhaustive()
    }
}

impl Approve<'_> {
    /// The say of a caller that approves every run without waiting.
    pub const ALWAYS: Approve<'static> = Approve { ask: &|_| Ok(()), may_wait: false };
}

/// Applies `input` to `root`; `systemd` is `None` offline (files only).
pub fn apply(
    root: &Root,
    input: &ApplyInput,
    fetch: &dyn Fetch,
    opts: ApplyOptions,
    systemd: Option<&dyn Systemd>,
) -> Result<ApplyReport> {
    apply_approved(root, input, fetch, opts, systemd, Approve::ALWAYS)
}

/// [`apply`], with `approve` consulted once the plan is made and nothing blocks it, before the
/// first write.
pub fn apply_approved(
    root: &Root,
    input: &ApplyInput,
    fetch: &dyn Fetch,
    opts: ApplyOptions,
    systemd: Option<&dyn Systemd>,
    approve: Approve,
) -> Result<ApplyReport> {
    let lock = store::lock(root, opts.lock_timeout)?;
    apply_under(root, &lock, input, fetch, opts, systemd, approve)
}

/// [`apply_approved`] for a caller that already holds the run lock (the agent holds it for its
/// whole cycle, fetch included).
pub fn apply_under(
    root: &Root,
    _lock: &RunLock,
    input: &ApplyInput,
    fetch: &dyn Fetch,
    opts: ApplyOptions,
    systemd: Option<&dyn Systemd>,
    approve: Approve,
) -> Result<ApplyReport> {
    failpoint::hit("after-lock");
    let mut state = store::load_state(root)?;
    let mut report = ApplyReport {
        plan: Plan::default(),
        desired: DesiredState::default(),
        revision: String::new(),
        generation: state.generation,
        outcome: Outcome::Failed,
        errors: Vec::new(),
        cleaned: 0,
        activation: Activation::default(),
        systemd: SystemdRun::default(),
        repeats: 0,
        checks: Checks::default(),
    };
    let plan_opts = PlanOptions { adopt: opts.adopt };
    // The checks start as soon as the units they verify are known, and run while the rest is
    // built, planned and done. The run directory, ours under the lock, is on a tmpfs on a host
    // (/run); what an interrupted run staged there goes first.
    // A failure to clear them counts only once the input is known to be one the run can take.
    let scratch = store::run_dir(root);
    let cleared = root.remove_scratch_dirs(store::RUN_DIR, analyze::STAGING_PREFIX);
    let early_units = early_unit_objects(input);
    let early = early_units.as_ref().map(|units| start_unit_checks(root, units, &state, plan_opts, &scratch));
    let (desired, revision) = match build_desired(root, input, fetch, true) {
        Ok(d) => d,
        Err(e) => {
            drop(early);
            return finish_failed(root, &mut state, report, vec![e], input);
        }
    };
    cleared?;
    report.revision = revision.clone();
    // The desired state lives in the report from here on (not copied into it).
    report.desired = desired;
    tracing::debug!("apply: desired state built");
    report.cleaned = clean_leftovers(root, report.desired.paths().chain(state.owned().keys()))?;
    let (mut observed, owned) = observe(root, &report.desired, &state);
    let unit_changes = plan::plan_objects(&report.desired, &observed, &owned, plan_opts, preflight::verifies);
    let changed = preflight::changed_units(&unit_changes);
    // Checks started from the config's units stand when they verified what this plan changes,
    // from the same objects; otherwise they start again from the whole desired state.
    let checking = match early {
        Some((early_changed, mut started))
            if early_changed == changed
                && early_units.as_ref().is_some_and(|u| same_unit_objects(u, &report.desired)) =>
        {
            started.check_quadlets(&report.desired);
            started
        }
        other => {
            drop(other);
            let started = preflight::start(root, &report.desired, &changed, Some(&scratch));
            tracing::debug!("apply: checks started");
            started
        }
    };
    report.plan = plan::plan(&report.desired, &observed, &owned, plan_opts);
    tracing::debug!("apply: planned");
    let blocked: Vec<String> = report
        .plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Blocked)
        .map(|c| format!("{}: {}", c.path, c.reason.clone().unwrap_or_default()))
        .collect();
    if !blocked.is_empty() {
        drop(checking);
        return finish_failed(root, &mut state, report, blocked, input);
    }
    // What does not depend on the checks is done while they run.
    let unwritable = root.unwritable(report.plan.changes.iter().filter(|c| writes(c.action)).map(|c| c.path.as_str()));
    let activation = decide_activation(&report.plan, &report.desired, &observed, &state, &revision, systemd);
    tracing::debug!("apply: systemd actions decided");
    let unchanged = !report.plan.has_changes() && state.last_applied.as_ref().is_some_and(|a| a.revision == revision);
    let prepare = |state: &mut State, report: &ApplyReport| {
        prepare_records(root, state, input, report, &observed, &owned, unchanged)
    };
    let early = (!approve.may_wait).then(|| prepare(&mut state, &report));
    tracing::debug!("apply: records staged");
    report.checks = checking.finish(&report.desired);
    tracing::debug!("apply: checks finished");
    let refused = report.checks.take_refusal(opts.strict);
    if !refused.is_empty() {
        return finish_failed(root, &mut state, report, refused, input);
    }
    if !unwritable.is_empty() {
        return finish_failed(root, &mut state, report, unwritable, input);
    }
    report.activation = activation;
    report.activation.offline = systemd.is_none().then(|| offline_reason(root.path()));
    (approve.ask)(&report)?;
    let (mut prepared, pending) = early.unwrap_or_else(|| prepare(&mut state, &report));
    state.pending = Some(pending);
    if let Some(staged) = prepared.pending.take() {
        staged
            .and_then(|record| record.commit(root))
            .context("recording the revision about to be written; nothing was written")?;
    }
    failpoint::hit("after-pending-state");
    tracing::debug!("apply: pending revision recorded");
    if let Some(sd) = systemd {
        activate::stop_before_writes(sd, &report.activation, &mut report.systemd);
    }
    let written = match execute(root, &report.plan, &report.desired, &observed) {
        Ok(written) => written,
        Err(e) => {
            report.errors.push(fs::explained(&e));
            report.outcome = Outcome::PartiallyApplied;
            record_run(root, &mut state, &mut report)?;
            audit(root, &report, &input.host, &input.source);
            return Ok(report);
        }
    };
    observed = root.verify_all(report.desired.paths(), &written);
    tracing::debug!("apply: writes verified");
    let check = plan::plan(&report.desired, &observed, &owned, PlanOptions { adopt: true });
    let unconverged: Vec<String> = check
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp && report.desired.objects.contains_key(&c.path))
        .map(|c| c.path.clone())
        .collect();
    if !unconverged.is_empty() {
        report.errors.push(format!("not converged after writing: {}", unconverged.join(", ")));
        report.outcome = Outcome::PartiallyApplied;
        record_run(root, &mut state, &mut report)?;
        audit(root, &report, &input.host, &input.source);
        return Ok(report);
    }
    if let Some(sd) = systemd {
        activate::activate_after_writes(sd, &report.activation, opts.unit_timeout, &mut report.systemd);
        // What earlier offline runs skipped was part of this activation.
        if let Some(last) = state.last_run.as_mut() {
            last.systemd_skipped.clear();
        }
    }
    let units_up = report.systemd.ok();
    if !units_up {
        report.errors.extend(report.systemd.errors.iter().cloned());
        report.errors.extend(report.systemd.failures.iter().map(activate::UnitFailure::summary));
    }
    let outcome = if units_up { Outcome::Converged } else { Outcome::Failed };
    // A run whose units failed keeps no input digest, so the next run takes the full path and
    // retries them.
    let digest = if units_up { effective_digest(root, input.input_digest.as_deref()) } else { None };
    failpoint::hit("before-final-state");
    if unchanged {
        state.pending = None;
        if let Some(applied) = state.last_applied.as_mut() {
            // Same revision, possibly reached from other input bytes or adopted objects:
            // refresh what the fast path compares.
            applied.objects = records_for(&report.desired, &observed, &owned).into_values().collect();
            applied.absent = report.desired.absent.keys().cloned().collect();
            applied.units = report.desired.units.iter().map(state::unit_intent_text).collect();
            applied.input_digest = digest;
        }
        // The same content may now stand at another commit (the edits were committed).
        state.source = Some(input.source.clone());
        report.generation = state.generation;
        report.outcome = outcome;
        if !store::has_applied_snapshot(root, &state) {
            // A run interrupted between recording this revision and saving its snapshot (by an
            // earlier version of core-ops) left the history without it: repair it.
            store::save_snapshot(root, &snapshot_of(input, state.generation, &revision, outcome, &report.plan)?)?;
        }
        record_run(root, &mut state, &mut report)?;
        audit(root, &report, &input.host, &input.source);
        return Ok(report);
    }
    state.generation += 1;
    // The snapshot goes first: a revision the state records as applied always has one.
    let saved = match prepared.take_snapshot() {
        Some(Ok(staged)) if outcome == Outcome::Converged && staged.generation() == state.generation => {
            staged.commit(root)
        }
        _ => store::save_snapshot(root, &snapshot_of(input, state.generation, &revision, outcome, &report.plan)?),
    };
    saved.context(NOT_RECORDED)?;
    failpoint::hit("after-snapshot");
    tracing::debug!("apply: snapshot saved");
    state.source = Some(input.source.clone());
    state.last_applied = Some(Applied {
        revision: revision.clone(),
        applied_at: store::now(),
        objects: records_for(&report.desired, &observed, &owned).into_values().collect(),
        absent: report.desired.absent.keys().cloned().collect(),
        units: report.desired.units.iter().map(state::unit_intent_text).collect(),
        input_digest: digest,
    });
    state.pending = None;
    report.generation = state.generation;
    report.outcome = outcome;
    set_last_run(&mut state, &mut report);
    store::save_state(root, &state).context(NOT_RECORDED)?;
    failpoint::hit("after-final-state");
    tracing::debug!("apply: state saved");
    audit(root, &report, &input.host, &input.source);
    Ok(report)
}

/// The records a run writes before and after the host's files, staged while the checks run:
/// each is written and synced under a temporary name, and put in place at its step of the run.
/// A pending state that could not be staged stops the run at its step, with nothing written; a
/// snapshot that could not be staged is written again at its step. What is left when the run
/// ends early is removed.
struct Prepared<'a> {
    root: &'a Root,
    /// The state with the revision about to be written as pending (a run that changes something).
    pending: Option<Result<store::Record>>,
    /// The snapshot of a run that converges to a new revision, staged on a thread of its own:
    /// the largest record by far (the whole config), written while the run goes on.
    snapshot: Option<std::thread::JoinHandle<Result<store::StagedSnapshot>>>,
}

impl Prepared<'_> {
    /// The staged snapshot, once its thread is done.
    fn take_snapshot(&mut self) -> Option<Result<store::StagedSnapshot>> {
        let staging = self.snapshot.take()?;
        Some(staging.join().unwrap_or_else(|_| Err(anyhow::anyhow!("staging the snapshot failed"))))
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if let Some(Ok(record)) = self.pending.take() {
            record.discard(self.root);
        }
        if let Some(Ok(snapshot)) = self.take_snapshot() {
            snapshot.discard(self.root);
        }
    }
}

/// Stages the pending state and the snapshot of the run (see [`Prepared`]); returns them with
/// the pending record, which `state` holds only once the run goes ahead.
fn prepare_records<'a>(
    root: &'a Root,
    state: &mut State,
    input: &ApplyInput,
    report: &ApplyReport,
    observed: &ObservedState,
    owned: &BTreeMap<String, Owned>,
    unchanged: bool,
) -> (Prepared<'a>, Pending) {
    let mut prepared = Prepared { root, pending: None, snapshot: None };
    if !unchanged {
        let generation = state.generation + 1;
        let snapshot = snapshot_of(input, generation, &report.revision, Outcome::Converged, &report.plan);
        prepared.snapshot = Some(stage_snapshot_aside(root, snapshot));
    }
    state.pending = Some(Pending {
        revision: report.revision.clone(),
        started_at: store::now(),
        objects: records_for(&report.desired, observed, owned).into_values().collect(),
    });
    if report.plan.has_changes() {
        prepared.pending = Some(store::stage_state(root, state));
    }
    let pending = state.pending.take().expect("set above");
    (prepared, pending)
}

/// Stages `snapshot` on a thread of its own (on this one when the root's handle cannot be
/// shared with another).
fn stage_snapshot_aside(
    root: &Root,
    snapshot: Result<Snapshot>,
) -> std::thread::JoinHandle<Result<store::StagedSnapshot>> {
    let stage = |root: &Root, snapshot: Result<Snapshot>| snapshot.and_then(|snap| store::stage_snapshot(root, &snap));
    match root.try_clone() {
        Ok(own) => std::thread::spawn(move || stage(&own, snapshot)),
        Err(e) => {
            let staged = Err(e);
            std::thread::spawn(move || staged)
        }
    }
}

/// The history snapshot of `input` applied as `revision` in `generation` by a run that made
/// `the_plan` and ended with `outcome`.
fn snapshot_of(
    input: &ApplyInput,
    generation: u64,
    revision: &str,
    outcome: Outcome,
    the_plan: &Plan,
) -> Result<Snapshot> {
    let s = the_plan.summary();
    Ok(Snapshot {
        generation,
        revision: revision.to_string(),
        applied_at: store::now(),
        source: Some(input.source.clone()),
        host: input.host.clone(),
        config: store::SnapshotConfig::Applied(input.config.clone()),
        origins: store::snapshot_origins(&input.origins),
        result: Some(outcome.name().to_string()),
        changes: Some(store::Changes { created: s.create, updated: s.update, deleted: s.delete }),
        earlier: Vec::new(),
    })
}

/// The converged fast path: when the inputs hash exactly as they did for the last converged
/// revision and the host still holds every recorded object (and none of the absent ones), the
/// run is a no-op: it is recorded and nothing is rebuilt. `None`: take the full path.
pub fn try_converged(root: &Root, input: &ApplyMeta, lock_timeout: Duration) -> Result<Option<ApplyReport>> {
    let lock = store::lock(root, lock_timeout)?;
    try_converged_under(root, &lock, input)
}

/// [`try_converged`] for a caller that already holds the run lock.
pub fn try_converged_under(root: &Root, _lock: &RunLock, input: &ApplyMeta) -> Result<Option<ApplyReport>> {
    let mut state = store::load_state(root)?;
    let Some(mut report) = converged_fast(root, &state, input) else { return Ok(None) };
    record_run(root, &mut state, &mut report)?;
    audit(root, &report, &input.host, &input.source);
    Ok(Some(report))
}

/// What is known about an input before it is loaded.
#[derive(Debug, Clone)]
pub struct ApplyMeta {
    /// Host name.
    pub host: String,
    /// Where it comes from.
    pub source: SourceRef,
    /// A fingerprint of the input, taken before it was read.
    pub input_digest: Option<String>,
}

fn converged_fast(root: &Root, state: &State, input: &ApplyMeta) -> Option<ApplyReport> {
    let applied = state.last_applied.as_ref()?;
    let digest = effective_digest(root, input.input_digest.as_deref());
    if digest.is_none() || applied.input_digest != digest || state.pending.is_some() {
        return None;
    }
    if !store::has_applied_snapshot(root, state) {
        // The full path repairs the history.
        return None;
    }
    let mut observed = root.observe_all(std::iter::empty());
    observed.nodes = root.stat_all(applied.objects.iter().map(|r| &r.path).chain(&applied.absent));
    for r in &applied.objects {
        let Some(node) = observed.nodes.get_mut(&r.path) else { continue };
        match node {
            // An unchanged stamp means unchanged content: take the recorded hash.
            Observed::File { sha256, stamp, .. } if r.stamp.as_ref() == Some(stamp) => {
                *sha256 = r.sha256.clone().unwrap_or_default()
            }
            Observed::File { .. } => *node = root.observe(&r.path),
            _ => {}
        }
    }
    let holds = applied
        .objects
        .iter()
        .all(|r| observed.nodes.get(&r.path).is_some_and(|seen| plan::matches_record(seen, &r.owned())));
    let absent = applied.absent.iter().all(|p| observed.nodes.get(p) == Some(&Observed::Missing));
    if !holds || !absent {
        return None;
    }
    let mut desired = DesiredState::default();
    for r in &applied.objects {
        desired.objects.insert(r.path.clone(), r.object());
    }
    let fallback = Origin { file: input.source.location.clone(), path: None };
    desired.units = applied.units.iter().filter_map(|u| state::unit_intent_from_text(u, fallback.clone())).collect();
    let owned = state.owned();
    let the_plan = plan::plan(&desired, &observed, &owned, PlanOptions::default());
    Some(ApplyReport {
        plan: the_plan,
        desired,
        revision: applied.revision.clone(),
        generation: state.generation,
        outcome: Outcome::Converged,
        errors: Vec::new(),
        cleaned: 0,
        activation: Activation::default(),
        systemd: SystemdRun::default(),
        repeats: 0,
        checks: Checks::default(),
    })
}

/// The systemd actions for a plan: the decision table over the units' current states, plus a
/// retry of the units that failed in the previous run on the same revision and of what earlier
/// offline runs skipped. Offline: from the plan alone.
pub fn decide_activation(
    the_plan: &Plan,
    desired: &DesiredState,
    before: &ObservedState,
    state: &State,
    revision: &str,
    systemd: Option<&dyn Systemd>,
) -> Activation {
    let Some(sd) = systemd else { return activation::decide(the_plan, desired, before, &|_| None) };
    let mut decided = activation::decide(the_plan, desired, before, &|u| activate::is_active(sd, u));
    if let Some(last) = state.last_run.as_ref().filter(|r| r.revision == revision) {
        activation::retry_failed(&mut decided, &last.failed_units, desired);
    }
    if let Some(last) = &state.last_run {
        activation::retry_skipped(&mut decided, &last.systemd_skipped, desired);
    }
    decided
}

/// Why a run on `root` asks no systemd (docs/plan-and-apply.md, "Root and offline rules": offline is `--offline`, or a root other
/// than `/`).
pub fn offline_reason(root: &std::path::Path) -> String {
    if root == std::path::Path::new("/") {
        "--offline was given".to_string()
    } else {
        format!("--root {} is not /", root.display())
    }
}

/// The input digest combined with the root's account databases (owner names resolve through
/// them), and with this build of core-ops.
fn effective_digest(root: &Root, input_digest: Option<&str>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let inputs = input_digest?;
    let mut h = Sha256::new();
    h.update(inputs.as_bytes());
    h.update(crate::VERSION.as_bytes());
    for db in ["/etc/passwd", "/etc/group"] {
        h.update(root.read(db).unwrap_or_default());
        h.update([0]);
    }
    Some(format!("sha256-{}", hex::encode(h.finalize())))
}

/// The desired state with children merged, inline hashes checked, enablement links computed
/// and, with `fetch_contents`, remote contents fetched and verified; refused when it holds
/// problems no host can be converged to ([`DesiredState::refusal`]).
pub fn build_desired(
    root: &Root,
    input: &ApplyInput,
    fetch: &dyn Fetch,
    fetch_contents: bool,
) -> std::result::Result<(DesiredState, String), String> {
    let has_children =
        input.config.ignition.config.replace.source.is_some() || !input.config.ignition.config.merge.is_empty();
    let resolved;
    let config = if has_children {
        resolved = children::resolve(Config::clone(&input.config), fetch)?;
        &resolved
    } else {
        &input.config
    };
    children::check_inline_hashes(config)?;
    let mut desired =
        desired::from_config(config, &input.origins, &Origin { file: input.source.location.clone(), path: None });
    let revision = desired.revision();
    if fetch_contents {
        let problems = desired.fetch_remote(fetch);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
    }
    let lookup = |file: &str| {
        VENDOR_UNIT_DIRS.iter().find_map(|dir| {
            let path = format!("{dir}/{file}");
            let bytes = root.read(&path)?;
            Some((path, String::from_utf8(bytes).ok()?))
        })
    };
    desired::add_enablement(&mut desired, &lookup);
    if let Some(refusal) = desired.refusal() {
        return Err(refusal);
    }
    Ok((desired, revision))
}

/// The unit objects of the input's config ([`desired::unit_objects`]), when they are final
/// before the desired state is built: the config has no child configs to fetch and merge, and
/// no unit or Quadlet file has remote contents. `None` otherwise.
fn early_unit_objects(input: &ApplyInput) -> Option<DesiredState> {
    let children = &input.config.ignition.config;
    if children.replace.source.is_some() || !children.merge.is_empty() {
        return None;
    }
    let fallback = Origin { file: input.source.location.clone(), path: None };
    let units = desired::unit_objects(&input.config, &input.origins, &fallback);
    let remote = |o: &Object| o.content.iter().flatten().any(|p| matches!(p, desired::Piece::Remote { .. }));
    (!units.objects.values().any(remote)).then_some(units)
}

/// Plans the objects of `units` against the root and starts the checks of the units whose
/// files or drop-ins the plan writes (not yet those of the Quadlet files); returns those units
/// and the checks under way.
fn start_unit_checks<'a>(
    root: &'a Root,
    units: &'a DesiredState,
    state: &State,
    opts: PlanOptions,
    scratch: &Path,
) -> (BTreeSet<String>, preflight::Started<'a>) {
    // Only the units' paths: the whole observation follows once the desired state is built.
    let mut observed = root.observe_all(units.paths());
    refuse_full_directories_in_the_way(root, units, &mut observed);
    let owned = owned_with_recovered(state, &observed);
    let changed = preflight::changed_units(&plan::plan_objects(units, &observed, &owned, opts, preflight::verifies));
    let started = preflight::start_units(root, units, &changed, Some(scratch));
    tracing::debug!("apply: checks started from the config's units");
    (changed, started)
}

/// Whether the objects the checks read (files with a unit role, and files in the Quadlet
/// directory) are the same in `units` as in the whole `desired` state, and there are no more
/// of them there.
fn same_unit_objects(units: &DesiredState, desired: &DesiredState) -> bool {
    let checked = |o: &&Object| {
        o.kind == Kind::File
            && (matches!(o.role, Role::UnitFile(_) | Role::Dropin(_) | Role::Quadlet(_))
                || crate::model::path::is_below(&o.path, desired::QUADLET_DIR))
    };
    let in_units: Vec<&Object> = units.objects.values().filter(checked).collect();
    let in_desired: Vec<&Object> = desired.objects.values().filter(checked).collect();
    in_units == in_desired
}

/// Removes temp files of interrupted runs next to every managed path.
fn clean_leftovers<'a>(root: &Root, paths: impl Iterator<Item = &'a String>) -> Result<usize> {
    let dirs: BTreeSet<&str> =
        paths.filter_map(|p| p.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/" } else { d })).collect();
    let mut cleaned = 0;
    for dir in dirs {
        cleaned += root.clean_temp_files(dir)?;
    }
    Ok(cleaned)
}

/// Observes every path the desired state and the state speak of; returns the observation and
/// the owned set.
pub fn observe(root: &Root, desired: &DesiredState, state: &State) -> (ObservedState, BTreeMap<String, Owned>) {
    let owned_now = state.owned();
    let pending = state.pending_records();
    let mut observed = root.observe_all(desired.paths().chain(owned_now.keys()).chain(pending.keys()));
    refuse_full_directories_in_the_way(root, desired, &mut observed);
    let owned = owned_with_recovered(state, &observed);
    (observed, owned)
}

/// A directory where a file or link is desired is replaced only when it is empty, unless the
/// config says `overwrite: true` (Ignition's semantics): `--adopt` never removes a directory with
/// what it holds. One that holds entries is observed as unsafe to replace, so the plan blocks it
/// and says why.
fn refuse_full_directories_in_the_way(root: &Root, desired: &DesiredState, observed: &mut ObservedState) {
    for o in desired.objects.values().filter(|o| o.kind != Kind::Directory && !o.overwrite) {
        let Some(node @ Observed::Directory { .. }) = observed.nodes.get_mut(&o.path) else { continue };
        let entries = root.open_dir(&o.path, false).and_then(|fd| crate::host::fs::dir_names(&fd));
        let holds = match entries {
            Ok(names) if names.is_empty() => continue,
            Ok(names) if names.len() == 1 => "1 entry".to_string(),
            Ok(names) => format!("{} entries", names.len()),
            Err(e) => format!("entries that cannot be listed ({e:#})"),
        };
        *node = Observed::Unsafe(format!(
            "{} is a directory that holds {holds}; CoreOps never removes a directory with what it holds, even with --adopt: move them away or remove the directory by hand",
            o.path
        ));
    }
}

/// The owned set: the last apply's, plus what an interrupted apply wrote (its records that the
/// host now matches).
fn owned_with_recovered(state: &State, observed: &ObservedState) -> BTreeMap<String, Owned> {
    let mut owned = state.owned();
    for (path, record) in state.pending_records() {
        if observed.nodes.get(&path).is_some_and(|seen| plan::matches_record(seen, &record)) {
            owned.entry(path).or_insert(record);
        }
    }
    owned
}

fn resolve_id(owner: &Owner, names: &BTreeMap<String, u32>) -> Option<u32> {
    match owner {
        Owner::Unset => None,
        Owner::Id(id) => Some(*id),
        Owner::Name(n) => names.get(n).copied(),
    }
}

/// Records of the desired objects as they are (or will be) on the host; `owned` holds what was
/// recorded before (the content an entry without contents took over stays recorded).
fn records_for(
    desired: &DesiredState,
    observed: &ObservedState,
    owned: &BTreeMap<String, Owned>,
) -> BTreeMap<String, ObjectRecord> {
    desired
        .objects
        .values()
        .map(|o| {
            let (seen_uid, seen_gid) = match observed.nodes.get(&o.path) {
                Some(
                    Observed::File { uid, gid, .. }
                    | Observed::Directory { uid, gid, .. }
                    | Observed::Symlink { uid, gid, .. },
                ) => (*uid, *gid),
                _ => (0, 0),
            };
            let uid = resolve_id(&o.user, &observed.users).unwrap_or(seen_uid);
            let gid = resolve_id(&o.group, &observed.groups).unwrap_or(seen_gid);
            let mut record = ObjectRecord::of(o, Some(uid), Some(gid));
            if o.mode.is_none() {
                if let Some(Observed::File { mode, .. } | Observed::Directory { mode, .. }) =
                    observed.nodes.get(&o.path)
                {
                    record.mode = Some(*mode);
                }
            }
            record = record.with_host_file(owned.get(&o.path), observed.nodes.get(&o.path));
            if o.kind == Kind::HardLink {
                record.mode = None;
                record.uid = None;
                record.gid = None;
            }
            (o.path.clone(), record)
        })
        .collect()
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// What a batch of writes left on the root: path → the content stamp of each file written and
/// the digest of its bytes ([`Root::verify_all`]).
type WrittenFiles = HashMap<String, (String, String)>;

/// A file or link to stage: everything it needs, computed before the staging threads start.
struct StageItem<'a> {
    path: &'a str,
    what: Staging<'a>,
    uid: u32,
    gid: u32,
    overwrite: bool,
}

/// What a staged item holds.
enum Staging<'a> {
    /// A file's bytes, its mode and their digest.
    File { bytes: Cow<'a, [u8]>, mode: u32, digest: String },
    /// A link's target.
    Link(&'a str),
}

/// Writes the plan's changes; returns what was written, for the check that follows.
fn execute(root: &Root, the_plan: &Plan, desired: &DesiredState, observed: &ObservedState) -> Result<WrittenFiles> {
    let ids = |o: &Object| (resolve_id(&o.user, &observed.users), resolve_id(&o.group, &observed.groups));
    let changing: Vec<(&plan::Change, &Object)> = the_plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .filter_map(|c| desired.objects.get(&c.path).map(|o| (c, o)))
        .collect();
    let dirs = fs::OpenDirs::new(root);
    let mut new_dirs: Vec<&(&plan::Change, &Object)> =
        changing.iter().filter(|(_, o)| o.kind == Kind::Directory).collect();
    new_dirs.sort_by_key(|(c, _)| (depth(&c.path), c.path.clone()));
    for (c, o) in new_dirs {
        let (uid, gid) = ids(o);
        let create = c.action == Action::Create || c.details.iter().any(|d| matches!(d, Detail::Replace { .. }));
        let mode = if create { Some(o.effective_mode()) } else { o.mode };
        root.make_dir(&dirs, &o.path, mode, uid.or(create.then_some(0)), gid.or(create.then_some(0)), o.overwrite)?;
    }
    failpoint::hit("after-directories");
    tracing::debug!("apply: directories made");
    let rewrites = |c: &plan::Change| {
        c.action == Action::Create
            || c.details.iter().any(|d| matches!(d, Detail::Content | Detail::Target { .. } | Detail::Replace { .. }))
    };
    let mut items = Vec::new();
    let mut attrs_only = Vec::new();
    let mut hardlinks = Vec::new();
    for (c, o) in changing.iter().filter(|(_, o)| o.kind != Kind::Directory) {
        if o.kind == Kind::HardLink {
            hardlinks.push(*o);
        } else if !rewrites(c) {
            attrs_only.push(*o);
        } else {
            items.push(stage_item(o, observed, ids(o)));
        }
    }
    let mut staged =
        stage_all(root, &dirs, &items).context("staging the new files and links; none was put in place")?;
    failpoint::hit("after-staging");
    tracing::debug!("apply: files staged");
    root.sync()?;
    let written = written_files(&staged, &items);
    tracing::debug!("apply: staged files synced");
    staged.sort_by(|a, b| a.0.path().cmp(b.0.path()));
    put_in_place(root, staged, observed)?;
    failpoint::hit("after-renames");
    tracing::debug!("apply: files renamed into place");
    for o in hardlinks {
        let s = root.stage_hardlink(&o.path, &plan::hard_link_target(o))?;
        root.commit(s, o.overwrite)?;
    }
    for o in attrs_only {
        let (uid, gid) = ids(o);
        root.set_attrs(&o.path, o.mode, uid, gid)?;
    }
    failpoint::hit("after-attributes");
    let kept = remove_as_planned(root, the_plan, observed)?;
    failpoint::hit("after-deletions");
    root.sync()?;
    if !kept.is_empty() {
        anyhow::bail!("{}", kept.join("; "));
    }
    Ok(written)
}

/// Renames every staged object over its destination, spread over the cores for a large batch
/// (each file is old or new whatever order the renames take); a failure is reported after the
/// other runs finished, the first in path order.
fn put_in_place(root: &Root, staged: Vec<(fs::Staged, bool)>, observed: &ObservedState) -> Result<()> {
    let renames = staged.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let rename = |(s, overwrite): (fs::Staged, bool)| -> Result<()> {
        if !overwrite && matches!(observed.nodes.get(s.path()), Some(Observed::Directory { .. })) {
            // An empty directory in the way (one that holds anything was blocked by the plan);
            // removing it never recurses.
            root.remove(s.path())?;
        }
        root.commit(s, overwrite)?;
        if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 < renames {
            failpoint::hit("between-renames");
        }
        Ok(())
    };
    // A run stops at its first failure; the staged objects it leaves are removed as leftovers by
    // the next run.
    let results = spread::in_runs(staged, |run| {
        let mut out = Vec::new();
        for item in run {
            let failed = rename(item).err();
            let stop = failed.is_some();
            out.push(failed);
            if stop {
                break;
            }
        }
        out
    });
    results.into_iter().flatten().next().map_or(Ok(()), Err)
}

/// What staging object `o` takes: its bytes (or link target), mode and owner, the ones of what
/// is there now where the desired state leaves them open.
fn stage_item<'a>(o: &'a Object, observed: &'a ObservedState, (uid, gid): (Option<u32>, Option<u32>)) -> StageItem<'a> {
    let seen = observed.nodes.get(&o.path);
    let existing = existing_attrs(seen);
    let what = match o.kind {
        Kind::File => {
            let (bytes, digest) = match o.known_bytes() {
                Some(bytes) => (bytes, o.digest().unwrap_or_default()),
                None => {
                    let bytes = existing_content(seen);
                    let digest = plan::sha256(&bytes);
                    (bytes, digest)
                }
            };
            Staging::File { bytes, mode: o.mode.or(existing.0).unwrap_or(desired::DEFAULT_FILE_MODE), digest }
        }
        _ => Staging::Link(o.target.as_deref().unwrap_or("")),
    };
    let (uid, gid) = match o.kind {
        Kind::File => (uid.or(existing.1).unwrap_or(0), gid.or(existing.2).unwrap_or(0)),
        _ => (uid.unwrap_or(0), gid.unwrap_or(0)),
    };
    StageItem { path: &o.path, what, uid, gid, overwrite: o.overwrite }
}

/// Stages every item next to its destination, spread over the cores for a large batch (each
/// directory is made first, in order, by this thread). On a failure everything staged is
/// removed again and the first failure in the order of `items` is returned.
fn stage_all(root: &Root, dirs: &fs::OpenDirs, items: &[StageItem]) -> Result<Vec<(fs::Staged, bool)>> {
    for item in items {
        if let Ok((dir, _)) = crate::model::path::split_node_path(item.path) {
            dirs.get(dir)?;
        }
    }
    let stage = |item: &StageItem| match &item.what {
        Staging::File { bytes, mode, .. } => root.stage_file_in(dirs, item.path, bytes, *mode, item.uid, item.gid),
        Staging::Link(target) => root.stage_symlink_in(dirs, item.path, target, item.uid, item.gid),
    };
    let results = spread::in_runs(items.iter().collect(), |run: Vec<&StageItem>| run.into_iter().map(stage).collect());
    let mut staged = Vec::with_capacity(results.len());
    let mut failure = None;
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(s) => staged.push((s, item.overwrite)),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        None => Ok(staged),
        Some(e) => {
            staged.iter().for_each(|(s, _)| root.discard(s));
            Err(e)
        }
    }
}

/// The files of a staged batch with their content stamps and digests.
fn written_files(staged: &[(fs::Staged, bool)], items: &[StageItem]) -> WrittenFiles {
    let digests: HashMap<&str, &str> = items
        .iter()
        .filter_map(|item| match &item.what {
            Staging::File { digest, .. } => Some((item.path, digest.as_str())),
            Staging::Link(_) => None,
        })
        .collect();
    staged
        .iter()
        .filter_map(|(s, _)| {
            let stamp = s.written()?.stamp.clone();
            Some((s.path().to_string(), (stamp, digests.get(s.path())?.to_string())))
        })
        .collect()
}

/// Removes what the plan deletes, deepest first, each only if it is still the node the plan
/// decided on (a file with the same hash, mode and owner, a link with the same target, a
/// directory): the host may change after the plan (a unit's stop job runs in between). Returns
/// what changed and was kept; a directory that is not empty is kept too, silently.
fn remove_as_planned(root: &Root, the_plan: &Plan, observed: &ObservedState) -> Result<Vec<String>> {
    let mut removals: Vec<&str> =
        the_plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.path.as_str()).collect();
    removals.sort_by_key(|p| std::cmp::Reverse((depth(p), p.to_string())));
    let mut kept = Vec::new();
    for path in removals {
        let planned = observed.nodes.get(path).unwrap_or(&Observed::Missing);
        match root.observe(path) {
            Observed::Missing => {}
            now if plan::still_as_planned(planned, &now) => root.remove(path)?,
            _ => kept.push(format!("{path} changed on the host after the plan; it is kept")),
        }
    }
    Ok(kept)
}

/// Whether a change with `action` writes to the host.
fn writes(action: Action) -> bool {
    matches!(action, Action::Create | Action::Update | Action::Delete)
}

/// Mode and owner ids of what is at the path now.
fn existing_attrs(seen: Option<&Observed>) -> (Option<u32>, Option<u32>, Option<u32>) {
    match seen {
        Some(Observed::File { mode, uid, gid, .. }) => (Some(*mode), Some(*uid), Some(*gid)),
        _ => (None, None, None),
    }
}

/// What a file without contents keeps: the bytes there now (none: empty).
fn existing_content(seen: Option<&Observed>) -> Cow<'_, [u8]> {
    match seen {
        Some(Observed::File { bytes: Some(b), .. }) => Cow::Borrowed(b),
        _ => Cow::Borrowed(&[]),
    }
}

fn set_last_run(state: &mut State, report: &mut ApplyReport) {
    let message = (!report.errors.is_empty()).then(|| report.errors.join("; "));
    let failed_units = report.systemd.failed_units();
    // The same failure: the same outcome on the same revision, with the same units failing (their
    // states may read differently from run to run) or, without failed units, the same message.
    let same_failure = |prev: &RunResult| {
        prev.result == report.outcome.name()
            && prev.revision == report.revision
            && if failed_units.is_empty() { prev.message == message } else { prev.failed_units == failed_units }
    };
    let repeats = match &state.last_run {
        Some(prev) if same_failure(prev) => prev.repeats + 1,
        _ => 0,
    };
    // Skipped systemd actions stay recorded until a run that talks to systemd does them.
    let mut systemd_skipped = state.last_run.as_ref().map(|r| r.systemd_skipped.clone()).unwrap_or_default();
    for entry in report.activation.skipped() {
        if !systemd_skipped.contains(&entry) {
            systemd_skipped.push(entry);
        }
    }
    report.repeats = repeats;
    state.last_run = Some(RunResult {
        result: report.outcome.name().to_string(),
        revision: report.revision.clone(),
        at: store::now(),
        message,
        repeats,
        failed_units,
        systemd_skipped,
    });
}

fn record_run(root: &Root, state: &mut State, report: &mut ApplyReport) -> Result<()> {
    set_last_run(state, report);
    store::save_state(root, state)?;
    Ok(())
}

fn finish_failed(
    root: &Root,
    state: &mut State,
    mut report: ApplyReport,
    errors: Vec<String>,
    input: &ApplyInput,
) -> Result<ApplyReport> {
    report.errors = errors;
    report.outcome = Outcome::Failed;
    record_run(root, state, &mut report)?;
    audit(root, &report, &input.host, &input.source);
    Ok(report)
}

fn audit(root: &Root, report: &ApplyReport, host: &str, source: &SourceRef) {
    let s = report.plan.summary();
    let line = serde_json::json!({
        "at": store::now(),
        "host": host,
        "source": source,
        "revision": report.revision,
        "result": report.outcome.name(),
        "generation": report.generation,
        "created": s.create,
        "updated": s.update,
        "deleted": s.delete,
        "blocked": s.blocked,
        "errors": report.errors,
    });
    tracing::info!(result = report.outcome.name(), revision = %report.revision, created = s.create, updated = s.update, deleted = s.delete, "core-ops apply finished");
    if let Err(e) = store::audit(root, &line) {
        tracing::warn!("could not write the audit log: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(src: &str) -> (DesiredState, DesiredState) {
        let config = crate::model::butane::render(src, None).unwrap().config;
        let fallback = Origin { file: "c.bu".into(), path: None };
        (
            desired::unit_objects(&config, &BTreeMap::new(), &fallback),
            desired::from_config(&config, &BTreeMap::new(), &fallback),
        )
    }

    const UNITS: &str = "variant: fcos\nversion: 1.6.0\nsystemd:\n  units:\n    - name: a.service\n      contents: \"[Service]\\nExecStart=/bin/true\\n\"\n";

    #[test]
    fn checks_started_from_the_units_stand_only_for_the_same_unit_and_quadlet_files() {
        let (units, whole) = states(UNITS);
        assert!(same_unit_objects(&units, &whole));
        let plain = format!("{UNITS}storage:\n  files:\n    - path: /etc/a\n      contents: {{inline: A}}\n");
        let (_, with_plain) = states(&plain);
        assert!(same_unit_objects(&units, &with_plain), "a plain file is none of the checks' business");
        let quadlet = format!(
            "{UNITS}storage:\n  files:\n    - path: /etc/containers/systemd/web.container\n      contents: {{inline: x}}\n"
        );
        let (_, with_quadlet) = states(&quadlet);
        assert!(!same_unit_objects(&units, &with_quadlet), "a Quadlet file more");
        let (_, other) = states(&UNITS.replace("/bin/true", "/bin/false"));
        assert!(!same_unit_objects(&units, &other), "another unit text");
        let (_, dropin) = states(&format!("{UNITS}      dropins: [{{name: 10.conf, contents: x}}]\n"));
        assert!(!same_unit_objects(&units, &dropin), "a drop-in more");
    }
}
