//! The structure-aware generator's YAML writer: a tree written out as block YAML, recording
//! the line and column where each node's key and value landed, so that a mutation's expected
//! diagnostic position is known exactly.

use std::collections::HashMap;

use core_ops::model::path::Path;
use core_ops::model::report::Mark;

use super::tree::Tree;

/// A tree written out as block YAML, with where each node's value and key landed.
#[derive(Default)]
pub struct Layout {
    lines: Vec<String>,
    pub values: HashMap<Path, Mark>,
    pub keys: HashMap<Path, Mark>,
}

impl Layout {
    /// Writes `tree` out.
    pub fn of(tree: &Tree) -> Layout {
        let mut layout = Layout::default();
        layout.block(tree, 0, &Path::root());
        layout
    }

    /// The document text, ending in a newline.
    pub fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }

    /// The position of column `col` on the next line to be written.
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
