//! What is observed at a path on the host, and the host as a whole: the input the planner
//! compares against. Only the types and their descriptions; observing is `host`'s job.

use std::collections::BTreeMap;

/// What is at a path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Nothing.
    Missing,
    /// A regular file.
    File {
        /// Its bytes, when they were read (always, up to a size limit).
        bytes: Option<Vec<u8>>,
        /// `sha256-<hex>` of its bytes.
        sha256: String,
        /// Permission bits.
        mode: u32,
        /// Owner ids.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Device and inode, to recognise hard links.
        inode: (u64, u64),
        /// Device, inode, size, modification and change times: equal stamps mean unchanged
        /// content (as git's index assumes).
        stamp: String,
    },
    /// A directory.
    Directory {
        /// Permission bits.
        mode: u32,
        /// Owner id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Its target, verbatim.
        target: String,
        /// Owner id.
        uid: u32,
        /// Group id.
        gid: u32,
    },
    /// A FIFO, socket or device.
    Other,
    /// The path cannot be inspected or replaced safely (a parent is a symlink or not a
    /// directory; a directory that holds entries is in the way of a file or link).
    Unsafe(String),
}

/// The host as observed under the root: the desired (and owned) paths, and the account names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    /// Path → what is there.
    pub nodes: BTreeMap<String, Observed>,
    /// User names → ids, from the root's `/etc/passwd`.
    pub users: BTreeMap<String, u32>,
    /// Group names → ids, from the root's `/etc/group`.
    pub groups: BTreeMap<String, u32>,
}

pub(super) fn describe(seen: &Observed) -> String {
    match seen {
        Observed::Missing => "nothing",
        Observed::File { .. } => "a file",
        Observed::Directory { .. } => "a directory",
        Observed::Symlink { .. } => "a symlink",
        Observed::Other => "a special file",
        Observed::Unsafe(_) => "an unsafe path",
    }
    .to_string()
}
