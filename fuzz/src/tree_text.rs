//! The input format of the `layout` target: a source repository as one text, so that seeds are
//! readable and the fuzzer's byte mutations reach paths and contents alike.
//!
//! ```text
//! === hosts/example/host.yaml
//! host: example
//! services: [web]
//! === services/web/systemd/web.service +x
//! [Service]
//! ```
//!
//! A line that starts with `=== ` begins a file: the rest of the line is its repository path,
//! and a trailing ` +x` marks it executable. The file's bytes are everything up to the next such
//! line (the newline before it included) or the end. Bytes before the first header are ignored;
//! a later file of the same path replaces an earlier one. `fuzz/seed.sh` writes the same format.

use core_ops::model::source::tree::SourceTree;

/// What starts a file's header line.
pub const HEADER: &[u8] = b"=== ";
/// What ends the header of an executable file.
pub const EXECUTABLE: &str = " +x";
/// The most files one input makes: enough for a host with a few services, few enough that one
/// input stays fast.
pub const MAX_FILES: usize = 64;

/// The tree `input` describes (see the module header).
pub fn parse(input: &[u8]) -> SourceTree {
    let mut tree = SourceTree::default();
    let starts = header_starts(input);
    for (i, &start) in starts.iter().enumerate().take(MAX_FILES) {
        let end = starts.get(i + 1).copied().unwrap_or(input.len());
        let entry = &input[start + HEADER.len()..end];
        let (header, bytes) = match entry.iter().position(|&b| b == b'\n') {
            Some(newline) => (&entry[..newline], &entry[newline + 1..]),
            None => (entry, &[][..]),
        };
        let header = String::from_utf8_lossy(header);
        let (path, executable) = match header.strip_suffix(EXECUTABLE) {
            Some(path) => (path, true),
            None => (&*header, false),
        };
        tree.insert(path, bytes.to_vec(), executable);
    }
    tree
}

/// Where each header line starts.
fn header_starts(input: &[u8]) -> Vec<usize> {
    let line_starts =
        std::iter::once(0).chain(input.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1));
    line_starts.filter(|&start| input[start..].starts_with(HEADER)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_files_at_header_lines() {
        let tree = parse(b"ignored\n=== a/b.yaml\nx: 1\n=== c/d +x\n#!/bin/sh\n=== a/b.yaml\nx: 2\n=== e");
        let listed: Vec<(&str, &[u8], bool)> = tree.iter().map(|(p, f)| (p, &f.bytes[..], f.executable)).collect();
        assert_eq!(listed, [("a/b.yaml", &b"x: 2\n"[..], false), ("c/d", b"#!/bin/sh\n", true), ("e", b"", false)]);
    }

    #[test]
    fn a_header_only_counts_at_the_start_of_a_line() {
        let tree = parse(b"=== f\nkey: === g\n");
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.get("f").map(|f| &f.bytes[..]), Some(&b"key: === g\n"[..]));
    }
}
