//! The Quadlet files checked before anything is activated, in two ways:
//! - always, against the built-in table of the keys Podman's Quadlet accepts
//!   ([`quadlet_keys`]): a misspelt key is named with its file, line and likely fix;
//! - where Podman's quadlet generator is installed (whatever `--root` is), with the generator
//!   itself: the desired Quadlet files are staged in a private directory and `quadlet -dryrun`
//!   runs over them (`QUADLET_UNIT_DIRS=<staging>`), so a file it rejects stops the run with its
//!   own messages instead of a unit that silently never appears. Its warnings are warnings.
//!
//! A file the table already faulted is not faulted again by the generator's message about it:
//! that would be the same mistake twice. Where the generator is not installed, one note says
//! that the Quadlet files were checked only against the table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::host::preflight::Checks;
use crate::model::desired::{DesiredState, Kind, Object, QUADLET_DIR};
use crate::model::quadlet_keys::{self, QuadletType};

/// Where Podman installs the generator, in the order they are tried after `QUADLET_BIN`.
const GENERATOR_PATHS: &[&str] = &["/usr/libexec/podman/quadlet", "/usr/lib/podman/quadlet"];

/// The note of a run without the generator.
pub const NOT_INSTALLED: &str = "Quadlet files were not checked with Podman's quadlet generator (not installed here); \
     only their keys were checked, against the built-in table of Podman 5's Quadlet keys";

/// The generator to use: `QUADLET_BIN` when set (empty: none), else Podman's install path.
pub fn generator() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("QUADLET_BIN") {
        return (!bin.is_empty()).then(|| PathBuf::from(bin));
    }
    GENERATOR_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Every check of the desired Quadlet files: errors go to [`Checks::quadlet_errors`], the
/// generator's warnings to [`Checks::warnings`], and a note when the generator is missing.
pub fn check(desired: &DesiredState) -> Checks {
    let mut checks = Checks::default();
    let files = quadlet_files(desired);
    if files.is_empty() {
        return checks;
    }
    let mut faulted = BTreeSet::new();
    for (rel, object) in &files {
        let issues = key_issues(rel, object);
        if !issues.is_empty() {
            faulted.insert(quadlet_of(rel).to_string());
        }
        checks.quadlet_errors.extend(issues);
    }
    let Some(bin) = generator() else {
        checks.notes.push(NOT_INSTALLED.to_string());
        return checks;
    };
    match dry_run(&bin, desired) {
        Ok(generated) => {
            // The generator names a file by its name, quoted (or, some versions, its path).
            let names =
                |m: &String, name: &String| m.contains(&format!("\"{name}\"")) || m.contains(&format!("/{name}\""));
            let follows_up = |m: &String| faulted.iter().any(|name| names(m, name));
            let errors = generated.errors.into_iter().filter(|m| !follows_up(m));
            checks.quadlet_errors.extend(errors.map(|m| format!("quadlet: {m}")));
            checks.warnings.extend(generated.warnings.into_iter().map(|m| format!("quadlet: {m}")));
        }
        Err(e) => checks.quadlet_errors.push(format!("{e:#}")),
    }
    checks
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

/// The Quadlet file a path below the Quadlet directory belongs to, as the generator names it
/// in its messages: `web.container` for `web.container` and `web.container.d/10-x.conf`
/// (a type-wide `container.d/` drop-in: `container`).
fn quadlet_of(rel: &str) -> &str {
    let mut parts = rel.rsplit('/');
    let file = parts.next().unwrap_or(rel);
    match parts.next().and_then(|dir| dir.strip_suffix(".d")) {
        Some(extended) if file.ends_with(".conf") => extended,
        _ => file,
    }
}

/// The Quadlet type of a path below the Quadlet directory: its extension, or for a drop-in the
/// extension of the file (or type) its `.d` directory extends; `None` for other files.
fn type_of(rel: &str) -> Option<&'static QuadletType> {
    let name = quadlet_of(rel);
    let extension = name.rsplit_once('.').map_or(name, |(_, extension)| extension);
    quadlet_keys::quadlet_type(extension)
}

/// The table's objections to one file, each naming the path on the host, the line, and where
/// the file was declared.
fn key_issues(rel: &str, object: &Object) -> Vec<String> {
    let Some(ty) = type_of(rel) else { return Vec::new() };
    let Some(bytes) = object.known_bytes() else { return Vec::new() };
    let text = String::from_utf8_lossy(&bytes);
    quadlet_keys::check(ty, &text)
        .into_iter()
        .map(|issue| format!("{}:{}: {} (from {})", object.path, issue.line, issue.message, object.origin))
        .collect()
}

/// What the generator said about the staged files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    /// Why it rejects them (empty: accepted).
    pub errors: Vec<String>,
    /// Its warnings, e.g. an image name that is not fully qualified.
    pub warnings: Vec<String>,
}

/// Runs the generator in dry-run mode over the desired Quadlet files, staged under their
/// paths below the Quadlet directory; its messages name the host paths.
pub fn dry_run(bin: &Path, desired: &DesiredState) -> Result<Generated> {
    let files = quadlet_files(desired);
    if files.is_empty() {
        return Ok(Generated::default());
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
    let staged = staging.path().display().to_string();
    let mut generated = Generated::default();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let message = without_log_prefix(line).replace(&staged, QUADLET_DIR);
        let message = message.trim();
        if message.is_empty() || is_progress(message) {
            continue;
        }
        match message.strip_prefix("Warning: ") {
            Some(warning) => generated.warnings.push(warning.to_string()),
            None if !out.status.success() => generated.errors.push(message.to_string()),
            None => generated.warnings.push(message.to_string()),
        }
    }
    if !out.status.success() && generated.errors.is_empty() {
        generated.errors.push(format!("the quadlet generator rejected the Quadlet files ({})", out.status));
    }
    Ok(generated)
}

/// A line without the generator's `quadlet-generator[PID]: ` log prefix.
fn without_log_prefix(line: &str) -> &str {
    match line.split_once("]: ") {
        Some((head, rest)) if head.starts_with("quadlet-generator[") => rest,
        _ => line,
    }
}

/// The generator's account of what it reads, which says nothing about the files.
fn is_progress(message: &str) -> bool {
    ["Loading source unit file ", "Loading source drop-in file ", "No files parsed from "]
        .iter()
        .any(|start| message.starts_with(start))
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

    /// A stand-in generator: logs what it loads as the real one does, warns about every file,
    /// and rejects any staged file containing `Bogus`, naming the file as the real generator does.
    fn fake_generator(dir: &Path) -> PathBuf {
        let bin = dir.join("quadlet");
        std::fs::write(
            &bin,
            "#!/bin/sh\n[ \"$1\" = -dryrun ] || exit 9\n\
             echo \"quadlet-generator[7]: Loading source unit file $QUADLET_UNIT_DIRS/web.container\" >&2\n\
             echo 'quadlet-generator[7]: Warning: web.container specifies the image \"x\" which not a fully qualified image name.' >&2\n\
             bad=$(grep -rl 'Bogus' \"$QUADLET_UNIT_DIRS\")\n\
             [ -z \"$bad\" ] && exit 0\necho \"quadlet-generator[7]: converting \\\"$bad\\\": unsupported value 'Bogus'\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    const HEAD: &str = "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n";

    fn quadlet(contents: &str) -> DesiredState {
        desired(&format!(
            "{HEAD}    - path: /etc/containers/systemd/web.container\n      contents:\n        inline: {contents:?}\n"
        ))
    }

    #[test]
    fn rejections_and_warnings_are_reported_with_their_host_path_and_without_progress_lines() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_generator(dir.path());
        let warning = "web.container specifies the image \"x\" which not a fully qualified image name.";
        let good = dry_run(&bin, &quadlet("[Container]\nImage=x\n")).unwrap();
        assert_eq!(good, Generated { errors: Vec::new(), warnings: vec![warning.into()] });
        let bad = dry_run(&bin, &quadlet("[Container]\nImage=x\nPull=Bogus\n")).unwrap();
        assert_eq!(
            bad,
            Generated {
                errors: vec!["converting \"/etc/containers/systemd/web.container\": unsupported value 'Bogus'".into()],
                warnings: vec![warning.into()],
            }
        );
    }

    #[test]
    fn nothing_to_check_without_quadlets() {
        let plain = desired(&format!("{HEAD}    - path: /etc/motd\n      contents:\n        inline: hi\n"));
        let missing = Path::new("/nonexistent/quadlet");
        assert_eq!(dry_run(missing, &plain).unwrap(), Generated::default());
        assert_eq!(check(&plain), Checks::default(), "no note either");
    }

    #[test]
    fn the_table_names_file_line_key_and_origin() {
        let state = quadlet("[Unit]\nDescription=web\n[Container]\nImgae=x\n");
        let object = &state.objects["/etc/containers/systemd/web.container"];
        assert_eq!(
            key_issues("web.container", object),
            [
                "/etc/containers/systemd/web.container:4: unknown key `Imgae` in [Container]; did you mean `Image`? (from c.bu)"
            ]
        );
    }

    #[test]
    fn drop_ins_are_checked_as_the_type_they_extend() {
        let cases = [
            ("web.container", Some("container"), "web.container"),
            ("web.container.d/10-x.conf", Some("container"), "web.container"),
            ("container.d/10-x.conf", Some("container"), "container"),
            ("sub/db.volume", Some("volume"), "db.volume"),
            ("web.container.d/README", None, "README"),
            ("notes.txt", None, "notes.txt"),
        ];
        for (rel, extension, owner) in cases {
            assert_eq!(type_of(rel).map(|t| t.extension), extension, "{rel}");
            assert_eq!(quadlet_of(rel), owner, "{rel}");
        }
    }
}
