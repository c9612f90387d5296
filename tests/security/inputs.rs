//! Attacks through what CoreOps reads: the source repository, `--config FILE`, the
//! `render-ignition` input file and `--files-dir`.
//!
//! - A FIFO must not hang a run, and a character device (`/dev/zero`) must not be read until
//!   memory runs out: only regular files are read, each up to a size cap, and anything else is
//!   refused with an error that names the path (exit 65 with the file in a source repository,
//!   exit 1 with Butane's located diagnostic at the `local:` key in a files directory).
//! - A symlink in the files directory that resolves outside it (a `local:` file, or a `trees`
//!   root reached through a symlinked directory) must not let `plan -v` print, nor `apply`
//!   install, a file from outside; links that stay inside keep working.
//!
//! Every run here is bounded: a deadline kills a hung run and an address-space limit stops an
//! endless read, so a regression fails its test instead of stalling the suite or the machine.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{Victim, common, run_to_deadline, text};

/// The address space a run may use (KiB, for `ulimit -v`): enough for any honest run, and it
/// turns an endless read of a device into a quick failure instead of exhausting the machine.
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;

/// The per-file cap that README.md documents.
const CAP_BYTES: u64 = 64 * 1024 * 1024;

/// Runs `core-ops ARGS` in `cwd`, with `stdin` (or nothing) as standard input, bounded in time
/// and memory: a run still going at the deadline is killed and fails the test.
fn run_bounded(args: &[OsString], cwd: &Path, stdin: Option<fs::File>) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {MEMORY_LIMIT_KIB} && exec \"$@\""))
        .arg("sh")
        .arg(common::bin().get_program())
        .args(args)
        .current_dir(cwd)
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from));
    run_to_deadline(cmd, &format!("core-ops {args:?}"))
}

/// Arguments as the command line takes them.
fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    items.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// Makes a FIFO at `path`; says what it made.
fn fifo(path: &Path) -> &'static str {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
    FIFO
}

/// Makes a character device 1:5 (what `/dev/zero` is) at `path`. Where that cannot be done or
/// opened (not root, a `nodev` mount), a symlink to `/dev/zero` stands in — it must be refused
/// just the same, as a symlink — and the note says so. Says what it made.
fn zero_device(path: &Path) -> &'static str {
    use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
    let made = mknodat(CWD, path, FileType::CharacterDevice, Mode::from_raw_mode(0o666), makedev(1, 5)).is_ok();
    if made && fs::File::open(path).is_ok() {
        return "a character device 1:5";
    }
    let _ = fs::remove_file(path);
    symlink("/dev/zero", path).unwrap();
    eprintln!("note: no usable character device at {}; a symlink to /dev/zero stands in", path.display());
    ZERO_LINK
}

const FIFO: &str = "a FIFO";
const ZERO_LINK: &str = "a symlink to /dev/zero";

/// The special files that must be refused: a FIFO (reading it hangs) and a `/dev/zero`
/// (reading it never ends).
const SPECIAL: [(&str, MakeSpecial); 2] = [("pipe", fifo), ("zero", zero_device)];

/// Makes one special file at a path and says what it made.
type MakeSpecial = fn(&Path) -> &'static str;

/// How a files directory or source repository refuses what `made` is: a special file because
/// it is not regular, the stand-in symlink because of where it leads (`symlink_refusal`).
fn refusal(made: &str, symlink_refusal: &'static str) -> &'static str {
    if made == ZERO_LINK { symlink_refusal } else { "only regular files are read" }
}

/// A Butane config with one file `/etc/leak`, mode 0644, whose contents are `local: LOCAL`
/// (on line 8, column 16).
fn local_file_config(local: &str) -> String {
    format!(
        "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/leak\n      mode: 0644\n      contents:\n        local: {local}\n"
    )
}

/// A Butane config with one tree (on line 5, column 7) from `local: LOCAL` to `/srv/tree`.
fn tree_config(local: &str) -> String {
    format!("variant: fcos\nversion: 1.5.0\nstorage:\n  trees:\n    - local: {local}\n      path: /srv/tree\n")
}

/// A work directory holding `config.bu`, an empty `files/` and a fresh root.
struct Work {
    dir: tempfile::TempDir,
    root: tempfile::TempDir,
}

impl Work {
    fn new(config: &str) -> Work {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.bu"), config).unwrap();
        fs::create_dir(dir.path().join("files")).unwrap();
        Work { dir, root: common::conformance_root() }
    }

    fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// `core-ops render-ignition -d files config.bu`.
    fn render(&self) -> Output {
        run_bounded(&args(&[&"render-ignition", &"-d", &"files", &"config.bu"]), self.dir.path(), None)
    }

    /// `core-ops COMMAND [-v] --config config.bu -d files --root ROOT --offline`.
    fn run(&self, command: &str, verbose: bool) -> Output {
        let mut list = args(&[&command, &"--config", &"config.bu", &"-d", &"files", &"--root", &self.root.path()]);
        list.push("--offline".into());
        if verbose {
            list.push("-v".into());
        }
        run_bounded(&list, self.dir.path(), None)
    }
}

/// Asserts that `out` exited with `code` and printed every one of `needles`.
fn assert_refused(out: &Output, code: i32, needles: &[&str], attack: &str) {
    let all = text(out);
    // A config rendered from a large file would drown the message: show its start only.
    let shown: String = all.chars().take(4000).collect();
    assert_eq!(out.status.code(), Some(code), "{attack}: exit code\n{shown}");
    for needle in needles {
        assert!(all.contains(needle), "{attack}: expected `{needle}` in the output\n{shown}");
    }
}

#[test]
fn special_files_in_the_files_dir_are_refused_at_their_local_key() {
    for (name, make) in SPECIAL {
        let work = Work::new(&local_file_config(name));
        let made = make(&work.files().join(name));
        let (attack, refused) = (format!("local: {name} ({made})"), refusal(made, "outside the files directory"));
        let out = work.render();
        assert_refused(&out, 1, &["error[$.storage.files.0.contents.local]", "--> config.bu:8:16"], &attack);
        assert_refused(&out, 1, &[&format!("files/{name}"), refused], &attack);
        let out = work.run("plan", false);
        assert_refused(&out, 1, &[&format!("config.bu:8:16: open files/{name}"), refused], &attack);
        assert!(!work.root.path().join("etc/leak").exists(), "{attack}: nothing is installed");
    }
}

#[test]
fn a_file_over_the_cap_in_the_files_dir_is_refused() {
    let work = Work::new(&local_file_config("big"));
    // Sparse: the cap is checked without writing 64 MiB to the disk.
    fs::File::create(work.files().join("big")).unwrap().set_len(CAP_BYTES + 1).unwrap();
    let out = work.render();
    assert_refused(&out, 1, &["error[$.storage.files.0.contents.local]", "files/big", "64 MiB"], "a 64 MiB + 1 file");
    assert!(out.stdout.is_empty(), "no config is written");
}

#[test]
fn special_files_in_the_source_repo_are_refused_with_exit_65() {
    for (name, make) in SPECIAL {
        let repo = tempfile::tempdir().unwrap();
        let config = repo.path().join("services/web/config");
        fs::create_dir_all(&config).unwrap();
        fs::create_dir_all(repo.path().join("hosts/h")).unwrap();
        fs::write(repo.path().join("hosts/h/host.yaml"), "host: h\nservices: [web]\n").unwrap();
        fs::write(config.join("site.conf"), "listen 80;\n").unwrap();
        let made = make(&config.join(name));
        let root = common::conformance_root();
        let list = args(&[&"plan", &"--source-repo", &repo.path(), &"--host", &"h", &"--root", &root.path()]);
        let out = run_bounded(&list, repo.path(), None);
        let located = format!("error: services/web/config/{name}: ");
        let refused = refusal(made, "symlinks are not allowed");
        assert_refused(&out, 65, &[&located, refused], &format!("services/web/config/{name} ({made})"));
    }
}

#[test]
fn a_named_config_must_be_a_regular_file_but_stdin_may_be_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, zero) = (dir.path().join("pipe.bu"), dir.path().join("zero.bu"));
    let made = [(fifo(&pipe), &pipe), (zero_device(&zero), &zero)];
    let root = common::conformance_root();
    // A named config is the operator's choice: a symlink there is followed, to what it names.
    for (made, path) in made {
        let attack = format!("--config {} ({made})", path.display());
        for command in ["plan", "apply"] {
            let list = args(&[&command, &"--config", path, &"--root", &root.path(), &"--offline"]);
            let out = run_bounded(&list, dir.path(), None);
            assert_refused(&out, 1, &[&path.display().to_string(), "only regular files are read"], &attack);
        }
        let out = run_bounded(&args(&[&"render-ignition", path]), dir.path(), None);
        assert_refused(&out, 1, &[&path.display().to_string(), "only regular files are read"], &attack);
    }
    // Standard input is read whatever it is: `cat config.bu | core-ops render-ignition` works.
    let config = dir.path().join("ok.bu");
    fs::write(&config, "variant: fcos\nversion: 1.5.0\n").unwrap();
    let mut cat = Command::new("cat").arg(&config).stdout(Stdio::piped()).spawn().unwrap();
    let pipe_out: std::os::fd::OwnedFd = cat.stdout.take().unwrap().into();
    let out = run_bounded(&args(&[&"render-ignition"]), dir.path(), Some(fs::File::from(pipe_out)));
    cat.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "a config piped to standard input renders\n{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"version\":\"3.4.0\""), "{}", text(&out));
}

#[test]
fn a_files_dir_symlink_to_an_outside_secret_is_neither_printed_nor_installed() {
    let victim = Victim::new();
    let work = Work::new(&local_file_config("s"));
    symlink(&victim.path, work.files().join("s")).unwrap();
    let attack = "files/s -> an outside 0600 secret, installed 0644";
    let expected = ["config.bu:8:16: open files/s", "outside the files directory"];

    let out = work.run("plan", true);
    assert!(!text(&out).contains("TOP-SECRET"), "{attack}: plan -v printed the secret\n{}", text(&out));
    assert_refused(&out, 1, &expected, attack);
    let out = work.run("apply", false);
    assert_refused(&out, 1, &expected, attack);
    assert!(!work.root.path().join("etc/leak").exists(), "{attack}: apply installed the secret");
    let out = work.render();
    assert_refused(&out, 1, &["error[$.storage.files.0.contents.local]", "outside the files directory"], attack);
    assert!(out.stdout.is_empty(), "{attack}: render-ignition embedded the secret");
    victim.assert_untouched(attack);

    // Links that stay inside the files directory keep working, relative or absolute.
    fs::write(work.files().join("real"), "inside\n").unwrap();
    fs::remove_file(work.files().join("s")).unwrap();
    symlink("real", work.files().join("s")).unwrap();
    assert_eq!(work.render().status.code(), Some(0), "a relative link inside the files directory");
    fs::remove_file(work.files().join("s")).unwrap();
    symlink(work.files().join("real"), work.files().join("s")).unwrap();
    let out = work.run("apply", false);
    assert_eq!(out.status.code(), Some(0), "an absolute link inside the files directory\n{}", text(&out));
    assert_eq!(fs::read_to_string(work.root.path().join("etc/leak")).unwrap(), "inside\n");
}

#[test]
fn a_tree_root_through_a_symlinked_directory_outside_is_refused() {
    let victim = Victim::new();
    let victim_dir = victim.path.parent().unwrap();
    let name = victim_dir.file_name().unwrap().to_str().unwrap();
    // files/out -> the victim directory's parent; the tree root files/out/<victim dir> passes
    // through that link to the directory that holds the secret.
    let work = Work::new(&tree_config(&format!("out/{name}")));
    symlink(victim_dir.parent().unwrap(), work.files().join("out")).unwrap();
    let attack = "trees: local: out/<dir>, with files/out -> outside";
    let expected = ["config.bu:5:7: stat files/out/", "outside the files directory"];

    let out = work.run("plan", true);
    assert!(!text(&out).contains("TOP-SECRET"), "{attack}: plan -v printed the secret\n{}", text(&out));
    assert_refused(&out, 1, &expected, attack);
    let out = work.run("apply", false);
    assert_refused(&out, 1, &expected, attack);
    assert!(!work.root.path().join("srv/tree").exists(), "{attack}: apply installed the tree");
    victim.assert_untouched(attack);

    // A tree reached through a symlinked directory inside the files directory keeps working.
    fs::create_dir_all(work.files().join("real/site")).unwrap();
    fs::write(work.files().join("real/site/index.html"), "hi\n").unwrap();
    fs::write(work.dir.path().join("config.bu"), tree_config("in/site")).unwrap();
    symlink("real", work.files().join("in")).unwrap();
    let out = work.run("apply", false);
    assert_eq!(out.status.code(), Some(0), "a tree through a link inside the files directory\n{}", text(&out));
    assert_eq!(fs::read_to_string(work.root.path().join("srv/tree/index.html")).unwrap(), "hi\n");
}
