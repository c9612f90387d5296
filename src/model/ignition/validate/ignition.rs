//! The `ignition` section (config version, merge sources, proxy) and every resource of a
//! config wherever it sits (merge/replace, CAs, file contents and appends, LUKS key files):
//! compression, sources and their URLs, HTTP headers, verification hashes.

use super::{Validator, root};
use crate::model::ignition::types::{Config, HttpHeader, Proxy, Resource};
use crate::model::ignition::url::{self, UrlError};
use crate::model::path::Path;

impl Validator {
    pub(super) fn ignition(&mut self, cfg: &Config) {
        let ign = root(&["ignition"]);
        if cfg.ignition.version != self.spec.version() {
            let msg = if crate::model::ignition::spec::parse_version(&cfg.ignition.version).is_none()
                && semver::Version::parse(&cfg.ignition.version).is_err()
            {
                "invalid config version (couldn't parse)"
            } else {
                "unsupported config version"
            };
            self.error(ign.key("version"), msg);
        }
        for (i, r) in cfg.ignition.config.merge.iter().enumerate() {
            let at = ign.key("config").key("merge").index(i);
            match r.source.as_deref().filter(|s| !s.is_empty()) {
                None => self.error(at.clone(), "source is required"),
                Some(src) => {
                    if let Err(e) = url::validate(src) {
                        self.error(at.clone(), e.to_string());
                    }
                }
            }
        }
        self.proxy(&cfg.ignition.proxy, &ign.key("proxy"));
        for (at, res) in resources(cfg) {
            self.resource(res, at);
        }
    }

    fn proxy(&mut self, proxy: &Proxy, at: &Path) {
        for (key, value, http_ok) in [("httpProxy", &proxy.http_proxy, true), ("httpsProxy", &proxy.https_proxy, false)]
        {
            let Some(value) = value else { continue };
            match url::parse(value) {
                None => self.error(at.key(key), UrlError::Unparsable.to_string()),
                Some(u) if u.scheme != "http" && u.scheme != "https" => {
                    self.error(at.key(key), "proxies must be http(s)")
                }
                Some(u) if u.scheme == "http" && !http_ok => {
                    self.warn(at.key(key), "insecure plaintext HTTP proxy specified for HTTPS resources")
                }
                Some(_) => {}
            }
        }
    }

    fn resource(&mut self, r: &Resource, at: ResourceAt) {
        if r.compression.as_deref().is_some_and(|c| !c.is_empty() && c != "gzip") {
            self.error(at.path().key("compression"), "invalid compression method");
        }
        if r.verification.hash.is_some() && r.source.is_none() {
            self.error(
                at.path().key("verification").key("hash"),
                "source must be specified if verification is specified",
            );
        }
        // A URL made by the translator from the bytes it keeps beside it is valid as made.
        let made_here = r.payload.0.is_some();
        if let Some(src) = r.source.as_deref().filter(|s| !s.is_empty() && !made_here) {
            if let Err(e) = url::validate(src) {
                self.error(at.path().key("source"), e.to_string());
            }
        }
        if !r.http_headers.is_empty() {
            let scheme = r.source.as_deref().filter(|s| !s.is_empty()).and_then(url::parse).map(|u| u.scheme);
            match scheme.as_deref() {
                None => self.error(at.path().key("httpHeaders"), UrlError::Unparsable.to_string()),
                Some("http" | "https") => {}
                Some(_) => self.error(at.path().key("httpHeaders"), "cannot use HTTP headers with this source scheme"),
            }
        }
        for (j, h) in r.http_headers.iter().enumerate() {
            self.header(h, &at.path().key("httpHeaders").index(j));
        }
        if let Some(hash) = &r.verification.hash {
            if let Err(msg) = check_hash(hash) {
                self.error(at.path().key("verification").key("hash"), msg);
            }
        }
    }

    fn header(&mut self, h: &HttpHeader, at: &Path) {
        if h.name.is_empty() {
            self.error(at.key("name"), "HTTP header name can't be empty");
        }
        if h.value.as_deref() == Some("") {
            self.error(at.key("value"), "unable to parse HTTP header");
        }
    }
}

/// Where a resource sits in a config; its output path is built only when a message needs it
/// (a config of thousands of files has as many resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceAt {
    /// `ignition.config.merge[i]`.
    Merge(usize),
    /// `ignition.config.replace`.
    Replace,
    /// `ignition.security.tls.certificateAuthorities[i]`.
    CertificateAuthority(usize),
    /// `storage.files[i].append[j]`.
    Append(usize, usize),
    /// `storage.files[i].contents`.
    Contents(usize),
    /// `storage.luks[i].keyFile`.
    KeyFile(usize),
}

impl ResourceAt {
    /// The output path.
    pub fn path(self) -> Path {
        let ign = || root(&["ignition"]);
        let files = || root(&["storage"]).key("files");
        match self {
            ResourceAt::Merge(i) => ign().key("config").key("merge").index(i),
            ResourceAt::Replace => ign().key("config").key("replace"),
            ResourceAt::CertificateAuthority(i) => {
                ign().key("security").key("tls").key("certificateAuthorities").index(i)
            }
            ResourceAt::Append(i, j) => files().index(i).key("append").index(j),
            ResourceAt::Contents(i) => files().index(i).key("contents"),
            ResourceAt::KeyFile(i) => root(&["storage"]).key("luks").index(i).key("keyFile"),
        }
    }
}

/// Every resource of a config with where it sits (merge/replace, CAs, file contents and
/// appends, LUKS key files).
pub fn resources(cfg: &Config) -> Vec<(ResourceAt, &Resource)> {
    let mut out = Vec::new();
    out.extend(cfg.ignition.config.merge.iter().enumerate().map(|(i, r)| (ResourceAt::Merge(i), r)));
    out.push((ResourceAt::Replace, &cfg.ignition.config.replace));
    let cas = cfg.ignition.security.tls.certificate_authorities.iter().enumerate();
    out.extend(cas.map(|(i, r)| (ResourceAt::CertificateAuthority(i), r)));
    for (i, f) in cfg.storage.files.iter().enumerate() {
        out.extend(f.append.iter().enumerate().map(|(j, a)| (ResourceAt::Append(i, j), a)));
        out.push((ResourceAt::Contents(i), &f.contents));
    }
    out.extend(cfg.storage.luks.iter().enumerate().map(|(i, l)| (ResourceAt::KeyFile(i), &l.key_file)));
    out
}

/// Ignition's verification hash rule: `sha256-<64>` or `sha512-<128>`.
pub fn check_hash(hash: &str) -> Result<(), &'static str> {
    let (function, sum) = hash.split_once('-').ok_or("malformed hash specifier")?;
    let size = match function {
        "sha512" => 64,
        "sha256" => 32,
        _ => return Err("unrecognized hash function"),
    };
    if sum.len() != size * 2 {
        return Err("incorrect size for hash sum");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let cases = [
            ("sha512", Some("malformed hash specifier")),
            ("md5-abc", Some("unrecognized hash function")),
            ("sha256-abc", Some("incorrect size for hash sum")),
            (&*format!("sha256-{}", "0".repeat(64)), None),
            (&*format!("sha512-{}", "a".repeat(128)), None),
        ];
        for (hash, want) in cases {
            assert_eq!(check_hash(hash).err(), want, "case {hash}");
        }
    }
}
