//! The units a change brings, checked before a host sees them:
//! - a changed timer or path unit must trigger a unit that exists, in the desired state or
//!   installed on the root ([`triggers`]); systemd would refuse to start it, and
//!   `systemd-analyze verify` does not say so;
//! - where `systemd-analyze` is installed, `systemd-analyze verify` runs over the changed
//!   units, staged with every desired unit and drop-in in a private directory that comes first
//!   on the unit path (`SYSTEMD_UNIT_PATH`), followed by the root's own unit directories: the
//!   root's vendor units are found, and nothing is written to the root.
//!
//! How its findings are read: systemd writes each one with its syslog priority
//! (`SYSTEMD_LOG_TARGET=console-prefixed`), so what it logs as an error is an error here (the
//! run stops) and what it logs as a warning (a setting it ignores) is a warning. Findings about
//! other units (the root's, noisy under another systemd version) are left out. So are
//! findings that would be false here:
//! - a command a unit runs is looked up on this machine: one that the desired state installs or
//!   that the root has is not missing, and one missing on both is a warning, since a package may
//!   still bring it;
//! - a unit that cannot be found is the change's mistake only when a desired unit names it, or
//!   is a socket whose service it is: `sysinit.target`, which every unit needs implicitly, is
//!   the root's business. On a root without installed units (no `/usr/lib/systemd/system`, as
//!   in an empty `--root` directory) it may exist on the real system: such findings are counted
//!   in one note instead;
//! - "has a bad unit file setting" after the error that says which setting is that error again.
//!
//! The Quadlet services a change brings are generated only on the host, so each gets a stand-in
//! (its real content is the generator's business, see [`quadlet`](crate::host::quadlet)): a unit
//! that needs `web.service` from `web.container` finds it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use crate::host::preflight::Checks;
use crate::host::root::Root;
use crate::model::desired::{DesiredState, Kind, Object, Piece, Role};
use crate::model::ignition::validate::SYSTEMD_UNIT_DIR;
use crate::model::plan::Observed;
use crate::model::triggers;
use crate::spread;

/// Where `systemd-analyze` is installed, in the order they are tried after
/// `SYSTEMD_ANALYZE_BIN`.
const ANALYZE_PATHS: &[&str] = &["/usr/bin/systemd-analyze", "/bin/systemd-analyze"];

/// The root's unit directories, in systemd's order of precedence.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Where a system keeps the units it ships: a root with neither has no installed units.
const VENDOR_UNIT_DIRS: &[&str] = &["/usr/lib/systemd/system", "/lib/systemd/system"];

/// The content of a Quadlet service's stand-in.
const STAND_IN: &str = "[Unit]\nDescription=Stand-in for a service Podman's quadlet generator makes\n\n\
                        [Service]\nExecStart=/bin/true\n";

/// The note of a run without `systemd-analyze`.
pub const NOT_INSTALLED: &str = "the changed units were not verified with systemd-analyze (not installed here)";

/// The name of a directory the units are staged in starts with this.
pub const STAGING_PREFIX: &str = "core-ops-units-";

/// `systemd-analyze` to use: `SYSTEMD_ANALYZE_BIN` when set (empty: none), else its install path.
pub fn analyzer() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SYSTEMD_ANALYZE_BIN") {
        return (!bin.is_empty()).then(|| PathBuf::from(bin));
    }
    ANALYZE_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Every check of the units in `changed` (unit names whose file or drop-ins change): errors go
/// to [`Checks::unit_errors`], warnings to [`Checks::warnings`], what could not be checked to
/// [`Checks::notes`].
pub fn check(root: &Root, desired: &DesiredState, changed: &BTreeSet<String>) -> Checks {
    start(root, desired, changed, None).finish(desired)
}

/// The checks of [`check`] under way: `systemd-analyze verify` runs in the background while
/// the caller goes on; [`Started::finish`] waits for it and gives what every check found.
#[derive(Debug)]
pub struct Started<'a> {
    checks: Checks,
    unlooked: usize,
    verifying: Option<Result<Verifying<'a>>>,
}

/// Starts the checks of [`check`]: `systemd-analyze verify` is started first, then the triggers
/// are checked while it runs. The units are staged in a private directory made in `scratch`
/// (`None`: the temporary directory, `TMPDIR`).
pub fn start<'a>(
    root: &'a Root,
    desired: &'a DesiredState,
    changed: &BTreeSet<String>,
    scratch: Option<&Path>,
) -> Started<'a> {
    let mut started = Started { checks: Checks::default(), unlooked: 0, verifying: None };
    if changed.is_empty() {
        return started;
    }
    let units = UnitFiles::of(desired);
    match analyzer() {
        None => started.checks.notes.push(NOT_INSTALLED.to_string()),
        Some(bin) => started.verifying = Some(Verifying::start(&bin, root, &units, changed, scratch)),
    }
    let installed = has_installed_units(root);
    for name in changed {
        let Some(trigger) = triggers::triggered_unit(name, &units.texts(name)) else { continue };
        if units.declares(&trigger) || exists_on(root, &trigger) {
            continue;
        }
        if !installed {
            started.unlooked += 1;
            continue;
        }
        let (path, origin) = units.file(name).map_or_else(
            || (format!("{SYSTEMD_UNIT_DIR}/{name}"), String::new()),
            |o| (o.path.clone(), format!(" (from {})", o.origin)),
        );
        started.checks.unit_errors.push(format!(
            "{path}: {name} triggers {trigger}, which neither the desired state nor the root has, so systemd \
             would refuse to start {name}; declare {trigger}, or name the unit to trigger with Unit={origin}"
        ));
    }
    started
}

impl Started<'_> {
    /// Waits for `systemd-analyze` and gives what every check found. `desired` is the whole
    /// desired state, whose files may provide what a unit runs; the checks may have been started
    /// from its unit objects alone ([`crate::model::desired::unit_objects`]).
    pub fn finish(self, desired: &DesiredState) -> Checks {
        let Started { mut checks, mut unlooked, verifying } = self;
        match verifying.map(|v| v.and_then(|v| v.finish(desired))) {
            None => {}
            Some(Ok(verified)) => {
                unlooked += verified.unlooked;
                checks.unit_errors.extend(verified.errors.into_iter().map(|m| format!("systemd-analyze: {m}")));
                checks.warnings.extend(verified.warnings.into_iter().map(|m| format!("systemd-analyze: {m}")));
            }
            Some(Err(e)) => checks.unit_errors.push(format!("{e:#}")),
        }
        if unlooked > 0 {
            checks.notes.push(format!(
                "{unlooked} reference(s) to units outside the desired state were not checked: the root has no \
                 installed units ({})",
                VENDOR_UNIT_DIRS[0]
            ));
        }
        checks
    }
}

/// Whether the root holds a system's units.
fn has_installed_units(root: &Root) -> bool {
    VENDOR_UNIT_DIRS.iter().any(|dir| matches!(root.observe(dir), Observed::Directory { .. }))
}

/// Whether unit `name` (or the template it is an instance of) is installed on the root.
fn exists_on(root: &Root, name: &str) -> bool {
    let names = std::iter::once(name.to_string()).chain(triggers::template_of(name));
    names.into_iter().any(|name| {
        UNIT_DIRS
            .iter()
            .any(|dir| !matches!(root.observe(&format!("{dir}/{name}")), Observed::Missing | Observed::Unsafe(_)))
    })
}

/// The desired units: unit files, drop-ins and the services Quadlet files generate.
struct UnitFiles<'a> {
    /// Unit name → its file.
    files: BTreeMap<&'a str, &'a Object>,
    /// Unit name → its drop-ins, by path (so in the order systemd reads them).
    dropins: BTreeMap<&'a str, Vec<&'a Object>>,
    /// The services Quadlet files generate.
    generated: BTreeSet<&'a str>,
}

impl<'a> UnitFiles<'a> {
    fn of(desired: &'a DesiredState) -> Self {
        let mut units = UnitFiles { files: BTreeMap::new(), dropins: BTreeMap::new(), generated: BTreeSet::new() };
        for object in desired.objects.values().filter(|o| o.kind == Kind::File) {
            match &object.role {
                Role::UnitFile(name) => {
                    units.files.insert(name.as_str(), object);
                }
                Role::Dropin(name) => units.dropins.entry(name.as_str()).or_default().push(object),
                Role::Quadlet(service) => {
                    units.generated.insert(service.as_str());
                }
                _ => {}
            }
        }
        units
    }

    fn file(&self, name: &str) -> Option<&'a Object> {
        self.files.get(name).copied()
    }

    /// Whether the desired state declares unit `name` (or its template).
    fn declares(&self, name: &str) -> bool {
        let names = std::iter::once(name.to_string()).chain(triggers::template_of(name));
        names.into_iter().any(|n| self.files.contains_key(n.as_str()) || self.generated.contains(n.as_str()))
    }

    /// The texts of unit `name`: its file, then its drop-ins.
    fn texts(&self, name: &str) -> Vec<&'a str> {
        let file = self.files.get(name).into_iter().copied();
        let dropins = self.dropins.get(name).into_iter().flatten().copied();
        file.chain(dropins).filter_map(text_of).collect()
    }

    /// Every desired unit file and drop-in, one text.
    fn all_texts(&self) -> String {
        let dropins = self.dropins.values().flatten();
        self.files.values().chain(dropins).copied().filter_map(text_of).collect::<Vec<_>>().join("\n")
    }
}

/// The text of a unit file or drop-in held as one piece.
fn text_of(object: &Object) -> Option<&str> {
    match object.content.as_deref() {
        Some([Piece::Bytes(b)]) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// What `systemd-analyze verify` found about the changed units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Findings systemd logs as errors.
    pub errors: Vec<String>,
    /// Findings systemd logs as warnings, and commands missing on this machine and the root.
    pub warnings: Vec<String>,
    /// Findings about units that cannot be found, left out on a root without installed units.
    pub unlooked: usize,
}

/// `systemd-analyze verify` running over the changed units, staged with every desired unit.
#[derive(Debug)]
struct Verifying<'a> {
    /// `systemd-analyze`, until it is waited for.
    child: Option<Child>,
    /// The private unit directory, kept until this is dropped (after the child ended), then
    /// removed.
    _staging: tempfile::TempDir,
    bin: PathBuf,
    reading: Reading<'a>,
}

impl<'a> Verifying<'a> {
    /// Stages the desired units (in a new directory in `scratch`, else in the temporary
    /// directory) and starts `bin verify` over the `changed` ones.
    fn start(
        bin: &Path,
        root: &'a Root,
        units: &UnitFiles,
        changed: &BTreeSet<String>,
        scratch: Option<&Path>,
    ) -> Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(STAGING_PREFIX);
        let staging = match scratch {
            Some(dir) => builder.tempdir_in(dir),
            None => builder.tempdir(),
        }
        .context("staging units")?;
        let (staged, generated) = (staging.path().join("units"), staging.path().join("generated"));
        let mut writes: Vec<(PathBuf, Cow<[u8]>)> = Vec::new();
        for object in units.files.values().chain(units.dropins.values().flatten()) {
            let Some(bytes) = object.known_bytes() else { continue };
            let Some(rel) = object.path.strip_prefix(SYSTEMD_UNIT_DIR).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            writes.push((staged.join(rel), bytes));
        }
        writes.extend(
            units.generated.iter().map(|service| (generated.join(service), Cow::Borrowed(STAND_IN.as_bytes()))),
        );
        write_staged(&writes)?;
        let unit_path = unit_path(root, staged.clone(), (!units.generated.is_empty()).then_some(generated));
        let unit_path = std::env::join_paths(unit_path).context("the unit path for systemd-analyze")?;
        let targets: Vec<std::ffi::OsString> = changed
            .iter()
            .map(|name| match units.file(name) {
                Some(_) => staged.join(name).into_os_string(),
                None => name.into(),
            })
            .collect();
        let child = Command::new(bin)
            .args(["verify", "--man=no"])
            .args(&targets)
            .env("SYSTEMD_UNIT_PATH", unit_path)
            .env("SYSTEMD_LOG_TARGET", "console-prefixed")
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .env("SYSTEMD_LOG_COLOR", "0")
            .env("SYSTEMD_LOG_LOCATION", "0")
            .env("SYSTEMD_LOG_TIME", "0")
            .env("SYSTEMD_LOG_TID", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", bin.display()))?;
        let reading = Reading {
            staged: format!("{}/", staged.display()),
            changed: changed.clone(),
            root,
            installed: has_installed_units(root),
            mentions: units.all_texts(),
            failed: false,
        };
        Ok(Verifying { child: Some(child), _staging: staging, bin: bin.to_path_buf(), reading })
    }

    /// Waits for `systemd-analyze` and reads what it found.
    /// Waits for `systemd-analyze` and reads its findings against the whole `desired` state.
    fn finish(mut self, desired: &DesiredState) -> Result<Verified> {
        let child = self.child.take().expect("systemd-analyze is waited for once");
        let out = child.wait_with_output().with_context(|| format!("running {}", self.bin.display()))?;
        tracing::debug!("checks: systemd-analyze verify finished");
        self.reading.failed = !out.status.success();
        Ok(self.reading.read(&String::from_utf8_lossy(&out.stderr), desired))
    }
}

impl Drop for Verifying<'_> {
    /// A run that ends without the findings (its plan is refused) stops `systemd-analyze` and
    /// waits for it to end before its staged units are removed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The unit path `systemd-analyze` searches: the staged units, the root's unit directories that
/// exist (a missing one holds no unit, and systemd would look for every unit and drop-in in it)
/// and the stand-ins of generated services, if any.
fn unit_path(root: &Root, staged: PathBuf, generated: Option<PathBuf>) -> Vec<PathBuf> {
    let root_dirs =
        UNIT_DIRS.iter().map(|dir| root.path().join(dir.trim_start_matches('/'))).filter(|dir| dir.is_dir());
    std::iter::once(staged).chain(root_dirs).chain(generated).collect()
}

/// Writes each file of `writes`: their directories first, each once, then the files, spread
/// over the cores.
fn write_staged(writes: &[(PathBuf, Cow<[u8]>)]) -> Result<()> {
    let dirs: BTreeSet<&Path> = writes.iter().filter_map(|(dest, _)| dest.parent()).collect();
    for dir in dirs {
        std::fs::create_dir_all(dir).with_context(|| format!("staging {}", dir.display()))?;
    }
    let written = spread::claimed(writes, spread::threads_for(writes.len()), |(dest, bytes)| {
        std::fs::write(dest, bytes).with_context(|| format!("staging {}", dest.display()))
    });
    written.into_iter().collect()
}

/// What reading `systemd-analyze verify`'s output needs to know.
#[derive(Debug)]
struct Reading<'a> {
    /// The staging directory of the desired units, with a trailing `/`.
    staged: String,
    /// The units verified.
    changed: BTreeSet<String>,
    root: &'a Root,
    /// Whether the root has installed units.
    installed: bool,
    /// The text of every desired unit file and drop-in.
    mentions: String,
    /// Whether `systemd-analyze` failed (for lines without a priority).
    failed: bool,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warning,
}

impl Reading<'_> {
    fn read(&self, output: &str, desired: &DesiredState) -> Verified {
        let mut verified = Verified::default();
        let mut faulted: BTreeSet<String> = BTreeSet::new();
        for line in output.lines() {
            let (level, message) = match priority(line) {
                Some((p, message)) if p <= 3 => (Level::Error, message),
                Some((4, message)) => (Level::Warning, message),
                Some(_) => continue,
                None if self.failed => (Level::Error, line),
                None => (Level::Warning, line),
            };
            let message = message.replace(&self.staged, &format!("{SYSTEMD_UNIT_DIR}/"));
            let Some(subject) = self.subject(&message, desired) else { continue };
            if let Some(unit) = bad_setting_of(&message)
                && faulted.contains(unit)
            {
                continue;
            }
            if let Some(missing) = missing_unit(&message) {
                if !missing.implied && !self.mentions.contains(missing.unit) {
                    continue;
                }
                if !self.installed {
                    verified.unlooked += 1;
                    continue;
                }
            }
            let level = match missing_command(&message) {
                Some(command) if self.installs(command, desired) => continue,
                Some(_) => Level::Warning,
                None => level,
            };
            match level {
                Level::Error => {
                    faulted.insert(subject);
                    verified.errors.push(message);
                }
                Level::Warning => verified.warnings.push(message),
            }
        }
        verified
    }

    /// The changed unit a finding is about (`None`: about another unit, left out): a finding
    /// starts with the unit's name, its staged file, or `Unit NAME`.
    fn subject(&self, message: &str, desired: &DesiredState) -> Option<String> {
        let head = message.strip_prefix("Unit ").unwrap_or(message);
        let head = head.split([':', ' ']).next().unwrap_or(head);
        let name = head.strip_prefix(SYSTEMD_UNIT_DIR).and_then(|rest| rest.strip_prefix('/')).unwrap_or(head);
        let name = name.split('/').next().unwrap_or(name);
        let name = name.strip_suffix(".d").unwrap_or(name);
        let about_staged = crate::model::path::is_below(head, SYSTEMD_UNIT_DIR) && desired.objects.contains_key(head);
        (self.changed.contains(name) || about_staged).then(|| name.to_string())
    }

    /// Whether `command` is installed by the desired state or present on the root.
    fn installs(&self, command: &str, desired: &DesiredState) -> bool {
        desired.objects.contains_key(command) || !matches!(self.root.observe(command), Observed::Missing)
    }
}

/// The syslog priority of a `console-prefixed` line and the rest of it.
fn priority(line: &str) -> Option<(u8, &str)> {
    let (number, rest) = line.strip_prefix('<')?.split_once('>')?;
    Some(((number.parse::<u16>().ok()? & 7) as u8, rest))
}

/// The unit a "has a bad unit file setting" finding repeats an earlier error about.
fn bad_setting_of(message: &str) -> Option<&str> {
    let rest = &message[message.find("Unit ")? + "Unit ".len()..];
    rest.strip_suffix(" has a bad unit file setting.").filter(|unit| !unit.contains(' '))
}

/// A unit that a finding says does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Missing<'a> {
    /// Its name.
    unit: &'a str,
    /// Whether the changed unit needs it by its own name (a socket's service), not by a name
    /// in its text.
    implied: bool,
}

/// The unit a finding says does not exist: "… Unit X not found." (a dependency), or "service
/// X not loaded, socket cannot be started." (a socket's service).
fn missing_unit(message: &str) -> Option<Missing<'_>> {
    let not_found = message.rfind("Unit ").and_then(|at| message[at + "Unit ".len()..].strip_suffix(" not found."));
    let not_loaded = message
        .find(": service ")
        .and_then(|at| message[at + ": service ".len()..].strip_suffix(" not loaded, socket cannot be started."));
    match (not_found, not_loaded) {
        (Some(unit), _) if !unit.contains(' ') => Some(Missing { unit, implied: false }),
        (_, Some(unit)) if !unit.contains(' ') => Some(Missing { unit, implied: true }),
        _ => None,
    }
}

/// The command of a "Command X is not executable" finding.
fn missing_command(message: &str) -> Option<&str> {
    let rest = &message[message.find("Command ")? + "Command ".len()..];
    rest.split_once(" is not executable").map(|(command, _)| command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_read_from_console_prefixed_lines() {
        assert_eq!(priority("<27>x.service: Refusing."), Some((3, "x.service: Refusing.")));
        assert_eq!(priority("<28>/u/x.service:2: Unknown key"), Some((4, "/u/x.service:2: Unknown key")));
        assert_eq!(priority("<30>info"), Some((6, "info")));
        assert_eq!(priority("no prefix"), None);
    }

    #[test]
    fn follow_up_and_command_findings_are_recognised() {
        assert_eq!(bad_setting_of("Unit b.timer has a bad unit file setting."), Some("b.timer"));
        assert_eq!(
            bad_setting_of("a.service: Cannot add dependency job, ignoring: Unit b.timer has a bad unit file setting."),
            Some("b.timer")
        );
        assert_eq!(bad_setting_of("b.timer: Timer unit lacks value setting. Refusing."), None);
        assert_eq!(
            missing_command("x.service: Command /usr/bin/x is not executable: No such file or directory"),
            Some("/usr/bin/x")
        );
        assert_eq!(missing_command("x.service: Unknown key"), None);
        assert_eq!(
            missing_unit("a.service: Failed to create a.service/start: Unit db.service not found."),
            Some(Missing { unit: "db.service", implied: false })
        );
        assert_eq!(missing_unit("Unit a.service not found."), Some(Missing { unit: "a.service", implied: false }));
        assert_eq!(
            missing_unit("h.socket: service h.service not loaded, socket cannot be started."),
            Some(Missing { unit: "h.service", implied: true })
        );
        assert_eq!(missing_unit("b.timer: Timer unit lacks value setting. Refusing."), None);
    }
}
