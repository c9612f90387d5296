//! Effects: everything that touches the machine.
//! - [`activate`] — the systemd half of apply: stops, one reload, starts, verification.
//! - [`agent`] — one agent cycle (fetch → commit selection → converge → record), `init`,
//!   `suspend` and `resume`.
//! - [`agent_binary`] — the agent binary `render-ignition --track` embeds.
//! - [`analyze`] — the changed units checked: their triggers, and `systemd-analyze verify`.
//! - [`descriptors`] — the process's open files: its soft limit raised, its table grown at start.
//! - [`execute`] — the executor: run a plan on the root and record it.
//! - [`failpoint`] — named crash points for the crash-safety tests.
//! - [`fetch`] — remote resources over HTTP(S), verified by hash.
//! - [`files_dir`] — the Butane files directory on disk.
//! - [`fs`] — atomic writes, links, directories and removals under the root.
//! - [`git`] — the tracked repository: a bare cache fetched over every transport, and trees read
//!   from its objects.
//! - [`input_file`] — input files read safely: regular files only, size-capped.
//! - [`listing`] — a directory tree listed once: the input's fingerprint, and the files
//!   directory's walks.
//! - [`pipeline`] — load → plan → apply → record: the one path `plan`, `apply`, `explain` and
//!   `rollback` take.
//! - [`root`] — the managed root, reached without following symlinks.
//! - [`preflight`] — the checks a change passes before a host sees it (`plan` and `apply`).
//! - [`quadlet`] — the desired Quadlets checked: the built-in key table, Podman's generator in dry-run.
//! - [`signature`] — the allowed-signers file read from disk; commits checked against it.
//! - [`source_dir`] — a source repository read from a directory.
//! - [`systemd`] — systemd over D-Bus (`zbus`), and a fake for tests.
//! - [`tracking_file`] — `/etc/core-ops/tracking.yaml` under the root, read only when root-owned.
//! - [`trusted_file`] — files an operator names for CoreOps to trust, read only when only root
//!   could have written them.
//! - [`store`] — state, history, audit log and the run lock under `/var/lib/core-ops`.

pub mod activate;
pub mod agent;
pub mod agent_binary;
pub mod analyze;
pub mod descriptors;
pub mod execute;
pub mod failpoint;
pub mod fetch;
pub mod files_dir;
pub mod fs;
pub mod git;
pub mod input_file;
pub mod listing;
pub mod pipeline;
pub mod preflight;
pub mod quadlet;
pub mod root;
pub mod signature;
pub mod source_dir;
pub mod store;
pub mod systemd;
pub mod tracking_file;
pub mod trusted_file;
