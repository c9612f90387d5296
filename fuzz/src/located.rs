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

/// Whether `mark` is a line and column of `text` (see the module header).
pub fn is_inside(mark: Mark, text: &str) -> bool {
    let lengths = yaml_line_lengths(text);
    mark.line >= 1 && mark.line <= lengths.len() && mark.col >= 1 && mark.col <= lengths[mark.line - 1] + 1
}

/// Panics unless `mark` is inside `text`; `what` names the diagnostic.
pub fn assert_inside(mark: Mark, text: &str, what: &dyn std::fmt::Display) {
    let lines = yaml_line_lengths(text).len();
    assert!(
        is_inside(mark, text),
        "a diagnostic points outside its {lines}-line document (line {}, col {}): {what}",
        mark.line,
        mark.col
    );
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
        let text = "ab\nc";
        assert!(is_inside(Mark { line: 1, col: 3 }, text));
        assert!(!is_inside(Mark { line: 1, col: 4 }, text));
        assert!(is_inside(Mark { line: 2, col: 2 }, text));
        assert!(!is_inside(Mark { line: 3, col: 1 }, text));
        assert!(!is_inside(Mark { line: 0, col: 1 }, text));
    }
}
