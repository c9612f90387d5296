//! Change fragments: `changes/<change-id>.md`, a front matter that carries the SemVer intent
//! (`bump: major|minor|patch`), then the change's entries under Keep a Changelog headings.
//!
//! Owns the fragment format (documented in `docs/releasing.md`). Pure: it parses a file's name
//! and text; finding and reading the files is `repo`'s job.

use crate::problem::{Problem, did_you_mean, numbered_lines};
use crate::sections::{Section, kind_list, parse_sections};
use crate::version::{BUMP_NAMES, Bump};

/// The folder that holds the fragments.
pub const CHANGES_DIR: &str = "changes";
/// The extension of a fragment's file name.
pub const FRAGMENT_EXTENSION: &str = "md";
/// The line that opens and closes the front matter.
const FRONT_MATTER_FENCE: &str = "---";
/// The one front-matter key.
const BUMP_KEY: &str = "bump";

/// A parsed fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// `changes/<change-id>.md`.
    pub file: String,
    /// The SemVer intent.
    pub bump: Bump,
    /// The entries, by heading.
    pub sections: Vec<Section>,
}

/// The path of fragment `file_name` as messages name it.
pub fn fragment_path(file_name: &str) -> String {
    format!("{CHANGES_DIR}/{file_name}")
}

/// Parses the fragment `file_name` (`<change-id>.md`) holding `text`; every problem is located.
pub fn parse_fragment(file_name: &str, text: &str) -> Result<Fragment, Vec<Problem>> {
    let file = fragment_path(file_name);
    let lines = numbered_lines(text);
    let mut problems = Vec::new();
    if let Some(problem) = check_change_id(&file, file_name) {
        problems.push(problem);
    }
    let (bump, body) = match front_matter(&file, &lines) {
        Ok(parsed) => parsed,
        Err(mut front) => {
            problems.append(&mut front);
            return Err(problems);
        }
    };
    let sections = parse_sections(&file, body, &mut problems);
    if sections.is_empty() && problems.is_empty() {
        let line = body.first().map_or(lines.len(), |(n, _)| *n);
        problems.push(Problem::at(
            &file,
            line,
            format!("the fragment has no entries; add a `### <Kind>` heading ({}) with `- ` entries", kind_list()),
        ));
    }
    match (bump, problems.is_empty()) {
        (Some(bump), true) => Ok(Fragment { file, bump, sections }),
        _ => Err(problems),
    }
}

/// A change id is lowercase letters, digits and `-`, starting with a letter or digit.
fn is_change_id(id: &str) -> bool {
    let first_ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_change_id(file: &str, file_name: &str) -> Option<Problem> {
    let id = file_name.strip_suffix(".md").unwrap_or(file_name);
    (!is_change_id(id)).then(|| {
        Problem::at(
            file,
            1,
            format!(
                "`{id}` is not a change id (lowercase letters, digits and `-`, starting with a letter or digit); \
                 rename the file"
            ),
        )
    })
}

/// The front matter's `bump` (`None` when it is missing, with a problem added) and the body
/// lines after it; `Err` when the front matter cannot be delimited or has problems.
type FrontMatter<'l, 't> = (Option<Bump>, &'l [(usize, &'t str)]);

fn front_matter<'l, 't>(file: &str, lines: &'l [(usize, &'t str)]) -> Result<FrontMatter<'l, 't>, Vec<Problem>> {
    let shape_hint = "a fragment starts with front matter: a `---` line, `bump: major|minor|patch`, a `---` line";
    if lines.first().map(|(_, text)| text.trim_end()) != Some(FRONT_MATTER_FENCE) {
        return Err(vec![Problem::at(file, 1, shape_hint)]);
    }
    let Some(close) = lines.iter().skip(1).position(|(_, text)| text.trim_end() == FRONT_MATTER_FENCE).map(|i| i + 1)
    else {
        let last = lines.last().map_or(1, |(n, _)| *n);
        return Err(vec![Problem::at(file, last, format!("the front matter is not closed; {shape_hint}"))]);
    };
    let mut problems = Vec::new();
    let mut bump: Option<(Bump, usize)> = None;
    for &(line, text) in &lines[1..close] {
        if text.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = text.split_once(':') else {
            problems.push(Problem::at(file, line, "expected `key: value` in the front matter; write `bump: minor`"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key != BUMP_KEY {
            problems.push(Problem::at(
                file,
                line,
                format!(
                    "unknown front-matter key `{key}`; the only key is `bump` (the change id is the file name), \
                     remove this line"
                ),
            ));
        } else if let Some((_, first)) = bump {
            problems.push(Problem::at(file, line, format!("`bump` given twice (first at line {first}); keep one")));
        } else {
            match Bump::parse(value) {
                Some(parsed) => bump = Some((parsed, line)),
                None => problems.push(bad_bump(file, line, value)),
            }
        }
    }
    let has_bump_line =
        lines[1..close].iter().any(|(_, t)| t.split_once(':').is_some_and(|(k, _)| k.trim() == BUMP_KEY));
    if !has_bump_line {
        problems.push(Problem::at(
            file,
            lines[close].0,
            "the front matter has no `bump`; add `bump: major`, `bump: minor` or `bump: patch` above this line",
        ));
    }
    if problems.is_empty() { Ok((bump.map(|(b, _)| b), &lines[close + 1..])) } else { Err(problems) }
}

fn bad_bump(file: &str, line: usize, value: &str) -> Problem {
    let hint = did_you_mean(value, &BUMP_NAMES).map(|n| format!("did you mean `{n}`? ")).unwrap_or_default();
    Problem::at(file, line, format!("`bump: {value}` is not an intent; {hint}write major, minor or patch"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::Kind;

    fn problems(name: &str, text: &str) -> Vec<String> {
        parse_fragment(name, text).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_a_fragment() {
        let text = "---\nbump: patch\n---\n\n### Fixed\n- A fix,\n  explained.\n";
        let fragment = parse_fragment("a-fix.md", text).unwrap();
        assert_eq!((fragment.file.as_str(), fragment.bump), ("changes/a-fix.md", Bump::Patch));
        assert_eq!(fragment.sections.len(), 1);
        assert_eq!(fragment.sections[0].kind, Kind::Fixed);
        assert_eq!(fragment.sections[0].entries[0].lines, ["- A fix,", "  explained."]);
    }

    #[test]
    fn locates_every_front_matter_problem() {
        let body = "\n### Added\n- a\n";
        let cases: &[(&str, &str, String, &[&str])] = &[
            (
                "no front matter",
                "ok.md",
                body.to_string(),
                &[
                    "changes/ok.md:1: a fragment starts with front matter: a `---` line, `bump: major|minor|patch`, a `---` \
                 line",
                ],
            ),
            (
                "not closed",
                "ok.md",
                "---\nbump: minor\n".to_string(),
                &[
                    "changes/ok.md:2: the front matter is not closed; a fragment starts with front matter: a `---` line, \
                 `bump: major|minor|patch`, a `---` line",
                ],
            ),
            (
                "missing bump",
                "ok.md",
                format!("---\n---{body}"),
                &[
                    "changes/ok.md:2: the front matter has no `bump`; add `bump: major`, `bump: minor` or `bump: patch` \
                 above this line",
                ],
            ),
            (
                "unknown key",
                "ok.md",
                format!("---\nbump: minor\nsummary: x\n---{body}"),
                &[
                    "changes/ok.md:3: unknown front-matter key `summary`; the only key is `bump` (the change id is the file \
                 name), remove this line",
                ],
            ),
            (
                "bad intent",
                "ok.md",
                format!("---\nbump: minr\n---{body}"),
                &["changes/ok.md:2: `bump: minr` is not an intent; did you mean `minor`? write major, minor or patch"],
            ),
            (
                "twice",
                "ok.md",
                format!("---\nbump: minor\nbump: patch\n---{body}"),
                &["changes/ok.md:3: `bump` given twice (first at line 2); keep one"],
            ),
            (
                "not key: value",
                "ok.md",
                format!("---\nbump minor\n---{body}"),
                &[
                    "changes/ok.md:2: expected `key: value` in the front matter; write `bump: minor`",
                    "changes/ok.md:3: the front matter has no `bump`; add `bump: major`, `bump: minor` or `bump: patch` \
                 above this line",
                ],
            ),
            (
                "bad change id",
                "Big_Fix.md",
                format!("---\nbump: minor\n---{body}"),
                &[
                    "changes/Big_Fix.md:1: `Big_Fix` is not a change id (lowercase letters, digits and `-`, starting with a \
                 letter or digit); rename the file",
                ],
            ),
            (
                "no entries",
                "ok.md",
                "---\nbump: minor\n---\n\n".to_string(),
                &[
                    "changes/ok.md:4: the fragment has no entries; add a `### <Kind>` heading (Added, Changed, Deprecated, \
                 Removed, Fixed, Security) with `- ` entries",
                ],
            ),
            (
                "body problems are located in the file",
                "ok.md",
                "---\nbump: minor\n---\nSome prose.\n".to_string(),
                &[
                    "changes/ok.md:4: text before the first heading; start with a `### <Kind>` heading (Added, Changed, \
                 Deprecated, Removed, Fixed, Security)",
                ],
            ),
        ];
        for (label, name, text, want) in cases {
            assert_eq!(problems(name, text), *want, "{label}");
        }
    }

    #[test]
    fn change_ids() {
        for (id, ok) in
            [("a", true), ("fix-2", true), ("2fa", true), ("-x", false), ("A", false), ("a_b", false), ("", false)]
        {
            assert_eq!(is_change_id(id), ok, "{id:?}");
        }
    }
}
