//! The tracking config (`/etc/core-ops/tracking.yaml`): the operator's intent that `core-ops
//! init` writes and every `core-ops agent` cycle reads. Which repository the host follows, at
//! which ref, as which host of it, and how to trust and reach it:
//!
//! ```yaml
//! version: 1
//! repository: https://git.example.com/infra/hosts.git
//! ref: main
//! host: web1
//! trust: /etc/core-ops/allowed-signers      # optional: tip commits must be SSH-signed by one of its keys
//! access-token-file: /etc/core-ops/token    # optional: an HTTP(S) token, by file (never the token)
//! ca-file: /etc/core-ops/ca.pem             # optional: more certificate authorities for HTTPS
//! ```
//!
//! [`parse`] reads it with the positioned YAML layer and reports every mistake at once, located
//! (`error: FILE:LINE:COL: …`, as source repository issues are shown), with a "did you mean"
//! for a misspelt key. [`to_yaml`] writes it back, quoting a value only where YAML would read
//! it as something else; what it writes parses to the same [`Tracking`]. Secrets are never in
//! this file: a repository URL with a password is refused in favour of `access-token-file`.
//! The JSON Schema of the document is `schemas/tracking.schema.json` ([`Tracking`]'s).

use schemars::JsonSchema;

use crate::model::path::check_node_path;
use crate::model::report::Mark;
use crate::model::source::{SourceIssue, is_identifier};
use crate::model::spelling;
use crate::model::yaml::{self, Node, Style, Value};

/// Where the tracking config lives (under the root).
pub const TRACKING_FILE: &str = "/etc/core-ops/tracking.yaml";
/// Where `render-ignition --track --track-trust FILE` installs the allowed signers.
pub const ALLOWED_SIGNERS_FILE: &str = "/etc/core-ops/allowed-signers";
/// The document version this build reads and writes.
pub const TRACKING_VERSION: u32 = 1;
/// The mode the file is written with: it names where the token is.
pub const TRACKING_MODE: u32 = 0o600;

/// The first line [`to_yaml`] writes.
const HEADER: &str = "# The repository this host follows (`core-ops agent`). Change it with `core-ops init --force`.";

/// The keys of the document, in the order [`to_yaml`] writes them.
const KEYS: [&str; 7] = ["version", "repository", "ref", "host", "trust", "access-token-file", "ca-file"];

/// What a host follows.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(title = "CoreOps tracking config (/etc/core-ops/tracking.yaml)", transform = with_version)]
pub struct Tracking {
    /// The repository: an `https://`, `http://`, `git://`, `ssh://` or `file://` URL, an
    /// scp-like `user@host:path`, or a local path. Without a password: name a token file in
    /// `access-token-file` instead.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// The ref to follow (a branch, a tag or a full ref name).
    #[serde(rename = "ref")]
    #[schemars(length(min = 1))]
    pub reference: String,
    /// The host of the repository (`hosts/<host>/`) this machine is.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub host: String,
    /// An allowed-signers file (the format of git's `gpg.ssh.allowedSignersFile`): when set, the
    /// tip commit must carry a valid SSH signature by one of its keys.
    #[schemars(regex(pattern = "^/"))]
    pub trust: Option<String>,
    /// A file holding the token for an HTTP(S) repository.
    #[schemars(regex(pattern = "^/"))]
    pub access_token_file: Option<String>,
    /// A file of PEM certificate authorities trusted for an HTTPS repository, besides the
    /// system's.
    #[schemars(regex(pattern = "^/"))]
    pub ca_file: Option<String>,
}

/// Adds the `version` key, which [`Tracking`] does not carry, to its schema.
fn with_version(schema: &mut schemars::Schema) {
    let version = serde_json::json!({
        "description": "Version of this file's shape.",
        "const": TRACKING_VERSION,
    });
    if let Some(properties) = schema.get_mut("properties").and_then(serde_json::Value::as_object_mut) {
        properties.insert("version".into(), version);
    }
    if let Some(required) = schema.get_mut("required").and_then(serde_json::Value::as_array_mut) {
        required.insert(0, "version".into());
    }
}

/// Reads the tracking config `text`, named `name` in messages. On failure, every problem
/// found, each one line (`error: NAME:LINE:COL: …`).
pub fn parse(name: &str, text: &str) -> Result<Tracking, Vec<String>> {
    let mut reader = Reader { name, issues: Vec::new() };
    let tracking = reader.document(text);
    match tracking {
        Some(t) if reader.issues.is_empty() => Ok(t),
        _ => Err(reader.issues.iter().map(SourceIssue::to_string).collect()),
    }
}

/// What is wrong with the values of `t`, one message each: what [`parse`] reports of a file
/// holding them. `core-ops init` checks what it is about to write with it.
pub fn problems(t: &Tracking) -> Vec<String> {
    let paths = [("trust", &t.trust), ("access-token-file", &t.access_token_file), ("ca-file", &t.ca_file)];
    let mut out: Vec<String> =
        [repository_problem(&t.repository), reference_problem(&t.reference), host_problem(&t.host)]
            .into_iter()
            .flatten()
            .collect();
    out.extend(paths.iter().filter_map(|(key, p)| p.as_deref().and_then(|p| path_problem(key, p))));
    out
}

/// The file's text: a comment line, then `version` and the keys that are set, in the
/// documented order. A value is written plain when YAML reads it back as that very string,
/// double-quoted otherwise.
pub fn to_yaml(t: &Tracking) -> String {
    let version = TRACKING_VERSION.to_string();
    let values: [Option<&str>; 7] = [
        Some(&version),
        Some(&t.repository),
        Some(&t.reference),
        Some(&t.host),
        t.trust.as_deref(),
        t.access_token_file.as_deref(),
        t.ca_file.as_deref(),
    ];
    let mut out = format!("{HEADER}\n");
    for (key, value) in KEYS.iter().zip(values) {
        if let Some(value) = value {
            let value = if *key == "version" { value.to_string() } else { scalar(value) };
            out.push_str(&format!("{key}: {value}\n"));
        }
    }
    out
}

/// `value` as a YAML scalar: plain when the YAML layer reads the plain form back as the same
/// string (no comment, indicator, number, boolean or null look-alike), it holds nothing to
/// escape, and no YAML 1.1 reader could take it for anything else either: it starts with a
/// letter or `/` (YAML 1.1's numbers, dates, `=` and `<<` do not) and is none of the words
/// `yes`, `no`, `on`, `off`, `y`, `n`. Double-quoted otherwise.
fn scalar(value: &str) -> String {
    let plain_reads_back = yaml::parse(&format!("k: {value}\n")).ok().is_some_and(|doc| {
        let node = doc.root.get("k");
        matches!(&doc.root.value, Value::Map(entries) if entries.len() == 1)
            && node.is_some_and(|n| {
                matches!(n.value, Value::Scalar { style: Style::Plain, .. })
                    && n.as_scalar() == Some(value)
                    && n.kind_tag() == "!!str"
            })
    });
    let yaml11_word = ["y", "n", "yes", "no", "on", "off"].iter().any(|w| value.eq_ignore_ascii_case(w));
    let yaml11_safe_start = value.starts_with(|c: char| c.is_alphabetic() || c == '/');
    if plain_reads_back && yaml11_safe_start && !yaml11_word && !value.chars().any(needs_escape) {
        value.to_string()
    } else {
        double_quoted(value)
    }
}

/// Characters never written as they are: control characters, and those that break lines or
/// mark a byte order.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A YAML double-quoted scalar: `"` and `\` escaped, and every control or line-breaking
/// character as a `\uXXXX` escape (`\n` and `\t` by name).
fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What is wrong with a repository location, if anything.
fn repository_problem(repository: &str) -> Option<String> {
    if repository.is_empty() {
        return Some("`repository` is empty; name the repository's URL or path".into());
    }
    if let Some(problem) = text_problem("repository", repository) {
        return Some(problem);
    }
    if has_password(repository) {
        return Some(
            "`repository` carries a password in its URL; put the token in a file (mode 0600) and name that file \
             in `access-token-file`"
                .into(),
        );
    }
    if let Some(part) = http_secret_part(repository) {
        return Some(format!(
            "`repository` carries {part} in its URL, which CoreOps would record and print; drop it, put a token \
             in a file (mode 0600) and name that file in `access-token-file` (it is sent as the password, with the \
             user name `core-ops`)"
        ));
    }
    (is_local_path(repository) && !repository.starts_with('/')).then(|| {
        format!("`repository` {repository:?} is a relative path; write the repository's absolute path on this host")
    })
}

/// Whether `repository` names a local path: not a URL, and not scp-like (`host:path`, where,
/// as git reads it, a `:` comes before any `/`).
fn is_local_path(repository: &str) -> bool {
    !repository.contains("://") && !repository.split('/').next().unwrap_or_default().contains(':')
}

/// Whether `url` is `scheme://user:password@…`.
fn has_password(url: &str) -> bool {
    let Some((_, after)) = url.split_once("://") else { return false };
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// What an `http(s)://` URL carries that may be a secret (it is recorded in the state and shown
/// in reports): a user name (often a token put there), a query or a fragment. `None` for other
/// schemes: an ssh URL's user (`git@…`) is no secret.
fn http_secret_part(url: &str) -> Option<&'static str> {
    let (scheme, after) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    if authority.contains('@') {
        Some("a user name")
    } else if after.contains('?') {
        Some("a query")
    } else if after.contains('#') {
        Some("a fragment")
    } else {
        None
    }
}

/// What is wrong with a ref name, if anything: the rules of `git check-ref-format` (no
/// control characters, spaces, `~ ^ : ? * [ \`, `..`, `@{`, no component starting with `.`
/// or ending in `.lock`, no empty component), and no leading `-`.
fn reference_problem(reference: &str) -> Option<String> {
    let why = if reference.is_empty() {
        Some("is empty; name a branch, a tag or a full ref such as refs/heads/main")
    } else if reference.starts_with('-') {
        Some("starts with `-`")
    } else if reference.chars().any(|c| c.is_control() || " ~^:?*[\\".contains(c)) {
        Some("holds a space, a control character or one of ~ ^ : ? * [ \\, which git refuses in ref names")
    } else if reference.contains("..") || reference.contains("@{") || reference == "@" {
        Some("holds `..` or `@{` (or is `@`), which git refuses in ref names")
    } else if reference.ends_with('.') || reference.split('/').any(|c| c.is_empty() || c.starts_with('.')) {
        Some("has an empty component, one starting with `.`, or ends with `.`, which git refuses in ref names")
    } else if reference.split('/').any(|c| c.ends_with(".lock")) {
        Some("has a component ending in `.lock`, which git refuses in ref names")
    } else {
        None
    };
    why.map(|why| format!("`ref` {why}"))
}

/// What is wrong with a host name, if anything.
fn host_problem(host: &str) -> Option<String> {
    (!is_identifier(host)).then(|| {
        format!(
            "`host` must be the name of a folder under hosts/ in the repository: letters, digits, `.`, `_` and `-`, \
             starting with a letter or digit; got {host:?}"
        )
    })
}

/// What is wrong with the path of an optional file, if anything.
fn path_problem(key: &str, path: &str) -> Option<String> {
    if let Some(problem) = text_problem(key, path) {
        return Some(problem);
    }
    check_node_path(path).err().map(|e| format!("`{key}` must be an absolute path on this host: {e}"))
}

/// Control characters are refused in every value: each is one line of text.
fn text_problem(key: &str, value: &str) -> Option<String> {
    value.chars().any(char::is_control).then(|| format!("`{key}` holds a control character; write it on one line"))
}

/// Accumulates the located problems of one file.
struct Reader<'a> {
    name: &'a str,
    issues: Vec<SourceIssue>,
}

impl Reader<'_> {
    fn issue(&mut self, mark: Option<Mark>, message: impl Into<String>) {
        let issue = SourceIssue::error(self.name, message);
        self.issues.push(match mark {
            Some(mark) => issue.at(mark),
            None => issue,
        });
    }

    /// The whole document, or `None` when it is not a mapping (every problem is recorded).
    fn document(&mut self, text: &str) -> Option<Tracking> {
        let doc = match yaml::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                self.issue(Some(e.mark), format!("YAML syntax: {}", e.message));
                return None;
            }
        };
        let entries = match &doc.root.value {
            Value::Map(entries) => entries,
            _ if doc.root.is_null() => {
                self.issue(
                    None,
                    "is empty; it needs `version: 1`, `repository:`, `ref:` and `host:` (see core-ops init)",
                );
                return None;
            }
            _ => {
                self.issue(Some(doc.root.mark), "must be a mapping of keys to values (`repository: URL`, ...)");
                return None;
            }
        };
        let mut found: [Option<&Node>; 7] = [None; 7];
        for entry in entries {
            match entry.key.as_scalar().and_then(|k| KEYS.iter().position(|known| *known == k)) {
                Some(i) => found[i] = Some(&entry.value),
                None => self.unknown_key(&entry.key),
            }
        }
        let [version, repository, reference, host, trust, token, ca] = found;
        self.version(version);
        let tracking = Tracking {
            repository: self.required("repository", repository, repository_problem),
            reference: self.required("ref", reference, reference_problem),
            host: self.required("host", host, host_problem),
            trust: self.optional_path("trust", trust),
            access_token_file: self.optional_path("access-token-file", token),
            ca_file: self.optional_path("ca-file", ca),
        };
        Some(tracking)
    }

    fn unknown_key(&mut self, key: &Node) {
        let Some(name) = key.as_scalar() else {
            self.issue(Some(key.mark), "keys must be plain names such as `repository`");
            return;
        };
        let hint = match spelling::closest(name, KEYS) {
            Some(meant) => format!("did you mean `{meant}`?"),
            None => format!("expected {}", KEYS.join(", ")),
        };
        self.issue(Some(key.mark), format!("unknown key `{name}`; {hint}"));
    }

    fn version(&mut self, node: Option<&Node>) {
        let Some(node) = node else {
            self.issue(None, format!("missing `version: {TRACKING_VERSION}`"));
            return;
        };
        let number = (node.kind_tag() == "!!int").then(|| node.as_scalar().and_then(|t| t.parse::<i64>().ok()));
        match number {
            Some(Some(v)) if v == i64::from(TRACKING_VERSION) => {}
            Some(Some(v)) => self.issue(
                Some(node.mark),
                format!("unsupported version {v}: this core-ops reads version {TRACKING_VERSION}; rewrite the file with `core-ops init --force`"),
            ),
            _ => self.issue(Some(node.mark), format!("`version` must be the number {TRACKING_VERSION}")),
        }
    }

    /// The text of a string-valued key, or `None` (with the problem recorded) when it is not a
    /// string.
    fn string(&mut self, key: &str, node: &Node) -> Option<String> {
        let is_string = matches!(node.value, Value::Scalar { .. }) && node.kind_tag() == "!!str";
        if is_string {
            return node.as_scalar().map(str::to_string);
        }
        let what = match &node.value {
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
            Value::Alias(_) => "an alias".to_string(),
            Value::Scalar { .. } if node.is_null() => "empty".to_string(),
            Value::Scalar { .. } => format!("{}, not a string; quote it", node.kind_tag()),
        };
        self.issue(Some(node.mark), format!("`{key}` must be a string; it is {what}"));
        None
    }

    /// A key that must be there, checked with `problem`; an empty string stands in for a
    /// missing or wrong value (whose problem is recorded).
    fn required(&mut self, key: &str, node: Option<&Node>, problem: fn(&str) -> Option<String>) -> String {
        let Some(node) = node else {
            self.issue(None, format!("missing `{key}:`"));
            return String::new();
        };
        let Some(value) = self.string(key, node) else { return String::new() };
        if let Some(message) = problem(&value) {
            self.issue(Some(node.mark), message);
        }
        value
    }

    /// An optional absolute path; YAML null is the same as leaving the key out.
    fn optional_path(&mut self, key: &str, node: Option<&Node>) -> Option<String> {
        let node = node.filter(|n| !n.is_null())?;
        let value = self.string(key, node)?;
        if let Some(message) = path_problem(key, &value) {
            self.issue(Some(node.mark), message);
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "/etc/core-ops/tracking.yaml";

    fn web1() -> Tracking {
        Tracking {
            repository: "https://git.example.com/infra/hosts.git".into(),
            reference: "main".into(),
            host: "web1".into(),
            trust: None,
            access_token_file: None,
            ca_file: None,
        }
    }

    #[test]
    fn a_full_document_parses() {
        let text = "version: 1\nrepository: ssh://git@git.example.com/infra/hosts.git\nref: refs/tags/v1.2\n\
                    host: web1.example\ntrust: /etc/core-ops/allowed-signers\naccess-token-file: /etc/core-ops/token\n\
                    ca-file: /etc/core-ops/ca.pem\n";
        let want = Tracking {
            repository: "ssh://git@git.example.com/infra/hosts.git".into(),
            reference: "refs/tags/v1.2".into(),
            host: "web1.example".into(),
            trust: Some("/etc/core-ops/allowed-signers".into()),
            access_token_file: Some("/etc/core-ops/token".into()),
            ca_file: Some("/etc/core-ops/ca.pem".into()),
        };
        assert_eq!(parse(NAME, text), Ok(want));
    }

    #[test]
    fn mistakes_are_located_and_all_reported() {
        // (document, the messages expected, in order), positions counted by hand.
        let cases: &[(&str, &[&str])] = &[
            (
                "version: 1\nrepository: /srv/r\nref: main\nhost: web1\nrepo: x\n",
                &["error: F:5:1: unknown key `repo`; did you mean `ref`?"],
            ),
            (
                "version: 1\nrepository: /srv/r\nref: main\nhost: web1\ntrsut: /a\n",
                &["error: F:5:1: unknown key `trsut`; did you mean `trust`?"],
            ),
            ("version: 1\nref: main\n", &["error: F: missing `repository:`", "error: F: missing `host:`"]),
            (
                "version: 2\nrepository: /srv/r\nref: main\nhost: web1\n",
                &[
                    "error: F:1:10: unsupported version 2: this core-ops reads version 1; rewrite the file with `core-ops init --force`",
                ],
            ),
            (
                "version: \"1\"\nrepository: /srv/r\nref: main\nhost: web1\n",
                &["error: F:1:10: `version` must be the number 1"],
            ),
            (
                "version: 1\nrepository: [a]\nref: 2024\nhost: web1\n",
                &[
                    "error: F:2:13: `repository` must be a string; it is a list",
                    "error: F:3:6: `ref` must be a string; it is !!int, not a string; quote it",
                ],
            ),
            (
                "version: 1\nrepository: ''\nref: a..b\nhost: -x\n",
                &[
                    "error: F:2:13: `repository` is empty; name the repository's URL or path",
                    "error: F:3:6: `ref` holds `..` or `@{` (or is `@`), which git refuses in ref names",
                    "error: F:4:7: `host` must be the name of a folder under hosts/ in the repository: letters, digits, `.`, `_` and `-`, starting with a letter or digit; got \"-x\"",
                ],
            ),
            (
                "version: 1\nrepository: /srv/r\nref: main\nhost: web1\ntrust: etc/signers\nca-file: /etc/../ca.pem\n",
                &[
                    "error: F:5:8: `trust` must be an absolute path on this host: etc/signers is not a clean absolute path (it would name /etc/signers); CoreOps reads and writes only paths spelled without empty, `.` or `..` components",
                    "error: F:6:10: `ca-file` must be an absolute path on this host: /etc/../ca.pem is not a clean absolute path (it would name /ca.pem); CoreOps reads and writes only paths spelled without empty, `.` or `..` components",
                ],
            ),
            (
                "version: 1\nrepository: https://me:s3cret@git.example.com/x.git\nref: main\nhost: web1\n",
                &[
                    "error: F:2:13: `repository` carries a password in its URL; put the token in a file (mode 0600) and name that file in `access-token-file`",
                ],
            ),
            (
                "version: 1\nref: [\n",
                &["error: F:2:7: YAML syntax: while parsing a node, did not find expected node content"],
            ),
            ("", &["error: F: is empty; it needs `version: 1`, `repository:`, `ref:` and `host:` (see core-ops init)"]),
            ("- a\n", &["error: F:1:1: must be a mapping of keys to values (`repository: URL`, ...)"]),
        ];
        for (text, want) in cases {
            let got = parse("F", text).expect_err(text);
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn repositories_are_urls_scp_like_or_absolute_paths() {
        let cases = [
            ("https://git.example.com/infra/hosts.git", true),
            ("ssh://git@git.example.com:2222/infra/hosts.git", true),
            ("git@git.example.com:infra/hosts.git", true),
            ("file:///srv/hosts.git", true),
            ("/srv/hosts.git", true),
            ("srv/hosts.git", false),
            ("./hosts", false),
            ("https://ops:hunter2@git.example.com/x.git", false),
            ("https://ops@git.example.com/x.git", false),
            ("https://ghp_token@git.example.com/x.git", false),
            ("https://git.example.com/x.git?private_token=abc", false),
            ("https://git.example.com/x.git#frag", false),
            ("ssh://git@git.example.com/x.git?x", true),
        ];
        for (repository, ok) in cases {
            assert_eq!(repository_problem(repository).is_none(), ok, "{repository:?}");
        }
    }

    #[test]
    fn null_optional_keys_are_absent() {
        let text = "version: 1\nrepository: /srv/r\nref: main\nhost: web1\ntrust: ~\nca-file:\n";
        let got = parse(NAME, text).unwrap();
        assert_eq!((got.trust, got.ca_file), (None, None));
    }

    #[test]
    fn written_text_is_plain_where_it_can_be() {
        let mut t = web1();
        t.access_token_file = Some("/etc/core-ops/token".into());
        assert_eq!(
            to_yaml(&t),
            format!(
                "{HEADER}\nversion: 1\nrepository: https://git.example.com/infra/hosts.git\nref: main\nhost: web1\n\
                 access-token-file: /etc/core-ops/token\n"
            )
        );
    }

    #[test]
    fn values_yaml_would_misread_are_quoted() {
        // (value, how it must be written): expected forms written by hand from the YAML spec.
        let cases = [
            ("main", "main"),
            ("git@git.example.com:infra/hosts.git", "git@git.example.com:infra/hosts.git"),
            ("1", "\"1\""),
            ("1e5", "\"1e5\""),
            ("null", "\"null\""),
            ("yes", "\"yes\""),
            ("Off", "\"Off\""),
            ("true", "\"true\""),
            ("a #b", "\"a #b\""),
            ("a: b", "\"a: b\""),
            ("-x", "\"-x\""),
            ("=", "\"=\""),
            ("<<", "\"<<\""),
            ("2024-01-01", "\"2024-01-01\""),
            ("1:20", "\"1:20\""),
            ("1_000", "\"1_000\""),
            (".inf", "\".inf\""),
            ("/srv/hosts.git", "/srv/hosts.git"),
            ("été", "été"),
            ("- x", "\"- x\""),
            ("*x", "\"*x\""),
            ("say \"hi\"", "say \"hi\""),
            ("\"hi\"", "\"\\\"hi\\\"\""),
            ("'hi'", "\"'hi'\""),
            (" lead", "\" lead\""),
            ("C:\\x", "C:\\x"),
            ("new\nline", "\"new\\nline\""),
            ("bell\u{7}", "\"bell\\u0007\""),
        ];
        for (value, want) in cases {
            assert_eq!(scalar(value), want, "{value:?}");
        }
    }

    #[test]
    fn problems_name_what_parse_would_report() {
        let mut t = web1();
        assert!(problems(&t).is_empty());
        t.host = "a b".into();
        t.trust = Some("relative".into());
        let got = problems(&t);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("`host` must be"), "{got:?}");
        assert!(got[1].starts_with("`trust` must be an absolute path"), "{got:?}");
    }

    #[test]
    fn git_ref_rules() {
        let cases = [
            ("main", true),
            ("refs/heads/feature/x", true),
            ("v1.0", true),
            ("a/.b", false),
            ("a//b", false),
            ("a.lock", false),
            ("a.", false),
            ("a b", false),
            ("a~1", false),
            ("a^", false),
            ("a:b", false),
            ("x@{1}", false),
            ("@", false),
            ("/a", false),
            ("a/", false),
            ("-a", false),
        ];
        for (reference, ok) in cases {
            assert_eq!(reference_problem(reference).is_none(), ok, "{reference:?}");
        }
    }
}
