//! Butane → Ignition: expands the sugar (inline and local contents, `contents_local`, SSH key
//! files, trees, quadlets) and records where each generated output came from.
//!
//! Generated sections that Butane builds as a merge parent (mount units, `boot_device`, `grub`)
//! live in [`super::generate`]. Problems found here (unreadable local files, tree conflicts)
//! are source errors.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::butane::files::{EntryKind, FilesDir, LocalError, WalkEntry, resolve_local};
use crate::model::butane::generate;
use crate::model::butane::translation::Translations;
use crate::model::butane::variant::Target;
use crate::model::ignition::dataurl;
use crate::model::ignition::types::{
    Config, Directory, Dropin, File, Link, NodeGroup, NodeUser, PasswdUser, Payload, Quadlet, Resource, Tree,
};
use crate::model::path::Path;
use crate::model::report::Report;

/// A node that a tree walk found (or wants).
const CONFLICT: &str = "matching filesystem node has existing contents or different type";
/// Unreadable tree content.
const TREE_SPECIAL: &str = "trees may only contain files, directories, and symlinks";
/// A tree's files are read and encoded in batches of this many files: enough to keep every
/// processor busy, few enough that the tree's bytes are never held in memory whole besides
/// its data URLs. A translation that keeps the bytes ([`Cx::keep_payloads`]) holds them whole
/// anyway, and reads the tree in one batch.
const TREE_BATCH_FILES: usize = 128;
/// A tree file read: its data URL and its bytes.
type TreeFile = (dataurl::DataUrl, Vec<u8>);
/// The quadlet extensions Butane accepts.
pub const QUADLET_EXTENSIONS: &[&str] =
    &[".container", ".volume", ".network", ".kube", ".image", ".build", ".pod", ".artifact"];
/// Where rootful quadlets go.
pub const QUADLET_DIR_ROOTFUL: &str = "/etc/containers/systemd";
/// Where rootless quadlets (for every user) go.
pub const QUADLET_DIR_USERS: &str = "/etc/containers/systemd/users";
/// Mode of generated quadlet files.
const QUADLET_MODE: i64 = 0o644;

/// The result of translating one config.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The Ignition config (sugar fields are left as they were and never serialized).
    pub config: Config,
    /// Output path → source path.
    pub translations: Translations,
    /// Source errors found while translating, at source paths.
    pub report: Report,
    /// Warnings about the generated config, at output paths.
    pub output_report: Report,
}

/// Translates a decoded Butane config for `target`, in Butane's order: fields and resources,
/// mount units, trees, quadlets, then fcos's `boot_device` and `grub`.
pub fn translate(cfg: &Config, target: Target, files: Option<&dyn FilesDir>, compress: bool) -> Translated {
    let encoding = encoding_for(target, compress);
    let mut cx = Cx {
        files,
        encoding,
        keep_payloads: !compress,
        nodes: NodeIndex::default(),
        report: Report::default(),
        tr: Translations::default(),
    };
    let mut out = cfg.clone();
    out.ignition.version = target.spec.version();
    cx.tr.add(Path::root().key("version"), Path::root().key("ignition").key("version"));
    cx.ignition(&mut out);
    cx.storage_resources(&mut out);
    cx.units(&mut out);
    cx.users(&mut out);
    let (mut out, tr) = generate::mount_units(cfg, out, std::mem::take(&mut cx.tr));
    cx.tr = tr;
    cx.trees(&mut out, &cfg.storage.trees);
    cx.quadlets(&mut out, &cfg.systemd.quadlets);
    let mut output_report = Report::default();
    let mut tr = cx.tr;
    if target.gates().boot_device {
        (out, tr) = generate::boot_device(&cfg.boot_device, out, tr);
        output_report = generate::partition_warnings(&out);
    }
    if target.gates().grub {
        (out, tr) = generate::grub(cfg, encoding, out, tr);
    }
    Translated { config: out, translations: tr, report: cx.report, output_report }
}

/// Where each path of a config's files, links and directories is (the first entry of a path
/// that has several), so that the entries of a tree of thousands of files are matched by path,
/// not by a scan of every entry.
#[derive(Debug, Default)]
struct NodeIndex {
    files: HashMap<String, usize>,
    links: HashMap<String, usize>,
    dirs: HashMap<String, usize>,
}

impl NodeIndex {
    fn of(out: &Config) -> Self {
        fn first_of<'a>(paths: impl Iterator<Item = &'a String>) -> HashMap<String, usize> {
            let mut index = HashMap::new();
            for (i, path) in paths.enumerate() {
                index.entry(path.clone()).or_insert(i);
            }
            index
        }
        let storage = &out.storage;
        NodeIndex {
            files: first_of(storage.files.iter().map(|f| &f.path)),
            links: first_of(storage.links.iter().map(|l| &l.path)),
            dirs: first_of(storage.directories.iter().map(|d| &d.path)),
        }
    }
}

struct Cx<'a> {
    files: Option<&'a dyn FilesDir>,
    encoding: dataurl::Encoding,
    /// Whether a tree file's bytes are kept beside its URL ([`Payload`]): for a config applied
    /// right away, which would otherwise decode them back.
    keep_payloads: bool,
    /// The files, links and directories of the output, by path, while trees are added.
    nodes: NodeIndex,
    report: Report,
    tr: Translations,
}

impl<'a> Cx<'a> {
    /// Reads a `local:` file, reporting problems at `at`.
    fn read_local(&mut self, local: &str, at: &Path) -> Option<Vec<u8>> {
        let result = self.resolve(local).and_then(|(files, rel)| files.read(&rel));
        result.map_err(|msg| self.report.error(at.clone(), msg)).ok()
    }

    fn resolve(&self, local: &str) -> Result<(&'a dyn FilesDir, String), String> {
        let files = self.files.ok_or_else(|| LocalError::NoFilesDir.to_string())?;
        let rel = resolve_local(local).map_err(|e| e.to_string())?;
        Ok((files, rel))
    }

    fn data_url(&self, bytes: &[u8], user_compression: Option<&str>) -> (String, Option<String>) {
        let made = dataurl::make(bytes, user_compression, self.encoding);
        (made.url, made.compression)
    }

    /// Turns `inline`/`local` into a `data:` source; `at` is the source path, `out` the output
    /// path (they differ where Butane renames, e.g. `key_file` → `keyFile`).
    fn resource(&mut self, r: &mut Resource, at: &Path, out: &Path) {
        let mut content = None;
        if let Some(inline) = r.inline.take() {
            content = Some((inline.into_bytes(), "inline"));
        }
        if let Some(local) = r.local.take() {
            content = self.read_local(&local, &at.key("local")).map(|b| (b, "local"));
        }
        if let Some((bytes, key)) = content {
            let (url, compression) = self.data_url(&bytes, r.compression.as_deref());
            r.source = Some(url);
            r.compression = compression;
            self.tr.add(at.key(key), out.key("source"));
            self.tr.add(at.key(key), out.key("compression"));
        }
    }

    fn ignition(&mut self, out: &mut Config) {
        let base = Path::root().key("ignition");
        let config = base.key("config");
        for (i, r) in out.ignition.config.merge.iter_mut().enumerate() {
            let at = config.key("merge").index(i);
            self.resource(r, &at, &at);
        }
        let replace = config.key("replace");
        self.resource(&mut out.ignition.config.replace, &replace, &replace);
        let tls = base.key("security").key("tls");
        for (i, r) in out.ignition.security.tls.certificate_authorities.iter_mut().enumerate() {
            let out_at = tls.key("certificateAuthorities").index(i);
            self.resource(r, &tls.key("certificate_authorities").index(i), &out_at);
        }
    }

    fn storage_resources(&mut self, out: &mut Config) {
        let storage = Path::root().key("storage");
        for (i, f) in out.storage.files.iter_mut().enumerate() {
            let at = storage.key("files").index(i);
            self.resource(&mut f.contents, &at.key("contents"), &at.key("contents"));
            for (j, a) in f.append.iter_mut().enumerate() {
                let append = at.key("append").index(j);
                self.resource(a, &append, &append);
            }
        }
        for (i, l) in out.storage.luks.iter_mut().enumerate() {
            let at = storage.key("luks").index(i);
            self.resource(&mut l.key_file, &at.key("key_file"), &at.key("keyFile"));
        }
    }

    /// Reads `contents_local` into `contents` (verbatim text, not a data URL).
    fn contents_local(&mut self, contents: &mut Option<String>, local: &Option<String>, at: &Path) {
        let Some(local) = local.as_deref().filter(|l| !l.is_empty()) else { return };
        if let Some(bytes) = self.read_local(local, &at.key("contents_local")) {
            *contents = Some(String::from_utf8_lossy(&bytes).into_owned());
            self.tr.add_whole(at.key("contents_local"), at.key("contents"));
        }
    }

    fn units(&mut self, out: &mut Config) {
        let units = Path::root().key("systemd").key("units");
        for (i, unit) in out.systemd.units.iter_mut().enumerate() {
            let at = units.index(i);
            self.dropins(&mut unit.dropins, &at);
            let local = unit.contents_local.clone();
            self.contents_local(&mut unit.contents, &local, &at);
        }
    }

    fn dropins(&mut self, dropins: &mut [Dropin], unit: &Path) {
        for (j, dropin) in dropins.iter_mut().enumerate() {
            let local = dropin.contents_local.clone();
            self.contents_local(&mut dropin.contents, &local, &unit.key("dropins").index(j));
        }
    }

    fn users(&mut self, out: &mut Config) {
        let users = Path::root().key("passwd").key("users");
        for (i, user) in out.passwd.users.iter_mut().enumerate() {
            self.ssh_keys_local(user, &users.index(i));
        }
    }

    /// Appends the keys of `ssh_authorized_keys_local` files, one per non-empty line.
    fn ssh_keys_local(&mut self, user: &mut PasswdUser, at: &Path) {
        if user.ssh_authorized_keys_local.is_empty() {
            return;
        }
        let list = at.key("ssh_authorized_keys_local");
        if self.files.is_none() {
            self.report.error(list, LocalError::NoFilesDir.to_string());
            return;
        }
        for (j, local) in user.ssh_authorized_keys_local.clone().iter().enumerate() {
            let Some(bytes) = self.read_local(local, &list.index(j)) else { continue };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            for key in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty()) {
                let out = at.key("sshAuthorizedKeys").index(user.ssh_authorized_keys.len());
                self.tr.add(list.index(j), out);
                user.ssh_authorized_keys.push(key.to_string());
            }
        }
    }

    fn trees(&mut self, out: &mut Config, trees: &[Tree]) {
        self.nodes = NodeIndex::of(out);
        for (i, tree) in trees.iter().enumerate() {
            let at = Path::root().key("storage").key("trees").index(i);
            if let Err(msg) = self.tree(out, tree, &at) {
                self.report.error(at, msg);
            }
        }
    }

    fn tree(&mut self, out: &mut Config, tree: &Tree, at: &Path) -> Result<(), String> {
        let local = tree.local.as_deref().ok_or("local is required")?;
        let (files, rel) = self.resolve(local)?;
        if files.kind(&rel)? != EntryKind::Dir {
            return Err("root of tree must be a directory".into());
        }
        let entries = files.walk(&rel)?;
        let base = tree.path.as_deref().unwrap_or("/");
        let dirs_wanted =
            tree.dir_mode.is_some() || tree.user != NodeUser::default() || tree.group != NodeGroup::default();
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            let (batch, contents) = self.tree_batch(files, &rel, rest);
            let mut contents = contents.into_iter();
            rest = &rest[batch.len()..];
            for entry in batch {
                let dest = join_clean(base, &entry.rel);
                match entry.kind {
                    EntryKind::File { executable } => {
                        let (made, bytes) = contents.next().expect("every file of the batch was read")?;
                        let payload = Payload(self.keep_payloads.then(|| Arc::new(bytes)));
                        let mode = tree.file_mode.unwrap_or(if executable { 0o755 } else { 0o644 });
                        self.tree_file(out, tree, &dest, (made, payload), mode, at)?;
                    }
                    EntryKind::Symlink(ref target) => self.tree_link(out, tree, &dest, target.clone(), at)?,
                    EntryKind::Dir if dirs_wanted => self.tree_dir(out, tree, &dest, at)?,
                    EntryKind::Dir => {}
                    EntryKind::Other => return Err(TREE_SPECIAL.into()),
                }
            }
        }
        Ok(())
    }

    /// The most files of a tree read in one batch ([`TREE_BATCH_FILES`]).
    fn batch_files(&self) -> usize {
        if self.keep_payloads { usize::MAX } else { TREE_BATCH_FILES }
    }

    /// The next entries of a tree walk, up to [`Self::batch_files`] files or the first file that
    /// cannot be read, and the data URLs and bytes of their files in walk order (read and made
    /// together, spread over the processors where the files directory can), or why a file could
    /// not be read. Unless they are kept ([`Cx::keep_payloads`]), the bytes are dropped as the
    /// batch's entries are added, one batch at a time.
    fn tree_batch<'e>(
        &self,
        files: &dyn FilesDir,
        rel: &str,
        entries: &'e [WalkEntry],
    ) -> (&'e [WalkEntry], Vec<Result<TreeFile, String>>) {
        let (mut rels, mut at) = (Vec::new(), Vec::new());
        for (i, entry) in entries.iter().enumerate().filter(|(_, e)| matches!(e.kind, EntryKind::File { .. })) {
            if rels.len() == self.batch_files() {
                break;
            }
            rels.push(join_rel(rel, &entry.rel));
            at.push(i);
        }
        let mut reads = files.read_all(&rels);
        // The batch ends with the last file read, or the first that could not be.
        let last = reads.iter().position(Result::is_err).unwrap_or(reads.len().saturating_sub(1));
        reads.truncate(last + 1);
        let taken = match at.get(last) {
            Some(&i) if reads.len() == self.batch_files() || reads.last().is_some_and(Result::is_err) => i + 1,
            _ => entries.len(),
        };
        let inputs: Vec<&[u8]> = reads.iter().filter_map(|r| r.as_deref().ok()).collect();
        let mut made = dataurl::make_all(&inputs, self.encoding).into_iter();
        let contents =
            reads.into_iter().map(|r| r.map(|bytes| (made.next().expect("one URL per file read"), bytes))).collect();
        (&entries[..taken], contents)
    }

    fn tree_file(
        &mut self,
        out: &mut Config,
        tree: &Tree,
        dest: &str,
        (made, payload): (dataurl::DataUrl, Payload),
        mode: i64,
        at: &Path,
    ) -> Result<(), String> {
        let files_path = Path::root().key("storage").key("files");
        if self.nodes.links.contains_key(dest) || self.nodes.dirs.contains_key(dest) {
            return Err(CONFLICT.into());
        }
        let dataurl::DataUrl { url, compression } = made;
        if let Some(&idx) = self.nodes.files.get(dest) {
            let file = &mut out.storage.files[idx];
            if file.contents.source.is_some() || file.contents.inline.is_some() || file.contents.local.is_some() {
                return Err(CONFLICT.into());
            }
            file.contents.source = Some(url);
            file.contents.compression = compression;
            file.contents.payload = payload;
            file.mode.get_or_insert(mode);
            self.tr.add_whole(at.clone(), files_path.index(idx).key("contents"));
            if file.mode == Some(mode) {
                self.tr.add_whole(at.clone(), files_path.index(idx).key("mode"));
            }
            return Ok(());
        }
        let file = File {
            path: dest.to_string(),
            user: tree.user.clone(),
            group: tree.group.clone(),
            contents: Resource { source: Some(url), compression, payload, ..Resource::default() },
            mode: Some(mode),
            ..File::default()
        };
        self.tr.add_whole(at.clone(), files_path.index(out.storage.files.len()));
        self.nodes.files.insert(file.path.clone(), out.storage.files.len());
        out.storage.files.push(file);
        Ok(())
    }

    fn tree_link(
        &mut self,
        out: &mut Config,
        tree: &Tree,
        dest: &str,
        target: String,
        at: &Path,
    ) -> Result<(), String> {
        let links_path = Path::root().key("storage").key("links");
        if self.nodes.files.contains_key(dest) || self.nodes.dirs.contains_key(dest) {
            return Err(CONFLICT.into());
        }
        if let Some(&idx) = self.nodes.links.get(dest) {
            let link = &mut out.storage.links[idx];
            if link.target.is_some() {
                return Err(CONFLICT.into());
            }
            link.target = Some(target);
            self.tr.add_whole(at.clone(), links_path.index(idx).key("target"));
            return Ok(());
        }
        let link = Link {
            path: dest.to_string(),
            user: tree.user.clone(),
            group: tree.group.clone(),
            target: Some(target),
            ..Link::default()
        };
        self.tr.add_whole(at.clone(), links_path.index(out.storage.links.len()));
        self.nodes.links.insert(link.path.clone(), out.storage.links.len());
        out.storage.links.push(link);
        Ok(())
    }

    fn tree_dir(&mut self, out: &mut Config, tree: &Tree, dest: &str, at: &Path) -> Result<(), String> {
        let dirs_path = Path::root().key("storage").key("directories");
        if self.nodes.files.contains_key(dest) || self.nodes.links.contains_key(dest) {
            return Err(CONFLICT.into());
        }
        let mode = tree.dir_mode.unwrap_or(0o755);
        if let Some(&idx) = self.nodes.dirs.get(dest) {
            out.storage.directories[idx].mode.get_or_insert(mode);
            self.tr.add_whole(at.clone(), dirs_path.index(idx).key("mode"));
            return Ok(());
        }
        let dir = Directory {
            path: dest.to_string(),
            user: tree.user.clone(),
            group: tree.group.clone(),
            mode: Some(mode),
            ..Directory::default()
        };
        self.tr.add_whole(at.clone(), dirs_path.index(out.storage.directories.len()));
        self.nodes.dirs.insert(dir.path.clone(), out.storage.directories.len());
        out.storage.directories.push(dir);
        Ok(())
    }

    fn quadlets(&mut self, out: &mut Config, quadlets: &[Quadlet]) {
        for (i, q) in quadlets.iter().enumerate() {
            let at = Path::root().key("systemd").key("quadlets").index(i);
            if let Err((where_, msg)) = self.quadlet(out, q, &at) {
                self.report.error(where_, msg);
            }
        }
    }

    fn quadlet(&mut self, out: &mut Config, q: &Quadlet, at: &Path) -> Result<(), (Path, String)> {
        let dir = if q.rootful == Some(true) { QUADLET_DIR_ROOTFUL } else { QUADLET_DIR_USERS };
        let path = format!("{dir}/{}", q.name);
        let conflict = |out: &Config, p: &str| {
            out.storage.files.iter().any(|f| f.path == p)
                || out.storage.links.iter().any(|l| l.path == p)
                || out.storage.directories.iter().any(|d| d.path == p)
        };
        if let Some(template) = template_of(&q.name) {
            if q.contents.is_some() || q.contents_local.is_some() {
                let key = if q.contents.is_some() { "contents" } else { "contents_local" };
                return Err((at.key(key), "template instances cannot have contents or contents_local".into()));
            }
            if conflict(out, &path) {
                return Err((at.clone(), CONFLICT.into()));
            }
            self.tr.add_whole(at.clone(), Path::root().key("storage").key("links").index(out.storage.links.len()));
            out.storage.links.push(Link { path: path.clone(), target: Some(template), ..Link::default() });
        } else {
            let mut contents = q.contents.clone();
            self.contents_local(&mut contents, &q.contents_local, at);
            if conflict(out, &path) {
                return Err((at.clone(), CONFLICT.into()));
            }
            self.push_generated_file(out, &path, contents.unwrap_or_default().as_bytes(), at);
        }
        for (j, dropin) in q.dropins.iter().enumerate() {
            let dat = at.key("dropins").index(j);
            let mut contents = dropin.contents.clone();
            self.contents_local(&mut contents, &dropin.contents_local, &dat);
            let dpath = format!("{path}.d/{}", dropin.name);
            if conflict(out, &dpath) {
                return Err((dat, CONFLICT.into()));
            }
            self.push_generated_file(out, &dpath, contents.unwrap_or_default().as_bytes(), &dat);
        }
        Ok(())
    }

    fn push_generated_file(&mut self, out: &mut Config, path: &str, bytes: &[u8], at: &Path) {
        let (url, compression) = self.data_url(bytes, None);
        self.tr.add_whole(at.clone(), Path::root().key("storage").key("files").index(out.storage.files.len()));
        out.storage.files.push(File {
            path: path.to_string(),
            contents: Resource { source: Some(url), compression, ..Resource::default() },
            mode: Some(QUADLET_MODE),
            ..File::default()
        });
    }
}

/// How data URLs are encoded for `target`: Butane's shortest choice, or (when `compress` is
/// off, for configs that are decoded right away) without gzip.
pub fn encoding_for(target: Target, compress: bool) -> dataurl::Encoding {
    match (target.spec.has_compression(), compress) {
        (false, _) => dataurl::Encoding::Escaped,
        (true, true) => dataurl::Encoding::Shortest,
        (true, false) => dataurl::Encoding::Fast,
    }
}

/// For a template instance `foo@bar.container`, its template `foo@.container`.
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    let (instance, ext) = rest.split_at(dot);
    (!instance.is_empty()).then(|| format!("{prefix}@{ext}"))
}

/// Whether a unit or quadlet with this name is a template instance.
pub fn is_instance(name: &str) -> bool {
    template_of(name).is_some()
}

/// `path.Join(base, rel)` with Go's cleaning.
pub fn join_clean(base: &str, rel: &str) -> String {
    clean(&format!("{base}/{rel}"))
}

fn join_rel(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rel}"),
    }
}

/// Go's `path.Clean`: the one node-path normalisation, kept in [`crate::model::path`].
pub use crate::model::path::clean;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_template_of_instances() {
        assert_eq!(template_of("foo@bar.container").as_deref(), Some("foo@.container"));
        assert_eq!(template_of("foo@.container"), None);
        assert_eq!(template_of("foo.container"), None);
    }
}

#[cfg(test)]
mod rule_tests {
    //! One labelled case per translation rule, rendered end to end through [`crate::model::butane::render`].

    use crate::model::butane::files::MemFilesDir;
    use crate::model::butane::render;
    use crate::model::json::Json;
    use crate::model::path::{Path, Seg};

    fn at<'a>(json: &'a Json, path: &str) -> Option<&'a Json> {
        Path::parse(path).segs().iter().try_fold(json, |node, seg| match (seg, node) {
            (Seg::Key(k), Json::Object(_)) => node.get(k),
            (Seg::Index(i), Json::Array(items)) => items.get(*i),
            _ => None,
        })
    }

    fn files() -> MemFilesDir {
        MemFilesDir::default()
            .file("x.service", b"[Service]\nExecStart=/bin/x\n", false)
            .file("y.conf", b"[Service]\nNice=5\n", false)
            .file("keys/team.pub", b"ssh-ed25519 AAAA one\r\n\nssh-ed25519 BBBB two\n", false)
            .file("blob.txt", b"from a file\n", false)
            .file("tree/run.sh", b"#!/bin/sh\n", true)
            .file("tree/conf/a.conf", b"a\n", false)
            .symlink("tree/current", "conf/a.conf")
            .file("q.container", b"[Container]\nImage=x\n", false)
    }

    fn s(v: &str) -> Json {
        Json::Str(v.to_string())
    }

    #[test]
    fn translation_rules() {
        let cases: Vec<(&str, &str, &str, Json)> = vec![
            (
                "inline → escaped data URL",
                "storage: {files: [{path: /a, contents: {inline: hello}}]}",
                "$.storage.files.0.contents.source",
                s("data:,hello"),
            ),
            (
                "inline → compression \"\"",
                "storage: {files: [{path: /a, contents: {inline: hello}}]}",
                "$.storage.files.0.contents.compression",
                s(""),
            ),
            (
                "local → data URL",
                "storage: {files: [{path: /a, contents: {local: blob.txt}}]}",
                "$.storage.files.0.contents.source",
                s("data:,from%20a%20file%0A"),
            ),
            (
                "source is kept verbatim",
                "storage: {files: [{path: /a, contents: {source: 'https://e.x/a'}}]}",
                "$.storage.files.0.contents.source",
                s("https://e.x/a"),
            ),
            (
                "append inline",
                "storage: {files: [{path: /a, append: [{inline: more}]}]}",
                "$.storage.files.0.append.0.source",
                s("data:,more"),
            ),
            ("octal mode", "storage: {files: [{path: /a, mode: 0640}]}", "$.storage.files.0.mode", Json::Int(0o640)),
            (
                "unit contents_local verbatim",
                "systemd: {units: [{name: x.service, contents_local: x.service}]}",
                "$.systemd.units.0.contents",
                s("[Service]\nExecStart=/bin/x\n"),
            ),
            (
                "dropin contents_local verbatim",
                "systemd: {units: [{name: x.service, dropins: [{name: y.conf, contents_local: y.conf}]}]}",
                "$.systemd.units.0.dropins.0.contents",
                s("[Service]\nNice=5\n"),
            ),
            (
                "ssh keys file appended after inline",
                "passwd: {users: [{name: core, ssh_authorized_keys: [k0], ssh_authorized_keys_local: [keys/team.pub]}]}",
                "$.passwd.users.0.sshAuthorizedKeys.2",
                s("ssh-ed25519 BBBB two"),
            ),
            (
                "ssh keys file drops empty lines and CR",
                "passwd: {users: [{name: core, ssh_authorized_keys_local: [keys/team.pub]}]}",
                "$.passwd.users.0.sshAuthorizedKeys.0",
                s("ssh-ed25519 AAAA one"),
            ),
            (
                "tree executable → 0755",
                "storage: {trees: [{local: tree, path: /opt/t}]}",
                "$.storage.files.0",
                Json::Object(vec![
                    ("path".into(), s("/opt/t/conf/a.conf")),
                    (
                        "contents".into(),
                        Json::Object(vec![("compression".into(), s("")), ("source".into(), s("data:,a%0A"))]),
                    ),
                    ("mode".into(), Json::Int(0o644)),
                ]),
            ),
            (
                "tree walk order and x bit",
                "storage: {trees: [{local: tree, path: /opt/t}]}",
                "$.storage.files.1.mode",
                Json::Int(0o755),
            ),
            (
                "tree symlink → link verbatim",
                "storage: {trees: [{local: tree, path: /opt/t}]}",
                "$.storage.links.0.target",
                s("conf/a.conf"),
            ),
            (
                "tree fills an explicit file and keeps its mode",
                "storage: {files: [{path: /opt/t/run.sh, mode: 0700}], trees: [{local: tree, path: /opt/t}]}",
                "$.storage.files.0.mode",
                Json::Int(0o700),
            ),
            (
                "quadlet rootless path",
                "systemd: {quadlets: [{name: q.container, contents: '[Container]'}]}",
                "$.storage.files.0.path",
                s("/etc/containers/systemd/users/q.container"),
            ),
            (
                "quadlet rootful path and mode",
                "systemd: {quadlets: [{name: q.container, rootful: true, contents_local: q.container}]}",
                "$.storage.files.0.mode",
                Json::Int(0o644),
            ),
            (
                "quadlet without contents is empty",
                "systemd: {quadlets: [{name: q.volume, rootful: true}]}",
                "$.storage.files.0.contents.source",
                s("data:,"),
            ),
            (
                "quadlet dropin path",
                "systemd: {quadlets: [{name: q.container, rootful: true, dropins: [{name: a.conf, contents: x}]}]}",
                "$.storage.files.1.path",
                s("/etc/containers/systemd/q.container.d/a.conf"),
            ),
            (
                "quadlet instance → relative link",
                "systemd: {quadlets: [{name: web@a.container, rootful: true}]}",
                "$.storage.links.0.target",
                s("web@.container"),
            ),
        ];
        for (label, body, path, want) in cases {
            let version = if label.starts_with("quadlet") { "1.8.0-experimental" } else { "1.6.0" };
            let src = format!("variant: fcos\nversion: {version}\n{body}\n");
            let files = files();
            let rendered = render(&src, Some(&files)).unwrap_or_else(|e| panic!("case {label}: {e:?}"));
            let json = rendered.to_json();
            assert_eq!(at(&json, path), Some(&want), "case {label}: {}", json.to_pretty());
        }
    }

    #[test]
    fn spec_3_0_inline_has_no_compression_key() {
        let src = "variant: fcos\nversion: 1.0.0\nstorage: {files: [{path: /a, contents: {inline: hello}}]}\n";
        let json = render(src, None).unwrap().to_json();
        assert_eq!(at(&json, "$.storage.files.0.contents.compression"), None);
        assert_eq!(at(&json, "$.ignition.version"), Some(&s("3.0.0")));
    }

    #[test]
    fn user_units_merge_into_generated_mount_units() {
        let src = "variant: fcos\nversion: 1.6.0\nstorage: {filesystems: [{device: /dev/vdb, format: xfs, path: /var/srv, with_mount_unit: true}]}\nsystemd: {units: [{name: other.service}, {name: var-srv.mount, enabled: false}]}\n";
        let json = render(src, None).unwrap().to_json();
        assert_eq!(at(&json, "$.systemd.units.0.name"), Some(&s("var-srv.mount")));
        assert_eq!(at(&json, "$.systemd.units.0.enabled"), Some(&Json::Bool(false)), "the user's field wins");
        assert!(
            matches!(at(&json, "$.systemd.units.0.contents"), Some(Json::Str(c)) if c.starts_with("# Generated by Butane"))
        );
        assert_eq!(at(&json, "$.systemd.units.1.name"), Some(&s("other.service")));
    }
}

#[cfg(test)]
mod tree_batch_tests {
    //! Large trees are read and encoded in batches spread over the processors: the output, and
    //! which error a broken tree reports, must be those of a walk that handles one file at a time.

    use std::io::Read;

    use crate::model::butane::files::{EntryKind, FilesDir, MemFilesDir, WalkEntry};
    use crate::model::butane::{Failure, render, render_with};
    use crate::model::json::Json;

    /// Files of the tree `t`, in walk order: three batches' worth (of 128 files), of three kinds
    /// that Butane encodes differently.
    fn tree_files() -> Vec<(String, Vec<u8>)> {
        let noise = |len: usize| crate::model::ignition::dataurl::tests::noise(0x2545_f491_4f6c_dd1d, len);
        (0..300)
            .map(|i| {
                let bytes = match i % 3 {
                    0 => noise(25_000 + i),
                    1 => format!("line {i} of a repetitive text\n").repeat(900).into_bytes(),
                    _ => format!("short{i}").into_bytes(),
                };
                (format!("f{i:03}"), bytes)
            })
            .collect()
    }

    fn tree_dir() -> MemFilesDir {
        let files = tree_files()
            .into_iter()
            .fold(MemFilesDir::default(), |d, (name, bytes)| d.file(&format!("t/{name}"), &bytes, false));
        files.symlink("t/f050-link", "f050")
    }

    /// A files directory in which reading one file fails.
    struct Unreadable<'a> {
        inner: &'a MemFilesDir,
        broken: &'a str,
    }

    impl FilesDir for Unreadable<'_> {
        fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
            if rel == self.broken { Err(format!("open {rel}: permission denied")) } else { self.inner.read(rel) }
        }
        fn kind(&self, rel: &str) -> Result<EntryKind, String> {
            self.inner.kind(rel)
        }
        fn walk(&self, rel: &str) -> Result<Vec<WalkEntry>, String> {
            self.inner.walk(rel)
        }
    }

    /// The payload of a data URL, decoded by crates that share no code with CoreOps.
    fn payload(source: &str, compression: &str) -> Vec<u8> {
        let (bytes, _) = data_url::DataUrl::process(source).unwrap().decode_to_vec().unwrap();
        if compression != "gzip" {
            return bytes;
        }
        let mut out = Vec::new();
        libflate::gzip::Decoder::new(bytes.as_slice()).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    fn text<'a>(json: &'a Json, keys: &[&str]) -> &'a str {
        match keys.iter().try_fold(json, |node, key| node.get(key)) {
            Some(Json::Str(s)) => s,
            other => panic!("{keys:?}: {other:?}"),
        }
    }

    const SRC: &str = "variant: fcos\nversion: 1.6.0\nstorage: {trees: [{local: t, path: /dst}]}\n";

    #[test]
    fn every_file_comes_out_in_walk_order_with_its_contents() {
        let dir = tree_dir();
        let json = render(SRC, Some(&dir)).unwrap().to_json();
        let Some(Json::Array(files)) = json.get("storage").and_then(|s| s.get("files")) else { panic!("no files") };
        let want = tree_files();
        assert_eq!(files.len(), want.len());
        let mut compressions = std::collections::BTreeSet::new();
        for (file, (name, bytes)) in files.iter().zip(&want) {
            assert_eq!(text(file, &["path"]), format!("/dst/{name}"));
            let compression = text(file, &["contents", "compression"]);
            assert_eq!(&payload(text(file, &["contents", "source"]), compression), bytes, "{name}");
            compressions.insert(format!("{compression}:{}", &text(file, &["contents", "source"])[..6]));
        }
        assert_eq!(compressions.into_iter().collect::<Vec<_>>(), [":data:,", ":data:;", "gzip:data:;"]);
        let Some(Json::Array(links)) = json.get("storage").and_then(|s| s.get("links")) else { panic!("no links") };
        assert_eq!((text(&links[0], &["path"]), text(&links[0], &["target"])), ("/dst/f050-link", "f050"));
    }

    #[test]
    fn a_translation_for_apply_keeps_each_files_bytes_beside_its_url() {
        let dir = tree_dir();
        let for_apply = render_with(SRC, Some(&dir), false).unwrap().config;
        let want = tree_files();
        assert_eq!(for_apply.storage.files.len(), want.len());
        for (file, (name, bytes)) in for_apply.storage.files.iter().zip(&want) {
            let contents = &file.contents;
            let kept = contents.payload.0.as_deref().unwrap_or_else(|| panic!("{name}: no bytes kept"));
            assert_eq!(kept, bytes, "{name}");
            let url = contents.source.as_deref().unwrap();
            assert_eq!(&payload(url, contents.compression.as_deref().unwrap_or_default()), bytes, "{name}");
        }
        let rendered = render(SRC, Some(&dir)).unwrap().config;
        assert!(rendered.storage.files.iter().all(|f| f.contents.payload.0.is_none()), "a rendered config keeps none");
    }

    /// The one error of a failed render (`compress`: as `render-ignition` translates; else as
    /// `apply` does).
    fn only_error(src: &str, files: &dyn FilesDir) -> (String, String) {
        let for_apply = only_error_with(src, files, false);
        let rendered = only_error_with(src, files, true);
        assert_eq!(for_apply, rendered, "apply and render-ignition report the same");
        rendered
    }

    fn only_error_with(src: &str, files: &dyn FilesDir, compress: bool) -> (String, String) {
        match render_with(src, Some(files), compress) {
            Err(Failure::Invalid { report, .. }) => {
                assert_eq!(report.entries.len(), 1, "{:?}", report.entries);
                let d = &report.entries[0];
                (d.path.as_ref().map(ToString::to_string).unwrap_or_default(), d.message.clone())
            }
            other => panic!("expected one error, got {other:?}"),
        }
    }

    #[test]
    fn the_first_problem_in_walk_order_is_reported() {
        let dir = tree_dir();
        let late_read = Unreadable { inner: &dir, broken: "t/f250" };
        assert_eq!(only_error(SRC, &late_read), ("$.storage.trees.0".into(), "open t/f250: permission denied".into()));
        // The last file of the first batch, and the first of the second.
        for broken in ["t/f127", "t/f128"] {
            let read = Unreadable { inner: &dir, broken };
            assert_eq!(only_error(SRC, &read).1, format!("open {broken}: permission denied"));
            let conflict_before =
                SRC.replace("trees:", &format!("links: [{{path: /dst/f{:03}, target: /x}}], trees:", 126));
            assert_eq!(only_error(&conflict_before, &read).1, CONFLICT, "{broken}");
        }
        let early_read = Unreadable { inner: &dir, broken: "t/f010" };
        let late_conflict = SRC.replace("trees:", "links: [{path: /dst/f250, target: /x}], trees:");
        assert_eq!(only_error(&late_conflict, &early_read).1, "open t/f010: permission denied");
        let early_conflict = SRC.replace("trees:", "links: [{path: /dst/f010, target: /x}], trees:");
        assert_eq!(only_error(&early_conflict, &late_read).1, CONFLICT);
        let same_batch_read = Unreadable { inner: &dir, broken: "t/f020" };
        assert_eq!(only_error(&early_conflict, &same_batch_read).1, CONFLICT);
    }

    use super::CONFLICT;
}
