//! What the workspace's tests share (a dev-dependency only): where the repository's shipped
//! checkpoints, configs and fixtures are, fresh scratch folders, and copies of checkpoints
//! to damage.

use std::path::{Path, PathBuf};

/// The workspace root, found at run time from the crate under test (`cargo test` sets
/// `CARGO_MANIFEST_DIR`): a path baked in at compile time would point into whichever
/// checkout built a cached test binary.
pub fn workspace_root() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&manifest)
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("the crate lies inside the workspace")
        .to_path_buf()
}

/// The keys every evaluation summary carries, in `summary.json` and `eval --json` alike (the
/// ones docs/evaluation.md documents and scripts read).
pub const SUMMARY_KEYS: [&str; 8] = [
    "checkpoint",
    "step",
    "episodes",
    "mean_return",
    "std_return",
    "iqm",
    "iqm_ci95",
    "truncated_fraction",
];

/// A checkpoint shipped under `checkpoints/` (`cartpole-v1-ppo`, `cartpole-v1-dqn`).
pub fn shipped_checkpoint(name: &str) -> PathBuf {
    workspace_root().join("checkpoints").join(name)
}

/// A shipped config under `configs/`.
pub fn shipped_config(name: &str) -> PathBuf {
    workspace_root().join("configs").join(name)
}

/// An empty folder of the system's temporary directory, unique to this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradless-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
    dir
}

/// The names in a folder, sorted.
pub fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the folder can be listed")
        .map(|e| {
            e.expect("its entries can be read")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Copies the files of the folder `from` (a checkpoint) into `to`, creating it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("the copy's folder can be made");
    for entry in std::fs::read_dir(from).expect("the folder to copy exists") {
        let path = entry.expect("its entries can be read").path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("files have names")))
                .expect("the file can be copied");
        }
    }
}

/// Copies the folder `from` and everything below it into `to` (links are not followed).
pub fn copy_tree(from: &Path, to: &Path) {
    copy_dir(from, to);
    for entry in std::fs::read_dir(from).expect("the folder to copy exists") {
        let entry = entry.expect("its entries can be read");
        if entry.file_type().expect("entries have types").is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

/// Makes `run` a run directory holding copies of the shipped checkpoint `name`, one for each
/// of `steps`, named as a trainer names them (`step-` and the step in ten digits); returns
/// `run`.
pub fn run_of_copies(run: PathBuf, name: &str, steps: &[u64]) -> PathBuf {
    for step in steps {
        copy_dir(
            &shipped_checkpoint(name),
            &run.join("checkpoints").join(format!("step-{step:010}")),
        );
    }
    run
}

/// Makes a FIFO at `path`, in this process: spawning `mkfifo` would fork, and a fork while
/// another test holds a directory lock briefly shares the lock with the child.
pub fn make_fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}
