//! CoreOps: keep systemd hosts in git.
//!
//! Data flows one way, `cli` → `host` → `model`:
//! - [`cli`] — command-line parsing and rendering of results (human and JSON).
//! - [`host`] — effects: the files directory, the root filesystem, systemd, git, state.
//! - [`model`] — pure logic: YAML, Butane and Ignition, the desired state, plans.

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

pub mod cli;
pub mod host;
pub mod model;
