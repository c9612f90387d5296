//! Real git remotes on 127.0.0.1 for the transport tests: an upstream repository made and
//! pushed to with the `git` CLI, and the servers in front of it (`git daemon`, `lighttpd` with
//! `git http-backend` over HTTP and HTTPS with a test CA and a basic-auth private repository,
//! and `sshd` with a deploy key). Each server runs on a free port and is killed when dropped.
//! Also what the tests look at in a cache: its pack files, their object counts, and the stamps
//! that show whether anything was written.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `git args` in `dir` with a fixed identity and no user or system configuration, and
/// returns its trimmed stdout; panics when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().expect("running git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 git output").trim().to_string()
}

/// `git args` in `dir` as [`git`] runs it, for callers that look at the status.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Admin")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Cy Committer")
        .env("GIT_COMMITTER_EMAIL", "cy@example.org")
        .env("GIT_TERMINAL_PROMPT", "0");
    command
}

/// Whether `program` (a name on `PATH`, or a path) can be started.
pub fn available(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A repository on the "server" side: bare repositories under `public/` and `private/`, and a
/// work tree that commits and pushes to one of them.
pub struct Upstream {
    pub base: tempfile::TempDir,
    /// The bare repository the servers export.
    pub bare: PathBuf,
    work: PathBuf,
    commits: u32,
}

impl Upstream {
    /// A fresh upstream `<base>/<area>/repo.git` with nothing in it.
    pub fn new(area: &str) -> Upstream {
        let base = tempfile::tempdir().unwrap();
        let bare = base.path().join(area).join("repo.git");
        fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "--initial-branch=main"]);
        let work = base.path().join("work");
        fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "--initial-branch=main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Upstream { base, bare, work, commits: 0 }
    }

    /// The work tree (for edits the helpers do not cover).
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Writes `files` (path, content; a `+x` suffix on the path makes it executable), removes
    /// `removed`, commits everything with `message`, and returns the commit id. Each commit is
    /// a day after the previous one; the committer's time (UTC+02:00) is an hour and a half
    /// after the author's (UTC-05:00).
    pub fn commit(&mut self, files: &[(&str, &str)], removed: &[&str], message: &str) -> String {
        for (path, content) in files {
            let (path, executable) = match path.strip_suffix("+x") {
                Some(path) => (path, true),
                None => (*path, false),
            };
            let full = self.work.join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(&full, content).unwrap();
            fs::set_permissions(&full, fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 })).unwrap();
        }
        for path in removed {
            git(&self.work, &["rm", "-q", path]);
        }
        self.commits += 1;
        git(&self.work, &["add", "-A"]);
        let out = git_command(&self.work, &["commit", "-q", "-m", message])
            .env("GIT_AUTHOR_DATE", format!("2024-05-{:02}T00:38:09-05:00", self.commits))
            .env("GIT_COMMITTER_DATE", format!("2024-05-{:02}T09:08:09+02:00", self.commits))
            .output()
            .unwrap();
        assert!(out.status.success(), "git commit: {}", String::from_utf8_lossy(&out.stderr));
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Pushes the work tree's `main` (forced) and its tags.
    pub fn push(&self) {
        git(&self.work, &["push", "-q", "--force", "--tags", "origin", "refs/heads/main:refs/heads/main"]);
    }

    /// What the bare repository says `rev` is.
    pub fn rev_parse(&self, rev: &str) -> String {
        git(&self.bare, &["rev-parse", rev])
    }

    /// Whether git says `base` is an ancestor of `tip` (or the same commit).
    pub fn is_ancestor(&self, base: &str, tip: &str) -> bool {
        let status = git_command(&self.bare, &["merge-base", "--is-ancestor", base, tip]).status().unwrap();
        match status.code() {
            Some(0) => true,
            Some(1) => false,
            other => panic!("git merge-base --is-ancestor: {other:?}"),
        }
    }
}

/// The cache's pack files.
pub fn packs(cache: &core_ops::host::git::Cache) -> BTreeSet<PathBuf> {
    match fs::read_dir(cache.dir().join("objects/pack")) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "pack")).collect()
        }
        Err(_) => BTreeSet::new(),
    }
}

/// Every path below `dir` with its modification time and inode: what a write would change.
pub fn stamps(dir: &Path) -> BTreeMap<PathBuf, (std::time::SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        out.insert(path.clone(), (meta.modified().unwrap(), meta.ino()));
        if meta.is_dir() {
            pending.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// How many objects `git show-index` lists in the index of `pack`.
pub fn objects_in(pack: &Path) -> usize {
    let index = fs::File::open(pack.with_extension("idx")).unwrap();
    let out = std::process::Command::new("git").arg("show-index").stdin(index).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().count()
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server process, killed and reaped when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    /// Where the server logs, for failure messages.
    pub log: PathBuf,
}

impl Server {
    /// Starts `command` (stderr and stdout to `log`) and waits until `port` accepts
    /// connections.
    fn start(mut command: Command, port: u16, log: PathBuf) -> Result<Server, String> {
        let file = fs::File::create(&log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file).stdin(Stdio::null());
        let child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let mut server = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{command:?} exited ({status}): {}", server.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("{command:?} did not listen on {port}: {}", server.log_text()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `git daemon` exporting every repository under `base_path`. The daemon program is started
/// itself (not through `git`, which would leave it running when killed).
pub fn git_daemon(base_path: &Path, log: PathBuf) -> Result<Server, String> {
    let port = free_port();
    let exec_path = git(base_path, &["--exec-path"]);
    let mut command = Command::new(Path::new(&exec_path).join("git-daemon"));
    command.args([
        "--reuseaddr",
        "--export-all",
        "--informative-errors",
        &format!("--base-path={}", base_path.display()),
        &format!("--port={port}"),
        "--listen=127.0.0.1",
    ]);
    Server::start(command, port, log)
}

/// The test CA and a certificate for 127.0.0.1 that it signed, made with `openssl`.
pub struct TestCa {
    /// The CA's certificate (PEM): what CoreOps is told to trust.
    pub ca_cert: PathBuf,
    /// The server's certificate and key (PEM).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn make(dir: &Path) -> Result<TestCa, String> {
        let path = |name: &str| dir.join(name);
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("openssl").args(args).current_dir(dir).output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
            }
        };
        let quick = ["-days", "2", "-sha256"];
        run(&[
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"][..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=CoreOps test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            &quick,
        ]
        .concat())?;
        run(&[
            &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"][..],
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ]
        .concat())?;
        fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"][..],
            &["-out", "server.pem", "-extfile", "server.ext"],
            &quick,
        ]
        .concat())?;
        Ok(TestCa { ca_cert: path("ca.pem"), server_cert: path("server.pem"), server_key: path("server.key") })
    }
}

/// The lighttpd binary.
pub const LIGHTTPD: &str = "/usr/sbin/lighttpd";

/// `lighttpd` running `git http-backend` (CGI): `/git/<repo>` serves the repositories under
/// `<base>/public` (and `/moved/<repo>` redirects there), `/private/<repo>` those under
/// `<base>/private` behind basic auth for `user`/`password`. With `tls`, it speaks HTTPS with
/// that certificate.
pub fn lighttpd(base: &Path, user: &str, password: &str, tls: Option<&TestCa>) -> Result<Server, String> {
    let port = free_port();
    let name = if tls.is_some() { "https" } else { "http" };
    let conf_dir = base.join(format!("lighttpd-{name}"));
    fs::create_dir_all(conf_dir.join("www")).unwrap();
    let users = conf_dir.join("users");
    fs::write(&users, format!("{user}:{password}\n")).unwrap();
    let exec_path = git(base, &["--exec-path"]);
    let backend = format!("{exec_path}/git-http-backend");
    let ssl = match tls {
        Some(ca) => format!(
            "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
            ca.server_cert.display(),
            ca.server_key.display()
        ),
        None => String::new(),
    };
    let conf = format!(
        r#"server.document-root = "{www}"
server.port = {port}
server.bind = "127.0.0.1"
server.errorlog = "{log}"
server.modules = ("mod_alias", "mod_setenv", "mod_redirect", "mod_auth", "mod_authn_file", "mod_cgi")
{ssl}alias.url = ("/git/" => "{backend}/", "/private/" => "{backend}/")
cgi.assign = ("" => "")
$HTTP["url"] =~ "^/git/" {{
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{public}", "GIT_HTTP_EXPORT_ALL" => "")
}}
$HTTP["url"] =~ "^/moved/" {{
  url.redirect = ("^/moved/(.*)$" => "/git/$1")
}}
$HTTP["url"] =~ "^/private/" {{
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{private}", "GIT_HTTP_EXPORT_ALL" => "")
  auth.backend = "plain"
  auth.backend.plain.userfile = "{users}"
  auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}}
"#,
        www = conf_dir.join("www").display(),
        log = conf_dir.join("error.log").display(),
        public = base.join("public").display(),
        private = base.join("private").display(),
        users = users.display(),
    );
    let conf_file = conf_dir.join("lighttpd.conf");
    fs::write(&conf_file, conf).unwrap();
    let mut command = Command::new(LIGHTTPD);
    command.arg("-D").arg("-f").arg(&conf_file);
    Server::start(command, port, conf_dir.join("stdout.log"))
}

/// The sshd binary.
pub const SSHD: &str = "/usr/sbin/sshd";

/// `sshd` on 127.0.0.1 that lets the current user in with a deploy key; and the ssh command
/// line that uses that key and trusts only that server's host key.
pub struct Ssh {
    pub server: Server,
    /// The user that logs in (the current one).
    pub user: String,
    /// `ssh -F /dev/null -i KEY -o UserKnownHostsFile=… …`: git's `core.sshCommand`.
    pub command: String,
}

/// Starts `sshd`, with a host key and an authorized deploy key made by `ssh-keygen` in `dir`.
pub fn sshd(dir: &Path) -> Result<Ssh, String> {
    let keygen = |file: &str| -> Result<(), String> {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "core-ops-test", "-f"])
            .arg(dir.join(file))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    };
    keygen("host_key")?;
    keygen("deploy_key")?;
    fs::copy(dir.join("deploy_key.pub"), dir.join("authorized_keys")).unwrap();
    // The privilege separation directory sshd insists on.
    fs::create_dir_all("/run/sshd").map_err(|e| format!("cannot create /run/sshd: {e}"))?;
    let port = free_port();
    let config = dir.join("sshd_config");
    fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\nPidFile none\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAcceptEnv GIT_PROTOCOL\nLogLevel VERBOSE\n",
            host_key = dir.join("host_key").display(),
            authorized = dir.join("authorized_keys").display(),
        ),
    )
    .unwrap();
    let mut command = Command::new(SSHD);
    command.arg("-D").arg("-e").arg("-f").arg(&config).arg("-p").arg(port.to_string());
    let server = Server::start(command, port, dir.join("sshd.log"))?;
    let host_key = fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let known_hosts = dir.join("known_hosts");
    fs::write(&known_hosts, format!("[127.0.0.1]:{port} {}\n", host_key.join(" "))).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let command = format!(
        "ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes \
         -o BatchMode=yes",
        key = dir.join("deploy_key").display(),
        known = known_hosts.display(),
    );
    Ok(Ssh { server, user, command })
}
