//! One desired object against the host: resolve its owner, compare kind, content, mode,
//! owner and link target, classify the drift, and block what may not be changed (an unowned
//! path without `overwrite: true` or `--adopt`, a hard link whose target is missing).

use std::collections::BTreeMap;

use super::decide::matches_record;
use super::diff::{content_diff, new_content_diff};
use super::observe::describe;
use super::{Action, Change, Detail, Drift, Observed, ObservedState, Owned, PlanOptions, blocked, change};
use crate::model::desired::{DesiredState, Kind, Object, Owner};

fn resolve(owner: &Owner, names: &BTreeMap<String, u32>, what: &str) -> Result<Option<u32>, String> {
    match owner {
        Owner::Unset => Ok(None),
        Owner::Id(id) => Ok(Some(*id)),
        Owner::Name(name) => names.get(name).map(|id| Some(*id)).ok_or_else(|| {
            format!("no {what} named {name:?} in the root's /etc/{}", if what == "user" { "passwd" } else { "group" })
        }),
    }
}

pub(super) fn plan_object(
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
    // replaced, chmodded or chowned without `overwrite: true` or `--adopt` (docs/plan-and-apply.md, "Taking over existing paths").
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
pub(super) fn plan_hard_link(o: &Object, desired: &DesiredState, observed: &ObservedState) -> Change {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::fixtures::*;

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
    fn unknown_owner_names_block() {
        let mut o = object("/etc/a", "x", None, false);
        o.user = Owner::Name("nobody-here".into());
        let c = one(o, Observed::Missing, None, false);
        assert_eq!(c.action, Action::Blocked);
        assert!(c.reason.unwrap().contains("no user named \"nobody-here\""));
    }
}
