//! Running the `gradless` binary from integration tests.
#![allow(dead_code, unused_imports)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use gradless_test_support::{
    SUMMARY_KEYS, copy_dir, copy_tree, make_fifo, run_of_copies, scratch,
    shipped_checkpoint as shipped, sorted_names, workspace_root,
};

pub fn gradless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradless"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the gradless binary runs")
}

/// `gradless COMMAND PATH --device flex EXTRA...`: most tests run on burn's CPU backend.
pub fn on_flex(command: &str, path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("test paths are UTF-8");
    let mut args = vec![command, path, "--device", "flex"];
    args.extend_from_slice(extra);
    gradless(&args)
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout as one JSON value per line.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("stdout lines are JSON"))
        .collect()
}

/// A one-line error on stderr, a non-zero exit and no panic.
pub fn assert_clean_failure(output: &Output, must_mention: &[&str]) {
    let stderr = stderr(output);
    assert!(
        !output.status.success(),
        "expected failure, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    for word in must_mention {
        assert!(stderr.contains(word), "`{word}` missing from: {stderr}");
    }
}

/// A tiny PPO run: 2 envs x 32 steps per update, a checkpoint after every update.
pub const TINY_PPO: &str = include_str!("tiny_ppo.toml");

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path
}
