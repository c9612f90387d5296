//! The tracked repository: a bare `gix` cache (`/var/lib/core-ops/repo.git` under the root)
//! that follows one ref of a remote, and the host's files read straight from its objects.
//!
//! - The cache holds a single private ref, [`TRACKED_REF`], with the last fetched commit of the
//!   tracked ref. It never depends on the remote's branch layout and never has a work tree.
//! - A [`Remote`]'s ref resolves as a branch first, then as a tag (`main` is `refs/heads/main`,
//!   else `refs/tags/main`); a full name (`refs/…`) is taken as it is. Annotated tags peel to
//!   their commit; a ref to anything else than a commit is an error.
//! - Each fetch is incremental: the cache's commit is offered to the remote, and when the remote
//!   has nothing new the fetch is a negotiation only. The first fetch, and a rebuild, fill a fresh
//!   directory next to the cache that replaces it only once complete.
//! - A missing cache is fetched; a corrupt one (unreadable, objects missing, not a repository) is
//!   rebuilt from the remote with a warning, at most once per fetch. A cache path that is a
//!   symlink is refused.
//!
//! Transports are `gix`'s: `file://` and local paths (through `git-upload-pack`), `git://`,
//! `ssh://` and scp-like `user@host:path` (through the system's `ssh`, which `GIT_SSH_COMMAND` or
//! `core.sshCommand` replace, as in git), and smart HTTP(S) through CoreOps's own `reqwest`
//! client ([`http`]), which adds an access token and an extra CA bundle.
//!
//! - [`cache`] — the cache directory: opened, checked, built fresh and swapped in, removed.
//! - [`commits`] — what the cache answers offline: the tip, a commit's record and raw bytes,
//!   ancestry.
//! - [`fetch`] — one fetch of the tracked ref, and how its failures are told apart.
//! - [`http`] — smart HTTP(S) for `gix` over `reqwest`: token, CA bundle, redirects.
//! - [`progress`] — the fetch's progress as one line on stderr.
//! - [`tree`] — a commit's tree read into the model's
//!   [`SourceTree`](crate::model::source::tree::SourceTree).

pub mod cache;
pub mod commits;
pub mod fetch;
pub mod http;
pub mod progress;
pub mod tree;

use std::path::PathBuf;

pub use cache::Cache;
pub use fetch::{FetchError, Fetched};

/// The private ref that holds the last fetched commit of the tracked ref.
pub const TRACKED_REF: &str = "refs/core-ops/tracked";

/// What `tracking.yaml` says about the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// `https://`, `http://`, `git://`, `ssh://`, scp-like `user@host:path`, `file://` or a
    /// local path.
    pub url: String,
    /// The ref to follow: `main`, `refs/heads/main`, `v1` (a tag) or `refs/tags/v1`.
    pub reference: String,
    /// HTTP(S): a file holding a token, sent as the basic-auth password.
    pub access_token_file: Option<PathBuf>,
    /// HTTPS: a PEM bundle of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// What a commit says about itself, for the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full hex id.
    pub id: String,
    /// The subject: the message's first paragraph on one line, as `git log --format=%s`.
    pub summary: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// The committer time, RFC 3339 in UTC.
    pub time: String,
}

/// Why the cache could not answer (it is missing, damaged, or lacks the object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

impl GitError {
    fn new(message: impl Into<String>) -> Self {
        GitError(message.into())
    }
}

/// The remote ref names `reference` may stand for, in the order they are preferred.
pub fn candidate_refs(reference: &str) -> Vec<String> {
    if reference.starts_with("refs/") {
        vec![reference.to_string()]
    } else {
        vec![format!("refs/heads/{reference}"), format!("refs/tags/{reference}")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_ref_is_a_branch_then_a_tag_and_a_full_one_is_itself() {
        let cases = [
            ("main", vec!["refs/heads/main", "refs/tags/main"]),
            ("release/v1", vec!["refs/heads/release/v1", "refs/tags/release/v1"]),
            ("refs/tags/v1", vec!["refs/tags/v1"]),
            ("refs/heads/main", vec!["refs/heads/main"]),
        ];
        for (reference, expected) in cases {
            assert_eq!(candidate_refs(reference), expected, "{reference}");
        }
    }
}
