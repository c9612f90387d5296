//! Remote resources (`source: https://…`) fetched with `reqwest` over rustls, decompressed,
//! and refused unless their `verification.hash` matches: CoreOps only writes fetched content it
//! can verify.
//!
//! It also owns how every HTTP(S) client of CoreOps starts ([`client_builder`]): rustls with the
//! `ring` crypto provider (reqwest is built without a provider of its own, so that no C TLS
//! library is compiled), the system's CAs, CoreOps's user agent. It must not hold per-remote
//! settings (CA files, tokens, redirects): those belong to the callers.

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use crate::model::ignition::children::{Fetch, verify_hash};
use crate::model::ignition::types::Resource;
use crate::model::ignition::url::redacted;

/// Largest resource fetched.
const MAX_FETCH_BYTES: u64 = 256 * 1024 * 1024;
/// Per-request timeout.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("core-ops/", env!("CARGO_PKG_VERSION"));

/// Fetches over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpFetch {
    /// Built on the first fetch, so runs that fetch nothing do not need CA certificates.
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
}

impl HttpFetch {
    /// A fetcher with CoreOps's timeouts.
    pub fn new() -> anyhow::Result<Self> {
        Ok(HttpFetch { client: OnceLock::new() })
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, String> {
        let built = self.client.get_or_init(|| {
            client_builder().timeout(FETCH_TIMEOUT).build().map_err(|e| format!("setting up HTTPS: {e}"))
        });
        built.as_ref().map_err(Clone::clone)
    }
}

/// The start of every CoreOps HTTP(S) client: CoreOps's user agent, and rustls's `ring`
/// provider installed as the process default, which reqwest requires before a client is built
/// (a provider installed earlier is kept: there is only ever this one).
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    // Err only says a default is already installed, which is the state wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().user_agent(USER_AGENT)
}

impl Fetch for HttpFetch {
    /// Errors name the URL without userinfo and query ([`redacted`]), and reqwest's errors are
    /// shown without the URL they carry.
    fn fetch(&self, resource: &Resource) -> Result<Vec<u8>, String> {
        let url = resource.source.as_deref().ok_or("the resource has no source")?;
        let source = redacted(url);
        let hash = resource.verification.hash.as_deref().ok_or_else(|| {
            format!("{source} has no verification.hash; CoreOps only writes fetched content it can verify")
        })?;
        let scheme = source.split_once(':').map_or("", |(s, _)| s);
        if scheme != "http" && scheme != "https" {
            return Err(format!("{source}: the {scheme}: scheme is not fetched on running hosts (http and https are)"));
        }
        let mut request = self.client()?.get(url);
        for h in &resource.http_headers {
            request = request.header(h.name.as_str(), h.value.as_deref().unwrap_or(""));
        }
        let response = request.send().map_err(|e| format!("fetching {source}: {}", with_causes(&e.without_url())))?;
        if !response.status().is_success() {
            return Err(format!("fetching {source}: HTTP {}", response.status()));
        }
        let mut raw = Vec::new();
        response
            .take(MAX_FETCH_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("reading {source}: {}", read_error(e)))?;
        if raw.len() as u64 > MAX_FETCH_BYTES {
            return Err(format!("{source} is larger than {MAX_FETCH_BYTES} bytes"));
        }
        let bytes = match resource.compression.as_deref() {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| format!("{source}: not gzip data: {e}"))?;
                out
            }
            _ => raw,
        };
        verify_hash(hash, &bytes).map_err(|e| format!("{source}: {e}; nothing was written"))?;
        Ok(bytes)
    }
}

/// An error reading a response body, without the URL that reqwest's errors carry.
fn read_error(e: std::io::Error) -> String {
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<reqwest::Error>()) {
        Some(Ok(reqwest_error)) => with_causes(&reqwest_error.without_url()),
        Some(Err(other)) => other.to_string(),
        None => kind.to_string(),
    }
}

/// An error and its causes, `: `-separated (reqwest's and gix's own texts are only the
/// outermost); a cause that repeats what was already said is left out.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}
