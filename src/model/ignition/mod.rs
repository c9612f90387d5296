//! Ignition: the config types (with Butane's sugar fields), validation of a rendered config,
//! and `data:` URLs.
//! - [`types`] — the config structs, declared once for both dialects.
//! - [`children`] — `ignition.config` merge/replace children, resolved as Ignition does.
//! - [`dataurl`] — making and reading `data:` URLs as Butane does.
//! - [`merge`] — Ignition's config merge.
//! - [`url`] — URL checks (Go `net/url` parse rules, schemes, `data:` grammar).
//! - [`validate`] — Ignition's semantic checks of a config.
//! - [`spec`] — the spec versions and their parsing from JSON.

pub mod children;
pub mod dataurl;
pub mod merge;
pub mod spec;
pub mod types;
pub mod url;
pub mod validate;
