//! Fuzz target `ignition`: bytes → `core-ops apply --config x.ign` up to its desired state: the
//! pipeline's load of one config file (the entry every command uses for `--config`, whatever
//! parser it picks for the bytes), then the desired state the plan is made from.
//!
//! The bytes are written to one file per process (in the temporary directory, removed after
//! each input), as the command line would name it.
//!
//! What must hold for every input:
//! - a config that loads is written out as JSON that loads again to the same config and the
//!   same desired state (a valid config is a fixed point of read and write);
//! - a config that does not load fails with lines that each name the file (STYLE: errors name
//!   the file; the command line escapes each line as it prints it, so a line here may hold a
//!   newline that came from a key).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use core_ops::host::pipeline::{self, Input, LoadError, Loaded};
use core_ops::model::decode::ToJson;
use core_ops_fuzz::assert_json_object;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = config_file();
    let first = load(file, data);
    if let Ok(loaded) = &first {
        let written = loaded.config.to_json().to_compact();
        assert_json_object(&written, "the loaded config, written out");
        let again = load(file, written.as_bytes())
            .unwrap_or_else(|e| panic!("a loaded config, written out, does not load again:\n{e}\n{written}"));
        assert_eq!(again.config.to_json().to_compact(), written, "written out and read back, the config changed");
        assert!(again.desired() == loaded.desired(), "written out and read back, the desired state changed");
    }
    std::fs::remove_file(file).expect("removing the fuzz input file");
});

/// Loads `bytes` as the config file `file` and checks a failure's lines.
fn load(file: &Path, bytes: &[u8]) -> Result<Loaded, LoadError> {
    std::fs::write(file, bytes).expect("writing the fuzz input file");
    let loaded = pipeline::load(&Input::Config { file: file.to_path_buf(), files_dir: None }, false);
    match &loaded {
        Ok(_) => {}
        Err(LoadError::Failed(lines)) => {
            let name = file.display().to_string();
            assert!(!lines.is_empty(), "a config fails without a reason");
            for line in lines {
                assert!(line.contains(&name), "an error line does not name the file {name}: {line}");
            }
        }
        Err(other) => assert!(!other.to_string().trim().is_empty(), "a config fails without a reason"),
    }
    loaded
}

/// This process's input file: `core-ops-fuzz-<pid>.ign` in the temporary directory.
fn config_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| std::env::temp_dir().join(format!("core-ops-fuzz-{}.ign", std::process::id())))
}
