//! The persisted state (`/var/lib/core-ops/state.json`): what CoreOps last applied and owns,
//! the run in progress, and the last run's result. Versioned; older versions are migrated on
//! read, unknown newer ones refused.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::desired::{DesiredState, DigestCache, Kind, Object, Owner, Role, UnitIntent};
use crate::model::plan::{Observed, Owned};
use crate::model::source::compose::Origin;

/// The state format this build writes.
pub const STATE_SCHEMA_VERSION: u32 = 1;
/// `applied_at` of the state that `render-ignition` embeds for the first boot.
pub const FIRST_BOOT: &str = "first-boot";
/// Snapshots kept in `history/`.
pub const HISTORY_KEEP: usize = 10;

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct State {
    /// Format version.
    pub schema_version: u32,
    /// Where the desired state comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// Successful applies so far.
    #[serde(default)]
    pub generation: u64,
    /// The last revision that converged, with the objects CoreOps owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<Applied>,
    /// An apply that started and has not finished (it crashed or is running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// How the last run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunResult>,
}

/// The source of the desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceRef {
    /// `source-repo`, `config`, `git` (a followed repository, read from its commit) or
    /// `ignition` (recorded at first boot).
    pub kind: String,
    /// Repository path or URL, or config file.
    pub location: String,
    /// Host name, for repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Git ref, once the source is a git repository (for a work tree, the branch HEAD names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The git commit the source was read at (a work tree's HEAD), when it is in git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The files read differed from that commit (uncommitted edits, untracked files).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    /// The commit's summary line (a followed repository, `kind: git`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The commit's author, `Name <email>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The commit's time (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
}

impl SourceRef {
    /// The source of a history snapshot that recorded none of its own: the snapshot itself.
    pub fn snapshot(revision: &str) -> SourceRef {
        SourceRef {
            kind: "snapshot".into(),
            location: revision.to_string(),
            host: None,
            reference: None,
            commit: None,
            dirty: false,
            ..Default::default()
        }
    }
}

/// A converged revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Applied {
    /// Revision id (content hash of the desired config, or the git commit).
    pub revision: String,
    /// When it converged (RFC 3339, UTC), or `first-boot` for the state Ignition wrote.
    pub applied_at: String,
    /// The objects CoreOps wrote and owns, by path.
    pub objects: Vec<ObjectRecord>,
    /// Paths that must not exist (links of disabled units).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// Unit intents (`enable x.service`, `disable y.service`, `mask z.service`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
    /// A fingerprint of the inputs that produced this revision (the stamps of the config, its
    /// files directory or the repository's files, or a commit; and the core-ops build), taken
    /// before they were read; when the next run's inputs give the same and the host still
    /// matches every record, nothing needs to be rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
}

/// One owned object as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRecord {
    /// Absolute path.
    pub path: String,
    /// `file`, `directory`, `symlink` or `hard link`.
    pub kind: String,
    /// `sha256-<hex>` of the content (files): the content written, or for an entry without
    /// contents the content the file had when CoreOps took it over. A file is deleted only with
    /// exactly this content; a file record without it is never deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Link target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Permission bits (decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Owner id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Declaring file.
    pub origin_file: String,
    /// YAML path in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_path: Option<String>,
    /// `unit`, `dropin`, `mask`, `quadlet` or `enable`, with the unit, when it belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The file's stamp (device, inode, size, times) as written: an equal stamp later means the
    /// content is unchanged without reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
}

/// An apply in progress: what it intends to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pending {
    /// Target revision.
    pub revision: String,
    /// When it started.
    pub started_at: String,
    /// The objects it will write.
    pub objects: Vec<ObjectRecord>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    /// `converged`, `failed` or `partially-applied`.
    pub result: String,
    /// Revision attempted.
    pub revision: String,
    /// When it ended.
    pub at: String,
    /// What went wrong, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Consecutive runs that ended the same way on the same revision.
    #[serde(default)]
    pub repeats: u32,
    /// Units that did not come up; the next run retries them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_units: Vec<String>,
    /// What offline runs (this one and those before it) did not ask systemd to do
    /// (`daemon-reload`, `start x.service`, …); the next run that plans with systemd does it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub systemd_skipped: Vec<String>,
}

/// Why a state file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not JSON of the expected shape.
    #[error("the state file is corrupt ({0})")]
    Corrupt(String),
    /// Written by a newer CoreOps.
    #[error(
        "the state file has schema version {0}, newer than this core-ops understands ({STATE_SCHEMA_VERSION}); upgrade core-ops"
    )]
    TooNew(u32),
}

/// Parses a state file, migrating older versions. The version is read first (a newer file may
/// not have this build's shape), then the state straight from the bytes: no intermediate value.
pub fn parse(bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |e: serde_json::Error| StateError::Corrupt(e.to_string());
    let version = serde_json::from_slice::<VersionOf>(bytes).map_err(corrupt)?.0;
    if version > STATE_SCHEMA_VERSION {
        return Err(StateError::TooNew(version));
    }
    if version == 0 {
        return Err(StateError::Corrupt("no schema_version".into()));
    }
    let state: State = serde_json::from_slice(bytes).map_err(corrupt)?;
    check_kinds(&state)?;
    Ok(state)
}

/// The `schema_version` of a state document, read without building the rest of it: 0 when the
/// document is not an object, or has no such key, or its value is no unsigned integer.
struct VersionOf(u32);

impl<'de> Deserialize<'de> for VersionOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(VersionVisitor)
    }
}

struct VersionVisitor;

impl<'de> serde::de::Visitor<'de> for VersionVisitor {
    type Value = VersionOf;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<VersionOf, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "schema_version" {
                version = Some(map.next_value::<serde_json::Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        // Truncated as the migration has always read it; a value beyond u32 fails the state's own
        // parse.
        Ok(VersionOf(version.as_ref().and_then(serde_json::Value::as_u64).unwrap_or(0) as u32))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<VersionOf, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(VersionOf(0))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<VersionOf, E> {
        Ok(VersionOf(0))
    }
}

/// Every record names one of the kinds CoreOps writes; any other kind is a forged or damaged
/// record, which must not be read as a file.
fn check_kinds(state: &State) -> Result<(), StateError> {
    let applied = state.last_applied.iter().flat_map(|a| &a.objects);
    let pending = state.pending.iter().flat_map(|p| &p.objects);
    match applied.chain(pending).find(|r| kind_from_name(&r.kind).is_none()) {
        Some(r) => Err(StateError::Corrupt(format!(
            "the record of {:?} has kind {:?}; expected file, directory, symlink or hard link",
            r.path, r.kind
        ))),
        None => Ok(()),
    }
}

/// Writes a state file as the host keeps it: compact, one line with a trailing newline,
/// straight into `out` (no text in between).
pub fn write_compact(state: &State, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, state)?;
    out.write_all(b"\n")
}

/// Serializes a state file pretty, with a trailing newline: the record `render-ignition` embeds
/// in a first-boot config, for a person reading that config.
pub fn to_bytes(state: &State) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(state).expect("the state always serializes");
    text.push('\n');
    text.into_bytes()
}

impl ObjectRecord {
    /// The record of a desired object as it will be written, with resolved owner ids.
    pub fn of(o: &Object, uid: Option<u32>, gid: Option<u32>) -> Self {
        ObjectRecord {
            path: o.path.clone(),
            kind: o.kind.name().to_string(),
            sha256: o.digest(),
            target: o.target.clone(),
            mode: match o.kind {
                Kind::File | Kind::Directory => Some(o.effective_mode()),
                _ => None,
            },
            uid,
            gid,
            origin_file: o.origin.file.clone(),
            origin_path: o.origin.path.clone(),
            role: role_text(&o.role),
            stamp: None,
        }
    }

    /// Completes the record of a file from what is at its path (`seen`). An entry without
    /// contents is recorded with the hash CoreOps recorded when it took the file (`owned`), else
    /// with the hash the file has now: a later deletion needs exactly that content. The stamp is
    /// kept only when the file holds the recorded content, so an equal stamp vouches for the hash.
    pub fn with_host_file(mut self, owned: Option<&Owned>, seen: Option<&Observed>) -> Self {
        let Some(Observed::File { sha256, stamp, .. }) = seen else { return self };
        if self.kind == Kind::File.name() && self.sha256.is_none() {
            let taken_over = owned.filter(|r| r.kind == Kind::File).and_then(|r| r.sha256.clone());
            self.sha256 = taken_over.or_else(|| Some(sha256.clone()).filter(|h| !h.is_empty()));
        }
        if self.sha256.as_ref().is_none_or(|h| h == sha256) {
            self.stamp = Some(stamp.clone());
        }
        self
    }

    /// The object this record describes, as far as a record can: kind, target, mode, owner ids,
    /// role, origin, and the content hash (the content itself is not kept).
    pub fn object(&self) -> Object {
        let id = |v: Option<u32>| v.map_or(Owner::Unset, Owner::Id);
        let object = Object {
            path: self.path.clone(),
            kind: self.kind(),
            content: None,
            target: self.target.clone(),
            mode: self.mode,
            user: id(self.uid),
            group: id(self.gid),
            overwrite: false,
            role: self.role.as_deref().map_or(Role::Plain, role_from_text),
            origin: Origin { file: self.origin_file.clone(), path: self.origin_path.clone() },
            cache: DigestCache::default(),
        };
        object.preset_digest(self.sha256.clone());
        object
    }

    /// The kind recorded. A name CoreOps never writes is refused when the state is read; should
    /// one get here anyway, it is taken as a hard link, which authorises no deletion.
    pub fn kind(&self) -> Kind {
        kind_from_name(&self.kind).unwrap_or(Kind::HardLink)
    }

    /// The planner's view of the record.
    pub fn owned(&self) -> Owned {
        Owned {
            kind: self.kind(),
            sha256: self.sha256.clone(),
            target: self.target.clone(),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            origin: Origin { file: self.origin_file.clone(), path: self.origin_path.clone() },
        }
    }
}

fn role_text(role: &Role) -> Option<String> {
    match role {
        Role::Plain => None,
        Role::UnitFile(u) => Some(format!("unit {u}")),
        Role::Dropin(u) => Some(format!("dropin {u}")),
        Role::Mask(u) => Some(format!("mask {u}")),
        Role::Quadlet(u) => Some(format!("quadlet {u}")),
        Role::Enable(u) => Some(format!("enable {u}")),
    }
}

fn role_from_text(text: &str) -> Role {
    let (kind, unit) = text.split_once(' ').unwrap_or((text, ""));
    let unit = unit.to_string();
    match kind {
        "unit" => Role::UnitFile(unit),
        "dropin" => Role::Dropin(unit),
        "mask" => Role::Mask(unit),
        "quadlet" => Role::Quadlet(unit),
        "enable" => Role::Enable(unit),
        _ => Role::Plain,
    }
}

/// A unit intent as recorded: `enable x.service`, `disable x.service` or `mask x.service`.
pub fn unit_intent_text(u: &UnitIntent) -> String {
    let verb = match (u.mask, u.enabled) {
        (true, _) => "mask",
        (false, Some(true)) => "enable",
        _ => "disable",
    };
    format!("{verb} {}", u.name)
}

/// A recorded unit intent back, with `origin` as its declaration.
pub fn unit_intent_from_text(text: &str, origin: Origin) -> Option<UnitIntent> {
    let (verb, name) = text.split_once(' ')?;
    let (enabled, mask) = match verb {
        "mask" => (None, true),
        "enable" => (Some(true), false),
        "disable" => (Some(false), false),
        _ => return None,
    };
    Some(UnitIntent { name: name.to_string(), enabled, mask, origin })
}

/// The kind a record names; `None` for a name CoreOps never writes (refused on read).
fn kind_from_name(name: &str) -> Option<Kind> {
    [Kind::File, Kind::Directory, Kind::Symlink, Kind::HardLink].into_iter().find(|k| k.name() == name)
}

impl State {
    /// A fresh state.
    pub fn new() -> Self {
        State { schema_version: STATE_SCHEMA_VERSION, ..State::default() }
    }

    /// The objects CoreOps owns, by path: the last applied ones, plus those an interrupted
    /// apply intended to write (the caller keeps only those that match the host).
    pub fn owned(&self) -> BTreeMap<String, Owned> {
        let mut out: BTreeMap<String, Owned> = BTreeMap::new();
        for r in self.last_applied.iter().flat_map(|a| &a.objects) {
            out.insert(r.path.clone(), r.owned());
        }
        out
    }

    /// Records of an interrupted apply.
    pub fn pending_records(&self) -> BTreeMap<String, Owned> {
        self.pending.iter().flat_map(|p| &p.objects).map(|r| (r.path.clone(), r.owned())).collect()
    }
}

/// The initial state of a host provisioned by Ignition: everything the rendered config writes
/// is owned from the first boot on.
pub fn initial(desired: &DesiredState, revision: &str, source: SourceRef, now: &str) -> State {
    let objects = desired
        .objects
        .values()
        .map(|o| {
            let id = |w: &crate::model::desired::Owner| match w {
                crate::model::desired::Owner::Id(id) => Some(*id),
                crate::model::desired::Owner::Unset => Some(0),
                crate::model::desired::Owner::Name(_) => None,
            };
            ObjectRecord::of(o, id(&o.user), id(&o.group))
        })
        .collect();
    State {
        schema_version: STATE_SCHEMA_VERSION,
        source: Some(source),
        generation: 0,
        last_applied: Some(Applied {
            revision: revision.to_string(),
            applied_at: now.to_string(),
            objects,
            absent: Vec::new(),
            units: desired.units.iter().map(unit_intent_text).collect(),
            input_digest: None,
        }),
        pending: None,
        last_run: None,
    }
}

/// RFC 3339 UTC text for seconds since the epoch.
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_650_000), "2026-11-25T23:40:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    fn applied_with(records: serde_json::Value) -> Vec<u8> {
        let state = serde_json::json!({
            "schema_version": 1,
            "last_applied": {"revision": "r", "applied_at": "t", "objects": records},
        });
        serde_json::to_vec(&state).unwrap()
    }

    #[test]
    fn records_of_a_kind_coreops_never_writes_are_refused() {
        let known = ["file", "directory", "symlink", "hard link"];
        let records: Vec<_> =
            known.iter().map(|k| serde_json::json!({"path": "/etc/a", "kind": k, "origin_file": "x"})).collect();
        assert!(parse(&applied_with(serde_json::json!(records))).is_ok());
        for bad in ["", "bogus", "File", "dir"] {
            let bytes = applied_with(serde_json::json!([{"path": "/etc/shadow", "kind": bad, "origin_file": "x"}]));
            let Err(StateError::Corrupt(why)) = parse(&bytes) else { panic!("kind {bad:?} was accepted") };
            assert!(why.contains("\"/etc/shadow\"") && why.contains(&format!("{bad:?}")), "{why}");
        }
    }

    fn seen_file(content: &[u8], stamp: &str) -> Observed {
        Observed::File {
            bytes: None,
            sha256: crate::model::plan::sha256(content),
            mode: 0o644,
            uid: 0,
            gid: 0,
            inode: (1, 1),
            stamp: stamp.into(),
        }
    }

    #[test]
    fn an_entry_without_contents_is_recorded_with_the_content_it_took_over() {
        let entry = ObjectRecord {
            path: "/etc/shadow".into(),
            kind: "file".into(),
            sha256: None,
            target: None,
            mode: Some(0o644),
            uid: Some(0),
            gid: Some(0),
            origin_file: "x.bu".into(),
            origin_path: None,
            role: None,
            stamp: None,
        };
        let first = entry.clone().with_host_file(None, Some(&seen_file(b"before", "s1")));
        assert_eq!(first.sha256, Some(crate::model::plan::sha256(b"before")), "taken over as it is");
        assert_eq!(first.stamp.as_deref(), Some("s1"));

        let later = entry.clone().with_host_file(Some(&first.owned()), Some(&seen_file(b"edited", "s2")));
        assert_eq!(later.sha256, first.sha256, "an edit on the host does not become owned");
        assert_eq!(later.stamp, None, "a stamp is kept only when it vouches for the recorded hash");

        let written = ObjectRecord { sha256: Some(crate::model::plan::sha256(b"new")), ..entry.clone() };
        let pending = written.with_host_file(None, Some(&seen_file(b"old", "s3")));
        assert_eq!((pending.sha256, pending.stamp), (Some(crate::model::plan::sha256(b"new")), None));
        assert_eq!(entry.clone().with_host_file(None, Some(&Observed::Missing)), entry, "nothing there yet");
    }

    #[test]
    fn round_trips_and_refuses_bad_files() {
        let mut state = State::new();
        state.generation = 4;
        assert_eq!(parse(&to_bytes(&state)).unwrap(), state);
        assert!(matches!(parse(b"{not json"), Err(StateError::Corrupt(_))));
        assert!(matches!(parse(b"{\"schema_version\": 99}"), Err(StateError::TooNew(99))));
        assert!(matches!(parse(b"{}"), Err(StateError::Corrupt(_))));
    }

    /// A state with an applied revision, a pending run and a source, parsed from hand-written
    /// JSON (the shape docs/state.md shows).
    fn documented_state() -> State {
        let text = r#"{
          "schema_version": 1,
          "source": {"kind": "source-repo", "location": "/srv/infra", "host": "nas", "commit": "761dad2c"},
          "generation": 2,
          "last_applied": {
            "revision": "ac7a4f63b769", "applied_at": "2026-11-26T12:45:39Z",
            "objects": [{"path": "/etc/caddy/Caddyfile", "kind": "file", "sha256": "sha256-f0", "mode": 420,
                         "uid": 0, "gid": 0, "origin_file": "services/caddy/config/Caddyfile"}],
            "units": ["enable backup.timer"]
          },
          "pending": {"revision": "bb", "started_at": "2026-11-26T12:46:00Z",
                      "objects": [{"path": "/etc/a\u003cb", "kind": "symlink", "origin_file": "x"}]}
        }"#;
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_compact_state_file_is_one_line_and_reads_back_the_same() {
        let state = documented_state();
        assert_eq!(state.generation, 2);
        assert_eq!(state.pending.as_ref().unwrap().objects[0].path, "/etc/a<b");
        let mut compact = Vec::new();
        write_compact(&state, &mut compact).unwrap();
        assert_eq!(compact.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert!(compact.ends_with(b"}\n"));
        assert_eq!(parse(&compact).unwrap(), state);
        assert_eq!(parse(&to_bytes(&state)).unwrap(), state, "the pretty form reads the same");
    }

    #[test]
    fn the_version_is_read_from_the_top_level_object_only() {
        let no_version =
            |bytes: &[u8]| matches!(parse(bytes), Err(StateError::Corrupt(why)) if why == "no schema_version");
        assert!(no_version(b"[99]"), "an array names no version");
        assert!(no_version(b"\"x\""));
        assert!(no_version(b"{\"schema_version\": \"1\"}"), "a string is no version");
        assert!(no_version(b"{\"schema_version\": -1}"));
        assert!(no_version(b"{\"source\": {\"schema_version\": 1}}"), "a nested key is not the version");
        assert!(matches!(parse(b"{\"generation\": 1, \"schema_version\": 7}"), Err(StateError::TooNew(7))));
        assert!(matches!(parse(b"{\"schema_version\": 1} x"), Err(StateError::Corrupt(_))), "trailing bytes");
        assert!(matches!(parse(b"{\"schema_version\": 1, \"generation\": \"two\"}"), Err(StateError::Corrupt(_))));
    }
}
