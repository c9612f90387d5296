//! The structure-aware generator's oracle: a mutated document must end at the earliest stage
//! its mutations break, with a diagnostic exactly where one of them said.

use core_ops::model::report::{Diagnostic, Mark};

use super::layout::Layout;
use super::mutant::{Anchor, Expect};
use crate::outcome::{Class, Outcome};

/// Where an anchor landed in the written document.
fn resolve(layout: &Layout, anchor: &Anchor) -> Option<Mark> {
    match anchor {
        Anchor::Value(p) => Some(layout.values[p]),
        Anchor::Key(p) => Some(layout.keys[p]),
        Anchor::Nowhere => None,
    }
}

/// Whether a diagnostic is the one `expect` asked for: same path, at the anchor's exact line
/// and column (YAML errors: the anchor's line; their column is where the parser gave up).
fn pointed_at(diags: &[Diagnostic], expect: &Expect, layout: &Layout) -> bool {
    let Some(mark) = resolve(layout, &expect.anchor) else { return true };
    diags.iter().any(|d| {
        let at = d.mark.expect("located");
        match expect.class {
            Class::Yaml => (mark.line..=mark.line + expect.late).contains(&at.line),
            _ => d.path == expect.path && at == mark,
        }
    })
}

/// The outcome must be the earliest stage any mutation breaks, and a diagnostic of that
/// stage must point exactly at one of the mutations that broke it.
pub fn check_mutant(outcome: &Outcome, expects: &[Expect], layout: &Layout) -> Result<(), String> {
    let want = expects.iter().map(|e| e.class).min().unwrap_or(Class::Clean);
    if outcome.class != want {
        return Err(format!("expected {want:?}, got {:?}", outcome.class));
    }
    let relevant: Vec<&Expect> = expects.iter().filter(|e| e.class == want).collect();
    let hit = relevant.is_empty() || relevant.iter().any(|e| pointed_at(&outcome.diags, e, layout));
    if !hit {
        let wanted: Vec<String> =
            relevant.iter().map(|e| format!("{} {:?} {:?}", e.name, e.path, resolve(layout, &e.anchor))).collect();
        let got: Vec<String> = outcome.diags.iter().map(Diagnostic::raw_line).collect();
        return Err(format!("no diagnostic at {wanted:?}; got {got:#?}"));
    }
    Ok(())
}

/// The document with line numbers, for failure messages.
pub fn numbered(doc: &str) -> String {
    doc.lines().enumerate().map(|(i, l)| format!("{:3} | {l}\n", i + 1)).collect()
}
