//! Ignition's config merge: the rule Butane uses to layer generated parents under the user's
//! config, and Ignition uses for `ignition.config.merge` children at first boot.
//!
//! Field by field: a child primitive wins; an optional value wins when the child sets it;
//! structs merge recursively; lists merge by key (files, directories and links by path, units
//! and drop-ins by name, disks by device, ...): a keyed parent item merges with the child's
//! item of the same key in place, child-only items are appended. Option-like lists
//! (`options`, `mountOptions`, `append`) are concatenated.

use crate::model::ignition::types::{
    Directory, Disk, Dropin, File, Filesystem, GrubUser, HttpHeader, Link, Luks, Partition, PasswdGroup, PasswdUser,
    Quadlet, Raid, Resource, Storage, Tang, Tree, Unit,
};

/// Fields whose lists are concatenated rather than merged by key.
const CONCATENATED_FIELDS: &[&str] = &["options", "mount_options", "append"];

/// A value that merges a child over a parent.
pub trait Merge: Sized {
    /// The merge of `child` over `parent`.
    fn merge(parent: Self, child: Self) -> Self;
}

/// A struct field that merges; `name` selects the list rule.
pub trait MergeField: Sized {
    /// The merge of `child` over `parent` for the field called `name`.
    fn merge_field(name: &str, parent: Self, child: Self) -> Self;
}

/// The key that list items are matched by.
pub trait Keyed {
    /// The item's key.
    fn merge_key(&self) -> String;
    /// Whether this child item removes the parent's item instead of merging (HTTP headers
    /// without a value).
    fn removes_parent(&self) -> bool {
        false
    }
}

impl MergeField for String {
    fn merge_field(_: &str, _parent: Self, child: Self) -> Self {
        child
    }
}

impl MergeField for i64 {
    fn merge_field(_: &str, _parent: Self, child: Self) -> Self {
        child
    }
}

impl<T> MergeField for Option<T> {
    fn merge_field(_: &str, parent: Self, child: Self) -> Self {
        child.or(parent)
    }
}

impl<T: Keyed + MergeField> MergeField for Vec<T> {
    fn merge_field(name: &str, parent: Self, child: Self) -> Self {
        if CONCATENATED_FIELDS.contains(&name) {
            let mut out = parent;
            out.extend(child);
            out
        } else {
            merge_keyed(parent, child).0
        }
    }
}

/// Merges two keyed lists; also returns, for each child item, its index in the result (or
/// `None` when it removed its parent item).
pub fn merge_keyed<T: Keyed + MergeField>(parent: Vec<T>, child: Vec<T>) -> (Vec<T>, Vec<Option<usize>>) {
    let child_keys: Vec<String> = child.iter().map(Keyed::merge_key).collect();
    let parent_keys: Vec<String> = parent.iter().map(Keyed::merge_key).collect();
    let mut child_slots: Vec<Option<T>> = child.into_iter().map(Some).collect();
    let mut placed: Vec<Option<usize>> = vec![None; child_slots.len()];
    let mut out = Vec::with_capacity(parent_keys.len() + child_slots.len());
    for (item, key) in parent.into_iter().zip(&parent_keys) {
        match child_keys.iter().rposition(|k| k == key) {
            Some(ci) => {
                let Some(child_item) = child_slots[ci].take() else { continue };
                for (i, k) in child_keys.iter().enumerate() {
                    if k == key && !child_item.removes_parent() {
                        placed[i] = Some(out.len());
                    }
                }
                if !child_item.removes_parent() {
                    out.push(T::merge_field("", item, child_item));
                }
            }
            None => out.push(item),
        }
    }
    for (i, slot) in child_slots.iter_mut().enumerate() {
        if parent_keys.contains(&child_keys[i]) {
            continue;
        }
        if let Some(item) = slot.take() {
            placed[i] = Some(out.len());
            out.push(item);
        }
    }
    (out, placed)
}

impl Keyed for String {
    fn merge_key(&self) -> String {
        self.clone()
    }
}

macro_rules! keyed_by {
    ($($ty:ty => |$v:ident| $key:expr;)*) => {$(
        impl Keyed for $ty {
            fn merge_key(&self) -> String {
                let $v = self;
                $key
            }
        }
    )*};
}

keyed_by! {
    File => |f| f.path.clone();
    Directory => |d| d.path.clone();
    Link => |l| l.path.clone();
    Unit => |u| u.name.clone();
    Dropin => |d| d.name.clone();
    Quadlet => |q| q.name.clone();
    Disk => |d| d.device.clone();
    Filesystem => |f| f.device.clone();
    Luks => |l| l.name.clone();
    Raid => |r| r.name.clone();
    PasswdUser => |u| u.name.clone();
    PasswdGroup => |g| g.name.clone();
    Tang => |t| t.url.clone();
    Resource => |r| r.source.clone().unwrap_or_default();
    Tree => |t| t.local.clone().unwrap_or_default();
    GrubUser => |u| u.name.clone();
    Partition => |p| match (p.number, &p.label) {
        (n, _) if n != 0 => format!("number:{n}"),
        (_, Some(label)) => format!("label:{label}"),
        _ => String::new(),
    };
}

impl Keyed for HttpHeader {
    fn merge_key(&self) -> String {
        self.name.clone()
    }
    fn removes_parent(&self) -> bool {
        self.value.is_none()
    }
}

/// Files, directories and links share one key space: a child node of another kind at a
/// parent node's path replaces it. Call before merging `storage`.
pub fn drop_shadowed_nodes(parent: &mut Storage, child: &Storage) {
    let files: Vec<&str> = child.files.iter().map(|f| f.path.as_str()).collect();
    let dirs: Vec<&str> = child.directories.iter().map(|d| d.path.as_str()).collect();
    let links: Vec<&str> = child.links.iter().map(|l| l.path.as_str()).collect();
    parent.files.retain(|f| !dirs.contains(&f.path.as_str()) && !links.contains(&f.path.as_str()));
    parent.directories.retain(|d| !files.contains(&d.path.as_str()) && !links.contains(&d.path.as_str()));
    parent.links.retain(|l| !files.contains(&l.path.as_str()) && !dirs.contains(&l.path.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ignition::types::Config;

    fn unit(name: &str, contents: Option<&str>, enabled: Option<bool>) -> Unit {
        Unit { name: name.into(), contents: contents.map(Into::into), enabled, ..Unit::default() }
    }

    #[test]
    fn keyed_lists_merge_in_place_and_append_new_items() {
        let parent = vec![unit("a.mount", Some("generated"), Some(true)), unit("b.service", Some("b"), None)];
        let child = vec![unit("c.service", Some("c"), None), unit("a.mount", None, Some(false))];
        let (out, placed) = merge_keyed(parent, child);
        let names: Vec<&str> = out.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a.mount", "b.service", "c.service"]);
        assert_eq!(out[0].contents.as_deref(), Some("generated"), "parent contents kept when the child sets none");
        assert_eq!(out[0].enabled, Some(false), "child's explicit false wins");
        assert_eq!(placed, vec![Some(2), Some(0)]);
    }

    #[test]
    fn option_lists_concatenate() {
        let parent = Filesystem { device: "/dev/a".into(), options: vec!["-E".into()], ..Filesystem::default() };
        let child = Filesystem { device: "/dev/a".into(), options: vec!["-E".into()], ..Filesystem::default() };
        assert_eq!(Filesystem::merge(parent, child).options.len(), 2);
    }

    #[test]
    fn header_without_value_removes_the_parents() {
        let h = |name: &str, value: Option<&str>| HttpHeader { name: name.into(), value: value.map(Into::into) };
        let (out, _) = merge_keyed(vec![h("A", Some("1")), h("B", Some("2"))], vec![h("A", None)]);
        assert_eq!(out, vec![h("B", Some("2"))]);
    }

    #[test]
    fn a_child_node_of_another_kind_shadows_the_parent_node() {
        let mut parent = Config::default();
        parent.storage.files.push(File { path: "/etc/x".into(), ..File::default() });
        let mut child = Config::default();
        child.storage.directories.push(Directory { path: "/etc/x".into(), ..Directory::default() });
        drop_shadowed_nodes(&mut parent.storage, &child.storage);
        let merged = Config::merge(parent, child);
        assert!(merged.storage.files.is_empty());
        assert_eq!(merged.storage.directories.len(), 1);
    }
}
