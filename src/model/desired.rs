//! The desired state of a host: the objects a config asks for on disk (files, directories,
//! links, unit files, drop-ins, masks), the units to enable, and the first-boot-only entries
//! that day 2 leaves alone, each with its origin.
//!
//! It is derived from an Ignition config, so what `render-ignition` emits and what `plan` and
//! `apply` converge to are one model.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::ignition::dataurl;
use crate::model::ignition::types::{Config, File, NodeGroup, NodeUser, Resource};
use crate::model::ignition::validate::SYSTEMD_UNIT_DIR;
use crate::model::source::compose::{EntryKey, Origin};
use crate::model::unit;

/// Mode of new files when the config sets none (Ignition's default).
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of new directories when the config sets none (Ignition's default).
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// The highest user or group id a file can be given: `chown` takes the next one, `(uid_t)-1`,
/// as "leave unchanged".
pub const MAX_OWNER_ID: i64 = u32::MAX as i64 - 1;
/// Where Quadlet files for the system instance live.
pub const QUADLET_DIR: &str = "/etc/containers/systemd";

/// What an object is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A hard link to another path.
    HardLink,
}

impl Kind {
    /// The name used in plans.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            Kind::HardLink => "hard link",
        }
    }
}

/// A user or group as the config names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// Not set: root for new objects, unchanged for existing ones.
    Unset,
    /// By numeric id.
    Id(u32),
    /// By name, resolved in the root's `/etc/passwd` or `/etc/group`.
    Name(String),
}

impl Owner {
    fn from_parts(id: Option<i64>, name: Option<&str>) -> Self {
        match (id, name.filter(|n| !n.is_empty())) {
            (Some(id), _) => Owner::Id(u32::try_from(id).unwrap_or(u32::MAX)),
            (None, Some(name)) => Owner::Name(name.to_string()),
            _ => Owner::Unset,
        }
    }
}

/// One piece of a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Known bytes (decoded from a `data:` URL, or kept from the translation that made it),
    /// shared rather than copied.
    Bytes(Arc<Vec<u8>>),
    /// Fetched at apply time and checked against its hash.
    Remote {
        /// The URL.
        source: String,
        /// `gzip` when the fetched bytes are compressed.
        compression: Option<String>,
        /// `sha256-…`/`sha512-…` of the uncompressed bytes.
        hash: Option<String>,
    },
}

impl Piece {
    /// Known bytes.
    pub fn bytes(bytes: Vec<u8>) -> Piece {
        Piece::Bytes(Arc::new(bytes))
    }
}

/// Why an object exists in the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// A plain file, directory or link.
    Plain,
    /// A systemd unit file.
    UnitFile(String),
    /// A drop-in of a unit.
    Dropin(String),
    /// A mask of a unit (`/dev/null` link).
    Mask(String),
    /// A Podman Quadlet file and the service it generates.
    Quadlet(String),
    /// A link that enables a unit (`systemctl enable`).
    Enable(String),
}

/// One object on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Absolute path.
    pub path: String,
    /// File, directory or link.
    pub kind: Kind,
    /// Content pieces in order (contents, then appends); `None`: keep what is there (new: empty).
    pub content: Option<Vec<Piece>>,
    /// Link target.
    pub target: Option<String>,
    /// Permission bits; `None` leaves an existing object's mode alone.
    pub mode: Option<u32>,
    /// Owning user.
    pub user: Owner,
    /// Owning group.
    pub group: Owner,
    /// The config says `overwrite: true`: whatever is at the path may be replaced, a directory
    /// with what it holds. Units, drop-ins and masks cannot say it, so an unowned path there is
    /// replaced only with `--adopt` (docs/plan-and-apply.md, "Taking over existing paths").
    pub overwrite: bool,
    /// What it is for.
    pub role: Role,
    /// Where it was declared.
    pub origin: Origin,
    /// The content's hash, computed once.
    pub cache: DigestCache,
}

/// A lazily computed content hash; never part of an object's identity.
#[derive(Debug, Clone, Default)]
pub struct DigestCache(std::cell::OnceCell<Option<String>>);

impl PartialEq for DigestCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DigestCache {}

impl Object {
    /// The content bytes when every piece is known (borrowed when there is one piece).
    pub fn known_bytes(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        match self.content.as_deref()? {
            [] => Some(std::borrow::Cow::Borrowed(&[])),
            [Piece::Bytes(b)] => Some(std::borrow::Cow::Borrowed(b.as_slice())),
            pieces => {
                let mut out = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Bytes(b) => out.extend_from_slice(b),
                        Piece::Remote { .. } => return None,
                    }
                }
                Some(std::borrow::Cow::Owned(out))
            }
        }
    }

    /// Sets the content hash of an object whose content is not held (rebuilt from a record).
    pub fn preset_digest(&self, digest: Option<String>) {
        let _ = self.cache.0.set(digest);
    }

    /// `sha256-<hex>` of the content when it is known (computed once).
    pub fn digest(&self) -> Option<String> {
        self.cache.0.get_or_init(|| digest_of(self.content.as_deref())).clone()
    }

    /// The mode a new object gets.
    pub fn effective_mode(&self) -> u32 {
        self.mode.unwrap_or(match self.kind {
            Kind::Directory => DEFAULT_DIR_MODE,
            _ => DEFAULT_FILE_MODE,
        })
    }
}

/// A unit's activation intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitIntent {
    /// Unit name.
    pub name: String,
    /// `Some(true)`: enable, `Some(false)`: disable, `None`: leave alone.
    pub enabled: Option<bool>,
    /// Masked.
    pub mask: bool,
    /// Where it was declared.
    pub origin: Origin,
}

/// An entry day 2 does not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// What it is, e.g. `storage.disks /dev/vdb`.
    pub what: String,
    /// Why it is skipped.
    pub reason: String,
    /// Where it was declared.
    pub origin: Origin,
}

/// The desired state of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Objects by path.
    pub objects: BTreeMap<String, Object>,
    /// Units to enable, disable or mask.
    pub units: Vec<UnitIntent>,
    /// First-boot-only entries.
    pub skipped: Vec<Skipped>,
    /// Paths that must not exist: the enablement links of units to disable.
    pub absent: BTreeMap<String, Absent>,
    /// What no running host can be converged to, each naming where it was declared: owner ids
    /// no file can have, `[Install]` values systemctl would refuse. `plan` and `apply` refuse
    /// the whole config while any is left ([`DesiredState::refusal`]).
    pub problems: Vec<String>,
}

/// A path that must not exist, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    /// The unit it belonged to.
    pub unit: String,
    /// The link target that marks it as that unit's (only such links are removed).
    pub target: String,
    /// Where the intent was declared.
    pub origin: Origin,
}

/// First-boot-only, never touched on a running host.
const FIRST_BOOT_ONLY: &str = "first-boot-only: applied by Ignition when the machine is provisioned";
/// Accounts are not converged yet.
const ACCOUNTS_FIRST_BOOT: &str = "first-boot-only until day-2 account support lands";

/// Builds the desired state of `cfg`. `origins` names where each entry came from; entries
/// without one get `fallback`.
pub fn from_config(cfg: &Config, origins: &BTreeMap<EntryKey, Origin>, fallback: &Origin) -> DesiredState {
    let build = Build::new(cfg, origins, fallback);
    let mut state = DesiredState::default();
    for d in &cfg.storage.directories {
        let origin = build.origin(EntryKey::Node(d.path.clone()));
        state.check_owner_ids(&d.path, &d.user, &d.group, &origin);
        state.insert(Object {
            path: d.path.clone(),
            kind: Kind::Directory,
            content: None,
            target: None,
            mode: d.mode.map(|m| build.mode(m)),
            user: owner_user(&d.user),
            group: owner_group(&d.group),
            overwrite: d.overwrite == Some(true),
            role: Role::Plain,
            origin,
            cache: DigestCache::default(),
        });
    }
    let files: Vec<&File> = cfg.storage.files.iter().collect();
    for (f, decoded) in files.iter().zip(decode_files(&files)) {
        let object = build.file(f, decoded);
        state.check_owner_ids(&f.path, &f.user, &f.group, &object.origin);
        state.insert(object);
    }
    for l in &cfg.storage.links {
        let origin = build.origin(EntryKey::Node(l.path.clone()));
        state.check_owner_ids(&l.path, &l.user, &l.group, &origin);
        state.insert(Object {
            path: l.path.clone(),
            kind: if l.hard == Some(true) { Kind::HardLink } else { Kind::Symlink },
            content: None,
            target: l.target.clone(),
            mode: None,
            user: owner_user(&l.user),
            group: owner_group(&l.group),
            overwrite: l.overwrite == Some(true),
            role: Role::Plain,
            origin,
            cache: DigestCache::default(),
        });
    }
    build.units(&mut state);
    add_first_boot_only(&mut state, cfg, &|key| build.origin(key));
    state
}

/// The objects of `cfg` that the unit checks read, built as [`from_config`] builds them: its
/// units' files, drop-ins and masks, and the files in the Quadlet directory. Enough to start the
/// checks before the rest of a large desired state is built; no other object, no intent, no
/// problem.
pub fn unit_objects(cfg: &Config, origins: &BTreeMap<EntryKey, Origin>, fallback: &Origin) -> DesiredState {
    let build = Build::new(cfg, origins, fallback);
    let mut state = DesiredState::default();
    let quadlets: Vec<&File> =
        cfg.storage.files.iter().filter(|f| crate::model::path::is_below(&f.path, QUADLET_DIR)).collect();
    for (f, decoded) in quadlets.iter().zip(decode_files(&quadlets)) {
        state.insert(build.file(f, decoded));
    }
    build.units(&mut state);
    state.units.clear();
    state
}

/// What turns a config's entries into objects: where each came from, and how its modes read.
struct Build<'a> {
    cfg: &'a Config,
    origins: &'a BTreeMap<EntryKey, Origin>,
    fallback: &'a Origin,
    /// Whether the config's spec keeps setuid, setgid and sticky bits (3.6 and later): before
    /// it, Ignition drops them when it writes.
    special_bits: bool,
}

impl<'a> Build<'a> {
    fn new(cfg: &'a Config, origins: &'a BTreeMap<EntryKey, Origin>, fallback: &'a Origin) -> Self {
        let special_bits = crate::model::ignition::spec::parse_version(&cfg.ignition.version)
            .is_none_or(|s| s.honors_special_mode_bits());
        Build { cfg, origins, fallback, special_bits }
    }

    fn origin(&self, key: EntryKey) -> Origin {
        self.origins.get(&key).cloned().unwrap_or_else(|| self.fallback.clone())
    }

    fn mode(&self, mode: i64) -> u32 {
        to_mode(mode, self.special_bits)
    }

    /// The object of file entry `f`, whose contents `decoded` holds.
    fn file(&self, f: &File, decoded: Decoded) -> Object {
        let Decoded { pieces, digest } = decoded;
        let has_content = f.contents.source.is_some() || !f.append.is_empty();
        let role = quadlet_role(&f.path, pieces.first());
        let cache = DigestCache::default();
        if has_content {
            cache.0.set(digest).expect("a new cache is empty");
        }
        Object {
            path: f.path.clone(),
            kind: Kind::File,
            content: has_content.then_some(pieces),
            target: None,
            mode: f.mode.map(|m| self.mode(m)),
            user: owner_user(&f.user),
            group: owner_group(&f.group),
            overwrite: f.overwrite == Some(true),
            role,
            origin: self.origin(EntryKey::Node(f.path.clone())),
            cache,
        }
    }

    /// Adds the config's units: their files, drop-ins and masks, and what to enable or mask.
    fn units(&self, state: &mut DesiredState) {
        for u in &self.cfg.systemd.units {
            let unit_origin = self.origin(EntryKey::Unit(u.name.clone()));
            add_unit(state, u, &unit_origin, |d| self.origin(EntryKey::Dropin(u.name.clone(), d.to_string())));
        }
    }
}

fn add_unit(
    state: &mut DesiredState,
    u: &crate::model::ignition::types::Unit,
    origin: &Origin,
    dropin_origin: impl Fn(&str) -> Origin,
) {
    let path = format!("{SYSTEMD_UNIT_DIR}/{}", u.name);
    for d in &u.dropins {
        let Some(contents) = &d.contents else { continue };
        state.insert(unit_file(
            format!("{path}.d/{}", d.name),
            contents,
            Role::Dropin(u.name.clone()),
            dropin_origin(&d.name),
        ));
    }
    let mask = u.mask == Some(true);
    if mask {
        state.insert(Object {
            path: path.clone(),
            kind: Kind::Symlink,
            content: None,
            target: Some("/dev/null".into()),
            mode: None,
            user: Owner::Unset,
            group: Owner::Unset,
            overwrite: false,
            role: Role::Mask(u.name.clone()),
            origin: origin.clone(),
            cache: DigestCache::default(),
        });
    } else if let Some(contents) = &u.contents {
        state.insert(unit_file(path, contents, Role::UnitFile(u.name.clone()), origin.clone()));
    }
    if mask || u.enabled.is_some() {
        state.units.push(UnitIntent { name: u.name.clone(), enabled: u.enabled, mask, origin: origin.clone() });
    }
}

fn unit_file(path: String, contents: &str, role: Role, origin: Origin) -> Object {
    Object {
        path,
        kind: Kind::File,
        content: Some(vec![Piece::bytes(contents.as_bytes().to_vec())]),
        target: None,
        mode: Some(DEFAULT_FILE_MODE),
        user: Owner::Unset,
        group: Owner::Unset,
        overwrite: false,
        role,
        origin,
        cache: DigestCache::default(),
    }
}

fn add_first_boot_only(state: &mut DesiredState, cfg: &Config, origin: &impl Fn(EntryKey) -> Origin) {
    let mut skip = |section: &str, key: String, reason: &str| {
        let o = origin(EntryKey::Other(section.to_string(), key.clone()));
        state.skipped.push(Skipped { what: format!("{section} {key}"), reason: reason.to_string(), origin: o });
    };
    for d in &cfg.storage.disks {
        skip("storage.disks", d.device.clone(), FIRST_BOOT_ONLY);
    }
    for r in &cfg.storage.raid {
        skip("storage.raid", r.name.clone(), FIRST_BOOT_ONLY);
    }
    for f in &cfg.storage.filesystems {
        skip("storage.filesystems", f.device.clone(), FIRST_BOOT_ONLY);
    }
    for l in &cfg.storage.luks {
        skip("storage.luks", l.name.clone(), FIRST_BOOT_ONLY);
    }
    for a in &cfg.kernel_arguments.should_exist {
        skip("kernel_arguments.should_exist", a.clone(), FIRST_BOOT_ONLY);
    }
    for a in &cfg.kernel_arguments.should_not_exist {
        skip("kernel_arguments.should_not_exist", a.clone(), FIRST_BOOT_ONLY);
    }
    for u in &cfg.passwd.users {
        skip("passwd.users", u.name.clone(), ACCOUNTS_FIRST_BOOT);
    }
    for g in &cfg.passwd.groups {
        skip("passwd.groups", g.name.clone(), ACCOUNTS_FIRST_BOOT);
    }
}

impl DesiredState {
    fn insert(&mut self, object: Object) {
        self.objects.insert(object.path.clone(), object);
    }

    /// Why this state cannot be converged to, when it cannot: every problem, with control
    /// characters escaped so that no name in one can forge a line of output.
    pub fn refusal(&self) -> Option<String> {
        let shown: Vec<String> = self.problems.iter().map(|p| crate::model::path::printable(p).into_owned()).collect();
        (!shown.is_empty()).then(|| shown.join("; "))
    }

    /// Records a problem for each owner id of node `path` that no file can have.
    fn check_owner_ids(&mut self, path: &str, user: &NodeUser, group: &NodeGroup, origin: &Origin) {
        for (which, id) in [("user", user.id), ("group", group.id)] {
            if let Some(id) = id.filter(|id| !(0..=MAX_OWNER_ID).contains(id)) {
                self.problems.push(format!(
                    "{origin}: {path}: {which} id {id} is out of range: ids run from 0 to {MAX_OWNER_ID} \
                     ({} means \"leave unchanged\" to the kernel, and Ignition would quietly write root); set a \
                     valid id or a name",
                    u32::MAX
                ));
            }
        }
    }

    /// Replaces every remote content piece by its fetched, verified bytes. Returns the
    /// problems, one per object that could not be resolved.
    pub fn fetch_remote(&mut self, fetch: &dyn crate::model::ignition::children::Fetch) -> Vec<String> {
        let mut problems = Vec::new();
        for o in self.objects.values_mut() {
            let Some(pieces) = o.content.as_mut() else { continue };
            let mut fetched = false;
            for piece in pieces.iter_mut() {
                let Piece::Remote { source, compression, hash } = piece else { continue };
                let resource = Resource {
                    source: Some(source.clone()),
                    compression: compression.clone(),
                    verification: crate::model::ignition::types::Verification { hash: hash.clone() },
                    ..Resource::default()
                };
                match crate::model::ignition::children::load(&resource, fetch) {
                    Ok(bytes) => {
                        *piece = Piece::bytes(bytes);
                        fetched = true;
                    }
                    Err(e) => problems.push(format!("{}: {e}", o.path)),
                }
            }
            // Only new bytes need a new digest: the others were hashed as they were decoded.
            if fetched {
                o.cache = DigestCache::default();
            }
        }
        problems
    }

    /// A short content hash of the desired state (objects, unit intents), independent of how
    /// contents were encoded: the revision id recorded by `apply` and by `render-ignition`.
    pub fn revision(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for o in self.objects.values() {
            h.update(format!(
                "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}\0",
                o.path, o.kind, o.target, o.mode, o.user, o.group, o.overwrite
            ));
            match o.digest() {
                Some(digest) => h.update(digest),
                None => {
                    for piece in o.content.iter().flatten() {
                        if let Piece::Remote { source, compression, hash } = piece {
                            h.update(format!("{source}\0{compression:?}\0{hash:?}"));
                        }
                    }
                }
            }
            h.update([1u8]);
        }
        for u in &self.units {
            h.update(format!("{}\0{:?}\0{}\0", u.name, u.enabled, u.mask));
        }
        hex::encode(h.finalize())[..12].to_string()
    }

    /// Every path the desired state speaks of: objects and paths that must be absent.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.objects.keys().chain(self.absent.keys())
    }
}

fn to_mode(mode: i64, special_bits: bool) -> u32 {
    let mask = if special_bits { 0o7777 } else { 0o777 };
    u32::try_from(mode & mask).unwrap_or(DEFAULT_FILE_MODE)
}

/// Adds the enablement links of the units to enable, and marks those of the units to disable
/// as absent. `lookup` finds a unit file that is not part of the desired state (a vendor unit
/// under the root): its path and contents. A unit to enable whose `[Install]` section
/// `systemctl enable` would refuse adds a problem naming the unit, its file, the value and the
/// intent's origin; for a unit to disable, the refused values are skipped (they name no link
/// systemctl could have made).
pub fn add_enablement(state: &mut DesiredState, lookup: &dyn Fn(&str) -> Option<(String, String)>) {
    let intents = state.units.clone();
    for intent in intents.iter().filter(|u| !u.mask) {
        let Some(enabled) = intent.enabled else { continue };
        let mut queue = vec![intent.name.clone()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some((file_path, contents)) = defining_unit_file(state, &name, lookup) else { continue };
            let Ok(parsed) = unit::parse(&contents) else { continue };
            let found = unit::enable_links(&name, &file_path, &parsed);
            if enabled && !found.refused.is_empty() {
                for refused in &found.refused {
                    state.problems.push(format!("{}: cannot enable {name} ({file_path}): {refused}", intent.origin));
                }
                continue;
            }
            queue.extend(found.also);
            for link in found.links {
                if enabled {
                    state.insert(Object {
                        path: link.path,
                        kind: Kind::Symlink,
                        content: None,
                        target: Some(link.target),
                        mode: None,
                        user: Owner::Unset,
                        group: Owner::Unset,
                        overwrite: false,
                        role: Role::Enable(intent.name.clone()),
                        origin: intent.origin.clone(),
                        cache: DigestCache::default(),
                    });
                } else if !state.objects.contains_key(&link.path) {
                    let absent =
                        Absent { unit: intent.name.clone(), target: link.target, origin: intent.origin.clone() };
                    state.absent.insert(link.path, absent);
                }
            }
        }
    }
}

/// The path and contents of the file defining unit `name`: from the desired state when it is
/// written there, else from `lookup`.
fn defining_unit_file(
    state: &DesiredState,
    name: &str,
    lookup: &dyn Fn(&str) -> Option<(String, String)>,
) -> Option<(String, String)> {
    let file = unit::unit_file_name(name);
    let path = format!("{SYSTEMD_UNIT_DIR}/{file}");
    match state.objects.get(&path) {
        Some(o) if matches!(o.role, Role::UnitFile(_)) => {
            let text = String::from_utf8(o.known_bytes()?.into_owned()).ok()?;
            Some((path, text))
        }
        Some(_) => None,
        None => lookup(&file),
    }
}

fn owner_user(u: &NodeUser) -> Owner {
    Owner::from_parts(u.id, u.name.as_deref())
}

fn owner_group(g: &NodeGroup) -> Owner {
    Owner::from_parts(g.id, g.name.as_deref())
}

/// `sha256-<hex>` of the concatenated pieces, when every piece is known.
fn digest_of(content: Option<&[Piece]>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for piece in content? {
        match piece {
            Piece::Bytes(b) => h.update(b.as_slice()),
            Piece::Remote { .. } => return None,
        }
    }
    Some(format!("sha256-{}", hex::encode(h.finalize())))
}

/// A file entry's content pieces, decoded, and their digest when every piece is known.
#[derive(Debug, PartialEq)]
struct Decoded {
    pieces: Vec<Piece>,
    digest: Option<String>,
}

/// Below this many bytes of `data:` URLs, decoding on one thread is faster than starting more.
const PARALLEL_DECODE_MIN_BYTES: usize = 256 * 1024;

/// Decodes the contents of `files` (data URLs: base64, gzip) and hashes them, spread over the
/// cores, each thread taking the next file nobody has taken (their weights differ widely); the
/// results are in the order of `files`.
fn decode_files(files: &[&File]) -> Vec<Decoded> {
    let total: usize = files.iter().map(|f| url_bytes(f)).sum();
    let threads = if total < PARALLEL_DECODE_MIN_BYTES { 1 } else { crate::spread::cores() };
    crate::spread::claimed(files, threads, |f| decode_file(f))
}

/// The bytes of a file entry's URLs (one more, so that every entry weighs something).
fn url_bytes(f: &File) -> usize {
    let len = |r: &Resource| r.source.as_ref().map_or(0, String::len);
    len(&f.contents) + f.append.iter().map(len).sum::<usize>() + 1
}

fn decode_file(f: &File) -> Decoded {
    let mut pieces: Vec<Piece> = piece(&f.contents).into_iter().collect();
    pieces.extend(f.append.iter().filter_map(piece));
    let digest = digest_of(Some(&pieces));
    Decoded { pieces, digest }
}

fn piece(r: &Resource) -> Option<Piece> {
    let source = r.source.as_deref()?;
    if let Some(kept) = &r.payload.0 {
        return Some(Piece::Bytes(kept.clone()));
    }
    if source.starts_with("data:") {
        let bytes = dataurl::decode_contents(source, r.compression.as_deref()).unwrap_or_default();
        return Some(Piece::bytes(bytes));
    }
    Some(Piece::Remote {
        source: source.to_string(),
        compression: r.compression.clone().filter(|c| !c.is_empty()),
        hash: r.verification.hash.clone(),
    })
}

/// A file under the Quadlet directory with a Quadlet extension is a Quadlet, wherever it was
/// declared.
fn quadlet_role(path: &str, first: Option<&Piece>) -> Role {
    let Some(name) = path.strip_prefix(QUADLET_DIR).and_then(|rest| rest.strip_prefix('/')) else { return Role::Plain };
    let name = name.rsplit('/').next().unwrap_or(name);
    if !unit::is_quadlet_name(name) || path[QUADLET_DIR.len() + 1..].contains(".d/") {
        return Role::Plain;
    }
    let text = match first {
        Some(Piece::Bytes(b)) => std::str::from_utf8(b).ok(),
        _ => None,
    };
    unit::quadlet_service_name(name, text).map_or(Role::Plain, Role::Quadlet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::butane::render;

    fn desired(src: &str) -> DesiredState {
        let rendered = render(src, None).unwrap();
        from_config(&rendered.config, &BTreeMap::new(), &Origin { file: "x.bu".into(), path: None })
    }

    #[test]
    fn files_units_dropins_and_masks_become_objects() {
        let state = desired(
            "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/a\n      mode: 0600\n      contents: {inline: A}\n      append: [{inline: B}]\n    - path: /etc/containers/systemd/web.container\n      contents: {inline: \"[Container]\\nImage=x\\n\"}\nsystemd:\n  units:\n    - name: a.service\n      enabled: true\n      contents: \"[Service]\\nExecStart=/bin/true\\n\"\n      dropins: [{name: 10.conf, contents: \"[Service]\\n\"}]\n    - name: b.service\n      mask: true\n",
        );
        let a = &state.objects["/etc/a"];
        assert_eq!(
            (a.kind, a.mode, a.known_bytes().unwrap().into_owned()),
            (Kind::File, Some(0o600), b"AB".to_vec()),
            "contents then appends"
        );
        assert_eq!(state.objects["/etc/containers/systemd/web.container"].role, Role::Quadlet("web.service".into()));
        assert_eq!(state.objects["/etc/systemd/system/a.service"].role, Role::UnitFile("a.service".into()));
        assert_eq!(state.objects["/etc/systemd/system/a.service.d/10.conf"].role, Role::Dropin("a.service".into()));
        let mask = &state.objects["/etc/systemd/system/b.service"];
        assert_eq!((mask.kind, mask.target.as_deref()), (Kind::Symlink, Some("/dev/null")));
        assert_eq!(
            state.units.iter().map(|u| (u.name.as_str(), u.enabled, u.mask)).collect::<Vec<_>>(),
            [("a.service", Some(true), false), ("b.service", None, true)]
        );
    }

    #[test]
    fn the_unit_objects_are_the_units_and_quadlet_files_of_the_whole_state() {
        let src = "variant: fcos\nversion: 1.6.0\nstorage:\n  directories:\n    - path: /etc/containers/systemd\n  files:\n    - path: /etc/a\n      user: {id: 4294967295}\n      contents: {inline: A}\n    - path: /etc/systemd/system/plain.service\n      contents: {inline: \"[Service]\\n\"}\n    - path: /etc/containers/systemd/web.container\n      mode: 0600\n      contents: {inline: \"[Container]\\nImage=x\\n\"}\n    - path: /etc/containers/systemd/web.container.d/10.conf\n      contents: {inline: \"[Container]\\n\"}\n  links:\n    - path: /etc/containers/systemd/db.container\n      target: /etc/a\nsystemd:\n  units:\n    - name: a.service\n      enabled: true\n      contents: \"[Service]\\nExecStart=/bin/true\\n\"\n      dropins: [{name: 10.conf, contents: \"[Service]\\n\"}]\n    - name: b.service\n      mask: true\n";
        let rendered = render(src, None).unwrap();
        let fallback = Origin { file: "x.bu".into(), path: None };
        let units = unit_objects(&rendered.config, &BTreeMap::new(), &fallback);
        let whole = from_config(&rendered.config, &BTreeMap::new(), &fallback);
        let paths: Vec<&str> = units.objects.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/etc/containers/systemd/web.container",
                "/etc/containers/systemd/web.container.d/10.conf",
                "/etc/systemd/system/a.service",
                "/etc/systemd/system/a.service.d/10.conf",
                "/etc/systemd/system/b.service",
            ],
            "no plain file, directory or link: a file in the unit directory is no unit"
        );
        for (path, object) in &units.objects {
            assert_eq!(object, &whole.objects[path], "{path} as the whole state has it");
        }
        assert_eq!(units.objects["/etc/containers/systemd/web.container"].mode, Some(0o600));
        assert!(units.units.is_empty() && units.problems.is_empty(), "objects only: {units:?}");
        assert_eq!(whole.problems.len(), 1, "the whole state has the owner id problem: {:?}", whole.problems);
    }

    /// Serves every remote resource with the same bytes.
    struct Serve(&'static [u8]);

    impl crate::model::ignition::children::Fetch for Serve {
        fn fetch(&self, _: &Resource) -> Result<Vec<u8>, String> {
            Ok(self.0.to_vec())
        }
    }

    #[test]
    fn fetching_remote_contents_hashes_again_only_what_was_fetched() {
        let mut state = desired(
            "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/local\n      contents: {inline: A}\n    - path: /etc/remote\n      contents: {source: \"https://example.com/r\"}\n",
        );
        let hashed = |state: &DesiredState, path: &str| state.objects[path].cache.0.get().cloned();
        // `printf A | sha256sum`: hashed as it was decoded.
        let a = "sha256-559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd";
        assert_eq!(hashed(&state, "/etc/local"), Some(Some(a.to_string())));
        assert_eq!(hashed(&state, "/etc/remote"), Some(None), "not known before it is fetched");
        assert_eq!(state.fetch_remote(&Serve(b"B")), Vec::<String>::new());
        assert_eq!(hashed(&state, "/etc/local"), Some(Some(a.to_string())), "kept, not computed again");
        assert_eq!(hashed(&state, "/etc/remote"), None, "to be computed from the fetched bytes");
        // `printf B | sha256sum`.
        let b = "sha256-df7e70e5021544f4834bbee64a9e3789febc4be81470df629cad6ddb03320a5c";
        assert_eq!(state.objects["/etc/remote"].digest().as_deref(), Some(b));
    }

    #[test]
    fn owner_ids_no_file_can_have_are_problems_at_their_origin() {
        let cases = [
            ("0", None),
            ("4294967294", None),
            ("-1", Some("user id -1")),
            ("4294967295", Some("user id 4294967295")),
            ("4294967296", Some("user id 4294967296")),
        ];
        for (id, want) in cases {
            let state = desired(&format!(
                "variant: fcos\nversion: 1.6.0\nstorage:\n  files:\n    - path: /etc/a\n      user: {{id: {id}}}\n"
            ));
            match want {
                None => assert_eq!(state.refusal(), None, "case {id}"),
                Some(want) => {
                    let refusal = state.refusal().unwrap_or_else(|| panic!("case {id}: accepted"));
                    assert!(refusal.starts_with("x.bu: /etc/a: "), "case {id}: located: {refusal}");
                    assert!(refusal.contains(want), "case {id}: {refusal}");
                }
            }
        }
    }

    #[test]
    fn refused_install_values_are_problems_when_enabling_and_skipped_when_disabling() {
        let unit = |enabled: bool| {
            format!(
                "variant: fcos\nversion: 1.6.0\nsystemd:\n  units:\n    - name: a.service\n      enabled: {enabled}\n      contents: \"[Service]\\nExecStart=/bin/true\\n[Install]\\nAlias=/b.service\\nWantedBy=multi-user.target\\n\"\n"
            )
        };
        let mut enabling = desired(&unit(true));
        add_enablement(&mut enabling, &|_| None);
        let refusal = enabling.refusal().expect("enabling is refused");
        assert!(refusal.starts_with("x.bu: cannot enable a.service (/etc/systemd/system/a.service): [Install] Alias=/b.service is not a valid alias"), "{refusal}");
        assert!(!enabling.objects.keys().any(|p| p.contains(".wants/")), "no link of a refused unit");
        let mut disabling = desired(&unit(false));
        add_enablement(&mut disabling, &|_| None);
        assert_eq!(disabling.refusal(), None);
        assert_eq!(
            disabling.absent.keys().collect::<Vec<_>>(),
            ["/etc/systemd/system/multi-user.target.wants/a.service"]
        );
    }

    #[test]
    fn first_boot_sections_are_skipped_with_a_reason() {
        let state = desired(
            "variant: fcos\nversion: 1.6.0\nkernel_arguments: {should_exist: [quiet]}\npasswd: {users: [{name: core}]}\n",
        );
        let what: Vec<&str> = state.skipped.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(what, ["kernel_arguments.should_exist quiet", "passwd.users core"]);
        assert!(state.skipped[0].reason.starts_with("first-boot-only"));
    }

    #[test]
    fn decoding_on_threads_gives_what_one_thread_gives_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/butane");
        let mut configs: Vec<Config> = Vec::new();
        for case in std::fs::read_dir(&dir).unwrap() {
            let Ok(src) = std::fs::read_to_string(case.unwrap().path().join("expected.ign")) else { continue };
            configs.push(crate::model::ignition::spec::parse(&src).unwrap().config);
        }
        assert!(configs.len() >= 60, "only {} conformance configs in {}", configs.len(), dir.display());
        // One config of all their files: many runs, each of several entries.
        let mut all = Config::default();
        all.storage.files = configs.iter().flat_map(|c| c.storage.files.clone()).collect();
        configs.push(all);
        for cfg in &configs {
            let files = &cfg.storage.files;
            let one: Vec<Decoded> = files.iter().map(decode_file).collect();
            for threads in 1..=5 {
                let spread = crate::spread::claimed(files, threads, decode_file);
                assert_eq!(spread, one, "{threads} threads, {} files", files.len());
            }
        }
    }

    #[test]
    fn digests_are_of_the_decoded_content() {
        // `printf 'a\nb\n' | sha256sum`, and of `printf 'a\nb\nc'` for a file with an append.
        let d = desired(
            "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n  - path: /etc/a\n    contents: {inline: \"a\\nb\\n\"}\n  - path: /etc/b\n    contents: {inline: \"a\\nb\\n\"}\n    append: [{inline: c}]\n",
        );
        let a = "sha256-911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2";
        let b = "sha256-ea7fb08b7a2dc4619ffb7c7bb38d95a2047935fa165d71b12efd3852a2e6d0cc";
        assert_eq!(d.objects["/etc/a"].digest().as_deref(), Some(a));
        assert_eq!(d.objects["/etc/b"].digest().as_deref(), Some(b));
    }
}
