//! Generator 1: real Butane files from the conformance corpus, given one or two line edits; a
//! YAML or type error they cause must not be reported before the first line an edit changed
//! (give or take the line above).

use crate::outcome::{Class, Outcome};
use crate::rng::Rng;
use crate::vocabulary::{KEYS, TOKENS, VALUES};

/// One to two line edits of `input` (remove, duplicate, swap, insert a token, truncate, insert a
/// random key, and twice as often replace a value); returns the text and the first line (from 1) that may differ.
pub fn mutate(rng: &mut Rng, input: &str) -> (String, usize) {
    let mut lines: Vec<String> = input.lines().map(str::to_string).collect();
    let mut first = usize::MAX;
    for _ in 0..=rng.below(2) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        first = first.min(i);
        match rng.below(8) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                let j = rng.below(lines.len());
                first = first.min(j);
                lines.swap(i, j);
            }
            3 => {
                let line = &mut lines[i];
                let at = floor_char_boundary(line, rng.below(line.len() + 1));
                line.insert_str(at, rng.pick(TOKENS));
            }
            4 => {
                let line = &mut lines[i];
                let at = floor_char_boundary(line, rng.below(line.len() + 1));
                line.truncate(at);
            }
            5 => {
                let indent = " ".repeat(rng.below(8));
                lines.insert(i, format!("{indent}{}: {}", rng.pick(KEYS), rng.pick(TOKENS)));
            }
            _ => replace_value(rng, &mut lines[i]),
        }
    }
    (lines.join("\n"), first + 1)
}

/// Replaces what follows the line's first `: ` with a plausible value, keeping the structure:
/// this is the edit that reaches type and validation errors.
fn replace_value(rng: &mut Rng, line: &mut String) {
    if let Some(at) = line.find(": ") {
        line.truncate(at + 2);
        line.push_str(rng.pick(VALUES));
    }
}

/// The last character boundary of `s` at or before byte `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A mutation cannot break anything before the first line it changed: a YAML error, and one of
/// the type errors it causes, must be reported there or later, or on the line above when the
/// change extends a scalar that starts there (deleting `contents: |` under `enabled: true`
/// continues the plain scalar `true` with the unit text; a tab at the start of a line is
/// reported where the parser began scanning the scalar before it).
pub fn check_after_first_change(original: Class, mutated: &Outcome, first: usize) -> Result<(), String> {
    match mutated.class {
        Class::Yaml => {}
        Class::Types if original != Class::Types => {}
        _ => return Ok(()),
    }
    let line = mutated.diags.iter().filter_map(|d| d.mark).map(|m| m.line).max().unwrap_or(0);
    if line + 1 < first {
        return Err(format!("{:?} reported at line {line}, before the first changed line {first}", mutated.class));
    }
    Ok(())
}
