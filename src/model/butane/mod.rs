//! The Butane front end: bytes of Butane YAML in, an Ignition config and a located report out.
//!
//! The pipeline follows Butane's: pick the translator from `variant`/`version`, decode with the
//! version's schema (unused keys warn, type mismatches are fatal), validate the source,
//! translate the sugar, apply the variant's field filters, then validate the generated
//! Ignition and map its findings back to YAML paths, lines and columns.
//! - [`variant`] — the variant/version registry.
//! - [`gates`] — fields that only some variants have.
//! - [`files`] — the files directory and `local:` path rules.
//! - [`translation`] — output path → source path.
//! - [`translate`] — sugar expansion.
//! - [`generate`] — generated merge parents: mount units, `boot_device`, `grub`.
//! - [`validate`] — Butane's source checks and variant filters.

pub mod files;
pub mod gates;
pub mod generate;
pub mod translate;
pub mod translation;
pub mod validate;
pub mod variant;

use crate::model::decode::{Decode, Decoder};
use crate::model::ignition::spec::{self, IgnitionError};
use crate::model::ignition::types::Config;
use crate::model::ignition::validate as ign_validate;
use crate::model::json::Json;
use crate::model::path::Path;
use crate::model::report::{Diagnostic, Report};
use crate::model::yaml::{self, Document, YamlError};

use files::FilesDir;
use translation::Translations;
use variant::{SelectError, Target};

/// A successful translation.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The chosen variant, version and spec.
    pub target: Target,
    /// The Ignition config.
    pub config: Config,
    /// Output path → source path, for every generated entry.
    pub translations: Translations,
    /// Warnings (never errors), located.
    pub report: Report,
}

impl Rendered {
    /// The Ignition JSON value, in Butane's key order.
    pub fn to_json(&self) -> Json {
        crate::model::decode::ToJson::to_json(&self.config)
    }
}

/// Which half of the pipeline found the errors (Butane's summary line differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The Butane source is invalid.
    Source,
    /// The generated Ignition config is invalid.
    Generated,
    /// An Ignition config given as input is invalid.
    Input,
}

/// Why no config was produced.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The YAML could not be parsed.
    Yaml(YamlError),
    /// No translator for the variant and version.
    Select(SelectError),
    /// An Ignition config whose `ignition.version` is missing or unsupported.
    IgnitionVersion(String),
    /// Values of the wrong type (fatal, like yaml.v3's unmarshal errors), located.
    Types(Report),
    /// Errors found by validation, with every warning, located.
    Invalid {
        /// All findings.
        report: Report,
        /// Where the errors were found.
        stage: Stage,
    },
}

/// Translates Butane YAML to Ignition (or validates Ignition JSON given as input), with
/// Butane's data-URL encoding. `files` is the files directory, when one was given.
pub fn render(src: &str, files: Option<&dyn FilesDir>) -> Result<Rendered, Failure> {
    render_with(src, files, true)
}

/// As [`render`]; `compress: false` encodes data URLs without gzip, for configs that are
/// decoded right away (plan and apply), where compressing would only cost time.
pub fn render_with(src: &str, files: Option<&dyn FilesDir>, compress: bool) -> Result<Rendered, Failure> {
    let doc = yaml::parse(src).map_err(Failure::Yaml)?;
    if spec::looks_like_ignition(&doc) {
        return render_ignition_input(&doc);
    }
    let root = &doc.root;
    let scalar = |key: &str| root.get(key).and_then(|n| if n.is_null() { None } else { n.as_scalar() });
    let target = variant::select(scalar("variant"), scalar("version")).map_err(Failure::Select)?;

    let mut decoder = Decoder::new(&doc, target.gates());
    let cfg = Config::decode(root, &mut decoder, &Path::root());
    if !decoder.type_errors.is_empty() {
        return Err(Failure::Types(Report { entries: decoder.type_errors }));
    }
    let mut report = Report { entries: decoder.warnings };

    let source = validate::source(&cfg, target);
    let source_failed = source.has_errors();
    report.merge(correlate(source, &doc, &Translations::default(), false));
    if source_failed {
        return Err(Failure::Invalid { report, stage: Stage::Source });
    }

    let translated = translate::translate(&cfg, target, files, compress);
    let translations = translated.translations;
    let mut translate_report = correlate(translated.report, &doc, &Translations::default(), false);
    translate_report.merge(correlate(translated.output_report, &doc, &translations, true));
    translate_report.merge(correlate(validate::filters(&translated.config, target), &doc, &translations, true));
    let translate_failed = translate_report.has_errors();
    report.merge(translate_report);
    if translate_failed {
        return Err(Failure::Invalid { report, stage: Stage::Source });
    }

    let config = translated.config;
    let generated_report = ign_validate::validate(&config, target.spec);
    let generated_failed = generated_report.has_errors();
    report.merge(correlate(generated_report, &doc, &translations, true));
    if generated_failed {
        return Err(Failure::Invalid { report, stage: Stage::Generated });
    }
    Ok(Rendered { target, config, translations, report })
}

/// Validates an Ignition config given as input and passes it through unchanged.
fn render_ignition_input(doc: &Document) -> Result<Rendered, Failure> {
    let parsed = spec::parse_document(doc).map_err(|e| match e {
        IgnitionError::Syntax(e) => Failure::Yaml(e),
        IgnitionError::Version(v) => Failure::IgnitionVersion(v),
        IgnitionError::Types(report) => Failure::Types(report),
    })?;
    if parsed.report.has_errors() {
        return Err(Failure::Invalid { report: parsed.report, stage: Stage::Input });
    }
    let target = Target { variant: variant::Variant::Fcos, fcos_minor: parsed.spec.minor + 1, spec: parsed.spec };
    Ok(Rendered { target, config: parsed.config, translations: Translations::default(), report: parsed.report })
}

/// Fills in line and column for each diagnostic; output paths are first mapped to source paths.
fn correlate(report: Report, doc: &Document, translations: &Translations, output_paths: bool) -> Report {
    let entries = report.entries.into_iter().map(|d| locate(d, doc, translations, output_paths)).collect();
    Report { entries }
}

fn locate(mut d: Diagnostic, doc: &Document, translations: &Translations, output_paths: bool) -> Diagnostic {
    if d.mark.is_some() {
        return d;
    }
    if let Some(path) = d.path.take() {
        let path = if output_paths { translations.source_of(&path) } else { path };
        let node = doc.locate(&path, false);
        d.mark = Some(node.mark);
        d.span = node.span;
        d.path = Some(path);
    }
    d
}
