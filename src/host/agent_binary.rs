//! The agent binary that `render-ignition --track` embeds: a file named on the command line,
//! or else this very executable. It is read as every input file is
//! ([`input_file::read_named`](crate::host::input_file::read_named)): a regular file, up to
//! [`MAX_FILE_BYTES`](crate::host::input_file::MAX_FILE_BYTES).

use std::path::{Path, PathBuf};

/// Where the agent binary is read from: `named`, or the running executable.
pub fn location(named: Option<&Path>) -> std::io::Result<PathBuf> {
    match named {
        Some(path) => Ok(path.to_path_buf()),
        None => std::env::current_exe(),
    }
}
