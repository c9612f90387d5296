//! Source repositories: the `hosts/` + `services/` + `butane/` layout, read from an in-memory
//! file tree, composed into one Ignition-shaped config per host with an origin for every entry.
//! This module holds what the parts share: located issues (errors, warnings, `-v` notes), the
//! names the loader skips (hidden names, editor leftovers) and near misses of layout names.
//! - [`tree`] — the in-memory file tree and its files-directory views.
//! - [`layout`] — the layout rules: what may stand where, `host.yaml`, `service.yaml`.
//! - [`compose`] — fragments, services and the host layer composed into one config.

pub mod compose;
pub mod layout;
pub mod tree;

use std::fmt;

use crate::model::report::{Diagnostic, Mark};
use crate::model::spelling;

/// How much an issue matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The repository cannot be used.
    Error,
    /// Worth knowing; the repository is used.
    Warning,
    /// Shown only under `-v`: something the loader skipped.
    Note,
}

/// One mistake in a source repository (or a note about it), located in a file (and a line where
/// there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIssue {
    /// Repository-relative path of the file (or folder) at fault.
    pub file: String,
    /// Where in the file, when known.
    pub mark: Option<Mark>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// Error, warning or note.
    pub severity: Severity,
}

impl SourceIssue {
    /// An error about `file`.
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        SourceIssue { file: file.into(), mark: None, message: message.into(), severity: Severity::Error }
    }

    /// A note about `file`, shown under `-v`.
    pub fn note(file: impl Into<String>, message: impl Into<String>) -> Self {
        SourceIssue { severity: Severity::Note, ..SourceIssue::error(file, message) }
    }

    /// The same issue at a position.
    pub fn at(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }

    /// A Butane diagnostic found in `file`.
    pub fn from_diagnostic(file: &str, d: &Diagnostic) -> Self {
        let located = match &d.path {
            Some(path) => format!("{} (at {path})", d.message),
            None => d.message.clone(),
        };
        let message = match &d.help {
            Some(help) => format!("{located}; {help}"),
            None => located,
        };
        let severity =
            if d.severity == crate::model::report::Severity::Warning { Severity::Warning } else { Severity::Error };
        SourceIssue { file: file.to_string(), mark: d.mark, message, severity }
    }
}

impl fmt::Display for SourceIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        match self.mark {
            Some(m) => write!(f, "{severity}: {}:{}:{}: {}", self.file, m.line, m.col, self.message),
            None => write!(f, "{severity}: {}: {}", self.file, self.message),
        }
    }
}

/// Whether `name` is a valid identifier: `^[A-Za-z0-9][A-Za-z0-9._-]*$`.
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether the loader skips this name without a word: hidden names (`_…` and `.…`, which
/// covers `.git/`, `.github/` and Emacs's `.#…` locks) and editor leftovers.
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.') || is_editor_leftover(name)
}

/// Backup, swap and auto-save files of editors (`…~`, `….swp`, `….swo`, `#…#`): never deployed.
pub fn is_editor_leftover(name: &str) -> bool {
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
}

/// The candidate `name` is one slip away from (one edit, or a difference of case only): close
/// enough that a file of that name is taken for a typo rather than for a file of its own. (A
/// "did you mean" for a name that is wrong anyway reaches further: [`spelling::closest`].)
pub fn near_miss<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates.into_iter().find(|c| *c != name && spelling::distance(&lower, &c.to_lowercase()) <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for (name, ok) in [
            ("caddy", true),
            ("web-1.example", true),
            ("9x", true),
            ("-x", false),
            ("a b", false),
            ("", false),
            ("a/b", false),
        ] {
            assert_eq!(is_identifier(name), ok, "case {name:?}");
        }
    }

    #[test]
    fn editor_leftovers_and_hidden_names_are_ignored() {
        for (name, ignored) in [
            ("site.conf~", true),
            (".site.conf.swp", true),
            ("site.conf.swp", true),
            ("site.conf.swo", true),
            (".#site.conf", true),
            ("#site.conf#", true),
            ("_notes", true),
            (".github", true),
            ("#", false),
            ("site.conf", false),
            ("swp", false),
        ] {
            assert_eq!(is_ignored(name), ignored, "case {name:?}");
        }
    }

    #[test]
    fn near_misses_are_one_slip_away() {
        assert_eq!(near_miss("service.yml", ["service.yaml"]), Some("service.yaml"));
        assert_eq!(near_miss("Host.yaml", ["host.yaml"]), Some("host.yaml"));
        assert_eq!(near_miss("host.sh", ["host.yaml", "host.bu"]), None, "two edits from host.bu");
        assert_eq!(near_miss("README.md", ["service.yaml"]), None);
        assert_eq!(near_miss("devices", ["services"]), None);
    }
}
