//! The `gradless` binary end to end: exit codes, stdout results, one-line errors.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn fixtures() -> PathBuf {
    workspace_root().join("envs/tests/fixtures")
}

/// Writes a replay input document into `dir` as `input.json`.
fn replay_input(dir: &Path, json: &str) -> PathBuf {
    let path = dir.join("input.json");
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn replay_reproduces_the_gymnasium_fixtures_end_to_end() {
    let out = scratch("replay").join("replayed.json");
    let input = fixtures().join("replay_input.json");
    let run = gradless(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("replay_expected.json")).unwrap())
            .unwrap();
    let ours = ours["cases"].as_array().unwrap();
    let theirs = theirs["cases"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(a["env"], b["env"]);
        let (a, b) = (
            a["steps"].as_array().unwrap(),
            b["steps"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (sa, sb) in a.iter().zip(b) {
            assert_eq!(sa["reward"], sb["reward"]);
            assert_eq!(sa["terminated"], sb["terminated"]);
            assert_eq!(sa["truncated"], sb["truncated"]);
            for (x, y) in sa["obs"]
                .as_array()
                .unwrap()
                .iter()
                .zip(sb["obs"].as_array().unwrap())
            {
                assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-5);
            }
        }
    }
}

#[test]
fn replay_to_stdout_is_json_only() {
    let input = replay_input(
        &scratch("stdout"),
        r#"{"cases": [{"env": "MountainCar-v0", "init_state": [-0.5, 0], "actions": [2, 2]}]}"#,
    );
    let run = gradless(&["replay", input.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let document: serde_json::Value = serde_json::from_slice(&run.stdout).expect("stdout is JSON");
    assert_eq!(document["cases"][0]["steps"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_replay_input_is_a_one_line_error_naming_case_and_field() {
    let dir = scratch("bad");
    let input = replay_input(
        &dir,
        r#"{"cases": [{"env": "CartPole-v1", "init_state": [0, 0, 0, 0], "actions": [0, 7]}]}"#,
    );
    let out = dir.join("never.json");
    let run = gradless(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&run, &["input.json", "case 0", "actions[1]", "CartPole-v1"]);
    assert!(!out.exists(), "no output file is left behind on failure");
    let missing = gradless(&["replay", dir.join("missing.json").to_str().unwrap()]);
    assert_clean_failure(&missing, &["missing.json"]);
}

#[test]
fn envs_lists_every_id_as_json_lines() {
    let run = gradless(&["envs", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = json_lines(&run);
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    for id in [
        "CartPole-v1",
        "CartPole-v0",
        "Acrobot-v1",
        "MountainCar-v0",
        "MountainCarContinuous-v0",
        "Pendulum-v1",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let pendulum = lines.iter().find(|l| l["id"] == "Pendulum-v1").unwrap();
    assert_eq!(pendulum["action_space"], "Box(-2.0, 2.0, (1,), float32)");
    assert_eq!(pendulum["max_episode_steps"], 200);
}

#[test]
fn bench_envs_prints_one_json_line_per_size() {
    let run = gradless(&[
        "bench",
        "envs",
        "--env",
        "CartPole-v1",
        "--num-envs",
        "1,64",
        "--threads",
        "1",
        "--seconds",
        "0.05",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["num_envs"], 64);
    assert!(lines[1]["steps_per_sec"].as_f64().unwrap() > 0.0);
}

/// Sizes smaller than `--threads` are skipped (and named), the others measured; a list
/// with none that fits is refused.
#[test]
fn bench_envs_skips_sizes_with_fewer_envs_than_threads() {
    let bench = |sizes: &str| {
        gradless(&[
            "bench",
            "envs",
            "--num-envs",
            sizes,
            "--threads",
            "2",
            "--seconds",
            "0.05",
            "--repeats",
            "1",
            "--json",
        ])
    };
    let run = bench("1,64");
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = json_lines(&run);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (&lines[0]["num_envs"], &lines[0]["threads"]),
        (&64.into(), &2.into())
    );
    assert!(
        stderr(&run).contains("--num-envs 1: skipped"),
        "{}",
        stderr(&run)
    );
    assert_clean_failure(&bench("1"), &["--num-envs", "--threads 2"]);
}

#[test]
fn unknown_env_is_a_one_line_error_listing_the_known_ids() {
    let run = gradless(&["bench", "envs", "--env", "CartPole-v7", "--num-envs", "1"]);
    assert_clean_failure(&run, &["CartPole-v7", "CartPole-v1", "Acrobot-v1"]);
}

#[test]
fn bad_bench_sizes_are_refused_before_anything_is_measured() {
    let run = gradless(&[
        "bench",
        "envs",
        "--num-envs",
        "64,0",
        "--seconds",
        "0.01",
        "--json",
    ]);
    assert_clean_failure(&run, &["--num-envs 0"]);
    assert!(
        run.stdout.is_empty(),
        "nothing measured: {}",
        String::from_utf8_lossy(&run.stdout)
    );
}

#[test]
fn bench_rollout_prints_a_line_per_env_backend_and_step_kernel_that_can_run() {
    let run = gradless(&[
        "bench",
        "rollout",
        "--device",
        "flex",
        "--num-envs",
        "16",
        "--step-kernel",
        "auto,fused",
        "--seconds",
        "0.05",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // CPU envs once; device envs with the automatic choice; no fused step on flex.
    let kinds: Vec<(&str, Option<&str>)> = lines
        .iter()
        .map(|l| {
            (
                l["env_backend"].as_str().unwrap(),
                l["step_kernel"].as_str(),
            )
        })
        .collect();
    assert_eq!(kinds, [("cpu", None), ("device", Some("tensor-ops"))]);
    assert!(
        lines
            .iter()
            .all(|l| l["steps_per_sec"].as_f64().unwrap() > 0.0
                && l["num_envs"] == 16
                && l["host_only"] == false)
    );
}

#[test]
fn host_only_rollouts_are_refused_where_nothing_would_be_measured() {
    let with_cpu_envs = gradless(&["bench", "rollout", "--host-only", "--device", "wgpu"]);
    assert_clean_failure(&with_cpu_envs, &["--host-only", "--env-backend device"]);
    let on_flex = gradless(&[
        "bench",
        "rollout",
        "--host-only",
        "--env-backend",
        "device",
        "--device",
        "flex",
    ]);
    assert_clean_failure(&on_flex, &["--host-only", "flex"]);
}

#[test]
fn a_rollout_bench_that_can_measure_nothing_is_an_error() {
    let run = gradless(&[
        "bench",
        "rollout",
        "--env-backend",
        "device",
        "--step-kernel",
        "fused",
        "--device",
        "flex",
        "--num-envs",
        "16",
    ]);
    assert_clean_failure(&run, &["--step-kernel", "wgpu"]);
}

#[test]
fn bench_grad_modes_reports_each_mode_and_draws_its_chart() {
    let out = scratch("grad-modes");
    let checkpoints = fixtures().join("../../../checkpoints");
    let output = gradless(&[
        "--json",
        "bench",
        "grad-modes",
        checkpoints.join("cartpole-v1-ppo").to_str().unwrap(),
        "--device",
        "flex",
        "--batch",
        "1,4",
        "--seconds",
        "0.01",
        "--windows",
        "1",
        "--memory-steps",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let modes: Vec<(u64, &str)> = lines
        .iter()
        .map(|l| (l["batch"].as_u64().unwrap(), l["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        modes,
        [
            (1, "inference"),
            (1, "no_grad"),
            (1, "tracked"),
            (4, "inference"),
            (4, "no_grad"),
            (4, "tracked")
        ]
    );
    for line in &lines {
        assert_eq!(line["device"], "flex");
        assert!(line["us_per_step"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["memory_growth_bytes"].is_i64(), "{line}");
        assert_eq!(line["actions_identical"], true);
        assert!(line.get("graph_capture").is_none(), "{line}");
    }
    assert!(out.join("grad-modes-flex.svg").exists());
    assert!(out.join("grad-modes-flex.png").exists());

    // flex records no graph: each replay re-runs the step, on the input written before it.
    let captured = gradless(&[
        "--json",
        "bench",
        "grad-modes",
        checkpoints.join("cartpole-v1-dqn").to_str().unwrap(),
        "--device",
        "flex",
        "--batch",
        "8",
        "--seconds",
        "0.01",
        "--windows",
        "1",
        "--memory-steps",
        "0",
        "--graph-capture",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(captured.status.success(), "{}", stderr(&captured));
    let lines = json_lines(&captured);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let replay = &line["graph_capture"];
        assert_eq!(replay["hardware_graph"], false, "{line}");
        assert_eq!(replay["actions_identical"], true, "{line}");
        assert!(replay["us_per_step"].as_f64().unwrap() > 0.0, "{line}");
        let speedup =
            line["us_per_step"].as_f64().unwrap() / replay["us_per_step"].as_f64().unwrap();
        assert!(
            (replay["speedup"].as_f64().unwrap() - speedup).abs() < 1e-9,
            "{line}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();

    let bad = gradless(&["bench", "grad-modes", "--batch", "0", "--device", "flex"]);
    assert_clean_failure(&bad, &["--batch"]);
}
