//! What a hostile user tried: outputs onto devices, FIFOs and links, links planted inside
//! inputs, endless or huge input files, edited metadata, seeds at the edge of u64. Each is
//! one clear line on stderr and a non-zero exit, and leaves what was there untouched.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn file_type(path: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(path).unwrap().file_type()
}

fn eval_on_flex(checkpoint: &Path) -> std::process::Output {
    gradless(&["eval", checkpoint.to_str().unwrap(), "--device", "flex"])
}

fn export(checkpoint: &Path, out: &Path) -> std::process::Output {
    gradless(&[
        "export",
        checkpoint.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Atomic replacement is for regular files and new paths; anything else is refused (not
/// written through: a device or FIFO would take a partial write, a link would send the
/// output outside the path given).
#[test]
fn outputs_never_replace_devices_fifos_or_links() {
    let dir = scratch("outputs");
    let ppo = shipped("cartpole-v1-ppo");

    assert_clean_failure(
        &export(&ppo, Path::new("/dev/null")),
        &["/dev/null", "character device"],
    );
    assert!(file_type(Path::new("/dev/null")).is_char_device());

    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    assert_clean_failure(&export(&ppo, &fifo), &["fifo", "FIFO"]);
    assert!(file_type(&fifo).is_fifo());

    let target = dir.join("target.txt");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_clean_failure(&export(&ppo, &link), &["link.safetensors", "symbolic link"]);
    assert!(file_type(&link).is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

    let input = workspace_root().join("envs/tests/fixtures/replay_input.json");
    assert_clean_failure(
        &gradless(&[
            "replay",
            input.to_str().unwrap(),
            "--out",
            fifo.to_str().unwrap(),
        ]),
        &["FIFO"],
    );
    assert!(file_type(&fifo).is_fifo());

    // A regular file is replaced, and nothing but it is left in the folder.
    let regular = dir.join("ppo.safetensors");
    std::fs::write(&regular, "old").unwrap();
    let output = export(&ppo, &regular);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_ne!(std::fs::read(&regular).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inputs that never end (a FIFO, `/dev/zero`) or are huge are refused at once.
#[test]
fn endless_and_oversized_inputs_are_refused_at_once() {
    let dir = scratch("endless");
    let fifo = dir.join("input.json");
    make_fifo(&fifo);
    let started = Instant::now();
    assert_clean_failure(&gradless(&["replay", fifo.to_str().unwrap()]), &["FIFO"]);
    assert_clean_failure(
        &gradless(&["replay", "/dev/zero"]),
        &["/dev/zero", "character device"],
    );
    assert_clean_failure(
        &gradless(&[
            "train",
            "--config",
            fifo.to_str().unwrap(),
            "--device",
            "flex",
        ]),
        &["FIFO"],
    );

    let checkpoint = dir.join("ckpt");
    copy_dir(&shipped("cartpole-v1-ppo"), &checkpoint);
    std::fs::remove_file(checkpoint.join("metadata.json")).unwrap();
    make_fifo(&checkpoint.join("metadata.json"));
    assert_clean_failure(&eval_on_flex(&checkpoint), &["metadata.json", "FIFO"]);
    std::fs::remove_file(checkpoint.join("model.bpk")).unwrap();
    std::fs::remove_file(checkpoint.join("metadata.json")).unwrap();
    std::fs::copy(
        shipped("cartpole-v1-ppo").join("metadata.json"),
        checkpoint.join("metadata.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", checkpoint.join("model.bpk")).unwrap();
    assert_clean_failure(
        &eval_on_flex(&checkpoint),
        &["model.bpk", "character device"],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint holding an `eval` link: the evaluation refuses to write through it.
#[test]
fn eval_never_writes_through_links_inside_a_checkpoint() {
    let dir = scratch("eval-link");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let checkpoint = dir.join("ckpt");
    copy_dir(&shipped("cartpole-v1-dqn"), &checkpoint);
    std::os::unix::fs::symlink(&elsewhere, checkpoint.join("eval")).unwrap();
    assert_clean_failure(
        &gradless(&[
            "eval",
            checkpoint.to_str().unwrap(),
            "--device",
            "flex",
            "--episodes",
            "2",
        ]),
        &["eval", "symbolic link"],
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Edited metadata is caught by its checksum; a metadata file claiming enormous layers
/// costs nothing.
#[test]
fn edited_metadata_is_one_line_and_quick() {
    let dir = scratch("edited");
    let checkpoint = dir.join("ckpt");
    copy_dir(&shipped("cartpole-v1-ppo"), &checkpoint);
    let path = checkpoint.join("metadata.json");
    let original = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        ("\"tanh\"", "\"relu\""),
        ("64,\n      64", "1000000000,\n      1000000000"),
    ] {
        assert!(original.contains(from), "{from}");
        std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
        let started = Instant::now();
        assert_clean_failure(
            &eval_on_flex(&checkpoint),
            &["metadata.json", "metadata_sha256"],
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_refuses_what_it_cannot_finish_before_running_an_episode() {
    let ppo = shipped("cartpole-v1-ppo");
    assert_clean_failure(
        &gradless(&[
            "eval",
            ppo.to_str().unwrap(),
            "--device",
            "flex",
            "--seed",
            "18446744073709551615",
        ]),
        &["--seed", "18446744073709551516"],
    );
    // /proc takes no new folders, even from root.
    assert_clean_failure(
        &gradless(&[
            "eval",
            ppo.to_str().unwrap(),
            "--device",
            "flex",
            "--out",
            "/proc/gradless-eval",
        ]),
        &["--out", "/proc/gradless-eval"],
    );
}
