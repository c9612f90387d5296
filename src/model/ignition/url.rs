//! URL checks as Ignition makes them: Go's `net/url` parse errors, the allowed schemes, and
//! the grammar of `data:` URLs.

/// Why a URL is not acceptable. The texts are Ignition's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Go's `url.Parse` would fail.
    #[error("unable to parse url")]
    Unparsable,
    /// The scheme is not one Ignition fetches.
    #[error("invalid url scheme")]
    Scheme,
    /// An `s3://` URL with an empty `versionId`.
    #[error("invalid S3 object VersionId")]
    S3VersionId,
    /// An `arn:` URL that is not an S3 object or access point ARN.
    #[error("invalid S3 ARN format")]
    Arn,
    /// A malformed `data:` URL.
    #[error("{0}")]
    Data(&'static str),
}

/// The pieces of a parsed URL that the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Lower-cased scheme, `""` when none.
    pub scheme: String,
    /// The part after `scheme:` when it does not start with `/`.
    pub opaque: &'a str,
    /// The raw query (without `?`).
    pub query: &'a str,
}

/// Parses like Go's `url.Parse`, returning `None` where Go returns an error.
pub fn parse(s: &str) -> Option<Parsed<'_>> {
    let (u, fragment) = s.split_once('#').unwrap_or((s, ""));
    if u.bytes().any(|b| b < 0x20 || b == 0x7f) || !valid_escapes(fragment) {
        return None;
    }
    let (scheme, rest) = split_scheme(u)?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            return Some(Parsed { scheme, opaque: rest, query });
        }
        if rest.split('/').next().is_some_and(|seg| seg.contains(':')) {
            return None;
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let end = after.find('/').unwrap_or(after.len());
        let (authority, p) = after.split_at(end);
        if !valid_authority(authority) {
            return None;
        }
        path = p;
    }
    valid_escapes(path).then_some(Parsed { scheme, opaque: "", query })
}

fn split_scheme(u: &str) -> Option<(String, &str)> {
    for (i, b) in u.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((u[..i].to_ascii_lowercase(), &u[i + 1..])),
            _ => return Some((String::new(), u)),
        }
    }
    Some((String::new(), u))
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if let Some(info) = userinfo {
        let ok = info.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c));
        if !ok || !valid_escapes(info) {
            return false;
        }
    }
    let port_ok =
        |port: &str| port.is_empty() || port.strip_prefix(':').is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit()));
    if let Some(inner) = host.strip_prefix('[') {
        let Some(close) = inner.find(']') else { return false };
        if !port_ok(&inner[close + 1..])
            || inner[..close].parse::<std::net::Ipv6Addr>().is_err() && !inner[..close].contains('%')
        {
            return false;
        }
    } else if let Some(colon) = host.rfind(':') {
        if !port_ok(&host[colon..]) {
            return false;
        }
    }
    valid_host_chars(host)
}

fn valid_host_chars(host: &str) -> bool {
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = host.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) if v >= 0x80 || v == 0x25 => i += 3,
                _ => return false,
            }
            continue;
        }
        if c < 0x80 && !c.is_ascii_alphanumeric() && !b"-_.~!$&'()*+,;=:[]<>\"".contains(&c) {
            return false;
        }
        i += 1;
    }
    true
}

/// Ignition's `validateURL`: parseable and of a scheme it can fetch.
pub fn validate(s: &str) -> Result<(), UrlError> {
    // A `data:` URL is opaque to Go's parser and its grammar admits no character the parser
    // rejects, so its own check is enough (and one pass over what can be megabytes).
    if s.starts_with("data:") {
        return validate_data_url(s);
    }
    let u = parse(s).ok_or(UrlError::Unparsable)?;
    match u.scheme.as_str() {
        "http" | "https" | "tftp" | "gs" => Ok(()),
        "s3" => check_version_id(u.query),
        "arn" => check_arn(s, u.opaque, u.query),
        "data" => validate_data_url(s),
        _ => Err(UrlError::Scheme),
    }
}

fn check_version_id(query: &str) -> Result<(), UrlError> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "versionId" {
            return if v.is_empty() { Err(UrlError::S3VersionId) } else { Ok(()) };
        }
    }
    Ok(())
}

fn check_arn(_full_url: &str, opaque: &str, query: &str) -> Result<(), UrlError> {
    let full = format!("arn:{opaque}");
    if full.matches(':').count() < 5 {
        return Err(UrlError::Arn);
    }
    let parts: Vec<&str> = full.splitn(6, ':').collect();
    if parts.get(2) != Some(&"s3") {
        return Err(UrlError::Arn);
    }
    let resource = parts.get(5).copied().unwrap_or("");
    let n = full.split('/').count();
    if (resource.starts_with("accesspoint/") && n < 3) || n < 2 {
        return Err(UrlError::Arn);
    }
    check_version_id(query)
}

/// The grammar of a `data:` URL, as the `dataurl` Go package checks it.
pub fn validate_data_url(s: &str) -> Result<(), UrlError> {
    let rest = s.strip_prefix("data:").ok_or(UrlError::Data("missing data prefix"))?;
    let comma = rest.find(',').ok_or(UrlError::Data("missing comma before data"))?;
    let (meta, data) = (&rest[..comma], &rest[comma + 1..]);
    let mut params = meta.split(';');
    let media = params.next().unwrap_or("");
    if !media.is_empty() {
        let (ty, sub) = media.split_once('/').ok_or(UrlError::Data("missing media type slash"))?;
        let known = ["text", "image", "audio", "video", "application", "message", "multipart"];
        if !(known.contains(&ty.to_ascii_lowercase().as_str()) || ty.to_ascii_lowercase().starts_with("x-")) {
            return Err(UrlError::Data("invalid media type"));
        }
        if sub.is_empty() {
            return Err(UrlError::Data("incomplete media type"));
        }
    }
    let mut base64 = false;
    for param in params {
        if param == "base64" {
            base64 = true;
        } else if !param.contains('=') {
            return Err(UrlError::Data("unterminated parameter sequence"));
        }
    }
    if base64 {
        if !all_base64_chars(data.as_bytes()) {
            return Err(UrlError::Data("invalid data character"));
        }
        if !valid_padded_base64(data.as_bytes()) {
            return Err(UrlError::Data("illegal base64 data"));
        }
    } else if !data.bytes().all(|c| ESCAPED_CHARS[usize::from(c)]) || !valid_escapes(data) {
        return Err(UrlError::Data("invalid data character"));
    }
    Ok(())
}

/// A lookup table, built at compile time, of the bytes `c` for which `member` holds.
macro_rules! byte_set {
    (|$c:ident| $member:expr) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let $c = b as u8;
            table[b] = $member;
            b += 1;
        }
        table
    }};
}

/// The characters of an escaped payload: printable ASCII except space, `<>#"{}|\^[]` and the
/// backtick.
const ESCAPED_CHARS: [bool; 256] = byte_set!(|c| c > b' '
    && c < 0x7f
    && !matches!(c, b'<' | b'>' | b'#' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'[' | b']' | b'`'));

/// Whether every byte of `data` is a character of a base64 payload (letters, digits, `+`, `/`
/// and the padding `=`): a block of bytes at a time with no early exit inside it, tested by
/// comparisons rather than a table, which the compiler turns into vector code (a payload of
/// megabytes is checked in a fraction of a millisecond).
fn all_base64_chars(data: &[u8]) -> bool {
    fn is_base64_char(c: u8) -> bool {
        let letter = (c | 0x20).wrapping_sub(b'a') < 26;
        let digit = c.wrapping_sub(b'0') < 10;
        letter | digit | (c == b'+') | (c == b'/') | (c == b'=')
    }
    data.chunks(64).all(|block| block.iter().fold(true, |all, &c| all & is_base64_char(c)))
}

/// Standard base64 with padding: whole quads, `=` only as the last one or two characters.
fn valid_padded_base64(data: &[u8]) -> bool {
    let padding = data.iter().rev().take_while(|&&c| c == b'=').count();
    data.len() % 4 == 0 && padding <= 2 && !data[..data.len() - padding].contains(&b'=')
}

/// `url` as it may be printed or logged: without userinfo (`user:password@`), query and
/// fragment, which carry credentials and tokens, and without the payload of a `data:` URL (a
/// file's content). A cut query, fragment or payload is marked `…`, so the URL stays
/// recognisable. Every URL that reaches a message, a plan or a log goes through here.
pub fn redacted(url: &str) -> String {
    if url.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:")) {
        return match url.split_once(',') {
            Some((head, payload)) if !payload.is_empty() => format!("{head},…"),
            Some(_) => url.to_string(),
            None => format!("{}…", &url[..5]),
        };
    }
    let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut shown = match rest.split_once("://") {
        Some((scheme, after)) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => rest.to_string(),
    };
    if !query.is_empty() {
        shown.push_str("?…");
    }
    if !fragment.is_empty() {
        shown.push_str("#…");
    }
    shown
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_base64_check_takes_exactly_the_base64_characters() {
        for c in 0..=255u8 {
            let want = c.is_ascii_alphanumeric() || b"+/=".contains(&c);
            assert_eq!(all_base64_chars(&[c]), want, "byte {c:#04x}");
            // At every place of a block, and past the first block.
            let mut long = vec![b'A'; 150];
            long[c as usize % 150] = c;
            assert_eq!(all_base64_chars(&long), want, "byte {c:#04x} in a long payload");
        }
        assert!(all_base64_chars(b""));
    }

    use super::*;

    #[test]
    fn validates_like_ignition() {
        let cases: &[(&str, Result<(), UrlError>)] = &[
            ("http://example.com/a", Ok(())),
            ("https://example.com/b?x=1", Ok(())),
            ("tftp://10.0.0.1/c", Ok(())),
            ("s3://bucket/key", Ok(())),
            ("s3://bucket/key?versionId=", Err(UrlError::S3VersionId)),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/test/object/some/path", Ok(())),
            ("arn:aws:iam::123456789012:user/x", Err(UrlError::Arn)),
            ("gs://bucket/object", Ok(())),
            ("data:,hello%20world", Ok(())),
            ("data:;base64,aGk=", Ok(())),
            ("data:;base64,aGk", Err(UrlError::Data("illegal base64 data"))),
            ("data:;base64,a=Gk", Err(UrlError::Data("illegal base64 data"))),
            ("DATA:,x", Err(UrlError::Data("missing data prefix"))),
            ("ftp://example.com/a", Err(UrlError::Scheme)),
            ("%gh&%ij", Err(UrlError::Unparsable)),
            ("/just/a/path", Err(UrlError::Scheme)),
            ("http://exa mple.com/", Err(UrlError::Unparsable)),
            ("https:opaque", Ok(())),
            (":nope", Err(UrlError::Unparsable)),
        ];
        for (input, want) in cases {
            assert_eq!(&validate(input), want, "case {input}");
        }
    }

    #[test]
    fn data_payload_characters_are_those_of_the_dataurl_grammar() {
        // The grammar spelled out: base64 is A–Z, a–z, 0–9, "+", "/" and padding "="; an escaped
        // payload is printable ASCII (0x21–0x7E) without the RFC 2396 "unwise" and delimiter
        // characters <>#"{}|\^[]`, and "%" only as the start of an escape.
        let base64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        let excluded = "<>#\"{}|\\^[]`%";
        let bad_char = Err(UrlError::Data("invalid data character"));
        for c in (0..0x80u8).map(char::from).chain(['é', '\u{2028}']) {
            let b64_want = if base64.contains(c) { Ok(()) } else { bad_char.clone() };
            assert_eq!(validate_data_url(&format!("data:;base64,AAA{c}")), b64_want, "base64 payload with {c:?}");
            let printable = ('\u{21}'..='\u{7e}').contains(&c);
            let escaped_want = if printable && !excluded.contains(c) { Ok(()) } else { bad_char.clone() };
            assert_eq!(validate_data_url(&format!("data:,a{c}b")), escaped_want, "escaped payload with {c:?}");
        }
        assert_eq!(validate_data_url("data:,a%41b"), Ok(()));
        assert_eq!(validate_data_url("data:,a%4"), bad_char);
    }

    #[test]
    fn redaction_cuts_userinfo_query_fragment_and_data_payloads() {
        let cases = [
            (
                "https://admin:S3cretPW@example.com:8443/a/b.conf?token=T0KEN#frag",
                "https://example.com:8443/a/b.conf?…#…",
            ),
            ("https://TOKEN@example.com", "https://example.com"),
            ("http://example.com/p@th?", "http://example.com/p@th"),
            ("s3://bucket/key?versionId=3", "s3://bucket/key?…"),
            ("arn:aws:s3:::bucket/key", "arn:aws:s3:::bucket/key"),
            ("data:text/plain;base64,c2VjcmV0", "data:text/plain;base64,…"),
            ("data:,", "data:,"),
            ("data:oops", "data:…"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }
}
