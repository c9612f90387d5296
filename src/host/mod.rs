//! Effects: everything that touches the machine.
//! - [`files_dir`] — the Butane files directory on disk.

pub mod files_dir;
