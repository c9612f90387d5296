//! The cache directory: a bare repository that only CoreOps writes.
//!
//! It is opened as git opens a repository it owns (system and global git config and `GIT_…`
//! variables apply, so `core.sshCommand` and `GIT_SSH_COMMAND` work), except that variables
//! pointing git at other object directories are ignored. Before a fetch it is checked: it must
//! open, be bare, and hold the objects of its tracked commit and that commit's tree. A cache is
//! built (first fetch, rebuild) in a fresh `0700` directory next to it (`.<name>.build-…`) that
//! replaces it only once filled, so a failed build leaves the old cache as it was; builds left
//! over by an interrupted run are removed by the next one. A cache path that is a symlink is
//! refused and never followed. A cache that another user could have changed (its config, HEAD,
//! refs or objects owned by someone else or writable by others, or objects borrowed through
//! `objects/info/alternates`) is never opened: its config could make git run anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{GitError, TRACKED_REF};

/// The bare repository that caches the tracked repository.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    /// `name=value` settings applied like `git -c`.
    config: Vec<String>,
}

/// What the cache directory holds, as found before a fetch.
pub(super) enum State {
    /// Nothing yet: the first fetch builds it.
    Missing,
    /// A repository that passed the checks.
    Usable(Box<gix::Repository>),
    /// Something unusable, and why.
    Corrupt(String),
}

impl Cache {
    /// The cache at `dir` (`<root>/var/lib/core-ops/repo.git`); nothing is read until it is used.
    pub fn at(dir: PathBuf) -> Cache {
        Cache { dir, config: Vec::new() }
    }

    /// The same cache with git settings (`core.sshCommand=ssh -i KEY`, ...) applied on top of
    /// every other configuration, as `git -c name=value` does.
    pub fn with_git_config(mut self, settings: impl IntoIterator<Item = impl Into<String>>) -> Cache {
        self.config.extend(settings.into_iter().map(Into::into));
        self
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the cache (a symlink in its place is removed, never followed). A missing cache
    /// is not an error.
    pub fn remove(&self) -> io::Result<()> {
        match fs::symlink_metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&self.dir),
            Ok(_) => fs::remove_file(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the cache directory exists; an error when it is a symlink.
    fn exists(&self) -> Result<bool, GitError> {
        match fs::symlink_metadata(&self.dir) {
            Ok(meta) if meta.file_type().is_symlink() => Err(GitError::new(format!(
                "the cache at {} is a symlink; CoreOps does not follow it: remove it (`core-ops init --force` \
                 rebuilds the cache)",
                self.dir.display()
            ))),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(GitError::new(format!("cannot inspect the cache at {}: {e}", self.dir.display()))),
        }
    }

    fn open_options(&self) -> gix::open::Options {
        let mut permissions = gix::open::Permissions::default();
        permissions.env.objects = gix::sec::Permission::Deny;
        gix::open::Options::default().permissions(permissions).cli_overrides(self.config.clone())
    }

    fn open_at(&self, dir: &Path) -> Result<gix::Repository, String> {
        only_root_could_write(dir)?;
        let repo = gix::open_opts(dir, self.open_options()).map_err(|e| crate::host::fetch::with_causes(&e))?;
        if !repo.is_bare() {
            return Err("not a bare repository".into());
        }
        Ok(repo)
    }

    /// The cache, for reading: `None` when it was never fetched.
    pub(super) fn open_if_present(&self) -> Result<Option<gix::Repository>, GitError> {
        if !self.exists()? {
            return Ok(None);
        }
        let repo = self.open_at(&self.dir).map_err(|e| {
            GitError::new(format!("the cache at {} is unusable ({e}); the next fetch rebuilds it", self.dir.display()))
        })?;
        Ok(Some(repo))
    }

    /// The cache, for reading; an error when it was never fetched.
    pub(super) fn open_existing(&self) -> Result<gix::Repository, GitError> {
        self.open_if_present()?.ok_or_else(|| {
            GitError::new(format!("there is no repository cache at {}; `core-ops init` fetches it", self.dir.display()))
        })
    }

    /// What the directory holds, checked before a fetch.
    pub(super) fn state(&self) -> Result<State, GitError> {
        if !self.exists()? {
            return Ok(State::Missing);
        }
        let checked = self.open_at(&self.dir).and_then(|repo| check(&repo).map(|()| repo));
        Ok(match checked {
            Ok(repo) => State::Usable(Box::new(repo)),
            Err(reason) => State::Corrupt(reason),
        })
    }

    /// Builds the cache afresh with `fill` in a new directory, and puts it in place of the old
    /// one once `fill` succeeded. On failure the old cache stays as it was.
    pub(super) fn build<T, E: From<String>>(
        &self,
        fill: impl FnOnce(&gix::Repository) -> Result<T, E>,
    ) -> Result<T, E> {
        let parent = self.parent();
        fs::create_dir_all(parent).map_err(|e| E::from(format!("cannot create {}: {e}", parent.display())))?;
        self.remove_stale_builds();
        let build = tempfile::Builder::new()
            .prefix(&self.build_prefix())
            .tempdir_in(parent)
            .map_err(|e| E::from(format!("cannot create a directory in {}: {e}", parent.display())))?;
        gix::init_bare(build.path()).map_err(|e| E::from(format!("cannot create a repository: {e}")))?;
        tighten(build.path()).map_err(|e| E::from(format!("cannot set the modes of a new cache: {e}")))?;
        let repo = self.open_at(build.path()).map_err(E::from)?;
        let value = fill(&repo)?;
        drop(repo);
        self.exists().map_err(|e| E::from(e.0))?;
        self.remove().map_err(|e| E::from(format!("cannot remove the old cache at {}: {e}", self.dir.display())))?;
        fs::rename(build.keep(), &self.dir)
            .map_err(|e| E::from(format!("cannot move the new cache to {}: {e}", self.dir.display())))?;
        Ok(value)
    }

    fn parent(&self) -> &Path {
        self.dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// `.repo.git.build-`: the name prefix of the directories the cache is built in.
    fn build_prefix(&self) -> String {
        let name = self.dir.file_name().map_or_else(|| "cache".into(), |n| n.to_string_lossy());
        format!(".{name}.build-")
    }

    /// Removes builds that an interrupted run left next to the cache (best effort).
    fn remove_stale_builds(&self) {
        let prefix = self.build_prefix();
        let Ok(entries) = fs::read_dir(self.parent()) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let path = entry.path();
                let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!("cannot remove the interrupted cache build {}: {e}", path.display());
                }
            }
        }
    }
}

/// The parts of a cache that decide what git runs and which objects it reads: its own config
/// (`core.sshCommand`, `remote.*`), HEAD, refs and objects.
const TRUSTED_PARTS: &[&str] = &["", "config", "HEAD", "packed-refs", "refs", "objects"];

/// Refuses a cache that another user could have changed: each of its [`TRUSTED_PARTS`] must be
/// owned by root (or the user running core-ops) and not writable by group or others, and it
/// must borrow no objects from elsewhere (`objects/info/alternates`). Such a cache is treated
/// as unusable: the next fetch replaces it with a fresh one.
fn only_root_could_write(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    for part in TRUSTED_PARTS {
        let path = if part.is_empty() { dir.to_path_buf() } else { dir.join(part) };
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !part.is_empty() => continue,
            Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
        };
        if meta.file_type().is_symlink() {
            return Err(format!("{} is a symlink", path.display()));
        }
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!("{} is owned by uid {}, not by root", path.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("{} is writable by others (mode {:04o})", path.display(), meta.mode() & 0o7777));
        }
    }
    if fs::symlink_metadata(dir.join("objects/info/alternates")).is_ok() {
        return Err("it borrows objects from elsewhere (objects/info/alternates)".into());
    }
    Ok(())
}

/// Makes a new cache private (0700: the repository may hold files that are secret on the host)
/// and takes group and others' write bits off its [`TRUSTED_PARTS`], whatever the umask made them.
fn tighten(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for part in TRUSTED_PARTS {
        let path = if part.is_empty() { dir.to_path_buf() } else { dir.join(part) };
        let keep = if part.is_empty() { 0o700 } else { 0o7755 };
        match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.file_type().is_symlink() => {
                fs::set_permissions(&path, fs::Permissions::from_mode(meta.permissions().mode() & keep))?
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The checks a cache passes before a fetch builds on it: HEAD and the tracked ref read, and
/// the tracked commit and its tree are there.
fn check(repo: &gix::Repository) -> Result<(), String> {
    repo.head().map_err(|e| format!("HEAD: {e}"))?;
    let Some(mut tracked) = repo.try_find_reference(TRACKED_REF).map_err(|e| format!("{TRACKED_REF}: {e}"))? else {
        return Ok(());
    };
    let id = tracked.peel_to_id().map_err(|e| format!("{TRACKED_REF}: {e}"))?;
    let commit = repo.find_commit(id).map_err(|e| format!("commit {id} of {TRACKED_REF}: {e}"))?;
    let tree = commit.tree_id().map_err(|e| format!("commit {id}: {e}"))?;
    repo.find_header(tree).map_err(|e| format!("the tree of commit {id}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cache_is_missing_and_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("repo.git"));
        assert!(matches!(cache.state(), Ok(State::Missing)));
        assert_eq!(cache.open_if_present().unwrap().map(|_| ()), None);
        assert!(cache.remove().is_ok(), "removing a missing cache is fine");

        let target = dir.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, cache.dir()).unwrap();
        let err = cache.state().err().expect("a symlink is refused");
        assert!(err.0.contains("is a symlink"), "{err}");
        cache.remove().unwrap();
        assert!(target.is_dir(), "removing the cache removes the link, never its target");
    }

    #[test]
    fn a_cache_others_could_change_is_unusable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("repo.git"));
        cache.build(|_| Ok::<(), String>(())).unwrap();
        assert!(matches!(cache.state(), Ok(State::Usable(_))));
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "a new cache is private");
        let config = cache.dir().join("config");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
        match cache.state() {
            Ok(State::Corrupt(reason)) => assert!(reason.contains("writable by others"), "{reason}"),
            _ => panic!("a world-writable config must make the cache unusable"),
        }
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(cache.state(), Ok(State::Usable(_))));
        fs::write(cache.dir().join("objects/info/alternates"), "/elsewhere/objects\n").unwrap();
        match cache.state() {
            Ok(State::Corrupt(reason)) => assert!(reason.contains("alternates"), "{reason}"),
            _ => panic!("a cache with alternates must be unusable"),
        }
    }

    #[test]
    fn a_failed_build_leaves_the_old_cache_and_no_build_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("repo.git"));
        fs::create_dir(cache.dir()).unwrap();
        fs::write(cache.dir().join("marker"), "old").unwrap();
        let failed: Result<(), String> = cache.build(|_| Err("no".to_string()));
        assert_eq!(failed, Err("no".to_string()));
        assert_eq!(fs::read_to_string(cache.dir().join("marker")).unwrap(), "old");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["repo.git"]);

        cache.build(|_| Ok::<(), String>(())).unwrap();
        assert!(matches!(cache.state(), Ok(State::Usable(_))), "a built cache replaces the old one");
        assert!(!cache.dir().join("marker").exists());
    }
}
