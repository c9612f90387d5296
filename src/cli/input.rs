//! The inputs `plan` and `render-ignition` share: a source repository and host, or one Butane
//! (or Ignition) config with its files directory, loaded into one Ignition config, its origins
//! and the desired state. The config file must be a regular file of at most 64 MiB (see
//! [`input_file`]): a FIFO or a device named there is refused, never waited on or read forever.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{EXIT_FAILURE, EXIT_INVALID_SOURCE, EXIT_UNUSABLE_SOURCE, Exit};
use crate::host::execute::ApplyMeta;
use crate::host::files_dir::DiskFilesDir;
use crate::host::input_file;
use crate::host::source_dir::{self, GitHead, SourceDirError};
use crate::model::butane::{self, files::FilesDir};
use crate::model::desired::{self, DesiredState};
use crate::model::ignition::types::Config;
use crate::model::source::compose::{self, EntryKey, Origin, Override};
use crate::model::source::{SourceIssue, layout};
use crate::model::state::SourceRef;

/// Where the desired state comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// A source repository (a folder with hosts/ and services/).
    #[arg(long, value_name = "DIR", conflicts_with = "config", requires = "host")]
    pub source_repo: Option<PathBuf>,
    /// The host of the source repository.
    #[arg(long, value_name = "HOST", requires = "source_repo")]
    pub host: Option<String>,
    /// A single Butane (.bu) or Ignition (.ign, .json) config instead of a repository.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Files directory for `local:` paths of --config.
    #[arg(short = 'd', long, value_name = "DIR", requires = "config")]
    pub files_dir: Option<PathBuf>,
}

/// A loaded input.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The host name (or the config file's name).
    pub host: String,
    /// What it was loaded from, for messages.
    pub source: String,
    /// The Ignition config.
    pub config: Config,
    /// Entry → origin.
    pub origins: BTreeMap<EntryKey, Origin>,
    /// Host-layer replacements.
    pub overrides: Vec<Override>,
    /// Warnings to show.
    pub warnings: Vec<String>,
    /// Notes to show under `-v`: what the repository holds besides its layout, and skips.
    pub notes: Vec<String>,
    /// Where a repository's work tree stands in git (HEAD commit, dirty), when it is in git.
    pub git: Option<GitHead>,
    /// A hash of every input byte (the repository's files, or the config and its files
    /// directory).
    pub input_digest: Option<String>,
}

impl Loaded {
    /// The desired state of the input.
    pub fn desired(&self) -> DesiredState {
        desired::from_config(&self.config, &self.origins, &Origin { file: self.source.clone(), path: None })
    }
}

/// The last line of a run that `--strict` stopped, as Butane words it.
pub const STRICT_STOP: &str = "Config produced warnings and --strict was specified";

/// Shows the input's warnings on standard error. Under `--strict` (`strict`) warnings are
/// errors, as in `render-ignition --strict`: they are listed as errors, and the run stops with
/// exit 1 before anything is planned.
pub fn show_warnings(loaded: &Loaded, strict: bool) -> Result<()> {
    if strict && !loaded.warnings.is_empty() {
        let errors = loaded.warnings.iter().map(|w| as_error(w));
        return Err(Exit::lines(EXIT_FAILURE, errors.chain([STRICT_STOP.to_string()])).into());
    }
    for w in &loaded.warnings {
        eprintln!("{}", crate::model::path::printable(w));
    }
    Ok(())
}

/// A warning line (`warning: FILE:L:C: …`) as the error it is under `--strict`.
fn as_error(warning: &str) -> String {
    match warning.strip_prefix("warning: ") {
        Some(rest) => format!("error: {rest}"),
        None => format!("error: {warning}"),
    }
}

/// What an input is before it is loaded: host, source and a hash of every input byte.
pub fn meta(args: &InputArgs) -> Result<ApplyMeta> {
    match (&args.source_repo, &args.host, &args.config) {
        (Some(repo), Some(host), _) => {
            let digest = source_dir::repo_digest(repo, host.as_bytes());
            Ok(ApplyMeta { host: host.clone(), source: repo_source(repo, host, None), input_digest: digest })
        }
        (_, _, Some(config)) => {
            let digest = config_digest(config, args.files_dir.as_deref());
            Ok(ApplyMeta { host: config_host(config), source: config_source(config), input_digest: digest })
        }
        _ => Err(Exit::usage("give either --source-repo DIR --host HOST or --config FILE").into()),
    }
}

/// The recorded source of a repository input, with its git HEAD when it was read from git.
pub fn repo_source(repo: &std::path::Path, host: &str, git: Option<&GitHead>) -> SourceRef {
    SourceRef {
        kind: "source-repo".into(),
        location: repo.display().to_string(),
        host: Some(host.to_string()),
        reference: git.and_then(|g| g.reference.clone()),
        commit: git.and_then(|g| g.commit.clone()),
        dirty: git.is_some_and(|g| g.dirty),
    }
}

/// The recorded source of a config input.
pub fn config_source(config: &std::path::Path) -> SourceRef {
    SourceRef {
        kind: "config".into(),
        location: config.display().to_string(),
        host: None,
        reference: None,
        commit: None,
        dirty: false,
    }
}

fn config_host(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Loads the input named by `args`. `compress` chooses Butane's data-URL encoding (for output)
/// over a faster one without gzip (for plan and apply, which decode right away).
pub fn load(args: &InputArgs, compress: bool) -> Result<Loaded> {
    match (&args.source_repo, &args.host, &args.config) {
        (Some(repo), Some(host), _) => load_repo(repo, host, compress),
        (_, _, Some(config)) => load_config(config, args.files_dir.as_ref(), compress),
        _ => Err(Exit::usage("give either --source-repo DIR --host HOST or --config FILE").into()),
    }
}

fn issues_exit(issues: &[SourceIssue], code: u8) -> Exit {
    Exit::lines(code, issues.iter().map(ToString::to_string))
}

fn load_repo(repo: &std::path::Path, host: &str, compress: bool) -> Result<Loaded> {
    let read = source_dir::read(repo).map_err(|e| match e {
        SourceDirError::NotADirectory(_) => Exit::new(EXIT_UNUSABLE_SOURCE, format!("error: {e}")),
        SourceDirError::Invalid(issues) => issues_exit(&issues, EXIT_INVALID_SOURCE),
    })?;
    let host_layout = layout::load(&read.tree, host).map_err(|issues| issues_exit(&issues, EXIT_INVALID_SOURCE))?;
    let composed = compose::compose(&read.tree, &host_layout, compress)
        .map_err(|issues| issues_exit(&issues, EXIT_INVALID_SOURCE))?;
    Ok(Loaded {
        host: composed.host,
        source: repo.display().to_string(),
        config: composed.config,
        origins: composed.origins,
        overrides: composed.overrides,
        warnings: composed.warnings.iter().map(ToString::to_string).collect(),
        notes: host_layout.notes.iter().map(ToString::to_string).collect(),
        git: read.git,
        input_digest: source_dir::repo_digest(repo, host.as_bytes()),
    })
}

fn load_config(path: &std::path::Path, files_dir: Option<&PathBuf>, compress: bool) -> Result<Loaded> {
    let name = path.display().to_string();
    let read_error = |e: &dyn std::fmt::Display| Exit::new(EXIT_FAILURE, format!("error: reading {name}: {e}"));
    let bytes = input_file::read_named(path).map_err(|e| read_error(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| read_error(&"not UTF-8 text"))?;
    let files = files_dir.map(DiskFilesDir::new);
    let rendered = butane::render_with(&text, files.as_ref().map(|f| f as &dyn FilesDir), compress)
        .map_err(|failure| issues_exit(&compose::failure_issues(&name, &failure), EXIT_FAILURE))?;
    let origins = compose::origins_of(&rendered.config, &rendered.translations, &name);
    let warnings = rendered.report.entries.iter().map(|d| SourceIssue::from_diagnostic(&name, d).to_string()).collect();
    let host = config_host(path);
    let input_digest = config_digest(path, files_dir.map(PathBuf::as_path));
    Ok(Loaded {
        host,
        source: name,
        config: rendered.config,
        origins,
        overrides: Vec::new(),
        warnings,
        notes: Vec::new(),
        git: None,
        input_digest,
    })
}

/// A hash of a config's bytes and the stamps of its files directory.
fn config_digest(config: &std::path::Path, files_dir: Option<&std::path::Path>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = input_file::read_named(config).ok()?;
    let salt = hex::encode(Sha256::digest(&bytes));
    match files_dir {
        Some(dir) => source_dir::stamp_digest(dir, false, salt.as_bytes()),
        None => Some(format!("sha256-{salt}")),
    }
}
