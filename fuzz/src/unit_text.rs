//! A parsed unit file written back as text, for the `unit` target's round trip: systemd's unit
//! syntax (systemd.syntax(7)) is `[Section]` headers and `Key=Value` lines, a value continued
//! over lines that end in `\`. Written that way, a unit's options must read back as the same
//! options in the same order.
//!
//! Not every parsed value has such a spelling: the parser trims each line, so a value whose
//! continued parts start with white space, or whose last part ends in white space or `\`, or
//! is empty after a continuation, reads back differently by design. [`write`] returns `None`
//! for those.

use core_ops::model::unit::{UnitFile, UnitOption};

/// `unit`'s options as unit-file text, a section header wherever the section changes; `None`
/// when an option has no spelling that reads back as itself (see the module header).
pub fn write(unit: &UnitFile) -> Option<String> {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for option in &unit.options {
        if current != Some(option.section.as_str()) {
            out.push_str(&format!("[{}]\n", option.section));
            current = Some(&option.section);
        }
        out.push_str(&option_line(option)?);
    }
    Some(out)
}

/// `Key=Value` with its continuations, ending in a newline.
fn option_line(option: &UnitOption) -> Option<String> {
    let parts: Vec<&str> = option.value.split('\n').collect();
    let last = parts.last().copied().unwrap_or("");
    let spellable = parts.iter().all(|p| !p.starts_with(char::is_whitespace))
        && !last.ends_with(char::is_whitespace)
        && !last.ends_with('\\')
        && (parts.len() == 1 || !last.is_empty());
    spellable.then(|| format!("{}={}\n", option.name, parts.join("\\\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(section: &str, name: &str, value: &str) -> UnitOption {
        UnitOption { section: section.into(), name: name.into(), value: value.into() }
    }

    #[test]
    fn writes_sections_and_continuations() {
        let unit = UnitFile {
            options: vec![option("Unit", "A", "1"), option("Service", "B", "x \ny"), option("Unit", "C", "")],
            sections: Vec::new(),
        };
        assert_eq!(write(&unit).as_deref(), Some("[Unit]\nA=1\n[Service]\nB=x \\\ny\n[Unit]\nC=\n"));
    }

    #[test]
    fn refuses_values_without_a_spelling() {
        for value in ["x\n y", "x\\", "x\n", "x "] {
            let unit = UnitFile { options: vec![option("S", "K", value)], sections: Vec::new() };
            assert_eq!(write(&unit), None, "value {value:?}");
        }
    }
}
