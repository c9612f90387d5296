//! Fuzz target `butane`: bytes → the Butane front end as `core-ops render-ignition` runs it
//! (UTF-8 text, YAML, variant selection, decoding, validation, translation, the generated
//! config's validation), once without a files directory and once with a small in-memory one.
//!
//! What must hold for every input:
//! - a success renders JSON with an `ignition.version` and carries no error;
//! - a failure carries at least one error;
//! - every located diagnostic points inside the document (STYLE: errors name the line);
//! - a files directory only serves `local:` and `trees:` (Butane's `-d`): an input that renders
//!   without one renders to the same config with one.
#![no_main]

use std::sync::OnceLock;

use core_ops::model::butane::files::{FilesDir, MemFilesDir};
use core_ops::model::butane::{self, Failure, Rendered};
use core_ops::model::report::{Diagnostic, Severity};
use core_ops_fuzz::assert_json_object;
use core_ops_fuzz::located::Lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // render-ignition reads its input as UTF-8 text and refuses anything else before Butane.
    let Ok(src) = std::str::from_utf8(data) else { return };
    let with_files = butane::render(src, Some(files_dir()));
    check(src, &with_files);
    let without_files = butane::render(src, None);
    check(src, &without_files);
    if let Ok(rendered) = &without_files {
        let with_files = with_files.as_ref().expect("renders without a files directory but fails with one");
        assert_eq!(compact(with_files), compact(rendered), "a files directory changed a config that uses none");
    }
});

/// The files directory of every run: names the conformance cases use (`x.txt`, `tree/`, an
/// executable, a symlink), so that `local:` and `trees:` reach past "no such file".
fn files_dir() -> &'static dyn FilesDir {
    static FILES: OnceLock<MemFilesDir> = OnceLock::new();
    FILES.get_or_init(|| {
        MemFilesDir::default()
            .file("x", b"x\n", false)
            .file("x.txt", b"hello\n", false)
            .file("a.txt", b"a\n", false)
            .file("present.txt", b"", false)
            .file("bytes.bin", &[0, 0xff, 0x1f, 0x8b, b'\n'], false)
            .file("tree/t", b"t\n", false)
            .file("app/start", b"#!/bin/sh\n", true)
            .file("app/lib/libfoo.txt", b"lib\n", false)
            .file("units/web.service", b"[Service]\nExecStart=/bin/true\n", false)
            .symlink("link", "x.txt")
            .symlink("tree/up", "../x")
    })
}

fn compact(rendered: &Rendered) -> String {
    rendered.to_json().to_compact()
}

fn check(src: &str, outcome: &Result<Rendered, Failure>) {
    let diagnostics: &[Diagnostic] = match outcome {
        Ok(rendered) => {
            let value = assert_json_object(&compact(rendered), "the rendered config");
            assert!(value["ignition"]["version"].is_string(), "the rendered config has no ignition.version");
            assert!(!rendered.report.has_errors(), "a success carries errors: {:?}", rendered.report);
            &rendered.report.entries
        }
        Err(Failure::Yaml(e)) => {
            Lines::of(src).assert_contain(e.mark, &e.message);
            &[]
        }
        Err(Failure::Select(_) | Failure::IgnitionVersion(_)) => &[],
        Err(Failure::Types(report)) | Err(Failure::Invalid { report, .. }) => {
            assert!(report.entries.iter().any(|d| d.severity == Severity::Error), "a failure without an error");
            &report.entries
        }
    };
    if diagnostics.is_empty() {
        return;
    }
    let lines = Lines::of(src);
    for d in diagnostics {
        let mark = d.mark.unwrap_or_else(|| panic!("an unlocated diagnostic: {}", d.raw_line()));
        lines.assert_contain(mark, &d.raw_line());
    }
}
