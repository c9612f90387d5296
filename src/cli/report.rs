//! The JSON documents CoreOps prints (`--format json`): stable, versioned shapes whose JSON
//! Schemas are generated from these types into `schemas/`.

use schemars::JsonSchema;
use serde::Serialize;

/// Version of the plan document; bumped on any incompatible change.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// `core-ops plan --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanReport {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// The host planned for.
    pub host: String,
    /// The source repository or config file.
    pub source: String,
    /// The root directory planned against.
    pub root: String,
    /// One entry per desired or owned object, sorted by path.
    pub objects: Vec<PlanObject>,
    /// Units to enable, disable or mask.
    pub units: Vec<PlanUnit>,
    /// What systemd must do after the writes.
    pub systemd: PlanSystemd,
    /// First-boot-only entries that day 2 leaves alone.
    pub skipped: Vec<PlanSkipped>,
    /// Entries the host layer replaced.
    pub overrides: Vec<PlanOverride>,
    /// Counts per action.
    pub summary: crate::model::plan::Summary,
    /// Whether applying would change anything.
    pub changes_pending: bool,
    /// What this plan could not see, one warning each (the ownership record, when core-ops runs
    /// without root and the state is root's alone); absent when it saw everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One object of a plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanObject {
    /// Absolute path on the host.
    pub path: String,
    /// `file`, `directory`, `symlink` or `hard link`.
    pub kind: String,
    /// `create`, `update`, `delete`, `no-op` or `blocked`.
    pub action: String,
    /// `expected-change`, `external-drift`, `stale` or `unowned-conflict`, when the host differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// What changes.
    pub changes: Vec<PlanDetail>,
    /// The content change: a unified diff, or why none is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<PlanDiff>,
    /// Why the object is blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `unit`, `dropin`, `mask`, `quadlet` or `enable` when the object belongs to a unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The unit it belongs to (for Quadlets: the service the generator makes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// What the object should be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<PlanDesired>,
    /// Where it was declared.
    pub origin: PlanOrigin,
}

/// The desired attributes of an object.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanDesired {
    /// `sha256-<hex>` of the content, when known before fetching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Permission bits in octal, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner as written in the config (`id` or `name`), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group as written in the config, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Link target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One changing attribute.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanDetail {
    /// `content`, `mode`, `owner`, `target` or `replace`.
    pub field: String,
    /// The value on the host now (modes in octal, owners as `uid:gid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The desired value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A content change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanDiff {
    /// `unified`, `new` (a created file's content, summarised without `-v`), `sensitive`,
    /// `binary` or `remote`.
    pub kind: String,
    /// The unified diff (for `unified`), or a description.
    pub text: String,
}

/// Where an entry was declared.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanOrigin {
    /// Repository path of the declaring file.
    pub file: String,
    /// YAML path inside it, for Butane entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The systemd side of a plan.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct PlanSystemd {
    /// Whether systemd reloads its units (once, after all writes).
    pub daemon_reload: bool,
    /// Stops first, then starts, reloads and restarts, each with its cause. Planned without
    /// knowing which units run, a restart or stop applies only to an active unit.
    pub actions: Vec<PlanUnitAction>,
    /// Units deliberately left alone, and why.
    pub held: Vec<PlanUnitAction>,
    /// Mistakes in the Quadlet files (the built-in table of Quadlet keys, and Podman's quadlet
    /// generator where it is installed); apply stops on them.
    pub quadlet_errors: Vec<String>,
    /// Mistakes in the changed units (`systemd-analyze verify`, where it is installed, and
    /// timers or path units whose unit does not exist); apply stops on them.
    pub unit_errors: Vec<String>,
    /// Warnings of those checks; `--strict` stops on them.
    pub check_warnings: Vec<String>,
    /// What those checks could not check, and why.
    pub check_notes: Vec<String>,
    /// Set when the run asks no systemd (`--offline`, or a root other than `/`): why. The
    /// reload and the actions above are then skipped, not run. (A converged re-apply that takes
    /// the fast path decides no actions and leaves it unset.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline: Option<String>,
}

/// One action on a unit.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanUnitAction {
    /// `stop`, `start`, `reload` or `restart`.
    pub verb: String,
    /// The unit.
    pub unit: String,
    /// Why: every cause, joined by `; `.
    pub cause: String,
}

/// A unit's activation intent.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanUnit {
    /// Unit name.
    pub name: String,
    /// `enable`, `disable` or `mask`.
    pub intent: String,
    /// Where it was declared.
    pub origin: PlanOrigin,
}

/// A first-boot-only entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanSkipped {
    /// What it is.
    pub what: String,
    /// Why it is skipped.
    pub reason: String,
    /// Where it was declared.
    pub origin: PlanOrigin,
}

/// A host-layer replacement.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanOverride {
    /// What was replaced.
    pub entry: String,
    /// The replaced declaration.
    pub replaced: PlanOrigin,
    /// The host layer's declaration.
    pub by: PlanOrigin,
}

/// Every published document with its schema file name.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("plan.schema.json", schemars::schema_for!(PlanReport)),
        ("apply.schema.json", schemars::schema_for!(ApplyReportJson)),
        ("state.schema.json", schemars::schema_for!(crate::model::state::State)),
        ("status.schema.json", schemars::schema_for!(StatusReport)),
        ("explain.schema.json", schemars::schema_for!(ExplainReport)),
        ("history.schema.json", schemars::schema_for!(HistoryReport)),
        ("agent.schema.json", schemars::schema_for!(AgentReportJson)),
        ("agent-record.schema.json", schemars::schema_for!(crate::model::agent::AgentRecord)),
        ("tracking.schema.json", schemars::schema_for!(crate::model::tracking::Tracking)),
    ]
}

/// Version of the apply document.
pub const APPLY_SCHEMA_VERSION: u32 = 1;

/// `core-ops apply --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplyReportJson {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// `converged`, `failed` or `partially-applied`.
    pub result: String,
    /// The revision applied (a hash of the desired config).
    pub revision: String,
    /// Successful applies so far on this host.
    pub generation: u64,
    /// What went wrong.
    pub errors: Vec<String>,
    /// Leftover temp files of interrupted runs that were removed.
    pub cleaned_temp_files: usize,
    /// The plan that was executed.
    pub plan: PlanReport,
    /// What systemd did (empty offline).
    pub systemd: ApplySystemd,
    /// Earlier consecutive runs that ended with this same failure on this revision; more than
    /// zero means the host is not converging.
    pub repeats: u32,
}

/// What systemd did during an apply.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ApplySystemd {
    /// Whether systemd reloaded its units.
    pub reloaded: bool,
    /// The jobs run, in order, each with systemd's job result (`done`, `failed`, …).
    pub jobs: Vec<ApplyJob>,
    /// Units that did not come up.
    pub failures: Vec<ApplyUnitFailure>,
}

/// One job systemd ran.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplyJob {
    /// `stop`, `start`, `reload` or `restart`.
    pub verb: String,
    /// The unit.
    pub unit: String,
    /// Why it was run.
    pub cause: String,
    /// systemd's job result.
    pub result: String,
}

/// A unit that did not come up.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplyUnitFailure {
    /// The unit.
    pub unit: String,
    /// What went wrong.
    pub reason: String,
    /// `ActiveState` when given up on.
    pub active_state: String,
    /// `SubState`.
    pub sub_state: String,
    /// The service's `Result`.
    pub result: String,
    /// The unit's last journal lines.
    pub journal: Vec<String>,
}

/// Version of the status document.
pub const STATUS_SCHEMA_VERSION: u32 = 1;

/// `core-ops status --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusReport {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// The root inspected.
    pub root: String,
    /// Where the desired state comes from, once something was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::model::state::SourceRef>,
    /// The last converged revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Successful applies so far.
    pub generation: u64,
    /// When the last revision converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// How the last run ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<crate::model::state::RunResult>,
    /// The revision of an apply that was interrupted, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// Owned objects and whether the host still holds what was written.
    pub owned: Vec<StatusObject>,
    /// Owned objects that changed on the host since the last apply.
    pub drifted: usize,
    /// The repository this host follows and what its agent saw (absent before `init`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub following: Option<StatusFollowing>,
}

/// What a host that follows a repository is at, in `status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusFollowing {
    /// What it follows.
    pub tracking: AgentTracking,
    /// The last fetch: when, the tip, its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fetch: Option<crate::model::agent::FetchRecord>,
    /// The commit last applied from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_commit: Option<String>,
    /// The last fetched tip is not the applied commit.
    pub behind: bool,
    /// Since when and why cycles are suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<crate::model::agent::Suspension>,
    /// A tip kept out, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<crate::model::agent::Refusal>,
    /// How the last agent cycle ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<crate::model::agent::CycleRecord>,
}

/// One owned object in a status report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusObject {
    /// Absolute path.
    pub path: String,
    /// Kind written.
    pub kind: String,
    /// `ok`, `modified`, `missing`, or `unsafe` (the path cannot be inspected safely, e.g. a
    /// directory on the way is now a symlink; see `reason`).
    pub state: String,
    /// Why the path is `unsafe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where it was declared.
    pub origin: PlanOrigin,
}

/// Version of the explain document.
pub const EXPLAIN_SCHEMA_VERSION: u32 = 1;

/// `core-ops explain OBJECT --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExplainReport {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// The object asked about (a path or a unit name).
    pub object: String,
    /// The path it resolved to.
    pub path: String,
    /// What the next apply would do with it, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanObject>,
    /// The unit it belongs to (for Quadlets: the service the generator makes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For a unit: what systemd would do with it in the next apply, decided exactly as `plan`
    /// decides (the reload, and the unit's own actions and held actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd: Option<PlanSystemd>,
    /// For a unit: its drop-ins.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dropins: Vec<ExplainFile>,
    /// For a unit: the files whose change restarts it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub restarted_by: Vec<ExplainFile>,
    /// Whether CoreOps owns it.
    pub owned: bool,
    /// Where it was declared (desired; for stale objects, recorded; for removed ones, in the
    /// newest generation that held it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<PlanOrigin>,
    /// The oldest kept revision since which it has had its current content (for a desired
    /// object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed_in: Option<String>,
    /// Applied generations (newest first, each once) that contain it, with its content hash in
    /// each.
    pub history: Vec<ExplainRevision>,
    /// For an object the history had and the desired state no longer has: the generation that
    /// removed it (the first of the newest generations without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_in: Option<ExplainRevision>,
}

/// A file related to the object explained.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExplainFile {
    /// Absolute path on the host.
    pub path: String,
    /// Where it was declared.
    pub origin: PlanOrigin,
}

/// The object in one applied revision.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExplainRevision {
    /// Revision id.
    pub revision: String,
    /// Generation it was applied as.
    pub generation: u64,
    /// When.
    pub applied_at: String,
    /// Content hash (files), or link target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The git commit the revision was read at, when its source was in git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// That commit's summary line (a followed repository records it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_summary: Option<String>,
}

/// Version of the history document.
pub const HISTORY_SCHEMA_VERSION: u32 = 1;

/// `core-ops history --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryReport {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// The root inspected.
    pub root: String,
    /// The applied generations the history keeps, newest first.
    pub entries: Vec<HistoryEntry>,
}

/// One applied generation.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryEntry {
    /// The generation: the count of applies that recorded a new revision on this root.
    pub generation: u64,
    /// When it was applied (RFC 3339, UTC).
    pub applied_at: String,
    /// The revision applied (a hash of the desired state).
    pub revision: String,
    /// Where the desired state came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::model::state::SourceRef>,
    /// The git commit the source was read at, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `converged`, or `failed` when units did not come up; absent for generations recorded
    /// before results were kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What the apply changed; absent for generations recorded before counts were kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<HistoryChanges>,
    /// Whether this is the generation the root is at now.
    pub current: bool,
}

/// What one apply changed, by action.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryChanges {
    /// Objects created.
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Objects deleted.
    pub deleted: usize,
}

/// Version of the agent document.
pub const AGENT_SCHEMA_VERSION: u32 = 1;

/// `core-ops agent --format json`: one cycle.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentReportJson {
    /// Version of this document's shape.
    pub schema_version: u32,
    /// `not-initialised`, `suspended`, `converged`, `refused`, `fetch-failed` or `failed`.
    pub result: String,
    /// The exit code of the cycle.
    pub exit_code: u8,
    /// One line: what the cycle did.
    pub summary: String,
    /// What the host follows (absent before `init`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking: Option<AgentTracking>,
    /// Since when and why cycles are suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<crate::model::agent::Suspension>,
    /// The fetch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<AgentFetch>,
    /// The remote's tip as last fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// The tip kept out, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<crate::model::agent::Refusal>,
    /// The commit the host was converged to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<AgentCommit>,
    /// What went wrong besides the fetch, the refusal and the apply.
    pub errors: Vec<String>,
    /// The apply (absent when nothing was applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyReportJson>,
}

/// What a host follows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentTracking {
    /// The repository URL or path.
    pub repository: String,
    /// The ref followed.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The host of the repository this machine is.
    pub host: String,
    /// The allowed-signers file tips must be signed by a key of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
}

/// A cycle's fetch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentFetch {
    /// `fetched`, `failed` or `skipped` (`--offline`).
    pub result: String,
    /// The tip fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the remote could not be reached (exit 75).
    pub unreachable: bool,
    /// What to tell the operator (a rebuilt cache).
    pub warnings: Vec<String>,
}

/// A commit, as recorded.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentCommit {
    /// The commit id.
    pub id: String,
    /// Its summary line.
    pub summary: String,
    /// Its author, `Name <email>`.
    pub author: String,
    /// Its committer time (RFC 3339 UTC).
    pub time: String,
}
