//! The pure core: bytes in, values and located diagnostics out.
//!
//! Nothing under `model` touches the filesystem, processes, the environment, the clock or the
//! network; what it needs from outside (files named by `local:` keys) comes through traits.
//! - [`path`] — JSON paths naming places in a config; node paths' one normalisation; printing names safely.
//! - [`report`] — diagnostics and their rendering.
//! - [`yaml`] — the positioned YAML node tree.
//! - [`decode`] — schema-driven decoding of nodes into config structs.
//! - [`json`] — Go-compatible JSON output.
//! - [`ignition`] — Ignition types, validation and data URLs.
//! - [`unit`](mod@unit) — systemd unit files: parsing, name escaping, unit names and `[Install]` checks.
//! - [`activation`] — what systemd must do after a change: the decision table.
//! - [`desired`] — the desired state: objects on disk, unit intents, first-boot-only entries.
//! - [`plan`] — the three-way plan: actions, drift classes, diffs.
//! - [`quadlet_keys`] — the keys Podman's Quadlet accepts per file type and section.
//! - [`triggers`] — the unit a timer or path unit triggers.
//! - [`spelling`] — "did you mean …?": the known name closest to a misspelt one.
//! - [`source`] — source repositories: layout rules and per-host composition.
//! - [`state`] — the persisted state: owned objects, pending apply, last run.
//! - [`agent`] — the agent's record: suspension, last fetch, baseline, refused tip, last cycle.
//! - [`butane`] — the Butane front end: variants, translation, validation.
//! - [`signature`] — signed commits: SSH signatures checked against an allowed-signers file.
//! - [`tracking`] — `/etc/core-ops/tracking.yaml`: the repository, ref and host a machine follows.
//! - [`bootstrap`] — the first-boot entries that make a new machine follow its repository.

pub mod activation;
pub mod agent;
pub mod bootstrap;
pub mod butane;
pub mod decode;
pub mod desired;
pub mod ignition;
pub mod json;
pub mod path;
pub mod plan;
pub mod quadlet_keys;
pub mod report;
pub mod signature;
pub mod source;
pub mod spelling;
pub mod state;
pub mod tracking;
pub mod triggers;
pub mod unit;
pub mod yaml;
