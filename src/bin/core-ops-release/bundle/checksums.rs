//! `SHA256SUMS`: one `<hex>  <name>` line per artefact, the format `sha256sum -c` reads. One file
//! serves a release of several architectures: a bundle replaces the lines of its own artefacts,
//! keeps the others', and sorts by name. Pure: text in, text out.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

/// The checksum file's name.
pub const FILE_NAME: &str = "SHA256SUMS";

/// The length of a SHA-256 digest in hex.
const HEX_LEN: usize = 64;

/// What separates the digest from the name: two spaces, sha256sum's text mode.
const SEPARATOR: &str = "  ";

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The checksum file after a bundle: the lines of `existing` (the text of `source`, when the file
/// was there) for names not in `fresh`, plus `fresh` (name → hex digest), sorted by name.
pub fn merge(source: &str, existing: Option<&str>, fresh: &BTreeMap<String, String>) -> Result<String> {
    let mut lines = match existing {
        Some(text) => parse(source, text)?,
        None => BTreeMap::new(),
    };
    lines.extend(fresh.iter().map(|(name, digest)| (name.clone(), digest.clone())));
    Ok(lines.iter().map(|(name, digest)| format!("{digest}{SEPARATOR}{name}\n")).collect())
}

/// Name → digest of each line; a line that is not `<64 hex>  <name>` is refused with its number.
fn parse(source: &str, text: &str) -> Result<BTreeMap<String, String>> {
    let mut lines = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let Some((digest, name)) = line.split_once(SEPARATOR) else {
            bail!(
                "{source}:{number}: expected `<sha256 hex>  <name>`; fix the line or remove {source} to start afresh"
            );
        };
        if digest.len() != HEX_LEN || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{source}:{number}: `{digest}` is not a SHA-256 digest; fix the line or remove {source}");
        }
        if name.is_empty() || name.contains('/') {
            bail!(
                "{source}:{number}: `{name}` is not an artefact name of this folder; fix the line or remove {source}"
            );
        }
        if lines.insert(name.to_string(), digest.to_ascii_lowercase()).is_some() {
            bail!("{source}:{number}: {name} is listed twice; remove one of its lines");
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn fresh(pairs: &[(&str, &[u8])]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, bytes)| (name.to_string(), sha256_hex(bytes))).collect()
    }

    /// Writes the files and the checksum text into a folder and runs `sha256sum -c` there.
    fn sha256sum_check(files: &[(&str, &[u8])], sums: &str) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        std::fs::write(dir.path().join(FILE_NAME), sums).unwrap();
        let out =
            Command::new("sha256sum").args(["-c", "--strict", FILE_NAME]).current_dir(dir.path()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn the_digest_of_a_known_input_matches_the_published_test_vector() {
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_second_architecture_keeps_the_first_ones_lines_and_sha256sum_checks_all_four() {
        let x86: &[(&str, &[u8])] = &[("core-ops-linux-x86_64", b"x86"), ("core-ops-linux-x86_64.tar.gz", b"x86 tgz")];
        let arm: &[(&str, &[u8])] =
            &[("core-ops-linux-aarch64", b"arm"), ("core-ops-linux-aarch64.tar.gz", b"arm tgz")];
        let first = merge(FILE_NAME, None, &fresh(x86)).unwrap();
        let both = merge(FILE_NAME, Some(&first), &fresh(arm)).unwrap();
        let names: Vec<&str> = both.lines().map(|l| &l[HEX_LEN + 2..]).collect();
        assert_eq!(
            names,
            [
                "core-ops-linux-aarch64",
                "core-ops-linux-aarch64.tar.gz",
                "core-ops-linux-x86_64",
                "core-ops-linux-x86_64.tar.gz"
            ]
        );
        let all: Vec<(&str, &[u8])> = x86.iter().chain(arm).copied().collect();
        let (ok, report) = sha256sum_check(&all, &both);
        assert!(ok, "{both}\n{report}");
        assert_eq!(report.matches(": OK").count(), 4, "{report}");
    }

    #[test]
    fn a_rebuilt_architecture_replaces_its_own_lines_only() {
        let old =
            merge(FILE_NAME, None, &fresh(&[("core-ops-linux-aarch64", b"old"), ("core-ops-linux-x86_64", b"x86")]))
                .unwrap();
        let new = merge(FILE_NAME, Some(&old), &fresh(&[("core-ops-linux-aarch64", b"new")])).unwrap();
        let (ok, report) =
            sha256sum_check(&[("core-ops-linux-aarch64", b"new"), ("core-ops-linux-x86_64", b"x86")], &new);
        assert!(ok, "{new}\n{report}");
        assert_eq!(new.lines().count(), 2);
        assert!(!new.contains(&sha256_hex(b"old")));
    }

    #[test]
    fn malformed_lines_are_refused_with_the_file_and_line() {
        let good = format!("{}  core-ops-linux-x86_64\n", sha256_hex(b"x"));
        for (label, bad) in [
            ("one space", format!("{} core-ops-linux-aarch64", sha256_hex(b"y"))),
            ("short digest", "abc123  core-ops-linux-aarch64".to_string()),
            ("not hex", format!("{}  name", "z".repeat(64))),
            ("a path", format!("{}  ../elsewhere", sha256_hex(b"y"))),
            ("twice", good.trim_end().to_string()),
        ] {
            let text = format!("{good}{bad}\n");
            let err = merge("out/SHA256SUMS", Some(&text), &BTreeMap::new()).expect_err(label);
            assert!(err.to_string().starts_with("out/SHA256SUMS:2: "), "{label}: {err}");
        }
    }
}
