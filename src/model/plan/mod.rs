//! The plan: for every desired object, what must happen on the host and why.
//!
//! Three inputs: the desired state, what CoreOps recorded at its last apply (the objects it
//! owns), and what is observed under the root now. Each object gets one action (`create`,
//! `update`, `delete`, `no-op`, `blocked`) and, where the host differs, a drift class:
//! `expected-change` (the desired state moved), `external-drift` (someone edited an owned
//! object; it is put back), `stale` (owned, no longer desired: removed) or `unowned-conflict`
//! (a path CoreOps never wrote differs: blocked unless `overwrite: true` or adoption).
//!
//! This module holds the plan's public types and [`plan`], which walks the desired, owned and
//! absent entries and hands each to the submodule that decides it:
//! - `observe` — what is at a path on the host ([`Observed`], [`ObservedState`]).
//! - `compare` — one desired object against the host: attribute details, drift class, blocking.
//! - `decide` — whether a record authorises deleting what is on disk ([`matches_record`],
//!   [`still_as_planned`]); a stale object is kept, with the reason, unless it does.
//! - `diff` — content changes as shown to the user: unified, sensitive, binary or remote.
//!
//! Pure: the host is observed elsewhere (`host`) and handed in.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::desired::{DesiredState, Kind, Object, Role, Skipped};
use crate::model::source::compose::Origin;

mod compare;
mod decide;
pub mod diff;
#[cfg(test)]
mod fixtures;
mod observe;

pub use compare::hard_link_target;
pub use decide::{matches_record, still_as_planned};
pub use observe::{Observed, ObservedState};

/// What CoreOps recorded about an object it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Kind written.
    pub kind: Kind,
    /// `sha256-<hex>` of the content written (files).
    pub sha256: Option<String>,
    /// Link target written.
    pub target: Option<String>,
    /// Mode written.
    pub mode: Option<u32>,
    /// Owner id written (`None`: not known, e.g. recorded at render time by name).
    pub uid: Option<u32>,
    /// Group id written.
    pub gid: Option<u32>,
    /// Where it came from.
    pub origin: Origin,
}

/// The action for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Write a new object.
    Create,
    /// Change an existing object.
    Update,
    /// Remove an owned object that is no longer desired.
    Delete,
    /// Nothing to do.
    NoOp,
    /// Cannot proceed; see the reason.
    Blocked,
}

impl Action {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
            Action::Blocked => "blocked",
        }
    }
}

/// How the host came to differ from the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// The desired state moved.
    ExpectedChange,
    /// An owned object was edited on the host.
    ExternalDrift,
    /// An owned object is no longer desired.
    Stale,
    /// A path CoreOps never wrote differs from the desired state.
    UnownedConflict,
}

impl Drift {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Drift::ExpectedChange => "expected-change",
            Drift::ExternalDrift => "external-drift",
            Drift::Stale => "stale",
            Drift::UnownedConflict => "unowned-conflict",
        }
    }
}

/// One attribute that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// The content changes.
    Content,
    /// Permission bits change.
    Mode {
        /// Now.
        from: u32,
        /// Then.
        to: u32,
    },
    /// Owner changes (`uid:gid`).
    Owner {
        /// Now.
        from: (u32, u32),
        /// Then.
        to: (u32, u32),
    },
    /// A link's target changes.
    Target {
        /// Now.
        from: String,
        /// Then.
        to: String,
    },
    /// Another kind of node is replaced.
    Replace {
        /// What is there now.
        from: String,
    },
}

/// A content change, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentDiff {
    /// A unified diff of text.
    Unified(String),
    /// A created file's text, held nowhere: its diff against nothing is made when it is shown
    /// ([`diff::created_diff`]).
    New {
        /// Lines of the new content, as a unified diff counts them (`+1,N`).
        lines: usize,
    },
    /// Not printed: the file is not readable by others.
    Sensitive,
    /// Not text.
    Binary {
        /// Size now.
        from: usize,
        /// Size then.
        to: usize,
    },
    /// Fetched at apply time.
    Remote(String),
}

/// The plan for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path.
    pub path: String,
    /// Kind of object.
    pub kind: Kind,
    /// What will be done.
    pub action: Action,
    /// Why the host differs, when it does.
    pub drift: Option<Drift>,
    /// What changes.
    pub details: Vec<Detail>,
    /// The content change.
    pub diff: Option<ContentDiff>,
    /// Why the action is blocked.
    pub reason: Option<String>,
    /// What the object is for.
    pub role: Role,
    /// Where it was declared.
    pub origin: Origin,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// One entry per desired or owned object, by path.
    pub changes: Vec<Change>,
    /// First-boot-only entries.
    pub skipped: Vec<Skipped>,
}

/// Counts of actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects already as desired.
    pub no_op: usize,
    /// Objects that cannot be converged.
    pub blocked: usize,
    /// First-boot-only entries.
    pub skipped: usize,
}

impl Plan {
    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary { skipped: self.skipped.len(), ..Summary::default() };
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::NoOp => s.no_op += 1,
                Action::Blocked => s.blocked += 1,
            }
        }
        s
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        let s = self.summary();
        s.create + s.update + s.delete + s.blocked > 0
    }
}

/// Options that change what the planner may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Take over differing unowned paths (`--adopt`).
    pub adopt: bool,
}

/// `sha256-<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256-{}", hex::encode(Sha256::digest(bytes)))
}

/// Plans `desired` against `observed`, knowing the `owned` objects of the last apply.
pub fn plan(
    desired: &DesiredState,
    observed: &ObservedState,
    owned: &BTreeMap<String, Owned>,
    opts: PlanOptions,
) -> Plan {
    let mut changes = plan_objects(desired, observed, owned, opts, |_| true);
    for (path, record) in
        owned.iter().filter(|(p, _)| !desired.objects.contains_key(*p) && !desired.absent.contains_key(*p))
    {
        changes.push(decide::plan_stale(path, record, observed.nodes.get(path).unwrap_or(&Observed::Missing)));
    }
    for (path, absent) in &desired.absent {
        if let Some(Observed::Symlink { target, .. }) = observed.nodes.get(path) {
            if target == &absent.target {
                changes.push(Change {
                    path: path.clone(),
                    kind: Kind::Symlink,
                    action: Action::Delete,
                    drift: None,
                    details: Vec::new(),
                    diff: None,
                    reason: None,
                    role: Role::Enable(absent.unit.clone()),
                    origin: absent.origin.clone(),
                });
            }
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Plan { changes, skipped: desired.skipped.clone() }
}

/// The changes of the desired objects that `pick` selects, in path order, each as [`plan`]
/// makes it: for a caller that needs some of the plan before the rest (the units the checks
/// verify).
pub fn plan_objects(
    desired: &DesiredState,
    observed: &ObservedState,
    owned: &BTreeMap<String, Owned>,
    opts: PlanOptions,
    pick: impl Fn(&Object) -> bool,
) -> Vec<Change> {
    let object_change = |o: &Object| match o.kind {
        Kind::HardLink => compare::plan_hard_link(o, desired, observed),
        _ => compare::plan_object(
            o,
            observed.nodes.get(&o.path).unwrap_or(&Observed::Missing),
            owned.get(&o.path),
            observed,
            opts,
        ),
    };
    desired.objects.values().filter(|o| pick(o)).map(object_change).collect()
}

pub(super) fn change(o: &Object, action: Action) -> Change {
    Change {
        path: o.path.clone(),
        kind: o.kind,
        action,
        drift: None,
        details: Vec::new(),
        diff: None,
        reason: None,
        role: o.role.clone(),
        origin: o.origin.clone(),
    }
}

pub(super) fn blocked(mut c: Change, reason: String) -> Change {
    c.action = Action::Blocked;
    c.reason = Some(reason);
    c
}
