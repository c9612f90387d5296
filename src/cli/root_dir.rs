//! The root directory a command works on (`--root`, default `/`): the commands that write
//! CoreOps's records need root on any root, and `plan` on a directory that does not exist plans
//! against an empty root, saying so.

use std::path::Path;

use anyhow::Result;

use crate::cli::{EXIT_FAILURE, Exit};
use crate::host::root::Root;
use crate::host::store;
use crate::model::path::printable;

/// What a command that needs root writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// The run lock and CoreOps's records (`init`, `suspend`, `resume`).
    Records,
    /// Those, and the nodes of a config, with their owners (`apply`, `rollback`, `agent`).
    Nodes,
}

/// Refuses `command` (`init`, `suspend`, `resume`) without root privileges, on any root, before
/// it reads or locks anything: it takes the run lock and writes CoreOps's records, which belong
/// to root (docs/plan-and-apply.md, "Running without root").
pub fn require_privileges(command: &str, root: &Path) -> Result<(), Exit> {
    refuse_without_root(command, root, Writes::Records)
}

/// [`require_privileges`] for a command that converges the root (`apply`, `rollback`, `agent`),
/// which also gives every node it writes its owner.
pub fn require_privileges_to_converge(command: &str, root: &Path) -> Result<(), Exit> {
    refuse_without_root(command, root, Writes::Nodes)
}

/// The refusal of `command` on `root` when core-ops runs without root, naming what needs it.
fn refuse_without_root(command: &str, root: &Path, writes: Writes) -> Result<(), Exit> {
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return Ok(());
    }
    let under = |dir: &str| printable(&root.join(dir.trim_start_matches('/')).display().to_string()).into_owned();
    let (owners, instead) = match writes {
        Writes::Records => ("", ""),
        Writes::Nodes => (
            ", and it gives every node it writes the owner the config names (root where it names none), as Ignition \
             does",
            " `core-ops plan` works without root.",
        ),
    };
    Err(Exit::new(
        EXIT_FAILURE,
        format!(
            "error: {command} needs root (on / as on any other --root): it takes the run lock in {} and keeps \
             CoreOps's records in {}, which belong to root{owners}. core-ops runs as uid {}: run it as root (e.g. with \
             sudo).{instead}",
            under(store::RUN_DIR),
            under(store::STATE_DIR),
            uid.as_raw()
        ),
    ))
}

/// The root `plan` reads: `path`, or, when it does not exist, an empty directory standing in for
/// it (kept alive by the returned guard) with a note on standard error.
pub fn open_for_plan(path: &Path) -> Result<(Root, Option<tempfile::TempDir>)> {
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        eprintln!(
            "note: the root {} does not exist: planning against an empty root.",
            printable(&path.display().to_string())
        );
        let empty = tempfile::tempdir()?;
        let root = Root::open(empty.path())?;
        return Ok((root, Some(empty)));
    }
    Ok((Root::open(path)?, None))
}
