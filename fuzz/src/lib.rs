//! What the fuzz targets share: the checks that hold for every input (a diagnostic points
//! inside its document, rendered output is JSON) and the input formats of the structured
//! targets (a repository tree as text, a unit file written back from its options).
//!
//! Nothing here decides what an input means: that stays CoreOps's own code, reached through
//! the public entries the command line uses. These helpers only build inputs and state the
//! properties the specifications promise.

pub mod located;
pub mod tree_text;
pub mod unit_text;

/// Parses `text` with an independent JSON reader (serde_json); panics, naming the reason, when
/// it is not JSON. What CoreOps writes as Ignition must be JSON (Ignition's config spec).
pub fn assert_json_object(text: &str, what: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}):\n{text}"));
    assert!(value.is_object(), "{what} is JSON but not an object:\n{text}");
    value
}
