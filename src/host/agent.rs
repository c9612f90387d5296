//! One agent cycle, as `core-ops.timer` runs it: fetch → commit selection → plan → apply →
//! verify → record, all under the run lock that `apply` takes.
//!
//! | situation                                   | what the cycle converges to | exit |
//! |---------------------------------------------|-----------------------------|------|
//! | no `/etc/core-ops/tracking.yaml`            | nothing (a one-line notice) | 0    |
//! | suspended                                   | nothing, no fetch           | 0    |
//! | new tip, accepted                           | the tip                     | 0    |
//! | nothing new                                 | the baseline (drift fixed)  | 0    |
//! | remote unreachable                          | the cached tip or baseline  | 75   |
//! | tip rewinds the baseline, or is unrelated   | the baseline                | 1    |
//! | tip unsigned or signed by an untrusted key  | the baseline                | 1    |
//! | tip's repository invalid for the host       | the baseline                | 65   |
//! | tip refused before, not moved, no `--retry` | the baseline                | same |
//! | a unit fails or the apply fails             | (partially) the commit      | 1    |
//!
//! The baseline is the last commit the agent applied ([`AgentRecord::baseline`]); every tip
//! must descend from it. A refused tip is recorded and not evaluated again until the remote
//! moves, `--retry` is given, or `init --force` resets the baseline. The tree of a commit is
//! read from the cache's object database, never checked out; a converged host with nothing new
//! does not even read it (the converged fast path of [`execute`](crate::host::execute)).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::host::execute::{ApplyMeta, ApplyOptions, ApplyReport, Outcome};
use crate::host::git::{Cache, CommitInfo, FetchError, Remote};
use crate::host::pipeline::{self, Caller, Input, LoadError, Loaded, Reach};
use crate::host::root::Root;
use crate::host::signature;
use crate::host::signature::AllowedSigners;
use crate::host::store;
use crate::host::tracking_file;
use crate::host::trusted_file;
use crate::model::agent::{AgentRecord, CycleRecord, Refusal, Suspension};
use crate::model::state::SourceRef;
use crate::model::tracking::Tracking;

/// Exit code of a cycle whose remote could not be reached (EX_TEMPFAIL).
pub const EXIT_UNREACHABLE: u8 = 75;
/// Exit code of a cycle whose tip holds an invalid repository (EX_DATAERR).
pub const EXIT_INVALID_TIP: u8 = 65;
/// Exit code of a failed cycle.
pub const EXIT_FAILED: u8 = 1;

/// How to run a cycle.
#[derive(Debug, Clone, Copy)]
pub struct CycleOptions {
    /// Fetch nothing: converge to the cached commit.
    pub offline: bool,
    /// Evaluate a tip again even though it was refused before.
    pub retry: bool,
    /// Show the fetch's progress on standard error.
    pub progress: bool,
    /// How long the fetch may take before the cycle goes on without it (as if the remote were
    /// unreachable: the cached commit is converged and the cycle exits 75).
    pub fetch_timeout: std::time::Duration,
    /// The apply's options.
    pub apply: ApplyOptions,
}

/// How long the fetch of `init` and of `plan`/`apply --fetch` may take.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What a cycle reaches beyond the root, and the caller's say in its apply.
#[derive(Clone, Copy)]
pub struct Effects<'a> {
    /// Remote resources of the config and systemd, made when first needed.
    pub reach: &'a dyn Reach,
    /// Shown the input once loaded, and asked before anything is written.
    pub caller: &'a dyn Caller,
}

impl std::fmt::Debug for Effects<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effects").finish_non_exhaustive()
    }
}

/// How a cycle went.
#[derive(Debug)]
pub enum Cycle {
    /// The host follows no repository yet.
    NotInitialised,
    /// Cycles are suspended.
    Suspended(Suspension),
    /// The cycle ran.
    Ran(Box<CycleReport>),
}

/// What a cycle that ran did.
#[derive(Debug)]
pub struct CycleReport {
    /// What the host follows.
    pub tracking: Tracking,
    /// The fetch.
    pub fetch: FetchOutcome,
    /// The remote's tip as last fetched.
    pub tip: Option<String>,
    /// Why the tip was kept out, when it was.
    pub refusal: Option<Refusal>,
    /// Whether this cycle kept the tip out (else an earlier one did, and it was not tried again).
    pub refusal_is_new: bool,
    /// The commit the host was converged to.
    pub converged_to: Option<CommitInfo>,
    /// The input that was applied, for the report.
    pub loaded: Option<Loaded>,
    /// The apply.
    pub apply: Option<ApplyReport>,
    /// Errors that are neither the fetch's nor the apply's.
    pub errors: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
    /// One line: what the cycle did.
    pub summary: String,
}

/// The fetch of a cycle.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    /// `--offline`.
    Skipped,
    /// Fetched this tip, with warnings (a rebuilt cache).
    Fetched {
        /// The tip.
        commit: String,
        /// What to tell the operator.
        warnings: Vec<String>,
    },
    /// Failed; `unreachable` when the remote could not be reached.
    Failed {
        /// Why.
        error: String,
        /// Whether it was the network (exit 75).
        unreachable: bool,
    },
}

/// The bare cache of the tracked repository under `root`.
pub fn cache(root: &Root) -> Cache {
    Cache::at(under_root(root, store::REPO_CACHE))
}

/// The remote a tracking config names, its token and CA files found under the root and checked
/// as [`trusted_file`] checks them (a CA file others could write would let them in the middle).
pub fn remote(root: &Root, tracking: &Tracking) -> Result<Remote, FetchError> {
    let http = tracking.repository.starts_with("http://") || tracking.repository.starts_with("https://");
    let trusted = |path: &Option<String>, what: &str| -> Result<Option<PathBuf>, FetchError> {
        let Some(path) = path.as_ref().filter(|_| http) else { return Ok(None) };
        trusted_file::read_existing(root, path, what).map_err(|e| FetchError::Other(format!("{e:#}")))?;
        Ok(Some(under_root(root, path)))
    };
    Ok(Remote {
        url: tracking.repository.clone(),
        reference: tracking.reference.clone(),
        access_token_file: trusted(&tracking.access_token_file, "the access token file")?,
        ca_file: trusted(&tracking.ca_file, "the CA file")?,
    })
}

fn under_root(root: &Root, path: &str) -> PathBuf {
    root.path().join(path.trim_start_matches('/'))
}

/// Runs one cycle for the host `tracking` (read by the caller from [`tracking_file`]) describes.
pub fn run(root: &Root, tracking: &Tracking, effects: Effects<'_>, opts: CycleOptions) -> Result<Cycle> {
    let lock = store::lock(root, opts.apply.lock_timeout)?;
    let mut record = store::load_agent(root)?;
    if let Some(s) = &record.suspended {
        return Ok(Cycle::Suspended(s.clone()));
    }
    let mut cycle = Cycler {
        root,
        lock: &lock,
        tracking,
        cache: cache(root),
        record: &mut record,
        judged: std::cell::Cell::new(false),
        local_errors: Vec::new(),
    };
    let report = cycle.run(effects, opts)?;
    record.last_cycle = Some(CycleRecord {
        at: store::now(),
        exit_code: report.exit_code,
        summary: report.summary.clone(),
        commit: report.converged_to.as_ref().map(|c| c.id.clone()),
        errors: cycle_errors(&report),
    });
    store::save_agent(root, &record)?;
    Ok(Cycle::Ran(Box::new(report)))
}

fn cycle_errors(report: &CycleReport) -> Vec<String> {
    let fetch = match &report.fetch {
        FetchOutcome::Failed { error, .. } => Some(format!("fetch: {error}")),
        _ => None,
    };
    let refusal = report.refusal.as_ref().map(|r| r.reason.clone());
    let apply = report.apply.iter().flat_map(|a| a.errors.iter().cloned());
    fetch.into_iter().chain(refusal).chain(report.errors.iter().cloned()).chain(apply).collect()
}

/// One cycle in progress.
struct Cycler<'c> {
    root: &'c Root,
    lock: &'c store::RunLock,
    tracking: &'c Tracking,
    cache: Cache,
    record: &'c mut AgentRecord,
    /// Whether this cycle judged its tip (rather than finding it judged before).
    judged: std::cell::Cell<bool>,
    /// Problems of this host met while judging the tip.
    local_errors: Vec<String>,
}

/// Why a tip was not accepted.
enum Verdict {
    /// The commit itself is refused (exit code, reason): remembered until the ref moves.
    Refused(u8, String),
    /// This host could not judge it (its allowed-signers file, its cache): not remembered.
    Local(String),
}

/// A problem of this host that stopped a tip from being judged.
struct LocalError(String);

/// The allowed signers `trust` names (a path under the root).
fn allowed_signers(root: &Root, trust: &str) -> Result<AllowedSigners, LocalError> {
    signature::read_allowed_signers(root, trust).map_err(|errors| LocalError(errors.join("\n")))
}

/// What to converge to, once the tip was judged.
struct Selection {
    /// The commit to converge to, if any.
    commit: Option<String>,
    /// Why the tip was kept out.
    refusal: Option<Refusal>,
    /// The commit's input, when judging it loaded it already.
    loaded: Option<Loaded>,
}

impl Cycler<'_> {
    fn run(&mut self, effects: Effects<'_>, opts: CycleOptions) -> Result<CycleReport> {
        let fetch = self.fetch(opts);
        let tip = match &fetch {
            FetchOutcome::Fetched { commit, .. } => Some(commit.clone()),
            _ => self.cache.tip().ok().flatten(),
        };
        let mut report = CycleReport {
            tracking: self.tracking.clone(),
            fetch,
            tip: tip.clone(),
            refusal: None,
            refusal_is_new: false,
            converged_to: None,
            loaded: None,
            apply: None,
            errors: Vec::new(),
            exit_code: 0,
            summary: String::new(),
        };
        let selection = match &tip {
            Some(tip) => self.select(tip, opts.retry),
            None => Selection { commit: None, refusal: None, loaded: None },
        };
        report.refusal_is_new = selection.refusal.as_ref().is_some_and(|r| self.judged_now(r));
        report.refusal = selection.refusal;
        report.errors.append(&mut self.local_errors);
        if let Some(commit) = selection.commit {
            // A failure here (the commit unreadable from the cache) is this cycle's error, and
            // the record of the cycle is still saved.
            if let Err(e) = self.converge(&commit, selection.loaded, effects, opts.apply, &mut report) {
                report.errors.push(format!("{e:#}"));
            }
        } else if tip.is_none() {
            report.errors.push(format!(
                "the cache at {} holds no commit of {} yet; nothing was applied",
                self.cache.dir().display(),
                self.tracking.reference
            ));
        }
        report.exit_code = exit_code(&report);
        report.summary = summary(&report);
        Ok(report)
    }

    /// Fetches the tracked ref into the cache and notes the outcome in the record.
    fn fetch(&mut self, opts: CycleOptions) -> FetchOutcome {
        if opts.offline {
            return FetchOutcome::Skipped;
        }
        let now = store::now();
        let lost = self.record.last_fetch.is_some() && !self.cache.dir().exists();
        let fetched = remote(self.root, self.tracking)
            .and_then(|r| fetch_within(&self.cache, r, opts.progress, opts.fetch_timeout));
        match fetched {
            Ok(mut fetched) => {
                if lost {
                    fetched.warnings.push(format!(
                        "the cache at {} was missing; fetched it again from {}",
                        self.cache.dir().display(),
                        self.tracking.repository
                    ));
                }
                self.record.fetched(&now, &fetched.commit);
                FetchOutcome::Fetched { commit: fetched.commit, warnings: fetched.warnings }
            }
            Err(e) => {
                let error = e.to_string();
                self.record.fetch_failed(&now, &error);
                FetchOutcome::Failed { error, unreachable: matches!(e, FetchError::Unreachable(_)) }
            }
        }
    }

    /// Whether `refusal` was made by this cycle (it is then the record's, with this cycle's time).
    fn judged_now(&self, refusal: &Refusal) -> bool {
        self.judged.get() && self.record.refused.as_ref() == Some(refusal)
    }

    /// Judges `tip` against the baseline, the signers and the layout; what to converge to.
    fn select(&mut self, tip: &str, retry: bool) -> Selection {
        let baseline = self.record.baseline.clone();
        if baseline.as_deref() == Some(tip) {
            // Back at (or still at) the baseline: nothing of the tip is kept out any more.
            self.record.refused = None;
            return Selection { commit: Some(tip.to_string()), refusal: None, loaded: None };
        }
        if let Some(before) = self.record.refused_before(tip).filter(|_| !retry) {
            return Selection { commit: baseline, refusal: Some(before.clone()), loaded: None };
        }
        self.judged.set(true);
        match self.judge(tip, baseline.as_deref()) {
            Ok(loaded) => {
                self.record.refused = None;
                Selection { commit: Some(tip.to_string()), refusal: None, loaded: Some(loaded) }
            }
            Err(Verdict::Refused(exit_code, reason)) => {
                let refusal = Refusal { commit: tip.to_string(), reason, exit_code, at: store::now() };
                self.record.refused = Some(refusal.clone());
                Selection { commit: baseline, refusal: Some(refusal), loaded: None }
            }
            Err(Verdict::Local(reason)) => {
                // A problem of this host, not of the commit: not remembered against the tip.
                self.local_errors.push(reason);
                Selection { commit: baseline, refusal: None, loaded: None }
            }
        }
    }

    /// Whether `tip` may be applied: it descends from the baseline, carries a trusted
    /// signature when trust is configured, and holds a valid repository for the host (its
    /// input, loaded).
    fn judge(&self, tip: &str, baseline: Option<&str>) -> Result<Loaded, Verdict> {
        if let Some(base) = baseline {
            self.check_descends(tip, base).map_err(|reason| Verdict::Refused(EXIT_FAILED, reason))?;
        }
        if let Some(trust) = &self.tracking.trust {
            let allowed = allowed_signers(self.root, trust).map_err(|e| Verdict::Local(e.0))?;
            let raw = self.cache.commit_object(tip).map_err(|e| Verdict::Local(e.to_string()))?;
            signature::verify_commit(tip, &raw, &allowed).map_err(|e| Verdict::Refused(EXIT_FAILED, e.to_string()))?;
        }
        self.check_layout(tip).map_err(|reason| Verdict::Refused(EXIT_INVALID_TIP, reason))
    }

    fn check_descends(&self, tip: &str, base: &str) -> Result<(), String> {
        check_descends(&self.cache, self.tracking, tip, base)
    }

    fn check_layout(&self, tip: &str) -> Result<Loaded, String> {
        let input = self.input(tip).map_err(|issues| issues.join("\n"))?;
        pipeline::load(&input, false).map_err(|e| load_error_lines(&e).join("\n"))
    }

    /// The pipeline input of `commit`: its tree, read from the cache.
    fn input(&self, commit: &str) -> Result<Input, Vec<String>> {
        let info = self.cache.commit_info(commit).map_err(|e| vec![e.to_string()])?;
        commit_input(&self.cache, self.tracking, &info)
    }

    fn source(&self, info: &CommitInfo) -> SourceRef {
        commit_source(self.tracking, info)
    }

    fn digest(&self, commit: &str) -> String {
        commit_digest(self.tracking, commit)
    }

    /// Converges the host to `commit`: the fast path when nothing changed, else the full apply.
    fn converge(
        &mut self,
        commit: &str,
        judged: Option<Loaded>,
        effects: Effects<'_>,
        opts: ApplyOptions,
        report: &mut CycleReport,
    ) -> Result<()> {
        let info = self.cache.commit_info(commit).with_context(|| format!("reading commit {commit} from the cache"))?;
        let meta = ApplyMeta {
            host: self.tracking.host.clone(),
            source: self.source(&info),
            input_digest: Some(self.digest(commit)),
        };
        if let Some(fast) = pipeline::fast_path(self.root, self.lock, &meta, opts)? {
            self.accept(commit, report);
            report.loaded = Some(Loaded::from_meta(&meta));
            report.apply = Some(fast);
            report.converged_to = Some(info);
            return Ok(());
        }
        let loaded = match judged {
            Some(loaded) => Ok(loaded),
            None => {
                self.input(commit).and_then(|input| pipeline::load(&input, false).map_err(|e| load_error_lines(&e)))
            }
        };
        let mut loaded = match loaded {
            Ok(loaded) => loaded,
            Err(lines) => {
                report.errors.extend(lines);
                return Ok(());
            }
        };
        effects.caller.loaded(&mut loaded)?;
        let applied = pipeline::apply_loaded_under(self.root, self.lock, loaded, opts, effects.reach, effects.caller)?;
        if applied.report.outcome == Outcome::Converged {
            self.record.host_switch = None;
            self.accept(commit, report);
        }
        report.apply = Some(applied.report);
        report.loaded = Some(applied.loaded);
        report.converged_to = Some(info);
        Ok(())
    }

    /// Notes that the host is converged to `commit`: when it is the tip, the tip becomes the
    /// baseline every later tip must descend from (also when the host was already converged
    /// to it, by an `apply` by hand).
    fn accept(&mut self, commit: &str, report: &CycleReport) {
        if Some(commit) == report.tip.as_deref() {
            self.record.baseline = Some(commit.to_string());
        }
    }
}

/// Whether `tip` descends from `base`, the last commit applied (else why it is refused).
fn check_descends(cache: &Cache, tracking: &Tracking, tip: &str, base: &str) -> Result<(), String> {
    let refuse = || {
        format!(
            "the tip {tip} of {} does not descend from {base}, the last commit applied: the history was rewound \
             or replaced, so nothing of it was applied. If that is intended, run `core-ops init --force {} {}`",
            tracking.reference, tracking.repository, tracking.reference
        )
    };
    match cache.descends_from(tip, base) {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(refuse()),
    }
}

/// The pipeline input of the commit `info` describes: its tree, read from the cache, as the host
/// `tracking` names, with the source and digest to record; the tree's located issues otherwise.
fn commit_input(cache: &Cache, tracking: &Tracking, info: &CommitInfo) -> Result<Input, Vec<String>> {
    let tree =
        cache.read_tree(&info.id).map_err(|issues| issues.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(Input::Tree {
        tree,
        host: tracking.host.clone(),
        source: commit_source(tracking, info),
        digest: commit_digest(tracking, &info.id),
    })
}

/// The recorded source of `commit` of the repository `tracking` names.
fn commit_source(tracking: &Tracking, info: &CommitInfo) -> SourceRef {
    SourceRef {
        kind: "git".into(),
        location: tracking.repository.clone(),
        host: Some(tracking.host.clone()),
        reference: Some(tracking.reference.clone()),
        commit: Some(info.id.clone()),
        dirty: false,
        summary: Some(info.summary.clone()),
        author: Some(info.author.clone()),
        committed_at: Some(info.time.clone()),
    }
}

/// What identifies every input byte of `commit` for the host: the commit id names its tree.
fn commit_digest(tracking: &Tracking, commit: &str) -> String {
    format!("git-{commit}-{}", tracking.host)
}

/// Whether `tip` carries a valid SSH signature by a key of the allowed-signers file `trust` (a
/// path on the root).
fn verify_tip(root: &Root, cache: &Cache, tip: &str, trust: &str) -> Result<(), String> {
    let allowed = allowed_signers(root, trust).map_err(|e| e.0)?;
    let raw = cache.commit_object(tip).map_err(|e| e.to_string())?;
    signature::verify_commit(tip, &raw, &allowed).map(|_| ()).map_err(|e| e.to_string())
}

/// Fetches `remote` into `cache`, giving up after `timeout`: git's own transports have no
/// timeout of their own, and a remote that accepts a connection and never answers must not hold
/// the run lock for ever. A fetch given up on goes on in its thread until the process ends; the
/// cache is only ever replaced whole or has its ref moved last, so it stays readable.
fn fetch_within(
    cache: &Cache,
    remote: Remote,
    progress: bool,
    timeout: std::time::Duration,
) -> Result<crate::host::git::Fetched, FetchError> {
    let (done, result) = std::sync::mpsc::channel();
    let cache = cache.clone();
    std::thread::spawn(move || {
        let _ = done.send(cache.fetch(&remote, progress));
    });
    result.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(FetchError::Unreachable(format!(
            "the fetch did not finish within {} s: the remote accepted the connection but did not answer",
            timeout.as_secs()
        )))
    })
}

/// The lines a load error prints.
pub fn load_error_lines(e: &LoadError) -> Vec<String> {
    match e {
        LoadError::Unusable(message) => vec![message.clone()],
        LoadError::Invalid(issues) => issues.iter().map(ToString::to_string).collect(),
        LoadError::Failed(lines) => lines.clone(),
    }
}

/// The exit code of a cycle: a failed apply or refused tip first, then an unreachable remote.
fn exit_code(report: &CycleReport) -> u8 {
    let apply_failed = report.apply.as_ref().is_some_and(|a| a.outcome != Outcome::Converged);
    if apply_failed || !report.errors.is_empty() {
        return EXIT_FAILED;
    }
    if let Some(refusal) = &report.refusal {
        return refusal.exit_code;
    }
    match &report.fetch {
        FetchOutcome::Failed { unreachable: true, .. } => EXIT_UNREACHABLE,
        FetchOutcome::Failed { .. } => EXIT_FAILED,
        _ => 0,
    }
}

/// The one line that says what a cycle did.
fn summary(report: &CycleReport) -> String {
    let at = |c: &CommitInfo| format!("{} ({})", short(&c.id), c.summary);
    let converged = match (&report.converged_to, &report.apply) {
        (Some(c), Some(a)) if a.outcome == Outcome::Converged => format!("converged to {}", at(c)),
        (Some(c), Some(a)) => format!("{} at {}", a.outcome.name(), at(c)),
        _ => "nothing applied".to_string(),
    };
    match (&report.refusal, &report.fetch) {
        (Some(r), _) => format!("{converged}; the tip {} was kept out", short(&r.commit)),
        (None, FetchOutcome::Failed { .. }) => format!("{converged}; the fetch failed"),
        _ => converged,
    }
}

/// A commit id as shown in one-line messages.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Suspends the agent's cycles (under the run lock, so a running cycle finishes first); the
/// suspension in force, which an earlier `suspend` may have started.
pub fn suspend(root: &Root, reason: Option<String>, lock_timeout: std::time::Duration) -> Result<Suspension> {
    let _lock = store::lock(root, lock_timeout)?;
    let mut record = store::load_agent(root)?;
    let suspension = record.suspended.get_or_insert_with(|| Suspension { since: store::now(), reason: None });
    if reason.is_some() {
        suspension.reason = reason;
    }
    let suspension = suspension.clone();
    store::save_agent(root, &record)?;
    Ok(suspension)
}

/// Resumes the agent's cycles; the suspension that ended, if there was one.
pub fn resume(root: &Root, lock_timeout: std::time::Duration) -> Result<Option<Suspension>> {
    let _lock = store::lock(root, lock_timeout)?;
    let mut record = store::load_agent(root)?;
    let ended = record.suspended.take();
    if ended.is_some() {
        store::save_agent(root, &record)?;
    }
    Ok(ended)
}

/// What `init` was asked.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The intent to record.
    pub tracking: Tracking,
    /// Replace another repository or ref, and reset the rewind baseline.
    pub force: bool,
    /// The root was last applied as another host, and the operator moves it to this one.
    pub switch_host: bool,
    /// Show the fetch's progress on standard error.
    pub progress: bool,
    /// How long to wait for another run's lock.
    pub lock_timeout: std::time::Duration,
}

/// What `init` found: the tip, the host's input at it, and the plan the first cycle would make.
#[derive(Debug)]
pub struct Initialised {
    /// The tip of the ref.
    pub commit: CommitInfo,
    /// The host's input at it.
    pub loaded: Loaded,
    /// What the first cycle would change.
    pub planned: pipeline::Planned,
    /// What to tell the operator (a rebuilt cache, a tip the agent would refuse).
    pub warnings: Vec<String>,
    /// The tracking config this one replaced, if it differed.
    pub replaced: Option<Tracking>,
}

/// Why `init` did not record anything.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The host already follows another repository or ref (exit 1).
    #[error(
        "this host already follows {} at {} as {}; run again with --force to follow {} at {} instead (that also \
         accepts a history that does not descend from the last applied commit)",
        .0.repository, .0.reference, .0.host, .1.repository, .1.reference
    )]
    OtherRepository(Box<Tracking>, Box<Tracking>),
    /// The ref could not be fetched (exit 75 when the remote is unreachable, else 1).
    #[error("fetching {reference} from {repository}: {error}")]
    Fetch {
        /// The repository.
        repository: String,
        /// The ref.
        reference: String,
        /// Why.
        error: FetchError,
    },
    /// The repository at the tip is invalid for the host (exit 65).
    #[error("the repository at {commit} is invalid for host {host}")]
    Invalid {
        /// The tip.
        commit: String,
        /// The host.
        host: String,
        /// The located errors.
        lines: Vec<String>,
    },
}

/// `core-ops init`: fetches the ref into the cache, checks that the host loads at its tip, and
/// records the intent; applies nothing. On an error nothing is recorded, and a cache this run
/// created is removed.
pub fn init(root: &Root, request: &InitRequest) -> Result<Initialised> {
    let _lock = store::lock(root, request.lock_timeout)?;
    let existing = existing_tracking(root, request.force)?;
    let replaced = existing.filter(|t| *t != request.tracking);
    let moved = replaced.as_ref().filter(|t| !same_remote(t, &request.tracking));
    if let Some(other) = moved.filter(|_| !request.force) {
        return Err(InitError::OtherRepository(Box::new(other.clone()), Box::new(request.tracking.clone())).into());
    }
    let cache = cache(root);
    // Another repository is fetched into the same cache: its ref replaces the tracked one only
    // once the fetch succeeded, so a failed `init --force` leaves the old repository usable.
    let fresh = !cache.dir().exists();
    let outcome = check_tip(root, &cache, request);
    if outcome.is_err() && fresh {
        let _ = cache.remove();
    }
    let (commit, loaded, planned, warnings) = outcome?;
    tracking_file::save(root, &request.tracking)?;
    let mut record = store::load_agent(root)?;
    if request.force || moved.is_some() || record.baseline.is_none() {
        record.reset_baseline();
    }
    record.fetched(&store::now(), &commit.id);
    record.host_switch = request.switch_host.then(|| request.tracking.host.clone());
    store::save_agent(root, &record)?;
    Ok(Initialised { commit, loaded, planned, warnings, replaced })
}

/// The tracking config in place; with `force`, one that cannot be read is replaced.
fn existing_tracking(root: &Root, force: bool) -> Result<Option<Tracking>> {
    match tracking_file::load(root) {
        Ok(t) => Ok(t),
        Err(e) if force => {
            tracing::warn!("replacing {}: {e:#}", tracking_file::shown(root));
            Ok(None)
        }
        Err(e) => Err(e.context("run again with --force to replace it")),
    }
}

fn same_remote(a: &Tracking, b: &Tracking) -> bool {
    a.repository == b.repository && a.reference == b.reference
}

/// Fetches the tip and checks it: the host loads, the plan can be made; a tip the agent would
/// refuse for its signature is a warning.
fn check_tip(
    root: &Root,
    cache: &Cache,
    request: &InitRequest,
) -> Result<(CommitInfo, Loaded, pipeline::Planned, Vec<String>)> {
    let t = &request.tracking;
    let fetched =
        remote(root, t).and_then(|r| fetch_within(cache, r, request.progress, FETCH_TIMEOUT)).map_err(|error| {
            InitError::Fetch { repository: t.repository.clone(), reference: t.reference.clone(), error }
        })?;
    let mut warnings = fetched.warnings;
    let info = cache.commit_info(&fetched.commit)?;
    let invalid = |lines: Vec<String>| InitError::Invalid { commit: info.id.clone(), host: t.host.clone(), lines };
    let input = commit_input(cache, t, &info).map_err(invalid)?;
    let mut loaded = pipeline::load(&input, false).map_err(|e| invalid(load_error_lines(&e)))?;
    if let Some(trust) = &t.trust {
        if let Err(reason) = verify_tip(root, cache, &info.id, trust) {
            warnings.push(format!("the agent will not apply this tip until it is signed by a trusted key: {reason}"));
        }
    }
    let state = store::load_state(root)?;
    let how = pipeline::PlanHow { root_dir: root.path(), offline: true, adopt: false, checks: false };
    let planned = pipeline::plan(root, &state, &loaded.apply_input(), &crate::model::ignition::children::Offline, how)?;
    Ok((info, loaded, planned, warnings))
}

/// The input of the tracked repository at its cached tip (at the last applied commit while the
/// agent keeps the tip out), for `plan`, `apply` and `explain` given no input; `None` when the
/// host follows no repository. With `fetch`, the ref is fetched first (under the run lock, which
/// `fetch` says how long to wait for).
pub fn tracked_input(root: &Root, fetch: Option<(bool, std::time::Duration)>) -> Result<Option<Input>> {
    let Some(tracking) = tracking_file::load(root)? else { return Ok(None) };
    let cache = cache(root);
    let tip = match fetch {
        Some((progress, lock_timeout)) => fetch_recorded(root, &tracking, &cache, progress, lock_timeout)?,
        None => cache.tip()?.with_context(|| {
            format!(
                "the cache {} holds no commit of {} yet: run `core-ops agent`, or give --fetch",
                cache.dir().display(),
                tracking.reference
            )
        })?,
    };
    let commit = usable_commit(root, &tracking, &cache, &tip)?;
    let info = cache.commit_info(&commit)?;
    let input = commit_input(&cache, &tracking, &info)
        .map_err(|lines| anyhow::anyhow!("reading commit {commit}: {}", lines.join("\n")))?;
    Ok(Some(input))
}

/// Fetches the tracked ref (under the run lock) and notes the fetch in the agent's record, as a
/// cycle does, so that `status` shows what the cache holds; the tip.
fn fetch_recorded(
    root: &Root,
    tracking: &Tracking,
    cache: &Cache,
    progress: bool,
    lock_timeout: std::time::Duration,
) -> Result<String> {
    let _lock = store::lock(root, lock_timeout)?;
    let mut record = store::load_agent(root)?;
    let fetched = remote(root, tracking).and_then(|r| fetch_within(cache, r, progress, FETCH_TIMEOUT));
    match &fetched {
        Ok(f) => record.fetched(&store::now(), &f.commit),
        Err(e) => record.fetch_failed(&store::now(), &e.to_string()),
    }
    store::save_agent(root, &record)?;
    let fetched = fetched.with_context(|| format!("fetching {} from {}", tracking.reference, tracking.repository))?;
    for w in &fetched.warnings {
        tracing::warn!("{w}");
    }
    Ok(fetched.commit)
}

/// The commit `plan`, `apply` and `explain` read: the cached tip, unless the agent keeps it out
/// (an earlier cycle refused it, it does not descend from the last applied commit, or it is not
/// signed by a trusted key); then the last commit the agent applied, with a warning. A tip kept
/// out with no commit applied before it is an error: a hand-run `apply` never gets around the
/// checks of the agent.
fn usable_commit(root: &Root, tracking: &Tracking, cache: &Cache, tip: &str) -> Result<String> {
    let record = store::load_agent(root)?;
    let kept_out = match record.refused_before(tip) {
        Some(refusal) => Some(refusal.reason.clone()),
        None => record
            .baseline
            .as_deref()
            .map_or(Ok(()), |base| check_descends(cache, tracking, tip, base))
            .and_then(|()| tracking.trust.as_deref().map_or(Ok(()), |trust| verify_tip(root, cache, tip, trust)))
            .err(),
    };
    let Some(reason) = kept_out else { return Ok(tip.to_string()) };
    match record.baseline.filter(|base| base != tip) {
        Some(base) => {
            tracing::warn!(
                "the tip {} of {} is kept out, so the last applied commit {} is read instead: {}",
                short(tip),
                tracking.reference,
                short(&base),
                reason.replace('\n', "; ")
            );
            Ok(base)
        }
        None => anyhow::bail!(
            "the tip {tip} of {} is kept out, and no commit of it was applied before: {reason}",
            tracking.reference
        ),
    }
}
