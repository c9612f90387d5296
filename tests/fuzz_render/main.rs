//! Property test: no input can panic the Butane front end, and every failure is located where
//! the input went wrong.
//!
//! Four seeded generators feed `butane::render`:
//! - mutated conformance inputs (line edits of real Butane files; [`corpus`]),
//! - random Butane-shaped documents (Butane's keys, mostly where they belong, over plausible
//!   values and raw tokens; [`random_doc`]),
//! - token soup (random tokens: bare, after a valid `variant`/`version` header, or as the value
//!   of a key after the header; [`soup`]),
//! - structure-aware documents: valid Butane built as a tree, then given targeted mutations
//!   (wrong types, invalid values, unknown keys, broken syntax, bad versions) whose expected
//!   outcome and position the generator knows ([`structured`]).
//!
//! Each outcome is classified by pipeline stage ([`outcome::Class`]), and every diagnostic
//! must point inside the document. Every generator must reach the classes it is meant to
//! reach at a meaningful rate ([`mix`]), so a generator that stops reaching the deep code fails
//! the test instead of passing vacuously. Run with `--nocapture` to see the mix.

#[path = "../common/mod.rs"]
mod common;

mod corpus;
mod mix;
mod outcome;
mod random_doc;
mod rng;
mod soup;
mod structured;
mod vocabulary;

use std::collections::BTreeMap;

use core_ops::host::files_dir::DiskFilesDir;

use corpus::{check_after_first_change, mutate};
use mix::Mix;
use outcome::{CLASSES, Class, render_classified};
use random_doc::random_document;
use rng::Rng;
use soup::token_soup;
use structured::{MUTATORS, check_mutant, mutated_document, numbered};

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
            mix.record(checked, || format!("input mutated from {} at line {first}:\n{mutated}", case.display()));
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

#[test]
fn random_documents_reach_the_decoder_and_validation() {
    let mut rng = Rng(42);
    let mut mix = Mix::default();
    for _ in 0..3000 {
        let doc = random_document(&mut rng);
        mix.record(render_classified(&doc, None), || format!("input:\n{doc}"));
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

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(7);
    let mut mix = Mix::default();
    for _ in 0..2000 {
        let text = token_soup(&mut rng);
        mix.record(render_classified(&text, None), || format!("input:\n{text:?}"));
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

#[test]
fn structured_documents_reach_every_stage_and_point_at_the_mutation() {
    let mut rng = Rng(0x5EED_B07A_4E00_0001);
    let mut mix = Mix::default();
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..3000 {
        let (layout, expects) = mutated_document(&mut rng);
        expects.iter().for_each(|e| *used.entry(e.name).or_default() += 1);
        let doc = layout.text();
        let checked = render_classified(&doc, None).and_then(|o| check_mutant(&o, &expects, &layout).map(|()| o));
        mix.record(checked, || {
            let names: Vec<&str> = expects.iter().map(|e| e.name).collect();
            format!("mutations {names:?} of:\n{}", numbered(&doc))
        });
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
