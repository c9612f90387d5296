//! `core-ops init REPO REF`: makes this host follow a git repository. It fetches the ref into the
//! cache, checks that the host loads at the tip, records the intent in
//! `/etc/core-ops/tracking.yaml`, and prints the tip and what the first agent cycle would change.
//! It applies nothing: `core-ops agent` (or the timer) does.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::cli::identity::{self, Purpose};
use crate::cli::{EXIT_FAILURE, EXIT_INVALID_SOURCE, EXIT_OK, Exit, root_dir};
use crate::host::agent::{self, EXIT_UNREACHABLE, InitError, InitRequest, Initialised, short};
use crate::host::git::FetchError;
use crate::host::root::Root;
use crate::host::store;
use crate::model::path::printable;
use crate::model::tracking::Tracking;

/// Exit codes of `init`, for its `--help`.
const EXIT_CODES: &str = "Exit codes:
  0   the host follows the repository (nothing applied yet)
  1   the host already follows another repository or ref (give --force), the ref does not exist, another host's root, not root
  2   usage error
  65  the repository at the tip is invalid for the host
  75  the remote could not be reached";

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The repository: https://, http://, ssh://, user@host:path, git://, file:// or a local path.
    #[arg(value_name = "REPO")]
    pub repository: String,
    /// The branch or tag to follow (`main`, `refs/heads/main`, `v1`).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The host of the repository this machine is; default: the root's /etc/hostname (short
    /// name), else this machine's hostname.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// An allowed-signers file (git's gpg.ssh.allowedSignersFile format): only tips carrying a
    /// valid SSH signature by one of its keys are applied. An absolute path on the host.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<String>,
    /// A file holding an access token for an HTTPS repository (sent as the password of HTTP basic
    /// authentication; the token itself is never recorded). An absolute path on the host.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<String>,
    /// A PEM bundle of extra certificate authorities to trust for an HTTPS repository. An absolute
    /// path on the host.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
    /// Follow another repository or ref than the one recorded, and accept a tip that does not
    /// descend from the last applied commit (a rewritten history).
    #[arg(long)]
    pub force: bool,
    /// The root was last applied as another host: move it to this one at the first cycle.
    #[arg(long)]
    pub switch_host: bool,
    /// Seconds to wait for another run to release the lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<u8> {
    root_dir::require_privileges("init", &args.root)?;
    let root = Root::open(&args.root)?;
    let host = match &args.host {
        Some(h) => h.clone(),
        None => default_host(&root)?,
    };
    let tracking = Tracking {
        repository: args.repository.clone(),
        reference: args.reference.clone(),
        host,
        trust: args.trust.clone(),
        access_token_file: args.access_token_file.clone(),
        ca_file: args.ca_file.clone(),
    };
    let problems = crate::model::tracking::problems(&tracking);
    if !problems.is_empty() {
        return Err(Exit::lines(crate::cli::EXIT_USAGE, problems.into_iter().map(|p| format!("error: {p}"))).into());
    }
    let state = store::load_state(&root)?;
    let shown = args.root.display().to_string();
    identity::guard(&root, &shown, &state, Some(&tracking.host), args.switch_host, Purpose::Converge)?;
    let request = InitRequest {
        tracking,
        force: args.force,
        switch_host: args.switch_host,
        progress: io::stderr().is_terminal(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
    };
    match agent::init(&root, &request) {
        Ok(done) => print(&done, &request.tracking, &args.root),
        Err(e) => Err(init_exit(e)),
    }
}

/// The host named by the root's `/etc/hostname` (its first label), else this machine's.
fn default_host(root: &Root) -> Result<String> {
    let name = identity::hostname(root)
        .or_else(|| Some(rustix::system::uname().nodename().to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty() && n != "(none)");
    let name = name.ok_or_else(|| Exit::usage("this machine has no hostname; give --host HOST"))?;
    Ok(name.split('.').next().unwrap_or(&name).to_string())
}

/// The exit an `init` error ends the process with.
fn init_exit(e: anyhow::Error) -> anyhow::Error {
    let Some(init) = e.downcast_ref::<InitError>() else { return e };
    let code = match init {
        InitError::OtherRepository(..) => EXIT_FAILURE,
        InitError::Fetch { error: FetchError::Unreachable(_), .. } => EXIT_UNREACHABLE,
        InitError::Fetch { .. } => EXIT_FAILURE,
        InitError::Invalid { .. } => EXIT_INVALID_SOURCE,
    };
    let mut lines = vec![format!("error: {init}")];
    if let InitError::Invalid { lines: issues, .. } = init {
        lines.extend(issues.iter().cloned());
    }
    lines.push("Nothing was recorded.".into());
    Exit::lines(code, lines).into()
}

/// Prints what `init` found.
fn print(done: &Initialised, tracking: &Tracking, root: &Path) -> Result<u8> {
    for w in &done.warnings {
        eprintln!("warning: {}", printable(w));
    }
    let mut out = io::stdout().lock();
    if let Some(old) = &done.replaced {
        writeln!(
            out,
            "Replaced: {} at {} as {}.",
            printable(&old.repository),
            printable(&old.reference),
            printable(&old.host)
        )?;
    }
    let c = &done.commit;
    writeln!(
        out,
        "Following {} at {} as host {}: commit {} ({}), by {} at {}.",
        printable(&tracking.repository),
        printable(&tracking.reference),
        printable(&tracking.host),
        short(&c.id),
        printable(&c.summary),
        printable(&c.author),
        c.time
    )?;
    let s = done.planned.plan.summary();
    writeln!(
        out,
        "The first cycle would: {} to create, {} to update, {} to delete, {} blocked, {} unchanged (on {}).",
        s.create,
        s.update,
        s.delete,
        s.blocked,
        s.no_op,
        root.display()
    )?;
    writeln!(
        out,
        "Nothing was applied: `core-ops plan` shows the details, `core-ops agent` (or core-ops.timer) applies."
    )?;
    Ok(EXIT_OK)
}
