//! systemd unit files: parsing, semantic comparison and unit-name escaping.
//!
//! The parser follows go-systemd's `unit.Deserialize` (the one Ignition validates with):
//! sections, `Key=Value` options, `#`/`;` comments, backslash line continuations. It keeps
//! what a semantic comparison needs: sections in order with their options.

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

/// Why a unit file does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A `[` without its `]`.
    #[error("unable to find end of section")]
    UnterminatedSection,
    /// A section header with characters after the `]`.
    #[error("section closing bracket must be the last character on the line")]
    TrailingSectionText,
}

/// Parses unit file text.
pub fn parse(text: &str) -> Result<UnitFile, UnitError> {
    let mut unit = UnitFile::default();
    let mut section = String::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let end = rest.find(']').ok_or(UnitError::UnterminatedSection)?;
            if end + 1 != rest.len() {
                return Err(UnitError::TrailingSectionText);
            }
            section = rest[..end].to_string();
            unit.sections.push(section.clone());
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        let mut value = value.trim().to_string();
        while value.ends_with('\\') {
            value.pop();
            match lines.next() {
                Some(next) => {
                    value.push(' ');
                    value.push_str(next.trim());
                }
                None => break,
            }
        }
        unit.options.push(UnitOption { section: section.clone(), name: name.trim().to_string(), value });
    }
    Ok(unit)
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
        assert_eq!(unit.values("Service", "ExecStart").collect::<Vec<_>>(), ["/bin/a  b"]);
        assert!(unit.has_install_options());
        assert_eq!(unit.sections, ["Unit", "Service", "Install"]);
    }

    #[test]
    fn rejects_unterminated_sections() {
        assert_eq!(parse("[Service\nA=b\n").unwrap_err(), UnitError::UnterminatedSection);
        assert!(parse("Foo=bar\n").is_ok(), "options outside a section are accepted");
        assert!(parse("not a unit file").is_ok());
    }
}
