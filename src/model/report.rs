//! Diagnostics: the user's mistakes, accumulated, located and rendered.
//!
//! A [`Report`] is a list of [`Diagnostic`]s, each with a severity, the JSON path of the
//! offending value and, once correlated with the source, its line and column. Host failures are
//! not diagnostics; they are `anyhow` errors in the effect layer.

use std::fmt;

use super::path::{Path, printable, printable_content};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The input is unusable.
    Error,
    /// The input works but is probably not what was meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

/// One located finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the document; `None` for document-level problems.
    pub path: Option<Path>,
    /// Where in the text, once known.
    pub mark: Option<Mark>,
    /// Length of the offending token in characters, for the caret line (0 when unknown).
    pub span: usize,
    /// What is wrong, in Butane's words where Butane has words for it.
    pub message: String,
    /// How to fix it, where Butane's words do not say: shown in the snippet form only, never in
    /// Butane's raw lines.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `path`.
    pub fn error(path: Path, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, Some(path), message)
    }

    /// A warning at `path`.
    pub fn warning(path: Path, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, Some(path), message)
    }

    /// A diagnostic with an optional path and no position yet.
    pub fn new(severity: Severity, path: Option<Path>, message: impl Into<String>) -> Self {
        Diagnostic { severity, path, mark: None, span: 0, message: message.into(), help: None }
    }

    /// The same diagnostic with a fix to suggest.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The same diagnostic at a known position.
    pub fn at(mut self, mark: Mark, span: usize) -> Self {
        self.mark = Some(mark);
        self.span = span;
        self
    }

    /// Butane's `--raw-errors` line: `error at $.a.b, line L col C: message`, [`printable`]
    /// (a key or value quoted in it cannot break it into more lines).
    pub fn raw_line(&self) -> String {
        printable(&self.unescaped_raw_line()).into_owned()
    }

    fn unescaped_raw_line(&self) -> String {
        let mut where_ = String::new();
        if let Some(path) = &self.path {
            where_.push_str(&path.to_string());
        }
        if let Some(mark) = self.mark {
            if !where_.is_empty() {
                where_.push_str(", ");
            }
            where_.push_str(&format!("line {} col {}", mark.line, mark.col));
        }
        if where_.is_empty() {
            format!("{}: {}", self.severity, self.message)
        } else {
            format!("{} at {}: {}", self.severity, where_, self.message)
        }
    }

    /// A rustc-like snippet: header, `--> file:line:col`, the source line, a caret and the
    /// fix (`= help: …`) when there is one; every part [`printable`] (the caret still under its
    /// column).
    pub fn snippet(&self, source_name: &str, source: &str) -> String {
        let help = self.help.as_deref().map(|h| format!("  = help: {}\n", printable(h))).unwrap_or_default();
        format!("{}{help}", self.located_snippet(source_name, source))
    }

    fn located_snippet(&self, source_name: &str, source: &str) -> String {
        let header = match &self.path {
            Some(path) => format!("{}[{}]: {}", self.severity, path, self.message),
            None => format!("{}: {}", self.severity, self.message),
        };
        let (header, source_name) = (printable(&header), printable(source_name));
        let Some(mark) = self.mark else {
            return format!("{header}\n  --> {source_name}\n");
        };
        let line_text = nth_line(source, mark.line.saturating_sub(1));
        let gutter = mark.line.to_string().len();
        let pad = " ".repeat(gutter);
        let indent: String = line_text
            .chars()
            .take(mark.col.saturating_sub(1))
            .map(|c| if c == '\t' { "\t".to_string() } else { " ".repeat(printable(&c.to_string()).chars().count()) })
            .collect();
        let line_text = printable_content(line_text);
        let carets = "^".repeat(self.span.max(1));
        format!(
            "{header}\n{pad}--> {source_name}:{}:{}\n{pad} |\n{} | {line_text}\n{pad} | {indent}{carets}\n",
            mark.line, mark.col, mark.line
        )
    }
}

/// Line `index` (from 0) of `source`, lines broken as YAML breaks them, where the marks count
/// them: at LF, CR LF or a lone CR.
fn nth_line(source: &str, index: usize) -> &str {
    let mut lines = source.split('\n').flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'));
    lines.nth(index).unwrap_or("")
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The diagnostics, in the order they were found.
    pub entries: Vec<Diagnostic>,
}

impl Report {
    /// Adds a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.entries.push(d);
    }

    /// Adds an error at `path`.
    pub fn error(&mut self, path: Path, message: impl Into<String>) {
        self.push(Diagnostic::error(path, message));
    }

    /// Adds a warning at `path`.
    pub fn warning(&mut self, path: Path, message: impl Into<String>) {
        self.push(Diagnostic::warning(path, message));
    }

    /// Appends every entry of `other`.
    pub fn merge(&mut self, other: Report) {
        self.entries.extend(other.entries);
    }

    /// Whether any entry is an error.
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether any entry is a warning.
    pub fn has_warnings(&self) -> bool {
        self.entries.iter().any(|d| d.severity == Severity::Warning)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_line_matches_butane_format() {
        let d = Diagnostic::error(Path::parse("$.storage.files.0.path"), "path not absolute")
            .at(Mark { line: 5, col: 13 }, 3);
        assert_eq!(d.raw_line(), "error at $.storage.files.0.path, line 5 col 13: path not absolute");
        let pathless = Diagnostic::new(Severity::Error, None, "bad json").at(Mark { line: 1, col: 1 }, 0);
        assert_eq!(pathless.raw_line(), "error at line 1 col 1: bad json");
    }

    #[test]
    fn snippet_points_at_the_value() {
        let src = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: etc/x\n";
        let d = Diagnostic::error(Path::parse("$.storage.files.0.path"), "path not absolute")
            .at(Mark { line: 5, col: 13 }, 5);
        let text = d.snippet("x.bu", src);
        assert!(text.contains("--> x.bu:5:13"), "{text}");
        assert!(text.contains("5 |     - path: etc/x"), "{text}");
        assert!(text.contains("  |             ^^^^^\n"), "{text}");
    }

    #[test]
    fn the_fix_follows_the_caret_in_snippets_and_never_appears_in_raw_lines() {
        let src = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /x\n      mode: \"0644\"\n";
        let d = Diagnostic::error(Path::parse("$.storage.files.0.mode"), "cannot unmarshal !!str `0644` into int")
            .at(Mark { line: 6, col: 13 }, 6)
            .with_help("write the mode unquoted in octal, e.g. `mode: 0644`");
        let text = d.snippet("x.bu", src);
        assert!(
            text.ends_with("  |             ^^^^^^\n  = help: write the mode unquoted in octal, e.g. `mode: 0644`\n"),
            "{text}"
        );
        assert_eq!(
            d.raw_line(),
            "error at $.storage.files.0.mode, line 6 col 13: cannot unmarshal !!str `0644` into int"
        );
    }

    #[test]
    fn snippets_and_raw_lines_show_control_characters_escaped() {
        let d = Diagnostic::error(Path::parse("$.storage.files.0.path"), "unused key \"\x1b[2K\n  - FAKE\"")
            .at(Mark { line: 1, col: 11 }, 3);
        let text = d.snippet("x\n.bu", "\x1b[2K\t- a: bad\n");
        assert!(!text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')), "{}", text.escape_debug());
        assert_eq!(text.lines().count(), 5, "no extra line:\n{text}");
        let caret_line = format!("  | {}\t{}^^^\n", " ".repeat("\\x1b[2K".len()), " ".repeat("- a: ".len()));
        assert!(text.contains(&format!("1 | \\x1b[2K\t- a: bad\n{caret_line}")), "caret under `bad`:\n{text}");
        assert!(!d.raw_line().chars().any(char::is_control), "{}", d.raw_line());
    }
}
