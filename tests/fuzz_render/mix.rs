//! How often each outcome class occurred for one generator, and the thresholds a generator
//! must meet so that it cannot pass vacuously.

use std::collections::BTreeMap;
use std::fmt;

use crate::outcome::{CLASSES, Class, Outcome};

/// How often each class occurred for one generator.
#[derive(Default)]
pub struct Mix {
    counts: BTreeMap<Class, usize>,
    pub total: usize,
}

impl Mix {
    /// Counts a checked outcome; a failed check fails the test, `input` saying what was rendered.
    pub fn record(&mut self, checked: Result<Outcome, String>, input: impl FnOnce() -> String) {
        match checked {
            Ok(outcome) => self.add(outcome.class),
            Err(why) => panic!("{why} for {}", input()),
        }
    }

    fn add(&mut self, class: Class) {
        *self.counts.entry(class).or_default() += 1;
        self.total += 1;
    }

    pub fn percent(&self, class: Class) -> f64 {
        100.0 * self.counts.get(&class).copied().unwrap_or(0) as f64 / self.total.max(1) as f64
    }

    /// Prints the mix (visible with `--nocapture`).
    pub fn print(&self, generator: &str) {
        eprintln!("{generator}: {self}");
    }

    pub fn require_at_least(&self, generator: &str, class: Class, percent: f64) {
        let got = self.percent(class);
        assert!(got >= percent, "{generator}: {class:?} is {got:.1}%, want at least {percent}%; mix: {self}");
    }

    pub fn require_at_most(&self, generator: &str, class: Class, percent: f64) {
        let got = self.percent(class);
        assert!(got <= percent, "{generator}: {class:?} is {got:.1}%, want at most {percent}%; mix: {self}");
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} inputs:", self.total)?;
        for class in CLASSES {
            write!(f, " {class:?} {:.1}%", self.percent(class))?;
        }
        Ok(())
    }
}
