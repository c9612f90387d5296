//! `/etc/core-ops/tracking.yaml` under the root: the repository, ref and host a machine follows,
//! as `core-ops init` wrote it.
//!
//! The file decides what code runs as root on the next agent cycle, so it is read as
//! [`trusted_file`] reads what CoreOps trusts: only when only root could have written it. It is
//! written atomically with mode 0600: it may name token files, and it says where the host's
//! configuration lives.

use anyhow::{Result, anyhow};

use crate::host::root::Root;
use crate::host::trusted_file;
use crate::model::tracking::{self, TRACKING_FILE, TRACKING_MODE, Tracking};

/// The path of the tracking config under the root, as the operator finds it.
pub fn shown(root: &Root) -> String {
    trusted_file::shown(root, TRACKING_FILE)
}

/// Reads the tracking config; `None` when the host was never initialised.
pub fn load(root: &Root) -> Result<Option<Tracking>> {
    let Some(bytes) = trusted_file::read(root, TRACKING_FILE, "the tracking config")? else { return Ok(None) };
    let at = shown(root);
    let text = String::from_utf8(bytes).map_err(|_| anyhow!("{at} is not UTF-8 text"))?;
    // The lines are printed after `error: `, which they carry themselves.
    let lines =
        |errors: Vec<String>| errors.iter().map(|e| e.trim_start_matches("error: ").to_string()).collect::<Vec<_>>();
    tracking::parse(&at, &text).map(Some).map_err(|errors| anyhow!("{}", lines(errors).join("\n")))
}

/// Writes the tracking config atomically (mode 0600, owned by root).
pub fn save(root: &Root, config: &Tracking) -> Result<()> {
    let staged = root.stage_file(TRACKING_FILE, tracking::to_yaml(config).as_bytes(), TRACKING_MODE, 0, 0)?;
    root.sync_staged(&staged)?;
    root.commit(staged, false)?;
    root.sync_dir_of(TRACKING_FILE)
}
