//! The systemd half of apply (docs/plan-and-apply.md, "systemd"): stops before the writes, one daemon-reload after
//! them, then starts, reloads and restarts in the decided order, and verification that every
//! unit acted on is up. Failures carry the unit's state and its last journal lines.

use std::time::{Duration, Instant};

use crate::host::systemd::{JOURNAL_LINES, Systemd, UnitState};
use crate::model::activation::{Activation, UnitAction, Verb};
use crate::model::path::printable;

/// How often unit states are polled while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long a unit that was just (re)started must stay up before it counts as up.
const SETTLE: Duration = Duration::from_millis(300);
/// How long a unit gets to be loaded after the reload (a Quadlet's generated service), at most.
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A unit that did not do what the run needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFailure {
    /// The unit.
    pub unit: String,
    /// What went wrong, e.g. `restart failed (job result: failed)`.
    pub reason: String,
    /// Its state when given up on.
    pub state: UnitState,
    /// Its last journal lines.
    pub journal: Vec<String>,
}

impl UnitFailure {
    /// One line: the unit, the reason and its state.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} (ActiveState={}, SubState={}, Result={})",
            self.unit,
            self.reason,
            or_dash(&self.state.active_state),
            or_dash(&self.state.sub_state),
            or_dash(&self.state.result)
        )
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// What systemd did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemdRun {
    /// Whether systemd was reloaded.
    pub reloaded: bool,
    /// The actions run, each with its job result.
    pub done: Vec<(UnitAction, String)>,
    /// Units that failed.
    pub failures: Vec<UnitFailure>,
    /// A call to systemd itself that failed (the bus, a reload).
    pub errors: Vec<String>,
}

impl SystemdRun {
    /// Whether everything systemd was asked to do succeeded.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.errors.is_empty()
    }

    /// The units that failed, for retrying in the next run.
    pub fn failed_units(&self) -> Vec<String> {
        self.failures.iter().map(|f| f.unit.clone()).collect()
    }
}

/// Whether a unit is active now (`None` when systemd cannot say), for the decision table.
pub fn is_active(systemd: &dyn Systemd, unit: &str) -> Option<bool> {
    let state = systemd.unit_state(unit).ok()?;
    Some(matches!(state.active_state.as_str(), "active" | "reloading" | "activating"))
}

/// Runs the stops (removed units, services of changed sockets), before any file changes.
pub fn stop_before_writes(systemd: &dyn Systemd, activation: &Activation, run: &mut SystemdRun) {
    for action in activation.actions.iter().filter(|a| a.verb == Verb::Stop) {
        run_action(systemd, action, run);
    }
}

/// After the writes: one reload when unit files changed, then every start, reload and
/// restart, then verification of the units acted on.
pub fn activate_after_writes(systemd: &dyn Systemd, activation: &Activation, timeout: Duration, run: &mut SystemdRun) {
    if activation.daemon_reload {
        match systemd.reload() {
            Ok(()) => run.reloaded = true,
            Err(e) => {
                run.errors.push(format!("{e:#}"));
                return;
            }
        }
    }
    let starts: Vec<&UnitAction> = activation.actions.iter().filter(|a| a.verb != Verb::Stop).collect();
    let mut to_verify = Vec::new();
    for action in starts {
        let state = wait_loaded(systemd, &action.unit, timeout.min(LOAD_TIMEOUT));
        if state.load_state != "loaded" {
            let reason = format!("not loaded after the reload (LoadState={})", or_dash(&state.load_state));
            fail(systemd, run, &action.unit, reason, state);
            continue;
        }
        if run_action(systemd, action, run) {
            to_verify.push(action.unit.as_str());
        }
    }
    verify(systemd, &to_verify, timeout, run);
}

/// Runs one job; a result other than `done` is a failure. Returns whether it succeeded.
fn run_action(systemd: &dyn Systemd, action: &UnitAction, run: &mut SystemdRun) -> bool {
    let (unit, cause) = (printable(&action.unit), printable(&action.cause));
    tracing::info!(unit = %unit, cause = %cause, "{}", action.verb.name());
    match systemd.run_job(action.verb, &action.unit) {
        Ok(result) => {
            run.done.push((action.clone(), result.clone()));
            if result == "done" {
                return true;
            }
            let state = systemd.unit_state(&action.unit).unwrap_or_default();
            fail(systemd, run, &action.unit, format!("{} failed (job result: {result})", action.verb.name()), state);
            false
        }
        Err(e) => {
            let state = systemd.unit_state(&action.unit).unwrap_or_default();
            fail(systemd, run, &action.unit, format!("{e:#}"), state);
            false
        }
    }
}

fn fail(systemd: &dyn Systemd, run: &mut SystemdRun, unit: &str, reason: String, state: UnitState) {
    if run.failures.iter().any(|f| f.unit == unit) {
        return;
    }
    let journal = systemd.journal(unit, JOURNAL_LINES);
    run.failures.push(UnitFailure { unit: unit.to_string(), reason, state, journal });
}

/// Polls a unit's state until `settled` accepts it or `timeout` passes; returns the last state.
fn poll_state(
    systemd: &dyn Systemd,
    unit: &str,
    timeout: Duration,
    settled: impl Fn(&UnitState) -> bool,
) -> anyhow::Result<UnitState> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = systemd.unit_state(unit)?;
        if settled(&state) || Instant::now() >= deadline {
            return Ok(state);
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for a unit to be loaded (a Quadlet's service appears with the reload's generator run);
/// returns its last state.
fn wait_loaded(systemd: &dyn Systemd, unit: &str, timeout: Duration) -> UnitState {
    poll_state(systemd, unit, timeout, |s| s.load_state == "loaded").unwrap_or_default()
}

/// Waits for each unit to be up (active, or a one-shot that finished successfully), within
/// `timeout` per unit, and then for all to still be up a moment later (a service that starts
/// and crashes at once is caught).
fn verify(systemd: &dyn Systemd, units: &[&str], timeout: Duration, run: &mut SystemdRun) {
    let mut up = Vec::new();
    for unit in units {
        match wait_up(systemd, unit, timeout) {
            (_, None) => up.push(*unit),
            (state, Some(reason)) => fail(systemd, run, unit, reason, state),
        }
    }
    if up.is_empty() {
        return;
    }
    std::thread::sleep(SETTLE);
    for unit in up {
        let state = systemd.unit_state(unit).unwrap_or_default();
        if !state.is_up() {
            fail(systemd, run, unit, "stopped right after starting".into(), state);
        }
    }
}

/// Waits for a unit to be up; returns its last state and, when it is not up, why.
fn wait_up(systemd: &dyn Systemd, unit: &str, timeout: Duration) -> (UnitState, Option<String>) {
    match poll_state(systemd, unit, timeout, |s| s.is_up() || s.active_state == "failed") {
        Err(e) => (UnitState::default(), Some(format!("{e:#}"))),
        Ok(state) if state.is_up() => (state, None),
        Ok(state) if state.active_state == "failed" => (state, Some("failed".into())),
        Ok(state) => (state, Some(format!("not active after {} s", timeout.as_secs_f32()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::systemd::FakeSystemd;

    fn action(verb: Verb, unit: &str) -> UnitAction {
        UnitAction { verb, unit: unit.into(), cause: "test".into() }
    }

    fn activation(actions: Vec<UnitAction>) -> Activation {
        Activation { daemon_reload: true, actions, held: Vec::new(), offline: None }
    }

    #[test]
    fn stops_come_before_writes_and_the_rest_after_one_reload() {
        let fake = FakeSystemd::default();
        let a = activation(vec![
            action(Verb::Stop, "old.service"),
            action(Verb::Start, "new.service"),
            action(Verb::Restart, "web.service"),
        ]);
        let mut run = SystemdRun::default();
        stop_before_writes(&fake, &a, &mut run);
        assert_eq!(fake.calls(), vec!["stop old.service"]);
        activate_after_writes(&fake, &a, Duration::from_secs(1), &mut run);
        assert_eq!(fake.calls(), vec!["stop old.service", "reload", "start new.service", "restart web.service"]);
        assert!(run.ok(), "{:?}", run.failures);
        assert!(run.reloaded);
    }

    #[test]
    fn no_reload_without_unit_file_changes() {
        let fake = FakeSystemd::default();
        let a = Activation {
            daemon_reload: false,
            actions: vec![action(Verb::Restart, "web.service")],
            held: vec![],
            offline: None,
        };
        let mut run = SystemdRun::default();
        activate_after_writes(&fake, &a, Duration::from_secs(1), &mut run);
        assert_eq!(fake.calls(), vec!["restart web.service"]);
        assert!(!run.reloaded);
    }

    #[test]
    fn a_failed_job_is_reported_with_state_and_journal() {
        let mut fake = FakeSystemd::default();
        fake.results.insert("restart web.service".into(), "failed".into());
        let a = activation(vec![action(Verb::Restart, "web.service"), action(Verb::Start, "ok.service")]);
        let mut run = SystemdRun::default();
        activate_after_writes(&fake, &a, Duration::from_secs(1), &mut run);
        assert_eq!(run.failed_units(), vec!["web.service"]);
        let f = &run.failures[0];
        assert_eq!(f.reason, "restart failed (job result: failed)");
        assert_eq!(f.state.active_state, "failed");
        assert_eq!(f.journal, vec!["(fake journal of web.service)"]);
        assert!(f.summary().starts_with("web.service: restart failed (job result: failed) (ActiveState=failed"));
        assert!(fake.calls().contains(&"start ok.service".to_string()), "one failure does not stop the rest");
    }

    #[test]
    fn a_unit_that_never_loads_is_not_started() {
        let fake = FakeSystemd::default();
        fake.states.lock().unwrap().insert(
            "web.service".into(),
            UnitState { load_state: "not-found".into(), active_state: "inactive".into(), ..UnitState::default() },
        );
        let a = activation(vec![action(Verb::Start, "web.service")]);
        let mut run = SystemdRun::default();
        activate_after_writes(&fake, &a, Duration::from_secs(1), &mut run);
        assert_eq!(fake.calls(), vec!["reload"]);
        assert_eq!(run.failures[0].reason, "not loaded after the reload (LoadState=not-found)");
    }

    #[test]
    fn successful_oneshots_count_as_up_and_inactive_units_time_out() {
        let done = UnitState {
            load_state: "loaded".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            result: "success".into(),
            ..UnitState::default()
        };
        assert!(done.is_up());
        let fake = FakeSystemd::default();
        let stuck = UnitState { result: "exit-code".into(), ..done.clone() };
        fake.states.lock().unwrap().insert("stuck.service".into(), stuck);
        let mut run = SystemdRun::default();
        verify(&fake, &["stuck.service"], Duration::from_millis(250), &mut run);
        assert_eq!(run.failures[0].reason, "not active after 0.25 s");
        assert_eq!(run.failures[0].state.result, "exit-code");
    }
}
