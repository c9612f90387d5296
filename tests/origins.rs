//! Provenance: every field of every rendered config maps back to a place in the Butane source,
//! every step of that place existing in the source, for generated fields as for the rest.

mod common;

use core_ops::host::files_dir::DiskFilesDir;
use core_ops::model::butane;
use core_ops::model::json::Json;
use core_ops::model::path::Path;
use core_ops::model::yaml;

fn leaves(value: &Json, at: Path, out: &mut Vec<Path>) {
    match value {
        Json::Object(fields) => fields.iter().for_each(|(k, v)| leaves(v, at.key(k), out)),
        Json::Array(items) => items.iter().enumerate().for_each(|(i, v)| leaves(v, at.index(i), out)),
        _ => out.push(at),
    }
}

#[test]
fn every_output_field_has_an_origin_in_the_source() {
    let (mut checked, mut unresolved) = (0, Vec::new());
    for case in common::cases() {
        let src = std::fs::read_to_string(case.join("input.bu")).unwrap();
        let files = DiskFilesDir::new(case.join("files"));
        let Ok(rendered) = butane::render(&src, Some(&files)) else { continue };
        let doc = yaml::parse(&src).unwrap();
        let mut paths = Vec::new();
        leaves(&rendered.to_json(), Path::root(), &mut paths);
        for out in paths {
            let origin = rendered.translations.source_of(&out);
            let text = origin.to_string();
            assert!(
                !text.chars().any(|c| c.is_ascii_uppercase()),
                "{}: {out} maps to non-Butane key {text}",
                case.display()
            );
            // Every step of the origin resolves in the source, generated fields included: a
            // diagnostic about any output field lands on text that is really there.
            let depth = doc.existing_depth(&origin);
            if depth != origin.len() {
                let name = case.file_name().unwrap().to_string_lossy();
                unresolved.push(format!("{name}: {out} maps to {text}, of which only {depth} steps exist"));
            }
            checked += 1;
        }
    }
    assert!(checked > 800, "only {checked} output fields checked");
    assert!(unresolved.is_empty(), "{} origins do not resolve:\n{}", unresolved.len(), unresolved.join("\n"));
}

#[test]
fn generated_entries_point_at_the_sugar_that_made_them() {
    let case = common::corpus_dir().join("061-tree-basic");
    let src = std::fs::read_to_string(case.join("input.bu")).unwrap();
    let rendered = butane::render(&src, Some(&DiskFilesDir::new(case.join("files")))).unwrap();
    // As in Butane, every field of an entry a tree generated comes from the tree entry itself:
    // a tree has no `contents` or `target` of its own to point at.
    let cases = [
        ("$.storage.files.0.path", "$.storage.trees.0"),
        ("$.storage.files.3.contents.source", "$.storage.trees.0"),
        ("$.storage.links.1.target", "$.storage.trees.0"),
        ("$.ignition.version", "$.version"),
    ];
    for (out, want) in cases {
        assert_eq!(rendered.translations.source_of(&Path::parse(out)).to_string(), want, "case {out}");
    }
}
