//! Render outcomes: each render is classified by the pipeline stage it ended at, and every
//! diagnostic it produced must point inside the document.

use std::panic::{AssertUnwindSafe, catch_unwind};

use core_ops::model::butane::files::FilesDir;
use core_ops::model::butane::{self, Failure};
use core_ops::model::path::{Path, Seg};
use core_ops::model::report::{Diagnostic, Severity};

/// How a render ended, in pipeline order: an input with several faults ends at the earliest
/// stage that catches one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The YAML did not parse.
    Yaml,
    /// No translator for the variant and version.
    Select,
    /// A value of the wrong type.
    Types,
    /// Source, translation or generated-config validation failed.
    Invalid,
    /// Rendered, with warnings.
    Warned,
    /// Rendered cleanly.
    Clean,
}

pub const CLASSES: [Class; 6] = [Class::Yaml, Class::Select, Class::Types, Class::Invalid, Class::Warned, Class::Clean];

/// A classified render with its located diagnostics (a YAML error becomes a pathless one).
pub struct Outcome {
    pub class: Class,
    pub diags: Vec<Diagnostic>,
}

/// Renders `input`, classifies the outcome and checks that it is well formed: no panic, JSON
/// output, errors only on failure, and every diagnostic located inside the document.
pub fn render_classified(input: &str, files: Option<&dyn FilesDir>) -> Result<Outcome, String> {
    let result = catch_unwind(AssertUnwindSafe(|| butane::render(input, files))).map_err(|_| "panicked".to_string())?;
    let outcome = match result {
        Ok(rendered) => {
            let text = rendered.to_json().to_pretty();
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("output is not JSON: {e}"))?;
            if rendered.report.has_errors() {
                return Err("success with errors".into());
            }
            let class = if rendered.report.is_empty() { Class::Clean } else { Class::Warned };
            Outcome { class, diags: rendered.report.entries }
        }
        Err(Failure::Yaml(e)) => {
            Outcome { class: Class::Yaml, diags: vec![Diagnostic::new(Severity::Error, None, e.message).at(e.mark, 0)] }
        }
        Err(Failure::Select(_) | Failure::IgnitionVersion(_)) => Outcome { class: Class::Select, diags: Vec::new() },
        Err(Failure::Types(report)) if !report.is_empty() => Outcome { class: Class::Types, diags: report.entries },
        Err(Failure::Invalid { report, .. }) if report.has_errors() => {
            Outcome { class: Class::Invalid, diags: report.entries }
        }
        Err(other) => return Err(format!("empty failure: {other:?}")),
    };
    outcome.diags.iter().try_for_each(|d| check_inside_document(d, input))?;
    Ok(outcome)
}

/// A diagnostic must point at a line and column of the document (one past a line's last
/// character included, which is where an unfinished input ends), and every key of its path but the last must occur in the text: the last may
/// name a required key that is missing, the ones before it lead to where the problem is.
fn check_inside_document(d: &Diagnostic, input: &str) -> Result<(), String> {
    let Some(mark) = d.mark else { return Err(format!("unlocated: {}", d.raw_line())) };
    let lines: Vec<&str> = input.split('\n').collect();
    let inside = mark.line >= 1
        && mark.line <= lines.len()
        && mark.col >= 1
        && mark.col <= lines[mark.line - 1].chars().count() + 1;
    if !inside {
        return Err(format!("outside the {}-line document: {}", lines.len(), d.raw_line()));
    }
    let segs = d.path.as_ref().map_or(&[][..], Path::segs);
    let leading = &segs[..segs.len().saturating_sub(1)];
    match leading.iter().find(|s| matches!(s, Seg::Key(k) if !input.contains(&**k))) {
        Some(missing) => Err(format!("path names {missing:?}, which is not in the document: {}", d.raw_line())),
        None => Ok(()),
    }
}
