//! Faults of the machine, each a test: a filesystem that fills up during an apply (ENOSPC), the
//! state directory full while the state is saved (at every point of the records), an audit line
//! that does not fit, a read-only target (EROFS), an immutable directory or file (`chattr +i`),
//! a tree of more directories than the soft limit of open files, a stale directory of the unit
//! checks that cannot be removed, and a user who is not root: `apply` is refused on any root,
//! naming what needs root, and `plan` works, without the ownership record when the state is
//! root's alone, and says so.
//!
//! Each test makes its own small filesystem (a tmpfs, or a loop-mounted ext4 where `chattr` is
//! needed) and unmounts it when dropped, even when the test fails. They need root (to mount, or
//! to run core-ops as `nobody`); without it, or without `mount`, `mkfs.ext4`, `chattr` or
//! `setpriv`, they skip loudly (`common::skip`).
//!
//! Expected results come from what the tests wrote (the bytes of each revision's files), never
//! from CoreOps. The revision ids are the ones the applies report; the tests only check that the
//! state names the one that converged.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use core_ops::host::fs::TEMP_PREFIX;
use serde_json::Value;

const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";
/// The state file under a root.
const STATE: &str = "var/lib/core-ops/state.json";
/// The state directory under a root.
const STATE_DIR: &str = "var/lib/core-ops";
/// The run lock under a root.
const LOCK: &str = "run/core-ops/lock";
/// The page size of tmpfs: it allocates whole pages.
const PAGE: usize = 4096;
/// The user the non-root tests run as (`nobody`).
const NOBODY: u32 = 65534;

/// Revision 1: three small files.
const REV1: [(&str, &str); 3] =
    [("/etc/app/a.conf", "a=1\n"), ("/etc/app/b.conf", "b=1\n"), ("/etc/app/c.conf", "c=1\n")];

/// Revision 2 for the read-only and immutable cases: a.conf changes in /etc/app, and a new file
/// appears in a new directory that sorts (and so would be staged) before it.
const REV2_ELSEWHERE: [(&str, &str); 4] = [
    ("/etc/aaa/new.conf", "new\n"),
    ("/etc/app/a.conf", "a=2\n"),
    ("/etc/app/b.conf", "b=1\n"),
    ("/etc/app/c.conf", "c=1\n"),
];

// ----- filesystems made by the tests -----

/// A filesystem mounted by a test, unmounted (and its image removed) when dropped.
struct Mount {
    target: PathBuf,
    /// The mount point, when the mount made its own.
    _dir: Option<tempfile::TempDir>,
    /// The directory of the ext4 image, when there is one.
    _image: Option<tempfile::TempDir>,
}

impl Mount {
    /// A tmpfs of `size` (as `mount -o size=` reads it) on a new directory.
    fn tmpfs(test: &str, size: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_path_buf();
        let mut mounted = Mount::tmpfs_at(test, &target, size)?;
        mounted._dir = Some(dir);
        Some(mounted)
    }

    /// A tmpfs of `size` mounted on `target` (an existing directory), mode 0755 as a directory
    /// CoreOps made.
    fn tmpfs_at(test: &str, target: &Path, size: &str) -> Option<Mount> {
        let options = format!("size={size},mode=0755");
        mount(test, &["-t", "tmpfs", "-o", &options, "tmpfs"], target).then(|| Mount {
            target: target.to_path_buf(),
            _dir: None,
            _image: None,
        })
    }

    /// A freshly made ext4 of `mib` MiB on a loop device, on a new directory.
    fn ext4(test: &str, mib: u32) -> Option<Mount> {
        if !as_root(test) || !tools(test, &["truncate", "mkfs.ext4", "chattr"]) {
            return None;
        }
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("fs.ext4");
        run_tool(&["truncate", "-s", &format!("{mib}M"), image.to_str().unwrap()]);
        run_tool(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap()]);
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_path_buf();
        mount(test, &["-o", "loop", image.to_str().unwrap()], &target).then(|| Mount {
            target,
            _dir: Some(dir),
            _image: Some(image_dir),
        })
    }

    /// `target` bound onto itself, read-only.
    fn read_only_bind(test: &str, target: &Path) -> Option<Mount> {
        if !mount(test, &["--bind", target.to_str().unwrap()], target) {
            return None;
        }
        let bound = Mount { target: target.to_path_buf(), _dir: None, _image: None };
        remount(target, "remount,bind,ro");
        Some(bound)
    }

    fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.target).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a failed test left something open): detach it, so that the next tests run.
            let _ = Command::new("umount").arg("-l").arg(&self.target).status();
        }
    }
}

/// Mounts with `args` on `target`; a mount that fails (no privilege to mount here) skips the test.
fn mount(test: &str, args: &[&str], target: &Path) -> bool {
    if !as_root(test) || !tools(test, &["mount", "umount"]) {
        return false;
    }
    let out = Command::new("mount").args(args).arg(target).output().unwrap();
    if !out.status.success() {
        common::skip(test, &format!("cannot mount here: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    out.status.success()
}

fn remount(target: &Path, options: &str) {
    let out = Command::new("mount").args(["-o", options]).arg(target).output().unwrap();
    assert!(out.status.success(), "mount -o {options} {}: {}", target.display(), String::from_utf8_lossy(&out.stderr));
}

/// `chattr +i` on a path, undone (`chattr -i`) when dropped: a failed test never leaves a
/// directory that cannot be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        run_tool(&["chattr", "+i", path.to_str().unwrap()]);
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

fn run_tool(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Whether the test runs as root; otherwise it is skipped, saying so.
fn as_root(test: &str) -> bool {
    if !common::is_root() {
        common::skip(test, "needs root (to mount its own filesystems, or to run core-ops as another user)");
    }
    common::is_root()
}

/// Whether every tool in `names` is installed; otherwise the test is skipped, saying which are
/// missing.
fn tools(test: &str, names: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> =
        std::env::split_paths(&path).chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from)).collect();
    let missing: Vec<&str> = names.iter().copied().filter(|n| !dirs.iter().any(|d| d.join(n).is_file())).collect();
    if !missing.is_empty() {
        common::skip(test, &format!("{} not installed (util-linux, mount, e2fsprogs)", missing.join(", ")));
    }
    missing.is_empty()
}

/// Fills the filesystem holding `dir` with a file there, then gives back `spare_pages` pages.
/// Returns the file (remove it to free the space).
fn fill(dir: &Path, spare_pages: usize) -> PathBuf {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let block = vec![0x5a_u8; PAGE];
    while matches!(file.write(&block), Ok(n) if n == PAGE) {}
    let pages = file.metadata().unwrap().len() as usize / PAGE;
    file.set_len((pages.saturating_sub(spare_pages) * PAGE) as u64).unwrap();
    path
}

// ----- configs and runs -----

/// A Butane config of `files` (path, inline content), plus `local` files (path, name in the
/// files directory).
fn butane(files: &[(&str, &str)], local: &[(&str, &str)]) -> String {
    let mut text = format!("{HEAD}storage:\n  files:\n");
    for (path, content) in files {
        let escaped = content.replace('\\', "\\\\").replace('\n', "\\n");
        text.push_str(&format!("    - path: {path}\n      contents: {{inline: \"{escaped}\"}}\n"));
    }
    for (path, name) in local {
        text.push_str(&format!("    - path: {path}\n      contents: {{local: {name}}}\n"));
    }
    text
}

/// A directory holding configs and their files directory, readable by everyone (the non-root
/// test reads it as another user).
struct Work(tempfile::TempDir);

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(dir.path().join("files")).unwrap();
        fs::set_permissions(dir.path().join("files"), fs::Permissions::from_mode(0o755)).unwrap();
        Work(dir)
    }

    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    fn file(&self, name: &str, bytes: &[u8]) {
        fs::write(self.0.path().join("files").join(name), bytes).unwrap();
    }

    fn files_dir(&self) -> PathBuf {
        self.0.path().join("files")
    }
}

/// One run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The JSON report (`--format json`), when one was printed.
    fn report(&self) -> Option<Value> {
        serde_json::from_str(&self.stdout).ok()
    }

    /// What the run said went wrong: the report's errors, then standard error.
    fn errors(&self) -> String {
        let reported = self.report().map(|r| r["errors"].to_string()).unwrap_or_default();
        format!("{reported}\n{}", self.stderr)
    }

    fn revision(&self) -> String {
        self.report().and_then(|r| r["revision"].as_str().map(str::to_string)).unwrap_or_default()
    }

    fn shown(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// `apply --config CONFIG --root ROOT --offline --format json` with the work's files directory.
fn apply(work: &Work, config: &Path, root: &Path) -> Run {
    let mut cmd = common::bin();
    cmd.args(["apply", "--config"]).arg(config).arg("-d").arg(work.files_dir());
    cmd.arg("--root").arg(root).args(["--offline", "--format", "json"]);
    Run::of(cmd.output().unwrap())
}

/// Applies `config` and asserts it converged; returns its revision.
fn converge(work: &Work, config: &Path, root: &Path) -> String {
    let run = apply(work, config, root);
    assert_eq!(run.code, 0, "{}", run.shown());
    assert_eq!(run.report().unwrap()["result"], "converged", "{}", run.shown());
    run.revision()
}

// ----- what is on the root -----

/// Asserts that every file of `files` has exactly the bytes given.
fn assert_files(root: &Path, files: &[(&str, &[u8])], what: &str) {
    for (path, bytes) in files {
        let found = fs::read(root.join(path.trim_start_matches('/'))).ok();
        assert!(found.as_deref() == Some(*bytes), "{path} is not as {what} has it");
    }
}

fn as_bytes<'a>(files: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    files.iter().map(|(p, c)| (*p, c.as_bytes())).collect()
}

/// The state under `root`, parsed.
fn state(root: &Path) -> Value {
    serde_json::from_slice(&fs::read(root.join(STATE)).expect("the state file")).expect("a complete state file")
}

/// The revision the state under `root` records as applied.
fn applied_revision(root: &Path) -> String {
    state(root)["last_applied"]["revision"].as_str().unwrap_or_default().to_string()
}

/// Every temp file of CoreOps's anywhere under `root`.
fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                found.push(entry.path());
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    found
}

/// Every node under `root` (type, path, mode, owner, content hash), CoreOps's own records
/// and the ext4 `lost+found` left out.
fn host_tree(root: &Path) -> BTreeMap<String, String> {
    let own = |p: &str| {
        [STATE_DIR, "run", "lost+found"].iter().any(|d| p == format!("/{d}") || p.starts_with(&format!("/{d}/")))
    };
    common::manifest(root).into_iter().filter(|(p, _)| !own(p)).map(|(p, (_, line))| (p, line)).collect()
}

/// Every node under `root`, CoreOps's records included.
fn whole_tree(root: &Path) -> BTreeMap<String, String> {
    common::manifest(root).into_iter().map(|(p, (_, line))| (p, line)).collect()
}

/// Asserts the audit log under `root` holds only complete JSON lines, and returns how many.
fn audit_lines(root: &Path) -> usize {
    let text = fs::read_to_string(root.join(STATE_DIR).join("audit.log")).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "the audit log ends in a half-written line: {text:?}");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("a corrupt audit line ({e}): {line:?}"));
    }
    text.lines().count()
}

/// Asserts every history snapshot under `root` is complete JSON, and returns their names.
fn history(root: &Path) -> Vec<String> {
    let dir = root.join(STATE_DIR).join("history");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    for name in &names {
        let bytes = fs::read(dir.join(name)).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|e| panic!("history/{name} is corrupt: {e}"));
    }
    names
}

/// Deterministic bytes that do not compress: a 64-bit LCG's high bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

// ----- 1. the disk fills up during an apply -----

/// Bytes of the large file of revision 2: more than the whole filesystem.
const LARGE: usize = 400_000;
/// The filesystem: revision 1 and CoreOps's records fit; revision 2's large file does not.
const SMALL_FS: &str = "256k";
/// The filesystem grown: revision 2 and its snapshot fit.
const GROWN_FS: &str = "4m";

#[test]
fn a_disk_that_fills_up_during_an_apply_leaves_every_file_old_and_the_next_apply_converges() {
    let test = "a_disk_that_fills_up_during_an_apply_leaves_every_file_old_and_the_next_apply_converges";
    let Some(fs_root) = Mount::tmpfs(test, SMALL_FS) else { return };
    let root = fs_root.path();
    let work = Work::new();
    let large = noise(LARGE);
    work.file("large.bin", &large);
    let rev2_small = [("/etc/app/a.conf", "a=2\n"), ("/etc/app/b.conf", "b=2\n"), ("/etc/app/c.conf", "c=2\n")];
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&rev2_small, &[("/etc/app/large.bin", "large.bin")]));

    let first = converge(&work, &rev1, root);
    let before = host_tree(root);
    let run = apply(&work, &rev2, root);
    assert_eq!(run.code, 1, "{}", run.shown());
    let errors = run.errors();
    assert!(errors.contains("/etc/app/large.bin"), "the error names the file: {}", run.shown());
    assert!(errors.to_lowercase().contains("no space left"), "the error says why: {}", run.shown());
    // Every file is staged before the first rename, so none of revision 2 is in place.
    assert_files(root, &as_bytes(&REV1), "revision 1");
    assert_eq!(host_tree(root), before, "nothing under the root changed");
    assert_eq!(applied_revision(root), first, "the state keeps revision 1");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new(), "no staged file is left behind");
    audit_lines(root);

    remount(root, &format!("remount,size={GROWN_FS}"));
    let second = converge(&work, &rev2, root);
    assert_ne!(second, first);
    let mut rev2_files = as_bytes(&rev2_small);
    rev2_files.push(("/etc/app/large.bin", &large));
    assert_files(root, &rev2_files, "revision 2");
    assert_eq!(applied_revision(root), second, "the state names revision 2");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new());
}

/// Files of a revision large enough that its files are staged by several threads at once.
const MANY: usize = 120;
/// The filesystem of the parallel case: revision 1 and its records fit, a large file of
/// [`LARGE_PARALLEL`] bytes does not.
const PARALLEL_FS: &str = "1m";
/// Bytes of the large file of the parallel case.
const LARGE_PARALLEL: usize = 1_500_000;

#[test]
fn a_disk_that_fills_up_while_many_files_are_staged_at_once_leaves_no_staged_file_and_every_file_old() {
    let test = "a_disk_that_fills_up_while_many_files_are_staged_at_once_leaves_no_staged_file_and_every_file_old";
    let Some(fs_root) = Mount::tmpfs(test, PARALLEL_FS) else { return };
    let root = fs_root.path();
    let work = Work::new();
    work.file("large.bin", &noise(LARGE_PARALLEL));
    let many: Vec<(String, String)> =
        (0..MANY).map(|i| (format!("/etc/app/many/f{i:03}.conf"), format!("f={i}\n"))).collect();
    let many_refs: Vec<(&str, &str)> = many.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&many_refs, &[("/etc/app/large.bin", "large.bin")]));

    let first = converge(&work, &rev1, root);
    let before = host_tree(root);
    let run = apply(&work, &rev2, root);
    assert_eq!(run.code, 1, "{}", run.shown());
    let errors = run.errors();
    assert!(errors.contains("/etc/app/large.bin"), "the first failure in path order is named: {}", run.shown());
    assert!(errors.to_lowercase().contains("no space left"), "the error says why: {}", run.shown());
    assert_eq!(temp_files(root), Vec::<PathBuf>::new(), "every thread's staged files are removed");
    assert_files(root, &as_bytes(&REV1), "revision 1");
    let after = host_tree(root);
    let new_files: Vec<&String> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(new_files.iter().all(|p| !p.contains("/many/f")), "no file of revision 2 is in place: {new_files:?}");
    assert_eq!(applied_revision(root), first, "the state keeps revision 1");
}

// ----- 2. /var/lib/core-ops on a full disk while the state is saved -----

/// The state directory's own filesystem: revision 1's records fit in it with room to spare.
const STATE_FS: &str = "64k";

/// A root on the test's disk with its state directory on a small tmpfs of its own, of `size`.
fn root_with_state_fs_of(test: &str, size: &str) -> Option<(tempfile::TempDir, Mount)> {
    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join(STATE_DIR);
    fs::create_dir_all(&state_dir).unwrap();
    let mounted = Mount::tmpfs_at(test, &state_dir, size)?;
    Some((root, mounted))
}

/// [`root_with_state_fs_of`] a [`STATE_FS`].
fn root_with_state_fs(test: &str) -> Option<(tempfile::TempDir, Mount)> {
    root_with_state_fs_of(test, STATE_FS)
}

#[test]
fn a_full_state_disk_keeps_the_old_state_byte_for_byte_and_writes_nothing() {
    let test = "a_full_state_disk_keeps_the_old_state_byte_for_byte_and_writes_nothing";
    let Some((root_dir, state_fs)) = root_with_state_fs(test) else { return };
    let root = root_dir.path();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&REV2_ELSEWHERE, &[]));
    let first = converge(&work, &rev1, root);
    let saved = fs::read(root.join(STATE)).unwrap();
    let snapshots = history(root);
    let audited = audit_lines(root);
    let before = host_tree(root);

    let filler = fill(state_fs.path(), 0);
    let run = apply(&work, &rev2, root);
    assert_ne!(run.code, 0, "{}", run.shown());
    let errors = run.errors();
    let state_file = root.join(STATE).display().to_string();
    assert!(errors.contains(&state_file), "the error names {state_file}: {}", run.shown());
    assert!(errors.to_lowercase().contains("no space left"), "the error says why: {}", run.shown());
    assert_eq!(fs::read(root.join(STATE)).unwrap(), saved, "the old state survives byte for byte");
    assert_eq!(host_tree(root), before, "no file was written without its record");
    assert_eq!(history(root), snapshots, "the history is as it was");
    assert_eq!(audit_lines(root), audited, "no half-written audit line");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new(), "no staged file is left behind");

    fs::remove_file(filler).unwrap();
    let second = converge(&work, &rev2, root);
    assert_files(root, &as_bytes(&REV2_ELSEWHERE), "revision 2");
    assert_eq!(applied_revision(root), second, "the next apply records revision 2");
    assert_ne!(second, first);
    assert_eq!(history(root).len(), snapshots.len() + 1, "revision 2 has its snapshot");
}

/// The most pages the sweep leaves free: enough for a whole run's records.
const SWEEP_PAGES: usize = 16;
/// The state disk of the sweep: room for revision 1's records and the most spare pages.
const SWEEP_FS: &str = "128k";
/// How many files revision 2 of the sweep adds to [`REV2_ELSEWHERE`].
const SWEEP_ADDED: usize = 40;

/// Revision 2 of the sweep: [`REV2_ELSEWHERE`] and [`SWEEP_ADDED`] more files, so that its
/// state takes pages more than revision 1's. The pending state and the snapshot are staged at
/// the same time, in either order; whichever goes first, some number of spare pages lets the
/// run write its files and then fail to record them, since the final state needs more room than
/// the old one gives back.
fn sweep_revision_2() -> Vec<(String, String)> {
    let added = (0..SWEEP_ADDED).map(|i| (format!("/etc/many/f{i:02}.conf"), format!("f={i}\n")));
    REV2_ELSEWHERE.iter().map(|(p, c)| (p.to_string(), c.to_string())).chain(added).collect()
}

/// How one apply of revision 2 ended with `spare` pages free on the state directory's disk.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Refused before any file was written.
    NothingWritten,
    /// The files were written, then recording them failed.
    WrittenNotRecorded,
    /// Converged and recorded.
    Recorded,
}

/// Applies revision 2 over revision 1 with `spare` pages free on the state directory's disk,
/// checks that whatever failed left complete records and every file old or new, then frees the
/// space and checks that the next apply records revision 2.
fn apply_with_spare_pages(test: &str, spare: usize) -> Option<Ending> {
    let (root_dir, state_fs) = root_with_state_fs_of(test, SWEEP_FS)?;
    let root = root_dir.path();
    let work = Work::new();
    let rev2_files = sweep_revision_2();
    let rev2_files: Vec<(&str, &str)> = rev2_files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&rev2_files, &[]));
    let first = converge(&work, &rev1, root);
    let audited = audit_lines(root);
    let filler = fill(state_fs.path(), spare);

    let run = apply(&work, &rev2, root);
    let context = format!("with {spare} spare page(s): {}", run.shown());
    let old = REV1.iter().all(|(p, c)| fs::read(root.join(&p[1..])).ok().as_deref() == Some(c.as_bytes()));
    let ending = if run.code == 0 {
        assert_eq!(applied_revision(root), run.revision(), "{context}");
        Ending::Recorded
    } else {
        let errors = run.errors();
        assert!(errors.contains(&root.join(STATE_DIR).display().to_string()), "names the path {context}");
        assert!(errors.to_lowercase().contains("no space left"), "says why {context}");
        assert_eq!(applied_revision(root), first, "revision 2 is not recorded as applied {context}");
        if old { Ending::NothingWritten } else { Ending::WrittenNotRecorded }
    };
    if ending != Ending::NothingWritten {
        assert_files(root, &as_bytes(&rev2_files), &format!("revision 2 {context}"));
    } else {
        assert!(!root.join("etc/aaa").exists() && !root.join("etc/many").exists(), "{context}");
    }
    history(root);
    assert!(audit_lines(root) >= audited, "{context}");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new(), "no staged file is left behind {context}");

    fs::remove_file(filler).unwrap();
    let second = converge(&work, &rev2, root);
    assert_ne!(second, first);
    assert_eq!(applied_revision(root), second, "the next apply records revision 2 {context}");
    assert!(state(root)["pending"].is_null(), "nothing is pending any more {context}");
    assert!(history(root).iter().any(|n| n.contains(&second)), "revision 2 has its snapshot {context}");
    assert_files(root, &as_bytes(&rev2_files), "revision 2");
    Some(ending)
}

#[test]
fn a_state_disk_that_fills_up_at_any_point_of_the_records_keeps_them_complete_and_the_next_apply_records() {
    let test = "a_state_disk_that_fills_up_at_any_point_of_the_records_keeps_them_complete_and_the_next_apply_records";
    let mut endings = Vec::new();
    for spare in 1..=SWEEP_PAGES {
        let Some(ending) = apply_with_spare_pages(test, spare) else { return };
        endings.push(ending);
    }
    // The sweep reaches the save that records revision 2 after its files are written, and ends
    // with enough room for the whole run.
    assert!(endings.contains(&Ending::WrittenNotRecorded), "{endings:?}");
    assert_eq!(endings.last(), Some(&Ending::Recorded), "{endings:?}");
}

/// Bytes of audit history the next test gives the root before its run (long-lived hosts have
/// more); a multiple of the 512-byte blocks `ulimit -f` counts, less `AUDIT_ROOM`.
const AUDIT_HISTORY: usize = 64 * 512 - AUDIT_ROOM;
/// Bytes the next audit line may take before the file-size limit: less than any audit line.
const AUDIT_ROOM: usize = 40;

#[test]
fn an_audit_line_that_does_not_fit_is_taken_back_whole() {
    // A full disk cannot reach the audit log: the state saved right before it gives back as much
    // as it takes. A file-size limit (RLIMIT_FSIZE, `ulimit -f`) can: every write past it fails
    // (EFBIG) after a partial write, and the audit log is the one file that large.
    let test = "an_audit_line_that_does_not_fit_is_taken_back_whole";
    if !as_root(test) || !tools(test, &["sh"]) {
        return;
    }
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&REV2_ELSEWHERE, &[]));
    converge(&work, &rev1, root);
    let log = root.join(STATE_DIR).join("audit.log");
    let history = pad_audit_log(&log, AUDIT_HISTORY);

    let limited = "trap '' XFSZ; ulimit -f \"$1\"; shift; exec \"$@\"";
    let blocks = ((AUDIT_HISTORY + AUDIT_ROOM) / 512).to_string();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", limited, "sh", &blocks]).arg(env!("CARGO_BIN_EXE_core-ops"));
    cmd.args(["apply", "--config"]).arg(&rev2).arg("--root").arg(root).args(["--offline", "--format", "json"]);
    let run = Run::of(cmd.output().unwrap());
    assert_eq!(run.code, 0, "the audit log is not the run's result: {}", run.shown());
    assert_eq!(applied_revision(root), run.revision());
    assert!(run.stderr.contains("audit.log"), "the lost line is reported: {}", run.shown());
    assert_eq!(fs::read(&log).unwrap(), history, "the audit log is as it was, without half a line");
    audit_lines(root);
}

/// Appends complete JSON lines to the audit log at `log` until it is exactly `size` bytes;
/// returns its bytes.
fn pad_audit_log(log: &Path, size: usize) -> Vec<u8> {
    let mut bytes = fs::read(log).unwrap();
    let line = |len: usize| format!("{{\"pad\":\"{}\"}}\n", "x".repeat(len - 11)).into_bytes();
    while size - bytes.len() > 200 {
        bytes.extend(line(100));
    }
    bytes.extend(line(size - bytes.len()));
    assert_eq!(bytes.len(), size);
    fs::write(log, &bytes).unwrap();
    bytes
}

// ----- 3. a read-only target -----

#[test]
fn a_read_only_root_is_refused_before_anything_changes() {
    let test = "a_read_only_root_is_refused_before_anything_changes";
    let Some(fs_root) = Mount::tmpfs(test, GROWN_FS) else { return };
    let root = fs_root.path();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&REV2_ELSEWHERE, &[]));
    let first = converge(&work, &rev1, root);
    let before = whole_tree(root);

    remount(root, "remount,ro");
    let run = apply(&work, &rev2, root);
    assert_eq!(run.code, 1, "{}", run.shown());
    let errors = run.errors();
    assert!(errors.contains(&root.join(LOCK).display().to_string()), "the error names the path: {}", run.shown());
    assert!(errors.to_lowercase().contains("read-only"), "the error says why: {}", run.shown());
    assert_eq!(whole_tree(root), before, "nothing under the root changed");

    remount(root, "remount,rw");
    let second = converge(&work, &rev2, root);
    assert_ne!(second, first);
    assert_files(root, &as_bytes(&REV2_ELSEWHERE), "revision 2");
}

#[test]
fn a_read_only_directory_in_the_config_is_refused_before_anything_is_written() {
    let test = "a_read_only_directory_in_the_config_is_refused_before_anything_is_written";
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&REV2_ELSEWHERE, &[]));
    if !as_root(test) || !tools(test, &["mount"]) {
        return;
    }
    let first = converge(&work, &rev1, root);
    let before = host_tree(root);
    let Some(bound) = Mount::read_only_bind(test, &root.join("etc/app")) else { return };

    let run = apply(&work, &rev2, root);
    assert_eq!(run.code, 1, "{}", run.shown());
    let errors = run.errors();
    assert!(errors.contains("/etc/app"), "the error names the directory: {}", run.shown());
    assert!(errors.to_lowercase().contains("read-only"), "the error says why: {}", run.shown());
    assert_eq!(host_tree(root), before, "nothing was written, /etc/aaa included");
    let kept = state(root);
    assert_eq!(kept["last_applied"]["revision"], first.as_str());
    assert!(kept["pending"].is_null(), "no write was even begun: {kept}");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new());

    drop(bound);
    converge(&work, &rev2, root);
    assert_files(root, &as_bytes(&REV2_ELSEWHERE), "revision 2");
}

// ----- 4. an immutable directory or file -----

/// Applies revision 2 over revision 1 with `chattr +i` on `immutable` (relative to the root):
/// refused before anything is written, naming `named`; converges once `chattr -i` is undone.
fn immutable_case(test: &str, immutable: &str, named: &str) {
    let Some(fs_root) = Mount::ext4(test, 16) else { return };
    let root = fs_root.path();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let rev2 = work.config("r2.bu", &butane(&REV2_ELSEWHERE, &[]));
    let first = converge(&work, &rev1, root);
    let before = host_tree(root);
    let attribute = Immutable::set(&root.join(immutable));

    let run = apply(&work, &rev2, root);
    assert_eq!(run.code, 1, "{}", run.shown());
    let errors = run.errors();
    assert!(errors.contains(&format!("{named} is immutable")), "the error names {named}: {}", run.shown());
    assert!(errors.contains("chattr -i"), "the error says what to do: {}", run.shown());
    assert_eq!(host_tree(root), before, "nothing was written, /etc/aaa included");
    let kept = state(root);
    assert_eq!(kept["last_applied"]["revision"], first.as_str());
    assert!(kept["pending"].is_null(), "no write was even begun: {kept}");
    assert_eq!(temp_files(root), Vec::<PathBuf>::new());

    drop(attribute);
    let second = converge(&work, &rev2, root);
    assert_eq!(applied_revision(root), second);
    assert_files(root, &as_bytes(&REV2_ELSEWHERE), "revision 2");
}

#[test]
fn an_immutable_directory_is_refused_before_anything_is_written() {
    immutable_case("an_immutable_directory_is_refused_before_anything_is_written", "etc/app", "/etc/app");
}

#[test]
fn an_immutable_file_is_refused_before_anything_is_written() {
    immutable_case("an_immutable_file_is_refused_before_anything_is_written", "etc/app/a.conf", "/etc/app/a.conf");
}

// ----- 5. apply and plan run by a user who is not root -----

/// The binary, copied where any user may run it (the build directory may be private).
fn shared_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("core-ops");
    fs::copy(env!("CARGO_BIN_EXE_core-ops"), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// Runs the binary at `bin` as `nobody`, without supplementary groups. The binary is a fresh
/// copy: a process that another test forked while the copy was open for writing keeps it open
/// until it runs its own program, and running the copy meanwhile fails with ETXTBSY ("Text file
/// busy"), so such a run is tried again.
fn as_nobody(bin: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let ids = [format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".to_string()];
    for _ in 0..100 {
        let run = Run::of(Command::new("setpriv").args(&ids).arg(bin).args(args).output().unwrap());
        if run.code != 126 || !run.stderr.contains("Text file busy") {
            return run;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{} stayed busy for 2 s", bin.display());
}

/// Runs the binary as the test runs (root).
fn as_root_run(args: &[&std::ffi::OsStr]) -> Run {
    Run::of(common::bin().args(args).output().unwrap())
}

/// A root owned by root that everyone may read, as `/` is.
fn root_owned_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    fs::set_permissions(root.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
    root
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// `COMMAND --config CONFIG --root ROOT --offline`, then `extra`.
fn run_args<'a>(command: &'a str, config: &'a Path, root: &'a Path, extra: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    let mut args =
        vec![os(command), os("--config"), config.as_os_str(), os("--root"), root.as_os_str(), os("--offline")];
    args.extend(extra.iter().map(|e| os(e)));
    args
}

/// The refusal of a converging `command` run by `nobody`, as docs/cli.md words it; `root` is the
/// root as given, without a trailing `/` (empty for `/`).
fn refusal(command: &str, root: &str) -> String {
    format!(
        "error: {command} needs root (on / as on any other --root): it takes the run lock in {root}/run/core-ops and \
         keeps CoreOps's records in {root}/var/lib/core-ops, which belong to root, and it gives every node it writes \
         the owner the config names (root where it names none), as Ignition does. core-ops runs as uid {NOBODY}: run \
         it as root (e.g. with sudo). `core-ops plan` works without root.\n"
    )
}

/// The objects of a JSON plan: (path, action, drift).
fn planned(run: &Run) -> Vec<(String, String, Option<String>)> {
    let report = run.report().unwrap_or_else(|| panic!("no JSON plan: {}", run.shown()));
    let text = |v: &Value| v.as_str().map(str::to_string);
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (text(&o["path"]).unwrap(), text(&o["action"]).unwrap(), text(&o["drift"])))
        .collect()
}

fn object(path: &str, action: &str, drift: Option<&str>) -> (String, String, Option<String>) {
    (path.to_string(), action.to_string(), drift.map(str::to_string))
}

/// The problems of a plan document against the committed `schemas/plan.schema.json`.
fn plan_schema_violations(doc: &Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json");
    let schema: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// Whether the test can run core-ops as `nobody`; otherwise it is skipped, saying why.
fn can_drop_root(test: &str) -> bool {
    as_root(test) && tools(test, &["setpriv"])
}

#[test]
fn apply_by_a_user_who_is_not_root_names_what_needs_root_and_plan_works() {
    let test = "apply_by_a_user_who_is_not_root_names_what_needs_root_and_plan_works";
    if !can_drop_root(test) {
        return;
    }
    let (_bin_dir, bin) = shared_binary();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let root_dir = root_owned_root();
    let root = root_dir.path();
    let before = whole_tree(root);

    let run = as_nobody(&bin, &run_args("apply", &rev1, root, &[]));
    assert_eq!(run.code, 1, "{}", run.shown());
    assert_eq!(run.stderr, refusal("apply", &root.display().to_string()), "{}", run.shown());
    assert_eq!(run.stdout, "");
    assert_eq!(whole_tree(root), before, "nothing was written, not even the lock");

    let run = as_nobody(&bin, &run_args("plan", &rev1, root, &["--exit-code"]));
    assert_eq!(run.code, 3, "plan needs no privileges: {}", run.shown());
    assert!(run.stdout.contains("/etc/app/a.conf"), "{}", run.shown());
    assert!(!run.stderr.contains("warning"), "a root never applied has no record to miss: {}", run.shown());
    assert_eq!(whole_tree(root), before, "plan wrote nothing");
}

/// Revision 1 of the two-way case, then the next one: a.conf and c.conf as they are, b.conf no
/// longer declared, d.conf new.
const NEXT: [(&str, &str); 3] =
    [("/etc/app/a.conf", "a=1\n"), ("/etc/app/c.conf", "c=1\n"), ("/etc/app/d.conf", "d=1\n")];

/// Revision 1 with a.conf edited.
const EDITED: [(&str, &str); 3] =
    [("/etc/app/a.conf", "a=2\n"), ("/etc/app/b.conf", "b=1\n"), ("/etc/app/c.conf", "c=1\n")];

/// Asserts that `run`, a plan by `nobody` on `root`, warned that it was made without the record
/// in `state_file`, on standard error and in its JSON document.
fn assert_warned_without_record(run: &Run, state_file: &str) {
    for said in [state_file, "cannot be read without root", "removals are not shown", "unowned conflicts"] {
        assert!(run.stderr.contains(said), "the warning says {said:?}: {}", run.shown());
    }
    assert!(run.stderr.contains("Run plan as root (e.g. with sudo) for the full plan"), "{}", run.shown());
    let report = run.report().unwrap();
    let warnings = report["warnings"].as_array().unwrap_or_else(|| panic!("no warnings: {}", run.shown()));
    assert_eq!(warnings.len(), 1, "{}", run.shown());
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.contains(state_file) && warning.contains("removals are not shown"), "{warning}");
    assert_eq!(plan_schema_violations(&report), Vec::<String>::new(), "the document keeps its schema");
}

#[test]
fn plan_by_a_user_who_is_not_root_on_an_applied_root_plans_two_way_and_says_so() {
    let test = "plan_by_a_user_who_is_not_root_on_an_applied_root_plans_two_way_and_says_so";
    if !can_drop_root(test) {
        return;
    }
    let (_bin_dir, bin) = shared_binary();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let next = work.config("next.bu", &butane(&NEXT, &[]));
    let edited = work.config("edited.bu", &butane(&EDITED, &[]));
    let root_dir = root_owned_root();
    let root = root_dir.path();
    converge(&work, &rev1, root);
    let state_file = root.join(STATE).display().to_string();
    let json = ["--exit-code", "--format", "json"];

    // As root, the three-way plan: b.conf was written by CoreOps and is no longer declared.
    let full = as_root_run(&run_args("plan", &next, root, &json));
    assert_eq!(full.code, 3, "{}", full.shown());
    let three_way = vec![
        object("/etc/app/a.conf", "no-op", None),
        object("/etc/app/b.conf", "delete", Some("stale")),
        object("/etc/app/c.conf", "no-op", None),
        object("/etc/app/d.conf", "create", None),
    ];
    assert_eq!(planned(&full), three_way, "{}", full.shown());
    assert!(full.report().unwrap().get("warnings").is_none(), "root sees everything: {}", full.shown());

    // The state file is 0600 in a 0755 directory; then the directory itself is closed (0700).
    for state_dir_mode in [0o755, 0o700] {
        fs::set_permissions(root.join(STATE_DIR), fs::Permissions::from_mode(state_dir_mode)).unwrap();
        let before = whole_tree(root);
        let context = format!("state directory {state_dir_mode:04o}");
        // Without the record: the files on disk as they are, nothing known of b.conf.
        let run = as_nobody(&bin, &run_args("plan", &next, root, &json));
        assert_eq!(run.code, 3, "changes pending, nothing blocked ({context}): {}", run.shown());
        let two_way = vec![
            object("/etc/app/a.conf", "no-op", None),
            object("/etc/app/c.conf", "no-op", None),
            object("/etc/app/d.conf", "create", None),
        ];
        assert_eq!(planned(&run), two_way, "{context}: {}", run.shown());
        assert_warned_without_record(&run, &state_file);

        // An owned file edited in the config shows as a conflict: blocked, and said to be unsure.
        let run = as_nobody(&bin, &run_args("plan", &edited, root, &json));
        assert_eq!(run.code, 1, "{context}: {}", run.shown());
        assert_eq!(planned(&run)[0], object("/etc/app/a.conf", "blocked", Some("unowned-conflict")), "{context}");
        assert_warned_without_record(&run, &state_file);
        assert!(
            run.stderr.ends_with(
                "error: 1 object is blocked in this plan without the ownership record; run plan as root to see \
                 whether apply would fail.\n"
            ),
            "{context}: {}",
            run.shown()
        );

        // The human plan says the same on standard error, after the plan.
        let run = as_nobody(&bin, &run_args("plan", &next, root, &["--exit-code"]));
        assert_eq!(run.code, 3, "{context}: {}", run.shown());
        assert!(run.stdout.contains("+ create   /etc/app/d.conf"), "{}", run.shown());
        assert!(!run.stdout.contains("b.conf"), "{}", run.shown());
        assert!(
            run.stderr.starts_with(&format!("warning: {state_file} cannot be read without root")),
            "{}",
            run.shown()
        );

        let run = as_nobody(&bin, &run_args("apply", &next, root, &[]));
        assert_eq!(run.code, 1, "{context}: {}", run.shown());
        assert_eq!(run.stderr, refusal("apply", &root.display().to_string()), "{context}");
        assert_eq!(whole_tree(root), before, "nothing was written ({context})");
        fs::set_permissions(root.join(STATE_DIR), fs::Permissions::from_mode(0o755)).unwrap();
    }

    // As root, the edit is an expected change of an owned file.
    let full = as_root_run(&run_args("plan", &edited, root, &json));
    assert_eq!(full.code, 3, "{}", full.shown());
    assert_eq!(planned(&full)[0], object("/etc/app/a.conf", "update", Some("expected-change")));
}

#[test]
fn plan_by_a_user_who_is_not_root_still_stops_at_a_corrupt_or_untrusted_state() {
    let test = "plan_by_a_user_who_is_not_root_still_stops_at_a_corrupt_or_untrusted_state";
    if !can_drop_root(test) {
        return;
    }
    let (_bin_dir, bin) = shared_binary();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let root_dir = root_owned_root();
    let root = root_dir.path();
    converge(&work, &rev1, root);
    let state_path = root.join(STATE);
    let state_file = state_path.display().to_string();

    // Another user's state, unreadable to nobody as well: untrusted before it is opened.
    std::os::unix::fs::chown(&state_path, Some(1234), Some(1234)).unwrap();
    let run = as_nobody(&bin, &run_args("plan", &rev1, root, &[]));
    assert_eq!(run.code, 1, "{}", run.shown());
    assert!(run.stderr.contains(&format!("{state_file} is owned by uid 1234, not by root")), "{}", run.shown());
    assert!(!run.stderr.contains("cannot be read without root"), "{}", run.shown());

    // A corrupt state that nobody may read.
    std::os::unix::fs::chown(&state_path, Some(0), Some(0)).unwrap();
    fs::write(&state_path, "{\"generation\": ").unwrap();
    fs::set_permissions(&state_path, fs::Permissions::from_mode(0o644)).unwrap();
    let run = as_nobody(&bin, &run_args("plan", &rev1, root, &[]));
    assert_eq!(run.code, 1, "{}", run.shown());
    assert!(run.stderr.contains(&state_file) && run.stderr.contains("Move it aside"), "{}", run.shown());
    assert!(!run.stderr.contains("cannot be read without root"), "{}", run.shown());
    assert_eq!(run.stdout, "", "no plan: {}", run.shown());
}

#[test]
fn apply_by_a_user_who_is_not_root_on_a_root_of_their_own_is_refused_and_writes_nothing() {
    let test = "apply_by_a_user_who_is_not_root_on_a_root_of_their_own_is_refused_and_writes_nothing";
    if !can_drop_root(test) {
        return;
    }
    let (_bin_dir, bin) = shared_binary();
    let work = Work::new();
    let rev1 = work.config("r1.bu", &butane(&REV1, &[]));
    let root_dir = root_owned_root();
    let root = root_dir.path();
    for dir in [root, &root.join("etc")] {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let before = whole_tree(root);
    let shown = root.display().to_string();

    for (command, args) in [
        ("apply", run_args("apply", &rev1, root, &[])),
        ("apply", run_args("apply", &rev1, root, &["--yes", "--format", "json"])),
        ("rollback", vec![os("rollback"), os("--root"), root.as_os_str(), os("--offline")]),
    ] {
        let run = as_nobody(&bin, &args);
        assert_eq!(run.code, 1, "{command}: {}", run.shown());
        assert_eq!(run.stderr, refusal(command, &shown), "{command}");
        assert_eq!(run.stdout, "", "{command}");
        assert_eq!(whole_tree(root), before, "{command} wrote nothing, not even the lock or the state directory");
    }

    // What the user can do instead: plan, which sees the same tree.
    let run = as_nobody(&bin, &run_args("plan", &rev1, root, &["--exit-code"]));
    assert_eq!(run.code, 3, "{}", run.shown());
    assert_eq!(whole_tree(root), before, "plan wrote nothing");
}

#[test]
fn apply_on_slash_by_a_user_who_is_not_root_is_refused_before_reading_anything() {
    let test = "apply_on_slash_by_a_user_who_is_not_root_is_refused_before_reading_anything";
    if !can_drop_root(test) {
        return;
    }
    let (_bin_dir, bin) = shared_binary();
    let work = Work::new();
    // A config that does not exist: the refusal comes before anything is read.
    let missing = work.0.path().join("never-read.bu");
    for extra in [&[][..], &[os("--offline")][..]] {
        let mut args = vec![os("apply"), os("--config"), missing.as_os_str()];
        args.extend_from_slice(extra);
        let run = as_nobody(&bin, &args);
        assert_eq!(run.code, 1, "{}", run.shown());
        assert_eq!(run.stderr, refusal("apply", ""), "no way forward that fails: {}", run.shown());
        assert_eq!(run.stdout, "");
    }
}

/// Directories of the tree applied under a low soft limit of open files.
const MANY_DIRS: usize = 400;
/// The soft limit of open files that tree is applied under: fewer than its directories.
const LOW_SOFT_LIMIT: u64 = 128;

#[test]
fn a_tree_of_more_directories_than_the_soft_limit_of_open_files_applies_whole() {
    let test = "a_tree_of_more_directories_than_the_soft_limit_of_open_files_applies_whole";
    if !as_root(test) {
        return;
    }
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.unwrap_or(u64::MAX);
    if hard < 2 * MANY_DIRS as u64 {
        common::skip(test, &format!("the hard limit of open files ({hard}) is too low to hold the tree's directories"));
        return;
    }
    let work = Work::new();
    for i in 0..MANY_DIRS {
        let dir = work.files_dir().join(format!("t/d{i:03}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), format!("file {i}\n")).unwrap();
    }
    let config = work.config("tree.bu", &format!("{HEAD}storage:\n  trees:\n    - local: t\n      path: /etc/t\n"));
    let root = common::conformance_root();
    // Staging keeps each directory written to open until its files are renamed into place.
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &format!("ulimit -Sn {LOW_SOFT_LIMIT} && exec \"$@\""), "bash", env!("CARGO_BIN_EXE_core-ops")]);
    cmd.args(["apply", "--config"]).arg(&config).arg("-d").arg(work.files_dir());
    cmd.arg("--root").arg(root.path()).args(["--offline", "--format", "json"]);
    let run = Run::of(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{}", run.shown());
    assert_eq!(run.report().unwrap()["result"], "converged", "{}", run.shown());
    for i in 0..MANY_DIRS {
        let path = root.path().join(format!("etc/t/d{i:03}/f"));
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("file {i}\n"), "{}", path.display());
    }
}

#[test]
fn a_stale_check_directory_that_cannot_be_removed_does_not_hide_why_the_input_is_refused() {
    let test = "a_stale_check_directory_that_cannot_be_removed_does_not_hide_why_the_input_is_refused";
    let root = common::conformance_root();
    // What an interrupted run staged for the unit checks, on a read-only filesystem: it cannot
    // be cleared.
    let stale = root.path().join("run/core-ops/core-ops-units-stale");
    fs::create_dir_all(&stale).unwrap();
    let Some(mount) = Mount::tmpfs_at(test, &stale, "64k") else { return };
    fs::write(stale.join("a.service"), "[Service]\n").unwrap();
    remount(&mount.target, "remount,ro");
    let work = Work::new();
    let units = "systemd:\n  units:\n    - name: web.service\n      contents: \"[Service]\\nExecStart=/bin/true\\n\"\n";
    let refused = work.config(
        "refused.bu",
        &format!("{HEAD}{units}storage:\n  files:\n    - path: /etc/app/a.conf\n      user: {{id: 4294967295}}\n      contents: {{inline: x}}\n"),
    );
    let run = apply(&work, &refused, root.path());
    assert_eq!(run.code, 1, "{}", run.shown());
    assert!(run.errors().contains("user id 4294967295"), "the input's own error: {}", run.shown());
    // An input the run can take reports that the directory cannot be cleared.
    let fine = work.config("fine.bu", &format!("{HEAD}{units}"));
    let run = apply(&work, &fine, root.path());
    assert_eq!(run.code, 1, "{}", run.shown());
    assert!(run.shown().contains("core-ops-units-stale"), "{}", run.shown());
}
