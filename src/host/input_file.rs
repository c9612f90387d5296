//! Input files read safely: the config named on the command line, the files of a source
//! repository and those of a Butane files directory.
//!
//! Only regular files are read. A FIFO, socket or device is refused from its metadata before it
//! is opened (its own `stat`, or for a file of a listed files directory the listing's, taken when
//! the run started), and the open itself is non-blocking and checked again on the handle, so no
//! input can hang a run or be read without end. Each file is read up to [`MAX_FILE_BYTES`], and the
//! files of one repository or files directory together up to [`MAX_TOTAL_BYTES`] (a
//! [`Budget`]): sparse or endless files cannot exhaust memory.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

const MIB: u64 = 1024 * 1024;

/// The largest file read as an input (a `local:` binary of a few MiB fits many times over).
pub const MAX_FILE_BYTES: u64 = 64 * MIB;

/// The most that the files of one source repository or files directory may hold together.
pub const MAX_TOTAL_BYTES: u64 = 256 * MIB;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operating system refused (missing, permission, ...).
    #[error(transparent)]
    Os(#[from] io::Error),
    /// A FIFO, socket, device or directory.
    #[error("not a regular file ({0}); only regular files are read")]
    NotRegular(&'static str),
    /// Over [`MAX_FILE_BYTES`].
    #[error("larger than the {} MiB cap on one input file", MAX_FILE_BYTES / MIB)]
    TooLarge,
    /// The input's files together are over their [`Budget`].
    #[error("the input files together exceed the {} MiB cap", .0 / MIB)]
    TotalTooLarge(u64),
    /// A symlink leads out of the directory the file must be in.
    #[error("resolves to {}, outside the {within}; only files inside it are read", .target.display())]
    Outside {
        /// Where the path leads.
        target: PathBuf,
        /// The directory it had to stay in (`files directory`).
        within: &'static str,
    },
}

impl From<rustix::io::Errno> for InputError {
    fn from(errno: rustix::io::Errno) -> Self {
        InputError::Os(errno.into())
    }
}

/// What the files of one input may still add up to. Files may be read on several threads at
/// once; a copy starts with what was spent so far, and spends on its own.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
    /// Whether a file was refused because the total would have gone over the limit.
    overrun: AtomicBool,
}

impl Clone for Budget {
    fn clone(&self) -> Self {
        Budget {
            limit: self.limit,
            used: AtomicU64::new(self.used.load(Ordering::SeqCst)),
            overrun: AtomicBool::new(self.overrun.load(Ordering::SeqCst)),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::with_limit(MAX_TOTAL_BYTES)
    }
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn with_limit(limit: u64) -> Self {
        Budget { limit, used: AtomicU64::new(0), overrun: AtomicBool::new(false) }
    }

    /// Spends what one file of `size` bytes takes: refused over [`MAX_FILE_BYTES`] or over
    /// what is left.
    pub fn admit(&self, size: u64) -> Result<(), InputError> {
        if size > MAX_FILE_BYTES {
            return Err(InputError::TooLarge);
        }
        self.spend(size)
    }

    fn spend(&self, bytes: u64) -> Result<(), InputError> {
        let spent = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            Some(used.saturating_add(bytes)).filter(|total| *total <= self.limit)
        });
        spent.map(drop).map_err(|_| {
            self.overrun.store(true, Ordering::SeqCst);
            InputError::TotalTooLarge(self.limit)
        })
    }

    /// What was spent so far, and whether a file was refused for the total: for
    /// [`Budget::rewind`].
    pub fn mark(&self) -> (u64, bool) {
        (self.used.load(Ordering::SeqCst), self.overrun.load(Ordering::SeqCst))
    }

    /// Whether a file was refused for the total since `mark`.
    pub fn overran_since(&self, mark: (u64, bool)) -> bool {
        !mark.1 && self.overrun.load(Ordering::SeqCst)
    }

    /// Back to `mark`, as if what was read since had not been.
    pub fn rewind(&self, mark: (u64, bool)) {
        self.used.store(mark.0, Ordering::SeqCst);
        self.overrun.store(mark.1, Ordering::SeqCst);
    }
}

/// Reads the file at `path` as the operator named it (a symlink there is followed): a config
/// given on the command line.
pub fn read_named(path: &Path) -> Result<Vec<u8>, InputError> {
    ensure_regular(&rustix::fs::stat(path)?)?;
    let fd = rustix::fs::open(path, read_flags(), Mode::empty())?;
    read_open(fd, &Budget::with_limit(MAX_FILE_BYTES))
}

/// Reads regular file `name` of directory `dir`, never through a symlink, spending `budget`.
pub fn read_at(dir: impl AsFd, name: &str, budget: &Budget) -> Result<Vec<u8>, InputError> {
    read_at_unless_symlink(dir, name, budget)?.ok_or(InputError::NotRegular(kind_name(FileType::Symlink)))
}

/// As [`read_at`], but `None` when `name` is a symlink, for a caller that resolves it.
pub fn read_at_unless_symlink(dir: impl AsFd, name: &str, budget: &Budget) -> Result<Option<Vec<u8>>, InputError> {
    let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
        return Ok(None);
    }
    ensure_regular(&stat)?;
    let fd = rustix::fs::openat(&dir, name, read_flags() | OFlags::NOFOLLOW, Mode::empty())?;
    read_open(fd, budget).map(Some)
}

/// As [`read_at_unless_symlink`], for a file that a listing has just found to be a regular
/// file: it is opened without being inspected first (the handle is checked as always).
pub fn read_listed_at(dir: impl AsFd, name: &str, budget: &Budget) -> Result<Option<Vec<u8>>, InputError> {
    match rustix::fs::openat(&dir, name, read_flags() | OFlags::NOFOLLOW, Mode::empty()) {
        // Replaced by a symlink since it was listed.
        Err(rustix::io::Errno::LOOP) => Ok(None),
        opened => read_open(opened?, budget).map(Some),
    }
}

/// Opens directory `name` of `dir` for listing, never through a symlink.
pub fn open_dir_at(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Opens the directory at `path` (symlinks followed: the operator named it) for listing.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// The names in directory `dir` without `.` and `..`, sorted.
pub fn names(dir: impl AsFd) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What `name` in `dir` is, not following a symlink.
pub fn stat_at(dir: impl AsFd, name: &str) -> io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// Non-blocking, so that even a FIFO swapped in after the check cannot hang the open; no
/// controlling terminal, ever.
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
}

/// Checks the open handle again (the path may have changed since it was inspected), then reads
/// at most the cap.
fn read_open(fd: OwnedFd, budget: &Budget) -> Result<Vec<u8>, InputError> {
    let stat = rustix::fs::fstat(&fd)?;
    ensure_regular(&stat)?;
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    budget.admit(size)?;
    let mut bytes = Vec::new();
    read_to_end_sized(fd, size, &mut bytes)?;
    let read = bytes.len() as u64;
    if read > MAX_FILE_BYTES {
        return Err(InputError::TooLarge);
    }
    // A file that grew while it was read spends the difference too.
    budget.spend(read.saturating_sub(size))?;
    Ok(bytes)
}

/// Reads the open file to its end (up to one byte over [`MAX_FILE_BYTES`]) into `bytes`,
/// knowing the `size` it had when it was opened: one read asks for a byte more than that, and a
/// file that has not changed since gives just its size, its end, in that one read (where reading
/// to the end would read once more to find it). A shorter read, or a file that grew, is read on
/// to its end. The bytes are read into the vector's spare room, never zeroed first.
fn read_to_end_sized(fd: OwnedFd, size: u64, bytes: &mut Vec<u8>) -> io::Result<()> {
    if read_whole_at_once(&fd, size, bytes)? != size {
        let rest = (MAX_FILE_BYTES + 1).saturating_sub(bytes.len() as u64);
        std::fs::File::from(fd).take(rest).read_to_end(bytes)?;
    }
    Ok(())
}

/// One read of about `size` + 1 bytes (never far over [`MAX_FILE_BYTES`]) into the spare room
/// of `bytes`; returns how many it gave.
fn read_whole_at_once(fd: impl AsFd, size: u64, bytes: &mut Vec<u8>) -> io::Result<u64> {
    let asked = size.saturating_add(1).min(MAX_FILE_BYTES + 1);
    bytes.reserve_exact(usize::try_from(asked).unwrap_or(0).max(1));
    loop {
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(bytes)) {
            Err(rustix::io::Errno::INTR) => continue,
            read => return Ok(read? as u64),
        }
    }
}

fn ensure_regular(stat: &Stat) -> Result<(), InputError> {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(()),
        other => Err(InputError::NotRegular(kind_name(other))),
    }
}

/// `a FIFO`, `a character device`, ... for messages.
pub fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fifo(path: &Path) {
        rustix::fs::mknodat(rustix::fs::CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    }

    #[test]
    fn a_file_is_read_whole_however_its_reads_come() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let read = |fd: OwnedFd, size: usize| {
            let mut bytes = Vec::new();
            read_to_end_sized(fd, size as u64, &mut bytes).unwrap();
            bytes
        };
        let file = |name: &str, bytes: &[u8]| {
            fs::write(dir.path().join(name), bytes).unwrap();
            OwnedFd::from(fs::File::open(dir.path().join(name)).unwrap())
        };
        assert_eq!(read(file("a", &data), data.len()), data, "as large as it was");
        assert_eq!(read(file("b", &data), 3000), data, "grown since it was opened");
        assert_eq!(read(file("c", &data), 9000), data, "shrunk since it was opened");
        assert_eq!(read(file("d", b""), 0), b"");
        // A pipe gives what was written so far: short reads.
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        let chunks = data.clone();
        let writing = std::thread::spawn(move || {
            let mut writer = fs::File::from(writer);
            for chunk in chunks.chunks(700) {
                std::io::Write::write_all(&mut writer, chunk).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        assert_eq!(read(reader, data.len()), data, "short reads go on to the end");
        writing.join().unwrap();
    }

    #[test]
    fn reads_regular_files_and_refuses_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        fifo(&dir.path().join("p"));
        let fd = open_dir(dir.path()).unwrap();
        assert_eq!(read_at(&fd, "a", &Budget::default()).unwrap(), b"a");
        assert!(matches!(read_at(&fd, "p", &Budget::default()), Err(InputError::NotRegular("a FIFO"))));
        assert!(matches!(read_named(&dir.path().join("p")), Err(InputError::NotRegular("a FIFO"))));
        assert!(matches!(read_named(dir.path()), Err(InputError::NotRegular("a directory"))));
        assert_eq!(names(&fd).unwrap(), ["a", "p"]);
    }

    #[test]
    fn never_reads_through_a_symlink_by_name_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("l")).unwrap();
        let fd = open_dir(dir.path()).unwrap();
        assert!(matches!(read_at(&fd, "l", &Budget::default()), Err(InputError::NotRegular("a symlink"))));
        assert!(open_dir_at(&fd, "l").is_err());
    }

    #[test]
    fn caps_each_file_and_the_total() {
        let dir = tempfile::tempdir().unwrap();
        fs::File::create(dir.path().join("big")).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        fs::write(dir.path().join("ten"), [0u8; 10]).unwrap();
        let fd = open_dir(dir.path()).unwrap();
        assert!(matches!(read_at(&fd, "big", &Budget::default()), Err(InputError::TooLarge)));
        let budget = Budget::with_limit(15);
        assert!(read_at(&fd, "ten", &budget).is_ok());
        let err = read_at(&fd, "ten", &budget).unwrap_err();
        assert!(matches!(err, InputError::TotalTooLarge(15)), "{err}");
    }
}
