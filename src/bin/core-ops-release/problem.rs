//! A located problem: what is wrong, in which file and on which line, and what to do about it.
//!
//! Owns the `file:line: message` shape every check of `core-ops-release` reports in. It checks
//! nothing and touches nothing on disk.

use std::fmt;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, relative to the checkout (`changes/fix.md`, `CHANGELOG.md`).
    pub file: String,
    /// The 1-based line, when the problem has one (a missing file has none).
    pub line: Option<usize>,
    /// What is wrong and what to do next.
    pub message: String,
}

impl Problem {
    /// A problem on `line` of `file`.
    pub fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        Problem { file: file.to_string(), line: Some(line), message: message.into() }
    }

    /// A problem with `file` as a whole (it cannot be read, for instance).
    pub fn in_file(file: &str, message: impl Into<String>) -> Self {
        Problem { file: file.to_string(), line: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Numbers the lines of `text` from 1, without their line endings (`\n` or `\r\n`).
pub fn numbered_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines().enumerate().map(|(i, line)| (i + 1, line)).collect()
}

/// The closest of `candidates` to `word` when it is close enough to be a likely typo: equal but
/// for case, a prefix of at least three letters, or at most two edits away.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    const MIN_PREFIX: usize = 3;
    const MAX_EDITS: usize = 2;
    let word = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (c, c.to_lowercase()))
        .filter(|(_, c)| {
            let prefix = word.len() >= MIN_PREFIX && (c.starts_with(&word) || word.starts_with(c.as_str()));
            prefix || edit_distance(&word, c) <= MAX_EDITS
        })
        .min_by_key(|(_, c)| edit_distance(&word, c))
        .map(|(c, _)| *c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_and_message() {
        assert_eq!(Problem::at("CHANGELOG.md", 7, "bad").to_string(), "CHANGELOG.md:7: bad");
        assert_eq!(Problem::in_file("Cargo.toml", "missing").to_string(), "Cargo.toml: missing");
    }

    #[test]
    fn edit_distances_by_hand() {
        for (a, b, want) in
            [("", "", 0), ("fix", "fixed", 2), ("kitten", "sitting", 3), ("minr", "minor", 1), ("abc", "abc", 0)]
        {
            assert_eq!(edit_distance(a, b), want, "{a} → {b}");
        }
    }

    #[test]
    fn suggests_only_close_words() {
        let kinds = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"];
        for (word, want) in [
            ("Fix", Some("Fixed")),
            ("fixed", Some("Fixed")),
            ("Add", Some("Added")),
            ("Change", Some("Changed")),
            ("Securty", Some("Security")),
            ("Features", None),
            ("Breaking", None),
        ] {
            assert_eq!(did_you_mean(word, &kinds), want, "{word}");
        }
    }
}
