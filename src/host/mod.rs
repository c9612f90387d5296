//! Effects: everything that touches the machine.
//! - [`files_dir`] — the Butane files directory on disk.
//! - [`root`] — the managed root, reached without following symlinks.
//! - [`source_dir`] — a source repository read from a directory.

pub mod files_dir;
pub mod root;
pub mod source_dir;
