//! Deletion authorisation: whether what CoreOps recorded describes exactly what is on disk.
//!
//! A deletion needs a record that describes exactly what is on disk: a file with the recorded
//! hash (mode and owner too), a link with the recorded target, a directory. A record without a
//! hash (or of a hard link) describes no content, so it never authorises one; anything else at
//! the path is kept and the plan says why. The executor re-checks the node right before it
//! unlinks ([`still_as_planned`]).

use super::observe::describe;
use super::{Action, Change, Drift, Observed, Owned, blocked};
use crate::model::desired::{Kind, Role};

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

pub(super) fn plan_stale(path: &str, record: &Owned, seen: &Observed) -> Change {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::desired::DesiredState;
    use crate::model::plan::fixtures::*;
    use crate::model::plan::{ObservedState, PlanOptions, plan};

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
}
