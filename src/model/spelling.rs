//! "Did you mean …?": the known name closest to a misspelt one, for messages that name the fix.
//!
//! Closeness is the optimal-string-alignment distance (insertions, deletions, substitutions
//! and swaps of two neighbouring letters each cost one, so `Imgae` is one step from `Image`),
//! ignoring case: a name that differs from a known one only in case is always a match.

/// The candidate closest to `word`, when one is close enough to be the intended name: at most
/// one edit away for names of up to three letters, two for up to eight, three beyond. Ties go
/// to the first candidate.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = distance(&word, &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The optimal-string-alignment distance between `a` and `b`, counted in characters.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[i][j]: the distance between the first i characters of a and the first j of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_each_edit_once() {
        let cases = [
            ("Image", "Image", 0),
            ("Imgae", "Image", 1),
            ("Imag", "Image", 1),
            ("Imagee", "Image", 1),
            ("Imbge", "Image", 1),
            ("", "abc", 3),
            ("kitten", "sitting", 3),
        ];
        for (a, b, want) in cases {
            assert_eq!(distance(a, b), want, "{a} → {b}");
        }
    }

    #[test]
    fn the_closest_name_within_reach_is_suggested() {
        let keys = ["Image", "ImageTag", "Label", "IP", "IP6"];
        let cases = [
            ("Imgae", Some("Image")),
            ("image", Some("Image")),
            ("ImageTga", Some("ImageTag")),
            ("Lable", Some("Label")),
            ("IP4", Some("IP")),
            ("Publish", None),
            ("Volume", None),
        ];
        for (word, want) in cases {
            assert_eq!(closest(word, keys), want, "{word}");
        }
    }
}
