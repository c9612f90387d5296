//! The checkout on disk: reading `Cargo.toml`, `CHANGELOG.md` and the fragments in `changes/`,
//! writing `CHANGELOG.md` atomically, removing consumed fragments.
//!
//! The only module of `core-ops-release` that touches the project's files. It interprets
//! nothing: parsing is done by the pure modules on the text it returns.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::changelog::CHANGELOG;
use crate::fragment::{CHANGES_DIR, FRAGMENT_EXTENSION, fragment_path};
use crate::problem::Problem;

/// A fragment file as read: its name in `changes/` and its text.
#[derive(Debug, Clone)]
pub struct FragmentFile {
    /// `<change-id>.md`.
    pub name: String,
    /// The content.
    pub text: String,
}

/// A project checkout.
#[derive(Debug, Clone)]
pub struct Checkout {
    root: PathBuf,
}

impl Checkout {
    /// The checkout at `root`.
    pub fn at(root: &Path) -> Self {
        Checkout { root: root.to_path_buf() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the UTF-8 file `name` (relative to the checkout).
    pub fn read(&self, name: &str) -> Result<String, Problem> {
        fs::read_to_string(self.root.join(name)).map_err(|e| {
            Problem::in_file(
                name,
                format!(
                    "cannot read it in {} ({e}); run from the project checkout or pass --repo DIR",
                    self.root.display()
                ),
            )
        })
    }

    /// Every `*.md` file in `changes/`, sorted by file name; none when the folder is missing.
    pub fn fragment_files(&self) -> Result<Vec<FragmentFile>, Vec<Problem>> {
        let dir = self.root.join(CHANGES_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(vec![Problem::in_file(
                    CHANGES_DIR,
                    format!("cannot list it ({e}); check its permissions"),
                )]);
            }
        };
        let mut names = Vec::new();
        let mut problems = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    problems
                        .push(Problem::in_file(CHANGES_DIR, format!("cannot list it ({e}); check its permissions")));
                    continue;
                }
            };
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != FRAGMENT_EXTENSION) || path.is_dir() {
                continue;
            }
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(raw) => problems.push(Problem::in_file(
                    &format!("{CHANGES_DIR}/{}", raw.to_string_lossy()),
                    "the file name is not UTF-8; rename it to <change-id>.md",
                )),
            }
        }
        names.sort();
        let mut files = Vec::new();
        for name in names {
            match self.read(&fragment_path(&name)) {
                Ok(text) => files.push(FragmentFile { name, text }),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() { Ok(files) } else { Err(problems) }
    }

    /// Replaces `CHANGELOG.md` with `text` atomically: a temporary file in the checkout, synced,
    /// given the old file's permissions, renamed over it, and the directory synced.
    pub fn write_changelog(&self, text: &str) -> Result<(), Problem> {
        let target = self.root.join(CHANGELOG);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Problem::in_file(
                CHANGELOG,
                format!("{what} failed ({e}); nothing was changed, fix that and run promote again"),
            )
        };
        let permissions = fs::metadata(&target).map_err(|e| fail("reading its permissions", &e))?.permissions();
        let mut temp = tempfile::Builder::new()
            .prefix(".CHANGELOG.md.")
            .tempfile_in(&self.root)
            .map_err(|e| fail("creating a temporary file", &e))?;
        temp.write_all(text.as_bytes()).map_err(|e| fail("writing the temporary file", &e))?;
        temp.as_file().set_permissions(permissions).map_err(|e| fail("setting permissions", &e))?;
        temp.as_file().sync_all().map_err(|e| fail("syncing the temporary file", &e))?;
        temp.persist(&target).map_err(|e| fail("renaming the temporary file", &e.error))?;
        fs::File::open(&self.root).and_then(|dir| dir.sync_all()).map_err(|e| {
            Problem::in_file(CHANGELOG, format!("written, but syncing its folder failed ({e}); check the disk"))
        })
    }

    /// Removes the fragment `name` from `changes/`.
    pub fn remove_fragment(&self, name: &str) -> Result<(), Problem> {
        let path = fragment_path(name);
        fs::remove_file(self.root.join(&path)).map_err(|e| {
            Problem::in_file(
                &path,
                format!("cannot remove it ({e}); CHANGELOG.md already holds its entries: remove it by hand"),
            )
        })
    }
}
