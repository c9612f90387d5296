//! `core-ops suspend` and `core-ops resume`: hold the agent's cycles during hands-on work, without
//! disabling the timer. While suspended, a cycle fetches nothing, changes nothing and exits 0;
//! `status` shows since when and why. `plan` and `apply` by hand still work.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::cli::{EXIT_OK, root_dir};
use crate::host::agent;
use crate::host::root::Root;
use crate::model::path::printable;

/// Arguments of `suspend`.
#[derive(Debug, clap::Args)]
pub struct SuspendArgs {
    /// Why (shown by `status` and by every suspended cycle).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Seconds to wait for a running cycle to finish.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// Arguments of `resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Seconds to wait for the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// Runs `suspend`.
pub fn suspend(args: &SuspendArgs) -> Result<u8> {
    root_dir::require_privileges("suspend", &args.root)?;
    let root = Root::open(&args.root)?;
    let s = agent::suspend(&root, args.reason.clone(), Duration::from_secs(args.lock_timeout))?;
    let why = s.reason.as_deref().map(|r| format!(" ({})", printable(r))).unwrap_or_default();
    println!("Agent cycles suspended since {}{why}. `core-ops resume` ends it.", s.since);
    Ok(EXIT_OK)
}

/// Runs `resume`.
pub fn resume(args: &ResumeArgs) -> Result<u8> {
    root_dir::require_privileges("resume", &args.root)?;
    let root = Root::open(&args.root)?;
    match agent::resume(&root, Duration::from_secs(args.lock_timeout))? {
        Some(s) => println!("Agent cycles resumed (suspended since {}).", s.since),
        None => println!("Agent cycles were not suspended."),
    }
    Ok(EXIT_OK)
}
