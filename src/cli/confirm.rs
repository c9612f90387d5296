//! The question `apply` and `rollback` ask before they change anything, as `terraform apply`
//! asks: only when a person can answer (standard input and output are both a terminal: never
//! from a timer, in CI or through a pipe), never with `--yes`, and never when nothing would
//! change. Anything but `y` or `yes` (an empty line, end of input) is no.

use std::io::{self, BufRead, IsTerminal, Write};

use crate::model::activation::Activation;
use crate::model::plan::Plan;

/// The question, shown after the plan.
pub const QUESTION: &str = "Apply these changes? [y/N] ";

/// Whether a person is there to answer: standard input and standard output are a terminal.
pub fn person_at_terminal() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// Whether a plan would change anything: an object, or a systemd action that will run (offline,
/// the actions are only listed as skipped).
pub fn has_work(plan: &Plan, activation: &Activation) -> bool {
    plan.has_changes() || (activation.offline.is_none() && !activation.actions.is_empty())
}

/// Whether an answer approves: `y` or `yes`, in any case, around blanks.
pub fn approves(answer: &str) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

/// Asks [`QUESTION`] on `out` and reads one line from `input`: whether it approves. The end of the
/// input is no.
pub fn ask(out: &mut impl Write, input: &mut impl BufRead) -> io::Result<bool> {
    write!(out, "{QUESTION}")?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(approves(&answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_approves() {
        for yes in ["y", "Y", "yes", "YES", " yes \n"] {
            assert!(approves(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "ye", "sure", "y y"] {
            assert!(!approves(no), "{no:?}");
        }
    }

    #[test]
    fn work_is_a_changed_object_or_a_systemd_action_that_will_run() {
        use crate::model::activation::{UnitAction, Verb};
        let nothing = Plan::default();
        assert!(!has_work(&nothing, &Activation::default()));
        let retry = UnitAction { verb: Verb::Restart, unit: "a.service".into(), cause: "it failed".into() };
        let online = Activation { actions: vec![retry], ..Activation::default() };
        assert!(has_work(&nothing, &online), "a retried unit is work");
        let offline = Activation { offline: Some("--offline was given".into()), ..online };
        assert!(!has_work(&nothing, &offline), "offline, actions are only listed");
    }

    #[test]
    fn asks_once_and_reads_one_line() {
        let mut out = Vec::new();
        assert!(ask(&mut out, &mut &b"y\nn\n"[..]).unwrap());
        assert_eq!(out, QUESTION.as_bytes());
        assert!(!ask(&mut Vec::new(), &mut &b""[..]).unwrap(), "end of input is no");
    }
}
