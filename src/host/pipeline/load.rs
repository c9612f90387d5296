//! Loading: an [`Input`] (a source repository folder and a host, one Butane or Ignition config
//! with its files directory, or a repository tree already in memory) read into one [`Loaded`]
//! input: the Ignition config, the origin of every entry, warnings, notes, and what a run records
//! as its source. A folder and a tree go through the same layout and composition; only where
//! their bytes come from differs. A config file must be a regular file of at most 64 MiB (see
//! [`input_file`]): a FIFO or a device named there is refused, never waited on or read forever.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use crate::host::execute::{ApplyInput, ApplyMeta};
use crate::host::files_dir::DiskFilesDir;
use crate::host::input_file;
use crate::host::listing::Listing;
use crate::host::source_dir::{self, GitHead, SourceDirError};
use crate::host::store::{self, Snapshot};
use crate::model::butane::{self, files::FilesDir};
use crate::model::desired::{self, DesiredState};
use crate::model::ignition::dataurl;
use crate::model::ignition::types::Config;
use crate::model::source::compose::{self, EntryKey, Origin, Override};
use crate::model::source::tree::SourceTree;
use crate::model::source::{SourceIssue, layout};
use crate::model::state::{self, SourceRef, State};

/// Where the desired state comes from.
// One input per run, moved rarely: boxing the tree's variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A source repository folder and a host of it (`--source-repo DIR --host H`).
    Repo {
        /// The folder that holds `hosts/` and `services/`.
        dir: PathBuf,
        /// The host.
        host: String,
    },
    /// One Butane/Ignition config and its files directory (`--config FILE [-d DIR]`).
    Config {
        /// The config file.
        file: PathBuf,
        /// The directory its `local:` paths are relative to.
        files_dir: Option<PathBuf>,
    },
    /// A repository tree already read into memory (the agent reads it from a git commit), with
    /// the source to record and a digest that identifies its bytes (e.g. `git-<commit>` salted
    /// with the host).
    Tree {
        /// The repository's files.
        tree: SourceTree,
        /// The host.
        host: String,
        /// What to record as the source.
        source: SourceRef,
        /// Identifies the tree's bytes for the converged fast path.
        digest: String,
    },
}

impl Input {
    /// The host the input names (a config names none).
    pub fn host(&self) -> Option<&str> {
        match self {
            Input::Repo { host, .. } | Input::Tree { host, .. } => Some(host),
            Input::Config { .. } => None,
        }
    }
}

/// Why an input could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The source repository path is not a directory.
    #[error("{0}")]
    Unusable(String),
    /// The source repository is invalid: its located issues.
    #[error("{}", lines(.0.iter()))]
    Invalid(Vec<SourceIssue>),
    /// A config cannot be read or rendered: the lines that say why.
    #[error("{}", .0.join("\n"))]
    Failed(Vec<String>),
}

fn lines(items: impl Iterator<Item = impl ToString>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
}

/// A loaded input.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The host name (or the config file's name).
    pub host: String,
    /// What it was loaded from, for messages.
    pub source: String,
    /// The Ignition config, shared with the executor's input ([`Loaded::apply_input`]), so that
    /// it lives as long as the loaded input.
    pub config: Arc<Config>,
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
    /// A hash of the input's stamps (the repository's files, or the config and its files
    /// directory), as [`meta`] takes it before the input is read: `None` from [`load`] for a
    /// repository or a config (a run that records it sets it from the meta it took first).
    pub input_digest: Option<String>,
    /// What a run records as its source.
    pub source_ref: SourceRef,
    /// The ownership record that `render-ignition` embeds in a host's first-boot config, taken
    /// out of a config that carries one: applying such a config ends as Ignition's first boot
    /// does, with exactly that record as the state (so what the render added besides the host's
    /// own entries, such as the agent's bootstrap, is written but not owned).
    pub first_boot: Option<State>,
}

impl Loaded {
    /// The desired state of the input.
    pub fn desired(&self) -> DesiredState {
        desired::from_config(&self.config, &self.origins, &Origin { file: self.source.clone(), path: None })
    }

    /// The executor's input. It shares the config; the origins move into it: what stays serves
    /// the report's header (host, source, overrides).
    pub fn apply_input(&mut self) -> ApplyInput {
        ApplyInput {
            host: self.host.clone(),
            config: Arc::clone(&self.config),
            origins: std::mem::take(&mut self.origins),
            source: self.source_ref.clone(),
            input_digest: self.input_digest.clone(),
        }
    }

    /// A history snapshot as an input, recorded as `source`.
    pub fn from_snapshot(snapshot: &Snapshot, source: SourceRef) -> Result<Loaded> {
        Ok(Loaded {
            source: format!("snapshot {} (generation {})", snapshot.revision, snapshot.generation),
            config: Arc::new(store::snapshot_config(snapshot)?),
            origins: store::origins_from_snapshot(snapshot),
            ..Loaded::named(snapshot.host.clone(), source, None)
        })
    }

    /// What is known of an input before it is loaded: its names and digest, nothing of its
    /// content (the converged fast path reports with this).
    pub fn from_meta(meta: &ApplyMeta) -> Loaded {
        Loaded::named(meta.host.clone(), meta.source.clone(), meta.input_digest.clone())
    }

    /// An input of `host` recorded as `source_ref` (and named by its location in messages), with
    /// nothing in it yet.
    fn named(host: String, source_ref: SourceRef, input_digest: Option<String>) -> Loaded {
        Loaded {
            host,
            source: source_ref.location.clone(),
            config: Arc::default(),
            origins: BTreeMap::new(),
            overrides: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            git: None,
            input_digest,
            source_ref,
            first_boot: None,
        }
    }
}

/// What an input is before it is loaded ([`fingerprint`]).
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// Host, source and digest.
    pub meta: ApplyMeta,
    /// The listing of a config's files directory that the digest was taken from.
    files_dir: Option<Arc<Listing>>,
}

/// What an input is before it is loaded: host, source and a fingerprint of it (the stamps of
/// its files, or a commit).
pub fn fingerprint(input: &Input) -> Result<Fingerprint, LoadError> {
    let unlisted = |meta| Fingerprint { meta, files_dir: None };
    Ok(match input {
        Input::Repo { dir, host } => unlisted(ApplyMeta {
            host: host.clone(),
            source: repo_source(dir, host, None),
            input_digest: source_dir::repo_digest(dir, host.as_bytes()),
        }),
        Input::Config { file, files_dir } => {
            let (input_digest, files_dir) = config_digest(file, files_dir.as_deref());
            Fingerprint {
                meta: ApplyMeta { host: config_host(file), source: config_source(file), input_digest },
                files_dir,
            }
        }
        Input::Tree { host, source, digest, .. } => {
            unlisted(ApplyMeta { host: host.clone(), source: source.clone(), input_digest: Some(digest.clone()) })
        }
    })
}

/// Loads `input`. `compress` chooses Butane's data-URL encoding (for output) over a faster one
/// without gzip (for plan and apply, which decode right away).
pub fn load(input: &Input, compress: bool) -> Result<Loaded, LoadError> {
    load_listed(input, None, compress)
}

/// Loads `input` for plan or apply as `fingerprint` saw it: a config's files directory is walked
/// from the listing its digest was taken from, so the entries applied are the ones it stamped.
pub fn load_fingerprinted(input: &Input, fingerprint: &Fingerprint) -> Result<Loaded, LoadError> {
    let mut loaded = load_listed(input, fingerprint.files_dir.clone(), false)?;
    // The digest taken before the input was read: an edit made while it was read shows in the
    // next run's digest.
    loaded.input_digest.clone_from(&fingerprint.meta.input_digest);
    Ok(loaded)
}

fn load_listed(input: &Input, files_listing: Option<Arc<Listing>>, compress: bool) -> Result<Loaded, LoadError> {
    match input {
        Input::Repo { dir, host } => load_repo(dir, host, compress),
        Input::Config { file, files_dir } => {
            let files = files_dir.as_deref().map(|dir| match files_listing {
                Some(listing) => DiskFilesDir::listed(dir, listing),
                None => DiskFilesDir::new(dir),
            });
            load_config(file, files, compress)
        }
        Input::Tree { tree, host, source, digest } => {
            let named = Loaded::named(host.clone(), source.clone(), Some(digest.clone()));
            load_host(tree, compress, named)
        }
    }
}

/// The input a recorded source names (`explain` without an input explains against the last
/// applied one): a source repository and its host, else the config file; `None` for a source
/// repository recorded without a host.
pub fn recorded_input(source: &SourceRef) -> Option<Input> {
    match source.kind.as_str() {
        "source-repo" => Some(Input::Repo { dir: source.location.clone().into(), host: source.host.clone()? }),
        _ => Some(Input::Config { file: source.location.clone().into(), files_dir: None }),
    }
}

fn load_repo(dir: &Path, host: &str, compress: bool) -> Result<Loaded, LoadError> {
    let read = source_dir::read(dir).map_err(|e| match e {
        SourceDirError::NotADirectory(_) => LoadError::Unusable(e.to_string()),
        SourceDirError::Invalid(issues) => LoadError::Invalid(issues),
    })?;
    let source = repo_source(dir, host, read.git.as_ref());
    let named = Loaded { git: read.git.clone(), ..Loaded::named(host.to_string(), source, None) };
    load_host(&read.tree, compress, named)
}

/// The host `named.host` of a repository tree, composed into `named`.
fn load_host(tree: &SourceTree, compress: bool, named: Loaded) -> Result<Loaded, LoadError> {
    let host_layout = layout::load(tree, &named.host).map_err(LoadError::Invalid)?;
    let composed = compose::compose(tree, &host_layout, compress).map_err(LoadError::Invalid)?;
    Ok(Loaded {
        host: composed.host,
        config: Arc::new(composed.config),
        origins: composed.origins,
        overrides: composed.overrides,
        warnings: composed.warnings.iter().map(ToString::to_string).collect(),
        notes: host_layout.notes.iter().map(ToString::to_string).collect(),
        ..named
    })
}

fn load_config(path: &Path, files: Option<DiskFilesDir>, compress: bool) -> Result<Loaded, LoadError> {
    let name = path.display().to_string();
    let read_error = |e: &dyn std::fmt::Display| LoadError::Failed(vec![format!("error: reading {name}: {e}")]);
    let bytes = input_file::read_named(path).map_err(|e| read_error(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| read_error(&"not UTF-8 text"))?;
    let mut rendered =
        butane::render_with(&text, files.as_ref().map(|f| f as &dyn FilesDir), compress).map_err(|failure| {
            LoadError::Failed(compose::failure_issues(&name, &failure).iter().map(ToString::to_string).collect())
        })?;
    let origins = compose::origins_of(&rendered.config, &rendered.translations, &name);
    let warnings = rendered.report.entries.iter().map(|d| SourceIssue::from_diagnostic(&name, d).to_string()).collect();
    let first_boot = take_first_boot_record(&mut rendered.config);
    Ok(Loaded {
        config: Arc::new(rendered.config),
        origins,
        warnings,
        first_boot,
        ..Loaded::named(config_host(path), config_source(path), None)
    })
}

/// Takes the first-boot ownership record out of `config`: the entry for the state file whose
/// contents are a state that Ignition writes at first boot. A state file entry that is anything
/// else stays, and the plan refuses it as it refuses any write to CoreOps's own files.
fn take_first_boot_record(config: &mut Config) -> Option<State> {
    let files = &mut config.storage.files;
    let index = files.iter().position(|f| f.path == store::STATE_FILE)?;
    let contents = &files[index].contents;
    let bytes = dataurl::decode_contents(contents.source.as_deref()?, contents.compression.as_deref()).ok()?;
    let record = state::parse(&bytes).ok()?;
    let first_boot = record.last_applied.as_ref().is_some_and(|a| a.applied_at == state::FIRST_BOOT);
    if !first_boot {
        return None;
    }
    files.remove(index);
    Some(record)
}

/// The recorded source of a repository input, with its git HEAD when it was read from git.
fn repo_source(repo: &Path, host: &str, git: Option<&GitHead>) -> SourceRef {
    SourceRef {
        kind: "source-repo".into(),
        location: repo.display().to_string(),
        host: Some(host.to_string()),
        reference: git.and_then(|g| g.reference.clone()),
        commit: git.and_then(|g| g.commit.clone()),
        dirty: git.is_some_and(|g| g.dirty),
        ..Default::default()
    }
}

/// The recorded source of a config input.
fn config_source(config: &Path) -> SourceRef {
    SourceRef {
        kind: "config".into(),
        location: config.display().to_string(),
        host: None,
        reference: None,
        commit: None,
        dirty: false,
        ..Default::default()
    }
}

/// The name a config input goes by: its file name without the extension.
fn config_host(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// A hash of the stamps of a config (the file it names, a symlink followed) and of its files
/// directory: mode, inode, size, modification and change times, as git's index notices edits.
/// The config is not read for it (a large Ignition config would be read and hashed twice).
/// A config's digest: its own stamp, then its files directory's listing ([`Listing`]), which
/// is kept for the load to walk.
fn config_digest(config: &Path, files_dir: Option<&Path>) -> (Option<String>, Option<Arc<Listing>>) {
    use sha2::{Digest, Sha256};
    let Some(salt) = source_dir::file_stamp(config) else { return (None, None) };
    match files_dir {
        Some(dir) => match Listing::of(dir, false) {
            Ok(listing) => (Some(listing.stamp_digest(salt.as_bytes())), Some(Arc::new(listing))),
            Err(_) => (None, None),
        },
        None => (Some(format!("sha256-{}", hex::encode(Sha256::digest(salt.as_bytes())))), None),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::decode::ToJson;

    pub(in crate::host::pipeline) const HOST_YAML: (&str, &str) = ("hosts/h/host.yaml", "host: h\nservices: [web]\n");
    pub(in crate::host::pipeline) const SITE_CONF: (&str, &str) = ("services/web/config/site.conf", "listen 80;\n");

    fn tree(files: &[(&str, &str)]) -> SourceTree {
        let mut tree = SourceTree::default();
        for (path, content) in files {
            tree.insert(path, content.as_bytes().to_vec(), false);
        }
        tree
    }

    /// The source an agent would record for a commit of a remote repository.
    pub(in crate::host::pipeline) fn git_source() -> SourceRef {
        SourceRef {
            kind: "git".into(),
            location: "https://example.org/infra.git".into(),
            host: Some("h".into()),
            reference: Some("main".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            dirty: false,
            ..Default::default()
        }
    }

    /// Host `h` of a tree of `files`, recorded as [`git_source`] with `digest`.
    pub(in crate::host::pipeline) fn tree_input(files: &[(&str, &str)], digest: &str) -> Input {
        Input::Tree { tree: tree(files), host: "h".into(), source: git_source(), digest: digest.into() }
    }

    /// A Butane config in `dir` whose tree `t` (files named `names`, each holding its name) goes to
    /// `/srv`; returns the input and the files directory.
    pub(in crate::host::pipeline) fn config_with_a_tree(dir: &Path, names: &[&str]) -> (Input, PathBuf) {
        let files = dir.join("files");
        std::fs::create_dir_all(files.join("t")).unwrap();
        for name in names {
            std::fs::write(files.join("t").join(name), name).unwrap();
        }
        let config = dir.join("c.bu");
        let text = "variant: fcos\nversion: 1.5.0\nstorage:\n  trees:\n    - local: t\n      path: /srv\n";
        std::fs::write(&config, text).unwrap();
        (Input::Config { file: config, files_dir: Some(files.clone()) }, files)
    }

    #[test]
    fn a_tree_loads_as_the_folder_it_was_read_from_and_records_its_own_source() {
        let from_tree = load(&tree_input(&[HOST_YAML, SITE_CONF], "git-abc"), false).unwrap();
        // README "Source repository": services/<svc>/config/<rel> -> /etc/<svc>/<rel>, mode 0644.
        let desired = from_tree.desired();
        let site = &desired.objects["/etc/web/site.conf"];
        assert_eq!(site.known_bytes().as_deref(), Some(&b"listen 80;\n"[..]));
        assert_eq!(site.effective_mode(), 0o644);
        assert_eq!(site.origin.file, "services/web/config/site.conf");
        assert_eq!((from_tree.host.as_str(), from_tree.source.as_str()), ("h", "https://example.org/infra.git"));
        assert_eq!(from_tree.source_ref, git_source(), "the source given is the source recorded");
        assert_eq!(from_tree.input_digest.as_deref(), Some("git-abc"));
        assert!(from_tree.git.is_none(), "no work tree to look at");

        let dir = tempfile::tempdir().unwrap();
        for (path, content) in [HOST_YAML, SITE_CONF] {
            std::fs::create_dir_all(dir.path().join(path).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(path), content).unwrap();
        }
        let from_dir = load(&Input::Repo { dir: dir.path().into(), host: "h".into() }, false).unwrap();
        assert_eq!(from_dir.config.to_json().to_compact(), from_tree.config.to_json().to_compact());
        assert_eq!(from_dir.origins, from_tree.origins);
        assert_eq!(from_dir.source_ref.kind, "source-repo");
        assert_eq!(from_dir.source_ref.location, dir.path().display().to_string());
    }

    #[test]
    fn a_tree_that_is_no_valid_repository_is_refused_with_located_issues() {
        let wrong_host = ("hosts/h/host.yaml", "host: other\nservices: [web]\n");
        let Err(LoadError::Invalid(issues)) = load(&tree_input(&[wrong_host, SITE_CONF], "d"), false) else {
            panic!("a host.yaml naming another host loads")
        };
        let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
        let want = "error: hosts/h/host.yaml:1:7: host name `other` does not match its folder hosts/h/";
        assert!(lines.len() == 1 && lines[0].starts_with(want), "{lines:?}");
    }

    #[test]
    fn inputs_that_cannot_be_read_say_which_way_they_fail() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let repo = Input::Repo { dir: file.path().into(), host: "h".into() };
        assert!(matches!(load(&repo, false), Err(LoadError::Unusable(m)) if m.contains("is not a directory")));
        let missing = file.path().with_extension("missing.bu");
        let config = Input::Config { file: missing.clone(), files_dir: None };
        let Err(LoadError::Failed(lines)) = load(&config, false) else { panic!("a missing config loads") };
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with(&format!("error: reading {}: ", missing.display())), "{lines:?}");
    }

    #[test]
    fn a_fingerprinted_config_is_loaded_as_its_fingerprint_listed_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (input, files) = config_with_a_tree(dir.path(), &["a"]);
        let seen = fingerprint(&input).unwrap();
        std::fs::write(files.join("t/b"), "b").unwrap();
        let paths = |loaded: &Loaded| loaded.config.storage.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();

        let loaded = load_fingerprinted(&input, &seen).unwrap();
        assert_eq!(paths(&loaded), ["/srv/a"], "a file added after the fingerprint waits for the next run");
        assert_eq!(loaded.input_digest, seen.meta.input_digest);
        assert!(seen.meta.input_digest.is_some());
        assert_ne!(fingerprint(&input).unwrap().meta.input_digest, seen.meta.input_digest, "the next run sees it");
        assert_eq!(paths(&load(&input, false).unwrap()), ["/srv/a", "/srv/b"]);
    }
}
