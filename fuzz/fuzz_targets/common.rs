#![allow(dead_code)] // each target uses its own part
//! What the targets share: a private folder per fuzzing process to write inputs into, since
//! the readers take paths.

use std::path::PathBuf;

/// `name` inside this process's own scratch folder, made on first use.
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradless-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
    dir.join(name)
}

/// Writes `bytes` as the foreign policy file `name` and reads it as `gradless eval` would.
pub fn read_foreign(name: &str, bytes: &[u8]) {
    let path = scratch_file(name);
    std::fs::write(&path, bytes).expect("the scratch file is writable");
    let _ = gradless_import::read_policy(&path, None);
}
