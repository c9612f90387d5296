//! systemd unit files: parsing, semantic comparison and unit-name escaping.
//!
//! The parser follows go-systemd's `unit.Deserialize` (the one Ignition validates with), with its
//! error texts: sections, `Key=Value` options, `#`/`;` comments, backslash line continuations.
//! It keeps what a semantic comparison needs: sections in order with their options.

/// One `Key=Value` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitOption {
    /// The section it is in.
    pub section: String,
    /// The key.
    pub name: String,
    /// The value, continuation lines joined.
    pub value: String,
}

/// A parsed unit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    /// The options in file order.
    pub options: Vec<UnitOption>,
    /// Section names in file order (including empty ones).
    pub sections: Vec<String>,
}

impl UnitFile {
    /// Whether the file has an `[Install]` section with at least one option.
    pub fn has_install_options(&self) -> bool {
        self.options.iter().any(|o| o.section == "Install")
    }

    /// The values of `section`/`name`, in order.
    pub fn values<'a>(&'a self, section: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.options.iter().filter(move |o| o.section == section && o.name == name).map(|o| o.value.as_str())
    }
}

/// Why a unit file does not parse; the texts are go-systemd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A `[` without its `]`.
    #[error("unable to find end of section")]
    UnterminatedSection,
    /// Text after a section header's `]`.
    #[error("found garbage after section name : {0:?}")]
    Garbage(String),
    /// An option line without `=`.
    #[error("unexpected newline encountered while parsing option name")]
    NewlineInName,
    /// The file ends inside an option name.
    #[error("EOF")]
    Eof,
}

/// Parses unit file text the way go-systemd's `unit.Deserialize` does: text before the first
/// section is ignored, a section header runs to its `]` (even across lines), option values
/// continue over lines ending in `\`.
pub fn parse(text: &str) -> Result<UnitFile, UnitError> {
    let mut unit = UnitFile::default();
    let mut lex = Lexer { chars: text.chars().collect(), pos: 0 };
    // Before the first section.
    loop {
        match lex.next() {
            None => return Ok(unit),
            Some('[') => break,
            Some('#' | ';') => lex.skip_comment(),
            Some(_) => {}
        }
    }
    let mut section = lex.section_name()?;
    unit.sections.push(section.clone());
    loop {
        match lex.next() {
            None => return Ok(unit),
            Some(c) if c.is_whitespace() => {}
            Some('[') => {
                section = lex.section_name()?;
                unit.sections.push(section.clone());
            }
            Some('#' | ';') => lex.skip_comment(),
            Some(_) => {
                lex.pos -= 1;
                let name = lex.option_name()?;
                let value = lex.option_value();
                unit.options.push(UnitOption { section: section.clone(), name, value });
            }
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    /// The rest of the current line, without its newline (and a trailing `\r`).
    fn line(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if c == '\n' {
                break;
            }
            out.push(c);
        }
        if out.ends_with('\r') {
            out.pop();
        }
        out
    }

    fn skip_comment(&mut self) {
        while self.line().trim_end().ends_with('\\') && self.pos < self.chars.len() {}
    }

    fn section_name(&mut self) -> Result<String, UnitError> {
        let mut name = String::new();
        loop {
            match self.next() {
                None => return Err(UnitError::UnterminatedSection),
                Some(']') => break,
                Some(c) => name.push(c),
            }
        }
        let garbage = self.line();
        if !garbage.trim().is_empty() {
            return Err(UnitError::Garbage(garbage.trim().to_string()));
        }
        Ok(name)
    }

    fn option_name(&mut self) -> Result<String, UnitError> {
        let mut name = String::new();
        loop {
            match self.next() {
                None => return Err(UnitError::Eof),
                Some('\n' | '\r') => return Err(UnitError::NewlineInName),
                Some('=') => return Ok(name.trim().to_string()),
                Some(c) => name.push(c),
            }
        }
    }

    fn option_value(&mut self) -> String {
        let mut value = String::new();
        loop {
            let at_end = self.pos >= self.chars.len();
            let line = self.line();
            let trimmed = line.trim();
            if trimmed.is_empty() {
                return value.trim_end().to_string();
            }
            if let Some(cont) = trimmed.strip_suffix('\\') {
                value.push_str(cont);
                if at_end || self.pos >= self.chars.len() {
                    return value;
                }
                value.push('\n');
            } else {
                value.push_str(trimmed);
                return value;
            }
        }
    }
}

/// The bytes that stay unescaped in a unit name.
const UNIT_NAME_ALLOWED: &[u8] = b":_.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `systemd-escape --path`, as go-systemd writes it (`-` becomes `\x2d`, slashes become `-`).
pub fn escape_path(path: &str) -> String {
    let mut out = String::new();
    let (mut in_slashes, mut start) = (false, true);
    for &b in path.as_bytes() {
        if b == b'/' {
            in_slashes = true;
            continue;
        }
        if in_slashes {
            in_slashes = false;
            if !start {
                out.push('-');
            }
        }
        if (start && b == b'.') || !UNIT_NAME_ALLOWED.contains(&b) {
            out.push_str(&format!("\\x{b:x}"));
        } else {
            out.push(b as char);
        }
        start = false;
    }
    if out.is_empty() { "-".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_paths_like_go_systemd() {
        let cases = [
            ("/var/lib/data", "var-lib-data"),
            ("/dev/disk/by-partlabel/data", "dev-disk-by\\x2dpartlabel-data"),
            ("/", "-"),
            ("//a//b/", "a-b"),
            ("/.hidden", "\\x2ehidden"),
            ("/a b", "a\\x20b"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_path(input), want, "case {input}");
        }
    }

    #[test]
    fn parses_sections_options_and_continuations() {
        let unit = parse("# c\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n  b\n[Install]\nWantedBy=multi-user.target\n").unwrap();
        assert_eq!(unit.values("Service", "ExecStart").collect::<Vec<_>>(), ["/bin/a \nb"]);
        assert!(unit.has_install_options());
        assert_eq!(unit.sections, ["Unit", "Service", "Install"]);
    }

    #[test]
    fn rejects_what_go_systemd_rejects() {
        let cases = [
            ("[Service", "unable to find end of section"),
            ("[Service] x\n", "found garbage after section name : \"x\""),
            ("[Service]\nFoo\n", "unexpected newline encountered while parsing option name"),
            ("[Service]\nFoo", "EOF"),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).unwrap_err().to_string(), want, "case {input:?}");
        }
        assert!(parse("Foo=bar\n").is_ok(), "options outside a section are accepted");
        assert!(parse("not a unit file").is_ok());
    }
}

/// The Quadlet file extensions and the suffix of the service each one generates.
pub const QUADLET_KINDS: &[(&str, &str)] = &[
    ("container", ""),
    ("kube", ""),
    ("volume", "-volume"),
    ("network", "-network"),
    ("pod", "-pod"),
    ("image", "-image"),
    ("build", "-build"),
    ("artifact", "-artifact"),
];

/// Whether a file name is a Quadlet file name.
pub fn is_quadlet_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && QUADLET_KINDS.iter().any(|(k, _)| *k == ext))
}

/// The service Podman's generator makes from a Quadlet file: `x.container` → `x.service`,
/// `x.volume` → `x-volume.service`, …, or `ServiceName=` when the file sets it.
pub fn quadlet_service_name(name: &str, contents: Option<&str>) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    let suffix = QUADLET_KINDS.iter().find(|(k, _)| *k == ext)?.1;
    let section = match ext {
        "container" => "Container",
        "kube" => "Kube",
        "volume" => "Volume",
        "network" => "Network",
        "pod" => "Pod",
        "image" => "Image",
        "build" => "Build",
        _ => "Artifact",
    };
    let custom =
        contents.and_then(|c| parse(c).ok()).and_then(|u| u.values(section, "ServiceName").last().map(str::to_string));
    Some(match custom {
        Some(service) if service.ends_with(".service") => service,
        Some(service) => format!("{service}.service"),
        None => format!("{stem}{suffix}.service"),
    })
}

#[cfg(test)]
mod quadlet_tests {
    use super::*;

    #[test]
    fn quadlet_service_names() {
        let cases = [
            ("web.container", None, Some("web.service")),
            ("data.volume", None, Some("data-volume.service")),
            ("edge.network", None, Some("edge-network.service")),
            ("app.pod", None, Some("app-pod.service")),
            ("k.kube", None, Some("k.service")),
            ("base.image", None, Some("base-image.service")),
            ("b.build", None, Some("b-build.service")),
            ("web.container", Some("[Container]\nServiceName=frontend\n"), Some("frontend.service")),
            ("web.service", None, None),
        ];
        for (name, contents, want) in cases {
            assert_eq!(quadlet_service_name(name, contents).as_deref(), want, "case {name}");
        }
    }
}

/// One link `systemctl enable` makes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnableLink {
    /// The link's path, e.g. `/etc/systemd/system/multi-user.target.wants/web.service`.
    pub path: String,
    /// What it points to: the unit file's path.
    pub target: String,
}

/// The directory `systemctl enable` writes its links to.
pub const ENABLE_DIR: &str = "/etc/systemd/system";

/// The links `systemctl --root=DIR enable NAME` makes for unit `name` whose file (the template's
/// file, for an instance) is at `file_path` with `unit`'s `[Install]` section: `WantedBy=`,
/// `RequiredBy=`, `UpheldBy=` and `Alias=`, with `DefaultInstance=` for templates. `Also=` units
/// are returned for the caller to enable in turn.
pub fn enable_links(name: &str, file_path: &str, unit: &UnitFile) -> (Vec<EnableLink>, Vec<String>) {
    let instance_name = match template_parts(name) {
        Some((prefix, "", suffix)) => match unit.values("Install", "DefaultInstance").last() {
            Some(default) if !default.is_empty() => format!("{prefix}@{default}{suffix}"),
            _ => return (Vec::new(), also(unit)),
        },
        _ => name.to_string(),
    };
    let mut links = Vec::new();
    for (key, dir_suffix) in [("WantedBy", ".wants"), ("RequiredBy", ".requires"), ("UpheldBy", ".upholds")] {
        for target in unit.values("Install", key).flat_map(str::split_whitespace) {
            links.push(EnableLink {
                path: format!("{ENABLE_DIR}/{target}{dir_suffix}/{instance_name}"),
                target: file_path.to_string(),
            });
        }
    }
    for alias in unit.values("Install", "Alias").flat_map(str::split_whitespace) {
        links.push(EnableLink { path: format!("{ENABLE_DIR}/{alias}"), target: file_path.to_string() });
    }
    links.sort();
    links.dedup();
    (links, also(unit))
}

fn also(unit: &UnitFile) -> Vec<String> {
    unit.values("Install", "Also").flat_map(str::split_whitespace).map(str::to_string).collect()
}

/// `("foo", "bar", ".service")` for `foo@bar.service`; the instance is empty for a template.
pub fn template_parts(name: &str) -> Option<(&str, &str, &str)> {
    let (prefix, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    Some((prefix, &rest[..dot], &rest[dot..]))
}

/// The unit file that defines `name`: itself, or its template for an instance.
pub fn unit_file_name(name: &str) -> String {
    match template_parts(name) {
        Some((prefix, instance, suffix)) if !instance.is_empty() => format!("{prefix}@{suffix}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod enable_tests {
    use super::*;

    #[test]
    fn links_like_systemctl_enable() {
        let unit = parse("[Install]\nWantedBy=multi-user.target default.target\nRequiredBy=x.target\nAlias=web-alias.service\nAlso=helper.socket\n").unwrap();
        let (links, also) = enable_links("web.service", "/etc/systemd/system/web.service", &unit);
        let paths: Vec<&str> = links.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/systemd/system/default.target.wants/web.service",
                "/etc/systemd/system/multi-user.target.wants/web.service",
                "/etc/systemd/system/web-alias.service",
                "/etc/systemd/system/x.target.requires/web.service",
            ]
        );
        assert!(links.iter().all(|l| l.target == "/etc/systemd/system/web.service"));
        assert_eq!(also, ["helper.socket"]);
    }

    #[test]
    fn templates_and_instances() {
        let tmpl = parse("[Install]\nWantedBy=multi-user.target\nDefaultInstance=default\n").unwrap();
        let (links, _) = enable_links("tmpl@.service", "/etc/systemd/system/tmpl@.service", &tmpl);
        assert_eq!(links[0].path, "/etc/systemd/system/multi-user.target.wants/tmpl@default.service");
        let (links, _) = enable_links("tmpl@x.service", "/etc/systemd/system/tmpl@.service", &tmpl);
        assert_eq!(links[0].path, "/etc/systemd/system/multi-user.target.wants/tmpl@x.service");
        let no_default = parse("[Install]\nWantedBy=multi-user.target\n").unwrap();
        assert!(enable_links("w@.service", "/x", &no_default).0.is_empty());
        assert_eq!(unit_file_name("w@3.service"), "w@.service");
        assert_eq!(unit_file_name("w.service"), "w.service");
    }
}

/// The options of a unit, normalised for comparison: per section, per key, the values in order.
/// Comments, blank lines and the order of different keys within a section do not matter; the
/// order of repeated keys (`ExecStartPre=`) does.
pub fn normalized(unit: &UnitFile) -> std::collections::BTreeMap<(String, String), Vec<String>> {
    let mut out: std::collections::BTreeMap<(String, String), Vec<String>> = std::collections::BTreeMap::new();
    for o in &unit.options {
        out.entry((o.section.clone(), o.name.clone())).or_default().push(o.value.clone());
    }
    out
}

/// Whether two unit files mean the same to systemd (see [`normalized`]). Text that does not
/// parse is compared byte for byte.
pub fn semantically_equal(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => normalized(&x) == normalized(&y),
        _ => a == b,
    }
}

#[cfg(test)]
mod semantic_tests {
    use super::*;

    #[test]
    fn cosmetic_changes_are_equal_and_real_ones_are_not() {
        let base = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a\nEnvironment=A=1\n";
        let cases = [
            (
                "comment and blank lines",
                "# note\n[Unit]\nDescription=x\n[Service]\n\nExecStart=/bin/a\nEnvironment=A=1\n",
                true,
            ),
            (
                "key order within a section",
                "[Service]\nEnvironment=A=1\nExecStart=/bin/a\n[Unit]\nDescription=x\n",
                true,
            ),
            ("a value changed", "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/b\nEnvironment=A=1\n", false),
            ("a key added", "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/a\nEnvironment=A=1\nUser=x\n", false),
            (
                "a key moved to another section",
                "[Unit]\nDescription=x\nEnvironment=A=1\n[Service]\nExecStart=/bin/a\n",
                false,
            ),
        ];
        for (label, other, want) in cases {
            assert_eq!(semantically_equal(base, other), want, "case {label}");
        }
        assert!(
            !semantically_equal(
                "[Service]\nExecStartPre=/a\nExecStartPre=/b\n",
                "[Service]\nExecStartPre=/b\nExecStartPre=/a\n"
            ),
            "order of repeated keys matters"
        );
    }
}
