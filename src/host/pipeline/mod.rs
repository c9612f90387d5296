//! The one path from an input to a converged host: load → plan → apply → record. `plan`,
//! `apply`, `explain` and `rollback` all go through it (and the agent, whose input is a git
//! commit's tree instead of a folder); they only choose the input and print what comes back.
//! Nothing here prints.
//!
//! - [`load()`] reads an [`Input`]: a source repository folder and a host, one Butane (or
//!   Ignition) config with its files directory, or a repository tree already in memory. It gives
//!   the [`Loaded`] input: one Ignition config, the origin of every entry, warnings, notes and
//!   what to record as its source (the submodule `load` holds this part). [`meta`] is the cheap
//!   part of it: host, source and a fingerprint of the input.
//! - [`plan()`] makes the plan of a loaded input as `plan` shows it: the desired state, the
//!   three-way plan, the systemd actions and, when asked, the checks before the writes.
//! - [`converge`] is `apply`: the converged fast path when the input and the host are as the
//!   last converged run left them; else the input is loaded, planned, approved by the
//!   [`Caller`], applied and recorded by the executor ([`execute`]). [`apply_loaded`] is its
//!   second half, for an input already in hand (`rollback` applies a history snapshot).
//! - [`past`] is the applied history with the desired state of each snapshot, built as
//!   `rollback` builds it (for `explain`).

mod load;

pub use load::{Fingerprint, Input, LoadError, Loaded, fingerprint, load, load_fingerprinted, recorded_input};

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::Result;

use crate::host::execute::{self, ApplyInput, ApplyMeta, ApplyOptions, ApplyReport, Outcome};
use crate::host::fetch::HttpFetch;
use crate::host::preflight::{self, Checks};
use crate::host::root::Root;
use crate::host::store::{self, Generation, RunLock, Snapshot};
use crate::host::systemd::{DbusSystemd, Systemd};
use crate::model::activation::Activation;
use crate::model::desired::DesiredState;
use crate::model::ignition::children::{Fetch, Offline};
use crate::model::plan::{self, Owned, Plan, PlanOptions};
use crate::model::state::{SourceRef, State};

/// Whether a run on `root` involves the running systemd: only on `/`, and never offline
/// (docs/plan-and-apply.md, "When systemd is asked").
pub fn talks_to_systemd(root: &Path, offline: bool) -> bool {
    !offline && root == Path::new("/")
}

/// What a converging run reaches beyond the root. Each is made only when the run needs it: a
/// converged fast path needs neither.
pub trait Reach {
    /// The fetcher of remote resources.
    fn fetch(&self) -> Result<&dyn Fetch>;
    /// systemd; `None` converges files only.
    fn systemd(&self) -> Result<Option<&dyn Systemd>>;
}

/// This machine: HTTP(S) unless offline, and systemd on the system bus for an online run on `/`;
/// each made on first use.
#[derive(Debug)]
pub struct Machine {
    root_dir: PathBuf,
    offline: bool,
    http: OnceCell<HttpFetch>,
    bus: OnceCell<DbusSystemd>,
}

impl Machine {
    /// This machine, for a run on `root_dir` (as the command line names it), `offline` or not.
    pub fn new(root_dir: &Path, offline: bool) -> Self {
        Machine { root_dir: root_dir.to_path_buf(), offline, http: OnceCell::new(), bus: OnceCell::new() }
    }
}

impl Reach for Machine {
    fn fetch(&self) -> Result<&dyn Fetch> {
        if self.offline {
            return Ok(&Offline);
        }
        Ok(made_once(&self.http, HttpFetch::new)?)
    }

    fn systemd(&self) -> Result<Option<&dyn Systemd>> {
        if !talks_to_systemd(&self.root_dir, self.offline) {
            return Ok(None);
        }
        Ok(Some(made_once(&self.bus, DbusSystemd::connect)?))
    }
}

/// What `cell` holds, made by `make` on first use.
fn made_once<T>(cell: &OnceCell<T>, make: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(made) = cell.get() {
        return Ok(made);
    }
    let made = make()?;
    Ok(cell.get_or_init(|| made))
}

/// How a plan is made.
#[derive(Debug, Clone, Copy)]
pub struct PlanHow<'a> {
    /// The root as the command line names it (`plan` on a missing root plans against an empty
    /// stand-in): whether systemd is asked, and why not.
    pub root_dir: &'a Path,
    /// `--offline`: systemd is not asked.
    pub offline: bool,
    /// `--adopt`: differing unowned paths are taken over.
    pub adopt: bool,
    /// Whether to run the checks before the writes (the Quadlet files, the changed units).
    pub checks: bool,
}

/// A plan, as the next apply would execute it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The desired state, children merged.
    pub desired: DesiredState,
    /// Its revision.
    pub revision: String,
    /// What CoreOps owns on the root (recorded, or written by an interrupted run).
    pub owned: BTreeMap<String, Owned>,
    /// The three-way plan.
    pub plan: Plan,
    /// The systemd actions it needs, or why they are skipped.
    pub activation: Activation,
    /// What the checks found (empty when not asked).
    pub checks: Checks,
}

/// Plans `input` against `root`, whose state is `state`: the desired state (children fetched
/// through `fetch`, remote contents not), the plan, the systemd actions decided over the units'
/// states where systemd is asked (without a bus, the plan is made as offline: a restart then
/// applies only if the unit is active), and the checks when `how` asks.
pub fn plan(root: &Root, state: &State, input: &ApplyInput, fetch: &dyn Fetch, how: PlanHow) -> Result<Planned> {
    let (desired, revision) = execute::build_desired(root, input, fetch, false).map_err(anyhow::Error::msg)?;
    let (observed, owned) = execute::observe(root, &desired, state);
    let the_plan = plan::plan(&desired, &observed, &owned, PlanOptions { adopt: how.adopt });
    let online = talks_to_systemd(how.root_dir, how.offline);
    let systemd = online
        .then(DbusSystemd::connect)
        .and_then(|c| c.map_err(|e| tracing::debug!("planning without systemd: {e:#}")).ok());
    let systemd = systemd.as_ref().map(|s| s as &dyn Systemd);
    // The checks run while the activation is decided.
    let checking =
        how.checks.then(|| preflight::start(root, &desired, &preflight::changed_units(&the_plan.changes), None));
    let mut activation = execute::decide_activation(&the_plan, &desired, &observed, state, &revision, systemd);
    activation.offline = (!online).then(|| execute::offline_reason(how.root_dir));
    let checks = checking.map_or_else(Checks::default, |checking| checking.finish(&desired));
    Ok(Planned { desired, revision, owned, plan: the_plan, activation, checks })
}

/// The caller's say in a converging run.
pub trait Caller {
    /// The input is loaded, before anything is done with it: the caller shows its warnings and
    /// may name the host to record (a config names none); an error stops the run (`--strict`).
    fn loaded(&self, loaded: &mut Loaded) -> Result<()>;
    /// The last say before anything is written, under the run lock, given the report so far
    /// ([`execute::Approve`]): an error stops the run with nothing written.
    fn approve(&self, loaded: &Loaded, so_far: &ApplyReport) -> Result<()>;
    /// Whether [`Caller::approve`] may wait for a person's answer (nothing is written while it
    /// waits).
    fn may_wait(&self) -> bool;
}

/// A converging run's result.
#[derive(Debug, Clone)]
pub struct Converged {
    /// The input; after the fast path only its names and digest (nothing was loaded).
    pub loaded: Loaded,
    /// What the run did.
    pub report: ApplyReport,
}

/// Converges `root` to `input`: nothing but a record when the input and the host are as the last
/// converged run left them (never with `opts.strict`, which reads and checks the input whatever
/// the last run did with it); else the input is loaded, shown to `caller`, and applied.
pub fn converge(
    root: &Root,
    input: &Input,
    opts: ApplyOptions,
    reach: &dyn Reach,
    caller: &dyn Caller,
) -> Result<Converged> {
    // Released before the input is loaded, so that an input that does not load (or that
    // `--strict` stops) leaves the root untouched; the apply takes it again.
    let lock = (!opts.strict).then(|| store::lock(root, opts.lock_timeout)).transpose()?;
    // Taken once the lock is held: what it lists is what is loaded right after, however long
    // another run held the lock.
    let fingerprint = fingerprint(input)?;
    let meta = &fingerprint.meta;
    tracing::debug!("apply: input fingerprinted");
    if let Some(lock) = lock {
        if let Some(report) = fast_path(root, &lock, meta, opts)? {
            return Ok(Converged { loaded: Loaded::from_meta(meta), report });
        }
    }
    let mut loaded = load_fingerprinted(input, &fingerprint)?;
    tracing::debug!("apply: input loaded");
    caller.loaded(&mut loaded)?;
    apply_loaded(root, loaded, opts, reach, caller)
}

/// The converged fast path for an input known by `meta` (never under `opts.strict`); `None`:
/// the input must be loaded and applied.
pub fn fast_path(root: &Root, lock: &RunLock, meta: &ApplyMeta, opts: ApplyOptions) -> Result<Option<ApplyReport>> {
    if opts.strict {
        return Ok(None);
    }
    execute::try_converged_under(root, lock, meta)
}

/// Applies an input already loaded (and shown): plans, asks `caller`'s approval, writes and
/// records through the executor.
pub fn apply_loaded(
    root: &Root,
    loaded: Loaded,
    opts: ApplyOptions,
    reach: &dyn Reach,
    caller: &dyn Caller,
) -> Result<Converged> {
    let lock = store::lock(root, opts.lock_timeout)?;
    apply_loaded_under(root, &lock, loaded, opts, reach, caller)
}

/// [`apply_loaded`] for a caller that already holds the run lock.
pub fn apply_loaded_under(
    root: &Root,
    lock: &RunLock,
    mut loaded: Loaded,
    opts: ApplyOptions,
    reach: &dyn Reach,
    caller: &dyn Caller,
) -> Result<Converged> {
    let fetch = reach.fetch()?;
    let systemd = reach.systemd()?;
    let input = loaded.apply_input();
    let ask = |so_far: &ApplyReport| caller.approve(&loaded, so_far);
    let approve = execute::Approve { ask: &ask, may_wait: caller.may_wait() };
    let report = execute::apply_under(root, lock, &input, fetch, opts, systemd, approve)?;
    if let Some(record) = loaded.first_boot.as_ref().filter(|_| report.outcome == Outcome::Converged) {
        // As at first boot: what the render recorded is what CoreOps owns, byte for byte.
        store::save_first_boot_state(root, record)?;
    }
    Ok(Converged { loaded, report })
}

/// One applied generation and the desired state of its snapshot (`None`: unreadable).
#[derive(Debug, Clone)]
pub struct Past {
    /// The generation.
    pub generation: Generation,
    /// The desired state it applied.
    pub desired: Option<Rc<DesiredState>>,
}

/// Every kept generation, newest first, each once, with the desired state of its snapshot
/// (built once per snapshot).
pub fn past(root: &Root, state: &State) -> Result<Vec<Past>> {
    let snapshots = store::snapshots(root, state)?;
    let mut built: BTreeMap<usize, Option<Rc<DesiredState>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (generation, index) in store::generations(&snapshots) {
        let desired =
            built.entry(index).or_insert_with(|| snapshot_desired(root, &snapshots[index]).map(Rc::new)).clone();
        out.push(Past { generation, desired });
    }
    Ok(out)
}

/// The desired state of a snapshot, as `rollback` would build it; `None` when it cannot be built.
fn snapshot_desired(root: &Root, snapshot: &Snapshot) -> Option<DesiredState> {
    let source = SourceRef::snapshot(&snapshot.revision);
    let mut loaded = Loaded::from_snapshot(snapshot, source).map_err(|e| tracing::warn!("{e:#}")).ok()?;
    execute::build_desired(root, &loaded.apply_input(), &Offline, false).map(|(d, _)| d).ok()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::load::tests::{HOST_YAML, SITE_CONF, config_with_a_tree, git_source, tree_input};
    use super::*;
    use crate::host::execute::Outcome;

    /// A caller that approves everything and counts the inputs it was shown.
    #[derive(Default)]
    struct Counting {
        loaded: Cell<usize>,
    }

    impl Caller for Counting {
        fn loaded(&self, _: &mut Loaded) -> Result<()> {
            self.loaded.set(self.loaded.get() + 1);
            Ok(())
        }

        fn approve(&self, _: &Loaded, _: &ApplyReport) -> Result<()> {
            Ok(())
        }

        fn may_wait(&self) -> bool {
            false
        }
    }

    fn options() -> ApplyOptions {
        ApplyOptions {
            adopt: false,
            lock_timeout: Duration::from_secs(5),
            unit_timeout: Duration::from_secs(1),
            strict: false,
        }
    }

    #[test]
    fn converging_a_tree_writes_it_once_then_takes_the_fast_path_until_the_digest_moves() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let reach = Machine::new(root_dir.path(), true);
        let caller = Counting::default();
        let input = tree_input(&[HOST_YAML, SITE_CONF], "git-1");

        let first = converge(&root, &input, options(), &reach, &caller).unwrap();
        assert_eq!(first.report.outcome, Outcome::Converged, "{:?}", first.report.errors);
        let written = std::fs::read(root_dir.path().join("etc/web/site.conf")).unwrap();
        assert_eq!(written, b"listen 80;\n");
        assert_eq!(caller.loaded.get(), 1);
        let state = store::load_state(&root).unwrap();
        assert_eq!(state.source, Some(git_source()), "the tree's source is recorded");
        let audit = std::fs::read_to_string(root_dir.path().join("var/lib/core-ops/audit.log")).unwrap();
        let line: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
        assert_eq!(line["source"]["commit"], "0123456789abcdef0123456789abcdef01234567", "the audit names the commit");
        assert_eq!(line["source"]["location"], "https://example.org/infra.git");

        let again = converge(&root, &input, options(), &reach, &caller).unwrap();
        assert_eq!(again.report.outcome, Outcome::Converged);
        assert_eq!(caller.loaded.get(), 1, "the fast path loads nothing");
        assert_eq!(again.report.revision, first.report.revision);
        assert_eq!(again.loaded.source_ref, git_source());

        let moved = tree_input(&[HOST_YAML, SITE_CONF], "git-2");
        let third = converge(&root, &moved, options(), &reach, &caller).unwrap();
        assert_eq!(caller.loaded.get(), 2, "another digest is loaded and planned again");
        assert_eq!(third.report.revision, first.report.revision, "the same content is the same revision");
    }

    #[test]
    fn the_input_is_listed_once_the_run_lock_is_held_not_while_waiting_for_it() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let input_dir = tempfile::tempdir().unwrap();
        let (input, files) = config_with_a_tree(input_dir.path(), &["a", "b"]);
        let held = store::lock(&root, Duration::from_secs(5)).unwrap();
        let outcome = std::thread::scope(|scope| {
            let run = scope.spawn(|| {
                let root = Root::open(root_dir.path()).unwrap();
                let reach = Machine::new(root_dir.path(), true);
                let run = converge(&root, &input, options(), &reach, &Counting::default()).unwrap();
                (run.report.outcome, format!("{:?}", run.report.errors))
            });
            // The run waits for the lock; a file of its tree goes away meanwhile.
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(files.join("t/b")).unwrap();
            drop(held);
            run.join().unwrap()
        });
        assert_eq!(outcome.0, Outcome::Converged, "{}", outcome.1);
        assert_eq!(std::fs::read(root_dir.path().join("srv/a")).unwrap(), b"a");
        assert!(!root_dir.path().join("srv/b").exists());
    }
}
