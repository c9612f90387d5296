//! The release gate end to end: `core-ops-release validate`, `changelog` and `promote` driven as
//! a maintainer runs them, on scratch checkouts (a `Cargo.toml`, a `CHANGELOG.md`, fragments in
//! `changes/`, and a script standing in for the `core-ops` binary), and `validate` on the
//! project itself.
//!
//! Every expected message, version and file text below is written by hand from the format in
//! docs/releasing.md, never produced by the tool under test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::RwLock;

/// Held for writing while a fake binary is written, for reading while a command runs: a process
/// forked while an executable is open for writing would make running it fail with ETXTBSY.
static SPAWNING: RwLock<()> = RwLock::new(());

/// The changelog most cases start from: newest release 1.4.2.
const CHANGELOG_1_4_2: &str = "# Changelog

Intro line.

## [Unreleased]

## [1.4.2] - 2026-03-10

### Fixed
- An older fix.

## [1.4.0] - 2026-02-01

### Added
- The first feature.
";

/// A changelog whose newest release is pre-1.0: 0.3.7 (heading on line 5).
const CHANGELOG_0_3_7: &str = "# Changelog

## [Unreleased]

## [0.3.7] - 2026-01-15

### Added
- Something.
";

/// A changelog without releases.
const CHANGELOG_EMPTY: &str = "# Changelog\n\n## [Unreleased]\n";

/// A fragment: its file name in `changes/` and its text.
type FragmentFile = (&'static str, &'static str);

const MAJOR: FragmentFile = (
    "big-change.md",
    "---
bump: major
---

### Removed
- The `--old` flag; use `--new`.

### Added
- `--new`, which replaces `--old`
  and takes a value.
",
);

const MINOR: FragmentFile = (
    "new-thing.md",
    "---
bump: minor
---

### Added
- A new thing.
### Fixed
- A thing that broke
  while adding it.
",
);

const PATCH: FragmentFile = (
    "small-fix.md",
    "---
bump: patch
---
### Fixed
- A small fix.

### Security
- A hole closed.
",
);

/// A scratch checkout.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A checkout with `Cargo.toml` at `version` (on line 3), `changelog` and `fragments`; and a
    /// fake `core-ops` reporting `version`.
    fn new(version: &str, changelog: &str, fragments: &[FragmentFile]) -> Scratch {
        let scratch = Scratch { dir: tempfile::tempdir().unwrap() };
        scratch.write(
            "Cargo.toml",
            &format!("[package]\nname = \"scratch\"\nversion = \"{version}\"\nedition = \"2024\"\n"),
        );
        scratch.write("CHANGELOG.md", changelog);
        for (name, text) in fragments {
            scratch.write(&format!("changes/{name}"), text);
        }
        scratch.fake_binary(&format!("core-ops {version} (fake, clean)"));
        scratch
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Replaces the fake `core-ops` with one whose `--version` prints `line`.
    fn fake_binary(&self, line: &str) {
        let _writing = SPAWNING.write().unwrap();
        let path = self.fake_binary_path();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn fake_binary_path(&self) -> PathBuf {
        self.path("fake/core-ops")
    }

    /// `core-ops-release --repo <scratch> <args> --binary <fake>` (no `--binary` for `changelog`).
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_core-ops-release"));
        command.arg("--repo").arg(self.dir.path()).args(args);
        if args.first() != Some(&"changelog") {
            command.arg("--binary").arg(self.fake_binary_path());
        }
        let _spawning = SPAWNING.read().unwrap();
        command.output().unwrap()
    }

    /// The file names left in `changes/`, sorted.
    fn changes(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path("changes"))
            .map(|entries| entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code and that standard error holds each of `lines` as a whole line.
fn assert_fails_with(output: &Output, code: i32, lines: &[&str], label: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{label}: exit code; stderr:\n{err}");
    for line in lines {
        assert!(err.lines().any(|l| l == *line), "{label}: stderr lacks\n  {line}\nstderr:\n{err}");
    }
}

#[test]
fn validate_passes_with_fragments_of_each_intent() {
    // 1.4.2 bumped by the highest intent, major: 2.0.0.
    let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[MAJOR, MINOR, PATCH]);
    let output = scratch.run(&["validate"]);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "validate: ok\n  Cargo.toml version 2.0.0 = 1.4.2 bumped by `major` (changes/big-change.md)\n  3 fragment(s) in \
         changes/, 2 release(s) in CHANGELOG.md\n  --version: core-ops 2.0.0 (fake, clean)\n"
    );
}

#[test]
fn the_version_must_be_the_newest_release_bumped_by_the_highest_intent() {
    /// The changelog's newest release and its line, when it has one.
    type Newest = Option<(&'static str, usize)>;
    // (label, changelog, newest, fragments, the version by hand)
    let cases: &[(&str, &str, Newest, &[FragmentFile], &str)] = &[
        ("1.x major", CHANGELOG_1_4_2, Some(("1.4.2", 7)), &[MAJOR, MINOR, PATCH], "2.0.0"),
        ("1.x minor", CHANGELOG_1_4_2, Some(("1.4.2", 7)), &[MINOR, PATCH], "1.5.0"),
        ("1.x patch", CHANGELOG_1_4_2, Some(("1.4.2", 7)), &[PATCH], "1.4.3"),
        ("0.x major bumps the minor number", CHANGELOG_0_3_7, Some(("0.3.7", 5)), &[MAJOR, PATCH], "0.4.0"),
        ("0.x minor", CHANGELOG_0_3_7, Some(("0.3.7", 5)), &[MINOR], "0.4.0"),
        ("0.x patch", CHANGELOG_0_3_7, Some(("0.3.7", 5)), &[PATCH], "0.3.8"),
        ("no release yet: base 0.0.0", CHANGELOG_EMPTY, None, &[MINOR, PATCH], "0.1.0"),
        ("no fragments: the newest release", CHANGELOG_1_4_2, Some(("1.4.2", 7)), &[], "1.4.2"),
    ];
    for (label, changelog, newest, fragments, want) in cases {
        let good = Scratch::new(want, changelog, fragments);
        let output = good.run(&["validate"]);
        assert_eq!(output.status.code(), Some(0), "{label}: {want} accepted; stderr:\n{}", stderr(&output));

        let wrong = "9.9.9";
        let bad = Scratch::new(wrong, changelog, fragments);
        let base = match newest {
            Some((version, line)) => format!("the newest release in CHANGELOG.md is {version} (line {line})"),
            None => "CHANGELOG.md has no release yet, so the base is 0.0.0".to_string(),
        };
        let highest = [(MAJOR, "major"), (MINOR, "minor"), (PATCH, "patch")]
            .into_iter()
            .find(|(fragment, _)| fragments.contains(fragment))
            .map(|((name, _), bump)| format!("{base} and the highest intent is `bump: {bump}` (changes/{name})"));
        let why = highest.unwrap_or_else(|| format!("changes/ holds no fragments and {base}"));
        let line = format!("Cargo.toml:3: version is {wrong}, expected {want}: {why}; set `version = \"{want}\"`");
        assert_fails_with(&bad.run(&["validate"]), 1, &[&line], label);
    }
}

#[test]
fn fragment_problems_are_located() {
    let kinds = "Added, Changed, Deprecated, Removed, Fixed, Security";
    let cases: &[(&str, &str, String)] = &[
        (
            "a missing bump",
            "---\n---\n\n### Added\n- x\n",
            "changes/broken.md:2: the front matter has no `bump`; add `bump: major`, `bump: minor` or `bump: patch` \
             above this line"
                .into(),
        ),
        (
            "an unknown heading",
            "---\nbump: patch\n---\n\n### Fixed\n- x\n\n### Fix\n- y\n",
            format!(
                "changes/broken.md:8: unknown heading `### Fix`; did you mean `### Fixed`? the headings are {kinds}"
            ),
        ),
        (
            "an unknown front-matter key",
            "---\nbump: minor\nrelease_intent: minor\n---\n\n### Added\n- x\n",
            "changes/broken.md:3: unknown front-matter key `release_intent`; the only key is `bump` (the change id is \
             the file name), remove this line"
                .into(),
        ),
        (
            "prose before the first heading",
            "---\nbump: minor\n---\n\nAdds a thing.\n",
            format!("changes/broken.md:5: text before the first heading; start with a `### <Kind>` heading ({kinds})"),
        ),
        (
            "a heading with no entries",
            "---\nbump: minor\n---\n\n### Added\n\n### Fixed\n- x\n",
            "changes/broken.md:5: `### Added` has no entries; add `- ` entries under it or remove it".into(),
        ),
    ];
    for (label, text, line) in cases {
        let scratch = Scratch::new("1.5.0", CHANGELOG_1_4_2, &[MINOR, ("broken.md", text)]);
        assert_fails_with(&scratch.run(&["validate"]), 1, &[line], &format!("validate: {label}"));
        assert_fails_with(&scratch.run(&["changelog"]), 1, &[line], &format!("changelog: {label}"));
    }
}

#[test]
fn changelog_problems_are_located() {
    let head = "# Changelog\n\n## [Unreleased]\n\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "entries under [Unreleased]",
            "# Changelog\n\n## [Unreleased]\n\n### Added\n- Written by hand.\n\n## [1.4.2] - 2026-03-10\n\n### Fixed\n- \
             x\n"
                .into(),
            "CHANGELOG.md:5: entries under [Unreleased]; move them into a fragment in changes/",
        ),
        (
            "a duplicate release",
            format!("{head}## [1.4.2] - 2026-03-10\n\n### Fixed\n- x\n\n## [1.4.2] - 2026-03-01\n\n### Fixed\n- y\n"),
            "CHANGELOG.md:10: release 1.4.2 is listed twice (first at line 5); keep one",
        ),
        (
            "versions out of order",
            format!("{head}## [1.4.2] - 2026-03-10\n\n### Fixed\n- x\n\n## [1.5.0] - 2026-03-01\n\n### Added\n- y\n"),
            "CHANGELOG.md:10: release 1.5.0 is below the older 1.4.2 (line 5); releases go newest first: move it up",
        ),
        (
            "dates out of order",
            format!("{head}## [1.4.2] - 2026-03-10\n\n### Fixed\n- x\n\n## [1.4.1] - 2026-04-01\n\n### Fixed\n- y\n"),
            "CHANGELOG.md:10: release 1.4.1 is dated 2026-04-01, after 1.4.2 above it (line 5, 2026-03-10); newest first \
             means dates never increase downwards: fix the date",
        ),
        (
            "a date that does not exist",
            format!("{head}## [1.4.2] - 2026-02-29\n\n### Fixed\n- x\n"),
            "CHANGELOG.md:5: `2026-02-29` is not a calendar date written YYYY-MM-DD; a release heading reads `## [x.y.z] \
             - YYYY-MM-DD`",
        ),
    ];
    for (label, changelog, line) in cases {
        let scratch = Scratch::new("1.4.3", changelog, &[PATCH]);
        assert_fails_with(&scratch.run(&["validate"]), 1, &[line], label);
    }
}

#[test]
fn a_binary_reporting_another_version_fails() {
    let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[MAJOR]);
    scratch.fake_binary("core-ops 1.4.2 (fake, clean)");
    let line = format!(
        "Cargo.toml:3: `{} --version` printed `core-ops 1.4.2 (fake, clean)`, not `core-ops 2.0.0 …`; rebuild it from \
         this checkout",
        scratch.fake_binary_path().display()
    );
    assert_fails_with(&scratch.run(&["validate"]), 1, &[&line], "stale binary");
}

#[test]
fn changelog_renders_the_fragments_grouped_by_kind() {
    let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[PATCH, MINOR, MAJOR]);
    let output = scratch.run(&["changelog"]);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{}", stderr(&output));
    // Kinds in Keep a Changelog's order; within one, fragments by file name
    // (big-change, new-thing, small-fix).
    assert_eq!(
        stdout(&output),
        "## [Unreleased]

### Added
- `--new`, which replaces `--old`
  and takes a value.
- A new thing.

### Removed
- The `--old` flag; use `--new`.

### Fixed
- A thing that broke
  while adding it.
- A small fix.

### Security
- A hole closed.
"
    );
    let empty = Scratch::new("1.4.2", CHANGELOG_1_4_2, &[]);
    assert_eq!(stdout(&empty.run(&["changelog"])), "## [Unreleased]\n", "no changes/ folder: no fragments");
}

/// `CHANGELOG_1_4_2` after promoting MAJOR, MINOR and PATCH on 2026-04-01.
const PROMOTED: &str = "# Changelog

Intro line.

## [Unreleased]

## [2.0.0] - 2026-04-01

### Added
- `--new`, which replaces `--old`
  and takes a value.
- A new thing.

### Removed
- The `--old` flag; use `--new`.

### Fixed
- A thing that broke
  while adding it.
- A small fix.

### Security
- A hole closed.

## [1.4.2] - 2026-03-10

### Fixed
- An older fix.

## [1.4.0] - 2026-02-01

### Added
- The first feature.
";

#[test]
fn promote_writes_the_release_and_removes_the_fragments_once() {
    let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[MAJOR, MINOR, PATCH]);
    scratch.write("changes/.keep", "");
    let mode_before = fs::metadata(scratch.path("CHANGELOG.md")).unwrap().permissions().mode();

    let first = scratch.run(&["promote", "--date", "2026-04-01"]);
    assert_eq!(first.status.code(), Some(0), "stderr:\n{}", stderr(&first));
    assert_eq!(
        stdout(&first),
        "promoted 3 fragment(s) into CHANGELOG.md as `## [2.0.0] - 2026-04-01`\nremoved changes/big-change.md\nremoved \
         changes/new-thing.md\nremoved changes/small-fix.md\n"
    );
    assert_eq!(scratch.read("CHANGELOG.md"), PROMOTED);
    assert_eq!(scratch.changes(), [".keep"], "the fragments are gone, other files stay");
    assert_eq!(fs::metadata(scratch.path("CHANGELOG.md")).unwrap().permissions().mode(), mode_before);
    let validate = scratch.run(&["validate"]);
    assert_eq!(validate.status.code(), Some(0), "the promoted checkout passes; stderr:\n{}", stderr(&validate));

    let second = scratch.run(&["promote", "--date", "2026-04-02"]);
    assert_eq!(second.status.code(), Some(0), "stderr:\n{}", stderr(&second));
    assert_eq!(stdout(&second), "nothing to promote: changes/ holds no fragments; CHANGELOG.md is unchanged\n");
    assert_eq!(scratch.read("CHANGELOG.md"), PROMOTED, "the second run changed nothing");
}

#[test]
fn promote_refuses_when_validate_fails_and_changes_nothing() {
    let refused =
        "promote refused (validate failed): nothing was changed; fix the problems above and run promote again";
    // (label, Cargo.toml version, fragments, the located problem)
    let cases: &[(&str, &str, &[FragmentFile], &str)] = &[
        (
            "a version that does not match",
            "1.5.0",
            &[MAJOR, PATCH],
            "Cargo.toml:3: version is 1.5.0, expected 2.0.0: the newest release in CHANGELOG.md is 1.4.2 (line 7) and \
             the highest intent is `bump: major` (changes/big-change.md); set `version = \"2.0.0\"`",
        ),
        (
            "a fragment without bump",
            "1.4.3",
            &[PATCH, ("no-bump.md", "---\n---\n### Fixed\n- x\n")],
            "changes/no-bump.md:2: the front matter has no `bump`; add `bump: major`, `bump: minor` or `bump: patch` \
             above this line",
        ),
    ];
    for (label, version, fragments, line) in cases {
        let scratch = Scratch::new(version, CHANGELOG_1_4_2, fragments);
        let before = scratch.changes();
        let output = scratch.run(&["promote", "--date", "2026-04-01"]);
        assert_fails_with(&output, 1, &[line, refused], label);
        assert_eq!(stdout(&output), "", "{label}: nothing reported as done");
        assert_eq!(scratch.read("CHANGELOG.md"), CHANGELOG_1_4_2, "{label}: CHANGELOG.md untouched");
        assert_eq!(scratch.changes(), before, "{label}: fragments kept");
    }
}

#[test]
fn promote_refuses_a_date_before_the_newest_release() {
    let scratch = Scratch::new("1.4.3", CHANGELOG_1_4_2, &[PATCH]);
    let output = scratch.run(&["promote", "--date", "2026-03-09"]);
    assert_fails_with(
        &output,
        1,
        &[
            "CHANGELOG.md:7: --date 2026-03-09 is before the newest release 1.4.2 (2026-03-10); releases go newest first: \
           pass a later --date",
        ],
        "early date",
    );
    assert_eq!(scratch.read("CHANGELOG.md"), CHANGELOG_1_4_2);
    assert_eq!(scratch.changes(), ["small-fix.md"]);
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new("1.4.3", CHANGELOG_1_4_2, &[PATCH]);
    for args in [&["promote", "--date", "2026-02-30"][..], &["promote", "--date", "today"], &["publish"]] {
        let output = scratch.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: stderr:\n{}", stderr(&output));
    }
    assert!(stderr(&scratch.run(&["promote", "--date", "2026-02-30"])).contains("`2026-02-30` is not a calendar date"));
    assert_eq!(scratch.read("CHANGELOG.md"), CHANGELOG_1_4_2);
}

#[test]
fn validate_builds_core_ops_with_cargo_into_cargo_target_dir() {
    // A scratch crate whose `core-ops` binary prints its package version (or, second round, a
    // fixed other one); no --binary, so validate builds it, in the CARGO_TARGET_DIR given.
    for (main, passes) in [
        (r#"println!("core-ops {} (scratch)", env!("CARGO_PKG_VERSION"))"#, true),
        (r#"println!("core-ops 0.0.1")"#, false),
    ] {
        let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[MAJOR]);
        scratch.write(
            "Cargo.toml",
            "[package]\nname = \"core-ops\"\nversion = \"2.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
        );
        scratch.write("src/main.rs", &format!("fn main() {{\n    {main};\n}}\n"));
        let target_dir = scratch.path("elsewhere");
        let output = Command::new(env!("CARGO_BIN_EXE_core-ops-release"))
            .args(["validate", "--repo"])
            .arg(scratch.dir.path())
            .env("CARGO_TARGET_DIR", &target_dir)
            .output()
            .unwrap();
        let built = target_dir.join("debug/core-ops");
        assert!(built.is_file(), "built into CARGO_TARGET_DIR; stderr:\n{}", stderr(&output));
        if passes {
            assert_eq!(output.status.code(), Some(0), "stderr:\n{}", stderr(&output));
            assert!(stdout(&output).ends_with("  --version: core-ops 2.0.0 (scratch)\n"), "{}", stdout(&output));
        } else {
            let line = format!(
                "Cargo.toml:3: `{} --version` printed `core-ops 0.0.1`, not `core-ops 2.0.0 …`; rebuild it from this \
                 checkout",
                built.display()
            );
            assert_fails_with(&output, 1, &[&line], "the built binary reports another version");
        }
    }
}

#[test]
fn validate_passes_on_the_project() {
    let output = Command::new(env!("CARGO_BIN_EXE_core-ops-release"))
        .args(["validate", "--repo", env!("CARGO_MANIFEST_DIR"), "--binary", env!("CARGO_BIN_EXE_core-ops")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(&output), stderr(&output));
    let version = env!("CARGO_PKG_VERSION");
    assert!(stdout(&output).contains(&format!("--version: core-ops {version} (")), "{}", stdout(&output));
}

/// The scratch checkouts hold what `Scratch::new` wrote, so the cases above test the tool and
/// not a broken fixture.
#[test]
fn scratch_fixtures_are_what_they_claim() {
    let scratch = Scratch::new("2.0.0", CHANGELOG_1_4_2, &[MAJOR]);
    assert_eq!(scratch.read("Cargo.toml").lines().nth(2), Some("version = \"2.0.0\""));
    assert_eq!(CHANGELOG_1_4_2.lines().nth(6), Some("## [1.4.2] - 2026-03-10"), "line 7");
    assert_eq!(CHANGELOG_0_3_7.lines().nth(4), Some("## [0.3.7] - 2026-01-15"), "line 5");
    let fake = Command::new(scratch.fake_binary_path()).arg("--version").output().unwrap();
    assert_eq!(stdout(&fake), "core-ops 2.0.0 (fake, clean)\n");
    assert!(Path::new(env!("CARGO_BIN_EXE_core-ops")).is_file());
}
