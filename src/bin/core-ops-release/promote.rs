//! `core-ops-release promote`: turns the fragments into a release. When the gate passes, writes
//! their entries as `## [<version>] - <date>` right under an empty `## [Unreleased]` in
//! `CHANGELOG.md` (atomically), then removes the fragments it consumed.
//!
//! Refuses, changing nothing, when `validate` fails; changes nothing when there is nothing to
//! promote. Never touches `Cargo.toml`: the version is the one the gate accepted.

use crate::changelog::{CHANGELOG, insert_release, parse_changelog};
use crate::date::{Date, today_utc};
use crate::problem::Problem;
use crate::repo::Checkout;
use crate::sections::{Section, render};
use crate::validate::{BinaryArg, Passed, print_problems, run_gate};
use crate::{EXIT_FAILED, EXIT_OK};

/// Arguments of `promote`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release date (default: today in UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<Date>,
    /// The binary to check.
    #[command(flatten)]
    pub binary: BinaryArg,
}

/// Runs the command.
pub fn run(checkout: &Checkout, args: &Args) -> u8 {
    let passed = match run_gate(checkout, &args.binary) {
        Ok(passed) => passed,
        Err(problems) => return refuse(&problems, "validate failed"),
    };
    if passed.fragments.is_empty() {
        println!("nothing to promote: changes/ holds no fragments; {CHANGELOG} is unchanged");
        return EXIT_OK;
    }
    let date = args.date.unwrap_or_else(today_utc);
    let text = match promoted_text(&passed, date) {
        Ok(text) => text,
        Err(problems) => return refuse(&problems, "the release would not fit"),
    };
    if let Err(problem) = checkout.write_changelog(&text) {
        return refuse(&[problem], "CHANGELOG.md could not be written");
    }
    println!("promoted {} fragment(s) into {CHANGELOG} as `{}`", passed.fragments.len(), heading(&passed, date));
    let mut removal_problems = Vec::new();
    for (file, fragment) in &passed.fragments {
        match checkout.remove_fragment(&file.name) {
            Ok(()) => println!("removed {}", fragment.file),
            Err(problem) => removal_problems.push(problem),
        }
    }
    if removal_problems.is_empty() {
        EXIT_OK
    } else {
        print_problems(&removal_problems);
        EXIT_FAILED
    }
}

fn refuse(problems: &[Problem], why: &str) -> u8 {
    print_problems(problems);
    eprintln!("promote refused ({why}): nothing was changed; fix the problems above and run promote again");
    EXIT_FAILED
}

fn heading(passed: &Passed, date: Date) -> String {
    format!("## [{}] - {date}", passed.version.version)
}

/// `CHANGELOG.md` with the release dated `date` inserted, checked to parse again.
fn promoted_text(passed: &Passed, date: Date) -> Result<String, Vec<Problem>> {
    if let Some(newest) = passed.changelog.newest().filter(|newest| date < newest.date) {
        return Err(vec![Problem::at(
            CHANGELOG,
            newest.line,
            format!(
                "--date {date} is before the newest release {} ({}); releases go newest first: pass a later --date",
                newest.version, newest.date
            ),
        )]);
    }
    let bodies: Vec<&[Section]> = passed.fragments.iter().map(|(_, f)| f.sections.as_slice()).collect();
    let release = render(&heading(passed, date), &bodies);
    let text = insert_release(&passed.changelog_text, &passed.changelog, &release);
    parse_changelog(&text).map(|_| text)
}
