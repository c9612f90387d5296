//! Signed commits against the real tools: keys made by `ssh-keygen`, commits signed by
//! `git commit -S` with `gpg.format=ssh`, and every verdict of `verify_commit` compared with
//! what `git verify-commit` answers with the same allowed-signers file (`gpg.ssh.allowedSignersFile`):
//! whether it accepts, the principal it names and the key fingerprint, which is also checked
//! against `ssh-keygen -l`. Errors in the allowed-signers file are located on the line where
//! `ssh-keygen` itself stops.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use core_ops::host::signature::{AllowedSigners, SignatureError, Signer, verify_commit};

/// The committer (and author) time of every commit: 2023-11-14T22:13:20Z.
const COMMIT_TIME: &str = "1700000000 +0000";

/// The committer of every commit.
const COMMITTER: &str = "alice@example.com";

/// A scratch directory with the tools' environment pinned: no user or system git configuration.
struct Lab {
    dir: tempfile::TempDir,
}

/// A key pair made by `ssh-keygen`.
struct Key {
    /// The private key file (`user.signingkey`).
    path: PathBuf,
    /// The public key line (`KEYTYPE BASE64 COMMENT`).
    public: String,
    /// The SHA256 fingerprint as `ssh-keygen -lf` prints it.
    fingerprint: String,
}

/// What `git verify-commit` said.
#[derive(Debug)]
struct GitVerdict {
    accepted: bool,
    /// From `Good "git" signature for PRINCIPAL with … key FINGERPRINT`.
    principal: Option<String>,
    fingerprint: Option<String>,
    stderr: String,
}

impl Lab {
    /// A lab, or `None` (the test skipped, loudly) when git or ssh-keygen is missing.
    fn new(test: &str) -> Option<Lab> {
        for (tool, probe) in [("git", "--version"), ("ssh-keygen", "-?")] {
            if Command::new(tool).arg(probe).output().is_err() {
                common::skip(test, &format!("{tool} is not installed"));
                return None;
            }
        }
        Some(Lab { dir: tempfile::tempdir().unwrap() })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new key of `kind` (`ed25519`, `rsa`, `ecdsa`) without a passphrase.
    fn key(&self, name: &str, kind: &str) -> Key {
        let path = self.path(name);
        run(Command::new("ssh-keygen").args(["-q", "-t", kind, "-N", "", "-C", name, "-f"]).arg(&path));
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string();
        // `256 SHA256:… name (ED25519)`: the second field.
        let listing = run(Command::new("ssh-keygen").arg("-lf").arg(path.with_extension("pub")));
        let fingerprint = listing.split_whitespace().nth(1).unwrap().to_string();
        assert!(fingerprint.starts_with("SHA256:"), "{listing}");
        Key { path, public, fingerprint }
    }

    /// A new repository (`sha1` or `sha256` objects).
    fn repo(&self, name: &str, object_format: &str) -> PathBuf {
        let repo = self.path(name);
        run(self.git(self.dir.path()).args(["init", "-q", "--object-format", object_format, name]));
        repo
    }

    /// git in `dir`, with a fixed identity and time, and no configuration from outside.
    fn git(&self, dir: &Path) -> Command {
        let mut git = Command::new("git");
        git.current_dir(dir)
            .args(["-c", "user.name=Alice", "-c", &format!("user.email={COMMITTER}"), "-c", "commit.gpgsign=false"])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", COMMIT_TIME)
            .env("GIT_COMMITTER_DATE", COMMIT_TIME)
            .env("HOME", self.dir.path())
            .env("TZ", "UTC");
        git
    }

    /// Commits (empty) to `repo`, signed with `key` over SSH when given; returns the commit id.
    fn commit(&self, repo: &Path, key: Option<&Key>, message: &str) -> String {
        let mut git = self.git(repo);
        if let Some(key) = key {
            git.args(["-c", "gpg.format=ssh", "-c"]).arg(format!("user.signingkey={}", key.path.display()));
        }
        git.args(["commit", "-q", "--allow-empty", "-m", message]);
        if key.is_some() {
            git.arg("-S");
        }
        run(&mut git);
        run(self.git(repo).args(["rev-parse", "HEAD"])).trim().to_string()
    }

    /// The raw commit object, as `git cat-file commit` prints it.
    fn raw(&self, repo: &Path, commit: &str) -> Vec<u8> {
        let out = self.git(repo).args(["cat-file", "commit", commit]).output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    /// Writes an allowed-signers file.
    fn allowed(&self, text: &str) -> PathBuf {
        let path = self.path("allowed_signers");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `git verify-commit` of `commit` with the allowed-signers file `allowed`.
    fn git_verdict(&self, repo: &Path, commit: &str, allowed: &Path) -> GitVerdict {
        let out = self
            .git(repo)
            .arg("-c")
            .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
            .args(["verify-commit", commit])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let good = stderr.lines().find_map(|l| l.strip_prefix("Good \"git\" signature for "));
        let principal = good.and_then(|rest| rest.split(" with ").next()).map(str::to_string);
        let fingerprint = good.and_then(|rest| rest.split_whitespace().last()).map(str::to_string);
        GitVerdict { accepted: out.status.success(), principal, fingerprint, stderr }
    }

    /// `verify_commit` and `git verify-commit` on `commit` with `allowed_text`, after checking
    /// that they agree: both accept (naming the same principal and key) or both refuse.
    fn both(&self, repo: &Path, commit: &str, allowed_text: &str) -> Result<Signer, SignatureError> {
        let file = self.allowed(allowed_text);
        let git = self.git_verdict(repo, commit, &file);
        let signers = AllowedSigners::parse("allowed_signers", allowed_text).expect("a valid file");
        let ours = verify_commit(commit, &self.raw(repo, commit), &signers);
        assert_eq!(ours.is_ok(), git.accepted, "with\n{allowed_text}\nours: {ours:?}\ngit said: {}", git.stderr);
        if let Ok(signer) = &ours {
            assert_eq!(Some(&signer.principal), git.principal.as_ref(), "{git:?}");
            assert_eq!(Some(&signer.key_fingerprint), git.fingerprint.as_ref(), "{git:?}");
        }
        ours
    }
}

/// Runs a command that must succeed; returns its standard output.
fn run(command: &mut Command) -> String {
    let out: Output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The key part of a public key line (`KEYTYPE BASE64`), without its comment.
fn key_part(key: &Key) -> String {
    key.public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn commits_signed_by_trusted_keys_of_each_type_are_accepted_as_git_accepts_them() {
    let Some(lab) = Lab::new("commits_signed_by_trusted_keys_of_each_type_are_accepted_as_git_accepts_them") else {
        return;
    };
    let repo = lab.repo("repo", "sha1");
    for kind in ["ed25519", "rsa", "ecdsa"] {
        let key = lab.key(&format!("{kind}-key"), kind);
        let commit = lab.commit(&repo, Some(&key), &format!("signed with {kind}"));
        let signer = lab.both(&repo, &commit, &format!("{COMMITTER} {}\n", key.public)).unwrap();
        assert_eq!(signer, Signer { principal: COMMITTER.into(), key_fingerprint: key.fingerprint.clone() });
    }
}

#[test]
fn trust_goes_by_key_not_by_the_committers_address() {
    let Some(lab) = Lab::new("trust_goes_by_key_not_by_the_committers_address") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let other = lab.key("other", "ed25519");
    let commit = lab.commit(&repo, Some(&key), "signed");
    let text =
        format!("# ops team\n\nbob@example.org {}\n\"*@ops.example.org,carol\" {}\n", other.public, key_part(&key));
    assert_eq!(lab.both(&repo, &commit, &text).unwrap().principal, "*@ops.example.org");
}

#[test]
fn a_commit_signed_by_an_untrusted_key_is_refused_as_git_refuses_it() {
    let Some(lab) = Lab::new("a_commit_signed_by_an_untrusted_key_is_refused_as_git_refuses_it") else { return };
    let repo = lab.repo("repo", "sha1");
    let (trusted, untrusted) = (lab.key("trusted", "ed25519"), lab.key("untrusted", "ed25519"));
    let commit = lab.commit(&repo, Some(&untrusted), "signed by a stranger");
    let verdict = lab.both(&repo, &commit, &format!("{COMMITTER} {}\n", trusted.public));
    assert_eq!(verdict, Err(SignatureError::Untrusted { commit, fingerprint: untrusted.fingerprint }));
}

#[test]
fn an_unsigned_commit_is_refused_as_git_refuses_it() {
    let Some(lab) = Lab::new("an_unsigned_commit_is_refused_as_git_refuses_it") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let commit = lab.commit(&repo, None, "not signed");
    let verdict = lab.both(&repo, &commit, &format!("{COMMITTER} {}\n", key.public));
    assert_eq!(verdict, Err(SignatureError::Unsigned { commit }));
}

#[test]
fn a_commit_changed_after_signing_is_invalid_as_git_finds_it() {
    let Some(lab) = Lab::new("a_commit_changed_after_signing_is_invalid_as_git_finds_it") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let signed = lab.commit(&repo, Some(&key), "deploy version 1");
    let allowed = format!("{COMMITTER} {}\n", key.public);
    assert!(lab.both(&repo, &signed, &allowed).is_ok());
    // One byte of the message changed, and the object stored by git under its new id.
    let mut raw = lab.raw(&repo, &signed);
    let at = raw.windows(9).position(|w| w == b"version 1").unwrap() + 8;
    raw[at] = b'2';
    let tampered_file = lab.path("tampered");
    std::fs::write(&tampered_file, &raw).unwrap();
    let tampered =
        run(lab.git(&repo).args(["hash-object", "-t", "commit", "-w"]).arg(&tampered_file)).trim().to_string();
    let verdict = lab.both(&repo, &tampered, &allowed);
    let Err(SignatureError::Invalid { commit, reason }) = verdict else { panic!("{verdict:?}") };
    assert_eq!(commit, tampered);
    assert!(reason.contains("changed after it was signed"), "{reason}");
}

#[test]
fn a_signature_made_for_another_namespace_is_invalid_as_git_finds_it() {
    let Some(lab) = Lab::new("a_signature_made_for_another_namespace_is_invalid_as_git_finds_it") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let unsigned = lab.commit(&repo, None, "signed for files");
    // The commit signed by ssh-keygen in the `file` namespace, the signature put where git puts
    // its own, and the object stored by git under its new id.
    let payload = lab.path("payload");
    std::fs::write(&payload, lab.raw(&repo, &unsigned)).unwrap();
    run(Command::new("ssh-keygen").args(["-q", "-Y", "sign", "-n", "file", "-f"]).arg(&key.path).arg(&payload));
    let signature = std::fs::read_to_string(payload.with_extension("sig")).unwrap();
    let header = format!("gpgsig {}\n", signature.trim_end().replace('\n', "\n "));
    let raw = String::from_utf8(lab.raw(&repo, &unsigned)).unwrap().replacen("\n\n", &format!("\n{header}\n"), 1);
    std::fs::write(&payload, raw).unwrap();
    let commit = run(lab.git(&repo).args(["hash-object", "-t", "commit", "-w"]).arg(&payload)).trim().to_string();
    let verdict = lab.both(&repo, &commit, &format!("{COMMITTER} {}\n", key.public));
    let Err(SignatureError::Invalid { reason, .. }) = verdict else { panic!("{verdict:?}") };
    assert!(reason.contains("namespace \"file\""), "{reason}");
}

#[test]
fn namespaces_and_validity_windows_are_honoured_as_git_honours_them() {
    let Some(lab) = Lab::new("namespaces_and_validity_windows_are_honoured_as_git_honours_them") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let commit = lab.commit(&repo, Some(&key), "signed");
    let line = |options: &str| format!("{COMMITTER} {options} {}\n", key.public);
    // (allowed-signers text, accepted): git's answer is checked too, by `both`.
    let cases = [
        (line("namespaces=\"file\""), false),
        (line("namespaces=\"file,git\""), true),
        (line("namespaces=\"!git,*\""), false),
        (line("valid-before=\"20200101Z\""), false),
        (line("valid-before=\"20991231Z\""), true),
        (line("valid-after=\"20240101Z\""), false),
        (line("valid-after=\"20230101Z\",valid-before=\"20231231Z\""), true),
        // The commit was made at 20231114221320Z: both bounds are inclusive.
        (line("valid-before=\"20231114221320Z\""), true),
        (line("valid-before=\"20231114221319Z\""), false),
        (line("valid-after=\"20231114221320Z\""), true),
        (line("valid-after=\"20231114221321Z\""), false),
        // The key listed twice: the first line valid at the commit's time decides the principal.
        (format!("old valid-before=\"20200101Z\" {}\n{}", key.public, line("")), true),
        (format!("old namespaces=\"file\" {}\n{}", key.public, line("")), false),
    ];
    for (text, accepted) in cases {
        let verdict = lab.both(&repo, &commit, &text);
        assert_eq!(verdict.is_ok(), accepted, "{text}: {verdict:?}");
        if !accepted {
            let untrusted = SignatureError::Untrusted { commit: commit.clone(), fingerprint: key.fingerprint.clone() };
            assert_eq!(verdict, Err(untrusted), "{text}");
        }
    }
}

#[test]
fn a_sha256_repository_keeps_the_signature_in_gpgsig_sha256() {
    let Some(lab) = Lab::new("a_sha256_repository_keeps_the_signature_in_gpgsig_sha256") else { return };
    let repo = lab.repo("repo", "sha256");
    let key = lab.key("key", "ed25519");
    let commit = lab.commit(&repo, Some(&key), "signed");
    assert_eq!(commit.len(), 64);
    assert!(lab.raw(&repo, &commit).windows(14).any(|w| w == b"gpgsig-sha256 "));
    let signer = lab.both(&repo, &commit, &format!("{COMMITTER} {}\n", key.public)).unwrap();
    assert_eq!(signer.key_fingerprint, key.fingerprint);
}

#[test]
fn a_pgp_signature_header_is_not_ssh() {
    let Some(lab) = Lab::new("a_pgp_signature_header_is_not_ssh") else { return };
    let repo = lab.repo("repo", "sha1");
    let key = lab.key("key", "ed25519");
    let commit = lab.commit(&repo, Some(&key), "signed");
    let raw = String::from_utf8(lab.raw(&repo, &commit)).unwrap();
    let pgp = raw.replace("-----BEGIN SSH SIGNATURE-----", "-----BEGIN PGP SIGNATURE-----");
    let signers = AllowedSigners::parse("allowed_signers", &format!("{COMMITTER} {}\n", key.public)).unwrap();
    assert_eq!(verify_commit(&commit, pgp.as_bytes(), &signers), Err(SignatureError::NotSsh { commit }));
}

#[test]
fn a_gpg_signed_commit_is_not_ssh() {
    const TEST: &str = "a_gpg_signed_commit_is_not_ssh";
    let Some(lab) = Lab::new(TEST) else { return };
    if Command::new("gpg").arg("--version").output().is_err() {
        common::skip(TEST, "gpg is not installed");
        return;
    }
    let gnupg_home = lab.path("gnupg");
    std::fs::create_dir(&gnupg_home).unwrap();
    std::fs::set_permissions(&gnupg_home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let _agent = GpgAgent(gnupg_home.clone());
    let gpg =
        |args: &[&str]| run(Command::new("gpg").env("GNUPGHOME", &gnupg_home).args(["--batch", "--quiet"]).args(args));
    gpg(&["--passphrase", "", "--quick-generate-key", "Alice <alice@example.com>", "ed25519", "sign", "never"]);
    let repo = lab.repo("repo", "sha1");
    run(lab.git(&repo).env("GNUPGHOME", &gnupg_home).args([
        "-c",
        "gpg.format=openpgp",
        "-c",
        "user.signingkey=alice@example.com",
        "commit",
        "-q",
        "-S",
        "--allow-empty",
        "-m",
        "signed with gpg",
    ]));
    let commit = run(lab.git(&repo).args(["rev-parse", "HEAD"])).trim().to_string();
    // git itself sees an OpenPGP signature: `%G?` is G (good) through gpg.
    let status = run(lab.git(&repo).env("GNUPGHOME", &gnupg_home).args(["log", "-1", "--format=%G?"]));
    assert_eq!(status.trim(), "G");
    let key = lab.key("key", "ed25519");
    let signers = AllowedSigners::parse("allowed_signers", &format!("{COMMITTER} {}\n", key.public)).unwrap();
    assert_eq!(verify_commit(&commit, &lab.raw(&repo, &commit), &signers), Err(SignatureError::NotSsh { commit }));
}

/// Stops the gpg-agent that gpg started for a test's GNUPGHOME.
struct GpgAgent(PathBuf);

impl Drop for GpgAgent {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", &self.0).args(["--kill", "gpg-agent"]).output();
    }
}

#[test]
fn bad_lines_are_located_where_ssh_keygen_stops() {
    let Some(lab) = Lab::new("bad_lines_are_located_where_ssh_keygen_stops") else { return };
    let (listed, signer) = (lab.key("listed", "ed25519"), lab.key("signer", "ed25519"));
    // A signature by a key the file does not list, so that ssh-keygen reads every line.
    let message = lab.path("message");
    std::fs::write(&message, "payload\n").unwrap();
    run(Command::new("ssh-keygen").args(["-q", "-Y", "sign", "-n", "git", "-f"]).arg(&signer.path).arg(&message));
    let key = key_part(&listed);
    for bad in [
        format!("a@b namespaces=git {key}"),
        format!("a@b unknown-option {key}"),
        format!("a@b namespaces=\"git\",namespaces=\"file\" {key}"),
        format!("a@b valid-before=\"20991231Z\", {key}"),
        format!("a@b valid-after=\"20240101Z\",valid-before=\"20230101Z\" {key}"),
        format!("a@b valid-before=\"yesterday\" {key}"),
        "a@b ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4A".to_string(),
        "a@b".to_string(),
    ] {
        let text = format!("# the team\n\nbob@example.com {key}\n{bad}\n");
        let file = lab.allowed(&text);
        let name = file.display().to_string();
        let out = Command::new("ssh-keygen")
            .args(["-Y", "find-principals", "-f"])
            .arg(&file)
            .arg("-s")
            .arg(message.with_extension("sig"))
            .output()
            .unwrap();
        let ssh_keygen = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(ssh_keygen.contains(&format!("{name}:4: ")), "ssh-keygen on {bad:?}: {ssh_keygen}");
        let errors = AllowedSigners::parse(&name, &text).expect_err(&bad);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(&format!("{name}:4: ")), "{bad:?}: {errors:?}");
    }
}
