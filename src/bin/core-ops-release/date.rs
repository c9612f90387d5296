//! Calendar dates as releases carry them: `YYYY-MM-DD`, proleptic Gregorian, checked to exist.
//!
//! Owns parsing, validation and today's date in UTC. Only [`today_utc`] reads the clock; the
//! rest is pure.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar day. Ordered by year, month, day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    year: u32,
    month: u32,
    day: u32,
}

const SECONDS_PER_DAY: u64 = 86_400;

impl Date {
    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: u64) -> Date {
        let mut date = Date { year: 1970, month: 1, day: 1 };
        let mut left = days;
        loop {
            let year_days = if is_leap(date.year) { 366 } else { 365 };
            if left < year_days {
                break;
            }
            left -= year_days;
            date.year += 1;
        }
        loop {
            let month_days = u64::from(days_in_month(date.year, date.month));
            if left < month_days {
                break;
            }
            left -= month_days;
            date.month += 1;
        }
        date.day += u32::try_from(left).unwrap_or(0);
        date
    }
}

/// Today in UTC.
pub fn today_utc() -> Date {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Date::from_days_since_epoch(seconds / SECONDS_PER_DAY)
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl FromStr for Date {
    type Err = String;

    /// Parses `YYYY-MM-DD` (four, two and two digits) naming a day that exists.
    fn from_str(text: &str) -> Result<Date, String> {
        let invalid = || format!("`{text}` is not a calendar date written YYYY-MM-DD");
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shaped {
            return Err(invalid());
        }
        let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().map_err(|_| invalid());
        let date = Date { year: number(0..4)?, month: number(5..7)?, day: number(8..10)? };
        let month_ok = (1..=12).contains(&date.month);
        if !month_ok || date.day == 0 || date.day > days_in_month(date.year, date.month) {
            return Err(invalid());
        }
        Ok(date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_days_and_refuses_others() {
        for (text, ok) in [
            ("2026-11-25", true),
            ("2024-02-29", true),  // divisible by 4
            ("2000-02-29", true),  // divisible by 400
            ("1900-02-29", false), // divisible by 100, not 400
            ("2026-02-29", false),
            ("2026-02-30", false),
            ("2026-04-31", false),
            ("2026-12-31", true),
            ("2026-13-01", false),
            ("2026-00-10", false),
            ("2026-01-00", false),
            ("2026-1-05", false),
            ("26-01-05", false),
            ("2026/01/05", false),
            ("2026-01-05 ", false),
            ("+026-01-05", false),
        ] {
            assert_eq!(text.parse::<Date>().is_ok(), ok, "{text}");
        }
        assert_eq!("2026-02-30".parse::<Date>().unwrap_err(), "`2026-02-30` is not a calendar date written YYYY-MM-DD");
    }

    #[test]
    fn days_since_epoch_match_date_1() {
        // Day numbers from GNU date: `date -u -d @$((N * 86400)) +%F`.
        for (days, want) in [
            (0, "1970-01-01"),
            (59, "1970-03-01"),
            (10_957, "2000-01-01"),
            (11_016, "2000-02-29"),
            (19_782, "2024-02-29"),
            (20_417, "2025-11-25"),
            (20_782, "2026-11-25"),
        ] {
            assert_eq!(Date::from_days_since_epoch(days).to_string(), want, "day {days}");
        }
    }

    #[test]
    fn orders_by_calendar() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        assert!(d("2026-11-25") < d("2026-12-01"));
        assert!(d("2025-12-31") < d("2026-01-01"));
        assert_eq!(d("2026-01-05").to_string(), "2026-01-05");
    }
}
