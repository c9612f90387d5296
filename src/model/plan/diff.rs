//! Content changes as shown to the user: a unified diff of text, or why none is shown
//! (sensitive modes, binary content, content fetched at apply time).

use super::{ContentDiff, Observed};
use crate::model::desired::Object;

fn is_sensitive(mode: u32) -> bool {
    mode & 0o004 == 0
}

pub(super) fn new_content_diff(o: &Object) -> Option<ContentDiff> {
    if is_sensitive(o.effective_mode()) {
        return Some(ContentDiff::Sensitive);
    }
    text_diff(o, b"", &o.path)
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
}
