//! Ignition JSON as input: spec 3.0.0–3.6.0 (and 3.7.0-experimental) read with the same typed
//! schema as Butane, gated by the spec's level, then validated by Ignition's rules.

use crate::model::butane::variant::Spec;
use crate::model::decode::{Decode, Decoder, Gates};
use crate::model::ignition::types::Config;
use crate::model::ignition::validate;
use crate::model::path::Path;
use crate::model::report::{Diagnostic, Report};
use crate::model::yaml::{self, Document, YamlError};

/// The newest stable spec minor version.
pub const NEWEST_STABLE_MINOR: u8 = 6;

/// Why an Ignition config could not be read.
#[derive(Debug, Clone)]
pub enum IgnitionError {
    /// Not parseable JSON.
    Syntax(YamlError),
    /// `ignition.version` is missing or not a supported spec.
    Version(String),
    /// Values of the wrong JSON type, located.
    Types(Report),
}

/// Parses a spec version string (`3.4.0`, `3.7.0-experimental`).
pub fn parse_version(version: &str) -> Option<Spec> {
    let parsed = semver::Version::parse(version).ok()?;
    let experimental = match parsed.pre.as_str() {
        "" => false,
        "experimental" => true,
        _ => return None,
    };
    let supported = parsed.major == 3
        && parsed.patch == 0
        && parsed.build.is_empty()
        && ((!experimental && parsed.minor <= u64::from(NEWEST_STABLE_MINOR)) || (experimental && parsed.minor == 7));
    supported.then_some(Spec { minor: parsed.minor as u8, experimental })
}

/// Whether `src` looks like Ignition JSON rather than Butane YAML.
pub fn looks_like_ignition(doc: &Document) -> bool {
    doc.root.get("variant").is_none() && doc.root.get("ignition").and_then(|i| i.get("version")).is_some()
}

/// A config read from Ignition JSON, with its spec and located findings.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The config.
    pub config: Config,
    /// Its spec version.
    pub spec: Spec,
    /// Unused keys and validation findings, located.
    pub report: Report,
}

/// Reads and validates an Ignition config.
pub fn parse(src: &str) -> Result<Parsed, IgnitionError> {
    let doc = yaml::parse(src).map_err(IgnitionError::Syntax)?;
    parse_document(&doc)
}

/// Reads and validates an already parsed Ignition document.
pub fn parse_document(doc: &Document) -> Result<Parsed, IgnitionError> {
    let version = doc.root.get("ignition").and_then(|i| i.get("version")).and_then(|v| v.as_scalar()).unwrap_or("");
    let spec = parse_version(version).ok_or_else(|| IgnitionError::Version(version.to_string()))?;
    let mut decoder = Decoder::new(doc, Gates::ignition(spec.minor));
    let config = Config::decode(&doc.root, &mut decoder, &Path::root());
    if !decoder.type_errors.is_empty() {
        return Err(IgnitionError::Types(Report { entries: decoder.type_errors }));
    }
    let mut report = Report { entries: decoder.warnings };
    for d in validate::validate(&config, spec).entries {
        report.push(locate(d, doc));
    }
    Ok(Parsed { config, spec, report })
}

fn locate(mut d: Diagnostic, doc: &Document) -> Diagnostic {
    if let (None, Some(path)) = (d.mark, &d.path) {
        let node = doc.locate(path, false);
        d.mark = Some(node.mark);
        d.span = node.span;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_supported_versions_only() {
        let cases = [
            ("3.0.0", Some((0, false))),
            ("3.6.0", Some((6, false))),
            ("3.7.0-experimental", Some((7, true))),
            ("3.7.0", None),
            ("3.5.0-experimental", None),
            ("2.2.0", None),
            ("9.9.9", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_version(text).map(|s| (s.minor, s.experimental)), want, "case {text}");
        }
    }

    #[test]
    fn reads_json_with_its_spec_gates() {
        let parsed = parse(r#"{"ignition":{"version":"3.0.0"},"kernelArguments":{"shouldExist":["a"]}}"#).unwrap();
        assert_eq!(parsed.spec.minor, 0);
        assert!(parsed.config.kernel_arguments.should_exist.is_empty(), "kernelArguments is not in 3.0.0");
        assert_eq!(parsed.report.entries[0].message, "unused key kernelArguments");
    }

    #[test]
    fn wrong_json_types_are_fatal() {
        let err = parse(r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":5}]}}"#).unwrap_err();
        assert!(matches!(err, IgnitionError::Types(_)), "{err:?}");
    }
}
