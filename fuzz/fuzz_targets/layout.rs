//! Fuzz target `layout`: a source repository held in memory (the agent's input: a git commit's
//! tree) → the pipeline's load of each host it describes (layout rules, `host.yaml`,
//! `service.yaml`, Butane fragments, units, Quadlet files, config files, host overlays, the
//! composition into one config) and the desired state made from it. The input is the text
//! format of [`core_ops_fuzz::tree_text`]; a repository without hosts is loaded for the host
//! `example`, which it lacks.
//!
//! What must hold for every input:
//! - a host that loads composes a config that is written out as JSON;
//! - a host that does not load is refused with issues, each naming a file or folder, and each
//!   line and column given points inside that file when the file is text in the tree.
#![no_main]

use std::collections::BTreeMap;

use core_ops::host::pipeline::{self, Input, LoadError};
use core_ops::model::decode::ToJson;
use core_ops::model::source::SourceIssue;
use core_ops::model::source::layout;
use core_ops::model::source::tree::SourceTree;
use core_ops::model::state::SourceRef;
use core_ops_fuzz::located::Lines;
use core_ops_fuzz::{assert_json_object, tree_text};
use libfuzzer_sys::fuzz_target;

/// The host loaded when the tree describes none.
const FALLBACK_HOST: &str = "example";
/// The most hosts of one input that are loaded.
const MAX_HOSTS: usize = 2;

fuzz_target!(|data: &[u8]| {
    let tree = tree_text::parse(data);
    let mut hosts = layout::hosts(&tree);
    hosts.truncate(MAX_HOSTS);
    if hosts.is_empty() {
        hosts.push(FALLBACK_HOST.to_string());
    }
    for host in hosts {
        let source =
            SourceRef { kind: "git".into(), location: "fuzz".into(), host: Some(host.clone()), ..SourceRef::default() };
        let input = Input::Tree { tree: tree.clone(), host, source, digest: "fuzz".into() };
        match pipeline::load(&input, false) {
            Ok(loaded) => {
                assert_json_object(&loaded.config.to_json().to_compact(), "the composed config");
                let _ = loaded.desired();
            }
            Err(LoadError::Invalid(issues)) => {
                assert!(!issues.is_empty(), "a repository refused without an issue");
                let mut lines_of = BTreeMap::new();
                issues.iter().for_each(|issue| check_issue(&tree, issue, &mut lines_of));
            }
            Err(other) => panic!("an in-memory tree fails as no invalid repository: {other}"),
        }
    }
});

/// Checks that `issue` names a file and, when it is located in a text file of the tree, that
/// the mark is inside it (`lines_of` keeps each file's lines, measured once).
fn check_issue<'a>(tree: &'a SourceTree, issue: &'a SourceIssue, lines_of: &mut BTreeMap<&'a str, Option<Lines>>) {
    assert!(!issue.file.is_empty(), "an issue names no file: {issue}");
    let Some(mark) = issue.mark else { return };
    let lines = lines_of
        .entry(&issue.file)
        .or_insert_with(|| tree.get(&issue.file).and_then(|f| std::str::from_utf8(&f.bytes).ok()).map(Lines::of));
    if let Some(lines) = lines {
        lines.assert_contain(mark, issue);
    }
}
