//! `render-ignition --track`: a host's config plus the first-boot bootstrap (the agent binary,
//! its units, the tracking config). Checked on the built binary's output, decoded with the
//! tests' own data-URL decoder; against the reference Butane's translation of
//! `butane/core-ops.bu` with the same values; and against what the reference Ignition writes
//! from it into a fresh root.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

const AGENT: &str = "/usr/local/bin/core-ops";
const TRACKING: &str = "/etc/core-ops/tracking.yaml";
const SIGNERS: &str = "/etc/core-ops/allowed-signers";
const REPO: &str = "https://git.example.com/infra/fleet.git";
const REF: &str = "refs/heads/prod";
const URL: &str = "https://downloads.example.com/core-ops/0.1.0/core-ops-x86_64";

/// A source repository with host `web1`, whose Butane is `host_bu` (after a fcos 1.5.0 header).
fn repo(host_bu: &str) -> tempfile::TempDir {
    let bu = format!("variant: fcos\nversion: 1.5.0\n{host_bu}");
    common::repo(&[("hosts/web1/host.yaml", "host: web1\nservices: []\n"), ("hosts/web1/host.bu", &bu)])
}

const MOTD: &str = "storage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hello\n";

/// `sha256sum` of `bytes`, by the `sha2` crate (CoreOps only copies the hex it is given).
fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Runs `core-ops render-ignition --source-repo REPO --host web1 ARGS`.
fn render(repo: &Path, args: &[&str]) -> std::process::Output {
    common::bin()
        .args(["render-ignition", "--source-repo", repo.to_str().unwrap(), "--host", "web1"])
        .args(args)
        .output()
        .unwrap()
}

/// The rendered config, which must have been produced with exit 0.
fn rendered(repo: &Path, args: &[&str]) -> Value {
    let out = render(repo, args);
    assert_eq!(out.status.code(), Some(0), "render-ignition {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn file<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    config["storage"]["files"].as_array()?.iter().find(|f| f["path"] == path)
}

fn unit<'a>(config: &'a Value, name: &str) -> Option<&'a Value> {
    config["systemd"]["units"].as_array()?.iter().find(|u| u["name"] == name)
}

/// The decoded contents of file `path` of `config`.
fn contents(config: &Value, path: &str) -> Vec<u8> {
    let f = file(config, path).unwrap_or_else(|| panic!("no {path} in the config"));
    let source = f["contents"]["source"].as_str().unwrap();
    common::decode_data_url(source, f["contents"]["compression"].as_str()).unwrap_or_else(|e| panic!("{path}: {e}")).0
}

fn systemd_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd").join(name)).unwrap()
}

/// Every path and unit name the embedded ownership record names.
fn owned_names(config: &Value) -> Vec<String> {
    let record: Value = serde_json::from_slice(&contents(config, "/var/lib/core-ops/state.json")).unwrap();
    let applied = &record["last_applied"];
    let paths = applied["objects"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap().to_string());
    let units = applied["units"].as_array().into_iter().flatten().map(|u| u.as_str().unwrap().to_string());
    let absent = applied["absent"].as_array().into_iter().flatten().map(|u| u.as_str().unwrap().to_string());
    paths.chain(units).chain(absent).collect()
}

fn assert_bootstrap_units(config: &Value) {
    let service = unit(config, "core-ops.service").expect("core-ops.service");
    let timer = unit(config, "core-ops.timer").expect("core-ops.timer");
    assert_eq!(service["contents"].as_str(), Some(systemd_file("core-ops.service").as_str()));
    assert_eq!(timer["contents"].as_str(), Some(systemd_file("core-ops.timer").as_str()));
    assert_eq!(timer["enabled"], Value::Bool(true), "the timer is enabled");
    // The service has no [Install] section: the timer starts it, and enabling it would do nothing.
    assert_eq!(service.get("enabled"), None);
}

#[test]
fn a_url_agent_carries_its_hash_and_the_host_follows_the_repository() {
    let repo = repo(MOTD);
    let sha = sha256(b"the published agent");
    let config =
        rendered(repo.path(), &["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha.to_uppercase()]);
    let agent = file(&config, AGENT).expect("the agent");
    assert_eq!(agent["contents"]["source"], URL);
    assert_eq!(agent["contents"]["verification"]["hash"], format!("sha256-{sha}"));
    assert_eq!(agent["mode"], 0o755);
    let tracking = String::from_utf8(contents(&config, TRACKING)).unwrap();
    let parsed = core_ops::model::tracking::parse(TRACKING, &tracking).unwrap();
    assert_eq!((parsed.repository.as_str(), parsed.reference.as_str(), parsed.host.as_str()), (REPO, REF, "web1"));
    assert_eq!(file(&config, TRACKING).unwrap()["mode"], 0o600);
    assert_bootstrap_units(&config);
    assert!(file(&config, "/etc/motd").is_some(), "the host's own config is still there");
}

#[test]
fn a_local_agent_is_embedded_gzipped() {
    let repo = repo(MOTD);
    let dir = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let path = dir.path().join("core-ops");
    std::fs::write(&path, &binary).unwrap();
    let config = rendered(repo.path(), &["--track", REPO, REF, "--agent-binary", path.to_str().unwrap()]);
    let agent = file(&config, AGENT).expect("the agent");
    assert_eq!(agent["contents"]["compression"], "gzip");
    assert!(agent["contents"].get("verification").is_none_or(|v| v.get("hash").is_none()));
    assert!(contents(&config, AGENT) == binary, "the embedded agent decompresses to the file's bytes");
    assert_bootstrap_units(&config);
}

#[test]
fn without_agent_binary_the_running_executable_is_embedded_or_refused_as_too_large() {
    let repo = repo(MOTD);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_core-ops"));
    let out = render(repo.path(), &["--track", REPO, REF]);
    let size = std::fs::metadata(&exe).unwrap().len();
    if size > 64 * 1024 * 1024 {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--agent-binary URL --agent-sha256 HEX"), "the fix is named: {stderr}");
        assert!(stderr.contains(&exe.display().to_string()), "the binary is named: {stderr}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(contents(&config, AGENT) == std::fs::read(&exe).unwrap(), "the running core-ops is embedded");
    }
}

#[test]
fn the_ownership_record_leaves_the_bootstrap_out() {
    let repo = repo(MOTD);
    let sha = sha256(b"x");
    let config = rendered(repo.path(), &["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha]);
    let owned = owned_names(&config);
    assert!(owned.iter().any(|p| p == "/etc/motd"), "the record lists the host's objects: {owned:?}");
    for name in owned {
        assert!(!name.contains("core-ops.service") && !name.contains("core-ops.timer"), "{name} is owned");
        assert!(![AGENT, TRACKING].contains(&name.as_str()) && !name.starts_with("/etc/core-ops/"), "{name} is owned");
    }
}

#[test]
fn trust_token_and_ca_options_are_recorded_and_the_signers_installed() {
    let repo = repo(MOTD);
    let dir = tempfile::tempdir().unwrap();
    let signers = "ops@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBw0\n";
    let signers_path = dir.path().join("signers");
    std::fs::write(&signers_path, signers).unwrap();
    let sha = sha256(b"x");
    let config = rendered(
        repo.path(),
        &[
            "--track",
            REPO,
            REF,
            "--agent-binary",
            URL,
            "--agent-sha256",
            &sha,
            "--track-host",
            "web1-canary",
            "--track-trust",
            signers_path.to_str().unwrap(),
            "--track-access-token-file",
            "/etc/core-ops/token",
            "--track-ca-file",
            "/etc/pki/fleet-ca.pem",
        ],
    );
    let tracking = String::from_utf8(contents(&config, TRACKING)).unwrap();
    let parsed = core_ops::model::tracking::parse(TRACKING, &tracking).unwrap();
    assert_eq!(parsed.host, "web1-canary");
    assert_eq!(parsed.trust.as_deref(), Some(SIGNERS));
    assert_eq!(parsed.access_token_file.as_deref(), Some("/etc/core-ops/token"));
    assert_eq!(parsed.ca_file.as_deref(), Some("/etc/pki/fleet-ca.pem"));
    assert_eq!(contents(&config, SIGNERS), signers.as_bytes());
    assert!(file(&config, "/etc/core-ops/token").is_none(), "the token is never put into the config");
}

#[test]
fn wrong_uses_are_refused_with_the_fix() {
    let repo = repo(MOTD);
    // (arguments, exit code, words the message must hold)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--track", REPO, REF, "--agent-binary", URL], 2, "needs --agent-sha256"),
        (&["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", "abc"], 2, "not a SHA-256"),
        (
            &["--track", REPO, REF, "--agent-binary", "/bin/sh", "--agent-sha256", &"a".repeat(64)],
            2,
            "goes with an --agent-binary URL",
        ),
        (
            &["--track", REPO, REF, "--agent-binary", "ftp://x/core-ops", "--agent-sha256", &"a".repeat(64)],
            2,
            "invalid url scheme",
        ),
        (&["--track", "hosts-repo", REF], 2, "relative path"),
        (&["--track", REPO, "bad ref"], 2, "`ref` holds a space"),
        (&["--track", REPO, REF, "--track-host=a b"], 2, "`host` must be"),
        (&["--track", REPO, REF, "--track-ca-file", "ca.pem"], 2, "`ca-file` must be an absolute path"),
        (&["--agent-binary", URL], 2, "--track"),
        (&["--track", REPO], 2, "REF"),
    ];
    for (args, code, words) in cases {
        let out = render(repo.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: no config is printed");
    }
    let out = common::bin().args(["render-ignition", "--track", REPO, REF]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--track needs --source-repo: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_url_agent_needs_a_spec_with_sha256_hashes() {
    // Ignition spec 3.0.0 (Butane fcos 1.0.0) knows sha512 hashes only, as the reference Butane
    // says of this fragment ("unrecognized hash function"); gzip it already reads.
    let bu = "variant: fcos\nversion: 1.0.0\n";
    let repo = common::repo(&[("hosts/web1/host.yaml", "host: web1\nservices: []\n"), ("hosts/web1/host.bu", bu)]);
    let sha = sha256(b"x");
    let out = render(repo.path(), &["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs Ignition spec 3.1.0 or newer") && stderr.contains("3.0.0"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent"), b"agent").unwrap();
    let config =
        rendered(repo.path(), &["--track", REPO, REF, "--agent-binary", dir.path().join("agent").to_str().unwrap()]);
    assert_eq!(config["ignition"]["version"], "3.0.0");
    assert_eq!(contents(&config, AGENT), b"agent");
}

#[test]
fn a_host_declaring_a_bootstrap_entry_conflicts_naming_both_origins() {
    let sha = sha256(b"x");
    let track = ["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha];
    let cases = [
        ("storage:\n  files:\n    - path: /etc/core-ops/tracking.yaml\n", "/etc/core-ops/tracking.yaml"),
        (
            "storage:\n  links:\n    - path: /usr/local/bin/core-ops\n      target: /bin/true\n",
            "/usr/local/bin/core-ops",
        ),
        ("systemd:\n  units:\n    - name: core-ops.timer\n      enabled: false\n", "unit core-ops.timer"),
    ];
    for (host_bu, entry) in cases {
        let repo = repo(host_bu);
        let out = render(repo.path(), &track);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{host_bu}: {stderr}");
        assert!(stderr.contains(&format!("error: {entry} is declared by hosts/web1/host.bu")), "{stderr}");
        assert!(stderr.contains("and by the CoreOps bootstrap of --track"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_host_drop_in_for_a_bootstrap_unit_is_kept() {
    let dropin = "[Timer]\nOnUnitInactiveSec=\nOnBootSec=1min\nOnUnitInactiveSec=15min\n";
    let host_bu = format!(
        "systemd:\n  units:\n    - name: core-ops.timer\n      dropins:\n        - name: interval.conf\n          contents: |\n{}",
        dropin.lines().map(|l| format!("            {l}\n")).collect::<String>()
    );
    let repo = repo(&host_bu);
    let sha = sha256(b"x");
    let config = rendered(repo.path(), &["--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha]);
    let timers: Vec<&Value> =
        config["systemd"]["units"].as_array().unwrap().iter().filter(|u| u["name"] == "core-ops.timer").collect();
    assert_eq!(timers.len(), 1, "one entry for the timer");
    assert_eq!(timers[0]["dropins"][0]["contents"], dropin);
    assert_bootstrap_units(&config);
}

/// The reference tools, unpacked, or `None` after a loud skip.
fn reference_bin(test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-bin");
    if !reference.join("unpack.sh").is_file() {
        common::skip(test, "../shared/reference-bin is absent");
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash").arg(reference.join("unpack.sh")).arg(work.path()).output().unwrap();
    assert!(out.status.success(), "unpack.sh: {}", String::from_utf8_lossy(&out.stderr));
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    Some((work, dir))
}

/// `text` with `from` (which must occur exactly once) replaced by `to`.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the placeholder {from:?} is not in butane/core-ops.bu exactly once");
    text.replace(from, to)
}

/// The bootstrap's entries of a config, normalized (payloads decoded): files by path, units by name.
fn bootstrap_entries(config: &Value) -> Value {
    let files: Vec<Value> = [AGENT, TRACKING].iter().map(|p| common::normalize(file(config, p).unwrap())).collect();
    let units: Vec<Value> =
        ["core-ops.service", "core-ops.timer"].iter().map(|n| common::normalize(unit(config, n).unwrap())).collect();
    serde_json::json!({ "files": files, "units": units })
}

#[test]
fn the_bootstrap_is_what_the_reference_butane_makes_of_the_fragment() {
    const TEST: &str = "the_bootstrap_is_what_the_reference_butane_makes_of_the_fragment";
    let Some((work, bin)) = reference_bin(TEST) else { return };
    let sha = sha256(b"the published agent");
    let fragment = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("butane/core-ops.bu")).unwrap();
    let filled = [
        ("https://example.com/CHANGE-ME/core-ops", URL.to_string()),
        (&format!("sha256-{}", "0".repeat(64)), format!("sha256-{sha}")),
        ("repository: https://git.example.com/CHANGE-ME/hosts.git", format!("repository: {REPO}")),
        ("ref: main", format!("ref: {REF}")),
        ("host: CHANGE-ME", "host: web1".to_string()),
    ]
    .iter()
    .fold(fragment, |text, (from, to)| substitute(&text, from, to));
    let bu = work.path().join("core-ops.bu");
    std::fs::write(&bu, filled).unwrap();
    let out = std::process::Command::new(bin.join("butane")).arg("--strict").arg(&bu).output().unwrap();
    assert!(out.status.success(), "the reference butane: {}", String::from_utf8_lossy(&out.stderr));
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();

    let repo = repo(MOTD);
    let ours =
        rendered(repo.path(), &["--strict", "--track", REPO, REF, "--agent-binary", URL, "--agent-sha256", &sha]);
    assert_eq!(bootstrap_entries(&ours), bootstrap_entries(&reference));
}

#[test]
fn the_reference_ignition_installs_the_bootstrap() {
    const TEST: &str = "the_reference_ignition_installs_the_bootstrap";
    let Some((work, bin)) = reference_bin(TEST) else { return };
    if !common::is_root() {
        common::skip(TEST, "needs root: the reference Ignition writes owners 0:0 only as root");
        return;
    }
    let binary = b"#!/bin/sh\necho a stand-in for the agent\n".repeat(50);
    let agent = work.path().join("agent");
    std::fs::write(&agent, &binary).unwrap();
    let repo = repo(MOTD);
    let out = render(repo.path(), &["--track", REPO, REF, "--agent-binary", agent.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let config = work.path().join("config.ign");
    std::fs::write(&config, &out.stdout).unwrap();
    let root = common::conformance_root();
    let applied = common::reference_ignition_apply(&bin, root.path(), &config);
    assert!(applied.status.success(), "the reference ignition-apply: {}", String::from_utf8_lossy(&applied.stderr));
    let at = |p: &str| root.path().join(p.trim_start_matches('/'));
    let mode =
        |p: &str| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(at(p)).unwrap().permissions()) & 0o7777;
    assert!(std::fs::read(at(AGENT)).unwrap() == binary, "the agent as given");
    assert_eq!((mode(AGENT), mode(TRACKING)), (0o755, 0o600));
    let tracking = std::fs::read_to_string(at(TRACKING)).unwrap();
    assert_eq!(core_ops::model::tracking::parse(TRACKING, &tracking).unwrap().reference, REF);
    for name in ["core-ops.service", "core-ops.timer"] {
        assert_eq!(std::fs::read_to_string(at(&format!("/etc/systemd/system/{name}"))).unwrap(), systemd_file(name));
    }
    let preset = std::fs::read_to_string(at("/etc/systemd/system-preset/20-ignition.preset")).unwrap();
    assert_eq!(preset.lines().filter(|l| l.contains("core-ops")).collect::<Vec<_>>(), ["enable core-ops.timer"]);
}

/// `text` (YAML) as JSON, read by PyYAML: a YAML reader that shares nothing with CoreOps.
fn yaml_to_json(test: &str, text: &str) -> Option<Value> {
    let script = "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))";
    let child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        common::skip(test, "python3 is not installed");
        return None;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No module named 'yaml'"), "PyYAML could not read it: {stderr}\n{text}");
        common::skip(test, "PyYAML is not installed (python3-yaml)");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_tracking_config_validates_against_its_committed_schema() {
    const TEST: &str = "the_tracking_config_validates_against_its_committed_schema";
    let repo = repo(MOTD);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signers"), "x\n").unwrap();
    let sha = sha256(b"x");
    let config = rendered(
        repo.path(),
        &[
            "--track",
            REPO,
            REF,
            "--agent-binary",
            URL,
            "--agent-sha256",
            &sha,
            "--track-trust",
            dir.path().join("signers").to_str().unwrap(),
            "--track-access-token-file",
            "/etc/core-ops/token",
        ],
    );
    let text = String::from_utf8(contents(&config, TRACKING)).unwrap();
    let Some(doc) = yaml_to_json(TEST, &text) else { return };
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/tracking.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{text}");
    assert_eq!(doc["ref"], REF, "PyYAML reads the ref the agent will");
    // Controls: the committed schema is no schema that accepts anything.
    for (key, value) in [("version", Value::from(2)), ("colour", Value::from("red")), ("trust", Value::from("rel"))] {
        let mut broken = doc.clone();
        broken[key] = value;
        assert!(!validator.is_valid(&broken), "the schema accepts {key}: {}", broken[key]);
    }
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("host");
    assert!(!validator.is_valid(&missing), "the schema accepts a document without host");
}
