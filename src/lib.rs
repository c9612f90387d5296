//! CoreOps: keep systemd hosts in git.
//!
//! Data flows one way, `cli` → `host` → `model`:
//! - [`cli`] — command-line parsing and rendering of results (human and JSON).
//! - [`host`] — effects: the files directory, the root filesystem, systemd, git, state.
//! - [`model`] — pure logic: YAML, Butane and Ignition, the desired state, plans.
//! - [`spread`] — independent work on many items spread over the cores (used by both `host`
//!   and `model`), results in the items' order.

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

pub mod cli;
pub mod host;
pub mod model;
pub mod spread;

/// This build of CoreOps: the crate version, the git revision it was built from and whether the
/// tree was dirty (`core-ops --version`; the converged fast path also hashes it, so that another
/// build re-checks the host).
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("CORE_OPS_GIT_REVISION"), ", ", env!("CORE_OPS_GIT_DIRTY"), ")");
