//! The tracked repository's cache against real remotes on 127.0.0.1: `file://`, a local path,
//! `git://` (`git daemon`), smart HTTP and HTTPS (`lighttpd` + `git http-backend`, a test CA,
//! a private repository behind basic auth) and ssh (`sshd` with a deploy key, `ssh://` and
//! scp-like). Every expectation comes from the `git` CLI: the commit `git rev-parse` names, the
//! files `git ls-tree` and `git cat-file` show, `git merge-base --is-ancestor`, `git log`.

mod common;
#[path = "common/git_server.rs"]
mod git_server;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use core_ops::host::git::{Cache, FetchError, Remote};
use git_server::{Upstream, git, git_command};

/// The source layout of the first commit, with names the layout skips (checked to be in the
/// commit, and never read) and an executable file.
const LAYOUT: &[(&str, &str)] = &[
    ("hosts/h/host.yaml", "host: h\nservices: [web]\n"),
    ("services/web/quadlet/web.container", "[Container]\nImage=docker.io/library/nginx:1.27\n"),
    ("services/web/config/site.conf", "listen 80;\n"),
    ("services/web/config/reload.sh+x", "#!/bin/sh\nexit 0\n"),
    (".github/ci.yml", "on: push\n"),
    ("_drafts/idea.txt", "later\n"),
    ("services/web/config/site.conf~", "listen 81;\n"),
];

/// The paths of [`LAYOUT`] that the layout skips.
const SKIPPED: &[&str] = &[".github/ci.yml", "_drafts/idea.txt", "services/web/config/site.conf~"];

fn remote(url: impl Into<String>, reference: &str) -> Remote {
    Remote { url: url.into(), reference: reference.into(), ..Remote::default() }
}

/// A cache where `init` puts it under a fresh root.
fn cache_in(root: &Path) -> Cache {
    Cache::at(root.join("var/lib/core-ops/repo.git"))
}

/// `git cat-file -p`'s raw bytes for `object` of the upstream.
fn object_bytes(upstream: &Upstream, kind: &str, object: &str) -> Vec<u8> {
    let out = git_command(&upstream.bare, &["cat-file", kind, object]).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// `read_tree` returns exactly the files `git ls-tree -r` lists (without the skipped names),
/// with the bytes `git cat-file blob` gives and the executable bit of mode 100755.
fn assert_tree_is_gits(cache: &Cache, upstream: &Upstream, commit: &str) {
    let listing = git(&upstream.bare, &["ls-tree", "-r", "--full-tree", commit]);
    let mut expected = BTreeMap::new();
    let mut listed = BTreeSet::new();
    for line in listing.lines() {
        let (meta, path) = line.split_once('\t').unwrap();
        let fields: Vec<&str> = meta.split(' ').collect();
        listed.insert(path.to_string());
        if !SKIPPED.contains(&path) {
            expected.insert(path.to_string(), (object_bytes(upstream, "blob", fields[2]), fields[0] == "100755"));
        }
    }
    for skipped in SKIPPED {
        assert!(listed.contains(*skipped), "the commit holds {skipped}, so skipping it is tested");
    }
    let tree = cache.read_tree(commit).unwrap_or_else(|issues| panic!("read_tree {commit}: {issues:?}"));
    let read: BTreeMap<String, (Vec<u8>, bool)> =
        tree.iter().map(|(path, file)| (path.to_string(), (file.bytes.clone(), file.executable))).collect();
    assert_eq!(read, expected);
    assert!(read.values().any(|(_, executable)| *executable), "an executable file is among them");
}

/// `commit_info` says what `git log` says, and `commit_object` is `git cat-file commit`.
fn assert_commit_record_is_gits(cache: &Cache, upstream: &Upstream, commit: &str) {
    let format = "--format=%H%n%s%n%an <%ae>%n%cd";
    let out = git_command(&upstream.bare, &["log", "-1", format, "--date=format-local:%Y-%m-%dT%H:%M:%SZ", commit])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let info = cache.commit_info(commit).unwrap();
    assert_eq!([info.id.as_str(), &info.summary, &info.author, &info.time], lines[..4]);
    assert_eq!(cache.commit_object(commit).unwrap(), object_bytes(upstream, "commit", commit));
}

/// The life of a cache against one remote: first fetch, nothing new, an incremental fetch, a
/// rewind, an annotated tag, an unknown ref. `remote`'s reference is replaced as needed.
fn follows_the_ref(upstream: &mut Upstream, remote: &Remote, cache: &Cache) {
    let main = Remote { reference: "main".into(), ..remote.clone() };
    let first = upstream.commit(LAYOUT, &[], "First layout: web\n\nwith nginx on port 80");
    git(upstream.work(), &["tag", "-a", "v1", "-m", "release 1"]);
    upstream.push();

    let fetched = cache.fetch(&main, false).unwrap_or_else(|e| panic!("first fetch of {}: {e}", main.url));
    assert_eq!(fetched.commit, upstream.rev_parse("main"));
    assert_eq!(fetched.warnings, Vec::<String>::new());
    assert_eq!(cache.tip().unwrap(), Some(first.clone()));
    assert_tree_is_gits(cache, upstream, &first);
    assert_commit_record_is_gits(cache, upstream, &first);

    let packs_first = git_server::packs(cache);
    let before = git_server::stamps(cache.dir());
    let again = cache.fetch(&main, false).unwrap();
    assert_eq!(again.commit, first);
    assert_eq!(git_server::stamps(cache.dir()), before, "nothing new: nothing written");

    let second = upstream.commit(
        &[("services/web/config/site.conf", "listen 8080;\n")],
        &[],
        "Listen on 8080\nfor the proxy\n\nThe proxy expects it.",
    );
    upstream.push();
    let fetched = cache.fetch(&main, false).unwrap();
    assert_eq!(fetched.commit, upstream.rev_parse("main"));
    let packs_second = git_server::packs(cache);
    assert!(packs_second.is_superset(&packs_first), "the first fetch's objects stay");
    let new: Vec<&PathBuf> = packs_second.difference(&packs_first).collect();
    assert_eq!(new.len(), 1, "one pack for the new commit");
    // A thin pack is completed with the delta bases it refers to, so it may hold a few objects
    // more than the new ones; a clone would hold every object of the commit.
    let new_objects = git(&upstream.bare, &["rev-list", "--objects", &format!("{first}..{second}")]).lines().count();
    let all_objects = git(&upstream.bare, &["rev-list", "--objects", &second]).lines().count();
    let received = git_server::objects_in(new[0]);
    assert!(
        new_objects <= received && received < all_objects,
        "the new pack holds {received} objects: at least the {new_objects} new ones, fewer than all {all_objects}"
    );
    assert_tree_is_gits(cache, upstream, &second);
    assert_commit_record_is_gits(cache, upstream, &second);
    assert_eq!(cache.descends_from(&second, &first).unwrap(), upstream.is_ancestor(&first, &second));
    assert_eq!(cache.descends_from(&first, &second).unwrap(), upstream.is_ancestor(&second, &first));
    assert!(cache.descends_from(&second, &second).unwrap());

    git(upstream.work(), &["reset", "-q", "--hard", &first]);
    let rewound = upstream.commit(&[("hosts/h/host.yaml", "host: h\nservices: []\n")], &[], "No services");
    upstream.push();
    let fetched = cache.fetch(&main, false).unwrap();
    assert_eq!(fetched.commit, rewound, "a force-pushed rewind is fetched; refusing it is the caller's call");
    assert_eq!(cache.descends_from(&rewound, &second).unwrap(), upstream.is_ancestor(&second, &rewound));
    assert_eq!(cache.descends_from(&rewound, &first).unwrap(), upstream.is_ancestor(&first, &rewound));

    let tag = Remote { reference: "v1".into(), ..remote.clone() };
    let fetched = cache.fetch(&tag, false).unwrap();
    assert_eq!(fetched.commit, upstream.rev_parse("v1^{commit}"), "an annotated tag peels to its commit");
    assert_ne!(fetched.commit, upstream.rev_parse("v1"), "v1 is an annotated tag object");
    assert_eq!(cache.tip().unwrap(), Some(first.clone()));

    let unknown = Remote { reference: "no-such-branch".into(), ..remote.clone() };
    match cache.fetch(&unknown, false) {
        Err(e @ FetchError::RefNotFound { .. }) => assert!(e.to_string().contains("no-such-branch"), "{e}"),
        other => panic!("an unknown ref: {other:?}"),
    }
    assert_eq!(cache.tip().unwrap(), Some(first), "a failed fetch leaves the tip");
}

#[test]
fn file_url() {
    let mut upstream = Upstream::new("public");
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}", upstream.bare.display());
    follows_the_ref(&mut upstream, &remote(url, "main"), &cache_in(root.path()));
}

#[test]
fn local_path() {
    let mut upstream = Upstream::new("public");
    let root = tempfile::tempdir().unwrap();
    let url = upstream.bare.display().to_string();
    follows_the_ref(&mut upstream, &remote(url, "main"), &cache_in(root.path()));
}

#[test]
fn git_daemon() {
    let mut upstream = Upstream::new("public");
    let daemon =
        match git_server::git_daemon(&upstream.base.path().join("public"), upstream.base.path().join("daemon.log")) {
            Ok(daemon) => daemon,
            Err(e) => return common::skip("git_daemon", &format!("git daemon does not start: {e}")),
        };
    let root = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    follows_the_ref(&mut upstream, &remote(url, "main"), &cache_in(root.path()));
}

/// `lighttpd` in front of `git http-backend` for `upstream`, or why it cannot run.
fn web_server(upstream: &Upstream, tls: Option<&git_server::TestCa>) -> Result<git_server::Server, String> {
    if !Path::new(git_server::LIGHTTPD).exists() {
        return Err(format!("{} is not installed (Debian package lighttpd)", git_server::LIGHTTPD));
    }
    git_server::lighttpd(upstream.base.path(), "deploy", TOKEN, tls)
}

/// A test CA made with `openssl`, and `lighttpd` serving HTTPS with a certificate it signed.
fn tls_server(upstream: &Upstream) -> Result<(git_server::TestCa, git_server::Server), String> {
    if !git_server::available("openssl") {
        return Err("openssl is not installed (Debian package openssl)".into());
    }
    let ca = git_server::TestCa::make(upstream.base.path())?;
    let server = web_server(upstream, Some(&ca))?;
    Ok((ca, server))
}

/// The access token of the private repository.
const TOKEN: &str = "glpat-7Hq2VxTokenForTests";

#[test]
fn smart_http() {
    let mut upstream = Upstream::new("public");
    let server = match web_server(&upstream, None) {
        Ok(server) => server,
        Err(e) => return common::skip("smart_http", &e),
    };
    let root = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/git/repo.git", server.port);
    follows_the_ref(&mut upstream, &remote(url, "main"), &cache_in(root.path()));

    let moved = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/moved/repo.git", server.port);
    let fetched = cache_in(moved.path()).fetch(&remote(url, "main"), false).unwrap();
    assert_eq!(fetched.commit, upstream.rev_parse("main"), "a redirect is followed");
}

#[test]
fn https_with_a_private_ca() {
    let mut upstream = Upstream::new("public");
    let (ca, server) = match tls_server(&upstream) {
        Ok(both) => both,
        Err(e) => return common::skip("https_with_a_private_ca", &e),
    };
    let root = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{}/git/repo.git", server.port);

    let untrusted = cache_in(root.path()).fetch(&remote(&url, "main"), false);
    match untrusted {
        Err(FetchError::Unreachable(m)) => assert!(m.contains("certificate") && m.contains("CA file"), "{m}"),
        other => panic!("without the CA: {other:?}"),
    }
    let trusted = Remote { ca_file: Some(ca.ca_cert.clone()), ..remote(&url, "main") };
    follows_the_ref(&mut upstream, &trusted, &cache_in(root.path()));
}

#[test]
fn https_private_repository_with_an_access_token() {
    let mut upstream = Upstream::new("private");
    let (ca, server) = match tls_server(&upstream) {
        Ok(both) => both,
        Err(e) => return common::skip("https_private_repository_with_an_access_token", &e),
    };
    upstream.commit(LAYOUT, &[], "First");
    upstream.push();
    let root = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let url = format!("https://deploy@127.0.0.1:{}/private/repo.git", server.port);
    let anonymous = Remote { ca_file: Some(ca.ca_cert.clone()), ..remote(&url, "main") };

    match cache_in(root.path()).fetch(&anonymous, false) {
        Err(FetchError::Unreachable(m)) => assert!(m.contains("needs credentials"), "{m}"),
        other => panic!("without a token: {other:?}"),
    }
    let wrong_token = secrets.path().join("wrong");
    fs::write(&wrong_token, "not-the-token-9f8e7d\n").unwrap();
    let wrong = Remote { access_token_file: Some(wrong_token.clone()), ..anonymous.clone() };
    match cache_in(root.path()).fetch(&wrong, false) {
        Err(FetchError::Unreachable(m)) => {
            assert!(m.contains("refused the access token") && m.contains(&wrong_token.display().to_string()), "{m}");
            assert!(!m.contains("not-the-token-9f8e7d"), "the token is never shown: {m}");
        }
        other => panic!("with a wrong token: {other:?}"),
    }
    assert_eq!(cache_in(root.path()).tip().unwrap(), None, "a failed first fetch leaves no cache");

    let token_file = secrets.path().join("token");
    fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let private = Remote { access_token_file: Some(token_file), ..anonymous };
    let fetched = cache_in(root.path()).fetch(&private, false).unwrap();
    assert_eq!(fetched.commit, upstream.rev_parse("main"));
    assert_eq!(fetched.warnings, Vec::<String>::new());
    drop(server);
}

/// `sshd` letting the current user in with a deploy key, or why it cannot run.
fn ssh_server(upstream: &Upstream) -> Result<git_server::Ssh, String> {
    if !Path::new(git_server::SSHD).exists() {
        return Err(format!("{} is not installed (Debian package openssh-server)", git_server::SSHD));
    }
    if !common::is_root() {
        return Err("sshd needs root for its privilege separation".into());
    }
    if !git_server::available("ssh-keygen") || !git_server::available("ssh") {
        return Err("ssh and ssh-keygen are not installed (Debian package openssh-client)".into());
    }
    let dir = upstream.base.path().join("ssh");
    fs::create_dir(&dir).unwrap();
    git_server::sshd(&dir)
}

#[test]
fn ssh_url_with_a_deploy_key() {
    let mut upstream = Upstream::new("public");
    let ssh = match ssh_server(&upstream) {
        Ok(ssh) => ssh,
        Err(e) => return common::skip("ssh_url_with_a_deploy_key", &e),
    };
    let root = tempfile::tempdir().unwrap();
    let url = format!("ssh://{}@127.0.0.1:{}{}", ssh.user, ssh.server.port, upstream.bare.display());
    let cache = cache_in(root.path()).with_git_config([format!("core.sshCommand={}", ssh.command)]);
    follows_the_ref(&mut upstream, &remote(&url, "main"), &cache);

    let other_key = upstream.base.path().join("ssh/other_key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let unauthorized = ssh
        .command
        .replace(&upstream.base.path().join("ssh/deploy_key").display().to_string(), &other_key.display().to_string());
    let refused = tempfile::tempdir().unwrap();
    let cache = cache_in(refused.path()).with_git_config([format!("core.sshCommand={unauthorized}")]);
    match cache.fetch(&remote(&url, "main"), false) {
        Err(FetchError::Unreachable(m)) => assert!(m.contains("access refused") && m.contains("deploy key"), "{m}"),
        other => panic!("with a key the server does not know: {other:?}\n{}", ssh.server.log_text()),
    }
}

#[test]
fn scp_like_address_with_a_deploy_key() {
    let mut upstream = Upstream::new("public");
    let ssh = match ssh_server(&upstream) {
        Ok(ssh) => ssh,
        Err(e) => return common::skip("scp_like_address_with_a_deploy_key", &e),
    };
    let root = tempfile::tempdir().unwrap();
    // An scp-like address has no port: ssh takes it from its options.
    let url = format!("{}@127.0.0.1:{}", ssh.user, upstream.bare.display());
    let command = format!("{} -o Port={}", ssh.command, ssh.server.port);
    let cache = cache_in(root.path()).with_git_config([format!("core.sshCommand={command}")]);
    follows_the_ref(&mut upstream, &remote(&url, "main"), &cache);
}

/// A file:// upstream with the layout committed and pushed, and a cache that fetched it.
fn fetched_cache() -> (Upstream, Remote, tempfile::TempDir, Cache, String) {
    let mut upstream = Upstream::new("public");
    let commit = upstream.commit(LAYOUT, &[], "First");
    upstream.push();
    let remote = remote(format!("file://{}", upstream.bare.display()), "main");
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    assert_eq!(cache.fetch(&remote, false).unwrap().commit, commit);
    (upstream, remote, root, cache, commit)
}

#[test]
fn a_corrupt_cache_is_rebuilt_with_a_warning() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 5] = [
        ("objects deleted", |dir| {
            fs::remove_dir_all(dir.join("objects/pack")).unwrap();
            fs::create_dir(dir.join("objects/pack")).unwrap();
        }),
        ("garbage HEAD", |dir| fs::write(dir.join("HEAD"), "\0\0garbage").unwrap()),
        ("garbage config", |dir| fs::write(dir.join("config"), "[core\nbare = maybe\n").unwrap()),
        ("not a repository", |dir| {
            fs::remove_dir_all(dir).unwrap();
            fs::create_dir(dir).unwrap();
            fs::write(dir.join("notes.txt"), "hello").unwrap();
        }),
        ("a file in its place", |dir| {
            fs::remove_dir_all(dir).unwrap();
            fs::write(dir, "not a directory").unwrap();
        }),
    ];
    for (damage, apply) in damages {
        let (upstream, remote, _root, cache, commit) = fetched_cache();
        apply(cache.dir());
        let fetched = cache.fetch(&remote, false).unwrap_or_else(|e| panic!("{damage}: {e}"));
        assert_eq!(fetched.commit, commit, "{damage}");
        assert_eq!(fetched.warnings.len(), 1, "{damage}: {:?}", fetched.warnings);
        let warning = &fetched.warnings[0];
        assert!(warning.contains("was corrupt") && warning.contains("rebuilt it from file://"), "{damage}: {warning}");
        assert_eq!(cache.tip().unwrap(), Some(commit.clone()), "{damage}");
        assert_tree_is_gits(&cache, &upstream, &commit);
        assert_eq!(cache.fetch(&remote, false).unwrap().warnings, Vec::<String>::new(), "{damage}: repaired");
    }
}

#[test]
fn a_cache_that_fails_the_fetch_is_rebuilt_with_a_warning() {
    let (mut upstream, remote, _root, cache, _) = fetched_cache();
    // The tracked ref cannot be written where a folder of refs stands.
    fs::remove_file(cache.dir().join("refs/core-ops/tracked")).unwrap();
    fs::create_dir(cache.dir().join("refs/core-ops/tracked")).unwrap();
    fs::write(cache.dir().join("refs/core-ops/tracked/stray"), "0000000000000000000000000000000000000000\n").unwrap();
    let second = upstream.commit(&[("services/web/config/site.conf", "listen 8080;\n")], &[], "Second");
    upstream.push();
    let fetched = cache.fetch(&remote, false).unwrap();
    assert_eq!(fetched.commit, second);
    assert_eq!(fetched.warnings.len(), 1, "{:?}", fetched.warnings);
    assert!(fetched.warnings[0].starts_with("fetching into the cache at "), "{}", fetched.warnings[0]);
    assert_eq!(cache.tip().unwrap(), Some(second));
}

#[test]
fn a_corrupt_cache_stays_when_the_remote_is_unreachable() {
    let (_upstream, _remote, _root, cache, _commit) = fetched_cache();
    fs::write(cache.dir().join("HEAD"), "garbage").unwrap();
    let gone = remote(format!("git://127.0.0.1:{}/repo.git", git_server::free_port()), "main");
    assert!(matches!(cache.fetch(&gone, false), Err(FetchError::Unreachable(_))), "one try, no loop");
    assert_eq!(fs::read_to_string(cache.dir().join("HEAD")).unwrap(), "garbage", "nothing was replaced");
    let siblings: Vec<_> =
        fs::read_dir(cache.dir().parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, ["repo.git"], "no build left behind");
}

#[test]
fn a_missing_cache_is_fetched_without_a_warning_and_a_symlinked_one_is_refused() {
    let (_upstream, remote, root, cache, commit) = fetched_cache();
    cache.remove().unwrap();
    assert!(!cache.dir().exists());
    assert_eq!(cache.tip().unwrap(), None);
    let fetched = cache.fetch(&remote, false).unwrap();
    assert_eq!((fetched.commit.as_str(), fetched.warnings.len()), (commit.as_str(), 0));

    let real = root.path().join("elsewhere.git");
    fs::rename(cache.dir(), &real).unwrap();
    std::os::unix::fs::symlink(&real, cache.dir()).unwrap();
    match cache.fetch(&remote, false) {
        Err(FetchError::Other(m)) => assert!(m.contains("is a symlink"), "{m}"),
        other => panic!("a symlinked cache: {other:?}"),
    }
    assert!(cache.tip().unwrap_err().to_string().contains("is a symlink"));
    assert!(cache.read_tree(&commit).is_err());
    assert!(real.join("HEAD").is_file(), "the link's target is untouched");
}

#[test]
fn an_unreachable_remote_is_unreachable_on_every_transport() {
    let port = git_server::free_port();
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nowhere.git");
    let urls = [
        format!("http://deploy:hunter2-in-the-url@127.0.0.1:{port}/git/repo.git"),
        format!("https://127.0.0.1:{port}/git/repo.git"),
        format!("git://127.0.0.1:{port}/repo.git"),
        format!("ssh://root@127.0.0.1:{port}/srv/repo.git"),
        format!("file://{}", missing.display()),
        missing.display().to_string(),
    ];
    for url in urls {
        let cache = cache_in(root.path()).with_git_config(["core.sshCommand=ssh -F /dev/null -o BatchMode=yes"]);
        match cache.fetch(&remote(&url, "main"), false) {
            Err(FetchError::Unreachable(m)) => {
                assert!(m.starts_with("cannot fetch from "), "{url}: {m}");
                assert!(!m.contains("hunter2"), "a password in the URL is never shown: {m}");
            }
            other => panic!("{url}: {other:?}"),
        }
        assert!(!cache.dir().exists(), "{url}: no cache is left by a failed first fetch");
    }
}

#[test]
fn a_plain_http_remote_never_gets_the_token() {
    let upstream = Upstream::new("public");
    let server = match web_server(&upstream, None) {
        Ok(server) => server,
        Err(e) => return common::skip("a_plain_http_remote_never_gets_the_token", &e),
    };
    let token = upstream.base.path().join("token");
    fs::write(&token, TOKEN).unwrap();
    let root = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/git/repo.git", server.port);
    let with_token = Remote { access_token_file: Some(token), ..remote(url, "main") };
    match cache_in(root.path()).fetch(&with_token, false) {
        Err(FetchError::Unreachable(m)) => {
            assert!(m.contains("only sent over https"), "{m}");
            assert!(!m.contains(TOKEN));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_ref_to_a_tree_is_refused_and_progress_can_be_drawn() {
    let mut upstream = Upstream::new("public");
    upstream.commit(LAYOUT, &[], "First");
    git(upstream.work(), &["tag", "-a", "tree-tag", "-m", "a tree", "HEAD^{tree}"]);
    upstream.push();
    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    let url = format!("file://{}", upstream.bare.display());
    match cache.fetch(&remote(&url, "tree-tag"), true) {
        Err(FetchError::Other(m)) => assert!(m.contains("refs/tags/tree-tag") && m.contains("not a commit"), "{m}"),
        other => panic!("{other:?}"),
    }
    let fetched = cache.fetch(&remote(&url, "refs/heads/main"), true).unwrap();
    assert_eq!(fetched.commit, upstream.rev_parse("main"));
}

#[test]
fn a_branch_wins_over_a_tag_of_the_same_name() {
    let mut upstream = Upstream::new("public");
    let tagged = upstream.commit(LAYOUT, &[], "First");
    git(upstream.work(), &["tag", "main"]);
    let branch = upstream.commit(&[("hosts/h/host.yaml", "host: h\nservices: []\n")], &[], "Second");
    upstream.push();
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}", upstream.bare.display());
    assert_eq!(upstream.rev_parse("refs/tags/main"), tagged);
    assert_eq!(cache_in(root.path()).fetch(&remote(&url, "main"), false).unwrap().commit, branch);
    assert_eq!(cache_in(root.path()).fetch(&remote(&url, "refs/tags/main"), false).unwrap().commit, tagged);
}

#[test]
fn symlinks_submodules_and_oversized_files_in_a_commit_are_located_errors() {
    let mut upstream = Upstream::new("public");
    let pinned = upstream.commit(LAYOUT, &[], "First");
    let work = upstream.work().to_path_buf();
    std::os::unix::fs::symlink("/etc/passwd", work.join("services/web/config/passwd")).unwrap();
    git(&work, &["update-index", "--add", "--cacheinfo", &format!("160000,{pinned},services/web/config/vendor")]);
    let big = fs::File::create(work.join("services/web/config/big.bin")).unwrap();
    big.set_len(64 * 1024 * 1024 + 1).unwrap();
    git(&work, &["add", "services/web/config/passwd", "services/web/config/big.bin"]);
    git(&work, &["commit", "-q", "-m", "Bad entries"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    upstream.push();
    let listing = git(&upstream.bare, &["ls-tree", "-r", &commit]);
    assert!(listing.contains("120000 blob") && listing.contains("160000 commit"), "{listing}");

    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    cache.fetch(&remote(format!("file://{}", upstream.bare.display()), "main"), false).unwrap();
    let issues = cache.read_tree(&commit).expect_err("bad entries are errors");
    let mut located: Vec<(String, String)> = issues.iter().map(|i| (i.file.clone(), i.message.clone())).collect();
    located.sort();
    assert_eq!(
        located,
        [
            ("services/web/config/big.bin".to_string(), "larger than the 64 MiB cap on one input file".to_string()),
            (
                "services/web/config/passwd".to_string(),
                "symlinks are not allowed in a source repository; commit the file itself".to_string()
            ),
            (
                "services/web/config/vendor".to_string(),
                "submodules are not allowed in a source repository; commit the files themselves in this repository"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn folders_nested_deeper_than_64_levels_are_a_located_error_not_a_crash() {
    let mut upstream = Upstream::new("public");
    upstream.commit(LAYOUT, &[], "First");
    let work = upstream.work().to_path_buf();
    // 65 folders below services/web/config: the file's folder is 68 levels down.
    let deep: Vec<String> = (0..65).map(|i| format!("d{i}")).collect();
    let dir = work.join("services/web/config").join(deep.join("/"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), "x").unwrap();
    git(&work, &["add", "services"]);
    git(&work, &["commit", "-q", "-m", "Deep"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    upstream.push();

    let root = tempfile::tempdir().unwrap();
    let cache = cache_in(root.path());
    cache.fetch(&remote(format!("file://{}", upstream.bare.display()), "main"), false).unwrap();
    let issues = cache.read_tree(&commit).expect_err("too deep");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].message.contains("nest deeper than 64 levels"), "{issues:?}");
    assert_eq!(issues[0].file.split('/').count(), 65, "located at the first folder too deep: {}", issues[0].file);
}

/// The variables through which [`ssh_command_from_the_environment`] tells its child process
/// what to fetch.
const CHILD_URL: &str = "CORE_OPS_TEST_SSH_URL";
const CHILD_CACHE: &str = "CORE_OPS_TEST_SSH_CACHE";
const CHILD_COMMIT: &str = "CORE_OPS_TEST_SSH_COMMIT";

#[test]
fn ssh_command_from_the_environment() {
    // An operator points CoreOps at a deploy key with GIT_SSH_COMMAND in the service's
    // environment. The environment is the process's, so the fetch runs in a child process: this
    // test binary running `fetch_with_git_ssh_command_from_the_environment`.
    let mut upstream = Upstream::new("public");
    let ssh = match ssh_server(&upstream) {
        Ok(ssh) => ssh,
        Err(e) => return common::skip("ssh_command_from_the_environment", &e),
    };
    let commit = upstream.commit(LAYOUT, &[], "First");
    upstream.push();
    let root = tempfile::tempdir().unwrap();
    let url = format!("ssh://{}@127.0.0.1:{}{}", ssh.user, ssh.server.port, upstream.bare.display());
    let child = |ssh_command: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fetch_with_git_ssh_command_from_the_environment", "--ignored", "--nocapture"])
            .env("GIT_SSH_COMMAND", ssh_command)
            .env(CHILD_URL, &url)
            .env(CHILD_CACHE, cache_in(root.path()).dir())
            .env(CHILD_COMMIT, &commit)
            .output()
            .unwrap()
    };
    let out = child(&ssh.command);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}\n{}", ssh.server.log_text());
    assert_eq!(cache_in(root.path()).tip().unwrap(), Some(commit.clone()));

    let without_key = child(
        "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
    );
    assert!(!without_key.status.success(), "without the key the fetch fails, so the variable mattered");
}

#[test]
#[ignore = "run by ssh_command_from_the_environment in a child process, with GIT_SSH_COMMAND set"]
fn fetch_with_git_ssh_command_from_the_environment() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset: run ssh_command_from_the_environment"))
    };
    let cache = Cache::at(PathBuf::from(var(CHILD_CACHE)));
    let fetched = cache.fetch(&remote(var(CHILD_URL), "main"), false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fetched.commit, var(CHILD_COMMIT));
}
