//! The release archive: a gzip-compressed ustar archive built in memory from the bundle's members,
//! byte-for-byte the same for the same members and timestamp. Entries are sorted by path, folders
//! get their own entries, and every header carries the same fixed metadata (root/root, uid and gid
//! 0, one mtime, 0644 or 0755) and nothing else: no extended headers, no xattrs. The gzip header
//! holds no file name and a zero mtime. Pure: no filesystem, no clock.

use std::io::Write;

use anyhow::{Context, Result, bail};
use flate2::{Compression, GzBuilder};

/// The gzip level: the smallest download (the archive is built once per release).
const GZIP_LEVEL: u32 = 9;

/// The gzip header's mtime: zero means "not recorded" (RFC 1952), so the date lives only in the
/// tar headers.
const GZIP_MTIME: u32 = 0;

/// The owner of every entry.
const OWNER_ID: u64 = 0;
const OWNER_NAME: &str = "root";

/// The mode of data files.
const MODE_FILE: u32 = 0o644;

/// The mode of executables and folders.
const MODE_EXECUTABLE: u32 = 0o755;

/// One file of the archive, at `path` (relative, `/`-separated; its folders are added).
#[derive(Debug, Clone)]
pub struct Member {
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// What one tar entry is.
#[derive(Debug)]
enum Entry<'a> {
    Folder(String),
    File(&'a Member),
}

impl Entry<'_> {
    fn path(&self) -> &str {
        match self {
            Entry::Folder(path) => path,
            Entry::File(member) => &member.path,
        }
    }

    /// The order of entries: component by component, so a folder comes right before what it holds.
    fn sort_key(&self) -> Vec<&str> {
        self.path().split('/').collect()
    }
}

/// The `.tar.gz` of `members` with every mtime set to `mtime` (seconds since the epoch).
pub fn tar_gz(members: &[Member], mtime: u64) -> Result<Vec<u8>> {
    gzip(&tar(members, mtime)?)
}

/// The uncompressed archive.
fn tar(members: &[Member], mtime: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in sorted_entries(members)? {
        let header = header(&entry, mtime).with_context(|| format!("the archive entry {}", entry.path()))?;
        let contents: &[u8] = match entry {
            Entry::Folder(_) => &[],
            Entry::File(member) => &member.contents,
        };
        builder.append(&header, contents).with_context(|| format!("writing the archive entry {}", entry.path()))?;
    }
    builder.into_inner().context("finishing the archive")
}

/// The members and every folder above them, sorted; refuses paths that are absolute, empty,
/// climb out, or name the same entry twice.
fn sorted_entries(members: &[Member]) -> Result<Vec<Entry<'_>>> {
    let mut folders = std::collections::BTreeSet::new();
    for member in members {
        check_member_path(&member.path)?;
        let mut parts: Vec<&str> = member.path.split('/').collect();
        parts.pop();
        for depth in 1..=parts.len() {
            folders.insert(parts[..depth].join("/"));
        }
    }
    let mut entries: Vec<Entry<'_>> =
        folders.into_iter().map(Entry::Folder).chain(members.iter().map(Entry::File)).collect();
    entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].path() == pair[1].path()) {
        bail!("two archive members are named {}: each path may appear once", pair[0].path());
    }
    Ok(entries)
}

fn check_member_path(path: &str) -> Result<()> {
    let parts_ok = path.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if !parts_ok {
        bail!("the archive member path `{path}` must be relative, without empty, `.` or `..` components");
    }
    Ok(())
}

/// A ustar header carrying only the fixed metadata.
fn header(entry: &Entry<'_>, mtime: u64) -> Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    match entry {
        Entry::Folder(path) => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(MODE_EXECUTABLE);
            set_folder_name(&mut header, path)?;
        }
        Entry::File(member) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(member.contents.len() as u64);
            header.set_mode(if member.executable { MODE_EXECUTABLE } else { MODE_FILE });
            header.set_path(&member.path)?;
        }
    }
    header.set_uid(OWNER_ID);
    header.set_gid(OWNER_ID);
    header.set_username(OWNER_NAME)?;
    header.set_groupname(OWNER_NAME)?;
    header.set_mtime(mtime);
    header.set_cksum();
    Ok(header)
}

/// Folder names end in `/`, as tar writes them (`Header::set_path` drops a trailing slash).
fn set_folder_name(header: &mut tar::Header, path: &str) -> Result<()> {
    let name = format!("{path}/");
    let ustar = header.as_ustar_mut().context("a ustar header")?;
    if name.len() > ustar.name.len() {
        bail!("the folder name {name} is longer than a ustar name ({} bytes)", ustar.name.len());
    }
    ustar.name[..name.len()].copy_from_slice(name.as_bytes());
    Ok(())
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new().mtime(GZIP_MTIME).write(Vec::new(), Compression::new(GZIP_LEVEL));
    encoder.write_all(data).context("compressing the archive")?;
    encoder.finish().context("compressing the archive")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    const MTIME: u64 = 1_700_000_000;

    fn member(path: &str, contents: &str, executable: bool) -> Member {
        Member { path: path.into(), contents: contents.as_bytes().to_vec(), executable }
    }

    /// Members given out of order, nested two levels deep.
    fn members() -> Vec<Member> {
        vec![
            member("man/core-ops.1", ".TH CORE-OPS 1\n", false),
            member("core-ops.timer", "[Timer]\n", false),
            member("completions/core-ops.bash", "complete\n", false),
            member("core-ops-linux-x86_64", "\x7fELF", true),
            member("a/b/deep.txt", "deep\n", false),
            member("a-file", "a\n", false),
            member("LICENSE", "license\n", false),
        ]
    }

    /// Runs the system `tar` (GNU tar is the oracle) on the archive, in UTC.
    fn gnu_tar(args: &[&str], archive: &[u8]) -> String {
        let mut child = Command::new("tar")
            .args(args)
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tar");
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "tar {args:?} warned: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn gnu_tar_lists_sorted_entries_with_folders_fixed_owner_mtime_and_modes() {
        let archive = tar_gz(&members(), MTIME).unwrap();
        // 1700000000 is 2023-11-14 22:13:20 UTC (date -u -d @1700000000).
        let listing: Vec<Vec<String>> = gnu_tar(&["-tzvf", "-", "--full-time"], &archive)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        // Sorted by bytes, component by component (as GNU tar --sort=name walks): "LICENSE"
        // before lower case, a folder right before what it holds, so "a/…" before "a-file".
        let expected = [
            ("-rw-r--r--", "8", "LICENSE"),
            ("drwxr-xr-x", "0", "a/"),
            ("drwxr-xr-x", "0", "a/b/"),
            ("-rw-r--r--", "5", "a/b/deep.txt"),
            ("-rw-r--r--", "2", "a-file"),
            ("drwxr-xr-x", "0", "completions/"),
            ("-rw-r--r--", "9", "completions/core-ops.bash"),
            ("-rwxr-xr-x", "4", "core-ops-linux-x86_64"),
            ("-rw-r--r--", "8", "core-ops.timer"),
            ("drwxr-xr-x", "0", "man/"),
            ("-rw-r--r--", "15", "man/core-ops.1"),
        ];
        let want: Vec<Vec<String>> = expected
            .iter()
            .map(|(mode, size, name)| {
                [mode, "root/root", size, "2023-11-14", "22:13:20", name].iter().map(|s| s.to_string()).collect()
            })
            .collect();
        assert_eq!(listing, want);
    }

    #[test]
    fn numeric_owner_is_zero_and_no_extended_headers_are_written() {
        let archive = tar_gz(&members(), MTIME).unwrap();
        let numeric = gnu_tar(&["-tzvf", "-", "--numeric-owner"], &archive);
        assert!(numeric.lines().all(|l| l.split_whitespace().nth(1) == Some("0/0")), "{numeric}");
        // Exactly one 512-byte header per entry plus the data blocks and the 1024-byte end: no
        // PAX or GNU extension headers slipped in.
        let tar = tar(&members(), MTIME).unwrap();
        let data_blocks: usize = members().iter().map(|m| m.contents.len().div_ceil(512)).sum();
        assert_eq!(tar.len(), (11 + data_blocks) * 512 + 1024);
    }

    #[test]
    fn the_gzip_header_has_no_name_and_no_mtime_and_the_output_is_stable() {
        let first = tar_gz(&members(), MTIME).unwrap();
        // RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS; FLG 0 means no FNAME, FCOMMENT or FEXTRA.
        assert_eq!(&first[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(first[3], 0, "FLG");
        assert_eq!(&first[4..8], &[0, 0, 0, 0], "MTIME");
        let mut reversed = members();
        reversed.reverse();
        assert_eq!(first, tar_gz(&reversed, MTIME).unwrap(), "the order of the members must not matter");
        // gzip -t is the oracle for the stream itself.
        let mut child = Command::new("gzip").args(["-t", "-"]).stdin(Stdio::piped()).spawn().expect("gzip");
        child.stdin.take().unwrap().write_all(&first).unwrap();
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn a_different_mtime_changes_only_the_dates() {
        let listing = gnu_tar(&["-tzvf", "-", "--full-time"], &tar_gz(&members(), 0).unwrap());
        assert!(listing.lines().all(|l| l.contains(" 1970-01-01 00:00:00 ")), "{listing}");
    }

    #[test]
    fn bad_member_paths_are_refused() {
        for path in ["/etc/passwd", "../up", "a//b", "./a", "", "dir/"] {
            let err = tar_gz(&[member(path, "x", false)], MTIME).expect_err(path);
            assert!(err.to_string().contains("must be relative"), "{path}: {err}");
        }
        let twice = [member("a", "1", false), member("a", "2", false)];
        assert!(tar_gz(&twice, MTIME).unwrap_err().to_string().contains("named a"));
    }
}
