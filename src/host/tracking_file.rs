//! `/etc/core-ops/tracking.yaml` under the root: the repository, ref and host a machine follows,
//! as `core-ops init` wrote it.
//!
//! The file decides what code runs as root on the next agent cycle, so it is trusted only when
//! only root could have written it: a regular file (reached without following a symlink), owned
//! by root (or by the user running core-ops on a root of their own), and not writable by its
//! group or others. Anything else is refused with the path and the fix. It is written atomically
//! with mode 0600: it may name token files, and it says where the host's configuration lives.

use anyhow::{Result, anyhow, bail};

use crate::host::root::Root;
use crate::model::plan::Observed;
use crate::model::tracking::{self, TRACKING_FILE, TRACKING_MODE, Tracking};

/// The path of the tracking config under the root, as the operator finds it.
pub fn shown(root: &Root) -> String {
    format!("{}{TRACKING_FILE}", root.path().display().to_string().trim_end_matches('/'))
}

/// Reads the tracking config; `None` when the host was never initialised.
pub fn load(root: &Root) -> Result<Option<Tracking>> {
    let at = shown(root);
    match root.observe(TRACKING_FILE) {
        Observed::Missing => Ok(None),
        Observed::File { bytes: Some(bytes), mode, uid, .. } => {
            check_trusted(&at, mode, uid)?;
            let text = String::from_utf8(bytes).map_err(|_| anyhow!("{at} is not UTF-8 text"))?;
            tracking::parse(&at, &text).map(Some).map_err(|errors| anyhow!("{}", errors.join("\n")))
        }
        Observed::File { bytes: None, .. } => bail!("{at} is larger than a tracking config can be; check it"),
        Observed::Unsafe(reason) => bail!("{at} cannot be read safely: {reason}"),
        other => {
            bail!("{at} is {}, not a regular file; move it aside and run `core-ops init` again", observed_kind(&other))
        }
    }
}

/// Writes the tracking config atomically (mode 0600, owned by root).
pub fn save(root: &Root, config: &Tracking) -> Result<()> {
    let staged = root.stage_file(TRACKING_FILE, tracking::to_yaml(config).as_bytes(), TRACKING_MODE, 0, 0)?;
    root.sync_staged(&staged)?;
    root.commit(staged, false)?;
    root.sync_dir_of(TRACKING_FILE)
}

/// Refuses a tracking config that someone besides root could have written.
fn check_trusted(at: &str, mode: u32, uid: u32) -> Result<()> {
    if uid != 0 && uid != rustix::process::geteuid().as_raw() {
        bail!(
            "{at} is owned by uid {uid}, not by root: another user could point this host at their repository, so \
             nothing was done. Check it, then `chown root:root {at}`"
        );
    }
    if mode & 0o022 != 0 {
        bail!(
            "{at} is writable by its group or others (mode {mode:04o}): anyone who can write it could point this \
             host at their repository, so nothing was done. Check it, then `chmod 600 {at}`"
        );
    }
    Ok(())
}

fn observed_kind(o: &Observed) -> &'static str {
    match o {
        Observed::Directory { .. } => "a directory",
        Observed::Symlink { .. } => "a symlink",
        _ => "a special file",
    }
}
