//! systemd unit files: parsing, semantic comparison, unit-name escaping, and what
//! `systemctl enable` makes of an `[Install]` section.
//!
//! The parser follows go-systemd's `unit.Deserialize` (the one Ignition validates with), with its
//! error texts: sections, `Key=Value` options, `#`/`;` comments, backslash line continuations.
//! It keeps what a semantic comparison needs: sections in order with their options.
//!
//! Enablement follows systemctl: every `[Install]` value must be a unit name as systemd defines
//! one ([`unit_name_kind`]), and an alias one of the unit's type and kind; what systemctl would
//! refuse makes no link and is reported ([`Enablement::refused`]), so no value can name a path
//! outside the unit directory or over another unit.

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

/// The unit types systemd knows, as the suffixes of unit names.
const UNIT_TYPES: &[&str] =
    &["service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"];

/// The longest unit name systemd accepts (`UNIT_NAME_MAX` less its NUL).
const UNIT_NAME_MAX: usize = 255;

/// The bytes a unit name may hold besides ASCII letters and digits.
const UNIT_NAME_PUNCTUATION: &[u8] = b":-_.\\@";

/// The three kinds of unit names systemd tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `foo.service`.
    Plain,
    /// `foo@.service`.
    Template,
    /// `foo@bar.service`.
    Instance,
}

/// The kind of a valid unit name, or `None` when systemd would not accept it as one
/// (`unit_name_is_valid`): at most 255 bytes of letters, digits and `:-_.\@`, a known type
/// suffix after the last `.`, something before it, and a first `@` that is not the first byte.
/// A `/` is never part of a unit name.
pub fn unit_name_kind(name: &str) -> Option<NameKind> {
    let (stem, suffix) = name.rsplit_once('.')?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || UNIT_NAME_PUNCTUATION.contains(&b);
    if name.len() > UNIT_NAME_MAX || stem.is_empty() || !UNIT_TYPES.contains(&suffix) || !name.bytes().all(allowed) {
        return None;
    }
    match stem.find('@') {
        None => Some(NameKind::Plain),
        Some(0) => None,
        Some(at) if at + 1 == stem.len() => Some(NameKind::Template),
        Some(_) => Some(NameKind::Instance),
    }
}

/// Why `systemctl enable` would refuse a unit's `[Install]` section; the texts follow
/// systemctl's, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The unit's own name is not a unit name.
    #[error("{0:?} is not a valid unit name, so it cannot be enabled")]
    Unit(String),
    /// A `WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Also=` or `Alias=` value, or the instance
    /// `DefaultInstance=` makes, that is not a unit name.
    #[error("[Install] {key}={value}: {name:?} is not a valid unit name")]
    NotAUnitName {
        /// The option.
        key: &'static str,
        /// Its value.
        value: String,
        /// The name it stands for.
        name: String,
    },
    /// A value with a `%` specifier, which CoreOps does not expand.
    #[error("[Install] {key}={value}: specifiers such as %i are not expanded by CoreOps; write the name out")]
    Specifier {
        /// The option.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// An `Alias=` with a `/` that is not `<unit>.wants/<name>` or `<unit>.requires/<name>`.
    #[error(
        "[Install] Alias={alias} is not a valid alias: an alias is a unit name of the same type as {unit}, \
         without \"/\" (systemctl: invalid unit reference)"
    )]
    AliasPath {
        /// The value.
        alias: String,
        /// The unit being enabled.
        unit: String,
    },
    /// An `Alias=` of another type or kind (a plain unit's alias is plain, a template's a
    /// template, an instance's an instance of the same instance), or a `<unit>.wants/<name>`
    /// alias that names another unit.
    #[error(
        "[Install] Alias={alias}: cannot alias {unit} as {alias}: an alias has the unit's type and kind \
         (a template's alias is a template)"
    )]
    AliasMismatch {
        /// The value.
        alias: String,
        /// The unit being enabled.
        unit: String,
    },
}

/// What `systemctl enable` makes of one unit: its links, the `Also=` units to enable in turn,
/// and the values it would refuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enablement {
    /// The links of the values it accepts, sorted.
    pub links: Vec<EnableLink>,
    /// The `Also=` units it accepts.
    pub also: Vec<String>,
    /// The values it refuses: `systemctl enable` would fail on any of them.
    pub refused: Vec<InstallError>,
}

/// The links `systemctl --root=DIR enable NAME` makes for unit `name` whose file (the template's
/// file, for an instance) is at `file_path` with `unit`'s `[Install]` section: `WantedBy=`,
/// `RequiredBy=`, `UpheldBy=` and `Alias=`, with `DefaultInstance=` for templates. `Also=` units
/// are returned for the caller to enable in turn.
///
/// Every value is checked as systemctl checks it: a value that is not a unit name, or an alias
/// not of `name`'s type and kind, makes no link and is `refused`, so no value can name a path
/// outside the unit directory or over another unit.
pub fn enable_links(name: &str, file_path: &str, unit: &UnitFile) -> Enablement {
    let Some(kind) = unit_name_kind(name) else {
        return Enablement { refused: vec![InstallError::Unit(name.to_string())], ..Enablement::default() };
    };
    let mut errors = Vec::new();
    let mut references = |key: &'static str| -> Vec<String> {
        let mut names = Vec::new();
        for value in unit.values("Install", key).flat_map(str::split_whitespace) {
            match check_unit_reference(key, value, value) {
                Ok(()) => names.push(value.to_string()),
                Err(e) => errors.push(e),
            }
        }
        names
    };
    let depended_on_by: Vec<(&str, Vec<String>)> =
        [("WantedBy", ".wants"), ("RequiredBy", ".requires"), ("UpheldBy", ".upholds")]
            .into_iter()
            .map(|(key, dir_suffix)| (dir_suffix, references(key)))
            .collect();
    let also = references("Also");
    let instance_name = match enabled_instance(name, kind, unit) {
        Ok(instance_name) => instance_name,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut aliases = Vec::new();
    for alias in unit.values("Install", "Alias").flat_map(str::split_whitespace) {
        match alias_link_name(name, kind, alias) {
            Ok(link_name) => aliases.extend(link_name),
            Err(e) => errors.push(e),
        }
    }
    // A template without a default instance is enabled through its instances, not by itself.
    let Some(instance_name) = instance_name else { return Enablement { links: Vec::new(), also, refused: errors } };
    let instance_name = instance_name.as_str();
    let dependency_links = depended_on_by.iter().flat_map(|(dir_suffix, names)| {
        names.iter().map(move |n| format!("{ENABLE_DIR}/{n}{dir_suffix}/{instance_name}"))
    });
    let alias_links = aliases.iter().map(|a| format!("{ENABLE_DIR}/{a}"));
    let mut links: Vec<EnableLink> =
        dependency_links.chain(alias_links).map(|path| EnableLink { path, target: file_path.to_string() }).collect();
    links.sort();
    links.dedup();
    Enablement { links, also, refused: errors }
}

/// The name the dependency links of `name` carry: the name itself, the `DefaultInstance=` of a
/// template, or `None` for a template without one.
fn enabled_instance(name: &str, kind: NameKind, unit: &UnitFile) -> Result<Option<String>, InstallError> {
    if kind != NameKind::Template {
        return Ok(Some(name.to_string()));
    }
    let Some(default) = unit.values("Install", "DefaultInstance").last().filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let (prefix, _, suffix) = template_parts(name).unwrap_or((name, "", ""));
    let instance = format!("{prefix}@{default}{suffix}");
    check_unit_reference("DefaultInstance", default, &instance)?;
    Ok(Some(instance))
}

/// Checks that `value` of `key` stands for a unit name (`name`: the value itself, or the
/// instance it makes).
fn check_unit_reference(key: &'static str, value: &str, name: &str) -> Result<(), InstallError> {
    if value.contains('%') {
        return Err(InstallError::Specifier { key, value: value.to_string() });
    }
    match unit_name_kind(name) {
        Some(_) => Ok(()),
        None => Err(InstallError::NotAUnitName { key, value: value.to_string(), name: name.to_string() }),
    }
}

/// The name of the link `Alias=alias` makes for unit `name` (under [`ENABLE_DIR`]), or `None`
/// for an alias to itself, which systemctl ignores. As in systemctl: an alias has the unit's
/// type and kind; a template alias of an instance becomes that instance of the alias; and the
/// old form `<unit>.wants/<name>` (or `.requires/`) links the unit itself into that directory.
fn alias_link_name(name: &str, kind: NameKind, alias: &str) -> Result<Option<String>, InstallError> {
    let mismatch = || InstallError::AliasMismatch { alias: alias.to_string(), unit: name.to_string() };
    if alias.contains('%') {
        return Err(InstallError::Specifier { key: "Alias", value: alias.to_string() });
    }
    if let Some((dir, link_name)) = alias.rsplit_once('/') {
        let depender = dir.strip_suffix(".wants").or_else(|| dir.strip_suffix(".requires"));
        if depender.and_then(unit_name_kind).is_none() {
            return Err(InstallError::AliasPath { alias: alias.to_string(), unit: name.to_string() });
        }
        return if link_name == name { Ok(Some(alias.to_string())) } else { Err(mismatch()) };
    }
    let Some(alias_kind) = unit_name_kind(alias) else {
        return Err(InstallError::NotAUnitName { key: "Alias", value: alias.to_string(), name: alias.to_string() });
    };
    let propagated = match (kind, alias_kind, template_parts(name), template_parts(alias)) {
        (NameKind::Instance, NameKind::Template, Some((_, instance, _)), Some((prefix, _, suffix))) => {
            format!("{prefix}@{instance}{suffix}")
        }
        _ => alias.to_string(),
    };
    let suffix_of = |n: &str| n.rsplit_once('.').map(|(_, s)| s.to_string());
    let instance_of = |n: &str| template_parts(n).map(|(_, i, _)| i.to_string());
    let same_type = suffix_of(name) == suffix_of(&propagated);
    if !same_type || unit_name_kind(&propagated) != Some(kind) || instance_of(name) != instance_of(&propagated) {
        return Err(mismatch());
    }
    Ok((propagated != name).then_some(propagated))
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

    fn links(name: &str, install: &str) -> Result<Vec<String>, Vec<String>> {
        let unit = parse(&format!("[Install]\n{install}\n")).unwrap();
        let found = enable_links(name, "/etc/systemd/system/file", &unit);
        match found.refused.as_slice() {
            [] => Ok(found.links.into_iter().map(|l| l.path).collect()),
            refused => Err(refused.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn links_like_systemctl_enable() {
        let unit = parse("[Install]\nWantedBy=multi-user.target default.target\nRequiredBy=x.target\nAlias=web-alias.service\nAlso=helper.socket\n").unwrap();
        let found = enable_links("web.service", "/etc/systemd/system/web.service", &unit);
        let paths: Vec<&str> = found.links.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc/systemd/system/default.target.wants/web.service",
                "/etc/systemd/system/multi-user.target.wants/web.service",
                "/etc/systemd/system/web-alias.service",
                "/etc/systemd/system/x.target.requires/web.service",
            ]
        );
        assert!(found.links.iter().all(|l| l.target == "/etc/systemd/system/web.service"));
        assert_eq!(found.also, ["helper.socket"]);
    }

    #[test]
    fn templates_and_instances() {
        let tmpl = parse("[Install]\nWantedBy=multi-user.target\nDefaultInstance=default\n").unwrap();
        let found = enable_links("tmpl@.service", "/etc/systemd/system/tmpl@.service", &tmpl);
        assert_eq!(found.links[0].path, "/etc/systemd/system/multi-user.target.wants/tmpl@default.service");
        let found = enable_links("tmpl@x.service", "/etc/systemd/system/tmpl@.service", &tmpl);
        assert_eq!(found.links[0].path, "/etc/systemd/system/multi-user.target.wants/tmpl@x.service");
        let no_default = parse("[Install]\nWantedBy=multi-user.target\n").unwrap();
        assert!(enable_links("w@.service", "/x", &no_default).links.is_empty());
        assert_eq!(unit_file_name("w@3.service"), "w@.service");
        assert_eq!(unit_file_name("w.service"), "w.service");
    }

    #[test]
    fn aliases_follow_systemctl() {
        let cases = [
            ("web.service", "Alias=web-alias.service", Some("/etc/systemd/system/web-alias.service")),
            ("web.service", "Alias=web.service", None),
            (
                "web.service",
                "Alias=multi-user.target.wants/web.service",
                Some("/etc/systemd/system/multi-user.target.wants/web.service"),
            ),
            (
                "web.service",
                "Alias=x.target.requires/web.service",
                Some("/etc/systemd/system/x.target.requires/web.service"),
            ),
            ("t@.service", "Alias=u@.service\nDefaultInstance=a", Some("/etc/systemd/system/u@.service")),
            ("t@i.service", "Alias=u@.service", Some("/etc/systemd/system/u@i.service")),
            ("t@i.service", "Alias=u@i.service", Some("/etc/systemd/system/u@i.service")),
        ];
        for (name, install, want) in cases {
            let got = links(name, install).unwrap_or_else(|e| panic!("case {name} {install}: {e:?}"));
            assert_eq!(got.first().map(String::as_str), want, "case {name} {install}");
        }
    }

    #[test]
    fn refuses_what_systemctl_refuses() {
        let cases = [
            ("web.service", "Alias=/precious.service", "Alias=/precious.service is not a valid alias"),
            ("web.service", "Alias=../precious.service", "is not a valid alias"),
            ("web.service", "Alias=foo/web.service", "is not a valid alias"),
            ("web.service", "Alias=/x.wants/web.service", "is not a valid alias"),
            ("web.service", "Alias=multi-user.target.wants/other.service", "cannot alias web.service as"),
            ("web.service", "Alias=precious.socket", "cannot alias web.service as precious.socket"),
            ("web.service", "Alias=web@.service", "cannot alias web.service as web@.service"),
            ("web.service", "Alias=web@x.service", "cannot alias web.service as web@x.service"),
            ("t@.service", "Alias=u.service", "cannot alias t@.service as u.service"),
            ("t@i.service", "Alias=u@x.service", "cannot alias t@i.service as u@x.service"),
            ("web.service", "Alias=bad^.service", "\"bad^.service\" is not a valid unit name"),
            ("web.service", "WantedBy=/etc.target", "WantedBy=/etc.target: \"/etc.target\" is not a valid unit name"),
            ("web.service", "WantedBy=../../x.target", "\"../../x.target\" is not a valid unit name"),
            ("web.service", "RequiredBy=foo", "\"foo\" is not a valid unit name"),
            ("web.service", "UpheldBy=x/y.target", "\"x/y.target\" is not a valid unit name"),
            ("web.service", "Also=/x.service", "Also=/x.service: \"/x.service\" is not a valid unit name"),
            ("t@.service", "DefaultInstance=a/b", "DefaultInstance=a/b: \"t@a/b.service\" is not a valid unit name"),
            ("web.service", "WantedBy=%i.target", "specifiers such as %i are not expanded"),
            ("/precious.service", "WantedBy=multi-user.target", "\"/precious.service\" is not a valid unit name"),
        ];
        for (name, install, want) in cases {
            let errors = links(name, install).expect_err(&format!("case {name} {install}"));
            assert!(errors.iter().any(|e| e.contains(want)), "case {name} {install}: {errors:?}");
        }
        let unit = parse("[Install]\nAlias=/a.service\nWantedBy=b/c.target multi-user.target\n").unwrap();
        let found = enable_links("web.service", "/etc/systemd/system/web.service", &unit);
        assert_eq!(found.refused.len(), 2, "every refused value is reported: {:?}", found.refused);
        let paths: Vec<&str> = found.links.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["/etc/systemd/system/multi-user.target.wants/web.service"], "only accepted values link");
    }

    #[test]
    fn unit_names_as_systemd_classifies_them() {
        let cases = [
            ("web.service", Some(NameKind::Plain)),
            ("dev-disk-by\\x2dlabel.mount", Some(NameKind::Plain)),
            ("getty@.service", Some(NameKind::Template)),
            ("getty@tty1.service", Some(NameKind::Instance)),
            ("a@b@c.service", Some(NameKind::Instance)),
            ("@x.service", None),
            (".service", None),
            ("web", None),
            ("web.conf", None),
            ("a/b.service", None),
            ("a b.service", None),
            ("../x.target", None),
        ];
        for (name, want) in cases {
            assert_eq!(unit_name_kind(name), want, "case {name}");
        }
        assert_eq!(unit_name_kind(&format!("{}.service", "a".repeat(247))), Some(NameKind::Plain));
        assert_eq!(unit_name_kind(&format!("{}.service", "a".repeat(248))), None, "longer than 255 bytes");
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
