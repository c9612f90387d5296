//! Source repositories: the `hosts/` + `services/` + `butane/` layout, read from an in-memory
//! file tree, composed into one Ignition-shaped config per host with an origin for every entry.
//! - [`tree`] — the in-memory file tree and its files-directory views.
//! - [`layout`] — the layout rules: what may stand where, `host.yaml`, `service.yaml`.
//! - [`compose`] — fragments, services and the host layer composed into one config.

pub mod compose;
pub mod layout;
pub mod tree;

use std::fmt;

use crate::model::report::{Diagnostic, Mark};

/// One mistake in a source repository, located in a file (and a line where there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIssue {
    /// Repository-relative path of the file (or folder) at fault.
    pub file: String,
    /// Where in the file, when known.
    pub mark: Option<Mark>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// Whether this is only a warning.
    pub warning: bool,
}

impl SourceIssue {
    /// An error about `file`.
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        SourceIssue { file: file.into(), mark: None, message: message.into(), warning: false }
    }

    /// The same issue at a position.
    pub fn at(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }

    /// A Butane diagnostic found in `file`.
    pub fn from_diagnostic(file: &str, d: &Diagnostic) -> Self {
        let message = match &d.path {
            Some(path) => format!("{} (at {path})", d.message),
            None => d.message.clone(),
        };
        SourceIssue {
            file: file.to_string(),
            mark: d.mark,
            message,
            warning: d.severity == crate::model::report::Severity::Warning,
        }
    }
}

impl fmt::Display for SourceIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = if self.warning { "warning" } else { "error" };
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

/// Whether the loader skips this name (`_…` and `.…`).
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
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
}
