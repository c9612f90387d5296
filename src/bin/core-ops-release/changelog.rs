//! `CHANGELOG.md` in Keep a Changelog form: `# Changelog`, free introduction, an empty
//! `## [Unreleased]` as the first `## ` heading, then releases `## [x.y.z] - YYYY-MM-DD` newest
//! first with `### <Kind>` sections, and optionally link reference definitions at the end.
//!
//! Owns parsing that form and inserting a promoted release into it. Pure: text in, values or
//! text out; reading and writing the file is `repo`'s job.

use semver::Version;

use crate::date::Date;
use crate::problem::Problem;
use crate::sections::parse_sections;

/// The changelog's file name.
pub const CHANGELOG: &str = "CHANGELOG.md";
/// The first line.
const TITLE: &str = "# Changelog";
/// The heading of the block promote empties into a release.
pub const UNRELEASED_HEADING: &str = "## [Unreleased]";
/// The marker of a release (or `[Unreleased]`) heading.
const RELEASE_PREFIX: &str = "## ";

/// A released version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The version.
    pub version: Version,
    /// Its date.
    pub date: Date,
    /// The heading's 1-based line.
    pub line: usize,
}

/// A changelog that parsed cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    /// The releases, newest first.
    pub releases: Vec<Release>,
    /// Byte offset of the end of the `## [Unreleased]` line (after its line break, if any).
    unreleased_end: usize,
    /// Byte offset of what follows the blank lines under `## [Unreleased]` (a release heading,
    /// the link definitions, or the end of the text).
    rest_start: usize,
}

impl Changelog {
    /// The newest release, if any.
    pub fn newest(&self) -> Option<&Release> {
        self.releases.first()
    }
}

/// One line with its number and byte offsets.
struct Line<'a> {
    number: usize,
    start: usize,
    end_with_break: usize,
    text: &'a str,
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut start = 0;
    text.split_inclusive('\n')
        .enumerate()
        .map(|(index, raw)| {
            let line = Line {
                number: index + 1,
                start,
                end_with_break: start + raw.len(),
                text: raw.trim_end_matches('\n').trim_end_matches('\r'),
            };
            start += raw.len();
            line
        })
        .collect()
}

/// Whether `text` is a link reference definition: `[label]: destination`.
fn is_link_definition(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .is_some_and(|(label, destination)| !label.is_empty() && !destination.trim().is_empty())
}

/// Parses `text`; every problem is located in `CHANGELOG.md`.
pub fn parse_changelog(text: &str) -> Result<Changelog, Vec<Problem>> {
    let lines = split_lines(text);
    let mut problems = Vec::new();
    if lines.first().map(|l| l.text.trim_end()) != Some(TITLE) {
        problems.push(Problem::at(CHANGELOG, 1, format!("the first line must be `{TITLE}`")));
    }
    let links_start = link_definitions_start(&lines, &mut problems);
    let content = &lines[..links_start];
    let headings: Vec<usize> =
        content.iter().enumerate().filter(|(_, l)| l.text.starts_with(RELEASE_PREFIX)).map(|(i, _)| i).collect();
    let Some(&first) = headings.first().filter(|&&i| content[i].text.trim_end() == UNRELEASED_HEADING) else {
        let line = headings.first().map_or(lines.len().max(1), |&i| content[i].number);
        problems.push(Problem::at(
            CHANGELOG,
            line,
            format!("the first `## ` heading must be `{UNRELEASED_HEADING}`; add it above the releases"),
        ));
        return Err(problems);
    };
    let block_end = headings.get(1).copied().unwrap_or(content.len());
    if let Some(entry) = content[first + 1..block_end].iter().find(|l| !l.text.trim().is_empty()) {
        problems.push(Problem::at(
            CHANGELOG,
            entry.number,
            "entries under [Unreleased]; move them into a fragment in changes/",
        ));
    }
    let rest_start = lines.get(block_end).map_or(text.len(), |l| l.start);
    let mut releases = Vec::new();
    for (k, &heading) in headings.iter().enumerate().skip(1) {
        let body_end = headings.get(k + 1).copied().unwrap_or(content.len());
        let line = &content[heading];
        match parse_release_heading(line.text) {
            Ok((version, date)) => releases.push(Release { version, date, line: line.number }),
            Err(message) => problems.push(Problem::at(CHANGELOG, line.number, message)),
        }
        let body: Vec<(usize, &str)> = content[heading + 1..body_end].iter().map(|l| (l.number, l.text)).collect();
        parse_sections(CHANGELOG, &body, &mut problems);
    }
    check_order(&releases, &mut problems);
    let unreleased_end = content[first].end_with_break;
    if problems.is_empty() { Ok(Changelog { releases, unreleased_end, rest_start }) } else { Err(problems) }
}

/// Index of the first link definition after the first `## ` heading (the length when there is
/// none); whatever follows it must be link definitions or blank.
fn link_definitions_start(lines: &[Line<'_>], problems: &mut Vec<Problem>) -> usize {
    let after_headings = lines.iter().position(|l| l.text.starts_with(RELEASE_PREFIX)).unwrap_or(lines.len());
    let Some(start) =
        lines[after_headings..].iter().position(|l| is_link_definition(l.text)).map(|i| i + after_headings)
    else {
        return lines.len();
    };
    if let Some(stray) = lines[start..].iter().find(|l| !l.text.trim().is_empty() && !is_link_definition(l.text)) {
        problems.push(Problem::at(
            CHANGELOG,
            stray.number,
            format!(
                "only link reference definitions may follow the first one (line {}); move this line above them",
                lines[start].number
            ),
        ));
    }
    start
}

/// Parses `## [x.y.z] - YYYY-MM-DD`.
fn parse_release_heading(text: &str) -> Result<(Version, Date), String> {
    let shape = "a release heading reads `## [x.y.z] - YYYY-MM-DD`";
    if text.trim_end() == UNRELEASED_HEADING {
        return Err(format!("a second `{UNRELEASED_HEADING}`; keep only the first one"));
    }
    let (version, date) = text
        .trim_end()
        .strip_prefix("## [")
        .and_then(|rest| rest.split_once("] - "))
        .ok_or_else(|| format!("`{text}`: {shape}"))?;
    let version = Version::parse(version).map_err(|e| format!("`{version}` is not a SemVer version ({e}); {shape}"))?;
    if !version.pre.is_empty() || !version.build.is_empty() {
        return Err(format!("release `{version}` has a pre-release or build part; releases here are plain x.y.z"));
    }
    let date = date.parse::<Date>().map_err(|e| format!("{e}; {shape}"))?;
    Ok((version, date))
}

/// Releases go newest first: versions strictly decreasing, dates never increasing, no version twice.
fn check_order(releases: &[Release], problems: &mut Vec<Problem>) {
    for (k, release) in releases.iter().enumerate() {
        if let Some(first) = releases[..k].iter().find(|r| r.version == release.version) {
            problems.push(Problem::at(
                CHANGELOG,
                release.line,
                format!("release {} is listed twice (first at line {}); keep one", release.version, first.line),
            ));
            continue;
        }
        let Some(above) = k.checked_sub(1).map(|i| &releases[i]) else { continue };
        if release.version > above.version {
            problems.push(Problem::at(
                CHANGELOG,
                release.line,
                format!(
                    "release {} is below the older {} (line {}); releases go newest first: move it up",
                    release.version, above.version, above.line
                ),
            ));
        } else if release.date > above.date {
            problems.push(Problem::at(
                CHANGELOG,
                release.line,
                format!(
                    "release {} is dated {}, after {} above it (line {}, {}); newest first means dates never \
                     increase downwards: fix the date",
                    release.version, release.date, above.version, above.line, above.date
                ),
            ));
        }
    }
}

/// `text` with `release` (a rendered block starting with its `## ` heading and ending with a line
/// break) right under an empty `## [Unreleased]`, one blank line around it.
pub fn insert_release(text: &str, changelog: &Changelog, release: &str) -> String {
    let mut out = text[..changelog.unreleased_end].to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(release);
    let rest = &text[changelog.rest_start..];
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n";

    fn problems(text: &str) -> Vec<String> {
        parse_changelog(text).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_releases_newest_first() {
        let text = format!(
            "{HEAD}## [1.0.0] - 2026-11-25\n\n### Added\n- a\n  b\n\n## [0.9.1] - 2026-11-25\n\n### Fixed\n- c\n\n\
             [1.0.0]: https://example.org/1.0.0\n[0.9.1]: https://example.org/0.9.1\n"
        );
        let changelog = parse_changelog(&text).unwrap();
        let got: Vec<(String, String, usize)> =
            changelog.releases.iter().map(|r| (r.version.to_string(), r.date.to_string(), r.line)).collect();
        assert_eq!(got, [("1.0.0".into(), "2026-11-25".into(), 7), ("0.9.1".into(), "2026-11-25".into(), 13)]);
        assert_eq!(changelog.newest().map(|r| r.line), Some(7));
        assert!(parse_changelog("# Changelog\n\n## [Unreleased]\n").unwrap().releases.is_empty());
    }

    #[test]
    fn locates_every_problem() {
        let cases: &[(&str, String, &[&str])] = &[
            (
                "title",
                "# Changes\n\n## [Unreleased]\n".into(),
                &["CHANGELOG.md:1: the first line must be `# Changelog`"],
            ),
            (
                "no unreleased",
                "# Changelog\n\n## [1.0.0] - 2026-01-01\n\n### Added\n- a\n".into(),
                &["CHANGELOG.md:3: the first `## ` heading must be `## [Unreleased]`; add it above the releases"],
            ),
            (
                "no heading at all",
                "# Changelog\n\nIntro.\n".into(),
                &["CHANGELOG.md:3: the first `## ` heading must be `## [Unreleased]`; add it above the releases"],
            ),
            (
                "entries under unreleased",
                format!("{HEAD}### Added\n- a\n"),
                &["CHANGELOG.md:7: entries under [Unreleased]; move them into a fragment in changes/"],
            ),
            (
                "duplicate",
                format!("{HEAD}## [1.0.0] - 2026-02-01\n### Added\n- a\n## [1.0.0] - 2026-01-01\n### Added\n- b\n"),
                &["CHANGELOG.md:10: release 1.0.0 is listed twice (first at line 7); keep one"],
            ),
            (
                "versions out of order",
                format!("{HEAD}## [1.0.0] - 2026-02-01\n### Added\n- a\n## [1.1.0] - 2026-01-01\n### Added\n- b\n"),
                &[
                    "CHANGELOG.md:10: release 1.1.0 is below the older 1.0.0 (line 7); releases go newest first: move it up",
                ],
            ),
            (
                "dates out of order",
                format!("{HEAD}## [1.1.0] - 2026-01-01\n### Added\n- a\n## [1.0.0] - 2026-02-01\n### Added\n- b\n"),
                &[
                    "CHANGELOG.md:10: release 1.0.0 is dated 2026-02-01, after 1.1.0 above it (line 7, 2026-01-01); newest \
                 first means dates never increase downwards: fix the date",
                ],
            ),
            (
                "bad date",
                format!("{HEAD}## [1.0.0] - 2026-02-30\n### Added\n- a\n"),
                &[
                    "CHANGELOG.md:7: `2026-02-30` is not a calendar date written YYYY-MM-DD; a release heading reads `## \
                 [x.y.z] - YYYY-MM-DD`",
                ],
            ),
            (
                "bad version",
                format!("{HEAD}## [1.0] - 2026-02-03\n### Added\n- a\n"),
                &[
                    "CHANGELOG.md:7: `1.0` is not a SemVer version (unexpected end of input while parsing minor version \
                 number); a release heading reads `## [x.y.z] - YYYY-MM-DD`",
                ],
            ),
            (
                "pre-release",
                format!("{HEAD}## [1.0.0-rc.1] - 2026-02-03\n### Added\n- a\n"),
                &[
                    "CHANGELOG.md:7: release `1.0.0-rc.1` has a pre-release or build part; releases here are plain x.y.z",
                ],
            ),
            (
                "no date",
                format!("{HEAD}## [1.0.0]\n### Added\n- a\n"),
                &["CHANGELOG.md:7: `## [1.0.0]`: a release heading reads `## [x.y.z] - YYYY-MM-DD`"],
            ),
            (
                "second unreleased",
                format!("{HEAD}## [Unreleased]\n"),
                &["CHANGELOG.md:7: a second `## [Unreleased]`; keep only the first one"],
            ),
            (
                "unknown heading in a release",
                format!("{HEAD}## [1.0.0] - 2026-02-03\n### New\n- a\n"),
                &["CHANGELOG.md:8: unknown heading `### New`; the headings are Added, Changed, Deprecated, Removed, \
                 Fixed, Security"],
            ),
            (
                "text after the links",
                format!("{HEAD}## [1.0.0] - 2026-02-03\n### Added\n- a\n\n[1.0.0]: https://x\nmore\n"),
                &[
                    "CHANGELOG.md:12: only link reference definitions may follow the first one (line 11); move this line \
                 above them",
                ],
            ),
        ];
        for (label, text, want) in cases {
            assert_eq!(problems(text), *want, "{label}");
        }
    }

    #[test]
    fn inserts_a_release_under_unreleased() {
        let release = "## [1.1.0] - 2026-03-01\n\n### Added\n- new\n";
        let cases = [
            (
                "before older releases, extra blank lines dropped",
                format!("{HEAD}\n\n## [1.0.0] - 2026-02-03\n\n### Added\n- a\n"),
                "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n## [1.1.0] - 2026-03-01\n\n### Added\n- new\n\n## [1.0.0] - \
                 2026-02-03\n\n### Added\n- a\n",
            ),
            (
                "first release, no trailing line break",
                "# Changelog\n\n## [Unreleased]".to_string(),
                "# Changelog\n\n## [Unreleased]\n\n## [1.1.0] - 2026-03-01\n\n### Added\n- new\n",
            ),
            (
                "before link definitions",
                "# Changelog\n\n## [Unreleased]\n\n[0.1.0]: https://x\n".to_string(),
                "# Changelog\n\n## [Unreleased]\n\n## [1.1.0] - 2026-03-01\n\n### Added\n- new\n\n[0.1.0]: https://x\n",
            ),
        ];
        for (label, text, want) in cases {
            let changelog = parse_changelog(&text).unwrap();
            assert_eq!(insert_release(&text, &changelog, release), want, "{label}");
        }
    }
}
