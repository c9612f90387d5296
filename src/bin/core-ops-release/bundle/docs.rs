//! The generated documentation of the archive: shell completions (bash, zsh, fish) with
//! `clap_complete` and man pages (`core-ops.1` and one page per subcommand) with `clap_mangen`,
//! both from `core_ops::cli::Cli`, the clap definition the product parses with. The man pages
//! are dated from the bundle's timestamp, never from the clock. Pure: no filesystem.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};

use super::archive::Member;

/// The name users type, which the completions complete and the man pages document.
const PROGRAM: &str = "core-ops";

/// The shells completions are generated for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The archive folders of the generated files.
const COMPLETIONS_DIR: &str = "completions";
const MAN_DIR: &str = "man";

/// The man pages' manual name (the centre of the page footer).
const MANUAL: &str = "CoreOps Manual";

/// The completion scripts, one per shell, named as each shell looks them up.
pub fn completions() -> Vec<Member> {
    SHELLS
        .iter()
        .map(|shell| {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut core_ops::cli::Cli::command(), PROGRAM, &mut script);
            Member {
                path: format!("{COMPLETIONS_DIR}/{}", shell.file_name(PROGRAM)),
                contents: script,
                executable: false,
            }
        })
        .collect()
}

/// The man pages of `core-ops` and of every visible subcommand (`core-ops-plan.1`, …), dated
/// `date` (YYYY-MM-DD).
pub fn man_pages(date: &str) -> Result<Vec<Member>> {
    let mut command = core_ops::cli::Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    add_man_pages(command, date, &mut pages)?;
    Ok(pages)
}

/// The page of `command`, then those of its visible subcommands, recursively.
fn add_man_pages(command: clap::Command, date: &str, pages: &mut Vec<Member>) -> Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        add_man_pages(sub.clone(), date, pages)?;
    }
    let man = clap_mangen::Man::new(command)
        .date(date)
        .source(format!("{PROGRAM} {}", env!("CARGO_PKG_VERSION")))
        .manual(MANUAL);
    let mut page = Vec::new();
    man.render(&mut page).with_context(|| format!("rendering the man page {}", man.get_filename()))?;
    pages.push(Member { path: format!("{MAN_DIR}/{}", man.get_filename()), contents: page, executable: false });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_subcommand_of_the_cli_each_opening_with_a_dated_title() {
        let pages = man_pages("2024-02-29").unwrap();
        let mut names: Vec<&str> = pages.iter().map(|p| p.path.as_str()).collect();
        names.sort();
        // The subcommands listed in README's command reference.
        let mut expected: Vec<String> = [
            "agent",
            "apply",
            "explain",
            "history",
            "init",
            "plan",
            "render-ignition",
            "resume",
            "rollback",
            "status",
            "suspend",
        ]
        .iter()
        .map(|sub| format!("man/core-ops-{sub}.1"))
        .chain(["man/core-ops.1".to_string()])
        .collect();
        expected.sort();
        assert_eq!(names, expected);
        for page in &pages {
            let text = String::from_utf8(page.contents.clone()).unwrap();
            // roff's preamble defines the apostrophe string (.ie/.el), then the title comes first.
            let title = text.lines().find(|l| !l.starts_with(".ie ") && !l.starts_with(".el ")).unwrap();
            assert!(title.starts_with(".TH "), "{}: {title}", page.path);
            assert!(title.contains("2024-02-29"), "{}: {title}", page.path);
            assert!(title.contains(env!("CARGO_PKG_VERSION")), "{}: {title}", page.path);
        }
    }

    #[test]
    fn completions_are_named_as_bash_zsh_and_fish_look_them_up() {
        let names: Vec<String> = completions().into_iter().map(|c| c.path).collect();
        assert_eq!(names, ["completions/core-ops.bash", "completions/_core-ops", "completions/core-ops.fish"]);
    }
}
