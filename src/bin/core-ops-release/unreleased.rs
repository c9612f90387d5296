//! `core-ops-release changelog`: prints the `## [Unreleased]` block rendered from the fragments
//! in `changes/`, entries grouped by kind in a stable order.
//!
//! Reads only the fragments; never writes.

use crate::changelog::UNRELEASED_HEADING;
use crate::gate::parse_fragments;
use crate::repo::Checkout;
use crate::sections::{Section, render};
use crate::validate::print_problems;
use crate::{EXIT_FAILED, EXIT_OK};

/// Arguments of `changelog` (none besides the global `--repo`).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(checkout: &Checkout, _args: &Args) -> u8 {
    match checkout.fragment_files().and_then(parse_fragments) {
        Ok(fragments) => {
            let bodies: Vec<&[Section]> = fragments.iter().map(|(_, f)| f.sections.as_slice()).collect();
            print!("{}", render(UNRELEASED_HEADING, &bodies));
            EXIT_OK
        }
        Err(problems) => {
            print_problems(&problems);
            eprintln!("changelog: {} problem(s) in changes/; fix them and run it again", problems.len());
            EXIT_FAILED
        }
    }
}
