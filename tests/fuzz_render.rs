//! Property test: no input can panic the Butane front end, and every failure is located where
//! the input went wrong.
//!
//! Four seeded generators feed `butane::render`:
//! - mutated conformance inputs (line edits of real Butane files),
//! - random Butane-shaped documents (Butane's keys, mostly where they belong, over plausible
//!   values and raw tokens),
//! - token soup (random tokens: bare, after a valid `variant`/`version` header, or as the value
//!   of a key after the header),
//! - structure-aware documents: valid Butane built as a tree, then given targeted mutations
//!   (wrong types, invalid values, unknown keys, broken syntax, bad versions) whose expected
//!   outcome and position the generator knows.
//!
//! Each outcome is classified by pipeline stage ([`Class`]). Every generator must reach the
//! classes it is meant to reach at a meaningful rate, so a generator that stops reaching the
//! deep code fails the test instead of passing vacuously. Run with `--nocapture` to see the mix.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use core_ops::host::files_dir::DiskFilesDir;
use core_ops::model::butane::files::FilesDir;
use core_ops::model::butane::{self, Failure};
use core_ops::model::path::{Path, Seg};
use core_ops::model::report::{Diagnostic, Mark, Severity};

// ---- randomness ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

// ---- outcomes -----------------------------------------------------------------------------

/// How a render ended, in pipeline order: an input with several faults ends at the earliest
/// stage that catches one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// The YAML did not parse.
    Yaml,
    /// No translator for the variant and version.
    Select,
    /// A value of the wrong type.
    Types,
    /// Source, translation or generated-config validation failed.
    Invalid,
    /// Rendered, with warnings.
    Warned,
    /// Rendered cleanly.
    Clean,
}

const CLASSES: [Class; 6] = [Class::Yaml, Class::Select, Class::Types, Class::Invalid, Class::Warned, Class::Clean];

/// A classified render with its located diagnostics (a YAML error becomes a pathless one).
struct Outcome {
    class: Class,
    diags: Vec<Diagnostic>,
}

/// Renders `input`, classifies the outcome and checks that it is well formed: no panic, JSON
/// output, errors only on failure, and every diagnostic located inside the document.
fn render_classified(input: &str, files: Option<&dyn FilesDir>) -> Result<Outcome, String> {
    let result = catch_unwind(AssertUnwindSafe(|| butane::render(input, files))).map_err(|_| "panicked".to_string())?;
    let outcome = match result {
        Ok(rendered) => {
            let text = rendered.to_json().to_pretty();
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("output is not JSON: {e}"))?;
            if rendered.report.has_errors() {
                return Err("success with errors".into());
            }
            let class = if rendered.report.is_empty() { Class::Clean } else { Class::Warned };
            Outcome { class, diags: rendered.report.entries }
        }
        Err(Failure::Yaml(e)) => {
            Outcome { class: Class::Yaml, diags: vec![Diagnostic::new(Severity::Error, None, e.message).at(e.mark, 0)] }
        }
        Err(Failure::Select(_) | Failure::IgnitionVersion(_)) => Outcome { class: Class::Select, diags: Vec::new() },
        Err(Failure::Types(report)) if !report.is_empty() => Outcome { class: Class::Types, diags: report.entries },
        Err(Failure::Invalid { report, .. }) if report.has_errors() => {
            Outcome { class: Class::Invalid, diags: report.entries }
        }
        Err(other) => return Err(format!("empty failure: {other:?}")),
    };
    outcome.diags.iter().try_for_each(|d| check_inside_document(d, input))?;
    Ok(outcome)
}

/// A diagnostic must point at a line and column of the document (the end-of-input position
/// included), and every key of its path but the last must occur in the text: the last may
/// name a required key that is missing, the ones before it lead to where the problem is.
fn check_inside_document(d: &Diagnostic, input: &str) -> Result<(), String> {
    let Some(mark) = d.mark else { return Err(format!("unlocated: {}", d.raw_line())) };
    let lines: Vec<&str> = input.split('\n').collect();
    let inside = mark.line >= 1
        && mark.line <= lines.len()
        && mark.col >= 1
        && mark.col <= lines[mark.line - 1].chars().count() + 1;
    if !inside && !end_of_unterminated_input(mark, &lines) {
        return Err(format!("outside the {}-line document: {}", lines.len(), d.raw_line()));
    }
    let segs = d.path.as_ref().map_or(&[][..], Path::segs);
    let leading = &segs[..segs.len().saturating_sub(1)];
    match leading.iter().find(|s| matches!(s, Seg::Key(k) if !input.contains(k.as_str()))) {
        Some(missing) => Err(format!("path names {missing:?}, which is not in the document: {}", d.raw_line())),
        None => Ok(()),
    }
}

/// Known defect, tolerated here so that every other position stays checked: when the input
/// does not end in a newline, a YAML error found at the end of input is reported at column 1
/// of a line after the last (the parser behaves as if a newline followed).
fn end_of_unterminated_input(mark: Mark, lines: &[&str]) -> bool {
    mark.line == lines.len() + 1 && mark.col == 1
}

/// How often each class occurred for one generator.
#[derive(Default)]
struct Mix {
    counts: BTreeMap<Class, usize>,
    total: usize,
}

impl Mix {
    fn add(&mut self, class: Class) {
        *self.counts.entry(class).or_default() += 1;
        self.total += 1;
    }

    fn percent(&self, class: Class) -> f64 {
        100.0 * self.counts.get(&class).copied().unwrap_or(0) as f64 / self.total.max(1) as f64
    }

    /// Prints the mix (visible with `--nocapture`).
    fn print(&self, generator: &str) {
        eprintln!("{generator}: {self}");
    }

    fn require_at_least(&self, generator: &str, class: Class, percent: f64) {
        let got = self.percent(class);
        assert!(got >= percent, "{generator}: {class:?} is {got:.1}%, want at least {percent}%; mix: {self}");
    }

    fn require_at_most(&self, generator: &str, class: Class, percent: f64) {
        let got = self.percent(class);
        assert!(got <= percent, "{generator}: {class:?} is {got:.1}%, want at most {percent}%; mix: {self}");
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} inputs:", self.total)?;
        for class in CLASSES {
            write!(f, " {class:?} {:.1}%", self.percent(class))?;
        }
        Ok(())
    }
}

// ---- generator 1: mutated conformance inputs -----------------------------------------------

const TOKENS: &[&str] = &[
    ":",
    "-",
    " ",
    "\n",
    "  ",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "<<: *a",
    "!!str ",
    "!!int ",
    "'",
    "\"",
    "|",
    ">",
    "#",
    "0644",
    "0o7",
    "0x1ff",
    "-1",
    "99999999999999999999",
    "yes",
    "~",
    "null",
    "true",
    "é",
    "\t",
    "/etc/x",
    "../..",
    "%gh",
    "data:,x",
    "@",
    "x@y.container",
    ".d/",
    "?",
    ",",
];

const KEYS: &[&str] = &[
    "variant",
    "version",
    "ignition",
    "config",
    "merge",
    "replace",
    "inline",
    "local",
    "source",
    "storage",
    "files",
    "directories",
    "links",
    "trees",
    "path",
    "contents",
    "mode",
    "user",
    "group",
    "id",
    "name",
    "target",
    "hard",
    "overwrite",
    "append",
    "verification",
    "hash",
    "systemd",
    "units",
    "dropins",
    "enabled",
    "mask",
    "quadlets",
    "passwd",
    "users",
    "ssh_authorized_keys",
    "disks",
    "partitions",
    "filesystems",
    "luks",
    "raid",
    "boot_device",
    "mirror",
    "devices",
    "layout",
    "grub",
    "with_mount_unit",
    "format",
    "number",
    "label",
    "size_mib",
    "kernel_arguments",
];

/// One to two line edits of `input` (remove, duplicate, swap, insert a token, truncate, insert a
/// random key, and twice as often replace a value); returns the text and the first line (from 1) that may differ.
fn mutate(rng: &mut Rng, input: &str) -> (String, usize) {
    let mut lines: Vec<String> = input.lines().map(str::to_string).collect();
    let mut first = usize::MAX;
    for _ in 0..=rng.below(2) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        first = first.min(i);
        match rng.below(8) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                let j = rng.below(lines.len());
                first = first.min(j);
                lines.swap(i, j);
            }
            3 => {
                let line = &mut lines[i];
                let at = floor_char_boundary(line, rng.below(line.len() + 1));
                line.insert_str(at, rng.pick(TOKENS));
            }
            4 => {
                let line = &mut lines[i];
                let at = floor_char_boundary(line, rng.below(line.len() + 1));
                line.truncate(at);
            }
            5 => {
                let indent = " ".repeat(rng.below(8));
                lines.insert(i, format!("{indent}{}: {}", rng.pick(KEYS), rng.pick(TOKENS)));
            }
            _ => replace_value(rng, &mut lines[i]),
        }
    }
    (lines.join("\n"), first + 1)
}

/// Replaces what follows the line's first `: ` with a plausible value, keeping the structure:
/// this is the edit that reaches type and validation errors.
fn replace_value(rng: &mut Rng, line: &mut String) {
    if let Some(at) = line.find(": ") {
        line.truncate(at + 2);
        line.push_str(rng.pick(VALUES));
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A mutation cannot break anything before the first line it changed: a YAML error, and one of
/// the type errors it causes, must be reported there or later, or on the line above when the
/// change extends a scalar that starts there (deleting `contents: |` under `enabled: true`
/// continues the plain scalar `true` with the unit text; a tab at the start of a line is
/// reported where the parser began scanning the scalar before it).
fn check_after_first_change(original: Class, mutated: &Outcome, first: usize) -> Result<(), String> {
    match mutated.class {
        Class::Yaml => {}
        Class::Types if original != Class::Types => {}
        _ => return Ok(()),
    }
    let line = mutated.diags.iter().filter_map(|d| d.mark).map(|m| m.line).max().unwrap_or(0);
    if line + 1 < first {
        return Err(format!("{:?} reported at line {line}, before the first changed line {first}", mutated.class));
    }
    Ok(())
}

#[test]
fn mutated_corpus_inputs_fail_located_after_the_change() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut mix = Mix::default();
    for case in common::cases() {
        let input = std::fs::read_to_string(case.join("input.bu")).unwrap();
        let files = DiskFilesDir::new(case.join("files"));
        let original = match render_classified(&input, Some(&files)) {
            Ok(outcome) => outcome.class,
            Err(why) => panic!("{why} for corpus input {}", case.display()),
        };
        for _ in 0..40 {
            let (mutated, first) = mutate(&mut rng, &input);
            let checked = render_classified(&mutated, Some(&files))
                .and_then(|o| check_after_first_change(original, &o, first).map(|()| o));
            match checked {
                Ok(outcome) => mix.add(outcome.class),
                Err(why) => panic!("{why} for input mutated from {} at line {first}:\n{mutated}", case.display()),
            }
        }
    }
    mix.print("mutated corpus");
    assert!(mix.total > 4000, "only {} inputs checked", mix.total);
    // Token insertions mostly break the syntax; value replacements give validation errors, and
    // type errors when they hit one of the fewer int/bool fields; edits of the short inputs'
    // first two lines give variant/version errors; edits of comments, unit text or duplicated
    // list lines survive, some with warnings.
    for class in [Class::Yaml, Class::Invalid, Class::Clean] {
        mix.require_at_least("mutated corpus", class, 5.0);
    }
    mix.require_at_least("mutated corpus", Class::Types, 3.0);
    mix.require_at_least("mutated corpus", Class::Select, 2.0);
    mix.require_at_least("mutated corpus", Class::Warned, 2.0);
    // Most edits must change the outcome, or the mutations are too timid to test anything.
    mix.require_at_most("mutated corpus", Class::Clean, 30.0);
}

// ---- generator 2: random Butane-shaped documents ---------------------------------------------

/// Plausible scalar values, so that many random documents parse and reach the decoder.
const VALUES: &[&str] = &[
    "/etc/x",
    "etc/relative",
    "0644",
    "644",
    "010000",
    "true",
    "yes",
    "x.service",
    "x",
    "data:,x",
    "data:x",
    "https://example.com/x",
    "sha512-00",
    "gzip",
    "1000",
    "core",
    "~",
    "[]",
    "{}",
];

/// Butane's keys under each parent key (`""` is the root), so that random documents often
/// put a key where it belongs and get past the decoder.
const SCHEMA: &[(&str, &[&str])] = &[
    ("", &["ignition", "storage", "systemd", "passwd", "kernel_arguments", "boot_device"]),
    ("ignition", &["config"]),
    ("config", &["merge", "replace"]),
    ("merge", &["source", "inline", "verification"]),
    ("replace", &["source", "inline", "verification"]),
    ("storage", &["files", "directories", "links", "filesystems", "disks"]),
    ("files", &["path", "contents", "mode", "user", "group", "overwrite", "append"]),
    ("directories", &["path", "mode", "user", "group"]),
    ("links", &["path", "target", "hard", "user"]),
    ("contents", &["inline", "source", "compression", "verification"]),
    ("append", &["inline", "source"]),
    ("verification", &["hash"]),
    ("user", &["id", "name"]),
    ("group", &["id", "name"]),
    ("filesystems", &["device", "format", "path", "with_mount_unit", "label"]),
    ("disks", &["device", "partitions"]),
    ("partitions", &["number", "label", "size_mib"]),
    ("systemd", &["units"]),
    ("units", &["name", "enabled", "mask", "contents", "dropins"]),
    ("dropins", &["name", "contents"]),
    ("passwd", &["users"]),
    ("users", &["name", "ssh_authorized_keys"]),
    ("kernel_arguments", &["should_exist"]),
    ("boot_device", &["layout", "mirror"]),
    ("mirror", &["devices"]),
];

/// Keys whose value is a list.
const LIST_KEYS: &[&str] = &[
    "merge",
    "files",
    "directories",
    "links",
    "append",
    "filesystems",
    "disks",
    "partitions",
    "units",
    "dropins",
    "users",
    "ssh_authorized_keys",
    "should_exist",
    "devices",
];

/// A random Butane-shaped document: nested maps and lists, mostly over the keys Butane expects
/// where they are written, with plausible or raw-token values.
fn random_document(rng: &mut Rng) -> String {
    let mut out =
        format!("variant: fcos\nversion: {}\n", rng.pick(&["1.0.0", "1.4.0", "1.6.0", "1.7.0", "1.8.0-experimental"]));
    write_map(rng, &mut out, 0, 4, "");
    out
}

/// A value for a random document: mostly plausible scalars, sometimes raw tokens.
fn random_value(rng: &mut Rng) -> String {
    let token = if rng.chance(85) { rng.pick(VALUES) } else { rng.pick(TOKENS) };
    token.trim_matches('\n').to_string()
}

/// A child key of `parent`: usually one Butane has there, otherwise any of its keys.
fn random_key(rng: &mut Rng, parent: &str) -> &'static str {
    match SCHEMA.iter().find(|(p, _)| *p == parent) {
        Some((_, children)) if rng.chance(80) => rng.pick(children),
        _ => rng.pick(KEYS),
    }
}

fn write_map(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, parent: &str) {
    let mut written = Vec::new();
    for _ in 0..=rng.below(3) {
        let key = random_key(rng, parent);
        // A repeated key is a YAML error; the raw tokens already make enough of those.
        if written.contains(&key) {
            continue;
        }
        written.push(key);
        out.push_str(&format!("{}{key}:", " ".repeat(indent)));
        let is_list = LIST_KEYS.contains(&key);
        let is_parent = is_list || SCHEMA.iter().any(|(p, _)| *p == key);
        // Containers usually get their kind, leaves a scalar; sometimes the other way round.
        match (depth, rng.chance(if is_parent { 85 } else { 15 }), is_list) {
            (0, _, _) | (_, false, _) => out.push_str(&format!(" {}\n", random_value(rng))),
            (_, true, false) => {
                out.push('\n');
                write_map(rng, out, indent + 2, depth - 1, key);
            }
            (_, true, true) => {
                out.push('\n');
                write_list(rng, out, indent + 2, depth - 1, key);
            }
        }
    }
}

/// List items: small maps of the list key's children, or scalars for lists of strings.
fn write_list(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, key: &str) {
    let of_maps = SCHEMA.iter().any(|(p, _)| *p == key);
    for _ in 0..=rng.below(2) {
        if !of_maps || depth == 0 {
            out.push_str(&format!("{}- {}\n", " ".repeat(indent), random_value(rng)));
            continue;
        }
        let mut item = String::new();
        write_map(rng, &mut item, indent + 2, depth - 1, key);
        item.replace_range(indent..indent + 2, "- ");
        out.push_str(&item);
    }
}

#[test]
fn random_documents_reach_the_decoder_and_validation() {
    let mut rng = Rng(42);
    let mut mix = Mix::default();
    for _ in 0..3000 {
        let doc = random_document(&mut rng);
        match render_classified(&doc, None) {
            Ok(outcome) => mix.add(outcome.class),
            Err(why) => panic!("{why} for input:\n{doc}"),
        }
    }
    mix.print("random documents");
    // Syntax errors come from the raw tokens, type errors from values of the wrong kind, and
    // validation errors from plausible but wrong values under the right keys. The versions are
    // all supported, so there are no variant/version errors. A document with a dozen random
    // values and some misplaced keys rarely renders, and then mostly with unused-key warnings.
    for class in [Class::Yaml, Class::Types, Class::Invalid, Class::Warned] {
        mix.require_at_least("random documents", class, 5.0);
    }
    mix.require_at_least("random documents", Class::Clean, 1.0);
    // The documents are meant to reach the decoder: mostly well-formed YAML.
    mix.require_at_most("random documents", Class::Yaml, 50.0);
}

// ---- generator 3: token soup ----------------------------------------------------------------

const HEADER: &str = "variant: fcos\nversion: 1.6.0\n";

/// Up to 200 random tokens, short soups more likely: bare, after a valid header, or as the
/// value of a Butane key after the header (so that it gets past the variant check).
fn token_soup(rng: &mut Rng) -> String {
    let longest = rng.below(200) + 1;
    let len = rng.below(longest);
    let soup: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
    match rng.below(3) {
        0 => soup,
        1 => format!("{HEADER}{soup}"),
        _ => format!("{HEADER}{}: {soup}", rng.pick(KEYS)),
    }
}

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(7);
    let mut mix = Mix::default();
    for _ in 0..2000 {
        let text = token_soup(&mut rng);
        match render_classified(&text, None) {
            Ok(outcome) => mix.add(outcome.class),
            Err(why) => panic!("{why} for input:\n{text:?}"),
        }
    }
    mix.print("token soup");
    // Soup is mostly broken YAML; without the header it is a variant error; with the header
    // and a harmless soup (a comment, blanks, a short tail) it gets past the variant check to
    // the decoder, sometimes as far as a render.
    mix.require_at_least("token soup", Class::Yaml, 30.0);
    mix.require_at_least("token soup", Class::Select, 5.0);
    let past_variant_check = mix.percent(Class::Types)
        + mix.percent(Class::Invalid)
        + mix.percent(Class::Warned)
        + mix.percent(Class::Clean);
    assert!(past_variant_check >= 5.0, "token soup: only {past_variant_check:.1}% got past the variant check; {mix}");
}

// ---- generator 4: structure-aware documents ----------------------------------------------

/// A node of a generated document; scalars hold raw YAML text, written as is.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    /// A `|` block scalar.
    Literal(String),
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
}

fn scalar(text: impl Into<String>) -> Tree {
    Tree::Scalar(text.into())
}

fn map(entries: Vec<(&str, Tree)>) -> Tree {
    Tree::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Tree {
    fn get(&self, path: &Path) -> Option<&Tree> {
        path.segs().iter().try_fold(self, |node, seg| match (seg, node) {
            (Seg::Key(k), Tree::Map(entries)) => entries.iter().find(|(key, _)| key == k).map(|(_, v)| v),
            (Seg::Index(i), Tree::Seq(items)) => items.get(*i),
            _ => None,
        })
    }

    fn get_mut(&mut self, path: &Path) -> Option<&mut Tree> {
        path.segs().iter().try_fold(self, |node, seg| match (seg, node) {
            (Seg::Key(k), Tree::Map(entries)) => entries.iter_mut().find(|(key, _)| key == k).map(|(_, v)| v),
            (Seg::Index(i), Tree::Seq(items)) => items.get_mut(*i),
            _ => None,
        })
    }

    fn text(&self) -> Option<&str> {
        match self {
            Tree::Scalar(t) | Tree::Literal(t) => Some(t),
            _ => None,
        }
    }

    /// Sets `key` in the map at `path` (replacing or appending).
    fn set(&mut self, path: &Path, key: &str, value: Tree) {
        let Some(Tree::Map(entries)) = self.get_mut(path) else { panic!("no map at {path}") };
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    fn remove(&mut self, path: &Path, key: &str) {
        if let Some(Tree::Map(entries)) = self.get_mut(path) {
            entries.retain(|(k, _)| k != key);
        }
    }

    /// Every node's path, parents before children.
    fn paths(&self, at: &Path, out: &mut Vec<Path>) {
        out.push(at.clone());
        match self {
            Tree::Map(entries) => entries.iter().for_each(|(k, v)| v.paths(&at.key(k), out)),
            Tree::Seq(items) => items.iter().enumerate().for_each(|(i, v)| v.paths(&at.index(i), out)),
            _ => {}
        }
    }
}

/// A tree written out as block YAML, with where each node's value and key landed.
#[derive(Default)]
struct Layout {
    lines: Vec<String>,
    values: HashMap<Path, Mark>,
    keys: HashMap<Path, Mark>,
}

impl Layout {
    fn of(tree: &Tree) -> Layout {
        let mut layout = Layout::default();
        layout.block(tree, 0, &Path::root());
        layout
    }

    fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }

    fn here(&self, col: usize) -> Mark {
        Mark { line: self.lines.len() + 1, col }
    }

    /// Writes `tree` starting on a new line at `indent`.
    fn block(&mut self, tree: &Tree, indent: usize, at: &Path) {
        self.values.insert(at.clone(), self.here(indent + 1));
        let pad = " ".repeat(indent);
        match tree {
            Tree::Map(entries) if !entries.is_empty() => {
                entries.iter().for_each(|(k, v)| self.entry(k, v, indent, &at.key(k)));
            }
            Tree::Seq(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    // The item is written two columns in, then its first line gets the dash.
                    let first = self.lines.len();
                    self.block(item, indent + 2, &at.index(i));
                    self.lines[first].replace_range(indent..indent + 2, "- ");
                }
            }
            _ => self.inline(tree, pad),
        }
    }

    /// Writes `key: value`, the value on the same line when it is a scalar or empty.
    fn entry(&mut self, key: &str, value: &Tree, indent: usize, at: &Path) {
        self.keys.insert(at.clone(), self.here(indent + 1));
        let head = format!("{}{key}:", " ".repeat(indent));
        match value {
            Tree::Map(e) if !e.is_empty() => {
                self.lines.push(head);
                self.block(value, indent + 2, at);
            }
            Tree::Seq(s) if !s.is_empty() => {
                self.lines.push(head);
                self.block(value, indent + 2, at);
            }
            _ => {
                self.values.insert(at.clone(), self.here(head.len() + 2));
                self.inline(value, format!("{head} "));
            }
        }
    }

    /// Writes a scalar or empty collection after `prefix`; a block scalar's body follows.
    fn inline(&mut self, tree: &Tree, prefix: String) {
        let body_pad = " ".repeat(prefix.len() - prefix.trim_start().len() + 2);
        match tree {
            Tree::Scalar(text) => self.lines.push(prefix + text),
            Tree::Literal(body) => {
                self.lines.push(prefix + "|");
                self.lines.extend(body.lines().map(|l| format!("{body_pad}{l}")));
            }
            Tree::Map(_) => self.lines.push(prefix + "{}"),
            Tree::Seq(_) => self.lines.push(prefix + "[]"),
        }
    }
}

// -- the valid base document --

const UNIT_TEXT: &str =
    "[Unit]\nDescription=generated\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n";

/// A valid Butane config (fcos 1.3–1.6) using most of the common sugar.
fn butane_document(rng: &mut Rng) -> Tree {
    let minor = 3 + rng.below(4);
    let mut root = vec![("variant", scalar("fcos")), ("version", scalar(format!("1.{minor}.0")))];
    if rng.chance(50) {
        root.push(("ignition", ignition_section(rng, minor)));
    }
    if rng.chance(85) {
        root.push(("storage", storage_section(rng)));
    }
    if rng.chance(70) {
        root.push(("systemd", systemd_section(rng)));
    }
    if rng.chance(50) {
        root.push(("passwd", passwd_section(rng)));
    }
    if minor >= 4 && rng.chance(40) {
        root.push(("kernel_arguments", map(vec![("should_exist", Tree::Seq(vec![scalar("quiet")]))])));
    }
    map(root)
}

fn sha512(rng: &mut Rng) -> String {
    let hex: String = (0..128).map(|_| char::from(b"0123456789abcdef"[rng.below(16)])).collect();
    format!("sha512-{hex}")
}

fn ignition_section(rng: &mut Rng, minor: usize) -> Tree {
    let merge = (0..=rng.below(2))
        .map(|i| {
            if i == 0 && rng.chance(60) {
                let child = format!("'{{\"ignition\": {{\"version\": \"3.{}.0\"}}}}'", minor - 1);
                map(vec![("inline", scalar(child))])
            } else {
                let mut entries = vec![("source", scalar(format!("https://example.com/merge-{i}.ign")))];
                if rng.chance(40) {
                    entries.push(("verification", map(vec![("hash", scalar(sha512(rng)))])));
                }
                map(entries)
            }
        })
        .collect();
    map(vec![("config", map(vec![("merge", Tree::Seq(merge))]))])
}

fn storage_section(rng: &mut Rng) -> Tree {
    let directories: Vec<Tree> = (0..rng.below(3))
        .map(|i| {
            let mut d = vec![("path", scalar(format!("/etc/gen/dir-{i}")))];
            if rng.chance(50) {
                d.push(("mode", scalar("0755")));
            }
            map(d)
        })
        .collect();
    let files: Vec<Tree> = (0..=rng.below(3)).map(|i| file_entry(rng, i)).collect();
    let links: Vec<Tree> = (0..rng.below(3))
        .map(|i| {
            let mut l = vec![("path", scalar(format!("/etc/gen/link-{i}"))), ("target", scalar("/etc/gen/file-0"))];
            if rng.chance(30) {
                l.push(("hard", scalar(if rng.chance(50) { "true" } else { "false" })));
            }
            map(l)
        })
        .collect();
    let mut storage = Vec::new();
    for (key, list) in [("directories", directories), ("files", files), ("links", links)] {
        if !list.is_empty() {
            storage.push((key, Tree::Seq(list)));
        }
    }
    map(storage)
}

fn file_entry(rng: &mut Rng, i: usize) -> Tree {
    let dir = if rng.chance(70) { "/etc/gen" } else { "/var/lib/gen" };
    let mut f = vec![("path", scalar(format!("{dir}/file-{i}")))];
    if rng.chance(70) {
        f.push(("mode", scalar(rng.pick(&["0644", "0600", "0640", "0444", "0755"]))));
    }
    let contents = rng.chance(80).then(|| file_contents(rng, i));
    if rng.chance(30) {
        f.push(("overwrite", scalar(if contents.is_some() { "true" } else { "false" })));
    }
    if let Some(contents) = contents {
        f.push(("contents", contents));
    }
    for key in ["user", "group"] {
        if rng.chance(30) {
            let owner = if rng.chance(50) { ("name", scalar("core")) } else { ("id", scalar("1000")) };
            f.push((key, map(vec![owner])));
        }
    }
    if rng.chance(15) {
        f.push(("append", Tree::Seq(vec![map(vec![("inline", scalar("more"))])])));
    }
    map(f)
}

fn file_contents(rng: &mut Rng, i: usize) -> Tree {
    match rng.below(4) {
        0 => map(vec![("inline", scalar(format!("hello-{i}")))]),
        1 => map(vec![("inline", Tree::Literal(format!("line one {i}\nline two\n")))]),
        2 => map(vec![("source", scalar(format!("data:,hello%20{i}")))]),
        _ => {
            let mut c = vec![("source", scalar(format!("https://example.com/file-{i}")))];
            if rng.chance(30) {
                c.push(("compression", scalar("gzip")));
            }
            if rng.chance(50) {
                c.push(("verification", map(vec![("hash", scalar(sha512(rng)))])));
            }
            map(c)
        }
    }
}

fn systemd_section(rng: &mut Rng) -> Tree {
    let units = (0..=rng.below(3))
        .map(|i| {
            let suffix = rng.pick(&["service", "timer", "target"]);
            let mut u = vec![("name", scalar(format!("gen-{i}.{suffix}")))];
            if rng.chance(50) {
                u.push(("enabled", scalar(if rng.chance(50) { "true" } else { "false" })));
            }
            if rng.chance(70) {
                u.push(("contents", Tree::Literal(UNIT_TEXT.to_string())));
            }
            if rng.chance(30) {
                let dropins = (0..=rng.below(2))
                    .map(|j| {
                        map(vec![
                            ("name", scalar(format!("{}-gen.conf", 10 + j))),
                            ("contents", Tree::Literal(format!("[Service]\nEnvironment=GEN={j}\n"))),
                        ])
                    })
                    .collect();
                u.push(("dropins", Tree::Seq(dropins)));
            }
            map(u)
        })
        .collect();
    map(vec![("units", Tree::Seq(units))])
}

fn passwd_section(rng: &mut Rng) -> Tree {
    let users = (0..=rng.below(2))
        .map(|i| {
            let mut u = vec![("name", scalar(format!("gen{i}")))];
            if rng.chance(70) {
                let keys =
                    (0..=rng.below(2)).map(|j| scalar(format!("ssh-ed25519 AAAAC3Nza{i}{j} gen@host"))).collect();
                u.push(("ssh_authorized_keys", Tree::Seq(keys)));
            }
            if rng.chance(40) {
                u.push(("uid", scalar(format!("{}", 1001 + i))));
            }
            if rng.chance(30) {
                u.push(("groups", Tree::Seq(vec![scalar("wheel")])));
            }
            map(u)
        })
        .collect();
    map(vec![("users", Tree::Seq(users))])
}

// -- mutations --

/// Where the diagnostic of a mutation must point, resolved once the document is written.
#[derive(Debug, Clone)]
enum Anchor {
    /// The start of the value at this path.
    Value(Path),
    /// The key at this path.
    Key(Path),
    /// Nowhere (variant/version errors carry no position).
    Nowhere,
}

/// What one mutation must make the renderer report.
#[derive(Debug, Clone)]
struct Expect {
    /// Which mutation it was.
    name: &'static str,
    class: Class,
    /// The path a diagnostic must carry (none for YAML errors).
    path: Option<Path>,
    anchor: Anchor,
    /// How many lines after the anchor a YAML error may be reported.
    late: usize,
}

impl Expect {
    fn at_value(name: &'static str, class: Class, path: Path) -> Self {
        Expect { name, class, path: Some(path.clone()), anchor: Anchor::Value(path), late: 0 }
    }
}

/// The document being mutated and the paths that earlier mutations own.
struct Mutant {
    tree: Tree,
    touched: Vec<Path>,
}

impl Mutant {
    /// Paths that no earlier mutation is inside of or contains, so mutations do not undo or
    /// rewrite each other.
    fn free_paths(&self) -> Vec<Path> {
        let mut all = Vec::new();
        self.tree.paths(&Path::root(), &mut all);
        all.retain(|p| !p.is_empty() && self.is_free(p));
        all
    }

    fn is_free(&self, p: &Path) -> bool {
        !self.touched.iter().any(|t| t.starts_with(p) || p.starts_with(t))
    }

    /// Free paths whose last key is one of `keys`, with a scalar value.
    fn free_scalars(&self, keys: &[&str]) -> Vec<Path> {
        let mut out = self.free_paths();
        out.retain(|p| {
            last_key(p).is_some_and(|k| keys.contains(&k)) && self.tree.get(p).and_then(Tree::text).is_some()
        });
        out
    }

    /// Free paths of the items of lists whose path ends in `list_suffix` (`$.storage.files.N`).
    fn free_items(&self, list_suffix: &str) -> Vec<Path> {
        let mut out = self.free_paths();
        out.retain(|p| matches!(p.last(), Some(Seg::Index(_))) && p.parent().to_string().ends_with(list_suffix));
        out
    }

    fn touch(&mut self, paths: &[&Path]) {
        self.touched.extend(paths.iter().map(|p| (*p).clone()));
    }

    fn replace(&mut self, path: &Path, value: Tree) {
        *self.tree.get_mut(path).expect("mutated path exists") = value;
        self.touch(&[path]);
    }
}

fn last_key(p: &Path) -> Option<&str> {
    match p.last() {
        Some(Seg::Key(k)) => Some(k),
        _ => None,
    }
}

fn choose<T: Clone>(rng: &mut Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.below(items.len())].clone())
}

/// A mutation: changes the document and says what must come of it, or `None` when the
/// document has no place for it.
type Mutator = fn(&mut Rng, &mut Mutant) -> Option<Expect>;

/// Every mutation with its weight (how often it is tried).
const MUTATORS: &[(&str, usize, Mutator)] = &[
    ("syntax", 10, break_syntax),
    ("duplicate key", 4, duplicate_key),
    ("bad version", 4, bad_version),
    ("bad variant", 2, bad_variant),
    ("wrong type", 25, wrong_type),
    ("relative path", 5, relative_path),
    ("duplicate path", 4, duplicate_path),
    ("illegal mode", 4, illegal_mode),
    ("unit suffix", 4, unit_without_suffix),
    ("dropin suffix", 2, dropin_without_suffix),
    ("unit contents", 3, broken_unit_contents),
    ("bad url", 4, bad_url),
    ("bad hash", 3, bad_hash),
    ("compression", 2, unknown_compression),
    ("two sources", 3, two_sources),
    ("id and name", 3, id_and_name),
    ("overwrite", 2, overwrite_without_contents),
    ("broken child", 3, broken_child_config),
    ("duplicate user", 2, duplicate_user),
    ("duplicate key arg", 2, duplicate_kernel_argument),
    ("empty target", 2, empty_link_target),
    ("unknown key", 8, unknown_key),
    ("decimal mode", 3, decimal_mode),
    ("special bits", 2, special_mode_bits),
    ("no install", 2, enabled_without_install),
    ("child version", 2, child_config_other_version),
];

/// Values that break the YAML, with how many lines later the parser notices: an unclosed
/// flow collection is only found unclosed at the next line.
const SYNTAX_BREAKERS: &[(&str, usize)] = &[
    ("x: y", 0),
    ("@at", 0),
    ("`tick", 0),
    ("%percent", 0),
    ("'a' b", 0),
    ("\"a\" b", 0),
    ("&", 0),
    ("[a, b", 1),
    ("{a: 1", 1),
];

fn break_syntax(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| last_key(p).is_some() && matches!(m.tree.get(p), Some(Tree::Scalar(_))));
    let target = choose(rng, &targets)?;
    let (breaker, late) = SYNTAX_BREAKERS[rng.below(SYNTAX_BREAKERS.len())];
    m.replace(&target, scalar(breaker));
    Some(Expect { name: "syntax", class: Class::Yaml, path: None, anchor: Anchor::Value(target), late })
}

fn duplicate_key(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| last_key(p).is_some());
    let target = choose(rng, &targets)?;
    let key = last_key(&target)?.to_string();
    let value = m.tree.get(&target)?.clone();
    let Some(Tree::Map(entries)) = m.tree.get_mut(&target.parent()) else { return None };
    let at = entries.iter().position(|(k, _)| *k == key)? + 1;
    entries.insert(at, (key, value));
    m.touch(&[&target]);
    Some(Expect { name: "duplicate key", class: Class::Yaml, path: None, anchor: Anchor::Key(target), late: 0 })
}

fn bad_version(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = Path::parse("version");
    if !m.is_free(&target) {
        return None;
    }
    m.replace(&target, scalar(rng.pick(&["1.99.0", "one", "\"\"", "[1, 6, 0]", "~"])));
    Some(Expect { name: "bad version", class: Class::Select, path: None, anchor: Anchor::Nowhere, late: 0 })
}

fn bad_variant(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = Path::parse("variant");
    if !m.is_free(&target) {
        return None;
    }
    m.replace(&target, scalar(rng.pick(&["nope", "rhcos", "FCOS", "{}"])));
    Some(Expect { name: "bad variant", class: Class::Select, path: None, anchor: Anchor::Nowhere, late: 0 })
}

/// Values of another type than the node's: ints and bools written in the base are plain
/// digits and `true`/`false`, everything else scalar is a string.
fn wrong_type(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_paths();
    targets.retain(|p| !matches!(p.to_string().as_str(), "$.variant" | "$.version"));
    let target = choose(rng, &targets)?;
    let block_map = || map(vec![("a", scalar("b"))]);
    let block_seq = || Tree::Seq(vec![scalar("a"), scalar("b")]);
    let replacement = match m.tree.get(&target)? {
        Tree::Map(_) => [scalar("x"), scalar("[1, 2]"), scalar("42"), block_seq()][rng.below(4)].clone(),
        Tree::Seq(_) => [scalar("x"), scalar("{a: 1}"), scalar("7"), block_map()][rng.below(4)].clone(),
        Tree::Scalar(t) if t == "true" || t == "false" => {
            [scalar("maybe"), scalar("2"), scalar("[true]"), block_map()][rng.below(4)].clone()
        }
        Tree::Scalar(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
            [scalar("abc"), scalar("1.5"), scalar("true"), scalar("[1]"), block_seq()][rng.below(5)].clone()
        }
        Tree::Scalar(_) | Tree::Literal(_) => {
            [scalar("[a, b]"), scalar("{a: b}"), block_map(), block_seq()][rng.below(4)].clone()
        }
    };
    m.replace(&target, replacement);
    Some(Expect::at_value("wrong type", Class::Types, target))
}

fn storage_paths(m: &Mutant) -> Vec<Path> {
    let mut out = m.free_scalars(&["path"]);
    out.retain(|p| p.to_string().starts_with("$.storage."));
    out
}

fn relative_path(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &storage_paths(m))?;
    m.replace(&target, scalar(rng.pick(&["etc/gen/relative", "../up", "relative"])));
    Some(Expect::at_value("relative path", Class::Invalid, target))
}

/// Gives a later directory/file/link the path of an earlier one; Ignition reports the later
/// entry (directories, then files, then links share one namespace).
fn duplicate_path(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let order = |p: &Path| ["directories", "files", "links"].iter().position(|l| p.to_string().contains(l));
    let mut paths = storage_paths(m);
    paths.sort_by_key(|p| (order(p), p.to_string()));
    if paths.len() < 2 {
        return None;
    }
    let a = rng.below(paths.len() - 1);
    let b = a + 1 + rng.below(paths.len() - a - 1);
    let (first, later) = (paths[a].clone(), paths[b].clone());
    let copied = m.tree.get(&first)?.clone();
    m.replace(&later, copied);
    m.touch(&[&first]);
    let item = later.parent();
    Some(Expect {
        name: "duplicate path",
        class: Class::Invalid,
        path: Some(item.clone()),
        anchor: Anchor::Value(item),
        late: 0,
    })
}

fn illegal_mode(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["mode"]))?;
    m.replace(&target, scalar(rng.pick(&["010000", "-1", "99999"])));
    Some(Expect::at_value("illegal mode", Class::Invalid, target))
}

fn unit_without_suffix(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["name"]);
    targets.retain(|p| p.parent().parent().to_string() == "$.systemd.units");
    let target = choose(rng, &targets)?;
    m.replace(&target, scalar(rng.pick(&["gen", "gen.txt", "gen.service.d"])));
    Some(Expect::at_value("unit suffix", Class::Invalid, target))
}

fn dropin_without_suffix(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["name"]);
    targets.retain(|p| p.to_string().contains(".dropins."));
    let target = choose(rng, &targets)?;
    m.replace(&target, scalar(rng.pick(&["10-gen", "10-gen.service"])));
    Some(Expect::at_value("dropin suffix", Class::Invalid, target))
}

fn broken_unit_contents(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["contents"]);
    targets.retain(|p| p.to_string().starts_with("$.systemd."));
    let target = choose(rng, &targets)?;
    let broken = rng.pick(&["[Unit\nDescription=open section\n", "[Unit]\nNoEqualsSign\n", "[Unit] trailing\nA=b\n"]);
    m.replace(&target, Tree::Literal(broken.to_string()));
    Some(Expect::at_value("unit contents", Class::Invalid, target))
}

fn bad_url(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["source"]))?;
    let url = rng.pick(&["data:nocomma", "data:bogus/x,y", "data:;base64,@@@", "ftp://example.com/x", "\"%gh\""]);
    m.replace(&target, scalar(url));
    Some(Expect::at_value("bad url", Class::Invalid, target))
}

fn bad_hash(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["hash"]))?;
    m.replace(&target, scalar(rng.pick(&["sha512-abc", "md5-0123", "sha512"])));
    Some(Expect::at_value("bad hash", Class::Invalid, target))
}

/// Free resources (file `contents`, `ignition.config.merge` items) written with `key`.
fn resources_with(m: &Mutant, key: &str) -> Vec<Path> {
    let is_resource = |p: &Path| {
        let s = p.to_string();
        (s.starts_with("$.storage.files.") && s.ends_with(".contents"))
            || p.parent().to_string() == "$.ignition.config.merge"
    };
    let mut out = m.free_paths();
    out.retain(|p| is_resource(p) && m.tree.get(&p.key(key)).is_some());
    out
}

fn unknown_compression(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = resources_with(m, "source");
    targets.retain(|p| p.to_string().starts_with("$.storage."));
    let target = choose(rng, &targets)?;
    m.tree.set(&target, "compression", scalar(rng.pick(&["lzma", "zstd", "GZIP"])));
    let at = target.key("compression");
    m.touch(&[&target]);
    Some(Expect::at_value("compression", Class::Invalid, at))
}

/// A resource with both `inline` and `source`; Butane blames the last of local/inline/source.
fn two_sources(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let (has, add, value) = if rng.chance(50) {
        ("source", "inline", scalar("extra"))
    } else {
        ("inline", "source", scalar("https://example.com/extra"))
    };
    let target = choose(rng, &resources_with(m, has))?;
    m.tree.set(&target, add, value);
    m.touch(&[&target]);
    Some(Expect::at_value("two sources", Class::Invalid, target.key("source")))
}

fn id_and_name(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let item = choose(rng, &[m.free_items(".storage.files"), m.free_items(".storage.directories")].concat())?;
    let key = rng.pick(&["user", "group"]);
    m.tree.set(&item, key, map(vec![("name", scalar("core")), ("id", scalar("1000"))]));
    let at = item.key(key);
    m.touch(&[&at]);
    Some(Expect::at_value("id and name", Class::Invalid, at))
}

fn overwrite_without_contents(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let item = choose(rng, &m.free_items(".storage.files"))?;
    m.tree.remove(&item, "contents");
    m.tree.set(&item, "overwrite", scalar("true"));
    let at = item.key("overwrite");
    m.touch(&[&at, &item.key("contents")]);
    Some(Expect::at_value("overwrite", Class::Invalid, at))
}

/// A merged child config that is not JSON, or has a value of the wrong type.
fn broken_child_config(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["inline"]);
    targets.retain(|p| p.to_string().starts_with("$.ignition.config.merge."));
    let target = choose(rng, &targets)?;
    let child = match m.tree.get(&target).and_then(Tree::text) {
        Some(valid) if rng.chance(50) => valid.replace("}}", "}, \"storage\": {\"files\": 1}}"),
        _ => "'{\"ignition\": '".to_string(),
    };
    m.replace(&target, scalar(child));
    Some(Expect::at_value("broken child", Class::Invalid, target))
}

/// Gives a later user the name of an earlier one (the later is the duplicate).
fn duplicate_user(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut names = m.free_scalars(&["name"]);
    names.retain(|p| p.parent().parent().to_string() == "$.passwd.users");
    if names.len() < 2 {
        return None;
    }
    let b = 1 + rng.below(names.len() - 1);
    let copied = m.tree.get(&names[0])?.clone();
    m.replace(&names[b], copied);
    m.touch(&[&names[0]]);
    let item = names[b].parent();
    Some(Expect {
        name: "duplicate user",
        class: Class::Invalid,
        path: Some(item.clone()),
        anchor: Anchor::Value(item),
        late: 0,
    })
}

/// A kernel argument both required and forbidden: the forbidden entry is the duplicate.
fn duplicate_kernel_argument(_: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let args = Path::parse("kernel_arguments");
    if !m.is_free(&args) || !matches!(m.tree.get(&args), Some(Tree::Map(_))) {
        return None;
    }
    m.tree.set(&args, "should_not_exist", Tree::Seq(vec![scalar("quiet")]));
    m.touch(&[&args]);
    Some(Expect::at_value("duplicate key arg", Class::Invalid, Path::parse("kernel_arguments.should_not_exist.0")))
}

fn empty_link_target(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["target"]))?;
    m.replace(&target, scalar("\"\""));
    Some(Expect::at_value("empty target", Class::Invalid, target))
}

/// An unknown key in any map outside earlier mutations: a warning at the key.
fn unknown_key(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut maps = vec![Path::root()];
    maps.extend(m.free_paths());
    maps.retain(|p| matches!(m.tree.get(p), Some(Tree::Map(_))) && !m.touched.iter().any(|t| p.starts_with(t)));
    let target = choose(rng, &maps)?;
    let key = rng.pick(&["frobnicate", "pathh", "Mode", "contents_typo"]);
    if m.tree.get(&target.key(key)).is_some() {
        return None;
    }
    let Some(Tree::Map(entries)) = m.tree.get_mut(&target) else { return None };
    let at = rng.below(entries.len() + 1);
    entries.insert(at, (key.to_string(), scalar("1")));
    let path = target.key(key);
    m.touch(&[&path]);
    Some(Expect {
        name: "unknown key",
        class: Class::Warned,
        path: Some(path.clone()),
        anchor: Anchor::Key(path),
        late: 0,
    })
}

/// A mode written in decimal that reads as a typical one in octal: a warning.
fn decimal_mode(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let target = choose(rng, &m.free_scalars(&["mode"]))?;
    let directory = target.to_string().contains(".directories.");
    let mode = if directory { "755" } else { rng.pick(&["644", "600", "444"]) };
    m.replace(&target, scalar(mode));
    Some(Expect::at_value("decimal mode", Class::Warned, target))
}

/// Setuid/setgid bits warn: Ignition specs before 3.6.0 (all of fcos 1.3–1.6) ignore them.
fn special_mode_bits(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["mode"]);
    targets.retain(|p| p.to_string().contains(".files."));
    let target = choose(rng, &targets)?;
    m.replace(&target, scalar(rng.pick(&["04755", "02755"])));
    Some(Expect::at_value("special bits", Class::Warned, target))
}

fn enabled_without_install(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["contents"]);
    targets.retain(|p| p.parent().parent().to_string() == "$.systemd.units");
    let contents = choose(rng, &targets)?;
    let unit = contents.parent();
    if !m.is_free(&unit.key("enabled")) {
        return None;
    }
    m.replace(&contents, Tree::Literal("[Service]\nExecStart=/usr/bin/true\n".to_string()));
    m.tree.set(&unit, "enabled", scalar("true"));
    m.touch(&[&unit.key("enabled")]);
    Some(Expect::at_value("no install", Class::Warned, contents))
}

/// A child config of another spec version is not validated, with a warning at its resource.
fn child_config_other_version(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    let mut targets = m.free_scalars(&["inline"]);
    targets.retain(|p| p.to_string().starts_with("$.ignition.config.merge."));
    let target = choose(rng, &targets)?;
    m.replace(&target, scalar("'{\"ignition\": {\"version\": \"3.0.0\"}}'"));
    let item = target.parent();
    Some(Expect {
        name: "child version",
        class: Class::Warned,
        path: Some(item.key("version")),
        anchor: Anchor::Value(item),
        late: 0,
    })
}

/// Applies one weighted-random mutation that fits the document, if one is found in a hundred
/// tries (a document of only `variant` and `version` has room for two).
fn mutate_structure(rng: &mut Rng, m: &mut Mutant) -> Option<Expect> {
    (0..100).find_map(|_| weighted_mutator(rng)(rng, m))
}

fn weighted_mutator(rng: &mut Rng) -> Mutator {
    let total: usize = MUTATORS.iter().map(|(_, weight, _)| weight).sum();
    let mut roll = rng.below(total);
    for (_, weight, mutator) in MUTATORS {
        if roll < *weight {
            return *mutator;
        }
        roll -= weight;
    }
    unreachable!("roll below the total weight")
}

/// Where an anchor landed in the written document.
fn resolve(layout: &Layout, anchor: &Anchor) -> Option<Mark> {
    match anchor {
        Anchor::Value(p) => Some(layout.values[p]),
        Anchor::Key(p) => Some(layout.keys[p]),
        Anchor::Nowhere => None,
    }
}

/// Whether a diagnostic is the one `expect` asked for: same path, at the anchor's exact line
/// and column (YAML errors: the anchor's line; their column is where the parser gave up).
fn pointed_at(diags: &[Diagnostic], expect: &Expect, layout: &Layout) -> bool {
    let Some(mark) = resolve(layout, &expect.anchor) else { return true };
    diags.iter().any(|d| {
        let at = d.mark.expect("located");
        match expect.class {
            Class::Yaml => (mark.line..=mark.line + expect.late).contains(&at.line),
            _ => d.path == expect.path && at == mark,
        }
    })
}

/// The outcome must be the earliest stage any mutation breaks, and a diagnostic of that
/// stage must point exactly at one of the mutations that broke it.
fn check_mutant(outcome: &Outcome, expects: &[Expect], layout: &Layout) -> Result<(), String> {
    let want = expects.iter().map(|e| e.class).min().unwrap_or(Class::Clean);
    if outcome.class != want {
        return Err(format!("expected {want:?}, got {:?}", outcome.class));
    }
    let relevant: Vec<&Expect> = expects.iter().filter(|e| e.class == want).collect();
    let hit = relevant.is_empty() || relevant.iter().any(|e| pointed_at(&outcome.diags, e, layout));
    if !hit {
        let wanted: Vec<String> =
            relevant.iter().map(|e| format!("{} {:?} {:?}", e.name, e.path, resolve(layout, &e.anchor))).collect();
        let got: Vec<String> = outcome.diags.iter().map(Diagnostic::raw_line).collect();
        return Err(format!("no diagnostic at {wanted:?}; got {got:#?}"));
    }
    Ok(())
}

#[test]
fn structured_documents_reach_every_stage_and_point_at_the_mutation() {
    let mut rng = Rng(0x5EED_B07A_4E00_0001);
    let mut mix = Mix::default();
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..3000 {
        let mut m = Mutant { tree: butane_document(&mut rng), touched: Vec::new() };
        // Mostly one mutation (exactly predictable), some clean documents, some with several.
        let count = match rng.below(100) {
            0..10 => 0,
            10..80 => 1,
            _ => 2 + rng.below(2),
        };
        let expects: Vec<Expect> = (0..count).filter_map(|_| mutate_structure(&mut rng, &mut m)).collect();
        expects.iter().for_each(|e| *used.entry(e.name).or_default() += 1);
        let layout = Layout::of(&m.tree);
        let doc = layout.text();
        let checked = render_classified(&doc, None).and_then(|o| check_mutant(&o, &expects, &layout).map(|()| o));
        match checked {
            Ok(outcome) => mix.add(outcome.class),
            Err(why) => {
                let names: Vec<&str> = expects.iter().map(|e| e.name).collect();
                panic!("{why}\nmutations {names:?} of:\n{}", numbered(&doc));
            }
        }
    }
    mix.print("structured documents");
    eprintln!("structured mutations applied: {used:?}");
    // The weights aim at about 15% YAML, 7% variant/version, 25% type, 30% validation and 12%
    // warning outcomes plus the unmutated tenth; each stage must really be reached.
    for class in CLASSES {
        mix.require_at_least("structured documents", class, 5.0);
    }
    // Every mutation must find a place in the generated documents, or its code goes untested.
    for (name, _, _) in MUTATORS {
        let n = used.get(name).copied().unwrap_or(0);
        assert!(n >= 10, "mutation {name:?} applied only {n} times");
    }
}

fn numbered(doc: &str) -> String {
    doc.lines().enumerate().map(|(i, l)| format!("{:3} | {l}\n", i + 1)).collect()
}
