//! What systemd must do after a plan's changes are written (docs/plan-and-apply.md, "What a change triggers"): the decision table.
//!
//! - A new unit that is enabled, or a new Quadlet with `[Install]`, is started.
//! - A changed unit (content or drop-in; compared semantically) that is active is restarted,
//!   reloaded with `X-ReloadIfChanged=true`, or left alone with `X-RestartIfChanged=false`.
//!   A changed `.socket` stops its service and restarts the socket; changed `.timer` and `.path`
//!   units are restarted.
//! - A removed unit is stopped (its files are deleted and its links removed by the plan).
//! - A changed file that a unit uses restarts that unit: `EnvironmentFile=`, a Quadlet's
//!   `Volume=`/`Mount=` host paths, anything of the same service's config, a `.network` or
//!   `.volume` the Quadlet names.
//!
//! Every action names all of its causes (a unit whose own file and a config file changed is
//! restarted once, for both). Pure: unit states come in as a function.
//!
//! The same rules answer the questions `explain` asks about one unit: which files restart it
//! ([`restarted_by`]) and which drop-ins it has ([`dropins_of`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::desired::{DesiredState, Object, QUADLET_DIR, Role};
use crate::model::path::is_below;
use crate::model::plan::{Action, Change, Detail, Observed, ObservedState, Plan};
use crate::model::unit;

/// What is done to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// Stop it (removed units; a socket's service before the socket restarts).
    Stop,
    /// Start it.
    Start,
    /// Reload it (`X-ReloadIfChanged=true`).
    Reload,
    /// Restart it.
    Restart,
}

impl Verb {
    /// The verb a name stands for.
    pub fn from_name(name: &str) -> Option<Verb> {
        [Verb::Stop, Verb::Start, Verb::Reload, Verb::Restart].into_iter().find(|v| v.name() == name)
    }

    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Reload => "reload",
            Verb::Restart => "restart",
        }
    }
}

/// One action on a unit, with its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitAction {
    /// What is done.
    pub verb: Verb,
    /// The unit.
    pub unit: String,
    /// Why, e.g. `services/caddy/config/Caddyfile changed`.
    pub cause: String,
}

/// The systemd side of an apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activation {
    /// Whether unit files changed, so systemd must reload (once, after all writes).
    pub daemon_reload: bool,
    /// Actions in execution order: stops, then starts, reloads and restarts.
    pub actions: Vec<UnitAction>,
    /// Units deliberately left alone, with the reason (`X-RestartIfChanged=false`, inactive).
    pub held: Vec<UnitAction>,
    /// Set when no systemd is asked (an offline run): why. The actions are then reported as
    /// skipped, never as done.
    pub offline: Option<String>,
}

/// The entry a skipped daemon reload is recorded as.
pub const DAEMON_RELOAD: &str = "daemon-reload";

impl Activation {
    /// What an offline run did not do, as recorded: `daemon-reload` and `verb unit`, in
    /// execution order; empty when systemd was asked.
    pub fn skipped(&self) -> Vec<String> {
        if self.offline.is_none() {
            return Vec::new();
        }
        let reload = self.daemon_reload.then(|| DAEMON_RELOAD.to_string());
        reload.into_iter().chain(self.actions.iter().map(|a| format!("{} {}", a.verb.name(), a.unit))).collect()
    }
}

/// Whether a unit is active, as far as is known (`None`: unknown, e.g. planning offline).
pub type UnitActive<'a> = &'a dyn Fn(&str) -> Option<bool>;

/// How a unit's own files changed; a modification carries every cause.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UnitChange {
    New,
    Modified(Vec<String>),
    Removed,
}

/// Decides the systemd actions for `plan`; `before` is the host as observed before writing.
pub fn decide(plan: &Plan, desired: &DesiredState, before: &ObservedState, active: UnitActive) -> Activation {
    let mut activation = Activation::default();
    let mut unit_changes: BTreeMap<String, UnitChange> = BTreeMap::new();
    let mut changed_files: Vec<&Change> = Vec::new();
    for c in plan.changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Delete)) {
        match unit_of(c, desired) {
            Some(u) => {
                activation.daemon_reload = true;
                if let Some(change) = classify(c, desired, before) {
                    merge_change(&mut unit_changes, u, change);
                    // A changed `.network`, `.volume` or `.pod` also restarts the Quadlets naming it.
                    if c.action == Action::Update && matches!(c.role, Role::Quadlet(_)) {
                        changed_files.push(c);
                    }
                }
            }
            // Enablement links change no unit's content: they restart nothing.
            None if matches!(c.role, Role::Enable(_)) => {}
            None if c.details.contains(&Detail::Content) || c.action == Action::Create => changed_files.push(c),
            None => {}
        }
    }
    let mut file_causes = file_causes(&changed_files, desired, &unit_changes);
    let started_when_new = started_when_new(desired);
    for (u, change) in &unit_changes {
        let used = file_causes.remove(u).unwrap_or_default();
        decide_unit(&mut activation, u, change, &used, desired, &started_when_new, active);
    }
    for (u, causes) in file_causes {
        push_if_active(&mut activation, Verb::Restart, &u, causes.join("; "), active);
    }
    order(&mut activation);
    activation
}

/// The units that a run starts when they are new: the enabled ones, and the Quadlets with an
/// `[Install]` section.
fn started_when_new(desired: &DesiredState) -> BTreeSet<&str> {
    let enabled = desired.units.iter().filter(|u| u.enabled == Some(true)).map(|u| u.name.as_str());
    let installed = desired.objects.values().filter_map(|o| match &o.role {
        Role::Quadlet(u) if has_install(o) => Some(u.as_str()),
        _ => None,
    });
    enabled.chain(installed).collect()
}

/// For each unit that uses one of `changed_files`, every such file's cause (`X changed`), in
/// the order of the files. A new unit starts with the new files and a removed one stops, so
/// neither is searched.
fn file_causes(
    changed_files: &[&Change],
    desired: &DesiredState,
    unit_changes: &BTreeMap<String, UnitChange>,
) -> BTreeMap<String, Vec<String>> {
    let mut causes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if changed_files.is_empty() {
        return causes;
    }
    let uses = unit_uses(desired, |u| !matches!(unit_changes.get(u), Some(UnitChange::New | UnitChange::Removed)));
    if uses.is_empty() {
        return causes;
    }
    for c in changed_files {
        for consumer in consumers(&c.path, desired, &uses) {
            add_cause(causes.entry(consumer).or_default(), format!("{} changed", c.origin.file));
        }
    }
    causes
}

/// Adds `cause` unless it is already named.
fn add_cause(causes: &mut Vec<String>, cause: String) {
    if !causes.contains(&cause) {
        causes.push(cause);
    }
}

/// The desired files whose change restarts `unit` (docs/plan-and-apply.md, "Files a unit uses": `EnvironmentFile=`, a Quadlet's
/// `Volume=`/`Mount=` host paths, its service's config, a `.network`/`.volume` it names), found
/// by the rule [`decide`] applies to changed files. Sorted by path.
pub fn restarted_by<'a>(unit: &str, desired: &'a DesiredState) -> Vec<&'a Object> {
    let uses = unit_uses(desired, |u| u == unit);
    if uses.is_empty() {
        return Vec::new();
    }
    desired
        .objects
        .values()
        .filter(|o| may_restart_others(o, desired))
        .filter(|o| consumers(&o.path, desired, &uses).contains(unit))
        .collect()
}

/// Whether a change of `o` is one that restarts the units using it: a plain file (not a
/// drop-in or an enablement link), or a Quadlet other units name.
fn may_restart_others(o: &Object, desired: &DesiredState) -> bool {
    match &o.role {
        Role::Plain => quadlet_dropin_service(&o.path, desired).is_none(),
        Role::Quadlet(_) => true,
        _ => false,
    }
}

/// The drop-ins of `unit`: systemd drop-ins and, for a Quadlet's service, the Quadlet's.
/// Sorted by path.
pub fn dropins_of<'a>(unit: &str, desired: &'a DesiredState) -> Vec<&'a Object> {
    desired
        .objects
        .values()
        .filter(|o| match &o.role {
            Role::Dropin(u) => u == unit,
            Role::Plain => quadlet_dropin_service(&o.path, desired).as_deref() == Some(unit),
            _ => false,
        })
        .collect()
}

/// Adds what an earlier offline run recorded as not done (`skipped`, see
/// [`Activation::skipped`]) and nothing acts on now: a systemd that is asked now does it. A
/// start, reload or restart is redone only for a unit that is still desired; a stop always.
pub fn retry_skipped(activation: &mut Activation, skipped: &[String], desired: &DesiredState) {
    for entry in skipped {
        if entry == DAEMON_RELOAD {
            activation.daemon_reload = true;
            continue;
        }
        let Some((verb, unit)) = entry.split_once(' ').and_then(|(v, u)| Some((Verb::from_name(v)?, u))) else {
            continue;
        };
        if (verb == Verb::Stop || is_desired_unit(unit, desired)) && !activation.actions.iter().any(|a| a.unit == unit)
        {
            let cause = "not done by an earlier offline run".to_string();
            activation.actions.push(UnitAction { verb, unit: unit.to_string(), cause });
        }
    }
    order(activation);
}

fn is_desired_unit(unit: &str, desired: &DesiredState) -> bool {
    desired.objects.values().any(|o| match &o.role {
        Role::UnitFile(n) | Role::Quadlet(n) => n == unit,
        _ => false,
    })
}

/// Adds a restart for each unit that did not come up in the previous run on this revision and
/// that nothing else acts on now, so a failing unit is retried (and, if it fails again, reported
/// as not converging) rather than forgotten once its files are in place.
pub fn retry_failed(activation: &mut Activation, failed: &[String], desired: &DesiredState) {
    for unit in failed {
        if is_desired_unit(unit, desired) && !activation.actions.iter().any(|a| &a.unit == unit) {
            activation.actions.push(UnitAction {
                verb: Verb::Restart,
                unit: unit.clone(),
                cause: "did not come up in the previous run".into(),
            });
        }
    }
    order(activation);
}

/// The unit a changed object belongs to: a unit file, drop-in or mask, or the service of a
/// Quadlet (or of a Quadlet drop-in).
fn unit_of(c: &Change, desired: &DesiredState) -> Option<String> {
    match &c.role {
        Role::UnitFile(u) | Role::Dropin(u) | Role::Mask(u) | Role::Quadlet(u) => Some(u.clone()),
        Role::Enable(_) => None,
        Role::Plain => quadlet_dropin_service(&c.path, desired).or_else(|| removed_unit(c)),
    }
}

/// `/etc/containers/systemd/web.container.d/10.conf` → the service of `web.container`.
fn quadlet_dropin_service(path: &str, desired: &DesiredState) -> Option<String> {
    let rest = path.strip_prefix(QUADLET_DIR)?.strip_prefix('/')?;
    let (dir, _) = rest.split_once(".d/")?;
    let quadlet = desired.objects.get(&format!("{QUADLET_DIR}/{dir}"));
    let text = quadlet.and_then(Object::known_bytes).map(|b| String::from_utf8_lossy(&b).into_owned());
    unit::quadlet_service_name(dir.rsplit('/').next()?, text.as_deref())
}

/// A deleted (stale) unit file or Quadlet, named by its path.
fn removed_unit(c: &Change) -> Option<String> {
    if c.action != Action::Delete {
        return None;
    }
    let name = c.path.rsplit('/').next()?;
    if is_below(&c.path, QUADLET_DIR) && unit::is_quadlet_name(name) {
        return unit::quadlet_service_name(name, None);
    }
    c.path.strip_prefix("/etc/systemd/system/").filter(|n| !n.contains('/')).map(str::to_string)
}

fn classify(c: &Change, desired: &DesiredState, before: &ObservedState) -> Option<UnitChange> {
    let is_main = matches!(c.role, Role::UnitFile(_) | Role::Quadlet(_))
        || (c.action == Action::Delete && c.role == Role::Plain && !c.path.contains(".d/"));
    match c.action {
        Action::Create if is_main => Some(UnitChange::New),
        Action::Delete if is_main => Some(UnitChange::Removed),
        Action::Update if !c.details.contains(&Detail::Content) => None,
        Action::Update => {
            let old = match before.nodes.get(&c.path) {
                Some(Observed::File { bytes: Some(b), .. }) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            };
            let new = desired
                .objects
                .get(&c.path)
                .and_then(Object::known_bytes)
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            match (old, new) {
                (Some(o), Some(n)) if unit::semantically_equal(&o, &n) => None,
                _ => Some(UnitChange::Modified(vec![format!("{} changed", c.origin.file)])),
            }
        }
        _ => Some(UnitChange::Modified(vec![format!(
            "{} {}",
            c.origin.file,
            if c.action == Action::Delete { "removed" } else { "added" }
        )])),
    }
}

fn merge_change(changes: &mut BTreeMap<String, UnitChange>, unit: String, change: UnitChange) {
    match (changes.get_mut(&unit), change) {
        (Some(UnitChange::New | UnitChange::Removed), _) => {}
        (Some(UnitChange::Modified(prev)), UnitChange::Modified(causes)) => {
            for cause in causes {
                add_cause(prev, cause);
            }
        }
        (_, change) => {
            changes.insert(unit, change);
        }
    }
}

/// The `[X-…]`-style switches of a unit: `X-RestartIfChanged=` and `X-ReloadIfChanged=` in any
/// section of the unit file or its drop-ins.
fn switches(u: &str, desired: &DesiredState) -> (bool, bool) {
    let (mut restart, mut reload) = (true, false);
    let texts = desired.objects.values().filter(|o| match &o.role {
        Role::UnitFile(n) | Role::Dropin(n) | Role::Quadlet(n) => n == u,
        _ => false,
    });
    for o in texts {
        let Some(bytes) = o.known_bytes() else { continue };
        let Ok(parsed) = unit::parse(&String::from_utf8_lossy(&bytes)) else { continue };
        for opt in &parsed.options {
            let on = matches!(opt.value.as_str(), "1" | "yes" | "true" | "on");
            match opt.name.as_str() {
                "X-RestartIfChanged" => restart = on,
                "X-ReloadIfChanged" => reload = on,
                _ => {}
            }
        }
    }
    (restart, reload)
}

/// The actions for unit `u` whose own files changed as `change`; `used` names the changed
/// files it uses, which restart it whatever its switches say (a reload does not reread a
/// replaced bind-mounted file).
fn decide_unit(
    a: &mut Activation,
    u: &str,
    change: &UnitChange,
    used: &[String],
    desired: &DesiredState,
    started_when_new: &BTreeSet<&str>,
    active: UnitActive,
) {
    match change {
        UnitChange::New => {
            if started_when_new.contains(u) {
                a.actions.push(UnitAction { verb: Verb::Start, unit: u.to_string(), cause: "new unit".into() });
            }
        }
        UnitChange::Removed => push_if_active(a, Verb::Stop, u, "removed from the source".into(), active),
        UnitChange::Modified(causes) => {
            let mut all = causes.clone();
            used.iter().for_each(|cause| add_cause(&mut all, cause.clone()));
            let cause = all.join("; ");
            let (restart, reload) = switches(u, desired);
            if u.ends_with(".socket") {
                let service = socket_service(u, desired);
                push_if_active(a, Verb::Stop, &service, format!("its socket {u} changed"), active);
                push_if_active(a, Verb::Restart, u, cause, active);
            } else if !used.is_empty() {
                push_if_active(a, Verb::Restart, u, cause, active);
            } else if reload {
                push_if_active(a, Verb::Reload, u, format!("{cause} (X-ReloadIfChanged=true)"), active);
            } else if !restart {
                a.held.push(UnitAction {
                    verb: Verb::Restart,
                    unit: u.to_string(),
                    cause: format!("{cause}; not restarted: X-RestartIfChanged=false"),
                });
            } else {
                push_if_active(a, Verb::Restart, u, cause, active);
            }
        }
    }
}

fn has_install(o: &Object) -> bool {
    o.known_bytes()
        .and_then(|b| unit::parse(&String::from_utf8_lossy(&b)).ok())
        .is_some_and(|u| u.has_install_options())
}

/// The service a socket activates: `Service=` in `[Socket]`, else the same name.
fn socket_service(socket: &str, desired: &DesiredState) -> String {
    let path = format!("/etc/systemd/system/{socket}");
    let configured = desired
        .objects
        .get(&path)
        .and_then(Object::known_bytes)
        .and_then(|b| unit::parse(&String::from_utf8_lossy(&b)).ok())
        .and_then(|u| u.values("Socket", "Service").last().map(str::to_string));
    configured.unwrap_or_else(|| format!("{}.service", socket.trim_end_matches(".socket")))
}

/// Active units get the action; inactive ones are held; unknown ones get it too (systemd's
/// `try-restart` semantics are applied when executing).
fn push_if_active(a: &mut Activation, verb: Verb, unit: &str, cause: String, active: UnitActive) {
    let action = UnitAction { verb, unit: unit.to_string(), cause };
    if active(unit) == Some(false) {
        a.held.push(UnitAction { cause: format!("{}; {unit} is not active", action.cause), ..action });
    } else {
        a.actions.push(action);
    }
}

/// A unit, Quadlet or drop-in, parsed once per decision, as a possible user of changed files.
struct UnitUse<'a> {
    /// The unit it belongs to.
    unit: &'a str,
    /// Its host path.
    path: &'a str,
    /// The service folder it comes from, for source repositories.
    folder: Option<&'a str>,
    /// Whether it runs the service's workload.
    workload: bool,
    /// Its parsed content, when known and valid.
    parsed: Option<unit::UnitFile>,
}

/// The units, Quadlets and drop-ins of the units `wanted` accepts.
fn unit_uses(desired: &DesiredState, wanted: impl Fn(&str) -> bool) -> Vec<UnitUse<'_>> {
    desired
        .objects
        .values()
        .filter_map(|o| {
            let unit = match &o.role {
                Role::UnitFile(n) | Role::Dropin(n) | Role::Quadlet(n) if wanted(n) => n.as_str(),
                _ => return None,
            };
            let parsed = o.known_bytes().and_then(|b| unit::parse(&String::from_utf8_lossy(&b)).ok());
            let folder = service_folder(&o.origin.file);
            Some(UnitUse { unit, path: &o.path, folder, workload: runs_workload(o), parsed })
        })
        .collect()
}

/// The units that use the file at `path`: the workload units of the same service, and any unit
/// that names it.
fn consumers(path: &str, desired: &DesiredState, uses: &[UnitUse]) -> BTreeSet<String> {
    let changed_service = desired.objects.get(path).and_then(|o| service_folder(&o.origin.file));
    uses.iter()
        .filter(|u| {
            let same_service = changed_service.is_some() && u.folder == changed_service && u.workload;
            u.path != path && (same_service || u.parsed.as_ref().is_some_and(|p| references(p, path)))
        })
        .map(|u| u.unit.to_string())
        .collect()
}

/// Whether an object is a unit that runs the service's workload (a `.service` unit, or a
/// `.container`, `.kube` or `.pod` Quadlet) rather than a one-shot that makes a Podman
/// network, volume or image, which a changed config file does not concern.
fn runs_workload(o: &Object) -> bool {
    let name = o.path.rsplit('/').next().unwrap_or("");
    match &o.role {
        Role::Quadlet(_) => name.ends_with(".container") || name.ends_with(".kube") || name.ends_with(".pod"),
        Role::UnitFile(u) => u.ends_with(".service"),
        _ => false,
    }
}

/// `services/<svc>/…` or `hosts/<host>/<svc>/…` → the service folder.
fn service_folder(origin: &str) -> Option<&str> {
    let mut parts = origin.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("services"), Some(svc), Some(_), _) => Some(svc),
        (Some("hosts"), Some(_), Some(svc), Some("quadlet" | "systemd" | "config")) => Some(svc),
        _ => None,
    }
}

/// Whether a unit or Quadlet names `path`: `EnvironmentFile=`, a `Volume=`/`Mount=` host path
/// (the file or a directory above it), or (for `.network`/`.volume` Quadlets) its file name.
fn references(unit: &unit::UnitFile, path: &str) -> bool {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    unit.options.iter().any(|o| match o.name.as_str() {
        "EnvironmentFile" => o.value.split_whitespace().any(|v| v.trim_start_matches('-') == path),
        "Volume" => {
            let host = o.value.split(':').next().unwrap_or("");
            host == file_name || (host.starts_with('/') && (host == path || is_below(path, host.trim_end_matches('/'))))
        }
        "Mount" => o.value.split(',').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            matches!(k, "source" | "src") && (v == path || is_below(path, v.trim_end_matches('/')))
        }),
        "Network" | "Pod" => o.value == file_name,
        _ => false,
    })
}

/// Stops first, then starts, reloads and restarts; one action per unit and verb.
fn order(a: &mut Activation) {
    let mut seen = BTreeSet::new();
    a.actions.retain(|x| seen.insert((x.verb, x.unit.clone())));
    a.actions.sort_by_key(|x| (x.verb != Verb::Stop, x.unit.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::butane::render;
    use crate::model::desired::from_config;
    use crate::model::plan::{PlanOptions, plan, sha256};

    #[test]
    fn a_unit_names_the_files_of_the_directories_it_mounts_and_only_those() {
        let unit = unit::parse(
            "[Container]\nVolume=/etc/app:/app\nVolume=/srv/web/:/web:ro\nVolume=cache.volume:/cache\n\
             Mount=type=bind,source=/srv/data,target=/data\nEnvironmentFile=-/etc/app.env\n",
        )
        .unwrap();
        let named = |path: &str| references(&unit, path);
        for path in ["/etc/app", "/etc/app/conf.d/a.conf", "/srv/web/index.html", "/srv/data", "/srv/data/x/y"] {
            assert!(named(path), "{path}");
        }
        assert!(named("/etc/containers/systemd/cache.volume"), "a named volume, by its file");
        assert!(named("/etc/app.env"));
        for path in ["/etc/apple", "/etc/ap", "/srv/webs/a", "/srv/database", "/srv", "/etc/app.env.d/x"] {
            assert!(!named(path), "{path}");
        }
    }

    #[test]
    fn the_service_folder_is_read_from_a_repository_path() {
        assert_eq!(service_folder("services/web/config/site.conf"), Some("web"));
        assert_eq!(service_folder("services/web/quadlet/web.container"), Some("web"));
        assert_eq!(service_folder("hosts/h1/web/config/site.conf"), Some("web"));
        assert_eq!(service_folder("hosts/h1/web/systemd/web.service"), Some("web"));
        assert_eq!(service_folder("hosts/h1/web/other/x"), None);
        assert_eq!(service_folder("hosts/h1/host.yaml"), None);
        assert_eq!(service_folder("services/web"), None);
        assert_eq!(service_folder("c.bu"), None);
    }
    use crate::model::source::compose::Origin;

    fn desired(src: &str) -> DesiredState {
        let rendered = render(src, None).unwrap();
        from_config(&rendered.config, &BTreeMap::new(), &Origin { file: "c.bu".into(), path: None })
    }

    /// Plans `new` against a host that holds exactly `old` (owned), and decides with every unit
    /// active.
    fn decide_change(old: &str, new: &str) -> Activation {
        decide_change_with(old, new, &|_| Some(true))
    }

    fn decide_change_with(old: &str, new: &str, active: UnitActive) -> Activation {
        decide_between(&desired(old), &desired(new), active)
    }

    /// Plans `after` against a host that holds exactly the files of `before_state` (owned).
    fn decide_between(before_state: &DesiredState, after: &DesiredState, active: UnitActive) -> Activation {
        let mut observed = ObservedState::default();
        for o in before_state.objects.values() {
            let bytes = o.known_bytes().map(|b| b.into_owned()).unwrap_or_default();
            observed.nodes.insert(
                o.path.clone(),
                Observed::File {
                    sha256: sha256(&bytes),
                    bytes: Some(bytes),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    inode: (0, 0),
                    stamp: String::new(),
                },
            );
        }
        let owned = before_state
            .objects
            .values()
            .map(|o| (o.path.clone(), crate::model::state::ObjectRecord::of(o, Some(0), Some(0)).owned()))
            .collect();
        let p = plan(after, &observed, &owned, PlanOptions::default());
        decide(&p, after, &observed, active)
    }

    fn summary(a: &Activation) -> Vec<String> {
        a.actions.iter().map(|x| format!("{} {}", x.verb.name(), x.unit)).collect()
    }

    const HEAD: &str = "variant: fcos\nversion: 1.6.0\n";

    fn units(body: &str) -> String {
        format!("{HEAD}systemd:\n  units:\n{body}")
    }

    #[test]
    fn decision_table() {
        let svc = |name: &str, extra: &str| {
            format!(
                "    - name: {name}\n      enabled: true\n      contents: \"[Service]\\nExecStart=/bin/app{extra}\\n\\n[Install]\\nWantedBy=multi-user.target\\n\"\n"
            )
        };
        let cases: Vec<(&str, String, String, Vec<&str>)> = vec![
            ("new enabled unit starts", HEAD.to_string(), units(&svc("a.service", "")), vec!["start a.service"]),
            (
                "content change restarts",
                units(&svc("a.service", "")),
                units(&svc("a.service", " --v2")),
                vec!["restart a.service"],
            ),
            (
                "comment-only change restarts nothing",
                units(&svc("a.service", "")),
                units(&svc("a.service", "").replace("[Service]", "# note\\n[Service]")),
                vec![],
            ),
            (
                "X-ReloadIfChanged reloads",
                units(&svc("a.service", "\\nX-ReloadIfChanged=true")),
                units(&svc("a.service", " -v\\nX-ReloadIfChanged=true")),
                vec!["reload a.service"],
            ),
            (
                "X-RestartIfChanged=false holds",
                units(&svc("a.service", "\\nX-RestartIfChanged=false")),
                units(&svc("a.service", " -v\\nX-RestartIfChanged=false")),
                vec![],
            ),
            ("removed unit stops", units(&svc("a.service", "")), HEAD.to_string(), vec!["stop a.service"]),
            (
                "timer change restarts the timer",
                units("    - name: t.timer\n      contents: \"[Timer]\\nOnCalendar=daily\\n\"\n"),
                units("    - name: t.timer\n      contents: \"[Timer]\\nOnCalendar=hourly\\n\"\n"),
                vec!["restart t.timer"],
            ),
            (
                "socket change stops its service and restarts the socket",
                units("    - name: s.socket\n      contents: \"[Socket]\\nListenStream=1\\n\"\n"),
                units("    - name: s.socket\n      contents: \"[Socket]\\nListenStream=2\\n\"\n"),
                vec!["stop s.service", "restart s.socket"],
            ),
        ];
        for (label, old, new, want) in cases {
            let a = decide_change(&old, &new);
            assert_eq!(summary(&a), want, "case {label}: {a:#?}");
        }
    }

    fn files(entries: &[(&str, &str)]) -> String {
        let mut s = format!("{HEAD}storage:\n  files:\n");
        for (path, body) in entries {
            s.push_str(&format!("    - path: {path}\n      contents: {{inline: \"{body}\"}}\n"));
        }
        s
    }

    #[test]
    fn decision_table_quadlets_drop_ins_and_paths() {
        const Q: &str = "/etc/containers/systemd";
        let web = |extra: &str| format!("[Container]\\nImage=x\\nNetwork=app.network{extra}");
        let install = "\\n[Install]\\nWantedBy=multi-user.target";
        let unit = |name: &str, body: &str| format!("    - name: {name}\n      contents: \"{body}\"\n");
        let dropin = |body: &str| {
            format!(
                "    - name: a.service\n      contents: \"[Service]\\nExecStart=/bin/a\\n\"\n      dropins:\n        - name: 10-x.conf\n          contents: \"{body}\"\n"
            )
        };
        let cases: Vec<(&str, String, String, Vec<&str>)> = vec![
            (
                "new Quadlet with [Install] starts its service",
                HEAD.to_string(),
                files(&[(&format!("{Q}/web.container"), &web(install))]),
                vec!["start web.service"],
            ),
            (
                "new Quadlet without [Install] is left to its dependants",
                HEAD.to_string(),
                files(&[(&format!("{Q}/web.container"), &web(""))]),
                vec![],
            ),
            (
                "new unit that is not enabled is not started",
                HEAD.to_string(),
                units(&unit("a.service", "[Service]\\nExecStart=/bin/a")),
                vec![],
            ),
            (
                "drop-in change restarts its unit",
                units(&dropin("[Service]\\nNice=1")),
                units(&dropin("[Service]\\nNice=2")),
                vec!["restart a.service"],
            ),
            (
                "path unit change restarts it",
                units(&unit("p.path", "[Path]\\nPathExists=/a")),
                units(&unit("p.path", "[Path]\\nPathExists=/b")),
                vec!["restart p.path"],
            ),
            (
                "a changed .network restarts the containers that name it",
                files(&[
                    (&format!("{Q}/web.container"), &web("")),
                    (&format!("{Q}/app.network"), "[Network]\\nSubnet=10.1.0.0/24"),
                ]),
                files(&[
                    (&format!("{Q}/web.container"), &web("")),
                    (&format!("{Q}/app.network"), "[Network]\\nSubnet=10.2.0.0/24"),
                ]),
                vec!["restart app-network.service", "restart web.service"],
            ),
            (
                "a comment in a .network restarts nothing",
                files(&[
                    (&format!("{Q}/web.container"), &web("")),
                    (&format!("{Q}/app.network"), "[Network]\\nSubnet=10.1.0.0/24"),
                ]),
                files(&[
                    (&format!("{Q}/web.container"), &web("")),
                    (&format!("{Q}/app.network"), "# lab\\n[Network]\\nSubnet=10.1.0.0/24"),
                ]),
                vec![],
            ),
        ];
        for (label, old, new, want) in cases {
            let a = decide_change(&old, &new);
            assert_eq!(summary(&a), want, "case {label}: {a:#?}");
        }
    }

    #[test]
    fn environment_files_and_quadlet_volumes_restart_their_consumers() {
        let cfg = |env: &str, caddyfile: &str| {
            format!(
                "{HEAD}storage:\n  files:\n    - path: /etc/app/env\n      contents: {{inline: \"{env}\"}}\n    - path: /etc/caddy/Caddyfile\n      contents: {{inline: \"{caddyfile}\"}}\n    - path: /etc/containers/systemd/caddy.container\n      contents: {{inline: \"[Container]\\nImage=caddy\\nVolume=/etc/caddy/Caddyfile:/etc/caddy/Caddyfile:ro\\n\"}}\nsystemd:\n  units:\n    - name: app.service\n      contents: \"[Service]\\nEnvironmentFile=-/etc/app/env\\nExecStart=/bin/app\\n\"\n"
            )
        };
        let a = decide_change(&cfg("A=1", "x"), &cfg("A=2", "x"));
        assert_eq!(summary(&a), ["restart app.service"]);
        assert_eq!(a.actions[0].cause, "c.bu changed");
        let a = decide_change(&cfg("A=1", "x"), &cfg("A=1", "y"));
        assert_eq!(summary(&a), ["restart caddy.service"]);
        assert!(!a.daemon_reload, "no unit file changed");
    }

    #[test]
    fn inactive_units_are_held_not_restarted() {
        let old = units("    - name: a.service\n      contents: \"[Service]\\nExecStart=/bin/a\\n\"\n");
        let new = units("    - name: a.service\n      contents: \"[Service]\\nExecStart=/bin/b\\n\"\n");
        let a = decide_change_with(&old, &new, &|_| Some(false));
        assert!(a.actions.is_empty());
        assert!(a.held[0].cause.contains("is not active"));
        assert!(a.daemon_reload);
    }

    #[test]
    fn previous_failures_are_retried_unless_gone_or_already_acted_on() {
        let d = desired(&units(
            "    - name: a.service\n      contents: \"[Service]\\nExecStart=/bin/a\\n\"\n    - name: b.service\n      contents: \"[Service]\\nExecStart=/bin/b\\n\"\n",
        ));
        let mut a = Activation::default();
        a.actions.push(UnitAction { verb: Verb::Start, unit: "b.service".into(), cause: "new unit".into() });
        retry_failed(&mut a, &["a.service".into(), "b.service".into(), "gone.service".into()], &d);
        assert_eq!(summary(&a), vec!["restart a.service", "start b.service"]);
        assert_eq!(a.actions[0].cause, "did not come up in the previous run");
    }

    /// Declares every object and unit of `d` in service folder `svc` of a source repository, as
    /// `services/<svc>/<kind>/<file name>`.
    fn in_service(mut d: DesiredState, svc: &str) -> DesiredState {
        for o in d.objects.values_mut() {
            let kind = if o.path.starts_with("/etc/systemd/") { "systemd" } else { "config" };
            o.origin.file = format!("services/{svc}/{kind}/{}", o.path.rsplit('/').next().unwrap());
        }
        for u in &mut d.units {
            u.origin.file = format!("services/{svc}/systemd/{}", u.name);
        }
        d
    }

    const APP: &str = "    - name: app.service\n      contents: \"[Service]\\nEnvironmentFile=/etc/app/env\\nExecStart=/bin/app\\n\"\n";

    fn app_with(unit_extra: &str, conf: &str, env: &str) -> DesiredState {
        let unit = APP.replace("/bin/app", &format!("/bin/app{unit_extra}"));
        let files = format!(
            "storage:\n  files:\n    - path: /etc/app/app.conf\n      contents: {{inline: \"{conf}\"}}\n    - path: /etc/app/env\n      contents: {{inline: \"{env}\"}}\n"
        );
        in_service(desired(&format!("{HEAD}{files}systemd:\n  units:\n{unit}")), "app")
    }

    #[test]
    fn a_restart_names_every_cause_once() {
        let both_files = decide_between(&app_with("", "a", "A=1"), &app_with("", "b", "A=2"), &|_| Some(true));
        assert_eq!(summary(&both_files), ["restart app.service"]);
        assert_eq!(
            both_files.actions[0].cause,
            "services/app/config/app.conf changed; services/app/config/env changed"
        );
        let unit_and_file = decide_between(&app_with("", "a", "A=1"), &app_with(" -v", "a", "A=2"), &|_| Some(true));
        assert_eq!(summary(&unit_and_file), ["restart app.service"]);
        assert_eq!(
            unit_and_file.actions[0].cause, "services/app/systemd/app.service changed; services/app/config/env changed",
            "the unit's own change first, then the files it uses"
        );
        // Two changed entries of one Butane file: one cause, named once.
        let a = decide_change(
            &format!(
                "{HEAD}storage:\n  files:\n    - path: /etc/app/env\n      contents: {{inline: \"A=1\"}}\nsystemd:\n  units:\n{APP}"
            ),
            &format!(
                "{HEAD}storage:\n  files:\n    - path: /etc/app/env\n      contents: {{inline: \"A=2\"}}\nsystemd:\n  units:\n{}",
                APP.replace("/bin/app", "/bin/app -v")
            ),
        );
        assert_eq!(
            (summary(&a), a.actions[0].cause.as_str()),
            (vec!["restart app.service".to_string()], "c.bu changed")
        );
    }

    #[test]
    fn a_file_restart_overrides_a_reload_and_names_both_causes() {
        let reloading = |extra: &str| {
            let unit = APP.replace("/bin/app", &format!("/bin/app{extra}\\nX-ReloadIfChanged=true"));
            in_service(
                desired(&format!(
                    "{HEAD}storage:\n  files:\n    - path: /etc/app/env\n      contents: {{inline: \"{}\"}}\nsystemd:\n  units:\n{unit}",
                    if extra.is_empty() { "A=1" } else { "A=2" }
                )),
                "app",
            )
        };
        let a = decide_between(&reloading(""), &reloading(" -v"), &|_| Some(true));
        assert_eq!(summary(&a), ["restart app.service"], "a replaced file needs a restart, not a reload");
        assert_eq!(a.actions[0].cause, "services/app/systemd/app.service changed; services/app/config/env changed");
    }

    #[test]
    fn enablement_links_restart_nothing() {
        let timer = "    - name: t.timer\n      enabled: true\n      contents: \"[Timer]\\nOnCalendar=daily\\n[Install]\\nWantedBy=timers.target\\n\"\n";
        let before = in_service(desired(&units(APP)), "app");
        let mut after = in_service(desired(&units(&format!("{APP}{timer}"))), "app");
        crate::model::desired::add_enablement(&mut after, &|_| None);
        assert!(after.objects.values().any(|o| matches!(o.role, Role::Enable(_))), "a link to create");
        let a = decide_between(&before, &after, &|_| Some(true));
        assert_eq!(summary(&a), ["start t.timer"], "the new link does not restart app.service: {a:#?}");
    }

    #[test]
    fn explain_finds_a_units_drop_ins_and_the_files_that_restart_it() {
        let d = desired(&format!(
            "{HEAD}storage:\n  files:\n    - path: /etc/app/env\n      contents: {{inline: \"A=1\"}}\n    - path: /etc/other\n      contents: {{inline: \"x\"}}\n    - path: /etc/containers/systemd/web.container\n      contents: {{inline: \"[Container]\\nImage=x\\nNetwork=app.network\\n\"}}\n    - path: /etc/containers/systemd/web.container.d/10.conf\n      contents: {{inline: \"[Container]\\nEnvironment=A=1\\n\"}}\n    - path: /etc/containers/systemd/app.network\n      contents: {{inline: \"[Network]\\n\"}}\nsystemd:\n  units:\n{}",
            APP.replace(
                "\"\n",
                "\"\n      dropins:\n        - name: 10-nice.conf\n          contents: \"[Service]\\nNice=1\\n\"\n"
            )
        ));
        let paths = |objects: Vec<&Object>| objects.iter().map(|o| o.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(restarted_by("app.service", &d)), ["/etc/app/env"]);
        assert_eq!(paths(dropins_of("app.service", &d)), ["/etc/systemd/system/app.service.d/10-nice.conf"]);
        assert_eq!(paths(restarted_by("web.service", &d)), ["/etc/containers/systemd/app.network"]);
        assert_eq!(paths(dropins_of("web.service", &d)), ["/etc/containers/systemd/web.container.d/10.conf"]);
        assert!(restarted_by("nothing.service", &d).is_empty());
    }

    #[test]
    fn what_an_offline_run_skipped_is_done_by_the_next_run_that_asks_systemd() {
        let d = desired(&units(APP));
        let mut a = Activation::default();
        a.actions.push(UnitAction { verb: Verb::Restart, unit: "app.service".into(), cause: "c.bu changed".into() });
        let skipped = ["daemon-reload", "start app.service", "start gone.service", "stop old.service", "bogus"];
        retry_skipped(&mut a, &skipped.map(String::from), &d);
        assert!(a.daemon_reload);
        assert_eq!(summary(&a), ["stop old.service", "restart app.service"], "app.service is acted on already");
        assert_eq!(a.actions[0].cause, "not done by an earlier offline run");

        let offline = Activation { offline: Some("--offline was given".into()), ..a.clone() };
        assert_eq!(offline.skipped(), ["daemon-reload", "stop old.service", "restart app.service"]);
        assert!(a.skipped().is_empty(), "nothing is skipped when systemd is asked");
    }
}
