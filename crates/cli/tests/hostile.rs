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
    on_flex("eval", checkpoint, &[])
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
        &on_flex("eval", &checkpoint, &["--episodes", "2"]),
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
        &on_flex("eval", &ppo, &["--seed", "18446744073709551615"]),
        &["--seed", "18446744073709551516"],
    );
    // /proc takes no new folders, even from root.
    assert_clean_failure(
        &on_flex("eval", &ppo, &["--out", "/proc/gradless-eval"]),
        &["--out", "/proc/gradless-eval"],
    );
}

/// `gradless train --config CONFIG --device flex ARGS...`.
fn train_on_flex(config: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "train",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "flex",
    ];
    all.extend(args);
    gradless(&all)
}

/// A run made for these tests, in `dir/run`: three checkpoints of a tiny PPO run.
fn tiny_run(dir: &Path) -> std::path::PathBuf {
    let config = write_config(
        dir,
        &TINY_PPO
            .replace("total_timesteps = 1024", "total_timesteps = 192")
            .replace("keep_last = 2", "keep_last = 3"),
    );
    let run = dir.join("run");
    let output = train_on_flex(&config, &["--out", run.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    run
}

/// `train --out` into a folder that is not a run keeps every file of it, whatever their
/// names, and says which file it found.
#[test]
fn a_new_run_never_replaces_a_users_files() {
    let dir = scratch("foreign-out");
    let out = dir.join("mine");
    std::fs::create_dir_all(&out).unwrap();
    for name in ["metrics.jsonl", "events.out.tfevents.123.host"] {
        std::fs::write(out.join(name), "mine").unwrap();
    }
    let config = write_config(&dir, TINY_PPO);
    assert_clean_failure(
        &train_on_flex(&config, &["--out", out.to_str().unwrap()]),
        &["mine", "not a gradless run", "events.out.tfevents.123.host"],
    );
    assert_eq!(
        sorted_names(&out),
        ["events.out.tfevents.123.host", "metrics.jsonl"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Links inside a run are refused by eval, record and compare, and nothing is written
/// through them; a link of the user's own to a run's checkpoint locks the real run.
#[test]
fn links_inside_a_run_are_refused_and_aliases_lock_the_real_run() {
    let dir = scratch("run-links");
    let run = tiny_run(&dir);
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let real = run.join("checkpoints/step-0000000192");
    copy_dir(&real, &elsewhere.join("step-0000000999"));
    let planted = sorted_names(&elsewhere.join("step-0000000999"));
    std::os::unix::fs::symlink(
        elsewhere.join("step-0000000999"),
        run.join("checkpoints/step-0000000999"),
    )
    .unwrap();
    for args in [
        vec!["eval", run.to_str().unwrap(), "--episodes", "2"],
        vec!["record", run.to_str().unwrap(), "--episodes", "1"],
    ] {
        let mut args = args;
        args.extend(["--device", "flex"]);
        assert_clean_failure(&gradless(&args), &["step-0000000999", "symbolic link"]);
    }
    assert_eq!(sorted_names(&elsewhere.join("step-0000000999")), planted);
    std::fs::remove_file(run.join("checkpoints/step-0000000999")).unwrap();

    // An alias of a checkpoint, taken while the run is locked by another process.
    let alias = dir.join("alias");
    std::os::unix::fs::symlink(&real, &alias).unwrap();
    let _trainer = gradless_files::DirLock::acquire(&run).unwrap();
    assert_clean_failure(&on_flex("eval", &alias, &["--episodes", "2"]), &["in use"]);
    assert!(!real.join("eval").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A closed stdout ends the program as it ends other Unix tools: no panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gradless"))
        .args(["envs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = stderr(&output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        output.status.success() || output.status.signal() == Some(13),
        "{:?}",
        output.status
    );
}

/// `--resume` given a checkpoint says so, and leaves nothing in it; a refused `--shard`
/// leaves no `--out`; a run's seed past what config.toml holds is named.
#[test]
fn refusals_leave_nothing_behind() {
    let dir = scratch("refusals");
    let checkpoint = dir.join("ckpt");
    copy_dir(&shipped("cartpole-v1-ppo"), &checkpoint);
    let before = sorted_names(&checkpoint);
    assert_clean_failure(
        &gradless(&[
            "train",
            "--resume",
            checkpoint.to_str().unwrap(),
            "--device",
            "flex",
        ]),
        &["is a checkpoint, not a run"],
    );
    assert_eq!(sorted_names(&checkpoint), before);
    let out = dir.join("shard-out");
    assert_clean_failure(
        &on_flex(
            "eval",
            &checkpoint,
            &["--shard", "5/3", "--out", out.to_str().unwrap()],
        ),
        &["--shard"],
    );
    assert!(!out.exists());
    let config = write_config(&dir, TINY_PPO);
    assert_clean_failure(
        &train_on_flex(
            &config,
            &[
                "--seed",
                "18446744073709551615",
                "--out",
                dir.join("run").to_str().unwrap(),
            ],
        ),
        &["seed", "9223372036854775807"],
    );
    for (args, flag) in [
        (vec!["--episodes", "1000000000000"], "--episodes"),
        (
            vec!["--num-envs", "1000000000", "--episodes", "10"],
            "--num-envs",
        ),
    ] {
        let mut all = vec!["eval", checkpoint.to_str().unwrap(), "--device", "flex"];
        all.extend(args);
        assert_clean_failure(&gradless(&all), &[flag]);
    }
    assert_clean_failure(
        &on_flex(
            "record",
            &checkpoint,
            &["--episodes", "18446744073709551615", "--seed", "0"],
        ),
        &["--episodes"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Probing wgpu without XDG_RUNTIME_DIR prints no loader complaint before gradless speaks.
#[test]
fn probing_the_device_prints_no_loader_errors() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gradless"))
        .args(["devices"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = stderr(&output);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}

/// `--out` is locked while eval or record writes it: a second writer is refused at once.
#[test]
fn a_second_writer_of_the_same_out_is_refused() {
    let dir = scratch("out-lock");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let _first = gradless_files::DirLock::acquire(&out).unwrap();
    let ppo = shipped("cartpole-v1-ppo");
    for command in ["eval", "record"] {
        assert_clean_failure(
            &on_flex(
                command,
                &ppo,
                &["--episodes", "1", "--out", out.to_str().unwrap()],
            ),
            &["--out", "in use"],
        );
    }
    assert_eq!(sorted_names(&out), [".lock"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
