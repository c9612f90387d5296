//! `core-ops-release bundle`, checked with tools that share no code with it: GNU tar lists and
//! unpacks the archive, `sha256sum -c` checks SHA256SUMS, `readelf` shows the binary is static,
//! a byte scan finds no build path in it, `man`/`groff` render the man pages, bash loads the
//! completion; a second bundle from a copy of the repository at another path, built in another
//! target directory, is byte-identical; the aarch64 binary runs under `qemu-aarch64` and answers
//! as the x86_64 one does.
//!
//! Release builds are slow, so the file makes three and shares them (a `OnceLock` per bundle):
//! x86_64 in this repository, x86_64 in the copy, aarch64 in this repository. They build in
//! `target/bundle-tests*` (never the test's own target directory, which `cargo test` holds
//! locked) and one at a time.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

const X86_64: &str = "x86_64-unknown-linux-musl";
const AARCH64: &str = "aarch64-unknown-linux-musl";

/// The archive of one architecture as GNU tar must list it (README's install story, the brief
/// of the bundle, and one man page per subcommand of README's command table), in order.
fn expected_entries(arch: &str) -> Vec<(String, &'static str)> {
    let file = "-rw-r--r--";
    let folder = "drwxr-xr-x";
    let mut entries = vec![
        ("CHANGELOG.md".to_string(), file),
        ("LICENSE".to_string(), file),
        ("README.md".to_string(), file),
        ("completions/".to_string(), folder),
        ("completions/_core-ops".to_string(), file),
        ("completions/core-ops.bash".to_string(), file),
        ("completions/core-ops.fish".to_string(), file),
        (format!("core-ops-linux-{arch}"), "-rwxr-xr-x"),
        ("core-ops.service".to_string(), file),
        ("core-ops.timer".to_string(), file),
        ("man/".to_string(), folder),
    ];
    let subcommands = [
        "agent",
        "apply",
        "explain",
        "history",
        "init",
        "plan",
        "render-ignition",
        "resume",
        "rollback",
        "status",
        "suspend",
    ];
    entries.extend(subcommands.iter().map(|sub| (format!("man/core-ops-{sub}.1"), file)));
    entries.push(("man/core-ops.1".to_string(), file));
    entries
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the bundles of this file are built and written.
fn work_dir() -> PathBuf {
    repo().join("target/bundle-tests")
}

/// One bundle written by `core-ops-release bundle`.
#[derive(Debug)]
struct Bundle {
    out: PathBuf,
    arch: &'static str,
    /// What `bundle` printed.
    stdout: String,
}

impl Bundle {
    fn binary(&self) -> PathBuf {
        self.out.join(format!("core-ops-linux-{}", self.arch))
    }

    fn archive(&self) -> PathBuf {
        self.out.join(format!("core-ops-linux-{}.tar.gz", self.arch))
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.out.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", self.out.display()))
    }
}

/// A bundle, or why it could not be made (so that a failed build fails every test that needs
/// it once, instead of being retried).
type Shared = Result<Bundle, String>;

/// Release builds run one at a time: two at once only compete for the cores.
static BUILDS: Mutex<()> = Mutex::new(());

/// Runs `core-ops-release bundle` in `repo` with the timestamp left to the commit time, unless
/// `epoch` fixes it.
fn run_bundle(repo: &Path, target: &str, target_dir: &Path, out: &Path, epoch: Option<&str>) -> Output {
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut command = Command::new(env!("CARGO_BIN_EXE_core-ops-release"));
    command
        .args(["--repo"])
        .arg(repo)
        .args(["bundle", "--target", target, "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        command.env("SOURCE_DATE_EPOCH", epoch);
    }
    command.output().expect("core-ops-release runs")
}

/// A fresh output folder (emptied when it exists).
fn fresh_dir(path: &Path) -> PathBuf {
    if path.exists() {
        std::fs::remove_dir_all(path).unwrap();
    }
    std::fs::create_dir_all(path).unwrap();
    path.to_path_buf()
}

fn make_bundle(repo: &Path, target: &str, target_dir: &Path, out: &Path, arch: &'static str) -> Shared {
    let output = run_bundle(repo, target, target_dir, out, None);
    if !output.status.success() {
        return Err(format!(
            "core-ops-release bundle --target {target} in {} failed ({}):\n{}",
            repo.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(Bundle { out: out.to_path_buf(), arch, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
}

fn shared(cell: &'static OnceLock<Shared>, make: fn() -> Shared) -> &'static Bundle {
    match cell.get_or_init(make) {
        Ok(bundle) => bundle,
        Err(why) => panic!("{why}"),
    }
}

/// The x86_64 bundle of this repository.
fn x86_64() -> &'static Bundle {
    static CELL: OnceLock<Shared> = OnceLock::new();
    shared(&CELL, || {
        let out = fresh_dir(&work_dir().join("out/x86_64"));
        make_bundle(repo(), X86_64, &work_dir(), &out, "x86_64")
    })
}

/// The x86_64 bundle of a copy of this repository at another absolute path, built in another
/// target directory.
fn x86_64_from_copy() -> &'static Bundle {
    static CELL: OnceLock<Shared> = OnceLock::new();
    shared(&CELL, || {
        let copy = copy_repository(repo());
        let out = fresh_dir(&work_dir().join("out/x86_64-copy"));
        let bundle = make_bundle(&copy, X86_64, &repo().join("target/bundle-tests-copy"), &out, "x86_64");
        std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
        bundle
    })
}

/// The aarch64 bundle, written next to a copy of the x86_64 artefacts (as a two-architecture
/// release is assembled), or None when qemu-aarch64 or the Rust target is missing.
fn aarch64(test: &str) -> Option<&'static Bundle> {
    static CELL: OnceLock<Shared> = OnceLock::new();
    if let Some(missing) = missing_aarch64_prerequisite() {
        common::skip(test, &missing);
        return None;
    }
    Some(shared(&CELL, || {
        let x86 = x86_64();
        let out = fresh_dir(&work_dir().join("out/two-arch"));
        for name in ["core-ops-linux-x86_64", "core-ops-linux-x86_64.tar.gz", "SHA256SUMS"] {
            std::fs::copy(x86.out.join(name), out.join(name)).unwrap();
        }
        make_bundle(repo(), AARCH64, &work_dir(), &out, "aarch64")
    }))
}

fn missing_aarch64_prerequisite() -> Option<String> {
    if !tool_exists("qemu-aarch64", "--version") {
        return Some("qemu-aarch64 is not installed (Debian: qemu-user)".into());
    }
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let target_lib = Path::new(&sysroot).join("lib/rustlib").join(AARCH64).join("lib");
    if !target_lib.is_dir() {
        return Some(format!("the Rust target {AARCH64} is not installed (rustup target add {AARCH64})"));
    }
    None
}

fn tool_exists(tool: &str, probe: &str) -> bool {
    Command::new(tool).arg(probe).output().is_ok_and(|o| o.status.success())
}

/// Copies the repository's files (tracked, and untracked ones git does not ignore: what cargo
/// builds) with their git history to `<temp>/core-ops-release-repro-<hash>/other-name`, at the
/// same commit. The folder's name depends only on the source path, so that the copy's build
/// flags, and with them its cached dependencies, stay the same from run to run.
fn copy_repository(from: &Path) -> PathBuf {
    use sha2::Digest;
    let tag = hex::encode(&sha2::Sha256::digest(from.as_os_str().as_encoded_bytes())[..6]);
    let parent = fresh_dir(&std::env::temp_dir().join(format!("core-ops-release-repro-{tag}")));
    let to = parent.join("other-name");
    let head = git(from, &["rev-parse", "HEAD"]);
    // --shared borrows the object database: every commit of the source is there, detached or not.
    let clone = Command::new("git").args(["clone", "-q", "--shared", "--no-checkout"]).arg(from).arg(&to).status();
    assert!(clone.unwrap().success(), "git clone {}", from.display());
    git(&to, &["checkout", "-q", "--detach", head.trim()]);
    let listed = git(from, &["ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
    for name in listed.split('\0').filter(|name| !name.is_empty()) {
        let (source, copy) = (from.join(name), to.join(name));
        let _ = std::fs::remove_file(&copy);
        let Ok(meta) = std::fs::symlink_metadata(&source) else {
            continue; // deleted in the work tree: deleted in the copy too
        };
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        let copied = if meta.file_type().is_symlink() {
            std::fs::read_link(&source).and_then(|target| std::os::unix::fs::symlink(target, &copy))
        } else {
            std::fs::copy(&source, &copy).map(drop)
        };
        copied.unwrap_or_else(|e| panic!("copying {}: {e}", source.display()));
    }
    assert_eq!(
        git(&to, &["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        git(from, &["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        "the copy must be as clean or dirty as the source (the build records it)"
    );
    to
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git");
    assert!(out.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a tool and returns its stdout, failing the test on a non-zero exit.
fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// HEAD's commit time as `YYYY-MM-DD HH:MM:SS` in UTC, as git formats it.
fn commit_time_utc() -> String {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo()).args(["log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d %H:%M:%S"]);
    run(command.env("TZ", "UTC")).trim().to_string()
}

/// `tar -tzvf` of an archive in UTC with full times: (mode, owner, size, date time, name) per entry.
fn tar_listing(archive: &Path) -> Vec<(String, String, u64, String, String)> {
    let mut command = Command::new("tar");
    command.arg("--full-time").arg("-tzvf").arg(archive).env("TZ", "UTC");
    run(&mut command)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 6, "an unexpected listing line: {line}");
            (f[0].into(), f[1].into(), f[2].parse().unwrap(), format!("{} {}", f[3], f[4]), f[5].into())
        })
        .collect()
}

/// The archive unpacked by GNU tar into a new temporary folder.
fn unpack(archive: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(dir.path()));
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_x86_64_archive_lists_exactly_the_release_entries_owned_by_root_at_the_commit_time() {
    let bundle = x86_64();
    let listing = tar_listing(&bundle.archive());
    let names: Vec<(String, &str)> =
        listing.iter().map(|(mode, _, _, _, name)| (name.clone(), mode.as_str())).collect();
    assert_eq!(names, expected_entries("x86_64"), "names, order and modes");
    let time = commit_time_utc();
    for (_, owner, _, date, name) in &listing {
        assert_eq!(owner, "root/root", "{name}");
        assert_eq!(date, &time, "{name}: the mtime is the commit time");
    }
    let numeric = run(Command::new("tar").args(["--numeric-owner", "-tzvf"]).arg(bundle.archive()));
    assert!(numeric.lines().all(|l| l.split_whitespace().nth(1) == Some("0/0")), "{numeric}");

    // The unpacked members are the repository's documents and the raw binary, byte for byte.
    let unpacked = unpack(&bundle.archive());
    for (inside, source) in [
        ("CHANGELOG.md", "CHANGELOG.md"),
        ("LICENSE", "LICENSE"),
        ("README.md", "README.md"),
        ("core-ops.service", "systemd/core-ops.service"),
        ("core-ops.timer", "systemd/core-ops.timer"),
    ] {
        assert!(
            std::fs::read(unpacked.path().join(inside)).unwrap() == std::fs::read(repo().join(source)).unwrap(),
            "{inside}"
        );
    }
    assert!(
        std::fs::read(unpacked.path().join("core-ops-linux-x86_64")).unwrap() == bundle.read("core-ops-linux-x86_64")
    );
    assert_eq!(mode(&bundle.binary()), 0o755, "the raw binary is executable");
    assert_eq!(mode(&bundle.archive()), 0o644);
}

#[test]
fn sha256sum_checks_every_x86_64_artefact() {
    let bundle = x86_64();
    let out = run(Command::new("sha256sum").args(["-c", "--strict", "SHA256SUMS"]).current_dir(&bundle.out));
    assert_eq!(out, "core-ops-linux-x86_64: OK\ncore-ops-linux-x86_64.tar.gz: OK\n");
}

#[test]
fn bundle_prints_each_artefact_with_its_size_and_sha256() {
    let bundle = x86_64();
    // The oracles: sha256sum and stat, one line per artefact in the order written.
    let mut expected = Vec::new();
    for name in ["core-ops-linux-x86_64", "core-ops-linux-x86_64.tar.gz", "SHA256SUMS"] {
        let path = bundle.out.join(name);
        let digest = run(Command::new("sha256sum").arg(&path));
        let size = run(Command::new("stat").args(["-c", "%s"]).arg(&path));
        expected.push(vec![
            path.display().to_string(),
            size.trim().to_string(),
            "bytes".to_string(),
            "sha256".to_string(),
            digest.split_whitespace().next().unwrap().to_string(),
        ]);
    }
    let printed: Vec<Vec<String>> =
        bundle.stdout.lines().map(|l| l.split_whitespace().map(str::to_string).collect()).collect();
    assert_eq!(printed, expected, "{}", bundle.stdout);
}

#[test]
fn the_x86_64_binary_is_static_and_reports_the_cargo_toml_version() {
    let bundle = x86_64();
    let headers = run(Command::new("readelf").args(["-lW"]).arg(bundle.binary()));
    assert!(!headers.contains("INTERP"), "a dynamic loader is requested:\n{headers}");
    let dynamic = run(Command::new("readelf").args(["-dW"]).arg(bundle.binary()));
    assert!(!dynamic.contains("(NEEDED)"), "shared libraries are needed:\n{dynamic}");
    let version = run(Command::new(bundle.binary()).arg("--version"));
    assert!(version.starts_with(&format!("core-ops {} (", env!("CARGO_PKG_VERSION"))), "{version}");
}

/// The build locations of this machine, none of which may appear in a release binary.
fn build_paths() -> Vec<String> {
    let home = std::env::var("HOME").ok().filter(|h| h.len() > 1);
    let cargo_home = std::env::var("CARGO_HOME").ok().or_else(|| home.as_ref().map(|h| format!("{h}/.cargo")));
    let mut paths = vec![repo().display().to_string(), repo().canonicalize().unwrap().display().to_string()];
    paths.extend(cargo_home);
    // $HOME itself may be a suffix of legitimate strings (`/root` ends `/dev/disk/by-partlabel/root`);
    // what a build leaks is a path inside it.
    paths.extend(home.map(|h| format!("{h}/.")));
    paths
}

#[test]
fn the_x86_64_binary_holds_no_build_path() {
    let bundle = x86_64();
    let bytes = bundle.read("core-ops-linux-x86_64");
    let paths = build_paths();
    for path in &paths {
        let hits = bytes.windows(path.len()).filter(|w| *w == path.as_bytes()).count();
        assert_eq!(hits, 0, "{path} appears {hits} times in the binary");
    }
    // The scan itself finds what is there: the binary's own name is in it.
    assert!(bytes.windows(8).any(|w| w == b"core-ops"));
}

#[test]
fn the_man_pages_are_titled_and_render() {
    let bundle = x86_64();
    let unpacked = unpack(&bundle.archive());
    let pages: Vec<PathBuf> = expected_entries("x86_64")
        .into_iter()
        .filter(|(name, _)| name.ends_with(".1"))
        .map(|(name, _)| unpacked.path().join(name))
        .collect();
    let date = &commit_time_utc()[..10];
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        // clap_mangen opens with roff's apostrophe preamble (.ie/.el), then the title.
        let title = text.lines().find(|l| !l.starts_with(".ie ") && !l.starts_with(".el ")).unwrap();
        assert!(title.starts_with(".TH "), "{}: {title}", page.display());
        assert!(title.contains(date), "{}: the title is dated from the commit: {title}", page.display());
    }
    if !tool_exists("groff", "--version") {
        common::skip("the_man_pages_are_titled_and_render", "groff is not installed: the pages were not rendered");
        return;
    }
    for page in &pages {
        let out = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(page).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if tool_exists("man", "--version") {
        let plan = unpacked.path().join("man/core-ops-plan.1");
        let rendered = run(Command::new("man").arg("-l").arg(&plan).env("MANPAGER", "cat").env("MANWIDTH", "80"));
        assert!(rendered.contains("core-ops-plan"), "{rendered}");
    }
}

#[test]
fn bash_loads_the_completion_for_core_ops() {
    let bundle = x86_64();
    let unpacked = unpack(&bundle.archive());
    let out = run(Command::new("bash")
        .args(["--norc", "-c", "source completions/core-ops.bash && complete -p core-ops"])
        .current_dir(unpacked.path()));
    assert!(out.trim_end().ends_with(" core-ops") && out.starts_with("complete "), "{out}");
}

#[test]
fn a_copy_at_another_path_built_in_another_target_dir_bundles_byte_identically() {
    let first = x86_64();
    let second = x86_64_from_copy();
    for name in ["core-ops-linux-x86_64.tar.gz", "SHA256SUMS", "core-ops-linux-x86_64"] {
        assert!(first.read(name) == second.read(name), "{name} differs between the two bundles");
    }
}

#[test]
fn source_date_epoch_from_the_environment_wins_over_the_commit_time() {
    let first = x86_64();
    let out = fresh_dir(&work_dir().join("out/epoch"));
    // 1234567890 is 2009-02-13 23:31:30 UTC. The build is cached from the first bundle.
    let output = run_bundle(repo(), X86_64, &work_dir(), &out, Some("1234567890"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let archive = out.join("core-ops-linux-x86_64.tar.gz");
    for (_, _, _, date, name) in tar_listing(&archive) {
        assert_eq!(date, "2009-02-13 23:31:30", "{name}");
    }
    let unpacked = unpack(&archive);
    let page = std::fs::read_to_string(unpacked.path().join("man/core-ops.1")).unwrap();
    assert!(page.contains("2009-02-13"), "{page}");
    assert!(std::fs::read(out.join("core-ops-linux-x86_64")).unwrap() == first.read("core-ops-linux-x86_64"));
}

#[test]
fn an_unsupported_target_is_refused_as_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_core-ops-release"))
        .args(["bundle", "--target", "x86_64-pc-windows-msvc", "--out", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a release target") && stderr.contains(X86_64), "{stderr}");
}

#[test]
fn a_two_architecture_release_has_one_sha256sums_for_all_four_artefacts() {
    let Some(bundle) = aarch64("a_two_architecture_release_has_one_sha256sums_for_all_four_artefacts") else {
        return;
    };
    let out = run(Command::new("sha256sum").args(["-c", "--strict", "SHA256SUMS"]).current_dir(&bundle.out));
    assert_eq!(
        out,
        "core-ops-linux-aarch64: OK\ncore-ops-linux-aarch64.tar.gz: OK\ncore-ops-linux-x86_64: OK\n\
         core-ops-linux-x86_64.tar.gz: OK\n"
    );
    let listing = tar_listing(&bundle.archive());
    let names: Vec<(String, &str)> =
        listing.iter().map(|(mode, _, _, _, name)| (name.clone(), mode.as_str())).collect();
    assert_eq!(names, expected_entries("aarch64"), "names, order and modes");
    let header = run(Command::new("readelf").arg("-hW").arg(bundle.binary()));
    assert!(header.contains("AArch64"), "{header}");
    let program = run(Command::new("readelf").arg("-lW").arg(bundle.binary()));
    assert!(!program.contains("INTERP"), "{program}");
}

/// Runs a binary (under `qemu-aarch64` when `emulate`) and returns (exit code, stdout).
fn answer(binary: &Path, emulate: bool, args: &[&str]) -> (Option<i32>, String) {
    let mut command = if emulate {
        let mut qemu = Command::new("qemu-aarch64");
        qemu.arg(binary);
        qemu
    } else {
        Command::new(binary)
    };
    let out = command.args(args).current_dir(repo()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_aarch64_binary_answers_under_qemu_as_the_x86_64_one_does() {
    let Some(arm) = aarch64("the_aarch64_binary_answers_under_qemu_as_the_x86_64_one_does") else {
        return;
    };
    let x86 = x86_64();
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap().to_string();
    // A case with a gzip-compressed payload: the compression runs on the emulated CPU too.
    let case = "tests/conformance/butane/003-inline-gzip-long/input.bu";
    let runs: [&[&str]; 3] = [
        &["--version"],
        &["render-ignition", case],
        &["plan", "--source-repo", "examples/01-caddy-whoami", "--host", "example", "--root", &root],
    ];
    for args in runs {
        let native = answer(&x86.binary(), false, args);
        let emulated = answer(&arm.binary(), true, args);
        assert!(!native.1.is_empty(), "{args:?} printed nothing natively");
        assert_eq!(emulated, native, "{args:?}: aarch64 under qemu vs x86_64");
    }
}
