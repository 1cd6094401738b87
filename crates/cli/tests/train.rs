//! `gradless train` end to end on flex: runs, resumes, bad configs, and a process killed
//! again and again while it writes checkpoints.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use gradless_policy::Checkpoint;

fn latest(run: &Path) -> PathBuf {
    let name = std::fs::read_to_string(run.join("latest")).unwrap();
    run.join(name.trim())
}

/// `gradless [--json] train --config CONFIG --device flex --out RUN`.
fn train_new(config: &Path, run: &Path, json: bool) -> std::process::Output {
    let mut args = vec![];
    if json {
        args.push("--json");
    }
    args.extend([
        "train",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "flex",
    ]);
    args.extend(["--out", run.to_str().unwrap()]);
    gradless(&args)
}

/// The episodes a run logged, in order.
fn episodes(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == "episode")
        .collect()
}

#[test]
fn train_writes_a_run_that_resume_recognises_as_finished() {
    let dir = scratch("train");
    let config = write_config(&dir, TINY_PPO);
    let run = dir.join("run");
    let output = train_new(&config, &run, true);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = &json_lines(&output)[0];
    assert_eq!(summary["global_step"], 1024);
    assert!(summary["episodes"].as_u64().unwrap() > 0);
    assert_eq!(summary["last_evaluation"]["global_step"], 1024);
    let checkpoint = Checkpoint::open(&latest(&run)).unwrap();
    assert_eq!(checkpoint.metadata().global_step, 1024);
    assert_eq!(checkpoint.metadata().env_id, "CartPole-v1");
    assert!(checkpoint.file("optimizer.bin").exists());
    assert!(run.join("config.toml").exists() && run.join("best").exists());
    for episode in episodes(&run) {
        for field in ["episode", "return", "length", "global_step"] {
            assert!(episode.get(field).is_some(), "{episode}");
        }
    }
    // The same episodes in TensorBoard, at the same steps, beside the losses and the config.
    let files = gradless_tensorboard::event_files(&run).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let events = gradless_tensorboard::read_events(&files[0]).unwrap();
    let steps_of = |tag: &str| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e.tag == tag)
            .map(|e| e.step)
            .collect()
    };
    let logged: Vec<i64> = episodes(&run)
        .iter()
        .map(|e| e["global_step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps_of("charts/episodic_return"), logged);
    assert_eq!(steps_of("losses/value_loss").len(), 1024 / 64);
    assert_eq!(steps_of("eval/iqm"), [512, 1024]);
    assert_eq!(steps_of("config"), [0]);

    let again = gradless(&["--json", "train", "--resume", run.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json_lines(&again)[0]["global_step"], 1024);

    let mismatch = gradless(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--set",
        "ppo.gamma=0.9",
    ]);
    assert_clean_failure(&mismatch, &["cannot resume", "`ppo.gamma`"]);
    // --set on its own applies to the run's own config: the first key it changes is named,
    // and one that changes nothing is accepted.
    let changed = gradless(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--set",
        "ppo.clip_coef=0.3",
    ]);
    assert_clean_failure(
        &changed,
        &["cannot resume", "`ppo.clip_coef` (run: 0.2, given: 0.3)"],
    );
    let unchanged = gradless(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--set",
        "ppo.clip_coef=0.2",
    ]);
    assert!(unchanged.status.success(), "{}", stderr(&unchanged));
    let exists = train_new(&config, &run, false);
    assert_clean_failure(&exists, &["already holds a run", "--resume"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--profile` prints where the time went and leaves it in `profile.json`.
#[test]
fn a_profiled_run_reports_its_phases() {
    let dir = scratch("train-profile");
    let config = write_config(&dir, TINY_PPO);
    let run = dir.join("run");
    let output = gradless(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "flex",
        "--profile",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("where the training time went:"), "{text}");
    for phase in ["rollout", "forward", "backward", "optimizer"] {
        assert!(text.lines().any(|line| line.starts_with(phase)), "{text}");
    }
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("profile.json")).unwrap()).unwrap();
    // 1024 steps of 64 transitions.
    assert_eq!(profile["updates"], 16);
    assert_eq!(profile["env_steps"], 1024);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plot` draws a run's training curves (and a folder's runs overlaid); a folder without
/// runs is one line naming the file it looked for.
#[test]
fn plot_draws_training_curves_of_runs() {
    let dir = scratch("plot");
    let config = write_config(&dir, TINY_PPO);
    let run = dir.join("runs").join("tiny");
    let output = train_new(&config, &run, false);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = dir.join("plots");
    let plotted = gradless(&[
        "--json",
        "plot",
        dir.join("runs").to_str().unwrap(),
        "--window",
        "10",
        "--title",
        "Tiny PPO",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(plotted.status.success(), "{}", stderr(&plotted));
    let written = &json_lines(&plotted)[0];
    assert_eq!(written["files"].as_array().unwrap().len(), 4, "{written}");
    let returns = std::fs::read_to_string(out.join("returns.svg")).unwrap();
    assert!(returns.contains("Tiny PPO: Episodic return during training (mean of the last 10"));
    assert!(returns.contains("runs/tiny"), "the run in the legend");
    let updates = std::fs::read_to_string(out.join("updates.svg")).unwrap();
    for statistic in ["value_loss", "entropy", "grad_norm"] {
        assert!(updates.contains(statistic), "{statistic}");
    }
    assert!(!updates.contains(">sps<") && !updates.contains("\nsps\n"));
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let refused = gradless(&["plot", empty.to_str().unwrap()]);
    assert_clean_failure(&refused, &["empty", "no metrics.jsonl"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configs_are_one_line_errors_naming_the_file_and_key() {
    let dir = scratch("bad-config");
    let config = write_config(&dir, TINY_PPO);
    let path = config.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--set", "ppo.learning_rate=-0.1"],
            &["`ppo.learning_rate`", "positive"],
        ),
        (
            &["--set", "ppo.num_envs=0"],
            &["`ppo.num_envs`", "1..=65536"],
        ),
        (
            &["--set", "env=CartPole-v7"],
            &["`env`", "unknown environment id"],
        ),
        (
            &["--set", "ppo.learning_rat=1"],
            &["`ppo.learning_rat`", "unknown field"],
        ),
        (&["--device", "tpu"], &["--device", "`tpu`"]),
        (
            &["--set", "network.hidden=[1000000000]"],
            &["`network.hidden`", "at most 4096"],
        ),
        (
            &["--set", "network.hidden=[8192, 8192]"],
            &["`network.hidden`", "at most 4096"],
        ),
    ];
    for (extra, words) in cases {
        let mut args = vec!["train", "--config", path, "--out"];
        let out = dir.join("never");
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let output = gradless(&args);
        let mut must = vec![];
        if extra[0] == "--set" {
            must.push(path);
        }
        must.extend_from_slice(words);
        assert_clean_failure(&output, &must);
        assert!(
            !out.exists(),
            "a refused config must not create the run directory"
        );
    }
    std::fs::write(&config, "env = \"CartPole-v1\"\nalgorithm = ppo").unwrap();
    assert_clean_failure(&gradless(&["train", "--config", path]), &[path, "line 2"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGKILL at arbitrary moments (checkpoints are written after every update, so many kills
/// land mid-write): each time the latest checkpoint opens with every hash intact, and the
/// run resumed after every kill logs exactly the episodes of a run never interrupted.
#[test]
fn killed_runs_keep_an_intact_checkpoint_and_resume_exactly() {
    let dir = scratch("kill");
    let text = TINY_PPO
        .replace("total_timesteps = 1024", "total_timesteps = 12800")
        .replace(
            "evaluation = { every_steps = 512, episodes = 5 }",
            "evaluation = { every_steps = 0 }",
        );
    let config = write_config(&dir, &text);
    let killed = dir.join("killed");
    let straight = dir.join("straight");
    let mut kills = 0;
    for (attempt, delay_ms) in [120u64, 250, 400, 170, 330, 90, 500].iter().enumerate() {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gradless"));
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if attempt == 0 {
            command.args([
                "train",
                "--config",
                config.to_str().unwrap(),
                "--device",
                "flex",
            ]);
            command.args(["--out", killed.to_str().unwrap()]);
        } else {
            command.args(["train", "--resume", killed.to_str().unwrap()]);
        }
        let mut child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        if killed.join("latest").exists() {
            Checkpoint::open(&latest(&killed)).expect("the latest checkpoint is intact");
        }
    }
    assert!(
        kills >= 2,
        "the run should have been killed mid-way at least twice"
    );
    let finish = gradless(&["train", "--resume", killed.to_str().unwrap()]);
    assert!(finish.status.success(), "{}", stderr(&finish));
    let output = train_new(&config, &straight, false);
    assert!(output.status.success(), "{}", stderr(&output));
    let (resumed, uninterrupted) = (episodes(&killed), episodes(&straight));
    assert!(uninterrupted.len() > 100);
    assert_eq!(resumed, uninterrupted);
    // TensorBoard too: the killed run's event files hold each episode once, at its step.
    let tensorboard_steps = |run: &Path| -> Vec<i64> {
        let mut steps: Vec<i64> = gradless_tensorboard::event_files(run)
            .unwrap()
            .iter()
            .flat_map(|file| gradless_tensorboard::read_events(file).unwrap())
            .filter(|e| e.tag == "charts/episodic_return")
            .map(|e| e.step)
            .collect();
        steps.sort_unstable();
        steps
    };
    assert_eq!(tensorboard_steps(&killed), tensorboard_steps(&straight));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn default_run_directories_are_numbered_instead_of_colliding() {
    let dir = scratch("default-out");
    let config = write_config(
        &dir,
        &TINY_PPO.replace("total_timesteps = 1024", "total_timesteps = 64"),
    );
    // The second run also leaves TensorBoard out.
    for extra in [&[][..], &["--no-tensorboard"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_gradless"))
            .args([
                "train",
                "--config",
                config.to_str().unwrap(),
                "--device",
                "flex",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert!(dir.join("runs/run-seed5/latest").exists());
    assert!(dir.join("runs/run-seed5-2/latest").exists());
    let event_files = |run: &str| gradless_tensorboard::event_files(&dir.join(run)).unwrap();
    assert_eq!(event_files("runs/run-seed5").len(), 1);
    assert!(event_files("runs/run-seed5-2").is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
