//! What the cache answers offline: the last fetched commit, a commit's record (for state,
//! history and the audit log), its raw bytes (for signature checks) and whether one commit
//! descends from another (to refuse rewinds). Nothing here touches the network.

use gix::bstr::ByteSlice;

use super::{Cache, CommitInfo, GitError, TRACKED_REF};
use crate::model::state::rfc3339;

impl Cache {
    /// The last fetched commit of the tracked ref; `None` before the first fetch.
    pub fn tip(&self) -> Result<Option<String>, GitError> {
        let Some(repo) = self.open_if_present()? else { return Ok(None) };
        let reference = repo
            .try_find_reference(TRACKED_REF)
            .map_err(|e| GitError::new(format!("reading {TRACKED_REF} in {}: {e}", repo.path().display())))?;
        let Some(mut reference) = reference else { return Ok(None) };
        let id = reference
            .peel_to_id()
            .map_err(|e| GitError::new(format!("reading {TRACKED_REF} in {}: {e}", repo.path().display())))?;
        Ok(Some(id.to_string()))
    }

    /// The id, subject, author and committer time of `commit`.
    pub fn commit_info(&self, commit: &str) -> Result<CommitInfo, GitError> {
        let repo = self.open_existing()?;
        let id = commit_id(&repo, commit)?;
        let unreadable = |e: &dyn std::error::Error| GitError::new(format!("reading commit {id}: {e}"));
        let commit = repo.find_commit(id).map_err(|e| unreadable(&e))?;
        let message = commit.message().map_err(|e| unreadable(&e))?;
        let author = commit.author().map_err(|e| unreadable(&e))?;
        let time = commit.committer().map_err(|e| unreadable(&e))?.time().map_err(|e| unreadable(&e))?;
        Ok(CommitInfo {
            id: id.to_string(),
            summary: message.summary().to_str_lossy().into_owned(),
            author: format!("{} <{}>", author.name.to_str_lossy(), author.email.to_str_lossy()),
            time: rfc3339(u64::try_from(time.seconds).unwrap_or(0)),
        })
    }

    /// The raw bytes of `commit`'s object (its content, as `git cat-file commit` prints it),
    /// signature header included.
    pub fn commit_object(&self, commit: &str) -> Result<Vec<u8>, GitError> {
        let repo = self.open_existing()?;
        let id = commit_id(&repo, commit)?;
        let object = repo.find_object(id).map_err(|e| GitError::new(format!("reading commit {id}: {e}")))?;
        Ok(object.detach().data)
    }

    /// Whether `tip` is `base` or descends from it (`git merge-base --is-ancestor base tip`).
    pub fn descends_from(&self, tip: &str, base: &str) -> Result<bool, GitError> {
        let repo = self.open_existing()?;
        let tip = commit_id(&repo, tip)?;
        let base = commit_id(&repo, base)?;
        if tip == base {
            return Ok(true);
        }
        match repo.merge_base(tip, base) {
            Ok(merge_base) => Ok(merge_base.detach() == base),
            Err(gix::repository::merge_base::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(GitError::new(format!("walking the history from {tip} to {base}: {e}"))),
        }
    }
}

/// The commit `commit` names in `repo`: a full hex id, or anything `git rev-parse` takes (a
/// short id); an error when it is missing or not a commit.
pub(super) fn commit_id(repo: &gix::Repository, commit: &str) -> Result<gix::ObjectId, GitError> {
    let id = match gix::ObjectId::from_hex(commit.as_bytes()) {
        Ok(id) => id,
        Err(_) => repo
            .rev_parse_single(commit)
            .map_err(|e| GitError::new(format!("`{commit}` does not name an object of the cache: {e}")))?
            .detach(),
    };
    let header = repo
        .find_header(id)
        .map_err(|e| GitError::new(format!("commit {id} is not in the cache at {}: {e}", repo.path().display())))?;
    if header.kind() != gix::object::Kind::Commit {
        return Err(GitError::new(format!("{id} is a {}, not a commit", header.kind())));
    }
    Ok(id)
}
