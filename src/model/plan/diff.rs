//! Content changes as shown to the user: a unified diff of text, or why none is shown
//! (sensitive modes, binary content, content fetched at apply time). A created file's text is
//! only counted here; its diff is made by [`created_diff`] when it is shown in whole.

use super::{ContentDiff, Observed};
use crate::model::desired::Object;

fn is_sensitive(mode: u32) -> bool {
    mode & 0o004 == 0
}

pub(super) fn new_content_diff(o: &Object) -> Option<ContentDiff> {
    if is_sensitive(o.effective_mode()) {
        return Some(ContentDiff::Sensitive);
    }
    match o.known_bytes() {
        Some(new) if std::str::from_utf8(&new).is_ok() => Some(ContentDiff::New { lines: line_count(&new) }),
        _ => text_diff(o, b"", &o.path),
    }
}

/// The whole diff of created object `o` against nothing, for `-v`: what
/// [`ContentDiff::New`] stands for.
pub fn created_diff(o: &Object) -> Option<ContentDiff> {
    text_diff(o, b"", &o.path)
}

/// Lines of `text` as a unified diff counts them: each ends at `\n`, `\r\n` or a lone `\r`,
/// and a last line without an ending counts too.
fn line_count(text: &[u8]) -> usize {
    // Every `\n` ends a line (alone or after `\r`), and so does a `\r` not followed by one.
    let newlines = text.iter().filter(|&&b| b == b'\n').count();
    let lone_returns = if text.contains(&b'\r') {
        text.iter().enumerate().filter(|&(i, &b)| b == b'\r' && text.get(i + 1) != Some(&b'\n')).count()
    } else {
        0
    };
    let unended = text.last().is_some_and(|&b| b != b'\n' && b != b'\r');
    newlines + lone_returns + usize::from(unended)
}

pub(super) fn content_diff(o: &Object, seen: &Observed) -> Option<ContentDiff> {
    let Observed::File { bytes, mode, .. } = seen else { return None };
    if is_sensitive(o.effective_mode()) || is_sensitive(*mode) {
        return Some(ContentDiff::Sensitive);
    }
    match bytes {
        Some(old) => text_diff(o, old, &o.path),
        None => Some(ContentDiff::Binary { from: 0, to: o.known_bytes().map_or(0, |b| b.len()) }),
    }
}

fn text_diff(o: &Object, old: &[u8], path: &str) -> Option<ContentDiff> {
    let Some(new) = o.known_bytes() else {
        let sources = o.content.iter().flatten().filter_map(|p| match p {
            crate::model::desired::Piece::Remote { source, .. } => Some(crate::model::ignition::url::redacted(source)),
            _ => None,
        });
        return Some(ContentDiff::Remote(sources.collect::<Vec<_>>().join(", ")));
    };
    match (std::str::from_utf8(old), std::str::from_utf8(&new)) {
        (Ok(a), Ok(b)) => {
            let diff = similar::TextDiff::from_lines(a, b);
            // The header is a line of its own: a name in it must not break it into more.
            let shown = crate::model::path::printable(path);
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("{shown} (host)"), &format!("{shown} (desired)"))
                .to_string();
            Some(ContentDiff::Unified(text))
        }
        _ => Some(ContentDiff::Binary { from: old.len(), to: new.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::fixtures::*;

    #[test]
    fn diffs_are_unified_and_sensitive_content_is_never_shown() {
        let c = one(object("/etc/a", "a\nb\n", None, true), file("a\nc\n", 0o644), None, false);
        let Some(ContentDiff::Unified(text)) = c.diff else { panic!("{c:?}") };
        assert!(text.contains("-c\n") && text.contains("+b\n") && text.contains("--- /etc/a (host)"), "{text}");
        let secret =
            one(object("/etc/secret", "password=new\n", Some(0o600), true), file("password=old\n", 0o600), None, false);
        assert_eq!(secret.diff, Some(ContentDiff::Sensitive));
        let new_secret =
            one(object("/etc/secret", "password=new\n", Some(0o640), false), Observed::Missing, None, false);
        assert_eq!(new_secret.diff, Some(ContentDiff::Sensitive));
    }

    #[test]
    fn created_text_is_counted_not_held() {
        // Counted by hand. Lines that start with `+` or `++` are content like any other (the
        // count once skipped them as if they were the `+++` header).
        let cases = [
            ("", 0),
            ("one", 1),
            ("one\n", 1),
            ("a\n++b\n+++c\nd", 4),
            ("crlf\r\nends\r\n", 2),
            ("lone\rcr\n\n", 3),
            ("\r", 1),
            ("a\r", 1),
            ("\r\r\n", 2),
            ("a\rb", 2),
            ("\n\n", 2),
        ];
        for (text, lines) in cases {
            let c = one(object("/etc/new", text, None, false), Observed::Missing, None, false);
            assert_eq!(c.diff, Some(ContentDiff::New { lines }), "{text:?}");
        }
        let binary = one(object("/etc/bin", "\u{0}", None, false), Observed::Missing, None, false);
        assert_eq!(binary.diff, Some(ContentDiff::New { lines: 1 }), "NUL is text: UTF-8 decides");
        let mut invalid = object("/etc/bin", "", None, false);
        invalid.content = Some(vec![crate::model::desired::Piece::bytes(vec![0xff, 0xfe])]);
        assert_eq!(one(invalid, Observed::Missing, None, false).diff, Some(ContentDiff::Binary { from: 0, to: 2 }));
    }

    #[test]
    fn the_whole_created_diff_is_made_on_demand() {
        // As GNU `diff -u /dev/null` writes it, with this tool's header names.
        let o = object("/etc/new", "a\n++b\nc", None, false);
        let want = "--- /etc/new (host)\n+++ /etc/new (desired)\n@@ -0,0 +1,3 @@\n+a\n+++b\n+c\n\\ No newline at end of file\n";
        assert_eq!(created_diff(&o), Some(ContentDiff::Unified(want.into())));
    }
}
