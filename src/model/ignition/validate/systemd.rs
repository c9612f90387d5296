//! systemd units and drop-ins: unit name extensions, parseable contents, `[Install]` sections
//! of enabled units and of the templates of enabled instances, and storage nodes whose paths
//! a unit or drop-in already writes.

use std::collections::{HashMap, HashSet};

use super::{SYSTEMD_UNIT_DIR, Validator, ext, is_empty, root};
use crate::model::ignition::types::{Config, Systemd, Unit};
use crate::model::path::Path;
use crate::model::unit;

const UNIT_EXTENSIONS: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

impl Validator {
    pub(super) fn unit_path_conflicts(&mut self, cfg: &Config) {
        let mut paths = HashSet::new();
        for u in &cfg.systemd.units {
            if !is_empty(&u.contents) {
                paths.insert(format!("{SYSTEMD_UNIT_DIR}/{}", u.name));
            }
            for d in u.dropins.iter().filter(|d| !is_empty(&d.contents)) {
                paths.insert(format!("{SYSTEMD_UNIT_DIR}/{}.d/{}", u.name, d.name));
            }
        }
        let st = root(&["storage"]);
        let lists: [(&str, Vec<&str>); 3] = [
            ("files", cfg.storage.files.iter().map(|f| f.path.as_str()).collect()),
            ("directories", cfg.storage.directories.iter().map(|d| d.path.as_str()).collect()),
            ("links", cfg.storage.links.iter().map(|l| l.path.as_str()).collect()),
        ];
        for (list, node_paths) in lists {
            for (i, p) in node_paths.into_iter().enumerate() {
                if paths.contains(p) {
                    self.error(st.key(list).index(i).key("path"), "path conflicts with systemd unit or dropin");
                }
            }
        }
    }

    pub(super) fn systemd(&mut self, s: &Systemd) {
        let units = root(&["systemd", "units"]);
        self.template_install_sections(s, &units);
        for (i, u) in s.units.iter().enumerate() {
            self.unit(u, &units.index(i));
        }
    }

    fn template_install_sections(&mut self, s: &Systemd, units: &Path) {
        let by_name: HashMap<&str, &Unit> = s.units.iter().map(|u| (u.name.as_str(), u)).collect();
        for (i, u) in s.units.iter().enumerate() {
            if u.enabled != Some(true) {
                continue;
            }
            let Some(template) = service_template(&u.name) else { continue };
            let Some(contents) =
                by_name.get(template.as_str()).and_then(|t| t.contents.as_deref()).filter(|c| !c.is_empty())
            else {
                continue;
            };
            if let Ok(parsed) = unit::parse(contents) {
                if !parsed.has_install_options() {
                    let msg = format!("template unit {template:?} for {:?} doesn't have Install section", u.name);
                    self.warn(units.index(i).key("contents"), msg);
                }
            }
        }
    }

    fn unit(&mut self, u: &Unit, at: &Path) {
        if !UNIT_EXTENSIONS.contains(&ext(&u.name)) {
            self.error(at.key("name"), "invalid systemd unit extension");
        }
        let parsed = self.unit_contents(u.contents.as_deref(), &at.key("contents"));
        let has_contents = u.contents.as_deref().is_some_and(|c| !c.is_empty());
        if let (Some(parsed), true, true) = (parsed, u.enabled == Some(true), has_contents) {
            if !parsed.has_install_options() {
                let msg = format!("unit {:?} is enabled, but has no install section so enable does nothing", u.name);
                self.warn(at.key("contents"), msg);
            }
        }
        for (j, d) in u.dropins.iter().enumerate() {
            let dat = at.key("dropins").index(j);
            self.unit_contents(d.contents.as_deref(), &dat.key("contents"));
            if ext(&d.name) != ".conf" {
                self.error(dat.key("name"), "invalid systemd drop-in extension");
            }
        }
    }

    fn unit_contents(&mut self, contents: Option<&str>, at: &Path) -> Option<unit::UnitFile> {
        match unit::parse(contents.unwrap_or("")) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.error(at.clone(), format!("invalid unit content: {e}"));
                None
            }
        }
    }
}

/// For an instance `foo@bar.service`, its template `foo@.service` (services only).
fn service_template(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".service")?;
    let (prefix, instance) = stem.split_once('@')?;
    (!prefix.is_empty() && !instance.is_empty()).then(|| format!("{prefix}@.service"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ignition::validate::fixtures::*;

    #[test]
    fn units_extensions_contents_and_install_sections() {
        let mut cfg = base(5);
        cfg.systemd.units.push(Unit { name: "x.conf".into(), ..Unit::default() });
        cfg.systemd.units.push(Unit { name: "y.service".into(), contents: Some("[Service".into()), ..Unit::default() });
        cfg.systemd.units.push(Unit {
            name: "z.service".into(),
            enabled: Some(true),
            contents: Some("[Service]\nExecStart=/bin/true\n".into()),
            ..Unit::default()
        });
        assert_eq!(
            messages(&cfg, 5),
            [
                "$.systemd.units.0.name invalid systemd unit extension",
                "$.systemd.units.1.contents invalid unit content: unable to find end of section",
                "$.systemd.units.2.contents unit \"z.service\" is enabled, but has no install section so enable does nothing",
            ]
        );
    }
}
