//! A raw git commit object split as git splits it to check its signature: the signed payload,
//! the signature, and the committer time.
//!
//! The signature is the value of the `gpgsig` header (`gpgsig-sha256` in a SHA-256
//! repository), its continuation lines (which start with one space) un-indented. The payload is
//! the object without that header, and without any other header whose name starts with
//! `gpgsig` (the signature made for the other hash function, in a repository that keeps both):
//! exactly the bytes `git commit -S` handed to the signer.

/// The header that holds the signature in a SHA-1 repository.
const SHA1_SIGNATURE_HEADER: &[u8] = b"gpgsig";

/// The header that holds the signature in a SHA-256 repository.
const SHA256_SIGNATURE_HEADER: &[u8] = b"gpgsig-sha256";

/// Hex digits of a SHA-256 object id.
const SHA256_HEX_LEN: usize = 64;

/// A commit object taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SplitCommit {
    /// The bytes that were signed.
    pub payload: Vec<u8>,
    /// The signature, `None` when the commit carries none.
    pub signature: Option<Vec<u8>>,
    /// The committer time, seconds since the epoch; `None` when unreadable.
    pub committer_time: Option<i64>,
}

/// The signature header of the repository that `commit_id` (hex) belongs to.
pub(super) fn signature_header(commit_id: &str) -> &'static [u8] {
    if commit_id.len() == SHA256_HEX_LEN { SHA256_SIGNATURE_HEADER } else { SHA1_SIGNATURE_HEADER }
}

/// Splits `raw` (headers, a blank line, the message) with `header` holding the signature.
pub(super) fn split(raw: &[u8], header: &[u8]) -> SplitCommit {
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature: Option<Vec<u8>> = None;
    let mut committer_time = None;
    // Whether the line before was part of the signature, or of another signature header.
    let (mut in_signature, mut in_other_signature) = (false, false);
    let mut rest = raw;
    while !rest.is_empty() {
        if rest[0] == b'\n' {
            payload.extend_from_slice(rest);
            break;
        }
        let line_len = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, next) = rest.split_at(line_len);
        rest = next;
        let continuation = line[0] == b' ';
        if continuation && in_signature {
            signature.get_or_insert_default().extend_from_slice(&line[1..]);
            continue;
        }
        if continuation && in_other_signature {
            continue;
        }
        in_signature = false;
        in_other_signature = false;
        if let Some(value) = line.strip_prefix(header).and_then(|v| v.strip_prefix(b" ")) {
            signature.get_or_insert_default().extend_from_slice(value);
            in_signature = true;
        } else if line.starts_with(SHA1_SIGNATURE_HEADER) {
            in_other_signature = true;
        } else {
            if let Some(value) = line.strip_prefix(b"committer ") {
                committer_time = ident_time(value);
            }
            payload.extend_from_slice(line);
        }
    }
    SplitCommit { payload, signature, committer_time }
}

/// The time of an ident (`Name <email> 1700000000 +0100`): seconds since the epoch.
fn ident_time(ident: &[u8]) -> Option<i64> {
    let after_email = &ident[ident.iter().rposition(|&b| b == b'>')? + 1..];
    let text = std::str::from_utf8(after_email).ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
        author T <t@e> 1795696502 +0000\n\
        committer T <t@e> 1795696502 +0100\n\
        gpgsig -----BEGIN SSH SIGNATURE-----\n \
        U1NIU0lHAAAAAQ\n \
        -----END SSH SIGNATURE-----\n\
        \n\
        hello\n\
        gpgsig in the message is not a header\n";

    #[test]
    fn the_signature_header_is_cut_out_of_the_payload() {
        let split = split(SIGNED.as_bytes(), SHA1_SIGNATURE_HEADER);
        assert_eq!(
            String::from_utf8(split.payload).unwrap(),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
             author T <t@e> 1795696502 +0000\n\
             committer T <t@e> 1795696502 +0100\n\
             \n\
             hello\n\
             gpgsig in the message is not a header\n"
        );
        assert_eq!(
            split.signature.as_deref(),
            Some(&b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ\n-----END SSH SIGNATURE-----\n"[..])
        );
        assert_eq!(split.committer_time, Some(1_795_696_502));
    }

    #[test]
    fn the_other_hash_functions_signature_is_left_out_of_both() {
        let other = "gpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n OTHER\n -----END SSH SIGNATURE-----\n";
        let both = SIGNED.replace("+0100\n", &format!("+0100\n{other}"));
        let sha1 = split(both.as_bytes(), SHA1_SIGNATURE_HEADER);
        assert_eq!(sha1, split(SIGNED.as_bytes(), SHA1_SIGNATURE_HEADER));
        let sha256 = split(both.as_bytes(), SHA256_SIGNATURE_HEADER);
        assert_eq!(sha256.payload, sha1.payload);
        assert_eq!(
            sha256.signature.as_deref(),
            Some(&b"-----BEGIN SSH SIGNATURE-----\nOTHER\n-----END SSH SIGNATURE-----\n"[..])
        );
    }

    #[test]
    fn a_commit_without_the_header_has_no_signature() {
        let unsigned = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter T <t@e> 5 +0000\n\nmsg\n";
        let split = split(unsigned.as_bytes(), SHA1_SIGNATURE_HEADER);
        assert_eq!(
            (split.payload.as_slice(), split.signature, split.committer_time),
            (unsigned.as_bytes(), None, Some(5))
        );
        assert_eq!(super::split(SIGNED.as_bytes(), SHA256_SIGNATURE_HEADER).signature, None);
    }

    #[test]
    fn the_header_is_chosen_by_the_length_of_the_commit_id() {
        assert_eq!(signature_header(&"a".repeat(40)), b"gpgsig");
        assert_eq!(signature_header(&"a".repeat(64)), b"gpgsig-sha256");
    }

    #[test]
    fn committer_times_are_read_after_the_email() {
        assert_eq!(ident_time(b"A <a@b> 1700000000 +0100\n"), Some(1_700_000_000));
        assert_eq!(ident_time(b"A 5 <a@b> 12 -0700\n"), Some(12));
        assert_eq!(ident_time(b"A <a@b>\n"), None);
        assert_eq!(ident_time(b"A a@b 12 +0000\n"), None);
    }
}
