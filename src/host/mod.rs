//! Effects: everything that touches the machine.
//! - [`execute`] — apply: run a plan on the root and record it.
//! - [`failpoint`] — named crash points for the crash-safety tests.
//! - [`fetch`] — remote resources over HTTP(S), verified by hash.
//! - [`files_dir`] — the Butane files directory on disk.
//! - [`fs`] — atomic writes, links, directories and removals under the root.
//! - [`root`] — the managed root, reached without following symlinks.
//! - [`source_dir`] — a source repository read from a directory.
//! - [`systemd`] — systemd over D-Bus (`zbus`), and a fake for tests.
//! - [`store`] — state, history, audit log and the run lock under `/var/lib/core-ops`.

pub mod execute;
pub mod failpoint;
pub mod fetch;
pub mod files_dir;
pub mod fs;
pub mod root;
pub mod source_dir;
pub mod store;
pub mod systemd;
