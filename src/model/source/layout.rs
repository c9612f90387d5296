//! The layout rules of a source repository: which entries may stand where, `host.yaml` and
//! `service.yaml`, drop-ins and host overlays. Produces a [`HostLayout`] that names every file
//! the host uses, or every mistake found (all of them, not just the first).
//!
//! Real repositories hold more than the layout: a file the layout does not name (`README.md`,
//! `LICENSE`, `Makefile`, a README in a service folder) and any folder at the top (`docs/`) are
//! ignored with a note, unless its name is one slip from a layout file (`service.yml`). A folder
//! the layout does not name inside `hosts/<host>/` or `services/<svc>/` is an error: it is most
//! likely a typo. Unknown names get a "did you mean", and what follows from one mistake (the
//! overlay of a misspelt service) is not reported as a second one.

use crate::model::report::Mark;
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, is_identifier, is_ignored, near_miss};
use crate::model::spelling;
use crate::model::yaml::{self, Node, Value};

/// Quadlet file extensions (`services/<svc>/quadlet/`).
pub const QUADLET_EXTENSIONS: &[&str] = &["container", "volume", "network", "pod", "kube", "image", "build"];
/// systemd unit extensions (`services/<svc>/systemd/`).
pub const UNIT_EXTENSIONS: &[&str] = &["service", "socket", "timer", "target", "path", "mount", "automount"];
const TOP_LEVEL: &[&str] = &["hosts", "services", "butane"];
/// The folder of `hosts/<host>/` where `host.bu`'s `local:` paths resolve (its files directory).
pub const HOST_FILES: &str = "files";
/// The folders of a service (and of a host's overlay of it).
const SERVICE_FOLDERS: &[&str] = &["quadlet", "systemd", "config"];
/// What the layout says of a file it does not name.
const NOT_IN_LAYOUT: &str = "not part of the layout; ignored";

/// Everything one host is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLayout {
    /// The host name.
    pub host: String,
    /// Butane fragments in `host.yaml` order: (name, repository path).
    pub fragments: Vec<(String, String)>,
    /// The services in `host.yaml` order.
    pub services: Vec<ServiceLayout>,
    /// `hosts/<host>/host.bu`, when present.
    pub host_butane: Option<String>,
    /// The files directory of `host.bu`: `hosts/<host>/files`.
    pub host_files: String,
    /// What was skipped, by path: notes for `-v`.
    pub notes: Vec<SourceIssue>,
}

/// One service as this host uses it (host overlays applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLayout {
    /// The service name.
    pub name: String,
    /// The folder under `/etc` that its config files go to.
    pub config_root: String,
    /// Quadlet files.
    pub quadlets: Vec<UnitSource>,
    /// systemd units.
    pub units: Vec<UnitSource>,
    /// Config files.
    pub configs: Vec<ConfigSource>,
}

/// A unit or Quadlet file and its drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSource {
    /// The file name, e.g. `caddy.container`.
    pub name: String,
    /// Its repository path.
    pub path: String,
    /// Its drop-ins, service ones first, then the host's, each sorted by name.
    pub dropins: Vec<DropinSource>,
}

/// A drop-in file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropinSource {
    /// The file name, e.g. `10-tls.conf`.
    pub name: String,
    /// Its repository path.
    pub path: String,
    /// Whether it comes from the host's overlay.
    pub from_host: bool,
}

/// A config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// Path relative to the config root.
    pub rel: String,
    /// Repository path of the file used.
    pub path: String,
    /// The service's file that the host's replaces, when it does.
    pub replaces: Option<String>,
    /// Any x bit was set.
    pub executable: bool,
}

/// The hosts a repository describes.
pub fn hosts(tree: &SourceTree) -> Vec<String> {
    tree.children("hosts").into_iter().filter(|h| !is_ignored(h) && tree.is_dir(&format!("hosts/{h}"))).collect()
}

/// Reads the layout for `host`.
pub fn load(tree: &SourceTree, host: &str) -> Result<HostLayout, Vec<SourceIssue>> {
    let mut cx = Cx { tree, issues: Vec::new(), notes: Vec::new(), unresolved: Vec::new(), misnamed_units: Vec::new() };
    cx.top_level();
    let layout = cx.host(host);
    match layout {
        Some(mut layout) if cx.issues.is_empty() => {
            cx.notes.sort_by(|a, b| a.file.cmp(&b.file));
            layout.notes = cx.notes;
            Ok(layout)
        }
        _ => Err(cx.issues),
    }
}

struct Cx<'a> {
    tree: &'a SourceTree,
    issues: Vec<SourceIssue>,
    notes: Vec<SourceIssue>,
    /// Services `host.yaml` lists that do not exist, with the name each most likely meant: their
    /// overlays are consequences of that one mistake, not further ones.
    unresolved: Vec<(String, Option<String>)>,
    /// Unit and Quadlet files refused for their extension: a drop-in folder meant for one of them
    /// is a consequence of that mistake, not a further one.
    misnamed_units: Vec<String>,
}

/// The parsed `host.yaml`.
struct HostYaml {
    services: Vec<(String, Mark)>,
    butane: Vec<(String, Mark)>,
}

impl Cx<'_> {
    fn issue(&mut self, file: impl Into<String>, message: impl Into<String>) {
        self.issues.push(SourceIssue::error(file, message));
    }

    fn issue_at(&mut self, file: &str, mark: Mark, message: impl Into<String>) {
        self.issues.push(SourceIssue::error(file, message).at(mark));
    }

    fn note(&mut self, file: impl Into<String>, message: impl Into<String>) {
        self.notes.push(SourceIssue::note(file, message));
    }

    /// Everything at the top besides hosts/, services/ and butane/ is the repository's own
    /// business (README, LICENSE, CI, docs/): noted. So are files directly in hosts/ and services/.
    fn top_level(&mut self) {
        for name in self.tree.children("") {
            if !is_ignored(&name) && !TOP_LEVEL.contains(&name.as_str()) {
                self.note(name, NOT_IN_LAYOUT);
            }
        }
        for dir in ["hosts", "services"] {
            for name in self.tree.children(dir) {
                let path = format!("{dir}/{name}");
                if !is_ignored(&name) && !self.tree.is_dir(&path) {
                    self.note(path, NOT_IN_LAYOUT);
                }
            }
        }
    }

    /// A file the layout does not name, in a folder whose layout files are `layout_files`:
    /// ignored with a note, or an error when its name is one slip from one of them.
    fn foreign_file(&mut self, path: String, name: &str, layout_files: &[&str]) {
        match near_miss(name, layout_files.iter().copied()) {
            Some(meant) => self.issue(path, format!("not part of the layout; did you mean `{meant}`?")),
            None => self.note(path, NOT_IN_LAYOUT),
        }
    }

    /// A folder the layout does not name inside a service folder or a host overlay.
    fn unknown_service_folder(&mut self, path: String, name: &str, what: &str) {
        let hint = spelling::closest(name, SERVICE_FOLDERS.iter().copied())
            .map(|meant| format!("; did you mean `{meant}/`?"))
            .unwrap_or_default();
        self.issue(path, format!("unknown folder in {what}; expected quadlet/, systemd/ or config/{hint}"));
    }

    fn host(&mut self, host: &str) -> Option<HostLayout> {
        let dir = format!("hosts/{host}");
        if !is_identifier(host) {
            self.issue(dir, format!("`{host}` is not a valid host name: use letters, digits, `.`, `_` and `-`, starting with a letter or digit"));
            return None;
        }
        if !self.tree.is_dir(&dir) {
            let known = hosts(self.tree);
            let hint = match spelling::closest(host, known.iter().map(String::as_str)) {
                Some(meant) => format!("; did you mean `{meant}`?"),
                None if known.is_empty() => " (the repository has no hosts)".to_string(),
                None => format!(" (known hosts: {})", known.join(", ")),
            };
            self.issue("hosts", format!("no host `{host}` in hosts/{hint}"));
            return None;
        }
        let host_yaml = format!("{dir}/host.yaml");
        let parsed = self.host_yaml(host, &host_yaml)?;
        let services: Vec<ServiceLayout> = self.selected_services(&host_yaml, &parsed.services);
        let fragments = self.fragments(&host_yaml, &parsed.butane);
        let host_butane = self.tree.get(&format!("{dir}/host.bu")).map(|_| format!("{dir}/host.bu"));
        self.host_overlays(host, &services);
        let services = services.into_iter().map(|s| self.apply_overlay(host, s)).collect();
        let host_files = format!("{dir}/{HOST_FILES}");
        Some(HostLayout { host: host.to_string(), fragments, services, host_butane, host_files, notes: Vec::new() })
    }

    fn host_yaml(&mut self, host: &str, file: &str) -> Option<HostYaml> {
        let Some(src) = self.tree.get(file) else {
            self.issue(file, "missing: every host folder needs a host.yaml with `host:` and `services:`");
            return None;
        };
        let doc = self.parse_yaml(file, &src.bytes)?;
        let mut out = HostYaml { services: Vec::new(), butane: Vec::new() };
        let mut name = None;
        for (key, value) in self.mapping(file, &doc.root, "host.yaml")? {
            match key.as_str() {
                "host" => name = self.string(file, &value, "host"),
                "services" => out.services = self.string_list(file, &value, "services"),
                "butane" => out.butane = self.string_list(file, &value, "butane"),
                other => self.issue_at(
                    file,
                    value.mark,
                    format!("unknown key `{other}` in host.yaml; expected host, services, butane"),
                ),
            }
        }
        match name {
            Some((n, mark)) if n != host => self.issue_at(
                file,
                mark,
                format!("host name `{n}` does not match its folder hosts/{host}/; rename one of them"),
            ),
            None => self.issue(file, "missing `host:`; write `host: <name>` matching the folder name"),
            _ => {}
        }
        Some(out)
    }

    fn parse_yaml(&mut self, file: &str, bytes: &[u8]) -> Option<yaml::Document> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                self.issue(file, "not UTF-8 text");
                return None;
            }
        };
        match yaml::parse(text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                self.issue_at(file, e.mark, format!("YAML syntax: {}", e.message));
                None
            }
        }
    }

    fn mapping(&mut self, file: &str, node: &Node, what: &str) -> Option<Vec<(String, Node)>> {
        match &node.value {
            Value::Map(entries) => {
                Some(entries.iter().map(|e| (e.key.as_scalar().unwrap_or("").to_string(), e.value.clone())).collect())
            }
            _ if node.is_null() => Some(Vec::new()),
            _ => {
                self.issue_at(file, node.mark, format!("{what} must be a mapping of keys to values"));
                None
            }
        }
    }

    fn string(&mut self, file: &str, node: &Node, key: &str) -> Option<(String, Mark)> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some((text.clone(), node.mark)),
            _ => {
                self.issue_at(file, node.mark, format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn string_list(&mut self, file: &str, node: &Node, key: &str) -> Vec<(String, Mark)> {
        match &node.value {
            Value::Seq(items) => items.iter().filter_map(|i| self.string(file, i, key)).collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.issue_at(file, node.mark, format!("`{key}` must be a list of names"));
                Vec::new()
            }
        }
    }

    fn selected_services(&mut self, host_yaml: &str, names: &[(String, Mark)]) -> Vec<ServiceLayout> {
        let mut out: Vec<ServiceLayout> = Vec::new();
        for (name, mark) in names {
            if !is_identifier(name) {
                self.issue_at(host_yaml, *mark, format!("`{name}` is not a valid service name"));
            } else if out.iter().any(|s| &s.name == name) {
                self.issue_at(host_yaml, *mark, format!("service `{name}` is listed twice"));
            } else if !self.tree.is_dir(&format!("services/{name}")) {
                let known: Vec<String> = self
                    .tree
                    .children("services")
                    .into_iter()
                    .filter(|s| !is_ignored(s) && self.tree.is_dir(&format!("services/{s}")))
                    .collect();
                let meant = spelling::closest(name, known.iter().map(String::as_str)).map(str::to_string);
                let hint = match &meant {
                    Some(meant) => format!("; did you mean `{meant}`?"),
                    None => format!(" (known services: {})", known.join(", ")),
                };
                self.issue_at(
                    host_yaml,
                    *mark,
                    format!("unknown service `{name}`: there is no services/{name}/{hint}"),
                );
                self.unresolved.push((name.clone(), meant));
            } else if let Some(service) = self.service(name) {
                out.push(service);
            }
        }
        out
    }

    fn fragments(&mut self, host_yaml: &str, names: &[(String, Mark)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, mark) in names {
            let path = format!("butane/{name}.bu");
            if !is_identifier(name) {
                self.issue_at(host_yaml, *mark, format!("`{name}` is not a valid fragment name"));
            } else if out.iter().any(|(n, _)| n == name) {
                self.issue_at(host_yaml, *mark, format!("fragment `{name}` is listed twice"));
            } else if self.tree.get(&path).is_none() {
                let known: Vec<String> = self
                    .tree
                    .children("butane")
                    .into_iter()
                    .filter_map(|f| f.strip_suffix(".bu").map(str::to_string))
                    .collect();
                let hint = spelling::closest(name, known.iter().map(String::as_str))
                    .map(|meant| format!("; did you mean `{meant}`?"))
                    .unwrap_or_default();
                self.issue_at(host_yaml, *mark, format!("unknown Butane fragment `{name}`: there is no {path}{hint}"));
            } else {
                out.push((name.clone(), path));
            }
        }
        out
    }

    fn service(&mut self, name: &str) -> Option<ServiceLayout> {
        let dir = format!("services/{name}");
        let mut service = ServiceLayout {
            name: name.to_string(),
            config_root: name.to_string(),
            quadlets: Vec::new(),
            units: Vec::new(),
            configs: Vec::new(),
        };
        for entry in self.tree.children(&dir) {
            let path = format!("{dir}/{entry}");
            match entry.as_str() {
                _ if is_ignored(&entry) => {}
                "service.yaml" => self.service_yaml(&path, &mut service),
                "quadlet" => service.quadlets = self.units(&path, QUADLET_EXTENSIONS, "Quadlet"),
                "systemd" => service.units = self.units(&path, UNIT_EXTENSIONS, "systemd unit"),
                "config" => service.configs = self.configs(&path),
                _ if self.tree.is_dir(&path) => self.unknown_service_folder(path, &entry, "a service folder"),
                _ => self.foreign_file(path, &entry, &["service.yaml"]),
            }
        }
        Some(service)
    }

    fn service_yaml(&mut self, file: &str, service: &mut ServiceLayout) {
        let Some(src) = self.tree.get(file) else { return };
        let Some(doc) = self.parse_yaml(file, &src.bytes) else { return };
        let Some(entries) = self.mapping(file, &doc.root, "service.yaml") else { return };
        for (key, value) in entries {
            match key.as_str() {
                "config-root" => {
                    if let Some((root, mark)) = self.string(file, &value, "config-root") {
                        if is_identifier(&root) {
                            service.config_root = root;
                        } else {
                            self.issue_at(
                                file,
                                mark,
                                format!(
                                    "config-root `{root}` must be a single folder name under /etc (no `/` or `..`)"
                                ),
                            );
                        }
                    }
                }
                other => self.issue_at(
                    file,
                    value.mark,
                    format!("unknown key `{other}` in service.yaml; expected config-root"),
                ),
            }
        }
    }

    /// Unit or Quadlet files of one folder with their `<unit>.d/*.conf` drop-ins.
    fn units(&mut self, dir: &str, extensions: &[&str], what: &str) -> Vec<UnitSource> {
        let mut units: Vec<UnitSource> = Vec::new();
        let mut dropin_dirs = Vec::new();
        for entry in self.tree.children(dir) {
            let path = format!("{dir}/{entry}");
            if is_ignored(&entry) {
                continue;
            }
            if let Some(unit) = entry.strip_suffix(".d").filter(|_| self.tree.is_dir(&path)) {
                dropin_dirs.push((unit.to_string(), path));
            } else if self.tree.is_dir(&path) {
                self.issue(path, format!("unexpected folder; {dir}/ holds {what} files and <unit>.d/ drop-in folders"));
            } else if !has_extension(&entry, extensions) {
                self.issue(
                    path,
                    format!("wrong extension for {dir}/: {what} files end in .{}", extensions.join(", .")),
                );
                self.misnamed_units.push(entry.clone());
            } else {
                units.push(UnitSource { name: entry.clone(), path, dropins: Vec::new() });
            }
        }
        for (unit, path) in dropin_dirs {
            let dropins = self.dropins(&path, false);
            match units.iter_mut().find(|u| u.name == unit) {
                Some(u) => u.dropins = dropins,
                None if self.meant_a_misnamed_unit(&unit) => {}
                None => self.issue(path, format!("drop-in folder without its unit: there is no {dir}/{unit}")),
            }
        }
        units
    }

    /// Whether `unit` (named by a drop-in folder) is most likely a unit file already refused for
    /// its extension, such as `web.container` for `web.containr`.
    fn meant_a_misnamed_unit(&self, unit: &str) -> bool {
        crate::model::spelling::closest(unit, self.misnamed_units.iter().map(String::as_str)).is_some()
    }

    fn dropins(&mut self, dir: &str, from_host: bool) -> Vec<DropinSource> {
        let mut out = Vec::new();
        for entry in self.tree.children(dir) {
            let path = format!("{dir}/{entry}");
            if is_ignored(&entry) {
                continue;
            }
            if !entry.ends_with(".conf") || self.tree.is_dir(&path) {
                self.issue(path, "drop-ins are files ending in .conf");
            } else {
                out.push(DropinSource { name: entry, path, from_host });
            }
        }
        out
    }

    fn configs(&mut self, dir: &str) -> Vec<ConfigSource> {
        let mut out = Vec::new();
        for (rel, file) in self.tree.files_under(dir) {
            if rel.split('/').any(|part| part == ".." || part == "." || part.is_empty()) {
                self.issue(format!("{dir}/{rel}"), "config paths may not contain `..`, `.` or empty parts");
                continue;
            }
            if rel.split('/').any(is_ignored) {
                continue;
            }
            out.push(ConfigSource {
                rel: rel.to_string(),
                path: format!("{dir}/{rel}"),
                replaces: None,
                executable: file.executable,
            });
        }
        out
    }

    /// Checks the folders of `hosts/<host>/`: `files/` (for host.bu) and overlays of selected
    /// services. Other files are noted, unless their name is a slip of host.yaml or host.bu.
    fn host_overlays(&mut self, host: &str, services: &[ServiceLayout]) {
        let dir = format!("hosts/{host}");
        for entry in self.tree.children(&dir) {
            let path = format!("{dir}/{entry}");
            if is_ignored(&entry) || entry == "host.yaml" || entry == "host.bu" {
                continue;
            }
            if !self.tree.is_dir(&path) {
                self.foreign_file(path, &entry, &["host.yaml", "host.bu"]);
            } else if entry == HOST_FILES {
                if services.iter().any(|s| s.name == HOST_FILES) {
                    self.issue(path, format!("{dir}/{HOST_FILES}/ holds the local files of host.bu, so it cannot be the overlay of service `{HOST_FILES}`; rename the service"));
                }
            } else if self.follows_from_unresolved(&entry) {
                // The unknown service in host.yaml is the mistake; this overlay only follows from it.
            } else if !services.iter().any(|s| s.name == entry) {
                let hint = match spelling::closest(&entry, services.iter().map(|s| s.name.as_str())) {
                    Some(meant) => format!("did you mean `{meant}`?"),
                    None => "did you mistype the folder name?".to_string(),
                };
                self.issue(
                    path,
                    format!("overlay for service `{entry}`, which host `{host}` does not select in host.yaml; {hint}"),
                );
            }
        }
    }

    /// Whether a host folder named `name` belongs to a service host.yaml lists but that does not
    /// exist: the misspelt name itself, or the name it most likely meant.
    fn follows_from_unresolved(&self, name: &str) -> bool {
        self.unresolved.iter().any(|(listed, meant)| listed == name || meant.as_deref() == Some(name))
    }

    fn apply_overlay(&mut self, host: &str, mut service: ServiceLayout) -> ServiceLayout {
        let dir = format!("hosts/{host}/{}", service.name);
        for entry in self.tree.children(&dir) {
            let path = format!("{dir}/{entry}");
            match entry.as_str() {
                _ if is_ignored(&entry) => {}
                "quadlet" => self.overlay_dropins(&path, &mut service.quadlets),
                "systemd" => self.overlay_dropins(&path, &mut service.units),
                "config" => {
                    for replacement in self.configs(&path) {
                        match service.configs.iter_mut().find(|c| c.rel == replacement.rel) {
                            Some(existing) => {
                                let replaces = existing.path.clone();
                                *existing = ConfigSource { replaces: Some(replaces), ..replacement };
                            }
                            None => self.issue(
                                replacement.path,
                                format!(
                                    "host config file replaces nothing: services/{}/config/{} does not exist; a file for this host alone goes in hosts/{host}/host.bu as a storage.files entry (`contents.local` reads hosts/{host}/{HOST_FILES}/)",
                                    service.name, replacement.rel
                                ),
                            ),
                        }
                    }
                }
                _ if self.tree.is_dir(&path) => self.unknown_service_folder(path, &entry, "a host overlay"),
                _ => self.foreign_file(path, &entry, &[]),
            }
        }
        service
    }

    fn overlay_dropins(&mut self, dir: &str, units: &mut [UnitSource]) {
        for entry in self.tree.children(dir) {
            let path = format!("{dir}/{entry}");
            if is_ignored(&entry) {
                continue;
            }
            let Some(unit) = entry.strip_suffix(".d").filter(|_| self.tree.is_dir(&path)) else {
                self.issue(
                    path,
                    "a host overlay holds only drop-ins (<unit>.d/<name>.conf); base units belong in services/",
                );
                continue;
            };
            let dropins = self.dropins(&path, true);
            match units.iter_mut().find(|u| u.name == unit) {
                Some(u) => {
                    for d in dropins {
                        if u.dropins.iter().any(|existing| existing.name == d.name) {
                            let name = d.name.clone();
                            self.issue(
                                d.path,
                                format!(
                                    "drop-in `{name}` is also defined by the service; give the host's a different name"
                                ),
                            );
                        } else {
                            u.dropins.push(d);
                        }
                    }
                }
                None if self.meant_a_misnamed_unit(unit) => {}
                None => self.issue(path, format!("drop-in folder without its unit: the service has no {unit}")),
            }
        }
    }
}

fn has_extension(name: &str, extensions: &[&str]) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && extensions.contains(&ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> SourceTree {
        let mut t = SourceTree::default();
        for (path, text) in files {
            t.insert(path, text.as_bytes().to_vec(), false);
        }
        t
    }

    fn messages(files: &[(&str, &str)]) -> Vec<String> {
        match load(&tree(files), "h") {
            Ok(_) => Vec::new(),
            Err(issues) => issues.iter().map(ToString::to_string).collect(),
        }
    }

    const HOST: (&str, &str) = ("hosts/h/host.yaml", "host: h\nservices: [web]\n");
    const UNIT: (&str, &str) = ("services/web/quadlet/web.container", "[Container]\n");

    #[test]
    fn a_valid_layout_names_every_file() {
        let layout = load(
            &tree(&[
                HOST,
                UNIT,
                ("services/web/quadlet/web.container.d/10-a.conf", "x"),
                ("services/web/config/site/index.html", "x"),
                ("services/web/service.yaml", "config-root: www\n"),
                ("hosts/h/web/quadlet/web.container.d/20-host.conf", "x"),
                ("hosts/h/web/config/site/index.html", "host"),
                ("_notes/x", "ignored"),
                ("README.md", "ignored"),
            ]),
            "h",
        )
        .unwrap();
        let web = &layout.services[0];
        assert_eq!(web.config_root, "www");
        let dropins: Vec<(&str, bool)> =
            web.quadlets[0].dropins.iter().map(|d| (d.name.as_str(), d.from_host)).collect();
        assert_eq!(dropins, [("10-a.conf", false), ("20-host.conf", true)]);
        assert_eq!(web.configs[0].path, "hosts/h/web/config/site/index.html");
        assert_eq!(web.configs[0].replaces.as_deref(), Some("services/web/config/site/index.html"));
    }

    #[test]
    fn files_outside_the_layout_are_noted_by_path() {
        let layout = load(
            &tree(&[
                HOST,
                UNIT,
                ("services/web/NOTES.txt", "x"),
                ("Makefile", "x"),
                ("hosts/h/files/motd", "x"),
                ("services/README.md", "x"),
                ("docs/a.md", "x"),
                ("docs/b.md", "x"),
            ]),
            "h",
        )
        .unwrap();
        let notes: Vec<String> = layout.notes.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "note: Makefile: not part of the layout; ignored",
                "note: docs: not part of the layout; ignored",
                "note: services/README.md: not part of the layout; ignored",
                "note: services/web/NOTES.txt: not part of the layout; ignored",
            ]
        );
        assert_eq!(layout.host_files, "hosts/h/files");
    }

    #[test]
    fn the_files_folder_cannot_be_an_overlay() {
        let got = messages(&[
            ("hosts/h/host.yaml", "host: h\nservices: [files]\n"),
            ("services/files/quadlet/files.container", "[Container]\n"),
            ("hosts/h/files/quadlet/files.container.d/10.conf", "x"),
        ]);
        assert_eq!(
            got,
            [
                "error: hosts/h/files: hosts/h/files/ holds the local files of host.bu, so it cannot be the overlay of service `files`; rename the service"
            ]
        );
    }

    #[test]
    fn overlays_of_an_unknown_service_follow_from_it() {
        let got = messages(&[
            ("hosts/h/host.yaml", "host: h\nservices: [web, nginz]\n"),
            UNIT,
            ("services/nginx/quadlet/nginx.container", "[Container]\n"),
            ("hosts/h/nginx/config/a", "x"),
            ("hosts/h/nginz/config/a", "x"),
            ("hosts/h/other/config/a", "x"),
        ]);
        assert_eq!(
            got,
            [
                "error: hosts/h/host.yaml:2:17: unknown service `nginz`: there is no services/nginz/; did you mean `nginx`?",
                "error: hosts/h/other: overlay for service `other`, which host `h` does not select in host.yaml; did you mistype the folder name?",
            ]
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let got = messages(&[
            ("hosts/h/host.yaml", "host: h\nservices: [web, nope]\nextra: 1\n"),
            UNIT,
            ("services/web/config/../escape", "x"),
            ("services/web/confg/x", "x"),
        ]);
        let want = [
            "error: services/web/confg: unknown folder in a service folder",
            "error: hosts/h/host.yaml:3:8: unknown key `extra` in host.yaml",
            "error: hosts/h/host.yaml:2:17: unknown service `nope`",
            "error: services/web/config/../escape: config paths may not contain `..`",
        ];
        for w in want {
            assert!(got.iter().any(|g| g.starts_with(w)), "missing {w:?} in {got:#?}");
        }
    }
}
