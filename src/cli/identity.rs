//! Which host a root belongs to, and the guard that keeps a run for one host off another's root.
//!
//! The rule (README "Host identity"):
//! - A root records the host it was last applied as: `source.host` in its state, written by
//!   `apply --source-repo DIR --host H`, by `rollback` (the host of the revision it returns to) and
//!   by the first-boot record of `render-ignition --source-repo`.
//! - A run *for* a host is one with `--host H`, or a `rollback` to a revision applied as H. When the
//!   root records another host, `plan`, `apply` and `rollback` refuse before doing anything (exit
//!   1), unless `--switch-host` says the move is deliberate.
//! - With no host recorded yet, the root's own `/etc/hostname` stands in: `plan` warns when it
//!   names another machine, `apply` refuses without `--switch-host`. A hostname matches when it
//!   equals the host (ignoring case) or its first label does (`nas.home.arpa` is `nas`). A root
//!   without `/etc/hostname` has nothing to compare.
//! - A `--config` run names no host (a single config describes whatever machine it is applied
//!   to): it is not checked, and the root keeps the host it records.

use crate::cli::{EXIT_FAILURE, Exit};
use crate::host::root::Root;
use crate::host::store;
use crate::model::path::printable;
use crate::model::state::{SourceRef, State};

/// The file that names the machine, under the root (hostname(5)).
pub const HOSTNAME_FILE: &str = "/etc/hostname";

/// What the run does with the host it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `plan`: shows, writes nothing; an unrecorded root that another hostname names is a warning.
    Plan,
    /// `apply` or `rollback`: converges the root.
    Converge,
}

/// What the guard decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to compare, or the same host.
    Same,
    /// `--switch-host` moves the root from host `from` to the run's host (note shown).
    Switch(String),
    /// Go on, with this warning.
    Warn(String),
    /// Refused, with this error.
    Refuse(String),
}

/// The host a root was last applied as, from its state.
pub fn recorded_host(state: &State) -> Option<&str> {
    state.source.as_ref().and_then(|s| s.host.as_deref())
}

/// The machine name in hostname(5) text: the first line that is neither blank nor a comment.
pub fn parse_hostname(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether `hostname` names host `host`: equal ignoring case, or its first label is.
pub fn hostname_names(hostname: &str, host: &str) -> bool {
    hostname.eq_ignore_ascii_case(host)
        || hostname.split('.').next().is_some_and(|label| label.eq_ignore_ascii_case(host))
}

/// The guard's decision, from what the root records, its hostname, the host the run is for (none
/// for a `--config` run) and `--switch-host`. `root` is the root as the messages name it.
pub fn decide(
    root: &str,
    recorded: Option<&str>,
    hostname: Option<&str>,
    host: Option<&str>,
    switch_host: bool,
    purpose: Purpose,
) -> Verdict {
    let Some(host) = host else { return Verdict::Same };
    if recorded == Some(host) {
        return Verdict::Same;
    }
    let other_name = hostname.filter(|h| !hostname_names(h, host));
    if switch_host {
        return match recorded.or(other_name) {
            Some(from) => {
                Verdict::Switch(format!("note: the root {root} moves from host {from} to host {host} (--switch-host)."))
            }
            None => Verdict::Same,
        };
    }
    match (recorded, other_name) {
        (Some(recorded), _) => Verdict::Refuse(format!(
            "error: the root {root} was last applied as host {recorded}; this run is for host {host}. If the machine is moving to host {host} on purpose, add --switch-host."
        )),
        (None, Some(name)) => named_otherwise(root, name, host, purpose),
        (None, None) => Verdict::Same,
    }
}

/// A root with no host recorded whose /etc/hostname names another machine than `host`: a warning
/// for `plan`, a refusal for a converging run.
fn named_otherwise(root: &str, name: &str, host: &str, purpose: Purpose) -> Verdict {
    let unrecorded = format!("the root {root} is named {name} in its /etc/hostname and has no host recorded yet");
    match purpose {
        Purpose::Plan => Verdict::Warn(format!(
            "warning: {unrecorded}; this plan is for host {host}. apply will refuse it without --switch-host."
        )),
        Purpose::Converge => Verdict::Refuse(format!(
            "error: {unrecorded}; this run is for host {host}. If the machine is becoming host {host} on purpose, add --switch-host."
        )),
    }
}

/// The root's hostname, read without following symlinks.
pub fn hostname(root: &Root) -> Option<String> {
    let bytes = root.read(HOSTNAME_FILE)?;
    parse_hostname(&String::from_utf8_lossy(&bytes)).map(str::to_string)
}

/// The outcome of [`guard`]: what the root recorded when the run was let through.
#[derive(Debug, Clone)]
pub struct Guarded {
    shown: String,
    recorded: Option<String>,
}

/// Checks that a run for `host` (none for a `--config` run) may use `root` (named `shown` in
/// messages), whose state is `state`: prints a warning or a note on standard error, or refuses
/// with exit 1.
pub fn guard(
    root: &Root,
    shown: &str,
    state: &State,
    host: Option<&str>,
    switch_host: bool,
    purpose: Purpose,
) -> Result<Guarded, Exit> {
    let recorded = recorded_host(state);
    let name = if recorded.is_none() && host.is_some() { hostname(root) } else { None };
    match decide(shown, recorded, name.as_deref(), host, switch_host, purpose) {
        Verdict::Same => {}
        Verdict::Switch(line) | Verdict::Warn(line) => eprintln!("{}", printable(&line)),
        Verdict::Refuse(message) => return Err(Exit::new(EXIT_FAILURE, message)),
    }
    Ok(Guarded { shown: shown.to_string(), recorded: recorded.map(str::to_string) })
}

impl Guarded {
    /// Names the host of a source that names none (a `--config` run, or a revision applied
    /// by one): the root keeps the host it records.
    pub fn keep_recorded_host(&self, source: &mut SourceRef) {
        if source.host.is_none() {
            source.host.clone_from(&self.recorded);
        }
    }

    /// Under the run lock, right before anything is written: the root still records what the guard
    /// saw (no run for another host took the root while this one waited for the lock).
    pub fn still_holds(&self, root: &Root) -> anyhow::Result<()> {
        let state = store::load_state(root)?;
        let now = recorded_host(&state);
        if now != self.recorded.as_deref() {
            let now = now.unwrap_or("no host");
            let message = format!(
                "error: the root {} was applied as host {now} while this run waited for the lock; nothing was changed. Run again to plan against it.",
                self.shown
            );
            return Err(Exit::new(EXIT_FAILURE, message).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(recorded: Option<&str>, hostname: Option<&str>, host: Option<&str>, switch: bool) -> Verdict {
        decide("/r", recorded, hostname, host, switch, Purpose::Converge)
    }

    #[test]
    fn the_recorded_host_decides_and_switch_host_overrides_it() {
        assert_eq!(verdict(Some("nas"), None, Some("nas"), false), Verdict::Same);
        assert_eq!(
            verdict(Some("nas"), Some("edge"), Some("nas"), false),
            Verdict::Same,
            "the record wins over the hostname"
        );
        assert!(
            matches!(verdict(Some("nas"), Some("edge"), Some("edge"), false), Verdict::Refuse(m) if m.contains("last applied as host nas; this run is for host edge"))
        );
        assert_eq!(
            verdict(Some("nas"), None, Some("edge"), true),
            Verdict::Switch("note: the root /r moves from host nas to host edge (--switch-host).".into())
        );
        assert_eq!(verdict(Some("nas"), None, Some("nas"), true), Verdict::Same, "no move, no note");
    }

    #[test]
    fn without_a_record_the_hostname_stands_in() {
        assert_eq!(verdict(None, None, Some("nas"), false), Verdict::Same, "nothing to compare");
        assert_eq!(verdict(None, Some("nas"), Some("nas"), false), Verdict::Same);
        assert_eq!(verdict(None, Some("NAS.home.arpa"), Some("nas"), false), Verdict::Same, "a FQDN's first label");
        assert!(matches!(verdict(None, Some("nas2"), Some("nas"), false), Verdict::Refuse(_)));
        assert!(matches!(decide("/r", None, Some("edge"), Some("nas"), false, Purpose::Plan), Verdict::Warn(_)));
        assert_eq!(
            verdict(None, Some("edge"), Some("nas"), true),
            Verdict::Switch("note: the root /r moves from host edge to host nas (--switch-host).".into())
        );
    }

    #[test]
    fn a_run_without_a_host_is_never_refused() {
        assert_eq!(verdict(Some("nas"), Some("edge"), None, false), Verdict::Same);
        assert_eq!(verdict(None, Some("edge"), None, false), Verdict::Same);
    }

    #[test]
    fn hostname_files_are_read_as_hostname5_says() {
        assert_eq!(parse_hostname("# comment\n\n  nas  \nother\n"), Some("nas"));
        assert_eq!(parse_hostname("\n# only a comment\n"), None);
        assert!(hostname_names("nas.lan", "nas.lan") && hostname_names("nas.lan", "NAS"));
        assert!(!hostname_names("nas", "nas.lan") && !hostname_names("nasty", "nas"));
    }
}
