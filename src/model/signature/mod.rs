//! Signed commits: whether a commit carries a valid SSH signature from a trusted key.
//!
//! A commit made with `git commit -S` and `gpg.format=ssh` holds an SSH signature
//! (OpenSSH's `sshsig` format, namespace `git`) over the commit object without its signature
//! header. [`verify_commit`] checks it the way `git verify-commit` does with
//! `gpg.ssh.allowedSignersFile` set, and answers in this order:
//!
//! | the commit                                                          | verdict        |
//! |---------------------------------------------------------------------|----------------|
//! | has no signature header                                             | [`Unsigned`]   |
//! | has an OpenPGP or X.509 signature                                   | [`NotSsh`]     |
//! | has a malformed SSH signature, or one made for another namespace    | [`Invalid`]    |
//! | has an SSH signature that does not match it (changed after signing) | [`Invalid`]    |
//! | is validly signed by a key the allowed-signers file does not trust  | [`Untrusted`]  |
//! | is validly signed by a trusted key                                  | the [`Signer`] |
//!
//! [`Unsigned`]: SignatureError::Unsigned
//! [`NotSsh`]: SignatureError::NotSsh
//! [`Invalid`]: SignatureError::Invalid
//! [`Untrusted`]: SignatureError::Untrusted
//!
//! A key is trusted when a line lists it for the `git` namespace, valid at the commit's
//! committer time. As in git, trust goes by key: a line listing the signing key counts whatever its principals,
//! which are not compared with the commit's author or committer; the principal reported is the
//! one `git verify-commit` names (the rules, and the file's format, are in [`allowed_signers`]).
//!
//! Pure: the commit object and the file's text come in as bytes; no clock is read (validity
//! windows are compared with the commit's committer time, as git does).

pub mod allowed_signers;
mod commit;

use ssh_key::{Algorithm, HashAlg, PublicKey, SshSig};

pub use allowed_signers::{AllowedSigners, GIT_NAMESPACE};

/// How an SSH signature begins.
const SSH_ARMOR: &[u8] = b"-----BEGIN SSH SIGNATURE-----";

/// How the signatures that git makes with other tools (`gpg.format` openpgp, x509) begin.
const OTHER_ARMORS: [&[u8]; 3] =
    [b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN SIGNED MESSAGE-----"];

/// Who signed a trusted commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The principal git names for the signature: one of the principals of the first line of
    /// the allowed-signers file that lists the key (`alice@example.com`).
    pub principal: String,
    /// The signing key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub key_fingerprint: String,
}

/// Why a commit is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The commit carries no signature.
    #[error(
        "commit {commit} is not signed; the tracked repository only accepts commits signed with an SSH key \
         listed in the allowed-signers file: sign it (git -c gpg.format=ssh -c user.signingkey=KEY commit -S) \
         and push again"
    )]
    Unsigned {
        /// The commit.
        commit: String,
    },
    /// The commit is signed, but not with SSH (an OpenPGP or X.509 signature).
    #[error(
        "commit {commit} carries an OpenPGP or X.509 signature, not an SSH one; only SSH signatures are \
         checked: sign it with an SSH key listed in the allowed-signers file (git config gpg.format ssh) \
         and push again"
    )]
    NotSsh {
        /// The commit.
        commit: String,
    },
    /// The signature is malformed or does not verify.
    #[error(
        "commit {commit} has an invalid SSH signature: {reason}; re-sign it (git commit --amend -S) and push \
         again"
    )]
    Invalid {
        /// The commit.
        commit: String,
        /// What is wrong with the signature.
        reason: String,
    },
    /// A valid signature by a key the allowed-signers file does not trust for this commit.
    #[error(
        "commit {commit} is signed by the SSH key {fingerprint}, which the allowed-signers file does not \
         trust for git commits: the key is not listed, or its line limits it with namespaces= or with \
         valid-after=/valid-before= (compared with the commit's committer time); add the key to the file, \
         or sign the commit with a listed key"
    )]
    Untrusted {
        /// The commit.
        commit: String,
        /// The signing key's fingerprint (`SHA256:…`).
        fingerprint: String,
    },
}

/// Checks that `raw_commit`, the raw object of commit `commit_id` (hex; as
/// `git cat-file commit` prints it), carries a valid SSH signature by a key that `allowed`
/// trusts for git commits at the commit's committer time.
pub fn verify_commit(commit_id: &str, raw_commit: &[u8], allowed: &AllowedSigners) -> Result<Signer, SignatureError> {
    let commit = || commit_id.to_string();
    let invalid = |reason: &str| SignatureError::Invalid { commit: commit(), reason: reason.to_string() };
    let split = commit::split(raw_commit, commit::signature_header(commit_id));
    let Some(armored) = split.signature else {
        return Err(SignatureError::Unsigned { commit: commit() });
    };
    if OTHER_ARMORS.iter().any(|armor| armored.starts_with(armor)) {
        return Err(SignatureError::NotSsh { commit: commit() });
    }
    if !armored.starts_with(SSH_ARMOR) {
        return Err(invalid("the signature header holds no signature that git knows"));
    }
    let signature =
        SshSig::from_pem(&armored).map_err(|e| invalid(&format!("the SSH signature is malformed ({e})")))?;
    let key = PublicKey::new(signature.public_key().clone(), "");
    check_signature(&key, &signature, &split.payload).map_err(|reason| invalid(&reason))?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    match allowed.trusted_principal(key.key_data(), split.committer_time) {
        Some(principal) => Ok(Signer { principal: principal.to_string(), key_fingerprint: fingerprint }),
        None => Err(SignatureError::Untrusted { commit: commit(), fingerprint }),
    }
}

/// Checks that `signature`, made by `key`, signs `payload` in the `git` namespace.
fn check_signature(key: &PublicKey, signature: &SshSig, payload: &[u8]) -> Result<(), String> {
    if signature.namespace() != GIT_NAMESPACE {
        return Err(format!(
            "it was made for the namespace \"{}\", not \"{GIT_NAMESPACE}\"",
            crate::model::path::printable(signature.namespace())
        ));
    }
    // ssh-keygen refuses RSA signatures over SHA-1 (the `ssh-rsa` signature algorithm).
    if signature.algorithm() == (Algorithm::Rsa { hash: None }) {
        return Err("it is an RSA signature over SHA-1, which OpenSSH no longer accepts".to_string());
    }
    key.verify(GIT_NAMESPACE, payload, signature).map_err(|e| match e {
        ssh_key::Error::AlgorithmUnsupported { algorithm } => {
            format!("{algorithm} signatures cannot be checked; sign with an ed25519, RSA or ECDSA key")
        }
        _ => "it does not match the commit, which was changed after it was signed".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit signed by `git commit -S` with gpg.format=ssh and [`KEY`] (git 2.47); `git
    /// verify-commit` accepts it with [`KEY`] in the allowed-signers file.
    const COMMIT: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904
author Alice <alice@example.com> 1700000000 +0000
committer Alice <alice@example.com> 1700000000 +0000
gpgsig -----BEGIN SSH SIGNATURE-----
 U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgNhACOrfZv4P/PISwcekBbH/FMS
 PYp8zue9GIgSmLVy4AAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
 AAAAQF5LwMkcgbltH+IDYB9skv9HCG0CJXSL5K2K4Joy5f0C0nFXkznWL2sLWWcuJneXTM
 bvpSBH3qQAGfK2/o2d3wA=
 -----END SSH SIGNATURE-----

Signed fixture
";
    const COMMIT_ID: &str = "5759f3f715ecefe94c3fbb396cfba16736ee3aa1";
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDYQAjq32b+D/zyEsHHpAWx/xTEj2KfM7nvRiIEpi1cu fixture";
    /// `ssh-keygen -lf` of [`KEY`].
    const FINGERPRINT: &str = "SHA256:6Cg5yJ3F0lg0aemJX4SRKSlmfDKblWtUtG24Hr81Fsw";
    /// Another ed25519 key.
    const OTHER_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4ALkbHygCFM0h3s5RM+puZPriyAAyrMCjkex5rq/ZZ";

    fn signers(text: &str) -> AllowedSigners {
        AllowedSigners::parse("allowed_signers", text).unwrap()
    }

    fn verify(raw: &str, text: &str) -> Result<Signer, SignatureError> {
        verify_commit(COMMIT_ID, raw.as_bytes(), &signers(text))
    }

    #[test]
    fn a_commit_signed_by_a_listed_key_is_trusted() {
        let text = format!("bob@example.com {OTHER_KEY}\nalice@example.com,*@ops.example.com {KEY}\n");
        let signer = verify(COMMIT, &text).unwrap();
        assert_eq!(signer, Signer { principal: "alice@example.com".into(), key_fingerprint: FINGERPRINT.into() });
    }

    #[test]
    fn the_principals_need_not_name_the_committer() {
        assert_eq!(verify(COMMIT, &format!("someone@else {KEY}")).unwrap().principal, "someone@else");
    }

    #[test]
    fn a_key_that_is_not_listed_is_untrusted() {
        let untrusted = SignatureError::Untrusted { commit: COMMIT_ID.into(), fingerprint: FINGERPRINT.into() };
        assert_eq!(verify(COMMIT, &format!("alice@example.com {OTHER_KEY}")), Err(untrusted));
    }

    #[test]
    fn the_options_of_the_keys_line_are_honoured() {
        // (options, trusted) as `git verify-commit` answers for this commit (committer time
        // 1700000000 = 2023-11-14T22:13:20Z).
        for (options, trusted) in [
            ("namespaces=\"file\"", false),
            ("namespaces=\"file,git\"", true),
            ("valid-before=\"20231114221320Z\"", true),
            ("valid-before=\"20231114221319Z\"", false),
            ("valid-after=\"20231114221320Z\"", true),
            ("valid-after=\"20231114221321Z\"", false),
        ] {
            let result = verify(COMMIT, &format!("alice@example.com {options} {KEY}"));
            assert_eq!(result.is_ok(), trusted, "{options}: {result:?}");
            if !trusted {
                assert!(matches!(result, Err(SignatureError::Untrusted { .. })), "{options}: {result:?}");
            }
        }
    }

    #[test]
    fn the_principal_and_the_verdict_follow_git_when_a_key_is_listed_twice() {
        // (allowed-signers text, principal): as `git verify-commit` (2.47, OpenSSH 9.2) answers
        // and names the signer; `None` where it refuses.
        for (text, expected) in [
            (format!("x@y,bob {KEY}\n"), Some("x@y")),
            (format!("old namespaces=\"file\" {KEY}\nnew {KEY}\n"), None),
            (format!("old valid-before=\"20200101Z\" {KEY}\nnew {KEY}\n"), Some("new")),
            (format!("new namespaces=\"file\" {KEY}\n* {KEY}\n"), Some("new")),
            (format!("* namespaces=\"file\" {KEY}\nnew {KEY}\n"), None),
        ] {
            let result = verify(COMMIT, &text);
            assert_eq!(result.as_ref().ok().map(|s| s.principal.as_str()), expected, "{text}: {result:?}");
        }
    }

    #[test]
    fn a_changed_commit_is_invalid() {
        let allowed = format!("alice@example.com {KEY}");
        for tampered in [
            COMMIT.replace("Signed fixture", "Signed fixturE"),
            COMMIT.replace("1700000000 +0000\ngpgsig", "1700000001 +0000\ngpgsig"),
            COMMIT.replace("\nSigned", "\n\nSigned"),
        ] {
            let result = verify(&tampered, &allowed);
            let Err(SignatureError::Invalid { commit, reason }) = result else { panic!("{result:?}") };
            assert_eq!(commit, COMMIT_ID);
            assert!(reason.contains("changed after it was signed"), "{reason}");
        }
    }

    #[test]
    fn a_damaged_signature_is_invalid() {
        let allowed = format!("alice@example.com {KEY}");
        for (damaged, expected) in [
            (COMMIT.replace(" bvpSBH3qQAGfK2/o2d3wA=\n", ""), "malformed"),
            (
                COMMIT.replace("-----BEGIN SSH SIGNATURE-----", "-----BEGIN SSH SIGNATUR-----"),
                "no signature that git knows",
            ),
            (COMMIT.replace("bvpSBH3qQAGfK2", "bvpSBH3qQAGfK3"), "changed after it was signed"),
        ] {
            let result = verify(&damaged, &allowed);
            let Err(SignatureError::Invalid { reason, .. }) = &result else { panic!("{result:?}") };
            assert!(reason.contains(expected), "{reason}");
        }
    }

    #[test]
    fn unsigned_and_otherwise_signed_commits_are_told_apart() {
        let allowed = format!("alice@example.com {KEY}");
        let unsigned = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter A <a@b> 1 +0000\n\nm\n";
        assert_eq!(verify(unsigned, &allowed), Err(SignatureError::Unsigned { commit: COMMIT_ID.into() }));
        let pgp = COMMIT.replace("-----BEGIN SSH SIGNATURE-----", "-----BEGIN PGP SIGNATURE-----");
        assert_eq!(verify(&pgp, &allowed), Err(SignatureError::NotSsh { commit: COMMIT_ID.into() }));
        let x509 = COMMIT.replace("-----BEGIN SSH SIGNATURE-----", "-----BEGIN SIGNED MESSAGE-----");
        assert_eq!(verify(&x509, &allowed), Err(SignatureError::NotSsh { commit: COMMIT_ID.into() }));
    }

    #[test]
    fn in_a_sha256_repository_the_signature_is_in_gpgsig_sha256() {
        let allowed = signers(&format!("alice@example.com {KEY}"));
        let moved = COMMIT.replace("gpgsig ", "gpgsig-sha256 ");
        let sha256_id = "a".repeat(64);
        assert!(verify_commit(&sha256_id, moved.as_bytes(), &allowed).is_ok());
        assert!(matches!(verify_commit(COMMIT_ID, moved.as_bytes(), &allowed), Err(SignatureError::Unsigned { .. })));
    }

    #[test]
    fn every_message_names_the_commit_and_what_to_do() {
        let commit = COMMIT_ID.to_string();
        for error in [
            SignatureError::Unsigned { commit: commit.clone() },
            SignatureError::NotSsh { commit: commit.clone() },
            SignatureError::Invalid { commit: commit.clone(), reason: "r".into() },
            SignatureError::Untrusted { commit: commit.clone(), fingerprint: FINGERPRINT.into() },
        ] {
            let text = error.to_string();
            assert!(text.contains(COMMIT_ID) && (text.contains("sign") || text.contains("add the key")), "{text}");
        }
    }
}
