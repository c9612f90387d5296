//! The release gate's file checks: every fragment parses, `CHANGELOG.md` parses, and the
//! `Cargo.toml` version is the newest release bumped by the highest intent among the fragments.
//!
//! Pure: it judges the texts `repo` read and returns what it found. The check of a built
//! binary's `--version` is `binary`'s, since it runs a process.

use semver::Version;

use crate::changelog::{CHANGELOG, Changelog, parse_changelog};
use crate::fragment::{Fragment, parse_fragment};
use crate::problem::Problem;
use crate::repo::FragmentFile;
use crate::version::{Bump, CARGO_TOML, PackageVersion, bumped, package_version};

/// The base version when `CHANGELOG.md` has no release yet.
pub const NO_RELEASE_BASE: Version = Version::new(0, 0, 0);

/// The texts the gate judges, or the problems met reading them.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `Cargo.toml`.
    pub cargo_toml: Result<String, Problem>,
    /// `CHANGELOG.md`.
    pub changelog: Result<String, Problem>,
    /// The fragments in `changes/`, sorted by file name.
    pub fragments: Result<Vec<FragmentFile>, Vec<Problem>>,
}

/// What the version must be, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The newest release (0.0.0 when there is none).
    pub base: Version,
    /// The highest intent among the fragments, when there are fragments.
    pub bump: Option<Bump>,
    /// The fragments that carry it.
    pub carriers: Vec<String>,
    /// `base` bumped by `bump` (`base` itself without fragments).
    pub expected: Version,
}

/// The gate's findings.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Every problem, in file order: fragments, `CHANGELOG.md`, `Cargo.toml`.
    pub problems: Vec<Problem>,
    /// The fragments, when all of them parsed.
    pub fragments: Option<Vec<(FragmentFile, Fragment)>>,
    /// The changelog, when it parsed.
    pub changelog: Option<Changelog>,
    /// The `Cargo.toml` version, when it parsed.
    pub version: Option<PackageVersion>,
    /// The version rule, when the fragments and the changelog parsed.
    pub intent: Option<Intent>,
}

/// Parses every fragment; all of them, or the problems of those that failed.
pub fn parse_fragments(files: Vec<FragmentFile>) -> Result<Vec<(FragmentFile, Fragment)>, Vec<Problem>> {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match parse_fragment(&file.name, &file.text) {
            Ok(fragment) => parsed.push((file, fragment)),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() { Ok(parsed) } else { Err(problems) }
}

/// Runs every file check on `sources`.
pub fn check(sources: Sources) -> Findings {
    let mut findings = Findings::default();
    match sources.fragments.and_then(parse_fragments) {
        Ok(fragments) => findings.fragments = Some(fragments),
        Err(mut problems) => findings.problems.append(&mut problems),
    }
    match sources.changelog.map_err(|p| vec![p]).and_then(|text| parse_changelog(&text)) {
        Ok(changelog) => findings.changelog = Some(changelog),
        Err(mut problems) => findings.problems.append(&mut problems),
    }
    match sources.cargo_toml.and_then(|text| package_version(&text)) {
        Ok(version) => findings.version = Some(version),
        Err(problem) => findings.problems.push(problem),
    }
    if let (Some(fragments), Some(changelog)) = (&findings.fragments, &findings.changelog) {
        let fragments: Vec<&Fragment> = fragments.iter().map(|(_, f)| f).collect();
        findings.intent = Some(intent(changelog, &fragments));
    }
    if let (Some(version), Some(intent)) = (&findings.version, &findings.intent) {
        findings.problems.extend(check_version(version, intent, findings.changelog.as_ref()));
    }
    findings
}

/// The version rule applied to `changelog`'s newest release and the `fragments`' intents.
pub fn intent(changelog: &Changelog, fragments: &[&Fragment]) -> Intent {
    let base = changelog.newest().map_or(NO_RELEASE_BASE, |r| r.version.clone());
    let bump = fragments.iter().map(|f| f.bump).max();
    let carriers = fragments.iter().filter(|f| Some(f.bump) == bump).map(|f| f.file.clone()).collect();
    let expected = bump.map_or_else(|| base.clone(), |b| bumped(&base, b));
    Intent { base, bump, carriers, expected }
}

/// A problem at `Cargo.toml`'s version line when it is not the version `intent` expects.
fn check_version(version: &PackageVersion, intent: &Intent, changelog: Option<&Changelog>) -> Option<Problem> {
    if version.version == intent.expected {
        return None;
    }
    let base = match changelog.and_then(Changelog::newest) {
        Some(newest) => format!("the newest release in {CHANGELOG} is {} (line {})", newest.version, newest.line),
        None => format!("{CHANGELOG} has no release yet, so the base is {NO_RELEASE_BASE}"),
    };
    let why = match intent.bump {
        Some(bump) => {
            format!("{base} and the highest intent is `bump: {}` ({})", bump.name(), intent.carriers.join(", "))
        }
        None => format!("changes/ holds no fragments and {base}"),
    };
    Some(Problem::at(
        CARGO_TOML,
        version.line,
        format!(
            "version is {}, expected {}: {why}; set `version = \"{}\"`",
            version.version, intent.expected, intent.expected
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "[package]\nname = \"x\"\nversion = \"VERSION\"\n";
    const CHANGELOG_1_4_2: &str = "# Changelog\n\n## [Unreleased]\n\n## [1.4.2] - 2026-01-02\n\n### Added\n- a\n";

    fn fragment(name: &str, bump: &str) -> FragmentFile {
        FragmentFile { name: name.into(), text: format!("---\nbump: {bump}\n---\n\n### Fixed\n- x\n") }
    }

    fn sources(version: &str, changelog: &str, fragments: Vec<FragmentFile>) -> Sources {
        Sources {
            cargo_toml: Ok(CARGO.replace("VERSION", version)),
            changelog: Ok(changelog.into()),
            fragments: Ok(fragments),
        }
    }

    fn problems(findings: &Findings) -> Vec<String> {
        findings.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn expects_the_newest_release_bumped_by_the_highest_intent() {
        let findings =
            check(sources("2.0.0", CHANGELOG_1_4_2, vec![fragment("a.md", "patch"), fragment("b.md", "major")]));
        assert_eq!(problems(&findings), Vec::<String>::new());
        let intent = findings.intent.unwrap();
        assert_eq!((intent.bump, intent.carriers), (Some(Bump::Major), vec!["changes/b.md".to_string()]));
    }

    #[test]
    fn names_the_line_the_release_and_the_carriers() {
        let findings = check(sources(
            "1.4.3",
            CHANGELOG_1_4_2,
            vec![fragment("a.md", "minor"), fragment("b.md", "patch"), fragment("c.md", "minor")],
        ));
        assert_eq!(
            problems(&findings),
            [
                "Cargo.toml:3: version is 1.4.3, expected 1.5.0: the newest release in CHANGELOG.md is 1.4.2 (line 5) and the \
             highest intent is `bump: minor` (changes/a.md, changes/c.md); set `version = \"1.5.0\"`"
            ]
        );
    }

    #[test]
    fn without_fragments_or_releases() {
        let findings = check(sources("1.5.0", CHANGELOG_1_4_2, vec![]));
        assert_eq!(
            problems(&findings),
            ["Cargo.toml:3: version is 1.5.0, expected 1.4.2: changes/ holds no fragments and the newest release in \
             CHANGELOG.md is 1.4.2 (line 5); set `version = \"1.4.2\"`"]
        );
        let findings = check(sources("0.2.0", "# Changelog\n\n## [Unreleased]\n", vec![fragment("a.md", "minor")]));
        assert_eq!(
            problems(&findings),
            [
                "Cargo.toml:3: version is 0.2.0, expected 0.1.0: CHANGELOG.md has no release yet, so the base is 0.0.0 and \
             the highest intent is `bump: minor` (changes/a.md); set `version = \"0.1.0\"`"
            ]
        );
    }

    #[test]
    fn reports_problems_of_every_file_together() {
        let bad = sources("1.2", "# Changes\n\n## [Unreleased]\n", vec![fragment("a.md", "huge")]);
        let findings = check(bad);
        assert_eq!(
            problems(&findings),
            [
                "changes/a.md:2: `bump: huge` is not an intent; write major, minor or patch",
                "CHANGELOG.md:1: the first line must be `# Changelog`",
                "Cargo.toml:3: version `1.2` is not valid SemVer (unexpected end of input while parsing minor version \
             number); write it as x.y.z",
            ]
        );
        assert!(findings.intent.is_none(), "no version rule on files that did not parse");
    }
}
