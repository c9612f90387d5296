//! The allowed-signers file: which SSH keys may sign the tracked repository's commits.
//!
//! The format is OpenSSH's (`ssh-keygen(1)`, section "ALLOWED SIGNERS"), the one git reads
//! through `gpg.ssh.allowedSignersFile`. One key per line; blank lines and lines starting with
//! `#` are skipped:
//!
//! ```text
//! PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]
//! ```
//!
//! - **PRINCIPALS**: comma-separated patterns (`alice@example.com,*@ops.example.com`), in double
//!   quotes if they hold spaces. As git does, trust goes by key: a principal is reported, never
//!   matched against the commit's author or committer (which one: see below).
//! - **OPTIONS**: comma-separated, no spaces outside quotes; names are case-insensitive and values
//!   are in double quotes (`\"` inside is a quote).
//!   - `namespaces="git,file"`: the signature namespaces the key may sign for, a pattern list
//!     (`*`, `?`, `!` to exclude). A key whose list does not admit `git` does not count.
//!   - `valid-after="TIME"`, `valid-before="TIME"`: TIME is `YYYYMMDD`, `YYYYMMDDHHMM` or
//!     `YYYYMMDDHHMMSS`, optionally followed by `Z` or `UTC`; both bounds are inclusive. They are
//!     compared with the commit's committer time, as `git verify-commit` does. A TIME without `Z`
//!     is read as UTC, whereas ssh-keygen reads it in the time zone of the machine that checks:
//!     write the `Z` so that the time means the same everywhere.
//!   - `cert-authority` is refused: certificates are not supported; list the signers' own keys.
//! - **KEYTYPE**: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`/`384`/`521`,
//!   `sk-ssh-ed25519@openssh.com` or `sk-ecdsa-sha2-nistp256@openssh.com`.
//!
//! **Which line decides.** git asks ssh-keygen in two steps, and so does CoreOps. First
//! (`-Y find-principals`) the principals of the first line that lists the key and is valid at
//! the commit's time, whatever its namespaces. Then (`-Y verify -I PRINCIPAL`, for each of them
//! in turn) the signature is accepted when some line lists the key, for a principal pattern
//! that admits PRINCIPAL, for the `git` namespace, valid at that time; that PRINCIPAL is the one
//! reported. So a key limited to other namespaces on its first line is refused even if a later
//! line lists it again for `git` under other principals.
//!
//! Every line ssh-keygen refuses is refused (an unquoted value, an unknown or repeated option,
//! a trailing comma, `valid-before` not after `valid-after`, a bad key), so a file CoreOps
//! accepts means the same to `git verify-commit`. A few that ssh-keygen reads are refused too,
//! as mistakes: `cert-authority`, a calendar date that does not exist (`20240231`, which
//! ssh-keygen rolls over into March) and options starting with a comma.

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey};

use crate::model::path::printable;

/// The signature namespace git signs commits in (`ssh-keygen -Y sign -n git`).
pub const GIT_NAMESPACE: &str = "git";

/// What a line is expected to look like, appended to the messages about malformed lines.
const LINE_FORMAT: &str = "expected PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY, as in ssh-keygen(1) \"ALLOWED SIGNERS\"";

/// The key types whose signatures can be verified.
const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// Security-key ECDSA, also verifiable (kept apart: the list above is what messages show).
const SK_ECDSA: &str = "sk-ecdsa-sha2-nistp256@openssh.com";

/// How OpenSSH certificate key types end.
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// The keys trusted to sign commits, as read from an allowed-signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

/// One key line of the file.
#[derive(Debug, Clone)]
struct Entry {
    principals: String,
    key: KeyData,
    namespaces: Option<String>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// The options of one line.
#[derive(Debug, Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

impl AllowedSigners {
    /// Parses the file's text; `name` (the file's path) locates the errors, one per bad line,
    /// as `FILE:LINE: what is wrong and what to write instead`.
    pub fn parse(name: &str, text: &str) -> Result<AllowedSigners, Vec<String>> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            match parse_line(line) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(why) => errors.push(format!("{name}:{}: {why}", index + 1)),
            }
        }
        if errors.is_empty() && entries.is_empty() {
            errors.push(format!(
                "{name}: lists no keys, so no commit could be trusted; add a line such as \
                 `alice@example.com ssh-ed25519 AAAA…` (the signer's public key)"
            ));
        }
        if errors.is_empty() { Ok(AllowedSigners { entries }) } else { Err(errors) }
    }

    /// The principal that git names when it accepts a signature by `key` on a commit whose
    /// committer time is `time` (seconds since the epoch; `None` when the commit has none, which
    /// no validity window holds); `None` when git refuses it. The two steps are described in the
    /// module header ("Which line decides").
    pub(super) fn trusted_principal(&self, key: &KeyData, time: Option<i64>) -> Option<&str> {
        let first = self.entries.iter().find(|e| &e.key == key && e.valid_at(time))?;
        first.principals.split(',').filter(|p| !p.is_empty()).find(|principal| {
            self.entries.iter().any(|e| {
                &e.key == key && pattern_list_admits(&e.principals, principal) && e.permits_git() && e.valid_at(time)
            })
        })
    }
}

impl Entry {
    fn permits_git(&self) -> bool {
        self.namespaces.as_deref().is_none_or(|list| pattern_list_admits(list, GIT_NAMESPACE))
    }

    fn valid_at(&self, time: Option<i64>) -> bool {
        if self.valid_after.is_none() && self.valid_before.is_none() {
            return true;
        }
        let Some(time) = time else { return false };
        let after_start = self.valid_after.is_none_or(|start| time >= start as i64);
        let before_end = self.valid_before.is_none_or(|end| time <= end as i64);
        after_start && before_end
    }
}

/// One line: `None` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let line = line.trim_start_matches([' ', '\t']).trim_end_matches(['\r', ' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = principals_token(line)?;
    if is_key_type(&principals) {
        return Err(format!(
            "the line starts with the key type `{}`; put the signer's principals (such as their \
             e-mail address) first: {LINE_FORMAT}",
            printable(&principals)
        ));
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Err(format!("no key after the principals; {LINE_FORMAT}"));
    }
    let first_word = rest.split([' ', '\t']).next().unwrap_or_default();
    let (options, key_text) = if is_key_type(first_word) || first_word.ends_with(CERT_SUFFIX) {
        (Options::default(), rest)
    } else {
        let (text, after) = split_options(rest)?;
        (parse_options(text)?, after.trim_start_matches([' ', '\t']))
    };
    let key = parse_key(key_text)?;
    Ok(Some(Entry {
        principals,
        key,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
    }))
}

/// The principals field and what follows it. A double quote opens a run that may hold spaces
/// and ends the field where it closes (the quotes themselves are dropped).
fn principals_token(line: &str) -> Result<(String, &str), String> {
    let end = line.find([' ', '\t', '"']).unwrap_or(line.len());
    let mut token = line[..end].to_string();
    let mut rest = &line[end..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let close = quoted.find('"').ok_or_else(|| "the principals' opening quote is never closed".to_string())?;
        token.push_str(&quoted[..close]);
        rest = &quoted[close + 1..];
    }
    if token.is_empty() {
        return Err(format!("the principals are empty; {LINE_FORMAT}"));
    }
    Ok((token, rest))
}

fn is_key_type(word: &str) -> bool {
    KEY_TYPES.contains(&word) || word == SK_ECDSA || word == "ssh-dss"
}

/// Splits the options (up to the first space or tab outside quotes) from the key after them.
fn split_options(text: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Ok((&text[..i], &text[i..])),
            _ => escaped = false,
        }
    }
    if quoted {
        Err("an option's value opens a quote that is never closed".to_string())
    } else {
        Err(format!("no key after the options; {LINE_FORMAT}"))
    }
}

/// The comma-separated options of a line.
fn parse_options(mut text: &str) -> Result<Options, String> {
    let mut options = Options::default();
    loop {
        text = parse_option(text, &mut options)?;
        match text.strip_prefix(',') {
            None if text.is_empty() => break,
            None => return Err(format!("expected a comma between options, found `{}`", shown(text))),
            Some("") => return Err("the options end with a comma; remove it".to_string()),
            Some(next) => text = next,
        }
    }
    if let (Some(after), Some(before)) = (options.valid_after, options.valid_before)
        && before <= after
    {
        return Err("valid-before is not later than valid-after, so the key is never valid".to_string());
    }
    Ok(options)
}

/// Reads one option at the start of `text` into `options`; returns what follows it.
fn parse_option<'t>(text: &'t str, options: &mut Options) -> Result<&'t str, String> {
    let name_end = text.find(['=', ',']).unwrap_or(text.len());
    let name = text[..name_end].to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("an option has no name (a stray comma or quote?); {LINE_FORMAT}"));
    }
    if name == "cert-authority" {
        return Err("cert-authority: certificate authorities are not supported; list the \
                    signers' own public keys instead"
            .to_string());
    }
    let Some(value_text) = text[name_end..].strip_prefix('=') else {
        return Err(unknown_option(&text[..name_end]));
    };
    let (value, rest) = dequote(&name, value_text)?;
    let slot_taken = match name.as_str() {
        "namespaces" => options.namespaces.replace(value).is_some(),
        "valid-after" => options.valid_after.replace(parse_time(&name, &value)?).is_some(),
        "valid-before" => options.valid_before.replace(parse_time(&name, &value)?).is_some(),
        _ => return Err(unknown_option(&text[..name_end])),
    };
    if slot_taken {
        return Err(format!("{name} is given twice; keep one"));
    }
    Ok(rest)
}

fn unknown_option(name: &str) -> String {
    format!(
        "unknown option `{}`; the options are namespaces=\"…\", valid-after=\"…\" and \
         valid-before=\"…\" ({LINE_FORMAT})",
        shown(name)
    )
}

/// Text of the file shown in a message: escaped, and cut short.
fn shown(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let cut: String = text.chars().take(MAX_CHARS).collect();
    let ellipsis = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{ellipsis}", printable(&cut))
}

/// A double-quoted option value (`\"` is a quote) and what follows it.
fn dequote<'t>(name: &str, text: &'t str) -> Result<(String, &'t str), String> {
    let Some(inner) = text.strip_prefix('"') else {
        return Err(format!("the value of {name} must be in double quotes: {name}=\"…\""));
    };
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &inner[i + 1..])),
            '\\' if inner[i + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            c => value.push(c),
        }
    }
    Err(format!("the value of {name} has no closing quote"))
}

/// A `valid-after`/`valid-before` time as seconds since the epoch (UTC, see the module header).
fn parse_time(name: &str, value: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{name}=\"{}\" is not a time; write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, \
             optionally followed by Z (UTC), such as {name}=\"20250101Z\"",
            shown(value)
        )
    };
    let digits =
        strip_suffix_ignore_case(value, "Z").or_else(|| strip_suffix_ignore_case(value, "UTC")).unwrap_or(value);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| digits.get(range).map_or(0, |d| d.parse::<u32>().unwrap_or(0));
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let seconds = days_since_epoch(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(seconds).ok().filter(|&s| s > 0).ok_or_else(|| format!("{name} must be after 1970-01-01"))
}

fn strip_suffix_ignore_case<'t>(text: &'t str, suffix: &str) -> Option<&'t str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let head = text.get(..cut)?;
    text[cut..].eq_ignore_ascii_case(suffix).then_some(head).filter(|h| !h.is_empty())
}

fn is_leap_year(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (negative before it).
fn days_since_epoch(year: u32, month: u32, day: u32) -> i64 {
    let days_before_year = |y: i64| 365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400);
    let year = i64::from(year);
    let leap_day = i64::from(month > 2 && is_leap_year(year as u32));
    let days_before_month: i64 = (1..month).map(|m| i64::from(days_in_month(2001, m))).sum();
    // Days before `year` counted from year 0, minus the same for 1970; a year's own leap day is
    // counted by `leap_day`, so the years are counted up to `year - 1`.
    days_before_year(year - 1) - days_before_year(1969) + days_before_month + leap_day + i64::from(day) - 1
}

/// The public key of a line (`KEYTYPE BASE64KEY [COMMENT]`), refused when it cannot sign
/// commits that CoreOps can check.
fn parse_key(text: &str) -> Result<KeyData, String> {
    let key_type = text.split([' ', '\t']).next().unwrap_or_default();
    if key_type.ends_with(CERT_SUFFIX) {
        return Err(format!(
            "`{}` is a certificate; certificates are not supported: list the signer's own public key",
            shown(key_type)
        ));
    }
    if key_type == "ssh-dss" {
        return Err("DSA keys (ssh-dss) are not supported, as in current OpenSSH; use an ed25519 key".to_string());
    }
    if !is_key_type(key_type) {
        return Err(format!("unknown key type `{}`; the key types are {}", shown(key_type), KEY_TYPES.join(", ")));
    }
    let key = PublicKey::from_openssh(text)
        .map_err(|e| format!("the {key_type} key is not valid ({e}); copy the whole line of the signer's .pub file"))?;
    match key.algorithm() {
        Algorithm::Dsa | Algorithm::Other(_) => Err(format!("{key_type} keys are not supported")),
        _ => Ok(key.key_data().clone()),
    }
}

/// OpenSSH's pattern lists: comma-separated patterns with `*` and `?`; a pattern starting with
/// `!` excludes. `name` is admitted when some plain pattern matches it and no excluding one does.
fn pattern_list_admits(list: &str, name: &str) -> bool {
    let mut admitted = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(excluded) if wildcard_match(excluded, name) => return false,
            Some(_) => {}
            None => admitted |= wildcard_match(pattern, name),
        }
    }
    admitted
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters and `?` for one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, covered)) = backtrack {
            backtrack = Some((star, covered + 1));
            p = star + 1;
            t = covered + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 public key (made with `ssh-keygen -t ed25519`).
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4ALkbHygCFM0h3s5RM+puZPriyAAyrMCjkex5rq/ZZ";

    fn one(line: &str) -> Result<Entry, String> {
        AllowedSigners::parse("F", line).map(|mut s| s.entries.remove(0)).map_err(|errors| errors.join("\n"))
    }

    #[test]
    fn lines_ssh_keygen_accepts_are_read() {
        // Each line was checked with `ssh-keygen -Y verify` (OpenSSH 9.2): it verifies.
        for line in [
            format!("a@b {KEY}"),
            format!("  a@b {KEY} a comment"),
            format!("\"a@b\" {KEY}"),
            format!("x@y,*@b {KEY}"),
            format!("a@b namespaces=\"git\" {KEY}"),
            format!("a@b NAMESPACES=\"git\" {KEY}"),
            format!("a@b namespaces=\"!file,*\" {KEY}"),
            format!("a@b valid-after=\"20200101Z\",valid-before=\"29990101\" {KEY}"),
            format!("a@b {KEY}\r"),
        ] {
            let entry = one(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(entry.permits_git(), "{line}");
        }
    }

    #[test]
    fn the_principals_are_kept_as_written() {
        assert_eq!(one(&format!("x@y,*@b {KEY}")).unwrap().principals, "x@y,*@b");
        assert_eq!(one(&format!("\"a b@c\" {KEY}")).unwrap().principals, "a b@c");
    }

    #[test]
    fn blank_and_comment_lines_are_skipped_and_lines_are_counted() {
        let text = format!("# trusted\n\n   \n\t# indented comment\na@b {KEY}\nbad line\n");
        let errors = AllowedSigners::parse("signers", &text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("signers:6: "), "{errors:?}");
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        let errors = AllowedSigners::parse("signers", "# nothing yet\n").unwrap_err();
        assert!(errors[0].starts_with("signers: lists no keys"), "{errors:?}");
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        // (line, part of the message). ssh-keygen 9.2 refuses each of these lines too, except
        // the three marked STRICTER, which it reads.
        let cases = [
            (format!("a@b namespaces=git {KEY}"), "must be in double quotes"),
            (format!("a@b foo {KEY}"), "unknown option `foo`"),
            (format!("a@b no-touch-required {KEY}"), "unknown option `no-touch-required`"),
            (format!("a@b namespaces=\"git\",namespaces=\"git\" {KEY}"), "namespaces is given twice"),
            (format!("a@b valid-before=\"29990101Z\", {KEY}"), "end with a comma"),
            (format!("a@b valid-after=\"20200101Z\",valid-before=\"20100101Z\" {KEY}"), "never valid"),
            (format!("a@b valid-after=\"20200101Z\",valid-before=\"20200101Z\" {KEY}"), "never valid"),
            // STRICTER: ssh-keygen matches such a line against certificates only.
            (format!("a@b cert-authority {KEY}"), "certificate authorities are not supported"),
            (format!("a@b valid-before=\"2020\" {KEY}"), "is not a time"),
            (format!("a@b valid-before=\"2020010112\" {KEY}"), "is not a time"),
            (format!("a@b valid-before=\"2020x101\" {KEY}"), "is not a time"),
            (format!("a@b valid-before=\"20201301\" {KEY}"), "is not a time"),
            // STRICTER: ssh-keygen reads 2020-03-01.
            (format!("a@b valid-before=\"20200230\" {KEY}"), "is not a time"),
            (format!("a@b valid-before=\"20200101246000\" {KEY}"), "is not a time"),
            (format!("a@b valid-before=\"19600101\" {KEY}"), "after 1970"),
            (format!("a@b namespaces=\"git {KEY}"), "never closed"),
            (format!("\"a@b {KEY}"), "never closed"),
            (format!("\"a@b\",c@d {KEY}"), "has no name"),
            // STRICTER: ssh-keygen skips one leading comma.
            (format!("a@b ,namespaces=\"git\" {KEY}"), "has no name"),
            ("a@b".to_string(), "no key after the principals"),
            ("a@b namespaces=\"git\"".to_string(), "no key after the options"),
            (KEY.to_string(), "starts with the key type"),
            ("a@b ssh-ed25519 AAAAnotbase64!".to_string(), "key is not valid"),
            // The key type named does not match the one inside the key.
            (format!("a@b ssh-rsa {}", &KEY["ssh-ed25519 ".len()..]), "key is not valid"),
            ("a@b ssh-dss AAAAB3NzaC1kc3M=".to_string(), "DSA keys"),
            ("a@b ssh-ed25519-cert-v01@openssh.com AAAA".to_string(), "certificates are not supported"),
            (format!("a@b namespaces=\"git\" ssh-foo {}", &KEY["ssh-ed25519 ".len()..]), "unknown key type `ssh-foo`"),
        ];
        for (line, expected) in cases {
            let why = one(&line).map(|_| ()).expect_err(&line);
            assert!(
                why.starts_with("F:1: ") && why.contains(expected),
                "{line}\n  gave: {why}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn control_characters_in_a_line_are_escaped_in_messages() {
        let why = one(&format!("a@b fo\x1b[31mo {KEY}")).map(|_| ()).unwrap_err();
        assert!(why.contains("fo\\x1b[31mo") && !why.contains('\x1b'), "{why}");
    }

    #[test]
    fn namespaces_decide_whether_a_key_counts_for_git() {
        // (namespaces, admits git): as ssh-keygen's match_pattern_list, checked with
        // `ssh-keygen -Y verify -n git` for the first four.
        for (list, admitted) in [
            ("git", true),
            ("file", false),
            ("!file,*", true),
            ("!git,*", false),
            ("file,git", true),
            ("g?t", true),
            ("g*", true),
            ("*", true),
            ("gi", false),
            ("git*x", false),
            ("*t*", true),
            ("", false),
        ] {
            let entry = one(&format!("a@b namespaces=\"{list}\" {KEY}")).unwrap();
            assert_eq!(entry.permits_git(), admitted, "namespaces=\"{list}\"");
        }
    }

    #[test]
    fn a_quote_in_a_value_is_escaped_with_a_backslash() {
        let entry = one(&format!("a@b namespaces=\"gi\\\"t\" {KEY}")).unwrap();
        assert_eq!(entry.namespaces.as_deref(), Some("gi\"t"));
    }

    #[test]
    fn times_are_utc_seconds_since_the_epoch() {
        // Expected values from `date -u -d '…' +%s`.
        for (text, seconds) in [
            ("19700102", 86_400),
            ("20200101", 1_577_836_800),
            ("20200101Z", 1_577_836_800),
            ("20200101utc", 1_577_836_800),
            ("202002291230", 1_582_979_400),
            ("20240301000000Z", 1_709_251_200),
            ("21000301000000", 4_107_542_400),
            ("99991231235959Z", 253_402_300_799),
        ] {
            assert_eq!(parse_time("valid-before", text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn validity_bounds_are_inclusive() {
        let entry = one(&format!("a@b valid-after=\"20200101Z\",valid-before=\"20200102Z\" {KEY}")).unwrap();
        // As `ssh-keygen -Y verify -Overify-time=…` answers at and around each bound.
        for (time, valid) in
            [(1_577_836_799, false), (1_577_836_800, true), (1_577_923_200, true), (1_577_923_201, false)]
        {
            assert_eq!(entry.valid_at(Some(time)), valid, "{time}");
        }
        assert!(!entry.valid_at(None));
        assert!(one(&format!("a@b {KEY}")).unwrap().valid_at(None));
    }
}
