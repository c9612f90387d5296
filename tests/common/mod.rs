//! Shared helpers for the integration tests: the conformance corpus, semantic Ignition
//! comparison and diagnostic-line parsing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The project's copy of the Butane conformance corpus.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/butane")
}

/// Every case directory, sorted.
pub fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.bu").is_file())
        .collect();
    out.sort();
    out
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_core-ops"))
}

/// The apply input of a Butane config, as `apply --config test.bu` would load it.
pub fn butane_input(butane: &str) -> core_ops::host::execute::ApplyInput {
    let rendered = core_ops::model::butane::render(butane, None).expect("valid Butane");
    core_ops::host::execute::ApplyInput {
        host: "test".into(),
        config: std::sync::Arc::new(rendered.config),
        origins: BTreeMap::new(),
        source: core_ops::model::state::SourceRef {
            kind: "config".into(),
            location: "test.bu".into(),
            host: None,
            reference: None,
            commit: None,
            dirty: false,
            ..Default::default()
        },
        input_digest: None,
    }
}

/// Writes `files` (path, content) under a new temporary directory: a source repository or a
/// files directory.
pub fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    dir
}

/// Normalizes an Ignition config for semantic comparison: data URLs decoded (and gunzipped),
/// `"compression": ""` dropped, and `compression` dropped once the payload is decoded.
///
/// The decoding is an oracle, so it shares no code with CoreOps: the `data-url` crate (the
/// WHATWG Fetch data-URL algorithm: its own percent-decoding and base64) and `libflate`'s gzip,
/// never `core_ops::model::ignition::dataurl` nor the `base64` and `flate2` crates it uses.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, x) in map {
                out.insert(k.clone(), normalize(x));
            }
            let comp = map.get("compression").and_then(Value::as_str).map(str::to_string);
            if comp.as_deref() == Some("") {
                out.remove("compression");
            }
            if let Some(src) = map.get("source").and_then(Value::as_str).filter(|s| s.starts_with("data:")) {
                let decoded = match decode_data_url(src, comp.as_deref()) {
                    Ok((bytes, decompressed)) => {
                        if decompressed {
                            out.remove("compression");
                        }
                        format!("<payload {}>", hex(&bytes))
                    }
                    Err(e) => format!("<undecodable {e}>"),
                };
                out.insert("source".into(), Value::String(decoded));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// A data URL's payload, gunzipped for `compression: gzip`; the flag tells whether the
/// compression was undone (any other non-empty compression stays in the normalized config).
pub fn decode_data_url(url: &str, compression: Option<&str>) -> Result<(Vec<u8>, bool), String> {
    use std::io::Read;
    let parsed = data_url::DataUrl::process(url).map_err(|e| format!("malformed data URL: {e:?}"))?;
    let (body, fragment) = parsed.decode_to_vec().map_err(|e| format!("invalid base64: {e:?}"))?;
    // An unescaped `#` would cut the payload short for a URL parser; Butane always escapes it.
    if fragment.is_some() {
        return Err("unescaped # in the data URL".into());
    }
    match compression {
        Some("gzip") => {
            let mut out = Vec::new();
            libflate::gzip::Decoder::new(body.as_slice())
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| format!("invalid gzip: {e}"))?;
            Ok((out, true))
        }
        None | Some("") => Ok((body, true)),
        Some(_) => Ok((body, false)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `error at …` / `warning at …` line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diag {
    pub severity: String,
    pub path: String,
    pub line: Option<u32>,
    pub message: String,
}

/// Parses Butane's raw diagnostic lines out of stderr; other lines are ignored.
pub fn parse_diags(text: &str) -> Vec<Diag> {
    text.lines().filter_map(parse_diag).collect()
}

fn parse_diag(line: &str) -> Option<Diag> {
    let (severity, rest) = line.split_once(" at ")?;
    if severity != "error" && severity != "warning" {
        return None;
    }
    let (location, message) = rest.split_once(": ")?;
    let (path, line_no) = if let Some(pos) = location.strip_prefix("line ") {
        ("", pos.split(' ').next()?.parse().ok())
    } else if let Some((path, pos)) = location.split_once(", line ") {
        (path, pos.split(' ').next()?.parse().ok())
    } else {
        (location, None)
    };
    Some(Diag { severity: severity.into(), path: path.into(), line: line_no, message: message.trim().into() })
}

/// Messages that embed Go-internal text, which only the reference can produce verbatim.
pub fn is_go_internal(message: &str) -> bool {
    [
        "config.",
        "types.",
        "[]v0_",
        "open ",
        "stat ",
        "lstat ",
        "no such file",
        "invalid character",
        "cannot unmarshal",
        "unexpected end of JSON",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Compares diagnostics as multisets of (severity, path, line) with equal messages; returns
/// the problems found.
pub fn compare_diags(expected: &[Diag], actual: &[Diag]) -> Vec<String> {
    type Key = (String, String, Option<u32>);
    let group = |ds: &[Diag]| {
        let mut m: BTreeMap<Key, Vec<String>> = BTreeMap::new();
        for d in ds {
            m.entry((d.severity.clone(), d.path.clone(), d.line)).or_default().push(d.message.clone());
        }
        m
    };
    let (exp, act) = (group(expected), group(actual));
    let mut problems = Vec::new();
    let keys: std::collections::BTreeSet<&Key> = exp.keys().chain(act.keys()).collect();
    for key in keys {
        let mut e = exp.get(key).cloned().unwrap_or_default();
        let mut a = act.get(key).cloned().unwrap_or_default();
        e.retain(|m| match a.iter().position(|x| x == m) {
            Some(i) => {
                a.remove(i);
                false
            }
            None => true,
        });
        e.retain(|m| {
            !(is_go_internal(m) && !a.is_empty() && {
                a.remove(0);
                true
            })
        });
        for m in e {
            problems.push(format!("missing {key:?}: {m}"));
        }
        for m in a {
            problems.push(format!("unexpected {key:?}: {m}"));
        }
    }
    problems
}

/// A tree manifest: path → (type, whole manifest line).
pub type Manifest = BTreeMap<String, (String, String)>;

/// The environment variable naming the file where skipped tests are recorded (one line each);
/// `scripts/test.sh` sets it and reports the count and the reasons at the end of the run.
pub const SKIP_LEDGER_ENV: &str = "CORE_OPS_SKIP_LEDGER";

/// The environment variable listing, space-separated, the tests that may skip under `CI=true`.
pub const ALLOWED_SKIPS_ENV: &str = "CORE_OPS_ALLOWED_SKIPS";

/// Declares that `test` cannot run because its prerequisite is missing (`reason`). The caller
/// returns right after. The skip is printed, appended to the skip ledger (so the run's summary
/// counts it), and under `CI=true` it fails the test unless `.ci/run` allows it by name.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    eprintln!("*** SKIPPED {test}: {reason} ***");
    if let Some(ledger) = std::env::var_os(SKIP_LEDGER_ENV) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&ledger).expect("the skip ledger");
        // One write per line, so lines of tests running in parallel never interleave.
        file.write_all(format!("{test}\t{reason}\n").as_bytes()).expect("writing the skip ledger");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        let allowed = std::env::var(ALLOWED_SKIPS_ENV).unwrap_or_default();
        assert!(
            allowed.split_whitespace().any(|name| name == test),
            "{test} was skipped under CI=true ({reason}); install its prerequisite, or allow the skip by name in \
             {ALLOWED_SKIPS_ENV} in .ci/run"
        );
    }
}

/// Whether the tests run as root (needed to create files owned by other users).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A fresh root as the conformance checker makes it: `etc/` with `passwd` and `group`.
pub fn conformance_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::set_permissions(&etc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\ncore:x:1000:\n").unwrap();
    root
}

/// One manifest line per node below `root`, as `tools/tree-manifest.py` prints them: path →
/// (type, line).
pub fn manifest(root: &Path) -> Manifest {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
            if ["/etc/passwd", "/etc/group", "/etc/.ignition-result.json"].contains(&rel.as_str()) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let (typ, payload) = if meta.file_type().is_symlink() {
                ("link", std::fs::read_link(&path).unwrap().display().to_string())
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", "-".to_string())
            } else if meta.is_file() {
                use sha2::Digest;
                ("file", hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap())))
            } else {
                ("other", "-".to_string())
            };
            let line = format!("{typ} {rel} {:04o} {}:{} {payload}", meta.mode() & 0o7777, meta.uid(), meta.gid());
            out.insert(rel, (typ.to_string(), line));
        }
    }
    out
}

/// Parses an `expected.tree`.
pub fn parse_manifest(text: &str) -> Manifest {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let typ = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            (path, (typ, l.to_string()))
        })
        .collect()
}

/// Drops what the conformance checker ignores on both sides: presets, enablement links and
/// their directories, CoreOps's state, `/run`, `.ssh`, account databases, and directories left
/// only as parents of dropped nodes that the other side lacks.
pub fn filter_manifests(exp: &Manifest, act: &Manifest) -> (Manifest, Manifest) {
    type Side = (Manifest, std::collections::BTreeSet<String>);
    const DROP_TREES: [&str; 3] = ["/etc/systemd/system-preset", "/var/lib/core-ops", "/run"];
    const ACCOUNT_FILES: [&str; 11] = [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/passwd-",
        "/etc/group-",
        "/etc/shadow-",
        "/etc/gshadow-",
        "/etc/subuid",
        "/etc/subgid",
        "/etc/subuid-",
        "/etc/subgid-",
        "/etc/.pwd.lock",
    ];
    let unit_link_dir = |name: &str| name.ends_with(".wants") || name.ends_with(".requires");
    let primary_drop = |path: &str, typ: &str| {
        let (parent, base) = path.rsplit_once('/').unwrap_or(("", path));
        ACCOUNT_FILES.contains(&path)
            || DROP_TREES.iter().any(|t| path == *t || path.starts_with(&format!("{t}/")))
            || path.ends_with("/.ssh")
            || path.contains("/.ssh/")
            || (typ == "link" && unit_link_dir(parent.rsplit('/').next().unwrap_or("")))
            || (typ == "dir" && unit_link_dir(base))
    };
    let ancestors = |p: &str| {
        let mut out = Vec::new();
        let mut cur = p.to_string();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            out.push(parent.to_string());
            cur = parent.to_string();
        }
        out
    };
    let mut sides: Vec<Side> = [exp, act]
        .iter()
        .map(|m| {
            let kept: BTreeMap<_, _> =
                m.iter().filter(|(p, v)| !primary_drop(p, &v.0)).map(|(p, v)| (p.clone(), v.clone())).collect();
            let dropped = m.keys().filter(|p| !kept.contains_key(*p)).cloned().collect();
            (kept, dropped)
        })
        .collect();
    loop {
        let mut changed = false;
        for i in 0..2 {
            let other: std::collections::BTreeSet<String> = sides[1 - i].0.keys().cloned().collect();
            let (kept, dropped) = &mut sides[i];
            let kept_desc: std::collections::BTreeSet<String> = kept.keys().flat_map(|p| ancestors(p)).collect();
            let dropped_desc: std::collections::BTreeSet<String> = dropped.iter().flat_map(|p| ancestors(p)).collect();
            let remove: Vec<String> = kept
                .iter()
                .filter(|(p, v)| {
                    v.0 == "dir" && dropped_desc.contains(*p) && !kept_desc.contains(*p) && !other.contains(*p)
                })
                .map(|(p, _)| p.clone())
                .collect();
            for p in remove {
                kept.remove(&p);
                dropped.insert(p);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let act_side = sides.pop().unwrap().0;
    let exp_side = sides.pop().unwrap().0;
    (exp_side, act_side)
}

/// Runs the reference `ignition-apply` found in `bin_dir` on `config`, writing into `root` as
/// Ignition's first boot would (offline, as in a container, unsupported sections skipped).
pub fn reference_ignition_apply(bin_dir: &Path, root: &Path, config: &Path) -> std::process::Output {
    Command::new(bin_dir.join("ignition-apply"))
        .env("container", "1")
        .arg("--root")
        .arg(root)
        .args(["--offline", "--ignore-unsupported"])
        .arg(config)
        .output()
        .unwrap()
}
