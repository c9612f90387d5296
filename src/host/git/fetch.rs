//! One fetch of the tracked ref into the cache.
//!
//! The ref's candidate names ([`candidate_refs`]) are fetched as refspecs without a
//! destination, so `gix` lists only those refs on the remote, negotiates from the cache's
//! commit, and receives a pack only when the remote has something new; CoreOps then picks the
//! first candidate the remote has, peels it to its commit and moves [`TRACKED_REF`] there (no
//! write at all when it did not move). A rewind is fetched like any move: refusing it is the
//! caller's decision.
//!
//! Failures are told apart by where they happen: connecting, authenticating and listing refs
//! fail as [`FetchError::Unreachable`]; a ref the remote lacks is [`FetchError::RefNotFound`];
//! receiving fails as unreachable when the connection broke, and otherwise as a problem of the
//! cache, which is then rebuilt once from the remote. Messages name the URL without its
//! credentials, and never hold the access token.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use gix::bstr::{BStr, ByteSlice};
use gix::protocol::transport::IsSpuriousError;
use gix::protocol::transport::client::TransportWithoutIO;
use gix::protocol::transport::client::blocking_io::Transport;
use gix::remote::Direction;

use super::cache::State;
use super::progress::Line;
use super::{Cache, Remote, TRACKED_REF, candidate_refs, http};
use crate::host::input_file;
use crate::model::ignition::url::redacted;

use crate::host::fetch::with_causes;

/// The user name sent with an access token when the URL names none.
pub const TOKEN_USER: &str = "core-ops";

/// A fetch that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit the tracked ref points to now (hex).
    pub commit: String,
    /// What went wrong on the way and was repaired (a corrupt cache rebuilt, ...).
    pub warnings: Vec<String>,
}

/// Why a fetch failed. The messages say what to do, and never hold a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The remote could not be reached or refused access (connection, DNS, timeout, TLS,
    /// authentication): a temporary failure as far as the host is concerned.
    #[error("{0}")]
    Unreachable(String),
    /// The remote has no such branch or tag.
    #[error("{url} has no {}; check the ref's name", described(reference))]
    RefNotFound {
        /// The remote, without credentials.
        url: String,
        /// The ref as configured.
        reference: String,
    },
    /// Anything else: a bad URL, an unreadable token or CA file, a ref that is not a commit, a
    /// cache that cannot be written.
    #[error("{0}")]
    Other(String),
}

fn described(reference: &str) -> String {
    if reference.starts_with("refs/") { format!("ref `{reference}`") } else { format!("branch or tag `{reference}`") }
}

/// Why one attempt failed: at the remote (final), or in the cache (worth one rebuild).
enum Failure {
    Remote(FetchError),
    Cache(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Cache(reason)
    }
}

impl Cache {
    /// Fetches `remote`'s ref into the cache (building the cache on first use, rebuilding it
    /// once when it is corrupt) and returns the commit it points to. With `progress`, the
    /// fetch's progress is drawn on stderr.
    pub fn fetch(&self, remote: &Remote, progress: bool) -> Result<Fetched, FetchError> {
        let access = Access::of(remote)?;
        let line = progress.then(Line::start);
        let fetched = self.fetch_or_rebuild(remote, &access, line.as_ref());
        if let Some(line) = line {
            line.finish();
        }
        match fetched {
            Ok(Fetched { commit, warnings }) => {
                Ok(Fetched { commit, warnings: warnings.into_iter().map(|w| access.scrub(w)).collect() })
            }
            Err(e) => Err(access.scrub_error(e)),
        }
    }

    fn fetch_or_rebuild(&self, remote: &Remote, access: &Access, line: Option<&Line>) -> Result<Fetched, FetchError> {
        let mut warnings = Vec::new();
        let shown = &access.shown;
        match self.state().map_err(|e| FetchError::Other(e.0))? {
            State::Usable(repo) => match fetch_into(&repo, remote, access, line) {
                Ok(commit) => return Ok(Fetched { commit, warnings }),
                Err(Failure::Remote(e)) => return Err(e),
                Err(Failure::Cache(reason)) => warnings.push(format!(
                    "fetching into the cache at {} failed ({reason}); rebuilt it from {shown}",
                    self.dir().display()
                )),
            },
            State::Missing => {}
            State::Corrupt(reason) => warnings
                .push(format!("the cache at {} was corrupt ({reason}); rebuilt it from {shown}", self.dir().display())),
        }
        match self.build(|repo| fetch_into(repo, remote, access, line)) {
            Ok(commit) => Ok(Fetched { commit, warnings }),
            Err(Failure::Remote(e)) => Err(e),
            Err(Failure::Cache(reason)) => Err(FetchError::Other(format!(
                "cannot fill the cache at {} from {shown}: {reason}",
                self.dir().display()
            ))),
        }
    }
}

/// How to reach the remote: its URL, and for HTTP(S) the token and extra CAs.
struct Access {
    url: gix::Url,
    /// The URL as messages show it (no credentials).
    shown: String,
    http: bool,
    token: Option<String>,
    token_file: Option<PathBuf>,
    extra_cas: Vec<reqwest::Certificate>,
}

impl Access {
    /// Parses the URL and, for HTTP(S), reads the token and CA files.
    fn of(remote: &Remote) -> Result<Access, FetchError> {
        let shown = redacted(&remote.url);
        let url = gix::url::parse(remote.url.as_bytes().as_bstr())
            .map_err(|e| FetchError::Other(format!("`{shown}` is not a repository URL or path: {e}")))?;
        let http = matches!(url.scheme, gix::url::Scheme::Http | gix::url::Scheme::Https);
        let mut access = Access {
            url,
            shown,
            http,
            token: None,
            token_file: remote.access_token_file.clone(),
            extra_cas: Vec::new(),
        };
        if http {
            access.token = remote.access_token_file.as_deref().map(read_token).transpose()?;
            access.extra_cas = remote.ca_file.as_deref().map(read_cas).transpose()?.unwrap_or_default();
        }
        Ok(access)
    }

    /// The account sent with every HTTP(S) request: the token as the password.
    fn identity(&self) -> Option<gix::sec::identity::Account> {
        let token = self.token.clone()?;
        let username = self.url.user().filter(|u| !u.is_empty()).unwrap_or(TOKEN_USER).to_string();
        Some(gix::sec::identity::Account { username, password: token, oauth_refresh_token: None })
    }

    /// `text` with the token and the URL's password blanked out.
    fn scrub(&self, mut text: String) -> String {
        for secret in [self.token.as_deref(), self.url.password()].into_iter().flatten() {
            if !secret.is_empty() {
                text = text.replace(secret, "***");
            }
        }
        text
    }

    fn scrub_error(&self, e: FetchError) -> FetchError {
        match e {
            FetchError::Unreachable(m) => FetchError::Unreachable(self.scrub(m)),
            FetchError::Other(m) => FetchError::Other(self.scrub(m)),
            e @ FetchError::RefNotFound { .. } => e,
        }
    }

    /// The error for a failure to connect or list refs, with what to do about access problems.
    fn unreachable(&self, e: &dyn std::error::Error, refused_access: bool) -> Failure {
        let message = if refused_access {
            format!("cannot fetch from {}: access refused{}", self.shown, self.access_hint())
        } else {
            let mut message = format!("cannot fetch from {}: {}", self.shown, with_causes(e));
            if self.http && message.contains("certificate") {
                message
                    .push_str("; if the server's certificate comes from a private CA, trust it with a CA file (PEM)");
            }
            message
        };
        Failure::Remote(FetchError::Unreachable(message))
    }

    fn access_hint(&self) -> String {
        match (&self.url.scheme, &self.token_file) {
            (gix::url::Scheme::Http, Some(_)) => "; an access token is only sent over https".into(),
            (_, Some(file)) if self.http => format!("; the server refused the access token in {}", file.display()),
            _ if self.http => "; the repository needs credentials: give an access token file".into(),
            (gix::url::Scheme::Ssh, _) => {
                "; the ssh server refused the key: point ssh at the deploy key (IdentityFile in \
                                           ssh's config, or GIT_SSH_COMMAND=\"ssh -i KEY\")"
                    .into()
            }
            _ => String::new(),
        }
    }
}

fn read_token(path: &std::path::Path) -> Result<String, FetchError> {
    let bytes = input_file::read_named(path)
        .map_err(|e| FetchError::Other(format!("cannot read the access token file {}: {e}", path.display())))?;
    let token = String::from_utf8(bytes)
        .map_err(|_| FetchError::Other(format!("the access token file {} is not UTF-8 text", path.display())))?;
    let token = token.trim();
    if token.is_empty() || token.contains(['\n', '\r']) {
        return Err(FetchError::Other(format!(
            "the access token file {} must hold the token on one line",
            path.display()
        )));
    }
    Ok(token.to_string())
}

fn read_cas(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, FetchError> {
    let unusable = |why: String| FetchError::Other(format!("cannot use the CA file {}: {why}", path.display()));
    let pem = input_file::read_named(path).map_err(|e| unusable(e.to_string()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(with_causes(&e)))?;
    if certificates.is_empty() {
        return Err(unusable("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// Whether listing the remote's refs failed because it refused access (rather than being out
/// of reach). gix's errors forward their causes transparently, so they are matched here.
fn refused_access(e: &gix::remote::fetch::prepare::Error) -> bool {
    use gix::protocol::handshake::Error as Handshake;
    use gix::protocol::transport::client::Error as Client;
    use gix::remote::fetch::prepare::Error as Prepare;
    use gix::remote::ref_map::Error as RefMap;
    let refused = |client: &Client| match client {
        Client::AuthenticationRefused(_) => true,
        Client::Io(io) => io.kind() == std::io::ErrorKind::PermissionDenied,
        _ => false,
    };
    match e {
        Prepare::RefMap(RefMap::Handshake(Handshake::EmptyCredentials | Handshake::InvalidCredentials { .. })) => true,
        Prepare::RefMap(RefMap::Handshake(Handshake::Transport(client)) | RefMap::Transport(client)) => refused(client),
        _ => false,
    }
}

type Connection<'a, 'repo> = gix::remote::Connection<'a, 'static, 'repo, Box<dyn Transport + Send>>;

/// Fetches the ref into `repo` and moves [`TRACKED_REF`]; returns the commit.
fn fetch_into(
    repo: &gix::Repository,
    remote: &Remote,
    access: &Access,
    line: Option<&Line>,
) -> Result<String, Failure> {
    let candidates = candidate_refs(&remote.reference);
    let git_remote = repo
        .remote_at(access.url.clone())
        .map_err(|e| Failure::Remote(FetchError::Other(format!("{}: {}", access.shown, with_causes(&e)))))?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(candidates.iter().map(|c| c.as_bytes().as_bstr()), Direction::Fetch)
        .map_err(|e| {
            Failure::Remote(FetchError::Other(format!("`{}` is not a valid ref name: {e}", remote.reference)))
        })?;
    let connection = connect(&git_remote, access)?.with_credentials(no_credentials);
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, gix::remote::ref_map::Options::default())
        .map_err(|e| access.unreachable(&e, refused_access(&e)))?;
    let Some((name, object)) = chosen(prepare.ref_map(), &candidates) else {
        return Err(Failure::Remote(FetchError::RefNotFound {
            url: access.shown.clone(),
            reference: remote.reference.clone(),
        }));
    };
    let progress = gix::progress::DoOrDiscard::from(line.map(|l| l.task("")));
    prepare.receive(progress, &AtomicBool::new(false)).map_err(|e| {
        // Spurious: the connection broke (reset, timed out, closed early), as gix classifies it.
        if e.is_spurious() { access.unreachable(&e, false) } else { Failure::Cache(with_causes(&e)) }
    })?;
    let commit = peel_to_commit(repo, object, &name, access)?;
    move_tracked_ref(repo, commit, &name, access)?;
    Ok(commit.to_string())
}

/// What CoreOps answers when a remote asks for credentials: nothing, so that nothing ever
/// prompts (the token is sent with every request already).
#[allow(clippy::result_large_err, reason = "gix's credential callback returns gix's error type")]
fn no_credentials(_: gix::credentials::helper::Action) -> gix::credentials::protocol::Result {
    Ok(None)
}

/// The connection to the remote: HTTP(S) through CoreOps's client, the rest through `gix`.
fn connect<'a, 'repo>(git_remote: &'a gix::Remote<'repo>, access: &Access) -> Result<Connection<'a, 'repo>, Failure> {
    if !access.http {
        return git_remote.connect(Direction::Fetch).map_err(|e| access.unreachable(&e, false));
    }
    let (url, version) =
        git_remote.sanitized_url_and_version(Direction::Fetch).map_err(|e| access.unreachable(&e, false))?;
    let client = http::Client::new(access.extra_cas.clone()).map_err(|e| Failure::Remote(FetchError::Other(e)))?;
    let mut transport =
        gix::protocol::transport::client::blocking_io::http::Transport::new_http(client, url, version, false);
    if let Some(identity) = access.identity() {
        transport.set_identity(identity).map_err(|e| access.unreachable(&e, false))?;
    }
    Ok(git_remote.to_connection_with_transport(Box::new(transport) as Box<dyn Transport + Send>))
}

/// The first candidate ref the remote has, with the object it points to.
fn chosen(ref_map: &gix::remote::fetch::RefMap, candidates: &[String]) -> Option<(String, gix::ObjectId)> {
    candidates.iter().find_map(|candidate| {
        ref_map.mappings.iter().find_map(|mapping| {
            let name: &BStr = mapping.remote.as_name()?;
            (name == candidate.as_bytes())
                .then(|| mapping.remote.as_id().map(|id| (candidate.clone(), id.to_owned())))?
        })
    })
}

/// The commit `object` (the ref `name`) is or peels to; a tag of a tree or blob is an error.
fn peel_to_commit(
    repo: &gix::Repository,
    object: gix::ObjectId,
    name: &str,
    access: &Access,
) -> Result<gix::ObjectId, Failure> {
    let missing = |e: &dyn std::error::Error| Failure::Cache(format!("{name} ({object}) is not in the cache: {e}"));
    let peeled = repo.find_object(object).map_err(|e| missing(&e))?.peel_tags_to_end().map_err(|e| missing(&e))?;
    if peeled.kind != gix::object::Kind::Commit {
        return Err(Failure::Remote(FetchError::Other(format!(
            "{name} of {} points to a {}, not a commit; CoreOps follows commits",
            access.shown, peeled.kind
        ))));
    }
    let commit = peeled.id;
    let tree = repo.find_commit(commit).map_err(|e| missing(&e))?.tree_id().map_err(|e| missing(&e))?;
    repo.find_header(tree)
        .map_err(|e| Failure::Cache(format!("the tree of commit {commit} is not in the cache: {e}")))?;
    Ok(commit)
}

/// Points [`TRACKED_REF`] at `commit`, unless it is there already.
fn move_tracked_ref(repo: &gix::Repository, commit: gix::ObjectId, name: &str, access: &Access) -> Result<(), Failure> {
    let current = repo.try_find_reference(TRACKED_REF).ok().flatten().and_then(|mut r| r.peel_to_id().ok());
    if current.is_some_and(|id| id.detach() == commit) {
        return Ok(());
    }
    let message = format!("core-ops: fetch {name} from {}", access.shown);
    repo.reference(TRACKED_REF, commit, gix::refs::transaction::PreviousValue::Any, message)
        .map_err(|e| Failure::Cache(format!("cannot write {TRACKED_REF}: {}", with_causes(&e))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_not_found_says_branch_or_tag_for_a_short_name() {
        let short = FetchError::RefNotFound { url: "file:///r".into(), reference: "mian".into() };
        assert_eq!(short.to_string(), "file:///r has no branch or tag `mian`; check the ref's name");
        let full = FetchError::RefNotFound { url: "file:///r".into(), reference: "refs/heads/x".into() };
        assert_eq!(full.to_string(), "file:///r has no ref `refs/heads/x`; check the ref's name");
    }

    #[test]
    fn the_token_and_the_url_password_are_scrubbed() {
        let remote = Remote { url: "https://me:pass@example.org/r.git".into(), ..Remote::default() };
        let mut access = Access::of(&remote).unwrap();
        assert_eq!(access.shown, "https://example.org/r.git");
        access.token = Some("s3cret".into());
        assert_eq!(access.scrub("a s3cret and pass".into()), "a *** and ***");
    }

    #[test]
    fn the_token_file_holds_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "abc\n").unwrap();
        assert_eq!(read_token(&file).unwrap(), "abc");
        std::fs::write(&file, "abc\ndef\n").unwrap();
        assert!(matches!(read_token(&file), Err(FetchError::Other(m)) if !m.contains("abc")));
        std::fs::write(&file, "\n").unwrap();
        assert!(read_token(&file).is_err());
    }
}
