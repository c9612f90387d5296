//! The layout rules of a source repository: which entries may stand where, `host.yaml` and
//! `service.yaml`, drop-ins and host overlays. Produces a [`HostLayout`] that names every file
//! the host uses, or every mistake found (all of them, not just the first).

use crate::model::report::Mark;
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, is_identifier, is_ignored};
use crate::model::yaml::{self, Node, Value};

/// Quadlet file extensions (`services/<svc>/quadlet/`).
pub const QUADLET_EXTENSIONS: &[&str] = &["container", "volume", "network", "pod", "kube", "image", "build"];
/// systemd unit extensions (`services/<svc>/systemd/`).
pub const UNIT_EXTENSIONS: &[&str] = &["service", "socket", "timer", "target", "path", "mount", "automount"];
const TOP_LEVEL: &[&str] = &["hosts", "services", "butane"];

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
    let mut cx = Cx { tree, issues: Vec::new() };
    cx.top_level();
    let layout = cx.host(host);
    match layout {
        Some(layout) if cx.issues.is_empty() => Ok(layout),
        _ => Err(cx.issues),
    }
}

struct Cx<'a> {
    tree: &'a SourceTree,
    issues: Vec<SourceIssue>,
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

    fn top_level(&mut self) {
        for name in self.tree.children("") {
            if is_ignored(&name) || TOP_LEVEL.contains(&name.as_str()) || name == "README.md" {
                continue;
            }
            self.issue(name.clone(), format!("unknown top-level entry `{name}`; a source repository holds hosts/, services/ and butane/ (prefix a name with `_` to keep it ignored)"));
        }
    }

    fn host(&mut self, host: &str) -> Option<HostLayout> {
        let dir = format!("hosts/{host}");
        if !is_identifier(host) {
            self.issue(dir, format!("`{host}` is not a valid host name: use letters, digits, `.`, `_` and `-`, starting with a letter or digit"));
            return None;
        }
        if !self.tree.is_dir(&dir) {
            let known = hosts(self.tree);
            let hint = if known.is_empty() {
                "the repository has no hosts".to_string()
            } else {
                format!("known hosts: {}", known.join(", "))
            };
            self.issue("hosts", format!("no host `{host}` in hosts/ ({hint})"));
            return None;
        }
        let host_yaml = format!("{dir}/host.yaml");
        let parsed = self.host_yaml(host, &host_yaml)?;
        let services: Vec<ServiceLayout> = self.selected_services(&host_yaml, &parsed.services);
        let fragments = self.fragments(&host_yaml, &parsed.butane);
        let host_butane = self.tree.get(&format!("{dir}/host.bu")).map(|_| format!("{dir}/host.bu"));
        self.host_overlays(host, &services);
        let services = services.into_iter().map(|s| self.apply_overlay(host, s)).collect();
        Some(HostLayout { host: host.to_string(), fragments, services, host_butane })
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
                let known = self
                    .tree
                    .children("services")
                    .into_iter()
                    .filter(|s| !is_ignored(s))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.issue_at(
                    host_yaml,
                    *mark,
                    format!("unknown service `{name}`: there is no services/{name}/ (known services: {known})"),
                );
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
                self.issue_at(host_yaml, *mark, format!("unknown Butane fragment `{name}`: there is no {path}"));
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
                _ => self.issue(
                    path,
                    "unknown entry in a service folder; expected service.yaml, quadlet/, systemd/ or config/",
                ),
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
            } else {
                units.push(UnitSource { name: entry.clone(), path, dropins: Vec::new() });
            }
        }
        for (unit, path) in dropin_dirs {
            let dropins = self.dropins(&path, false);
            match units.iter_mut().find(|u| u.name == unit) {
                Some(u) => u.dropins = dropins,
                None => self.issue(path, format!("drop-in folder without its unit: there is no {dir}/{unit}")),
            }
        }
        units
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

    /// Checks `hosts/<host>/` holds only host.yaml, host.bu and overlays of selected services.
    fn host_overlays(&mut self, host: &str, services: &[ServiceLayout]) {
        let dir = format!("hosts/{host}");
        for entry in self.tree.children(&dir) {
            let path = format!("{dir}/{entry}");
            if is_ignored(&entry) || entry == "host.yaml" || entry == "host.bu" {
                continue;
            }
            if !self.tree.is_dir(&path) {
                self.issue(path, "unknown entry in a host folder; expected host.yaml, host.bu or <service>/ overlays");
            } else if !services.iter().any(|s| s.name == entry) {
                self.issue(path, format!("overlay for service `{entry}`, which host `{host}` does not select in host.yaml; did you mistype the folder name?"));
            }
        }
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
                                    "host config file replaces nothing: services/{}/config/{} does not exist",
                                    service.name, replacement.rel
                                ),
                            ),
                        }
                    }
                }
                _ => self.issue(path, "unknown entry in a host overlay; expected quadlet/, systemd/ or config/"),
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
    fn every_mistake_is_reported_at_once() {
        let got = messages(&[
            ("hosts/h/host.yaml", "host: h\nservices: [web, nope]\nextra: 1\n"),
            UNIT,
            ("services/web/config/../escape", "x"),
            ("stray.txt", "x"),
        ]);
        let want = [
            "error: stray.txt: unknown top-level entry `stray.txt`",
            "error: hosts/h/host.yaml:3:8: unknown key `extra` in host.yaml",
            "error: hosts/h/host.yaml:2:17: unknown service `nope`",
            "error: services/web/config/../escape: config paths may not contain `..`",
        ];
        for w in want {
            assert!(got.iter().any(|g| g.starts_with(w)), "missing {w:?} in {got:#?}");
        }
    }
}
