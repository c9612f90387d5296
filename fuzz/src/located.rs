//! "Errors name the file and line": a diagnostic's mark must point inside the document it is
//! about. Lines are counted as YAML 1.2 counts them (a line break is LF, CR LF or a lone CR)
//! and columns in characters, both from 1; one column past a line's last character is inside
//! (that is where an unfinished line ends).

use core_ops::model::report::Mark;

/// The lines of `text` as YAML 1.2 breaks them (`b-break`: CR LF, CR or LF), each as its number
/// of characters.
pub fn yaml_line_lengths(text: &str) -> Vec<usize> {
    let mut lengths = vec![0];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lengths.push(0);
            }
            '\n' => lengths.push(0),
            _ => *lengths.last_mut().expect("starts with one line") += 1,
        }
    }
    lengths
}

/// A document's lines, measured once so that many marks can be checked against it.
#[derive(Debug, Clone)]
pub struct Lines(Vec<usize>);

impl Lines {
    /// The lines of `text`.
    pub fn of(text: &str) -> Self {
        Lines(yaml_line_lengths(text))
    }

    /// Whether `mark` is a line and column of the document (see the module header).
    pub fn contain(&self, mark: Mark) -> bool {
        mark.line >= 1 && mark.line <= self.0.len() && mark.col >= 1 && mark.col <= self.0[mark.line - 1] + 1
    }

    /// Panics unless `mark` is inside the document; `what` names the diagnostic.
    pub fn assert_contain(&self, mark: Mark, what: &dyn std::fmt::Display) {
        assert!(
            self.contain(mark),
            "a diagnostic points outside its {}-line document (line {}, col {}): {what}",
            self.0.len(),
            mark.line,
            mark.col
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_as_yaml_does() {
        assert_eq!(yaml_line_lengths(""), [0]);
        assert_eq!(yaml_line_lengths("ab\ncd"), [2, 2]);
        assert_eq!(yaml_line_lengths("ab\r\ncd\n"), [2, 2, 0]);
        assert_eq!(yaml_line_lengths("a\rb\r\rc"), [1, 1, 0, 1]);
        assert_eq!(yaml_line_lengths("é\n"), [1, 0], "characters, not bytes");
    }

    #[test]
    fn one_past_the_end_of_a_line_is_inside() {
        let lines = Lines::of("ab\nc");
        assert!(lines.contain(Mark { line: 1, col: 3 }));
        assert!(!lines.contain(Mark { line: 1, col: 4 }));
        assert!(lines.contain(Mark { line: 2, col: 2 }));
        assert!(!lines.contain(Mark { line: 3, col: 1 }));
        assert!(!lines.contain(Mark { line: 0, col: 1 }));
    }
}
