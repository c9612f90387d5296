//! The published JSON Schemas in `schemas/`: the committed files are exactly what the Rust types
//! generate (`UPDATE_SCHEMAS=1 cargo test --test schemas committed_schemas_are_current` rewrites
//! them), and every JSON document CoreOps prints or writes validates against the committed file
//! read from disk, never against a schema generated in the same run.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn committed_schemas_are_current() {
    let dir = schema_dir();
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in core_ops::cli::report::schemas() {
        let text = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: run UPDATE_SCHEMAS=1 cargo test --test schemas and commit schemas/"
    );
}

/// Runs `core-ops ARGS` and parses its standard output, which must be JSON.
fn json_of(args: &[&str]) -> Value {
    let out = common::bin().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "core-ops {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("core-ops {args:?}: not JSON: {e}"))
}

/// The problems of `doc` against the committed `schemas/NAME`.
fn violations(name: &str, doc: &Value) -> Vec<String> {
    let path = schema_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name} is not a schema: {e}"));
    validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// The ownership record `render-ignition` embeds for first boot, decoded by the tests' own
/// data-URL decoder.
fn embedded_state(config: &Value) -> Value {
    let file = config["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/var/lib/core-ops/state.json")
        .expect("render-ignition embeds the ownership record");
    let normalized = common::normalize(file);
    let source = normalized["contents"]["source"].as_str().unwrap();
    let hex = source.strip_prefix("<payload ").and_then(|s| s.strip_suffix('>')).unwrap_or_else(|| panic!("{source}"));
    serde_json::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

#[test]
fn every_json_document_validates_against_its_committed_schema() {
    const TEST: &str = "every_json_document_validates_against_its_committed_schema";
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        common::skip(TEST, "UPDATE_SCHEMAS rewrites schemas/ in this run; validate in a run without it");
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/06-butane-host");
    let example = example.to_str().unwrap();
    let root = tempfile::tempdir().unwrap();
    let root_dir = root.path().to_str().unwrap();
    let repo = ["--source-repo", example, "--host", "example"];
    let at_root = ["--root", root_dir, "--format", "json"];
    let run = |parts: &[&[&str]]| json_of(&parts.concat());

    let mut docs: Vec<(&str, &str, Value)> = Vec::new();
    let config = run(&[&["render-ignition"], &repo]);
    docs.push(("the first-boot ownership record", "state.schema.json", embedded_state(&config)));
    docs.push(("plan into an empty root", "plan.schema.json", run(&[&["plan"], &repo, &at_root])));
    docs.push(("apply", "apply.schema.json", run(&[&["apply", "--offline"], &repo, &at_root])));
    let state = std::fs::read(root.path().join("var/lib/core-ops/state.json")).unwrap();
    docs.push(("state.json after apply", "state.schema.json", serde_json::from_slice(&state).unwrap()));
    // Drift, so that plan, status and explain report changes rather than only no-ops.
    std::fs::write(root.path().join("etc/hostname"), "drifted\n").unwrap();
    docs.push(("plan with drift", "plan.schema.json", run(&[&["plan"], &repo, &at_root])));
    docs.push(("status -v with drift", "status.schema.json", run(&[&["status", "-v"], &at_root])));
    for object in ["/etc/hostname", "backup.timer"] {
        docs.push(("explain", "explain.schema.json", run(&[&["explain", object], &repo, &at_root])));
    }

    let mut failures = Vec::new();
    for (what, schema, doc) in &docs {
        let problems = violations(schema, doc);
        if !problems.is_empty() {
            failures.push(format!("{what} against schemas/{schema}:\n  {}", problems.join("\n  ")));
        }
        // A control: the committed schema is not one that accepts anything.
        let mut broken = doc.clone();
        broken["schema_version"] = Value::String("1".into());
        if violations(schema, &broken).is_empty() {
            failures.push(format!("schemas/{schema} accepts {what} with a string schema_version"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
