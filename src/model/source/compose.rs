//! Composition: a host's Butane fragments, services and host layer become one Ignition config,
//! with the origin (file and YAML path) of every entry.
//!
//! Fragments and services compose: two of them declaring the same path, unit, user or device is
//! an error that names both. A fragment's `local:` paths resolve in `butane/`, `host.bu`'s in
//! `hosts/<host>/files/`. The host layer (`host.bu`) comes last and replaces whole entries;
//! each replacement is recorded so that `plan` can say so. The spec version is the highest of
//! the fragments' (and `host.bu`'s); with no Butane at all, the newest stable spec.

use std::collections::BTreeMap;

use crate::model::butane::files::FilesDir;
use crate::model::butane::translation::Translations;
use crate::model::butane::variant::Spec;
use crate::model::butane::{self, Failure, Rendered};
use crate::model::ignition::dataurl;
use crate::model::ignition::merge::Keyed;
use crate::model::ignition::spec::NEWEST_STABLE_MINOR;
use crate::model::ignition::types::{Config, Dropin, File, Resource, Unit};
use crate::model::path::Path;
use crate::model::source::SourceIssue;
use crate::model::source::layout::{HostLayout, ServiceLayout};
use crate::model::source::tree::SourceTree;
use crate::model::unit;

/// Where Quadlet files go for the system instance.
pub const QUADLET_DIR: &str = "/etc/containers/systemd";

/// Where an entry was declared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// Repository path of the declaring file.
    pub file: String,
    /// The YAML path inside it, for Butane entries.
    pub path: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} ({p})", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// The identity of an entry across layers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKey {
    /// A file, directory or link, by path.
    Node(String),
    /// A systemd unit, by name.
    Unit(String),
    /// A unit's drop-in.
    Dropin(String, String),
    /// Any other keyed entry: (section, key), e.g. ("passwd.users", "core").
    Other(String, String),
}

impl std::fmt::Display for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryKey::Node(p) => f.write_str(p),
            EntryKey::Unit(u) => write!(f, "unit {u}"),
            EntryKey::Dropin(u, d) => write!(f, "drop-in {u}.d/{d}"),
            EntryKey::Other(section, key) => write!(f, "{section} {key}"),
        }
    }
}

/// The host layer replacing an entry of a fragment or service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// What was replaced.
    pub key: EntryKey,
    /// Who declared it first.
    pub replaced: Origin,
    /// The host layer's declaration.
    pub by: Origin,
}

/// A host composed into one config.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The host name.
    pub host: String,
    /// The config; `ignition.version` is the chosen spec.
    pub config: Config,
    /// The chosen spec.
    pub spec: Spec,
    /// The origin of every entry.
    pub origins: BTreeMap<EntryKey, Origin>,
    /// Entries the host layer replaced.
    pub overrides: Vec<Override>,
    /// Butane warnings of the fragments.
    pub warnings: Vec<SourceIssue>,
}

/// Composes `layout` from `tree`.
pub fn compose(tree: &SourceTree, layout: &HostLayout, compress: bool) -> Result<Composed, Vec<SourceIssue>> {
    let encoding = if compress { dataurl::Encoding::Shortest } else { dataurl::Encoding::Fast };
    let mut cx = Cx {
        encoding,
        compress,
        issues: Vec::new(),
        warnings: Vec::new(),
        acc: Config::default(),
        origins: BTreeMap::new(),
        overrides: Vec::new(),
        spec: None,
    };
    for (_, path) in &layout.fragments {
        if let Some(rendered) = cx.render(tree, path, "butane") {
            cx.add_config(rendered, path, Mode::Compose);
        }
    }
    for service in &layout.services {
        cx.add_service(tree, service);
    }
    if let Some(path) = &layout.host_butane {
        if let Some(rendered) = cx.render(tree, path, &layout.host_files) {
            cx.add_config(rendered, path, Mode::Override);
        }
    }
    if !cx.issues.is_empty() {
        return Err(cx.issues);
    }
    let spec = cx.spec.unwrap_or(Spec { minor: NEWEST_STABLE_MINOR, experimental: false });
    cx.acc.ignition.version = spec.version();
    Ok(Composed {
        host: layout.host.clone(),
        config: cx.acc,
        spec,
        origins: cx.origins,
        overrides: cx.overrides,
        warnings: cx.warnings,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Fragments and services: a second declaration is an error.
    Compose,
    /// The host layer: a second declaration replaces the first.
    Override,
}

struct Cx {
    encoding: dataurl::Encoding,
    compress: bool,
    issues: Vec<SourceIssue>,
    warnings: Vec<SourceIssue>,
    acc: Config,
    origins: BTreeMap<EntryKey, Origin>,
    overrides: Vec<Override>,
    spec: Option<Spec>,
}

impl Cx {
    fn render(&mut self, tree: &SourceTree, path: &str, files_dir: &str) -> Option<Rendered> {
        let file = tree.get(path)?;
        let Ok(text) = std::str::from_utf8(&file.bytes) else {
            self.issues.push(SourceIssue::error(path, "not UTF-8 text"));
            return None;
        };
        let files = tree.files_dir(files_dir);
        match butane::render_with(text, Some(&files as &dyn FilesDir), self.compress) {
            Ok(rendered) => {
                self.warnings.extend(rendered.report.entries.iter().map(|d| SourceIssue::from_diagnostic(path, d)));
                self.spec = self.spec.max(Some(rendered.target.spec));
                Some(rendered)
            }
            Err(failure) => {
                self.issues.extend(failure_issues(path, &failure));
                None
            }
        }
    }

    /// Adds every entry of a rendered Butane config.
    fn add_config(&mut self, rendered: Rendered, file: &str, mode: Mode) {
        let origins = origins_of(&rendered.config, &rendered.translations, file);
        let origin =
            |key: &EntryKey| origins.get(key).cloned().unwrap_or_else(|| Origin { file: file.to_string(), path: None });
        let Config { ignition, kernel_arguments, passwd, storage, systemd, .. } = rendered.config;
        if ignition.config != Default::default()
            || ignition.security != Default::default()
            || ignition.proxy != Default::default()
            || ignition.timeouts != Default::default()
        {
            let acc = &mut self.acc.ignition;
            acc.config.merge.extend(ignition.config.merge);
            if ignition.config.replace != Default::default() {
                acc.config.replace = ignition.config.replace;
            }
            acc.security.tls.certificate_authorities.extend(ignition.security.tls.certificate_authorities);
            if ignition.proxy != Default::default() {
                acc.proxy = ignition.proxy;
            }
            if ignition.timeouts != Default::default() {
                acc.timeouts = ignition.timeouts;
            }
        }
        for f in storage.files {
            let key = EntryKey::Node(f.path.clone());
            if self.claim(key.clone(), origin(&key), mode) {
                replace_node(&mut self.acc, &f.path);
                self.acc.storage.files.push(f);
            }
        }
        for d in storage.directories {
            let key = EntryKey::Node(d.path.clone());
            if self.claim(key.clone(), origin(&key), mode) {
                replace_node(&mut self.acc, &d.path);
                self.acc.storage.directories.push(d);
            }
        }
        for l in storage.links {
            let key = EntryKey::Node(l.path.clone());
            if self.claim(key.clone(), origin(&key), mode) {
                replace_node(&mut self.acc, &l.path);
                self.acc.storage.links.push(l);
            }
        }
        for u in systemd.units {
            let unit_origin = origin(&EntryKey::Unit(u.name.clone()));
            self.add_unit(u, unit_origin, &origins, mode);
        }
        let by =
            |section: &'static str| move |key: &str| origin(&EntryKey::Other(section.to_string(), key.to_string()));
        add_keyed(self, "passwd.users", passwd.users, |c| &mut c.acc.passwd.users, by("passwd.users"), mode);
        add_keyed(self, "passwd.groups", passwd.groups, |c| &mut c.acc.passwd.groups, by("passwd.groups"), mode);
        add_keyed(self, "storage.disks", storage.disks, |c| &mut c.acc.storage.disks, by("storage.disks"), mode);
        add_keyed(self, "storage.raid", storage.raid, |c| &mut c.acc.storage.raid, by("storage.raid"), mode);
        let filesystems = by("storage.filesystems");
        add_keyed(
            self,
            "storage.filesystems",
            storage.filesystems,
            |c| &mut c.acc.storage.filesystems,
            filesystems,
            mode,
        );
        add_keyed(self, "storage.luks", storage.luks, |c| &mut c.acc.storage.luks, by("storage.luks"), mode);
        let kargs = &mut self.acc.kernel_arguments;
        for arg in kernel_arguments.should_exist {
            if !kargs.should_exist.contains(&arg) {
                kargs.should_exist.push(arg);
            }
        }
        for arg in kernel_arguments.should_not_exist {
            if !kargs.should_not_exist.contains(&arg) {
                kargs.should_not_exist.push(arg);
            }
        }
    }

    fn add_unit(&mut self, u: Unit, origin: Origin, known: &BTreeMap<EntryKey, Origin>, mode: Mode) {
        if !self.claim(EntryKey::Unit(u.name.clone()), origin.clone(), mode) {
            return;
        }
        for d in &u.dropins {
            let key = EntryKey::Dropin(u.name.clone(), d.name.clone());
            let dropin_origin = known.get(&key).cloned().unwrap_or_else(|| origin.clone());
            self.origins.insert(key, dropin_origin);
        }
        self.acc.systemd.units.retain(|existing| existing.name != u.name);
        self.acc.systemd.units.push(u);
    }

    /// Records `origin` for `key`. Returns whether the entry should be added: in compose mode a
    /// second claim is an error; in override mode it replaces the first (and is recorded).
    fn claim(&mut self, key: EntryKey, origin: Origin, mode: Mode) -> bool {
        match (self.origins.get(&key).cloned(), mode) {
            (None, _) => {
                self.origins.insert(key, origin);
                true
            }
            (Some(first), Mode::Compose) => {
                self.issues.push(SourceIssue::error(
                    origin.file.clone(),
                    format!("{key} is declared twice: by {first} and by {origin}; keep one, or override it in the host's host.bu"),
                ));
                false
            }
            (Some(first), Mode::Override) => {
                self.overrides.push(Override { key: key.clone(), replaced: first, by: origin.clone() });
                self.origins.insert(key, origin);
                true
            }
        }
    }

    fn add_service(&mut self, tree: &SourceTree, service: &ServiceLayout) {
        for q in &service.quadlets {
            let path = format!("{QUADLET_DIR}/{}", q.name);
            self.add_file(tree, &path, &q.path, false);
            for d in &q.dropins {
                self.add_file(tree, &format!("{path}.d/{}", d.name), &d.path, false);
            }
        }
        for u in &service.units {
            let Some(contents) = read_text(tree, &u.path, &mut self.issues) else { continue };
            let enabled = unit::parse(&contents).ok().filter(|p| p.has_install_options()).map(|_| true);
            let mut dropins = Vec::new();
            for d in &u.dropins {
                if let Some(text) = read_text(tree, &d.path, &mut self.issues) {
                    dropins.push(Dropin { name: d.name.clone(), contents: Some(text), ..Dropin::default() });
                }
            }
            let unit = Unit { name: u.name.clone(), contents: Some(contents), enabled, dropins, ..Unit::default() };
            let origin = Origin { file: u.path.clone(), path: None };
            for d in &u.dropins {
                self.origins.insert(
                    EntryKey::Dropin(u.name.clone(), d.name.clone()),
                    Origin { file: d.path.clone(), path: None },
                );
            }
            if self.claim(EntryKey::Unit(u.name.clone()), origin, Mode::Compose) {
                self.acc.systemd.units.push(unit);
            }
        }
        for c in &service.configs {
            let path = format!("/etc/{}/{}", service.config_root, c.rel);
            self.add_file(tree, &path, &c.path, c.executable);
        }
    }

    fn add_file(&mut self, tree: &SourceTree, path: &str, source: &str, executable: bool) {
        let Some(file) = tree.get(source) else { return };
        if !self.claim(EntryKey::Node(path.to_string()), Origin { file: source.to_string(), path: None }, Mode::Compose)
        {
            return;
        }
        let made = dataurl::make(&file.bytes, None, self.encoding);
        self.acc.storage.files.push(File {
            path: path.to_string(),
            contents: Resource { source: Some(made.url), compression: made.compression, ..Resource::default() },
            mode: Some(if executable || file.executable { 0o755 } else { 0o644 }),
            ..File::default()
        });
    }
}

fn read_text(tree: &SourceTree, path: &str, issues: &mut Vec<SourceIssue>) -> Option<String> {
    let file = tree.get(path)?;
    match String::from_utf8(file.bytes.clone()) {
        Ok(text) => Some(text),
        Err(_) => {
            issues.push(SourceIssue::error(path, "unit files must be UTF-8 text"));
            None
        }
    }
}

/// Removes any node at `path` (the host layer replaces whole entries, whatever their kind).
fn replace_node(acc: &mut Config, path: &str) {
    acc.storage.files.retain(|f| f.path != path);
    acc.storage.directories.retain(|d| d.path != path);
    acc.storage.links.retain(|l| l.path != path);
}

fn add_keyed<T: Keyed>(
    cx: &mut Cx,
    section: &str,
    items: Vec<T>,
    list: impl Fn(&mut Cx) -> &mut Vec<T>,
    origin: impl Fn(&str) -> Origin,
    mode: Mode,
) {
    for item in items {
        let key = item.merge_key();
        if cx.claim(EntryKey::Other(section.to_string(), key.clone()), origin(&key), mode) {
            let acc = list(cx);
            acc.retain(|existing| existing.merge_key() != key);
            acc.push(item);
        }
    }
}

/// Origins of a rendered config's entries: the file and the YAML path each came from.
pub fn origins_of(cfg: &Config, translations: &Translations, file: &str) -> BTreeMap<EntryKey, Origin> {
    let origin = |out: Path| Origin { file: file.to_string(), path: Some(translations.source_of(&out).to_string()) };
    let st = Path::root().key("storage");
    let mut out = BTreeMap::new();
    for (i, f) in cfg.storage.files.iter().enumerate() {
        out.insert(EntryKey::Node(f.path.clone()), origin(st.key("files").index(i)));
    }
    for (i, d) in cfg.storage.directories.iter().enumerate() {
        out.insert(EntryKey::Node(d.path.clone()), origin(st.key("directories").index(i)));
    }
    for (i, l) in cfg.storage.links.iter().enumerate() {
        out.insert(EntryKey::Node(l.path.clone()), origin(st.key("links").index(i)));
    }
    let units = Path::root().key("systemd").key("units");
    for (i, u) in cfg.systemd.units.iter().enumerate() {
        out.insert(EntryKey::Unit(u.name.clone()), origin(units.index(i)));
        for (j, d) in u.dropins.iter().enumerate() {
            out.insert(
                EntryKey::Dropin(u.name.clone(), d.name.clone()),
                origin(units.index(i).key("dropins").index(j)),
            );
        }
    }
    let keyed: [(&str, Vec<String>); 6] = [
        ("storage.disks", cfg.storage.disks.iter().map(|d| d.device.clone()).collect()),
        ("storage.raid", cfg.storage.raid.iter().map(|r| r.name.clone()).collect()),
        ("storage.filesystems", cfg.storage.filesystems.iter().map(|f| f.device.clone()).collect()),
        ("storage.luks", cfg.storage.luks.iter().map(|l| l.name.clone()).collect()),
        ("passwd.users", cfg.passwd.users.iter().map(|u| u.name.clone()).collect()),
        ("passwd.groups", cfg.passwd.groups.iter().map(|g| g.name.clone()).collect()),
    ];
    for (section, keys) in keyed {
        let list = section.split('.').fold(Path::root(), |p, k| p.key(k));
        for (i, key) in keys.into_iter().enumerate() {
            out.insert(EntryKey::Other(section.to_string(), key), origin(list.index(i)));
        }
    }
    out
}

/// The issues a failed Butane render gives, located in `file`.
pub fn failure_issues(file: &str, failure: &Failure) -> Vec<SourceIssue> {
    match failure {
        Failure::Yaml(e) => vec![SourceIssue::error(file, format!("YAML syntax: {}", e.message)).at(e.mark)],
        Failure::Select(e) => vec![SourceIssue::error(file, e.to_string())],
        Failure::IgnitionVersion(v) => vec![SourceIssue::error(file, format!("unsupported Ignition version {v:?}"))],
        Failure::Types(report) | Failure::Invalid { report, .. } => {
            report.entries.iter().map(|d| SourceIssue::from_diagnostic(file, d)).collect()
        }
    }
}
