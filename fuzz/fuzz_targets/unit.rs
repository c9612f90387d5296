//! Fuzz target `unit`: bytes → the systemd unit parser and what is built on it: the links
//! `systemctl enable` would make, the Quadlet key table, the service a Quadlet file generates,
//! unit-name classification and path escaping.
//!
//! What must hold for every input (systemd.syntax(7), systemctl, systemd.unit(5)):
//! - a parsed unit written back as `[Section]` and `Key=Value` lines reads back as the same
//!   options in the same order, and means the same to systemd;
//! - every enablement link lies directly in the unit directory or in one `*.wants`/`*.requires`/
//!   `*.upholds` folder of it, named by a valid unit name, and points at the unit's file;
//! - Quadlet key issues name a line of the file;
//! - a valid unit name has no `/`, and an escaped path has none.
#![no_main]

use core_ops::model::quadlet_keys;
use core_ops::model::unit::{self, ENABLE_DIR, UnitFile};
use core_ops_fuzz::unit_text;
use libfuzzer_sys::fuzz_target;

/// The unit names the `[Install]` section is enabled as: a plain unit, a template, an instance.
const NAMES: &[&str] = &["web.service", "web@.service", "web@blue.service", "web.socket"];
/// Where the unit's file is, as the link targets name it.
const FILE_PATH: &str = "/etc/systemd/system/web.service";
/// The folders a dependency link may be in, by their suffix.
const DEPENDENCY_FOLDERS: &[&str] = &[".wants", ".requires", ".upholds"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = unit::parse(text) {
        check_round_trip(text, &parsed);
        for name in NAMES {
            check_links(name, &parsed);
        }
        check_quadlet(text, &parsed);
    }
    if unit::unit_name_kind(text).is_some() {
        assert!(!text.contains('/') && text.len() <= 255, "{text:?} classified as a unit name");
    }
    let escaped = unit::escape_path(text);
    assert!(!escaped.is_empty() && !escaped.contains('/'), "{text:?} escaped as {escaped:?}");
});

fn check_round_trip(text: &str, parsed: &UnitFile) {
    let Some(written) = unit_text::write(parsed) else { return };
    let reread = unit::parse(&written).unwrap_or_else(|e| panic!("a written unit does not parse ({e}):\n{written}"));
    assert_eq!(reread.options, parsed.options, "written and read back, the options changed:\n{written}");
    assert!(unit::semantically_equal(text, &written), "a unit and its written form differ in meaning");
}

fn check_links(name: &str, parsed: &UnitFile) {
    let enablement = unit::enable_links(name, FILE_PATH, parsed);
    for link in &enablement.links {
        assert_eq!(link.target, FILE_PATH, "a link points elsewhere: {link:?}");
        let rel = link.path.strip_prefix(ENABLE_DIR).and_then(|r| r.strip_prefix('/'));
        let rel = rel.unwrap_or_else(|| panic!("a link outside {ENABLE_DIR}: {}", link.path));
        let link_name = match rel.split_once('/') {
            None => rel,
            Some((folder, link_name)) => {
                let depender = DEPENDENCY_FOLDERS.iter().find_map(|s| folder.strip_suffix(s));
                let depender = depender.unwrap_or_else(|| panic!("a link in an unknown folder: {}", link.path));
                assert!(unit::unit_name_kind(depender).is_some(), "a link in the folder of no unit: {}", link.path);
                link_name
            }
        };
        assert!(unit::unit_name_kind(link_name).is_some(), "a link not named as a unit: {}", link.path);
    }
    for also in &enablement.also {
        assert!(unit::unit_name_kind(also).is_some(), "Also= accepted {also:?}");
    }
}

/// The Quadlet type of the unit's first section that is one (`[Container]` → `.container`).
fn check_quadlet(text: &str, parsed: &UnitFile) {
    let Some(ty) = parsed.sections.iter().find_map(|s| quadlet_keys::TYPES.iter().find(|t| t.section == s)) else {
        return;
    };
    let lines = text.lines().count();
    for issue in quadlet_keys::check(ty, text) {
        assert!(
            (1..=lines).contains(&issue.line),
            "a Quadlet issue at line {} of {lines}: {}",
            issue.line,
            issue.message
        );
    }
    let file_name = format!("web.{}", ty.extension);
    let service = unit::quadlet_service_name(&file_name, Some(text)).expect("a Quadlet file generates a service");
    assert!(service.ends_with(".service"), "{file_name} generates {service:?}");
}
