//! The body shared by fragments and releases: `### <Kind>` headings of Keep a Changelog, `- `
//! entries under them, continuation lines indented by two spaces, and blank lines.
//!
//! Owns the six kinds, their order, and the rendering of entries grouped by kind. Pure: it
//! parses numbered lines handed to it and never reads a file.

use std::collections::BTreeMap;

use crate::problem::{Problem, did_you_mean};

/// The kinds of change Keep a Changelog names, in the order they are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Added,
    Changed,
    Deprecated,
    Removed,
    Fixed,
    Security,
}

/// Every kind, in rendering order.
pub const KINDS: [Kind; 6] = [Kind::Added, Kind::Changed, Kind::Deprecated, Kind::Removed, Kind::Fixed, Kind::Security];

/// The marker that opens a kind heading.
const HEADING_PREFIX: &str = "### ";
/// The marker that opens an entry.
const ENTRY_PREFIX: &str = "- ";
/// The indent of an entry's continuation lines.
const CONTINUATION_INDENT: &str = "  ";

impl Kind {
    /// The heading word (`Added`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Added => "Added",
            Kind::Changed => "Changed",
            Kind::Deprecated => "Deprecated",
            Kind::Removed => "Removed",
            Kind::Fixed => "Fixed",
            Kind::Security => "Security",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == name)
    }
}

/// One `- ` entry: its first line and its continuation lines, exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line of the `- `.
    pub line: usize,
    /// The entry's lines, the first starting with `- `.
    pub lines: Vec<String>,
}

/// A `### <Kind>` heading and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The kind.
    pub kind: Kind,
    /// The heading's line.
    pub line: usize,
    /// The entries, in their order.
    pub entries: Vec<Entry>,
}

/// What a body line is.
enum LineShape<'a> {
    Blank,
    Heading(&'a str),
    Entry,
    Continuation,
    Other,
}

fn shape(text: &str) -> LineShape<'_> {
    if text.trim().is_empty() {
        LineShape::Blank
    } else if let Some(name) = text.strip_prefix(HEADING_PREFIX) {
        LineShape::Heading(name.trim())
    } else if text.strip_prefix(ENTRY_PREFIX).is_some_and(|rest| !rest.trim().is_empty()) {
        LineShape::Entry
    } else if text.starts_with(CONTINUATION_INDENT) {
        LineShape::Continuation
    } else {
        LineShape::Other
    }
}

/// Where the parser stands.
#[derive(PartialEq, Eq)]
enum State {
    /// No heading yet.
    Start,
    /// Under the last section pushed; `in_entry` when the line before continues an entry.
    InSection { in_entry: bool },
    /// Under a heading that was refused: its lines are skipped until the next heading.
    Skipping,
}

/// Parses the body lines of `file` into sections, adding a located problem for every line that
/// does not fit (see the module header for the grammar).
pub fn parse_sections(file: &str, lines: &[(usize, &str)], problems: &mut Vec<Problem>) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut state = State::Start;
    let mut reported_text_before_heading = false;
    for &(line, text) in lines {
        match shape(text) {
            LineShape::Blank => {
                if let State::InSection { in_entry } = &mut state {
                    *in_entry = false;
                }
            }
            LineShape::Heading(name) => {
                check_has_entries(file, sections.last(), problems);
                state = match heading(file, line, name, &sections) {
                    Ok(kind) => {
                        sections.push(Section { kind, line, entries: Vec::new() });
                        State::InSection { in_entry: false }
                    }
                    Err(problem) => {
                        problems.push(problem);
                        State::Skipping
                    }
                };
            }
            _ if state == State::Skipping => {}
            _ if state == State::Start => {
                if !reported_text_before_heading {
                    problems.push(Problem::at(
                        file,
                        line,
                        format!("text before the first heading; start with a `### <Kind>` heading ({})", kind_list()),
                    ));
                    reported_text_before_heading = true;
                }
            }
            LineShape::Entry => {
                if let Some(section) = sections.last_mut() {
                    section.entries.push(Entry { line, lines: vec![text.to_string()] });
                }
                state = State::InSection { in_entry: true };
            }
            LineShape::Continuation if state == (State::InSection { in_entry: true }) => {
                if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                    entry.lines.push(text.to_string());
                }
            }
            LineShape::Continuation => problems.push(Problem::at(
                file,
                line,
                "an indented line that continues no entry; start an entry with `- `, or remove the blank line above it",
            )),
            LineShape::Other => problems.push(Problem::at(
                file,
                line,
                "unexpected line; only `### <Kind>` headings, `- ` entries, continuation lines indented by two \
                 spaces and blank lines belong here",
            )),
        }
    }
    if state != State::Skipping {
        check_has_entries(file, sections.last(), problems);
    }
    sections
}

/// The kind of a heading that may open a new section.
fn heading(file: &str, line: usize, name: &str, sections: &[Section]) -> Result<Kind, Problem> {
    let Some(kind) = Kind::from_name(name) else {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        let hint = did_you_mean(name, &names).map(|n| format!("did you mean `### {n}`? ")).unwrap_or_default();
        return Err(Problem::at(
            file,
            line,
            format!("unknown heading `### {name}`; {hint}the headings are {}", kind_list()),
        ));
    };
    match sections.iter().find(|s| s.kind == kind) {
        Some(first) => Err(Problem::at(
            file,
            line,
            format!("`### {name}` repeated (first at line {}); move its entries under the first one", first.line),
        )),
        None => Ok(kind),
    }
}

fn check_has_entries(file: &str, section: Option<&Section>, problems: &mut Vec<Problem>) {
    if let Some(section) = section.filter(|s| s.entries.is_empty()) {
        problems.push(Problem::at(
            file,
            section.line,
            format!("`### {}` has no entries; add `- ` entries under it or remove it", section.kind.name()),
        ));
    }
}

/// "Added, Changed, Deprecated, Removed, Fixed, Security".
pub fn kind_list() -> String {
    KINDS.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

/// Renders `heading` followed by the entries of `bodies` grouped by kind in [`KINDS`] order:
/// within a kind, bodies in the order given, entries in their order, text kept exactly; a blank
/// line before each `### <Kind>` heading.
pub fn render(heading: &str, bodies: &[&[Section]]) -> String {
    let mut by_kind: BTreeMap<Kind, Vec<&Entry>> = BTreeMap::new();
    for section in bodies.iter().flat_map(|b| b.iter()) {
        by_kind.entry(section.kind).or_default().extend(&section.entries);
    }
    let mut out = format!("{heading}\n");
    for (kind, entries) in by_kind {
        out.push_str(&format!("\n{HEADING_PREFIX}{}\n", kind.name()));
        for line in entries.iter().flat_map(|e| e.lines.iter()) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::numbered_lines;

    fn parse(text: &str) -> (Vec<Section>, Vec<String>) {
        let mut problems = Vec::new();
        let sections = parse_sections("f.md", &numbered_lines(text), &mut problems);
        (sections, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn kinds_render_in_keep_a_changelog_order() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]);
        let mut sorted = KINDS;
        sorted.sort();
        assert_eq!(sorted, KINDS, "the derived order is the rendering order");
    }

    #[test]
    fn parses_entries_and_continuations() {
        let (sections, problems) = parse("### Fixed\n- one\n  more of one\n\n- two\n### Added\n- three\n");
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(sections.len(), 2);
        assert_eq!((sections[0].kind, sections[0].line), (Kind::Fixed, 1));
        assert_eq!(sections[0].entries[0], Entry { line: 2, lines: vec!["- one".into(), "  more of one".into()] });
        assert_eq!(sections[0].entries[1], Entry { line: 5, lines: vec!["- two".into()] });
        assert_eq!((sections[1].kind, sections[1].entries[0].line), (Kind::Added, 7));
    }

    #[test]
    fn every_misfit_line_is_located() {
        let kinds = "Added, Changed, Deprecated, Removed, Fixed, Security";
        let cases: &[(&str, &str, &[String])] = &[
            ("text before a heading", "prose\n### Added\n- a\n", &[format!(
                "f.md:1: text before the first heading; start with a `### <Kind>` heading ({kinds})"
            )]),
            ("entry before a heading, reported once", "- a\n- b\n### Added\n- c\n", &[format!(
                "f.md:1: text before the first heading; start with a `### <Kind>` heading ({kinds})"
            )]),
            ("unknown heading with a suggestion", "### Fix\n- a\n", &[format!(
                "f.md:1: unknown heading `### Fix`; did you mean `### Fixed`? the headings are {kinds}"
            )]),
            ("unknown heading without one", "### Breaking\n- a\n### Added\n- b\n", &[format!(
                "f.md:1: unknown heading `### Breaking`; the headings are {kinds}"
            )]),
            ("heading without entries", "### Added\n\n### Fixed\n- a\n", &[
                "f.md:1: `### Added` has no entries; add `- ` entries under it or remove it".to_string(),
            ]),
            ("last heading without entries", "### Added\n- a\n### Fixed\n", &[
                "f.md:3: `### Fixed` has no entries; add `- ` entries under it or remove it".to_string(),
            ]),
            ("repeated heading", "### Added\n- a\n### Fixed\n- b\n### Added\n- c\n", &[
                "f.md:5: `### Added` repeated (first at line 1); move its entries under the first one".to_string(),
            ]),
            ("continuation after a blank line", "### Added\n- a\n\n  more\n", &[
                "f.md:4: an indented line that continues no entry; start an entry with `- `, or remove the blank line \
                 above it"
                    .to_string(),
            ]),
            ("a level-two heading", "### Added\n- a\n## [1.0.0]\n", &[
                "f.md:3: unexpected line; only `### <Kind>` headings, `- ` entries, continuation lines indented by two \
                 spaces and blank lines belong here"
                    .to_string(),
            ]),
            ("an empty entry", "### Added\n- a\n- \n", &[
                "f.md:3: unexpected line; only `### <Kind>` headings, `- ` entries, continuation lines indented by two \
                 spaces and blank lines belong here"
                    .to_string(),
            ]),
        ];
        for (label, text, want) in cases {
            assert_eq!(parse(text).1, *want, "{label}");
        }
    }

    #[test]
    fn renders_grouped_by_kind_in_order() {
        let (a, _) = parse("### Fixed\n- a fix\n  continued\n### Added\n- a feature\n");
        let (b, _) = parse("### Security\n- a hole closed\n### Added\n- another feature\n");
        let want = "## [Unreleased]\n\n### Added\n- a feature\n- another feature\n\n### Fixed\n- a fix\n  continued\n\n### \
                    Security\n- a hole closed\n";
        assert_eq!(render("## [Unreleased]", &[&a, &b]), want);
        assert_eq!(render("## [Unreleased]", &[]), "## [Unreleased]\n");
    }
}
