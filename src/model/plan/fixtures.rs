//! Test fixtures shared by the plan's submodule tests: desired objects, observed files,
//! ownership records, and planning a single object.

use std::collections::BTreeMap;

use super::{Change, Observed, ObservedState, Owned, PlanOptions, plan, sha256};
use crate::model::desired::{DesiredState, Kind, Object, Owner, Piece, Role};
use crate::model::source::compose::Origin;

pub(super) fn object(path: &str, content: &str, mode: Option<u32>, overwrite: bool) -> Object {
    Object {
        path: path.into(),
        kind: Kind::File,
        content: Some(vec![Piece::bytes(content.as_bytes().to_vec())]),
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
pub(super) fn attributes_only(path: &str, mode: u32) -> Object {
    Object { content: None, ..object(path, "", Some(mode), false) }
}

pub(super) fn file(content: &str, mode: u32) -> Observed {
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

pub(super) fn one(o: Object, seen: Observed, owned: Option<Owned>, adopt: bool) -> Change {
    let mut desired = DesiredState::default();
    let path = o.path.clone();
    desired.objects.insert(path.clone(), o);
    let mut observed = ObservedState::default();
    observed.nodes.insert(path.clone(), seen);
    let owned: BTreeMap<String, Owned> = owned.into_iter().map(|r| (path.clone(), r)).collect();
    plan(&desired, &observed, &owned, PlanOptions { adopt }).changes.remove(0)
}

pub(super) fn record(content: &str) -> Owned {
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
