//! Test fixtures shared by the validation tests: a spec, a minimal config, and the report as
//! `path message` lines.

use super::validate;
use crate::model::butane::variant::Spec;
use crate::model::ignition::types::Config;

pub(super) fn spec(minor: u8) -> Spec {
    Spec { minor, experimental: false }
}

pub(super) fn messages(cfg: &Config, minor: u8) -> Vec<String> {
    validate(cfg, spec(minor))
        .entries
        .into_iter()
        .map(|d| format!("{} {}", d.path.map(|p| p.to_string()).unwrap_or_default(), d.message))
        .collect()
}

pub(super) fn base(minor: u8) -> Config {
    let mut cfg = Config::default();
    cfg.ignition.version = spec(minor).version();
    cfg
}
