//! Podman's quadlet generator as a checker: before anything is activated, the desired Quadlet
//! files are staged in a private directory and `quadlet -dryrun` runs over them
//! (`QUADLET_UNIT_DIRS=<staging>`), so a file the generator rejects stops the run with the
//! generator's own messages instead of a unit that silently never appears.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::model::desired::{DesiredState, Kind, Object, QUADLET_DIR};

/// Where Podman installs the generator, in the order they are tried after `QUADLET_BIN`.
const GENERATOR_PATHS: &[&str] = &["/usr/libexec/podman/quadlet", "/usr/lib/podman/quadlet"];

/// The generator to use: `QUADLET_BIN` when set (empty: none), else Podman's install path.
pub fn generator() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("QUADLET_BIN") {
        return (!bin.is_empty()).then(|| PathBuf::from(bin));
    }
    GENERATOR_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The generator's objections to the desired Quadlet files, as run errors prefixed `quadlet:`
/// (none when the generator is not installed).
pub fn objections(desired: &DesiredState) -> Vec<String> {
    let Some(bin) = generator() else { return Vec::new() };
    match dry_run(&bin, desired) {
        Ok(messages) => messages.into_iter().map(|m| format!("quadlet: {m}")).collect(),
        Err(e) => vec![format!("{e:#}")],
    }
}

/// The desired Quadlet files and their drop-ins, as paths below the Quadlet directory.
fn quadlet_files(desired: &DesiredState) -> Vec<(&str, &Object)> {
    desired
        .objects
        .values()
        .filter(|o| o.kind == Kind::File)
        .filter_map(|o| Some((o.path.strip_prefix(QUADLET_DIR)?.strip_prefix('/')?, o)))
        .collect()
}

/// Runs the generator in dry-run mode over the desired Quadlet files. Returns its diagnostics
/// when it rejects them (empty: accepted, or nothing to check).
pub fn dry_run(bin: &Path, desired: &DesiredState) -> Result<Vec<String>> {
    let files = quadlet_files(desired);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let staging = tempfile::Builder::new().prefix("core-ops-quadlet-").tempdir().context("staging Quadlet files")?;
    for (rel, object) in files {
        let Some(bytes) = object.known_bytes() else { continue };
        let dest = staging.path().join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("staging {rel}"))?;
        }
        std::fs::write(&dest, &bytes).with_context(|| format!("staging {rel}"))?;
    }
    let out = Command::new(bin)
        .arg("-dryrun")
        .env("QUADLET_UNIT_DIRS", staging.path())
        .output()
        .with_context(|| format!("running the quadlet generator {}", bin.display()))?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let staged = staging.path().display().to_string();
    let mut messages: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.replace(&staged, QUADLET_DIR).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if messages.is_empty() {
        messages.push(format!("the quadlet generator rejected the Quadlet files ({})", out.status));
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use crate::model::butane::render;
    use crate::model::desired::from_config;
    use crate::model::source::compose::Origin;

    fn desired(src: &str) -> DesiredState {
        let rendered = render(src, None).unwrap();
        from_config(&rendered.config, &BTreeMap::new(), &Origin { file: "c.bu".into(), path: None })
    }

    /// A stand-in generator: rejects any staged file containing `Bogus=`, naming the file as
    /// the real generator does, and lists what it saw.
    fn fake_generator(dir: &Path) -> PathBuf {
        let bin = dir.join("quadlet");
        std::fs::write(
            &bin,
            "#!/bin/sh\n[ \"$1\" = -dryrun ] || exit 9\nbad=$(grep -rl 'Bogus=' \"$QUADLET_UNIT_DIRS\")\n\
             [ -z \"$bad\" ] && exit 0\necho \"converting \\\"$bad\\\": unsupported key 'Bogus' in group 'Container'\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    const HEAD: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n";

    #[test]
    fn rejected_files_are_reported_with_their_host_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_generator(dir.path());
        let good = format!(
            "{HEAD}    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: \"[Container]\\nImage=x\\n\"\n"
        );
        assert!(dry_run(&bin, &desired(&good)).unwrap().is_empty());
        let bad = format!(
            "{HEAD}    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: \"[Container]\\nBogus=1\\n\"\n"
        );
        let messages = dry_run(&bin, &desired(&bad)).unwrap();
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("/etc/containers/systemd/web.container"), "{messages:?}");
        assert!(messages[0].contains("unsupported key 'Bogus'"), "{messages:?}");
    }

    #[test]
    fn nothing_to_check_without_quadlets() {
        let plain = format!("{HEAD}    - path: /etc/motd\n      contents:\n        inline: hi\n");
        let missing = Path::new("/nonexistent/quadlet");
        assert!(dry_run(missing, &desired(&plain)).unwrap().is_empty());
    }
}
