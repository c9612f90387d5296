//! Property test: no input can panic the Butane front end. Random and mutated YAML (seeded from
//! the conformance inputs) must give either a config or a located error.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use core_ops::host::files_dir::DiskFilesDir;
use core_ops::model::butane::files::FilesDir;
use core_ops::model::butane::{self, Failure};
use core_ops::model::report::Report;

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
}

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

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut lines: Vec<String> = input.lines().map(str::to_string).collect();
    for _ in 0..=rng.below(2) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(6) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            2 => {
                let j = rng.below(lines.len());
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
            _ => {
                let indent = " ".repeat(rng.below(8));
                lines.insert(i, format!("{indent}{}: {}", rng.pick(KEYS), rng.pick(TOKENS)));
            }
        }
    }
    lines.join("\n")
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A random Butane-shaped document: nested maps and lists over Butane's keys.
fn random_document(rng: &mut Rng) -> String {
    let mut out =
        format!("variant: fcos\nversion: {}\n", rng.pick(&["1.0.0", "1.4.0", "1.6.0", "1.7.0", "1.8.0-experimental"]));
    write_map(rng, &mut out, 0, 3);
    out
}

fn write_map(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    for _ in 0..=rng.below(4) {
        out.push_str(&" ".repeat(indent));
        out.push_str(rng.pick(KEYS));
        out.push(':');
        match (depth, rng.below(3)) {
            (0, _) | (_, 0) => {
                out.push(' ');
                out.push_str(rng.pick(TOKENS).trim_matches('\n'));
                out.push('\n');
            }
            (_, 1) => {
                out.push('\n');
                write_map(rng, out, indent + 2, depth - 1);
            }
            _ => {
                out.push('\n');
                for _ in 0..=rng.below(2) {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str("- ");
                    out.push_str(rng.pick(KEYS));
                    out.push_str(": ");
                    out.push_str(rng.pick(TOKENS).trim_matches('\n'));
                    out.push('\n');
                }
            }
        }
    }
}

fn all_located(report: &Report) -> bool {
    report.entries.iter().all(|d| d.mark.is_some_and(|m| m.line >= 1 && m.col >= 1))
}

/// Renders `input` and checks the outcome; returns a description of any violation.
fn check(input: &str, files: Option<&dyn FilesDir>) -> Result<bool, String> {
    let outcome =
        catch_unwind(AssertUnwindSafe(|| butane::render(input, files))).map_err(|_| "panicked".to_string())?;
    match outcome {
        Ok(rendered) => {
            let text = rendered.to_json().to_pretty();
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("output is not JSON: {e}"))?;
            if rendered.report.has_errors() || !all_located(&rendered.report) {
                return Err("success with errors or unlocated warnings".into());
            }
            return Ok(true);
        }
        Err(Failure::Yaml(e)) if e.mark.line >= 1 => {}
        Err(Failure::Select(_) | Failure::IgnitionVersion(_)) => {}
        Err(Failure::Types(report)) if !report.is_empty() && all_located(&report) => {}
        Err(Failure::Invalid { report, .. }) if report.has_errors() && all_located(&report) => {}
        Err(other) => return Err(format!("unlocated or empty failure: {other:?}")),
    }
    Ok(false)
}

#[test]
fn mutated_corpus_inputs_never_panic_and_fail_located() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut checked, mut rendered) = (0, 0);
    for case in common::cases() {
        let input = std::fs::read_to_string(case.join("input.bu")).unwrap();
        let files = DiskFilesDir::new(case.join("files"));
        for _ in 0..40 {
            let mutated = mutate(&mut rng, &input);
            match check(&mutated, Some(&files)) {
                Ok(ok) => rendered += usize::from(ok),
                Err(why) => panic!("{why} for input mutated from {}:\n{mutated}", case.display()),
            }
            checked += 1;
        }
    }
    assert!(checked > 4000, "only {checked} inputs checked");
    // The mutations must exercise both outcomes, or the test proves little.
    assert!(rendered > checked / 20 && rendered < checked * 9 / 10, "{rendered} of {checked} rendered");
}

#[test]
fn random_documents_never_panic_and_fail_located() {
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let doc = random_document(&mut rng);
        if let Err(why) = check(&doc, None) {
            panic!("{why} for input:\n{doc}");
        }
    }
}

#[test]
fn arbitrary_bytes_as_text_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = rng.below(200);
        let text: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
        if let Err(why) = check(&text, None) {
            panic!("{why} for input:\n{text:?}");
        }
    }
}
