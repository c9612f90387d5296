//! `ignition.config.merge` and `.replace`, resolved the way Ignition resolves them at first
//! boot: a replacement config is used instead of its parent; merge children are merged over the
//! parent in order, each resolved first. `data:` children are read here; remote ones come
//! through [`Fetch`] (the host's HTTP client), always checked against their hash.

use sha2::{Digest, Sha256, Sha512};

use crate::model::ignition::dataurl;
use crate::model::ignition::merge::Merge;
use crate::model::ignition::spec::{self, IgnitionError};
use crate::model::ignition::types::{Config, Resource};
use crate::model::ignition::url;
use crate::model::ignition::validate::resources;

/// How deep children may nest.
pub const MAX_DEPTH: usize = 10;

/// Fetches a remote resource: its bytes, decompressed and verified.
pub trait Fetch {
    /// The bytes of `resource`, or why they cannot be had.
    fn fetch(&self, resource: &Resource) -> Result<Vec<u8>, String>;
}

/// A fetcher for `--offline`: every remote resource is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl Fetch for Offline {
    fn fetch(&self, resource: &Resource) -> Result<Vec<u8>, String> {
        Err(format!(
            "{} needs the network, and --offline was given",
            resource.source.as_deref().map_or_else(|| "a remote resource".to_string(), url::redacted)
        ))
    }
}

/// Checks `bytes` against a `sha256-…`/`sha512-…` verification hash.
pub fn verify_hash(hash: &str, bytes: &[u8]) -> Result<(), String> {
    let (function, want) = hash.split_once('-').ok_or_else(|| format!("malformed hash {hash:?}"))?;
    let got = match function {
        "sha256" => hex::encode(Sha256::digest(bytes)),
        "sha512" => hex::encode(Sha512::digest(bytes)),
        other => return Err(format!("unrecognized hash function {other:?}")),
    };
    if got.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(format!("hash mismatch: want {function}-{want}, got {function}-{got}"))
    }
}

/// The bytes of a resource: a `data:` URL decoded here, anything else fetched; verified.
pub fn load(resource: &Resource, fetch: &dyn Fetch) -> Result<Vec<u8>, String> {
    let source = resource.source.as_deref().ok_or("the resource has no source")?;
    let bytes = if source.starts_with("data:") {
        dataurl::decode_contents(source, resource.compression.as_deref()).map_err(|e| e.to_string())?
    } else {
        return fetch.fetch(resource);
    };
    if let Some(hash) = &resource.verification.hash {
        verify_hash(hash, &bytes).map_err(|e| format!("{}: {e}", url::redacted(source)))?;
    }
    Ok(bytes)
}

/// Checks every inline (`data:`) resource of `cfg` against its verification hash.
pub fn check_inline_hashes(cfg: &Config) -> Result<(), String> {
    for (at, r) in resources(cfg) {
        if r.source.as_deref().is_some_and(|s| s.starts_with("data:")) && r.verification.hash.is_some() {
            load(r, &Offline).map_err(|e| format!("{}: {e}", at.path()))?;
        }
    }
    Ok(())
}

/// Resolves `cfg`'s replace and merge children into one config.
pub fn resolve(cfg: Config, fetch: &dyn Fetch) -> Result<Config, String> {
    resolve_at(cfg, fetch, 0)
}

fn resolve_at(mut cfg: Config, fetch: &dyn Fetch, depth: usize) -> Result<Config, String> {
    if depth > MAX_DEPTH {
        return Err(format!("ignition.config children nest deeper than {MAX_DEPTH} levels"));
    }
    let replace = std::mem::take(&mut cfg.ignition.config.replace);
    if replace.source.is_some() {
        let child = child_config(&replace, fetch, "replace")?;
        return resolve_at(child, fetch, depth + 1);
    }
    let merges = std::mem::take(&mut cfg.ignition.config.merge);
    let mut acc = cfg;
    for (i, r) in merges.iter().enumerate() {
        let child = resolve_at(child_config(r, fetch, &format!("merge.{i}"))?, fetch, depth + 1)?;
        let version = acc.ignition.version.clone();
        acc = Config::merge(acc, child);
        acc.ignition.version = version;
    }
    Ok(acc)
}

fn child_config(r: &Resource, fetch: &dyn Fetch, which: &str) -> Result<Config, String> {
    let bytes = load(r, fetch).map_err(|e| format!("ignition.config.{which}: {e}"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("ignition.config.{which}: the child config is not UTF-8"))?;
    let parsed = spec::parse(&text).map_err(|e| match e {
        IgnitionError::Syntax(e) => {
            format!("ignition.config.{which}: the child config is not valid JSON: {}", e.message)
        }
        IgnitionError::Version(v) => format!("ignition.config.{which}: unsupported config version {v:?}"),
        IgnitionError::Types(r) => {
            format!("ignition.config.{which}: {}", r.entries.first().map(|d| d.raw_line()).unwrap_or_default())
        }
    })?;
    if let Some(err) = parsed.report.entries.iter().find(|d| d.severity == crate::model::report::Severity::Error) {
        return Err(format!("ignition.config.{which}: the child config is invalid: {}", err.raw_line()));
    }
    Ok(parsed.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Resource {
        Resource { source: Some(format!("data:,{}", dataurl::escape(json.as_bytes()))), ..Resource::default() }
    }

    fn parent() -> Config {
        let mut cfg = Config::default();
        cfg.ignition.version = "3.5.0".into();
        cfg.storage
            .files
            .push(crate::model::ignition::types::File { path: "/etc/parent".into(), ..Default::default() });
        cfg
    }

    #[test]
    fn merges_children_in_order_and_older_specs_translate() {
        let mut cfg = parent();
        cfg.ignition
            .config
            .merge
            .push(data(r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/child","mode":420}]}}"#));
        let out = resolve(cfg, &Offline).unwrap();
        let paths: Vec<&str> = out.storage.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/etc/parent", "/etc/child"]);
        assert_eq!(out.ignition.version, "3.5.0");
    }

    #[test]
    fn replace_wins_and_bad_children_fail() {
        let mut cfg = parent();
        cfg.ignition.config.replace =
            data(r#"{"ignition":{"version":"3.5.0"},"storage":{"files":[{"path":"/etc/replaced"}]}}"#);
        let out = resolve(cfg, &Offline).unwrap();
        assert_eq!(out.storage.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/etc/replaced"]);
        let mut bad = parent();
        bad.ignition.config.merge.push(data(r#"{"ignition":{"version":"9.9.9"}}"#));
        assert!(resolve(bad, &Offline).unwrap_err().contains("unsupported config version"));
        let mut remote = parent();
        remote
            .ignition
            .config
            .merge
            .push(Resource { source: Some("https://example.com/c.ign".into()), ..Resource::default() });
        assert!(resolve(remote, &Offline).unwrap_err().contains("--offline"));
    }

    #[test]
    fn verifies_hashes_of_the_uncompressed_bytes() {
        let good = format!("sha256-{}", hex::encode(Sha256::digest(b"hello")));
        assert!(verify_hash(&good, b"hello").is_ok());
        assert!(verify_hash(&good, b"hellO").unwrap_err().starts_with("hash mismatch"));
        let r = Resource {
            source: Some("data:,hello".into()),
            verification: crate::model::ignition::types::Verification { hash: Some(good) },
            ..Resource::default()
        };
        assert_eq!(load(&r, &Offline).unwrap(), b"hello");
    }
}
