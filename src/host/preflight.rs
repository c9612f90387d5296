//! The checks a change passes before a host sees it, shared by `plan` and `apply` (docs/plan-and-apply.md, "Checks before a change"):
//! the Quadlet files ([`quadlet`]: the built-in key table, and Podman's generator where it is
//! installed) and the changed units ([`analyze`]: their triggers, and `systemd-analyze verify`
//! where it is installed). They run whatever `--root` is, and write nothing to the root.
//!
//! Errors stop the run: `plan` exits 1, `apply` refuses before writing anything. Warnings are
//! shown, and stop the run too under `--strict`. Notes say what could not be checked, once.

use std::collections::BTreeSet;
use std::path::Path;

use crate::host::root::Root;
use crate::host::{analyze, quadlet};
use crate::model::desired::{DesiredState, Object, Role};
use crate::model::plan::{Action, Change, Plan};

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// Mistakes in the Quadlet files.
    pub quadlet_errors: Vec<String>,
    /// Mistakes in the changed units.
    pub unit_errors: Vec<String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Checks {
    /// Adds what `other` found.
    pub fn merge(&mut self, other: Checks) {
        self.quadlet_errors.extend(other.quadlet_errors);
        self.unit_errors.extend(other.unit_errors);
        self.warnings.extend(other.warnings);
        self.notes.extend(other.notes);
    }

    /// Whether anything stops the run: an error, or under `strict` a warning.
    pub fn stop(&self, strict: bool) -> bool {
        !self.quadlet_errors.is_empty() || !self.unit_errors.is_empty() || (strict && !self.warnings.is_empty())
    }

    /// The reasons the run stops, as run errors, taking them out of the checks: the errors, and
    /// under `strict` the warnings (marked as such). Empty when nothing stops it.
    pub fn take_refusal(&mut self, strict: bool) -> Vec<String> {
        let mut refusal: Vec<String> = self.quadlet_errors.iter().chain(&self.unit_errors).cloned().collect();
        if strict {
            let warnings = std::mem::take(&mut self.warnings);
            refusal.extend(warnings.into_iter().map(|w| format!("{w} (a warning; --strict makes it an error)")));
        }
        refusal
    }
}

/// Runs every check over the desired state and its plan.
pub fn check(root: &Root, desired: &DesiredState, plan: &Plan) -> Checks {
    start(root, desired, &changed_units(&plan.changes), None).finish(desired)
}

/// The checks under way: the slow one (`systemd-analyze`, a process of its own) runs while the
/// caller goes on with work that does not depend on them; [`Started::finish`] gives their
/// findings. Nothing may be written to the root before it returns.
#[derive(Debug)]
pub struct Started<'a> {
    units: analyze::Started<'a>,
    /// What the Quadlet checks found, once they ran ([`Started::check_quadlets`]).
    quadlet: Option<Checks>,
}

/// Starts every check over the desired state, whose `changed` units ([`changed_units`]) are
/// verified; what the checks stage for `systemd-analyze` goes in a new directory in `scratch`
/// (`None`: the temporary directory).
pub fn start<'a>(
    root: &'a Root,
    desired: &'a DesiredState,
    changed: &BTreeSet<String>,
    scratch: Option<&Path>,
) -> Started<'a> {
    let mut started = start_units(root, desired, changed, scratch);
    started.check_quadlets(desired);
    started
}

/// Starts the checks of the `changed` units only, as [`start`] does; the Quadlet checks wait for
/// [`Started::check_quadlets`]. For checks started before the whole desired state is known: a
/// run that stops before it is known does not wait for Podman's generator.
pub fn start_units<'a>(
    root: &'a Root,
    desired: &'a DesiredState,
    changed: &BTreeSet<String>,
    scratch: Option<&Path>,
) -> Started<'a> {
    Started { units: analyze::start(root, desired, changed, scratch), quadlet: None }
}

impl Started<'_> {
    /// Runs the Quadlet checks over `desired` (Podman's generator in a dry run, while the unit
    /// checks run).
    pub fn check_quadlets(&mut self, desired: &DesiredState) {
        self.quadlet = Some(quadlet::check(desired));
    }

    /// Waits for the checks and gives what they found, read against the whole `desired` state
    /// (they may have started from its unit objects alone); the Quadlet checks run now if they
    /// have not yet.
    pub fn finish(self, desired: &DesiredState) -> Checks {
        let mut checks = self.quadlet.unwrap_or_else(|| quadlet::check(desired));
        checks.merge(self.units.finish(desired));
        checks
    }
}

/// Whether the checks verify the unit of object `o` when the plan writes it: a unit file or a
/// drop-in. The changes of these objects are enough for [`changed_units`].
pub fn verifies(o: &Object) -> bool {
    matches!(o.role, Role::UnitFile(_) | Role::Dropin(_))
}

/// The units whose file or drop-ins `changes` (a plan's, or those of the objects the checks
/// verify) write.
pub fn changed_units(changes: &[Change]) -> BTreeSet<String> {
    changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .filter_map(|c| match &c.role {
            Role::UnitFile(unit) | Role::Dropin(unit) => Some(unit.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::desired::Kind;
    use crate::model::plan::Change;
    use crate::model::source::compose::Origin;

    fn checks() -> Checks {
        Checks {
            quadlet_errors: vec!["q".into()],
            unit_errors: vec!["u".into()],
            warnings: vec!["w".into()],
            notes: vec!["n".into()],
        }
    }

    #[test]
    fn errors_always_stop_the_run_and_warnings_only_under_strict() {
        let warned = Checks { warnings: vec!["w".into()], ..Checks::default() };
        assert!(!warned.stop(false) && warned.stop(true));
        assert!(checks().stop(false));
        assert!(!Checks { notes: vec!["n".into()], ..Checks::default() }.stop(true), "a note never stops");

        let mut lenient = checks();
        assert_eq!(lenient.take_refusal(false), ["q", "u"]);
        assert_eq!(lenient.warnings, ["w"], "the warnings stay to be shown");
        let mut strict = checks();
        assert_eq!(strict.take_refusal(true), ["q", "u", "w (a warning; --strict makes it an error)"]);
        assert!(strict.warnings.is_empty(), "a warning that stopped the run is listed once, as an error");
        assert_eq!(Checks::default().take_refusal(true), Vec::<String>::new());
    }

    #[test]
    fn the_changed_units_are_those_whose_file_or_drop_ins_are_written() {
        let change = |path: &str, action, role| Change {
            path: path.into(),
            kind: Kind::File,
            action,
            drift: None,
            details: Vec::new(),
            diff: None,
            reason: None,
            role,
            origin: Origin { file: "c.bu".into(), path: None },
        };
        let plan = Plan {
            changes: vec![
                change("/etc/systemd/system/a.service", Action::Create, Role::UnitFile("a.service".into())),
                change("/etc/systemd/system/b.service.d/x.conf", Action::Update, Role::Dropin("b.service".into())),
                change("/etc/systemd/system/c.service", Action::NoOp, Role::UnitFile("c.service".into())),
                change("/etc/systemd/system/d.service", Action::Delete, Role::UnitFile("d.service".into())),
                change("/etc/containers/systemd/w.container", Action::Create, Role::Quadlet("w.service".into())),
                change("/etc/motd", Action::Create, Role::Plain),
            ],
            ..Plan::default()
        };
        assert_eq!(changed_units(&plan.changes).into_iter().collect::<Vec<_>>(), ["a.service", "b.service"]);
    }
}
