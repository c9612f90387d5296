//! The first-boot bootstrap: what a new machine needs to follow its repository from its first
//! timer run, as Ignition entries to merge into the host's rendered config
//! (`render-ignition --track`). The same entries as the Butane fragment `butane/core-ops.bu`:
//!
//! | entry | what |
//! |---|---|
//! | `/usr/local/bin/core-ops`, mode 0755 | the agent: embedded gzip-compressed, or fetched from a URL with its sha256 verified |
//! | `/etc/core-ops/tracking.yaml`, mode 0600 | the [`Tracking`] config ([`tracking::to_yaml`]) |
//! | the `trust` path, mode 0644 | the allowed signers, when given |
//! | `core-ops.service`; `core-ops.timer`, enabled | the units of `systemd/`, the one copy of their text |
//!
//! None of these belong in the ownership record `render-ignition` embeds: the agent must never
//! take them for stale objects of its own and remove them. A host config that declares one of
//! these paths or units itself [`conflicts`] with the bootstrap, except for a unit entry that
//! only adds drop-ins: those are kept, on the bootstrap's unit.

use crate::model::ignition::dataurl;
use crate::model::ignition::types::{Config, File, Resource, Unit, Verification};
use crate::model::source::compose::EntryKey;
use crate::model::tracking::{self, TRACKING_FILE, TRACKING_MODE, Tracking};

/// Where the agent binary is installed (`/usr` is read-only on Fedora CoreOS; `/usr/local` is
/// writable there).
pub const AGENT_PATH: &str = "/usr/local/bin/core-ops";
/// The agent's service: one cycle per start.
pub const SERVICE_UNIT: &str = "core-ops.service";
/// The timer that starts it.
pub const TIMER_UNIT: &str = "core-ops.timer";
/// `systemd/core-ops.service`.
pub const SERVICE_TEXT: &str = include_str!("../../systemd/core-ops.service");
/// `systemd/core-ops.timer`.
pub const TIMER_TEXT: &str = include_str!("../../systemd/core-ops.timer");

const AGENT_MODE: i64 = 0o755;
const ALLOWED_SIGNERS_MODE: i64 = 0o644;

/// How the agent binary reaches the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentBinary {
    /// These bytes, embedded in the config as a gzip-compressed data URL.
    Embedded(Vec<u8>),
    /// Fetched by Ignition at first boot from `url`, refused unless its SHA-256 is `sha256`
    /// (64 hex digits).
    Url {
        /// Where Ignition fetches it (https, http, s3, ...).
        url: String,
        /// Its SHA-256, as hex.
        sha256: String,
    },
}

/// The entries the bootstrap adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// The agent, the tracking config and the allowed signers.
    pub files: Vec<File>,
    /// The service, and the timer that starts it (enabled).
    pub units: Vec<Unit>,
}

/// The bootstrap for `tracking` with the agent from `binary`. `allowed_signers`, when given, is
/// installed at `tracking.trust` (nothing is installed without that path).
pub fn entries(tracking: &Tracking, binary: &AgentBinary, allowed_signers: Option<&[u8]>) -> Bootstrap {
    let mut files = vec![
        file(AGENT_PATH, AGENT_MODE, agent_contents(binary)),
        file(TRACKING_FILE, i64::from(TRACKING_MODE), data(tracking::to_yaml(tracking).as_bytes())),
    ];
    if let (Some(path), Some(signers)) = (&tracking.trust, allowed_signers) {
        files.push(file(path, ALLOWED_SIGNERS_MODE, data(signers)));
    }
    // The service has no [Install] section: the timer starts it, so only the timer is enabled.
    let units = [(SERVICE_UNIT, SERVICE_TEXT, None), (TIMER_UNIT, TIMER_TEXT, Some(true))]
        .into_iter()
        .map(|(name, text, enabled)| Unit {
            name: name.to_string(),
            contents: Some(text.to_string()),
            enabled,
            ..Unit::default()
        })
        .collect();
    Bootstrap { files, units }
}

/// The bootstrap's paths and units that `config` declares too: each is an error (two entries
/// for one path). A unit entry of `config` with drop-ins only is no conflict ([`merge`] keeps it).
pub fn conflicts(config: &Config, bootstrap: &Bootstrap) -> Vec<EntryKey> {
    let storage = &config.storage;
    let declared_paths: Vec<&str> = (storage.files.iter().map(|f| f.path.as_str()))
        .chain(storage.directories.iter().map(|d| d.path.as_str()))
        .chain(storage.links.iter().map(|l| l.path.as_str()))
        .collect();
    let paths = bootstrap.files.iter().filter(|f| declared_paths.contains(&f.path.as_str()));
    let units =
        bootstrap.units.iter().filter(|u| config.systemd.units.iter().any(|c| c.name == u.name && !only_dropins(c)));
    paths.map(|f| EntryKey::Node(f.path.clone())).chain(units.map(|u| EntryKey::Unit(u.name.clone()))).collect()
}

/// `config` with the bootstrap added. A unit of `config` with drop-ins only gets the
/// bootstrap unit's contents and enablement and keeps its drop-ins. Call it when there are no
/// [`conflicts`].
pub fn merge(mut config: Config, bootstrap: Bootstrap) -> Config {
    config.storage.files.extend(bootstrap.files);
    for unit in bootstrap.units {
        match config.systemd.units.iter_mut().find(|c| c.name == unit.name) {
            Some(existing) => {
                existing.contents = unit.contents;
                existing.enabled = unit.enabled;
            }
            None => config.systemd.units.push(unit),
        }
    }
    config
}

/// Whether a unit entry only adds drop-ins to a unit declared elsewhere.
fn only_dropins(unit: &Unit) -> bool {
    unit.contents.is_none() && unit.contents_local.is_none() && unit.enabled.is_none() && unit.mask.is_none()
}

/// The agent's contents: a gzip-compressed data URL, or a URL with its hash.
fn agent_contents(binary: &AgentBinary) -> Resource {
    match binary {
        AgentBinary::Embedded(bytes) => {
            let made = dataurl::make(&dataurl::gzip(bytes), Some("gzip"), dataurl::Encoding::Shortest);
            Resource { source: Some(made.url), compression: made.compression, ..Resource::default() }
        }
        AgentBinary::Url { url, sha256 } => Resource {
            source: Some(url.clone()),
            verification: Verification { hash: Some(format!("sha256-{sha256}")) },
            ..Resource::default()
        },
    }
}

/// Contents as Butane writes inline text: the shortest data URL.
fn data(bytes: &[u8]) -> Resource {
    let made = dataurl::make(bytes, None, dataurl::Encoding::Shortest);
    Resource { source: Some(made.url), compression: made.compression, ..Resource::default() }
}

fn file(path: &str, mode: i64, contents: Resource) -> File {
    File { path: path.to_string(), mode: Some(mode), contents, ..File::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ignition::types::Dropin;

    fn tracking(trust: Option<&str>) -> Tracking {
        Tracking {
            repository: "https://git.example.com/infra/hosts.git".into(),
            reference: "main".into(),
            host: "web1".into(),
            trust: trust.map(str::to_string),
            access_token_file: None,
            ca_file: None,
        }
    }

    fn paths(b: &Bootstrap) -> Vec<&str> {
        b.files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn a_url_carries_its_hash_and_an_embedded_binary_is_gzipped() {
        let url = AgentBinary::Url { url: "https://example.com/core-ops".into(), sha256: "ab".repeat(32) };
        let b = entries(&tracking(None), &url, None);
        assert_eq!(paths(&b), [AGENT_PATH, TRACKING_FILE]);
        assert_eq!(b.files[0].contents.source.as_deref(), Some("https://example.com/core-ops"));
        assert_eq!(b.files[0].contents.verification.hash, Some(format!("sha256-{}", "ab".repeat(32))));
        assert_eq!(b.files[0].mode, Some(0o755));
        let embedded = entries(&tracking(None), &AgentBinary::Embedded(b"\x7fELF tiny".to_vec()), None);
        assert_eq!(embedded.files[0].contents.compression.as_deref(), Some("gzip"));
        assert_eq!(embedded.files[1].mode, Some(0o600));
        let enabled: Vec<_> = b.units.iter().map(|u| (u.name.as_str(), u.enabled)).collect();
        assert_eq!(enabled, [(SERVICE_UNIT, None), (TIMER_UNIT, Some(true))]);
    }

    #[test]
    fn allowed_signers_go_where_the_tracking_config_says() {
        let signers = b"ops@example.com ssh-ed25519 AAAA\n";
        let binary = AgentBinary::Embedded(Vec::new());
        let b = entries(&tracking(Some("/etc/core-ops/signers")), &binary, Some(signers));
        assert_eq!(paths(&b), [AGENT_PATH, TRACKING_FILE, "/etc/core-ops/signers"]);
        assert_eq!(paths(&entries(&tracking(None), &binary, Some(signers))), [AGENT_PATH, TRACKING_FILE]);
    }

    #[test]
    fn declaring_a_bootstrap_path_or_unit_conflicts_but_drop_ins_merge() {
        let b = entries(&tracking(None), &AgentBinary::Embedded(Vec::new()), None);
        let mut config = Config::default();
        config.storage.files.push(File { path: TRACKING_FILE.into(), ..File::default() });
        config.systemd.units.push(Unit { name: SERVICE_UNIT.into(), enabled: Some(false), ..Unit::default() });
        let dropin = Dropin { name: "interval.conf".into(), contents: Some("[Timer]\n".into()), ..Dropin::default() };
        config.systemd.units.push(Unit { name: TIMER_UNIT.into(), dropins: vec![dropin.clone()], ..Unit::default() });
        assert_eq!(conflicts(&config, &b), [EntryKey::Node(TRACKING_FILE.into()), EntryKey::Unit(SERVICE_UNIT.into())]);
        config.storage.files.clear();
        config.systemd.units.remove(0);
        assert!(conflicts(&config, &b).is_empty());
        let merged = merge(config, b);
        assert_eq!(merged.systemd.units.len(), 2);
        let timer = merged.systemd.units.iter().find(|u| u.name == TIMER_UNIT).unwrap();
        assert_eq!(
            (timer.contents.as_deref(), timer.enabled, &timer.dropins),
            (Some(TIMER_TEXT), Some(true), &vec![dropin])
        );
    }
}
