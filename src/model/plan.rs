//! The plan: for every desired object, what must happen on the host and why.
//!
//! Three inputs: the desired state, what CoreOps recorded at its last apply (the objects it
//! owns), and what is observed under the root now. Each object gets one action (`create`,
//! `update`, `delete`, `no-op`, `blocked`) and, where the host differs, a drift class:
//! `expected-change` (the desired state moved), `external-drift` (someone edited an owned
//! object; it is put back), `stale` (owned, no longer desired: removed) or `unowned-conflict`
//! (a path CoreOps never wrote differs: blocked unless `overwrite: true` or adoption).
//!
//! A deletion needs a record that describes exactly what is on disk: a file with the recorded
//! hash (mode and owner too), a link with the recorded target, a directory. A record without a
//! hash (or of a hard link) describes no content, so it never authorises one; anything else at
//! the path is kept and the plan says why.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::desired::{DesiredState, Kind, Object, Owner, Role, Skipped};
use crate::model::source::compose::Origin;

/// What is at a path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Nothing.
    Missing,
    /// A regular file.
    File {
        /// Its bytes, when they were read (always, up to a size limit).
        bytes: Option<Vec<u8>>,
        /// `sha256-<hex>` of its bytes.
        sha256: String,
        /// Permission bits.
        mode: u32,
        /// Owner ids.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Device and inode, to recognise hard links.
        inode: (u64, u64),
        /// Device, inode, size, modification and change times: equal stamps mean unchanged
        /// content (as git's index assumes).
        stamp: String,
    },
    /// A directory.
    Directory {
        /// Permission bits.
        mode: u32,
        /// Owner id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Its target, verbatim.
        target: String,
        /// Owner id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// A FIFO, socket or device.
    Other,
    /// The path cannot be inspected or replaced safely (a parent is a symlink or not a
    /// directory; a directory that holds entries is in the way of a file or link).
    Unsafe(String),
}

/// The host as observed under the root: the desired (and owned) paths, and the account names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    /// Path → what is there.
    pub nodes: BTreeMap<String, Observed>,
    /// User names → ids, from the root's `/etc/passwd`.
    pub users: BTreeMap<String, u32>,
    /// Group names → ids, from the root's `/etc/group`.
    pub groups: BTreeMap<String, u32>,
}

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
    let mut changes: Vec<Change> = desired
        .objects
        .values()
        .map(|o| match o.kind {
            Kind::HardLink => plan_hard_link(o, desired, observed),
            _ => plan_object(
                o,
                observed.nodes.get(&o.path).unwrap_or(&Observed::Missing),
                owned.get(&o.path),
                observed,
                opts,
            ),
        })
        .collect();
    for (path, record) in
        owned.iter().filter(|(p, _)| !desired.objects.contains_key(*p) && !desired.absent.contains_key(*p))
    {
        changes.push(plan_stale(path, record, observed.nodes.get(path).unwrap_or(&Observed::Missing)));
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

fn change(o: &Object, action: Action) -> Change {
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

fn resolve(owner: &Owner, names: &BTreeMap<String, u32>, what: &str) -> Result<Option<u32>, String> {
    match owner {
        Owner::Unset => Ok(None),
        Owner::Id(id) => Ok(Some(*id)),
        Owner::Name(name) => names.get(name).map(|id| Some(*id)).ok_or_else(|| {
            format!("no {what} named {name:?} in the root's /etc/{}", if what == "user" { "passwd" } else { "group" })
        }),
    }
}

fn plan_object(
    o: &Object,
    seen: &Observed,
    owned: Option<&Owned>,
    observed: &ObservedState,
    opts: PlanOptions,
) -> Change {
    let mut c = change(o, Action::NoOp);
    let owner =
        resolve(&o.user, &observed.users, "user").and_then(|u| Ok((u, resolve(&o.group, &observed.groups, "group")?)));
    let (uid, gid) = match owner {
        Ok(ids) => ids,
        Err(reason) => return blocked(c, reason),
    };
    if let Observed::Unsafe(reason) = seen {
        return blocked(c, reason.clone());
    }
    if *seen == Observed::Missing {
        c.action = Action::Create;
        c.drift = owned.map(|_| Drift::ExternalDrift);
        if o.kind == Kind::File {
            c.diff = new_content_diff(o);
        }
        return c;
    }
    let (kind_matches, details) = compare(o, seen, uid, gid);
    c.details = details;
    if !kind_matches {
        c.details = vec![Detail::Replace { from: describe(seen) }];
    }
    if c.details.is_empty() {
        return c;
    }
    if c.details.contains(&Detail::Content) {
        c.diff = content_diff(o, seen);
    }
    c.drift = Some(drift_class(seen, owned));
    // Any difference counts, a mode or an owner alone included: an unowned path is never
    // replaced, chmodded or chowned without `overwrite: true` or `--adopt` (DESIGN §3.1).
    if c.drift == Some(Drift::UnownedConflict) && !o.overwrite && !opts.adopt {
        let way_out = if can_say_overwrite(o) {
            "set `overwrite: true` on it or run `apply --adopt` to take it over"
        } else {
            "run `apply --adopt` to take it over"
        };
        let reason =
            format!("{} exists, differs from the desired state and was not written by CoreOps; {way_out}", o.path);
        return blocked(c, reason);
    }
    c.action = Action::Update;
    c
}

/// Whether the object's declaration can say `overwrite: true`: an entry of Butane's (or
/// Ignition's) `storage.files`, `directories` or `links`. Units, drop-ins and the files of a
/// repository's layout (`quadlet/`, `config/`) have no such field; `--adopt` is their way out.
fn can_say_overwrite(o: &Object) -> bool {
    let declared_at = o.origin.path.as_deref().unwrap_or("");
    ["$.storage.files.", "$.storage.directories.", "$.storage.links."].iter().any(|p| declared_at.starts_with(p))
}

/// The absolute, clean path a hard link's target names (relative targets are taken from the
/// link's own path, as Ignition does).
pub fn hard_link_target(o: &Object) -> String {
    let target = o.target.as_deref().unwrap_or("");
    let joined = if target.starts_with('/') { target.to_string() } else { format!("{}/{target}", o.path) };
    crate::model::butane::translate::clean(&joined)
}

/// A hard link is in place when the path is the target's inode; its target must be a file that
/// exists or is desired.
fn plan_hard_link(o: &Object, desired: &DesiredState, observed: &ObservedState) -> Change {
    let mut c = change(o, Action::Create);
    let target = hard_link_target(o);
    let target_desired = desired.objects.get(&target).is_some_and(|t| t.kind == Kind::File);
    let target_inode = match observed.nodes.get(&target) {
        Some(Observed::File { inode, .. }) => Some(*inode),
        _ => None,
    };
    if target_inode.is_none() && !target_desired {
        return blocked(c, format!("hard link target {target} does not exist and is not a desired file"));
    }
    match observed.nodes.get(&o.path).unwrap_or(&Observed::Missing) {
        Observed::Missing => c,
        Observed::File { inode, .. } if Some(*inode) == target_inode => {
            c.action = Action::NoOp;
            c
        }
        Observed::Unsafe(reason) => blocked(c, reason.clone()),
        other if o.overwrite => {
            c.action = Action::Update;
            c.details = vec![Detail::Replace { from: describe(other) }];
            c
        }
        other => blocked(
            c,
            format!(
                "{} exists ({}) and is not a hard link to {target}; set `overwrite: true` to replace it",
                o.path,
                describe(other)
            ),
        ),
    }
}

fn blocked(mut c: Change, reason: String) -> Change {
    c.action = Action::Blocked;
    c.reason = Some(reason);
    c
}

/// Whether the observed node is the desired kind, and what differs.
fn compare(o: &Object, seen: &Observed, uid: Option<u32>, gid: Option<u32>) -> (bool, Vec<Detail>) {
    let mut details = Vec::new();
    let owner_and_mode =
        |mode: Option<u32>, seen_mode: u32, seen_uid: u32, seen_gid: u32, details: &mut Vec<Detail>| {
            if let Some(m) = mode.filter(|m| *m != seen_mode) {
                details.push(Detail::Mode { from: seen_mode, to: m });
            }
            let want = (uid.unwrap_or(seen_uid), gid.unwrap_or(seen_gid));
            if want != (seen_uid, seen_gid) {
                details.push(Detail::Owner { from: (seen_uid, seen_gid), to: want });
            }
        };
    match (o.kind, seen) {
        (Kind::File, Observed::File { sha256: have, mode, uid: u, gid: g, .. }) => {
            if o.content.as_ref().is_some_and(|_| desired_sha(o).is_none_or(|want| &want != have)) {
                details.push(Detail::Content);
            }
            owner_and_mode(o.mode, *mode, *u, *g, &mut details);
            (true, details)
        }
        (Kind::Directory, Observed::Directory { mode, uid: u, gid: g }) => {
            owner_and_mode(o.mode, *mode, *u, *g, &mut details);
            (true, details)
        }
        (Kind::Symlink, Observed::Symlink { target, uid: u, gid: g }) => {
            let want = o.target.clone().unwrap_or_default();
            if crate::model::butane::translate::clean(&want) != crate::model::butane::translate::clean(target) {
                details.push(Detail::Target { from: target.clone(), to: want });
            }
            owner_and_mode(None, 0, *u, *g, &mut details);
            (true, details)
        }
        (Kind::HardLink, Observed::File { .. }) => (true, details),
        _ => (false, details),
    }
}

/// The hash of the desired content, when it is known before fetching.
fn desired_sha(o: &Object) -> Option<String> {
    match o.digest() {
        Some(digest) => Some(digest),
        None => match o.content.as_deref() {
            Some([crate::model::desired::Piece::Remote { hash: Some(h), compression: None, .. }])
                if h.starts_with("sha256-") =>
            {
                Some(h.clone())
            }
            _ => None,
        },
    }
}

fn drift_class(seen: &Observed, owned: Option<&Owned>) -> Drift {
    match owned {
        None => Drift::UnownedConflict,
        Some(record) if matches_record(seen, record) => Drift::ExpectedChange,
        Some(_) => Drift::ExternalDrift,
    }
}

/// Whether the host still holds exactly what CoreOps recorded. A file record without a hash
/// describes no content, so no file matches it.
pub fn matches_record(seen: &Observed, record: &Owned) -> bool {
    match seen {
        Observed::File { sha256, mode, uid, gid, .. } => {
            record.kind == Kind::File
                && record.sha256.as_ref() == Some(sha256)
                && record.mode.is_none_or(|m| m == *mode)
                && owner_matches(record, *uid, *gid)
        }
        Observed::Directory { mode, uid, gid } => {
            record.kind == Kind::Directory
                && record.mode.is_none_or(|m| m == *mode)
                && owner_matches(record, *uid, *gid)
        }
        Observed::Symlink { target, .. } => record.kind == Kind::Symlink && record.target.as_deref() == Some(target),
        _ => false,
    }
}

fn owner_matches(record: &Owned, uid: u32, gid: u32) -> bool {
    record.uid.is_none_or(|u| u == uid) && record.gid.is_none_or(|g| g == gid)
}

fn plan_stale(path: &str, record: &Owned, seen: &Observed) -> Change {
    let mut c = Change {
        path: path.to_string(),
        kind: record.kind,
        action: Action::Delete,
        drift: Some(Drift::Stale),
        details: Vec::new(),
        diff: None,
        reason: None,
        role: Role::Plain,
        origin: record.origin.clone(),
    };
    match seen {
        Observed::Missing => c.action = Action::NoOp,
        Observed::Unsafe(reason) => return blocked(c, reason.clone()),
        other => {
            if let Some(reason) = why_kept(path, record, other) {
                return blocked(c, format!("{reason}; it is kept (remove it by hand if it should go)"));
            }
        }
    }
    c
}

/// Why `record` does not authorise deleting `seen`, when it does not: the record must describe
/// exactly what is there (see the module header). A directory is removed only when empty.
fn why_kept(path: &str, record: &Owned, seen: &Observed) -> Option<String> {
    let recorded = record.kind.name();
    match (record.kind, seen) {
        (Kind::HardLink, _) => Some(format!("{path} is recorded as a hard link, which has no content of its own")),
        (Kind::File, _) if record.sha256.is_none() => {
            Some(format!("{path} has no content hash in the state, so nothing shows that CoreOps wrote what is there"))
        }
        (Kind::Symlink, _) if record.target.is_none() => Some(format!("{path} has no link target in the state")),
        (Kind::File, Observed::File { .. }) | (Kind::Symlink, Observed::Symlink { .. }) => {
            (!matches_record(seen, record)).then(|| format!("{path} was edited on the host since CoreOps recorded it"))
        }
        (Kind::Directory, Observed::Directory { .. }) => None,
        _ => Some(format!("{path} is recorded as a {recorded} but is {} now", describe(seen))),
    }
}

/// Whether `now` is still the node `planned` was when the plan decided to delete it: the same
/// kind, and a file's hash, mode and owner, or a link's target. The executor checks this right
/// before it unlinks, since the host may change after the plan.
pub fn still_as_planned(planned: &Observed, now: &Observed) -> bool {
    match (planned, now) {
        (
            Observed::File { sha256: a, mode: m, uid: u, gid: g, .. },
            Observed::File { sha256: b, mode: n, uid: v, gid: h, .. },
        ) => !a.is_empty() && (a, m, u, g) == (b, n, v, h),
        (Observed::Directory { .. }, Observed::Directory { .. }) => true,
        (Observed::Symlink { target: a, .. }, Observed::Symlink { target: b, .. }) => a == b,
        _ => false,
    }
}

fn describe(seen: &Observed) -> String {
    match seen {
        Observed::Missing => "nothing",
        Observed::File { .. } => "a file",
        Observed::Directory { .. } => "a directory",
        Observed::Symlink { .. } => "a symlink",
        Observed::Other => "a special file",
        Observed::Unsafe(_) => "an unsafe path",
    }
    .to_string()
}

fn is_sensitive(mode: u32) -> bool {
    mode & 0o004 == 0
}

fn new_content_diff(o: &Object) -> Option<ContentDiff> {
    if is_sensitive(o.effective_mode()) {
        return Some(ContentDiff::Sensitive);
    }
    text_diff(o, b"", &o.path)
}

fn content_diff(o: &Object, seen: &Observed) -> Option<ContentDiff> {
    let Observed::File { bytes, mode, .. } = seen else { return None };
    if is_sensitive(o.effective_mode()) || is_sensitive(*mode) {
        return Some(ContentDiff::Sensitive);
    }
    match bytes {
        Some(old) => text_diff(o, old, &o.path),
        None => Some(ContentDiff::Binary { from: 0, to: o.known_bytes().map_or(0, |b| b.len()) }),
    }
}

fn text_diff(o: &Object, old: &[u8], path: &str) -> Option<ContentDiff> {
    let Some(new) = o.known_bytes() else {
        let sources = o.content.iter().flatten().filter_map(|p| match p {
            crate::model::desired::Piece::Remote { source, .. } => Some(crate::model::ignition::url::redacted(source)),
            _ => None,
        });
        return Some(ContentDiff::Remote(sources.collect::<Vec<_>>().join(", ")));
    };
    match (std::str::from_utf8(old), std::str::from_utf8(&new)) {
        (Ok(a), Ok(b)) => {
            let diff = similar::TextDiff::from_lines(a, b);
            // The header is a line of its own: a name in it must not break it into more.
            let shown = crate::model::path::printable(path);
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("{shown} (host)"), &format!("{shown} (desired)"))
                .to_string();
            Some(ContentDiff::Unified(text))
        }
        _ => Some(ContentDiff::Binary { from: old.len(), to: new.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::desired::Piece;

    fn object(path: &str, content: &str, mode: Option<u32>, overwrite: bool) -> Object {
        Object {
            path: path.into(),
            kind: Kind::File,
            content: Some(vec![Piece::Bytes(content.as_bytes().to_vec())]),
            target: None,
            mode,
            user: Owner::Unset,
            group: Owner::Unset,
            overwrite,
            role: Role::Plain,
            origin: Origin { file: "services/x/config/a".into(), path: None },
            cache: Default::default(),
        }
    }

    /// An entry that sets only a mode: no contents.
    fn attributes_only(path: &str, mode: u32) -> Object {
        Object { content: None, ..object(path, "", Some(mode), false) }
    }

    fn file(content: &str, mode: u32) -> Observed {
        Observed::File {
            bytes: Some(content.as_bytes().to_vec()),
            sha256: sha256(content.as_bytes()),
            mode,
            uid: 0,
            gid: 0,
            inode: (1, 1),
            stamp: String::new(),
        }
    }

    fn one(o: Object, seen: Observed, owned: Option<Owned>, adopt: bool) -> Change {
        let mut desired = DesiredState::default();
        let path = o.path.clone();
        desired.objects.insert(path.clone(), o);
        let mut observed = ObservedState::default();
        observed.nodes.insert(path.clone(), seen);
        let owned: BTreeMap<String, Owned> = owned.into_iter().map(|r| (path.clone(), r)).collect();
        plan(&desired, &observed, &owned, PlanOptions { adopt }).changes.remove(0)
    }

    fn record(content: &str) -> Owned {
        Owned {
            kind: Kind::File,
            sha256: Some(sha256(content.as_bytes())),
            target: None,
            mode: Some(0o644),
            uid: Some(0),
            gid: Some(0),
            origin: Origin { file: "x".into(), path: None },
        }
    }

    #[test]
    fn actions_and_drift_classes() {
        type Case = (&'static str, Object, Observed, Option<Owned>, bool, Action, Option<Drift>);
        let cases: Vec<Case> = vec![
            (
                "missing → create",
                object("/etc/a", "new\n", None, false),
                Observed::Missing,
                None,
                false,
                Action::Create,
                None,
            ),
            (
                "equal → no-op",
                object("/etc/a", "same\n", Some(0o644), false),
                file("same\n", 0o644),
                None,
                false,
                Action::NoOp,
                None,
            ),
            (
                "owned, desired moved",
                object("/etc/a", "new\n", None, false),
                file("old\n", 0o644),
                Some(record("old\n")),
                false,
                Action::Update,
                Some(Drift::ExpectedChange),
            ),
            (
                "owned, edited on host",
                object("/etc/a", "new\n", None, false),
                file("edited\n", 0o644),
                Some(record("old\n")),
                false,
                Action::Update,
                Some(Drift::ExternalDrift),
            ),
            (
                "unowned differs → blocked",
                object("/etc/a", "new\n", None, false),
                file("theirs\n", 0o644),
                None,
                false,
                Action::Blocked,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned differs, overwrite",
                object("/etc/a", "new\n", None, true),
                file("theirs\n", 0o644),
                None,
                false,
                Action::Update,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned differs, --adopt",
                object("/etc/a", "new\n", None, false),
                file("theirs\n", 0o644),
                None,
                true,
                Action::Update,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned, mode only differs → blocked",
                object("/etc/a", "same\n", Some(0o600), false),
                file("same\n", 0o644),
                None,
                false,
                Action::Blocked,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned, attribute-only entry, mode differs → blocked",
                attributes_only("/etc/a", 0o644),
                file("theirs\n", 0o600),
                None,
                false,
                Action::Blocked,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned, attribute-only entry, mode differs, --adopt",
                attributes_only("/etc/a", 0o644),
                file("theirs\n", 0o600),
                None,
                true,
                Action::Update,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned, mode only differs, overwrite",
                object("/etc/a", "same\n", Some(0o600), true),
                file("same\n", 0o644),
                None,
                false,
                Action::Update,
                Some(Drift::UnownedConflict),
            ),
            (
                "unowned, owner only differs → blocked",
                Object { user: Owner::Id(1000), ..object("/etc/a", "same\n", None, false) },
                file("same\n", 0o644),
                None,
                false,
                Action::Blocked,
                Some(Drift::UnownedConflict),
            ),
            (
                "owned, desired mode moved",
                object("/etc/a", "same\n", Some(0o600), false),
                file("same\n", 0o644),
                Some(record("same\n")),
                false,
                Action::Update,
                Some(Drift::ExpectedChange),
            ),
            (
                "directory in the way",
                object("/etc/a", "x", None, false),
                Observed::Directory { mode: 0o755, uid: 0, gid: 0 },
                None,
                false,
                Action::Blocked,
                Some(Drift::UnownedConflict),
            ),
        ];
        for (label, o, seen, owned, adopt, action, drift) in cases {
            let c = one(o, seen, owned, adopt);
            assert_eq!((c.action, c.drift), (action, drift), "case {label}: {c:?}");
        }
    }

    #[test]
    fn stale_owned_objects_are_deleted_unless_edited() {
        let mut owned = BTreeMap::new();
        owned.insert("/etc/old".to_string(), record("x\n"));
        let mut observed = ObservedState::default();
        observed.nodes.insert("/etc/old".into(), file("x\n", 0o644));
        let p = plan(&DesiredState::default(), &observed, &owned, PlanOptions::default());
        assert_eq!((p.changes[0].action, p.changes[0].drift), (Action::Delete, Some(Drift::Stale)));
        observed.nodes.insert("/etc/old".into(), file("edited\n", 0o644));
        let p = plan(&DesiredState::default(), &observed, &owned, PlanOptions::default());
        assert_eq!(p.changes[0].action, Action::Blocked, "an edited stale file is kept");
    }

    #[test]
    fn stale_records_authorise_only_the_deletion_of_what_they_describe() {
        let dir = Observed::Directory { mode: 0o755, uid: 0, gid: 0 };
        let link = |target: &str| Observed::Symlink { target: target.into(), uid: 0, gid: 0 };
        let of_kind = |kind: Kind| Owned { kind, sha256: None, mode: None, ..record("") };
        let link_to = |target: &str| Owned { target: Some(target.into()), ..of_kind(Kind::Symlink) };
        let cases: Vec<(&str, Owned, Observed, Action)> = vec![
            ("a file with its hash", record("x\n"), file("x\n", 0o644), Action::Delete),
            ("a file with another hash", record("x\n"), file("y\n", 0o644), Action::Blocked),
            ("a file with its hash, chmodded", record("x\n"), file("x\n", 0o600), Action::Blocked),
            (
                "a file record without a hash",
                Owned { sha256: None, ..record("x\n") },
                file("x\n", 0o644),
                Action::Blocked,
            ),
            ("a file record at a directory", record("x\n"), dir.clone(), Action::Blocked),
            ("a file record at a link", record("x\n"), link("/etc/x"), Action::Blocked),
            ("a directory", of_kind(Kind::Directory), dir.clone(), Action::Delete),
            ("a directory record at a file", of_kind(Kind::Directory), file("x\n", 0o644), Action::Blocked),
            ("a directory record at a link", of_kind(Kind::Directory), link("/etc"), Action::Blocked),
            ("a link with its target", link_to("/etc/x"), link("/etc/x"), Action::Delete),
            ("a link with another target", link_to("/etc/x"), link("/etc/y"), Action::Blocked),
            ("a link record without a target", of_kind(Kind::Symlink), link("/etc/x"), Action::Blocked),
            ("a link record at a file", link_to("/etc/x"), file("x\n", 0o644), Action::Blocked),
            ("a hard link record", of_kind(Kind::HardLink), file("x\n", 0o644), Action::Blocked),
            ("a special file", record("x\n"), Observed::Other, Action::Blocked),
            ("an unsafe path", of_kind(Kind::Directory), Observed::Unsafe("through a link".into()), Action::Blocked),
            ("nothing left", record("x\n"), Observed::Missing, Action::NoOp),
        ];
        for (label, owned, seen, action) in cases {
            let c = plan_stale("/etc/old", &owned, &seen);
            assert_eq!(c.action, action, "{label}: {c:?}");
            if action == Action::Blocked {
                assert!(
                    c.reason.as_deref().is_some_and(|r| r.contains("/etc/old") || r == "through a link"),
                    "{label}"
                );
            }
        }
    }

    #[test]
    fn a_deletion_goes_ahead_only_on_the_node_the_plan_saw() {
        let dir = Observed::Directory { mode: 0o755, uid: 0, gid: 0 };
        let link = |target: &str| Observed::Symlink { target: target.into(), uid: 0, gid: 0 };
        assert!(still_as_planned(&file("x\n", 0o644), &file("x\n", 0o644)));
        assert!(!still_as_planned(&file("x\n", 0o644), &file("y\n", 0o644)), "content changed");
        assert!(!still_as_planned(&file("x\n", 0o644), &file("x\n", 0o600)), "mode changed");
        assert!(!still_as_planned(&file("x\n", 0o644), &dir), "replaced by a directory");
        assert!(still_as_planned(&dir, &Observed::Directory { mode: 0o700, uid: 5, gid: 5 }));
        assert!(!still_as_planned(&dir, &link("/etc")), "replaced by a link");
        assert!(still_as_planned(&link("/etc/x"), &link("/etc/x")));
        assert!(!still_as_planned(&link("/etc/x"), &link("/etc/y")), "retargeted");
        assert!(!still_as_planned(&Observed::Missing, &Observed::Missing));
        let Observed::File { bytes, mode, uid, gid, inode, stamp, .. } = file("x\n", 0o644) else { unreachable!() };
        let unread = Observed::File { bytes, sha256: String::new(), mode, uid, gid, inode, stamp };
        assert!(!still_as_planned(&unread, &unread), "an unread file proves nothing");
    }

    #[test]
    fn diffs_are_unified_and_sensitive_content_is_never_shown() {
        let c = one(object("/etc/a", "a\nb\n", None, true), file("a\nc\n", 0o644), None, false);
        let Some(ContentDiff::Unified(text)) = c.diff else { panic!("{c:?}") };
        assert!(text.contains("-c\n") && text.contains("+b\n") && text.contains("--- /etc/a (host)"), "{text}");
        let secret =
            one(object("/etc/secret", "password=new\n", Some(0o600), true), file("password=old\n", 0o600), None, false);
        assert_eq!(secret.diff, Some(ContentDiff::Sensitive));
        let new_secret =
            one(object("/etc/secret", "password=new\n", Some(0o640), false), Observed::Missing, None, false);
        assert_eq!(new_secret.diff, Some(ContentDiff::Sensitive));
    }

    #[test]
    fn unknown_owner_names_block() {
        let mut o = object("/etc/a", "x", None, false);
        o.user = Owner::Name("nobody-here".into());
        let c = one(o, Observed::Missing, None, false);
        assert_eq!(c.action, Action::Blocked);
        assert!(c.reason.unwrap().contains("no user named \"nobody-here\""));
    }
}
