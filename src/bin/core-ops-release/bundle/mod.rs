//! `core-ops-release bundle`: the release artefacts of one architecture. It builds the static
//! product binary ([`cargo_build`]), generates completions and man pages ([`docs`]), packs them
//! with the systemd units and the project documents into a reproducible archive ([`archive`]),
//! writes the raw binary and the archive into the output folder, and brings `SHA256SUMS` there
//! up to date ([`checksums`]). Two runs from the same commit give byte-identical artefacts: every
//! date is the bundle's timestamp ([`epoch`]). This module orchestrates and writes the output
//! folder; it must not touch the repository's files.

mod archive;
mod cargo_build;
mod checksums;
mod docs;
mod epoch;
mod target;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use archive::Member;
pub use target::Target;

/// The default output folder, under the repository.
const DEFAULT_OUT_DIR: &str = "target/dist";

/// The repository documents the archive carries: (path in the repository, path in the archive).
const DOCUMENTS: [(&str, &str); 5] = [
    ("CHANGELOG.md", "CHANGELOG.md"),
    ("LICENSE", "LICENSE"),
    ("README.md", "README.md"),
    ("systemd/core-ops.service", "core-ops.service"),
    ("systemd/core-ops.timer", "core-ops.timer"),
];

/// The mode of the raw binary artefact.
const MODE_BINARY: u32 = 0o755;

/// The mode of the archive and of SHA256SUMS.
const MODE_DATA: u32 = 0o644;

/// What `bundle --help` says after the options.
const HELP_NOTES: &str = "Writes core-ops-linux-<arch>, core-ops-linux-<arch>.tar.gz and SHA256SUMS (whose lines of other \
architectures are kept). Reproducible: every date in the bundle is SOURCE_DATE_EPOCH, else the commit time of HEAD, \
and build paths are remapped through CARGO_ENCODED_RUSTFLAGS, so RUSTFLAGS and the rustflags of cargo's \
configuration do not apply to this build.";

/// Build the static release binary for one target and write its bundle: the raw binary
/// `core-ops-linux-<arch>`, `core-ops-linux-<arch>.tar.gz` and SHA256SUMS.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP_NOTES)]
pub struct Args {
    /// The Linux target triple to build for (x86_64 or aarch64), e.g. x86_64-unknown-linux-musl.
    #[arg(long, value_name = "TRIPLE", value_parser = Target::parse)]
    pub target: Target,
    /// The folder to write the artefacts into [default: target/dist under the repository].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One written artefact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Builds and writes the bundle of `args.target` from the repository at `repo`, prints each
/// artefact with its size and SHA-256, and returns them.
pub fn run(repo: &Path, args: &Args) -> Result<Vec<Artefact>> {
    let repo = repo.canonicalize().with_context(|| format!("the repository {}", repo.display()))?;
    let out = args.out.clone().unwrap_or_else(|| repo.join(DEFAULT_OUT_DIR));
    let epoch = epoch::source_date_epoch(&repo)?;
    let built = cargo_build::build(&repo, &args.target, epoch)?;
    let binary = std::fs::read(&built).with_context(|| format!("reading the built binary {}", built.display()))?;
    let archive = archive::tar_gz(&members(&repo, &args.target, &binary, epoch)?, epoch)?;

    std::fs::create_dir_all(&out).with_context(|| format!("creating the output folder {}", out.display()))?;
    let written = [
        write_artefact(&out, &args.target.binary_name(), &binary, MODE_BINARY)?,
        write_artefact(&out, &args.target.archive_name(), &archive, MODE_DATA)?,
    ];
    let sums = update_checksums(&out, &written)?;
    let artefacts: Vec<Artefact> = written.into_iter().chain([sums]).collect();
    print_artefacts(&mut std::io::stdout().lock(), &artefacts).context("printing the artefacts")?;
    Ok(artefacts)
}

/// Everything the archive holds: the binary, the documents, the completions and the man pages.
fn members(repo: &Path, target: &Target, binary: &[u8], epoch: u64) -> Result<Vec<Member>> {
    let mut members = vec![Member { path: target.binary_name(), contents: binary.to_vec(), executable: true }];
    for (source, path) in DOCUMENTS {
        let file = repo.join(source);
        let contents = std::fs::read(&file)
            .with_context(|| format!("reading {} for the archive (it is shipped in every bundle)", file.display()))?;
        members.push(Member { path: path.to_string(), contents, executable: false });
    }
    members.extend(docs::completions());
    members.extend(docs::man_pages(&epoch::iso_date(epoch))?);
    Ok(members)
}

/// Writes `contents` as `out/name` with `mode`, atomically (a temporary file renamed over it).
fn write_artefact(out: &Path, name: &str, contents: &[u8], mode: u32) -> Result<Artefact> {
    let path = out.join(name);
    let failed = || format!("writing {}", path.display());
    let mut file = tempfile::Builder::new().prefix(&format!(".{name}.")).tempfile_in(out).with_context(failed)?;
    file.write_all(contents).with_context(failed)?;
    file.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).with_context(failed)?;
    file.as_file().sync_all().with_context(failed)?;
    file.persist(&path).with_context(failed)?;
    Ok(Artefact { path, size: contents.len() as u64, sha256: checksums::sha256_hex(contents) })
}

/// Rewrites `out/SHA256SUMS` with the lines of `written` replacing theirs.
fn update_checksums(out: &Path, written: &[Artefact]) -> Result<Artefact> {
    let path = out.join(checksums::FILE_NAME);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let fresh: BTreeMap<String, String> =
        written.iter().map(|artefact| (file_name(&artefact.path), artefact.sha256.clone())).collect();
    let text = checksums::merge(&path.display().to_string(), existing.as_deref(), &fresh)?;
    write_artefact(out, checksums::FILE_NAME, text.as_bytes(), MODE_DATA)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One line per artefact: path, size in bytes, SHA-256.
fn print_artefacts(out: &mut impl Write, artefacts: &[Artefact]) -> std::io::Result<()> {
    let width = artefacts.iter().map(|a| a.path.display().to_string().len()).max().unwrap_or(0);
    for artefact in artefacts {
        writeln!(
            out,
            "{:<width$}  {:>10} bytes  sha256 {}",
            artefact.path.display().to_string(),
            artefact.size,
            artefact.sha256
        )?;
    }
    Ok(())
}
