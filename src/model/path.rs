//! Paths, and how they are shown.
//!
//! - JSON-style paths (`$.storage.files.0.path`) name a place in a config: they are how every
//!   diagnostic, translation and origin points back at the source. They are plain values:
//!   building one never touches the document it refers to.
//! - Node paths name a place on a host (`/etc/app.conf`). [`clean`] is their one normalisation
//!   (Go's `path.Clean`, as Butane and Ignition use it), and [`split_node_path`] and
//!   [`node_components`] are the one way every caller that inspects the host and every caller
//!   that writes to it takes such a path apart: a path that `clean` would change (`//`, `/./`,
//!   `..`, a trailing `/`) is refused by all of them alike, so they cannot disagree about
//!   where a path leads.
//! - [`printable`] is how any path, name or origin is shown to a person: control characters
//!   are escaped, so a name cannot forge output lines or send codes to a terminal.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// A mapping key (shared by the paths built from this one).
    Key(Arc<str>),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root, rendered as `$.a.0.b`. Its steps are shared: a copy costs
/// no allocation, and a longer path built from it copies only references to its keys (a large
/// tree records thousands of paths, many of them several times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Arc<[Seg]>);

impl Path {
    /// The root path `$`.
    pub fn root() -> Self {
        Path::default()
    }

    /// Builds a path from dotted text without the `$`; numeric parts become indexes.
    pub fn parse(dotted: &str) -> Self {
        let text = dotted.trim_start_matches('$').trim_start_matches('.');
        if text.is_empty() {
            return Path::root();
        }
        Path(
            text.split('.')
                .map(|part| match part.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(part.into()),
                })
                .collect(),
        )
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        self.then(Seg::Key(key.into()))
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> Self {
        self.then(Seg::Index(index))
    }

    fn then(&self, seg: Seg) -> Self {
        Path(self.0.iter().cloned().chain(std::iter::once(seg)).collect())
    }

    /// The steps of the path.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This path with its first `n` steps replaced by `new_prefix`.
    pub fn rebase(&self, n: usize, new_prefix: &Path) -> Self {
        Path(new_prefix.0.iter().chain(&self.0[n..]).cloned().collect())
    }

    /// The first `len` steps.
    pub fn prefix(&self, len: usize) -> Self {
        if len >= self.0.len() {
            return self.clone();
        }
        Path(self.0[..len].iter().cloned().collect())
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent path (the root is its own parent).
    pub fn parent(&self) -> Self {
        self.prefix(self.0.len().saturating_sub(1))
    }

    /// The last step, if any.
    pub fn last(&self) -> Option<&Seg> {
        self.0.last()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for seg in self.0.iter() {
            match seg {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, ".{i}")?,
            }
        }
        Ok(())
    }
}

/// Go's `path.Clean`: the shortest lexically equivalent path (`//` and `.` dropped, `..`
/// resolved, no trailing `/`); `""` becomes `"."`. The one normalisation of node paths.
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Why a node path is not used as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePathError {
    /// Relative, or [`clean`] would change it: `//`, `/./`, `..` or a trailing `/`.
    Unclean(String),
    /// It holds a NUL byte, which no file name can.
    Nul(String),
    /// It is `/`, which names the root itself rather than something in it.
    Root,
}

impl fmt::Display for NodePathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodePathError::Unclean(p) => write!(
                f,
                "{} is not a clean absolute path (it would name {}); CoreOps reads and writes only paths \
                 spelled without empty, `.` or `..` components",
                printable(p),
                printable(&clean(&format!("/{p}")))
            ),
            NodePathError::Nul(p) => write!(f, "{} holds a NUL byte, which no path can", printable(p)),
            NodePathError::Root => f.write_str("the root itself is not a managed path"),
        }
    }
}

impl std::error::Error for NodePathError {}

/// Whether `path` lies below directory `dir`: `dir`, then `/`, then more (`/etc/app` is below
/// `/etc`, `/etcd` is not), told without making `dir/`.
pub fn is_below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `path` is absolute and [`clean`] leaves it as it is (no empty, `.` or `..`
/// component, no trailing `/`), told without making the cleaned path.
pub fn is_clean_absolute(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| rest.split('/').all(|part| !matches!(part, "" | "." | "..")))
}

/// Checks that `path` is absolute and clean: what Ignition requires of every node path, and
/// what CoreOps requires of every path it inspects or writes.
pub fn check_node_path(path: &str) -> Result<(), NodePathError> {
    if path.contains('\0') {
        Err(NodePathError::Nul(path.to_string()))
    } else if !is_clean_absolute(path) {
        Err(NodePathError::Unclean(path.to_string()))
    } else {
        Ok(())
    }
}

/// The components of an absolute, clean node path, from the top: `/etc/a` → `etc`, `a`; `/`
/// has none.
pub fn node_components(path: &str) -> Result<impl Iterator<Item = &str>, NodePathError> {
    check_node_path(path)?;
    Ok(path.split('/').filter(|part| !part.is_empty()))
}

/// The parent directory and the last component of an absolute, clean node path other than
/// `/`: `/etc/a` → (`/etc`, `a`), `/etc` → (`/`, `etc`).
pub fn split_node_path(path: &str) -> Result<(&str, &str), NodePathError> {
    check_node_path(path)?;
    match path.rsplit_once('/') {
        Some((_, "")) | None => Err(NodePathError::Root),
        Some(("", name)) => Ok(("/", name)),
        Some((dir, name)) => Ok((dir, name)),
    }
}

/// `text` as it is shown to a person: every control character (C0, DEL and C1) and
/// every character that reorders or breaks lines on a terminal (bidirectional overrides and
/// isolates, line and paragraph separators) is written as an escape (`\n`, `\x1b`,
/// `\u{202e}`), so a name can neither start a line of its own nor send codes to a terminal.
/// Everything else, backslashes included, is shown as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape_unless(text, |_| false)
}

/// A line of file content as a diff shows it: as [`printable`], but a tab stays a tab.
pub fn printable_content(line: &str) -> Cow<'_, str> {
    escape_unless(line, |c| c == '\t')
}

/// Escapes what [`printable`] escapes, except the characters `keep` accepts.
fn escape_unless(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| needs_escape(c) && !keep(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Whether a character must not reach a terminal as it is.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        let cases =
            [("/", "/"), ("/a/b/../c", "/a/c"), ("/a//b/", "/a/b"), ("/../a", "/a"), ("a/./b", "a/b"), ("", ".")];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "case {input:?}");
        }
    }

    #[test]
    fn below_means_inside_the_directory() {
        assert!(is_below("/etc/app", "/etc"));
        assert!(is_below("/etc/app/x", "/etc"));
        assert!(is_below("/x", ""), "everything absolute is below the root's empty name");
        for (path, dir) in
            [("/etc", "/etc"), ("/etcd", "/etc"), ("/et", "/etc"), ("/var/etc/x", "/etc"), ("etc/x", "/etc")]
        {
            assert!(!is_below(path, dir), "{path} below {dir}");
        }
    }

    #[test]
    fn a_path_is_clean_exactly_when_cleaning_leaves_it_as_it_is() {
        // Every path of up to five characters over `/`, `.`, `a`: the answer is `clean`'s.
        let mut paths = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = paths.iter().flat_map(|p| ['/', '.', 'a'].map(|c| format!("{p}{c}"))).collect();
            paths.extend(longer);
            paths.dedup();
        }
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 1 + 3 + 9 + 27 + 81 + 243);
        for p in &paths {
            assert_eq!(is_clean_absolute(p), p.starts_with('/') && clean(p) == *p, "{p:?}");
        }
    }

    #[test]
    fn node_paths_are_taken_apart_only_when_clean() {
        let cases = [
            ("/etc/a", Ok(("/etc", "a"))),
            ("/etc", Ok(("/", "etc"))),
            ("/", Err("the root itself")),
            ("/etc//a", Err("not a clean absolute path (it would name /etc/a)")),
            ("/etc/./a", Err("not a clean absolute path")),
            ("/etc/x/../a", Err("not a clean absolute path")),
            ("/etc/a/", Err("not a clean absolute path")),
            ("etc/a", Err("not a clean absolute path")),
            ("", Err("not a clean absolute path")),
            ("/etc/a\0b", Err("NUL byte")),
        ];
        for (path, want) in cases {
            match (split_node_path(path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "case {path:?}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "case {path:?}: {e}"),
                (got, want) => panic!("case {path:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(node_components("/").unwrap().count(), 0);
        assert_eq!(node_components("/etc/a").unwrap().collect::<Vec<_>>(), ["etc", "a"]);
        assert!(node_components("/etc//a").is_err());
    }

    #[test]
    fn printable_escapes_what_could_forge_a_line_or_drive_a_terminal() {
        let cases = [
            ("/etc/plain-name.conf", "/etc/plain-name.conf"),
            ("x\n  - delete   FAKE (file)\n\x1b[2K", "x\\n  - delete   FAKE (file)\\n\\x1b[2K"),
            ("a\rb\tc\0d\x7f", "a\\rb\\tc\\x00d\\x7f"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
            ("dev-disk-by\\x2dlabel.mount", "dev-disk-by\\x2dlabel.mount"),
            ("caf\u{e9} \u{2192} ok", "caf\u{e9} \u{2192} ok"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "case {input:?}");
        }
        assert!(matches!(printable("unchanged"), Cow::Borrowed(_)), "nothing to escape, nothing copied");
        assert_eq!(printable_content("\tindented\x1b[31m"), "\tindented\\x1b[31m", "a tab stays in content");
    }

    #[test]
    fn renders_and_parses_round_trip() {
        for text in ["$", "$.storage.files.0.path", "$.systemd.units.12.dropins.0"] {
            assert_eq!(Path::parse(text).to_string(), text, "case {text}");
        }
    }

    #[test]
    fn paths_built_step_by_step_equal_the_parsed_ones_and_leave_their_parents_alone() {
        let files = Path::root().key("storage").key("files");
        let source = files.index(3).key("contents").key("source");
        assert_eq!(source, Path::parse("$.storage.files.3.contents.source"));
        assert_eq!(files.to_string(), "$.storage.files", "extending a path leaves it as it was");
        assert_eq!(source.prefix(2), files);
        assert_eq!(source.prefix(9), source, "a prefix longer than the path is the path");
        assert_eq!(source.prefix(0), Path::root());
        assert_eq!(source.parent(), Path::parse("$.storage.files.3.contents"));
        assert_eq!(Path::root().parent(), Path::root());
        assert_eq!(source.last(), Some(&Seg::Key("source".into())));
        assert_eq!(files.index(3).segs()[2], Seg::Index(3));
        assert!(Path::root().is_empty() && source.len() == 5);
    }

    #[test]
    fn rebase_replaces_prefix() {
        let p = Path::parse("$.storage.files.3.contents.source");
        let q = p.rebase(3, &Path::parse("$.storage.trees.0"));
        assert_eq!(q.to_string(), "$.storage.trees.0.contents.source");
        assert!(p.starts_with(&Path::parse("$.storage.files")));
        assert!(!p.starts_with(&Path::parse("$.storage.links")));
    }
}
