//! The process's open files: as many as the system lets it have, in a table made large enough at
//! start.
//!
//! A process may keep open as many files as its soft `RLIMIT_NOFILE` says, often 1,024, while
//! the hard limit is far higher. Staging a tree keeps each directory it writes to open until the
//! files are renamed into place, so a tree of more than a thousand directories needs more.
//! [`prepare`] raises the soft limit to the hard one, as Go programs (Ignition among them) do at
//! start; the programs CoreOps starts (`systemd-analyze`, Podman's generator, `journalctl`)
//! inherit it, and none of them uses `select`, the one interface a high limit can break.
//!
//! Linux keeps a process's open files in a table that starts with 64 slots and doubles when a
//! descriptor needs a slot past its end. When the process has more than one thread, the kernel
//! waits for an RCU grace period before it lets the old table go, and every thread that opens or
//! closes a file meanwhile waits with it: 10 to 25 ms on an idle two-core machine, for nothing.
//! An apply of a large tree keeps about a hundred directories open while its reads run on every
//! core, so without a larger table it paid that wait on most runs. Whether it did depended on
//! the parent that started it (a table the child inherits is sized by the parent's descriptors),
//! which made the same run 20 ms slower from a shell than from some other programs.
//! [`prepare`] grows the table once, while the process has a single thread and growing costs
//! nothing: a few kilobytes of kernel memory.

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The descriptor slots a run reserves at start: more than twice what the largest runs measured
/// keep open at once (under 100 for a tree of 2,000 files in 500 directories). Not more: a table
/// of 1,024 slots made every run, the smallest included, half a millisecond slower.
pub const AT_START: u32 = 256;

/// Raises the soft limit of open files to the hard one, then reserves [`AT_START`] slots. Call it
/// first thing, before the process starts a thread. Neither step is needed for a run to be
/// right, so a refusal of either is passed over.
pub fn prepare() {
    raise_limit();
    reserve(AT_START);
}

/// Raises the soft limit of open files to the hard limit; returns the soft limit now in force
/// (`None`: no limit).
pub fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// Grows the descriptor table to at least `slots` slots, or to the soft `RLIMIT_NOFILE` when that
/// is lower, by placing a duplicate descriptor in the last slot wanted and closing it again. Call
/// it before the process starts a thread. Returns the highest descriptor number it placed, or
/// `None` when it could not (the table then grows as it is used, which only costs time).
pub fn reserve(slots: u32) -> Option<u32> {
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let highest = u64::from(slots).min(limit).checked_sub(1)?;
    let highest = i32::try_from(highest).ok()?;
    let anchor: OwnedFd =
        rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let placed = rustix::io::fcntl_dupfd_cloexec(&anchor, highest).ok()?;
    u32::try_from(rustix::fd::AsRawFd::as_raw_fd(&placed)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots of this process's descriptor table, as the kernel reports them.
    fn table_slots() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("FDSize:")).expect("FDSize in /proc/self/status");
        line.trim().parse().unwrap()
    }

    #[test]
    fn reserving_grows_the_table_to_the_slots_asked_for_and_leaves_no_descriptor_open() {
        let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        // More slots than a test process holds, within the limit: the table must grow to them.
        let slots = u32::try_from(limit.min(8192)).unwrap();
        let placed = reserve(slots).expect("a descriptor placed in the last slot");
        assert!(placed >= slots - 1, "placed at {placed}, below slot {}", slots - 1);
        assert!(table_slots() >= slots, "table of {} slots, {slots} asked for", table_slots());
        // No other thread of the tests opens so many files that it would take that number.
        let placed_path = format!("/proc/self/fd/{placed}");
        assert!(!std::path::Path::new(&placed_path).exists(), "descriptor {placed} left open");
    }

    #[test]
    fn no_slot_is_asked_past_the_limit() {
        let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        if let Ok(limit) = u32::try_from(limit) {
            let placed = reserve(limit.saturating_add(1000)).expect("the limit's last slot is usable");
            assert!(placed < limit, "descriptor {placed} at or past the limit {limit}");
        }
    }
}
