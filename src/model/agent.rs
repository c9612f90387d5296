//! The agent's record (`/var/lib/core-ops/agent.json`): what the unattended cycles of a host that
//! follows a repository have seen, beside the state of what was applied.
//!
//! - **Suspension**: while an operator works by hand (`core-ops suspend`), cycles do nothing.
//! - **Last fetch**: when the remote was last asked, what it answered, and its error if any.
//! - **Baseline**: the commit every later tip must descend from: the last one the agent applied.
//!   `init --force` clears it, which is how an operator accepts a rewritten history.
//! - **Refused tip**: a tip that was kept out (invalid layout, unsigned, untrusted, a rewind) is
//!   not tried again until the remote moves or `agent --retry` is given.
//! - **Last cycle**: how the last cycle ended, for `status` and monitoring.
//!
//! Versioned like the state file: an unknown newer version is refused, never misread.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The record format this build writes.
pub const AGENT_SCHEMA_VERSION: u32 = 1;

/// The whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentRecord {
    /// Format version.
    pub schema_version: u32,
    /// Set while cycles are suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
    /// The last fetch from the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch: Option<FetchRecord>,
    /// The commit later tips must descend from (the last one the agent applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// A tip that was kept out, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// How the last cycle ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<CycleRecord>,
    /// A host `init --switch-host` accepted for a root last applied as another: the agent
    /// converges it as that host once, which records the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_switch: Option<String>,
}

/// Why and since when cycles are suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suspension {
    /// When `suspend` ran (RFC 3339 UTC).
    pub since: String,
    /// What the operator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One fetch from the remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FetchRecord {
    /// When it ran (RFC 3339 UTC).
    pub at: String,
    /// The tip it fetched, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last time a fetch succeeded (kept across failed fetches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
}

/// A tip kept out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Refusal {
    /// The commit refused.
    pub commit: String,
    /// Why, as printed.
    pub reason: String,
    /// The exit code the cycle that refused it returned.
    pub exit_code: u8,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// How one cycle ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CycleRecord {
    /// When it ended (RFC 3339 UTC).
    pub at: String,
    /// Its exit code.
    pub exit_code: u8,
    /// One line: what it did.
    pub summary: String,
    /// The commit the host was converged to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Why an agent record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentRecordError {
    /// Not JSON of the expected shape.
    #[error("the agent record is corrupt ({0})")]
    Corrupt(String),
    /// Written by a newer CoreOps.
    #[error(
        "the agent record has schema version {0}, newer than this core-ops understands ({AGENT_SCHEMA_VERSION}); upgrade core-ops"
    )]
    TooNew(u32),
}

impl AgentRecord {
    /// A fresh record.
    pub fn new() -> Self {
        AgentRecord { schema_version: AGENT_SCHEMA_VERSION, ..AgentRecord::default() }
    }

    /// Parses a record file.
    pub fn parse(bytes: &[u8]) -> Result<AgentRecord, AgentRecordError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| AgentRecordError::Corrupt(e.to_string()))?;
        let version = value.get("schema_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version > u64::from(AGENT_SCHEMA_VERSION) {
            return Err(AgentRecordError::TooNew(u32::try_from(version).unwrap_or(u32::MAX)));
        }
        if version == 0 {
            return Err(AgentRecordError::Corrupt("no schema_version".into()));
        }
        serde_json::from_value(value).map_err(|e| AgentRecordError::Corrupt(e.to_string()))
    }

    /// Serializes the record (pretty, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).expect("the agent record always serializes");
        text.push('\n');
        text.into_bytes()
    }

    /// Notes a fetch that succeeded with `commit` at `at`.
    pub fn fetched(&mut self, at: &str, commit: &str) {
        self.last_fetch = Some(FetchRecord {
            at: at.to_string(),
            commit: Some(commit.to_string()),
            error: None,
            last_success: Some(at.to_string()),
        });
    }

    /// Notes a fetch that failed with `error` at `at`; the last success is kept.
    pub fn fetch_failed(&mut self, at: &str, error: &str) {
        let last_success = self.last_fetch.as_ref().and_then(|f| f.last_success.clone());
        let commit = self.last_fetch.as_ref().and_then(|f| f.commit.clone());
        self.last_fetch =
            Some(FetchRecord { at: at.to_string(), commit, error: Some(error.to_string()), last_success });
    }

    /// Whether `tip` was refused before (and so is not tried again without `--retry`).
    pub fn refused_before(&self, tip: &str) -> Option<&Refusal> {
        self.refused.as_ref().filter(|r| r.commit == tip)
    }

    /// Forgets the baseline and any refusal: the next tip is accepted whatever its history
    /// (`init --force`).
    pub fn reset_baseline(&mut self) {
        self.baseline = None;
        self.refused = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_newer_one_is_refused() {
        let mut r = AgentRecord::new();
        r.fetched("2026-01-01T00:00:00Z", "abc");
        r.baseline = Some("abc".into());
        assert_eq!(AgentRecord::parse(&r.to_bytes()).unwrap(), r);
        assert_eq!(AgentRecord::parse(br#"{"schema_version": 2}"#), Err(AgentRecordError::TooNew(2)));
        assert!(matches!(AgentRecord::parse(b"{}"), Err(AgentRecordError::Corrupt(_))));
        assert!(matches!(AgentRecord::parse(b"not json"), Err(AgentRecordError::Corrupt(_))));
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_success_and_the_commit_it_had() {
        let mut r = AgentRecord::new();
        r.fetched("2026-01-01T00:00:00Z", "abc");
        r.fetch_failed("2026-01-01T00:05:00Z", "connection refused");
        let f = r.last_fetch.unwrap();
        assert_eq!(f.at, "2026-01-01T00:05:00Z");
        assert_eq!(f.error.as_deref(), Some("connection refused"));
        assert_eq!(f.commit.as_deref(), Some("abc"));
        assert_eq!(f.last_success.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn only_the_refused_commit_counts_as_refused_and_a_reset_forgets_it() {
        let mut r = AgentRecord::new();
        r.refused = Some(Refusal { commit: "bad".into(), reason: "x".into(), exit_code: 65, at: "t".into() });
        r.baseline = Some("good".into());
        assert!(r.refused_before("bad").is_some());
        assert!(r.refused_before("other").is_none());
        r.reset_baseline();
        assert!(r.refused_before("bad").is_none());
        assert_eq!(r.baseline, None);
    }
}
