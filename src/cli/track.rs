//! `render-ignition --track REPO REF`: the host's config plus the first-boot bootstrap
//! ([`bootstrap`]), so that the new machine follows REPO at REF from its first timer run.
//!
//! The agent is embedded gzip-compressed (this executable, or `--agent-binary PATH`), or
//! fetched by Ignition from `--agent-binary URL` and refused unless it matches
//! `--agent-sha256`. `--track-trust FILE` installs an allowed-signers file and records it;
//! `--track-access-token-file` and `--track-ca-file` only record where the machine finds those
//! files (a token is a secret: it never goes into a config). The bootstrap is added after the
//! ownership record is made, so the agent never owns, nor removes, what it runs from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{EXIT_FAILURE, EXIT_USAGE, Exit};
use crate::host::agent_binary;
use crate::host::input_file::{self, InputError};
use crate::model::bootstrap::{self, AgentBinary};
use crate::model::ignition::types::Config;
use crate::model::ignition::{spec, url, validate};
use crate::model::source::compose::{EntryKey, Origin};
use crate::model::tracking::{self, ALLOWED_SIGNERS_FILE, Tracking};

/// How the bootstrap names itself in messages.
const BOOTSTRAP: &str = "the CoreOps bootstrap of --track";

/// The options of `render-ignition` for following a repository.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrackArgs {
    /// Make the machine follow repository REPO at ref REF from its first boot: add the agent,
    /// core-ops.service, core-ops.timer and /etc/core-ops/tracking.yaml (with --source-repo).
    #[arg(long, num_args = 2, value_names = ["REPO", "REF"], requires = "source_repo")]
    pub track: Option<Vec<String>>,
    /// The host of the tracked repository that the machine is (default: --host).
    #[arg(long, value_name = "HOST", requires = "track")]
    pub track_host: Option<String>,
    /// The agent binary: a local file to embed (default: this core-ops), or a URL that Ignition
    /// fetches at first boot (with --agent-sha256).
    #[arg(long, value_name = "PATH|URL", requires = "track")]
    pub agent_binary: Option<String>,
    /// The SHA-256 of the binary at the --agent-binary URL (64 hex digits, as sha256sum prints it).
    #[arg(long, value_name = "HEX", requires = "agent_binary")]
    pub agent_sha256: Option<String>,
    /// An allowed-signers file (git's gpg.ssh.allowedSignersFile format): installed at
    /// /etc/core-ops/allowed-signers, and only tip commits SSH-signed by one of its keys are applied.
    #[arg(long, value_name = "FILE", requires = "track")]
    pub track_trust: Option<PathBuf>,
    /// Where the machine finds the token for an HTTP(S) repository (recorded; provide the file
    /// by other means, it is never put into the config).
    #[arg(long, value_name = "PATH", requires = "track")]
    pub track_access_token_file: Option<String>,
    /// Where the machine finds extra certificate authorities (PEM) for an HTTPS repository
    /// (recorded; provide the file by other means).
    #[arg(long, value_name = "PATH", requires = "track")]
    pub track_ca_file: Option<String>,
}

/// `config` (host `host`'s, whose entries come from `origins`) with the bootstrap added, or
/// as it is without `--track`.
pub fn add_bootstrap(
    args: &TrackArgs,
    host: &str,
    origins: &BTreeMap<EntryKey, Origin>,
    config: Config,
) -> Result<Config> {
    let Some([repository, reference]) = args.track.as_deref() else { return Ok(config) };
    let tracking = tracking_config(args, repository, reference, host)?;
    let binary = agent(args)?;
    let signers = match &args.track_trust {
        Some(path) => Some(input_file::read_named(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let spec = spec::parse_version(&config.ignition.version).context("the composed config has no supported spec")?;
    if matches!(binary, AgentBinary::Url { .. }) && spec.minor == 0 {
        return Err(Exit::new(
            EXIT_FAILURE,
            format!(
                "error: --agent-binary URL needs Ignition spec 3.1.0 or newer for its sha256 hash; host {host}'s \
                 config is {}: raise its Butane version to fcos 1.1.0 or newer, or embed the binary",
                config.ignition.version
            ),
        )
        .into());
    }
    let entries = bootstrap::entries(&tracking, &binary, signers.as_deref());
    let conflicts = bootstrap::conflicts(&config, &entries);
    if !conflicts.is_empty() {
        let lines = conflicts.iter().map(|key| conflict_message(key, origins));
        return Err(Exit::lines(EXIT_FAILURE, lines).into());
    }
    let merged = bootstrap::merge(config, entries);
    let report = validate::validate(&merged, spec);
    if report.has_errors() {
        let lines =
            report.entries.iter().map(|d| format!("{} (in host {host}'s config with {BOOTSTRAP})", d.raw_line()));
        return Err(Exit::lines(EXIT_FAILURE, lines).into());
    }
    Ok(merged)
}

/// The tracking config the options describe, checked as `agent` will read it.
fn tracking_config(args: &TrackArgs, repository: &str, reference: &str, host: &str) -> Result<Tracking> {
    let tracking = Tracking {
        repository: repository.to_string(),
        reference: reference.to_string(),
        host: args.track_host.clone().unwrap_or_else(|| host.to_string()),
        trust: args.track_trust.as_ref().map(|_| ALLOWED_SIGNERS_FILE.to_string()),
        access_token_file: args.track_access_token_file.clone(),
        ca_file: args.track_ca_file.clone(),
    };
    let problems = tracking::problems(&tracking);
    if problems.is_empty() {
        Ok(tracking)
    } else {
        Err(Exit::lines(EXIT_USAGE, problems.iter().map(|p| format!("error: --track: {p}"))).into())
    }
}

/// The agent binary the options name.
fn agent(args: &TrackArgs) -> Result<AgentBinary> {
    match (args.agent_binary.as_deref(), args.agent_sha256.as_deref()) {
        (Some(location), sha256) if location.contains("://") => {
            url::validate(location)
                .map_err(|e| Exit::usage(&format!("--agent-binary {}: {e}", url::redacted(location))))?;
            let Some(sha256) = sha256 else {
                return Err(Exit::usage(
                    "--agent-binary URL needs --agent-sha256 HEX (the binary's sha256sum): Ignition refuses the \
                     download unless it matches",
                )
                .into());
            };
            Ok(AgentBinary::Url { url: location.to_string(), sha256: sha256_hex(sha256)? })
        }
        (Some(_), Some(_)) => {
            Err(Exit::usage("--agent-sha256 goes with an --agent-binary URL; a local binary is embedded as it is")
                .into())
        }
        (local, _) => embedded(local.map(Path::new)),
    }
}

/// A local binary (this executable when `named` is `None`), read for embedding.
fn embedded(named: Option<&Path>) -> Result<AgentBinary> {
    let path = agent_binary::location(named).context("finding this core-ops executable to embed")?;
    match input_file::read_named(&path) {
        Ok(bytes) => Ok(AgentBinary::Embedded(bytes)),
        Err(InputError::TooLarge) => Err(Exit::new(
            EXIT_FAILURE,
            format!(
                "error: the agent binary {} is {}; publish it and give --agent-binary URL --agent-sha256 HEX, \
                 which Ignition fetches at first boot",
                path.display(),
                InputError::TooLarge
            ),
        )
        .into()),
        Err(e) => Err(e).with_context(|| format!("reading the agent binary {}", path.display())),
    }
}

/// `hex` as 64 lower-case hex digits, or a usage error.
fn sha256_hex(hex: &str) -> Result<String> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(Exit::usage(&format!("--agent-sha256 {hex:?} is not a SHA-256: give the 64 hex digits sha256sum prints"))
            .into())
    }
}

/// The error for an entry that the host's config and the bootstrap both declare.
fn conflict_message(key: &EntryKey, origins: &BTreeMap<EntryKey, Origin>) -> String {
    let origin = origins.get(key).map_or_else(|| "the host's config".to_string(), Origin::to_string);
    let fix = match key {
        EntryKey::Unit(_) => "declare only drop-ins for it in the host's config, or render without --track",
        _ => "remove it from the host's config, or render without --track",
    };
    format!("error: {key} is declared by {origin} and by {BOOTSTRAP}; {fix}")
}
