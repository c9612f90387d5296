//! The bundle's one timestamp: `SOURCE_DATE_EPOCH` (reproducible-builds.org) when set, else the
//! commit time of the repository's HEAD. Every mtime in the archive and the man pages' date come
//! from it; nothing in a bundle may read the clock.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The environment variable that fixes the timestamp (it wins over the commit time).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

const SECONDS_PER_DAY: u64 = 86_400;

/// `SOURCE_DATE_EPOCH` when set in the environment, else the committer time of HEAD in `repo`.
pub fn source_date_epoch(repo: &Path) -> Result<u64> {
    match std::env::var_os(SOURCE_DATE_EPOCH) {
        Some(value) => parse_epoch(&value.to_string_lossy())
            .with_context(|| format!("the environment variable {SOURCE_DATE_EPOCH}")),
        None => commit_time(repo),
    }
}

/// A decimal count of seconds since 1970-01-01 UTC.
pub fn parse_epoch(text: &str) -> Result<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        bail!("`{text}` is not a timestamp: give whole seconds since 1970-01-01 UTC, e.g. 1700000000");
    }
    text.parse().with_context(|| format!("`{text}` is too large for a timestamp"))
}

/// The committer time of HEAD (`git log -1 --format=%ct`).
fn commit_time(repo: &Path) -> Result<u64> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .with_context(|| format!("running git in {} (install git, or set {SOURCE_DATE_EPOCH})", repo.display()))?;
    if !output.status.success() {
        bail!(
            "git log -1 in {} failed ({}): {}; bundle from a git checkout with a commit, or set {SOURCE_DATE_EPOCH}",
            repo.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_epoch(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("the commit time git printed for HEAD in {}", repo.display()))
}

/// The UTC calendar date of `epoch` as `YYYY-MM-DD` (the man pages' date).
pub fn iso_date(epoch: u64) -> String {
    let (year, month, day) = civil_date(epoch / SECONDS_PER_DAY);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in 400-year eras of 146 097
/// days whose years start on 1 March (so the leap day ends a year).
fn civil_date(days: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    const EPOCH_FROM_0000_03_01: u64 = 719_468;
    let days = days + EPOCH_FROM_0000_03_01;
    let era = days / DAYS_PER_ERA;
    let day_of_era = days % DAYS_PER_ERA;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 { march_month + 3 } else { march_month - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GNU date is the oracle: `date -u -d @N +%F`.
    fn gnu_date(epoch: u64) -> String {
        let out = Command::new("date").args(["-u", "-d", &format!("@{epoch}"), "+%F"]).output().expect("GNU date");
        assert!(out.status.success(), "date -u -d @{epoch}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn dates_match_gnu_date_across_leap_days_centuries_and_year_ends() {
        let cases: &[(&str, u64)] = &[
            ("the epoch", 0),
            ("last second of 1970-01-01", 86_399),
            ("leap day 2000 (a 400-year leap)", 951_782_400),
            ("day after 2000-02-28", 951_696_000 + 86_400),
            ("2100-03-01 (2100 is no leap year)", 4_107_542_400),
            ("2024-12-31 23:59:59", 1_735_689_599),
            ("2025-01-01", 1_735_689_600),
            ("a commit time", 1_764_170_160),
            ("far future", 32_503_680_000),
        ];
        for (label, epoch) in cases {
            assert_eq!(iso_date(*epoch), gnu_date(*epoch), "{label} ({epoch})");
        }
        for epoch in (0..4_200_000_000u64).step_by(7_776_007) {
            assert_eq!(iso_date(epoch), gnu_date(epoch), "{epoch}");
        }
    }

    #[test]
    fn only_whole_decimal_seconds_are_timestamps() {
        assert_eq!(parse_epoch("1700000000\n").unwrap(), 1_700_000_000);
        for bad in ["", "-1", "1.5", "17e8", "now", "99999999999999999999999"] {
            assert!(parse_epoch(bad).is_err(), "{bad:?}");
        }
    }
}
