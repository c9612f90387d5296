//! Named failpoints for crash tests: with the `failpoints` feature, setting
//! `CORE_OPS_FAILPOINT=<name>` (or `<name>:<n>` for the n-th hit) aborts the process there, the
//! way a power cut or `kill -9` would. Without the feature every failpoint compiles to nothing.

/// The environment variable that arms a failpoint.
pub const FAILPOINT_ENV: &str = "CORE_OPS_FAILPOINT";

/// Every failpoint, in the order an apply reaches them. `between-renames` is hit after each
/// rename that another follows, so `between-renames:<n>` stops after the n-th rename.
pub const FAILPOINTS: &[&str] = &[
    "after-lock",
    "after-pending-state",
    "after-directories",
    "after-staging",
    "between-renames",
    "after-renames",
    "after-attributes",
    "after-deletions",
    "before-final-state",
    "after-snapshot",
    "after-final-state",
];

/// Aborts the process if `name` is the armed failpoint.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Ok(armed) = std::env::var(FAILPOINT_ENV) else { return };
    let (point, nth) = match armed.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
        None => (armed, 1),
    };
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("failpoint {name} hit: aborting");
        std::process::abort();
    }
}

/// Failpoints are compiled out without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
