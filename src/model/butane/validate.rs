//! Butane's own checks of the source config, and the variants' field filters.

use crate::model::butane::variant::Target;
use crate::model::ignition::types::Config;
use crate::model::report::Report;

/// Validates the Butane source (before translation).
pub fn source(_cfg: &Config, _target: Target) -> Report {
    Report::default()
}

/// Rejects fields the variant does not support.
pub fn filters(_cfg: &Config, _target: Target) -> Report {
    Report::default()
}
