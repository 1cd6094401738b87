//! `gradless eval` end to end on flex.

mod common;

use std::path::Path;

use common::*;

/// `gradless --json eval PATH --device flex ...` with `out` as `--out`.
fn eval_json_on_flex(path: &Path, out: &Path, options: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "eval",
        path.to_str().unwrap(),
        "--device",
        "flex",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    gradless(&args)
}

/// `eval_json_on_flex` on the shipped checkpoint `name` into a fresh scratch folder named
/// `label`, which must succeed: the folder and the JSON lines.
fn eval_shipped(
    label: &str,
    name: &str,
    options: &[&str],
) -> (std::path::PathBuf, Vec<serde_json::Value>) {
    let out = scratch(label);
    let output = eval_json_on_flex(&shipped(name), &out, options);
    assert!(output.status.success(), "{}", stderr(&output));
    (out, json_lines(&output))
}

#[test]
fn json_summaries_have_the_documented_keys() {
    let (out, lines) = eval_shipped("eval-json", "cartpole-v1-ppo", &["--episodes", "10"]);
    assert_eq!(lines.len(), 1);
    for key in SUMMARY_KEYS {
        assert!(lines[0].get(key).is_some(), "{key} missing: {}", lines[0]);
    }
    assert_eq!(lines[0]["episodes"], 10);
    // `--env-backend auto`, the default: flex runs no episode kernel, so the CPU envs.
    assert_eq!(lines[0]["env_backend"], "cpu");
    assert!(out.join("cartpole-v1-ppo/episodes.jsonl").exists());
    std::fs::remove_dir_all(&out).unwrap();
}

/// In a run directory a bad checkpoint is reported on one line and skipped, the others are
/// evaluated, and the exit status says one failed.
#[test]
fn a_bad_checkpoint_in_a_run_is_reported_and_skipped() {
    let root = scratch("eval-run");
    let run = run_of_copies(root.join("run"), "cartpole-v1-ppo", &[100, 200]);
    let bad = run.join("checkpoints/step-0000000200/model.bpk");
    let mut bytes = std::fs::read(&bad).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&bad, bytes).unwrap();
    // Evaluations the run logged while it trained, drawn beside its checkpoints'.
    let logged: String = [(25_600, 120.0), (51_200, 480.0)]
        .iter()
        .map(|(step, mean)| {
            format!(
                "{{\"event\":\"evaluation\",\"global_step\":{step},\"episodes\":5,\"mean_return\":{mean},\"returns\":[],\"train_seconds\":1.0,\"target_reached\":false}}\n"
            )
        })
        .collect();
    std::fs::write(run.join("metrics.jsonl"), logged).unwrap();
    let output = eval_json_on_flex(&run, &root.join("out"), &["--episodes", "4"]);
    assert!(!output.status.success());
    let stderr = stderr(&output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("step-0000000200/model.bpk") && stderr.contains("SHA-256"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 checkpoints could not be evaluated"),
        "{stderr}"
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["step"], 51200);
    let curve = root.join("out/run/learning_curve");
    let svg = std::fs::read_to_string(curve.with_extension("svg")).unwrap();
    // Titled by the run's name, not its path; steps as papers write them.
    assert!(
        svg.contains("\nrun on CartPole-v1\n") && svg.contains("environment steps"),
        "{svg}"
    );
    assert!(
        svg.contains("\n50k\n") && !svg.contains(&root.display().to_string()),
        "{svg}"
    );
    assert!(svg.contains("\nduring training (mean)\n"), "{svg}");
    let png = std::fs::read(curve.with_extension("png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // The curve for TensorBoard too; evaluating again replaces it rather than adding one.
    let iqm_points = || {
        let files: Vec<_> = gradless_tensorboard::event_files(&root.join("out/run"))
            .unwrap()
            .into_iter()
            .filter(|f| f.to_string_lossy().ends_with(".gradless-eval"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        gradless_tensorboard::read_events(&files[0])
            .unwrap()
            .into_iter()
            .filter(|e| e.tag == "eval/iqm")
            .map(|e| e.step)
            .collect::<Vec<i64>>()
    };
    assert_eq!(iqm_points(), [51200]);
    // Someone's own event file in --out is not the evaluation's to replace.
    let mine = root.join("out/run/events.out.tfevents.1.mine");
    std::fs::write(&mine, b"mine").unwrap();
    eval_json_on_flex(&run, &root.join("out"), &["--episodes", "4"]);
    assert_eq!(iqm_points(), [51200]);
    assert_eq!(std::fs::read(&mine).unwrap(), b"mine");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_options_are_one_line_errors() {
    let ppo = shipped("cartpole-v1-ppo");
    let path = ppo.to_str().unwrap();
    assert_clean_failure(
        &gradless(&["eval", path, "--device", "tpu"]),
        &["--device", "`tpu`"],
    );
    assert_clean_failure(
        &gradless(&[
            "eval",
            path,
            "--device",
            "flex",
            "--env",
            "Pendulum-v1",
            "--episodes",
            "2",
        ]),
        &["Pendulum-v1", "cartpole-v1-ppo"],
    );
    assert_clean_failure(
        &gradless(&["eval", "/nonexistent", "--device", "flex"]),
        &["/nonexistent", "no checkpoint"],
    );
}

#[test]
fn export_writes_sequential_keys_and_refuses_bad_checkpoints_cleanly() {
    let dir = scratch("export");
    let out = dir.join("ppo.safetensors");
    let output = gradless(&[
        "export",
        shipped("cartpole-v1-ppo").to_str().unwrap(),
        "--format",
        "safetensors",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bytes = std::fs::read(&out).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["0.weight"]["shape"], serde_json::json!([64, 4]));
    assert_eq!(header["4.weight"]["shape"], serde_json::json!([2, 64]));
    assert_eq!(header["__metadata__"]["activation"], "tanh");
    assert_eq!(header["__metadata__"]["policy"], "categorical_actor");

    let broken = dir.join("broken");
    copy_dir(&shipped("cartpole-v1-ppo"), &broken);
    std::fs::write(broken.join("model.bpk"), b"not a model").unwrap();
    let refused = dir.join("refused.safetensors");
    assert_clean_failure(
        &gradless(&[
            "export",
            broken.to_str().unwrap(),
            "--out",
            refused.to_str().unwrap(),
        ]),
        &["model.bpk"],
    );
    assert!(!refused.exists(), "no file is left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `gradless bench eval` of the shipped PPO agent on flex with these forward passes.
fn bench_eval_on_flex(forward: &str, more: &[&str]) -> std::process::Output {
    let checkpoint = shipped("cartpole-v1-ppo");
    let mut args = vec![
        "bench",
        "eval",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--device",
        "flex",
        "--forward",
        forward,
    ];
    args.extend_from_slice(more);
    gradless(&args)
}

#[test]
fn bench_eval_prints_one_json_line_per_device_forward_pass_and_size() {
    let output = bench_eval_on_flex(
        "auto,tensor-ops",
        &[
            "--json",
            "--num-envs",
            "1,4",
            "--seconds",
            "0.05",
            "--repeats",
            "1",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    // On flex the automatic choice is the host loop.
    let expected = [
        (1, "host"),
        (4, "host"),
        (1, "tensor-ops"),
        (4, "tensor-ops"),
    ];
    assert_eq!(lines.len(), expected.len());
    for (line, (n, forward)) in lines.iter().zip(expected) {
        assert_eq!(line["device"], "flex");
        assert_eq!(line["forward"], forward);
        assert_eq!(line["num_envs"], n);
        assert!(line["steps_per_sec"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bench_eval_refuses_an_unknown_forward_pass() {
    let output = bench_eval_on_flex("gpu", &[]);
    assert_clean_failure(&output, &["--forward"]);
}

#[test]
fn grad_mode_report_adds_the_measured_speedup() {
    let (out, lines) = eval_shipped(
        "eval-grad-modes",
        "cartpole-v1-dqn",
        &["--episodes", "2", "--num-envs", "8", "--grad-mode-report"],
    );
    let report = &lines[0]["grad_mode_report"];
    assert_eq!(report["batch"], 8);
    let no_grad = report["no_grad_us_per_step"].as_f64().unwrap();
    let inference = report["inference_us_per_step"].as_f64().unwrap();
    let speedup = report["inference_speedup"].as_f64().unwrap();
    assert!((speedup - no_grad / inference).abs() < 1e-9, "{report}");
    let written: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("cartpole-v1-dqn/grad_mode_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(&written, report);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn device_envs_evaluate_beside_the_policy() {
    let (out, lines) = eval_shipped(
        "eval-device-envs",
        "cartpole-v1-ppo",
        &[
            "--env-backend",
            "device",
            "--episodes",
            "6",
            "--num-envs",
            "4",
        ],
    );
    let summary = &lines[0];
    assert_eq!(summary["env_backend"], "device");
    assert_eq!(summary["episodes"], 6);
    let episodes = std::fs::read_to_string(out.join("cartpole-v1-ppo/episodes.jsonl")).unwrap();
    let episodes: Vec<serde_json::Value> = episodes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(episodes.len(), 6);
    // Device episodes are seeded as the CPU envs' are: consecutive seeds from `--seed`.
    let first = episodes[0]["seed"].as_u64().expect("a seed");
    for (i, episode) in episodes.iter().enumerate() {
        assert_eq!(
            episode["seed"].as_u64(),
            Some(first + i as u64),
            "{episode}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();

    let sampled = on_flex(
        "eval",
        &shipped("cartpole-v1-ppo"),
        &["--env-backend", "device", "--stochastic"],
    );
    assert_clean_failure(&sampled, &["--stochastic"]);
    let unknown = gradless(&[
        "eval",
        shipped("cartpole-v1-ppo").to_str().unwrap(),
        "--env-backend",
        "gpu",
    ]);
    assert_clean_failure(&unknown, &["--env-backend", "`auto`, `cpu` or `device`"]);
}

/// Shards split a run's checkpoints between them (K from the flag or the scheduler's
/// variable), and `--merge` gathers their evaluations into the run's outputs.
#[test]
fn shards_evaluate_their_share_and_merge_gathers_them() {
    let root = scratch("eval-shards");
    let run = run_of_copies(root.join("run"), "cartpole-v1-dqn", &[100, 200, 300]);
    let run_arg = run.to_str().unwrap();
    // What every shard and merge below runs.
    let eval = [
        "--json",
        "eval",
        run_arg,
        "--device",
        "flex",
        "--env",
        "CartPole-v0",
    ];
    let shard = |spec: &str, index: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gradless"));
        command
            .args(eval)
            .args(["--episodes", "3", "--shard", spec])
            .env("RUST_LOG", "warn")
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX");
        if let Some(index) = index {
            command.env("JOB_COMPLETION_INDEX", index);
        }
        command.output().unwrap()
    };
    let first = shard("0/2", None);
    assert!(first.status.success(), "{}", stderr(&first));
    // The checkpoints' folder names (their metadata all hold the shipped step).
    let steps = |output: &std::process::Output| -> Vec<String> {
        json_lines(output)
            .iter()
            .map(|l| {
                let checkpoint = l["checkpoint"].as_str().unwrap();
                checkpoint.rsplit('/').next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(steps(&first), ["step-0000000100", "step-0000000300"]);
    assert!(
        !run.join("eval/learning_curve.svg").exists(),
        "a shard leaves the run's outputs to --merge"
    );
    let merge =
        |episodes: &str| gradless(&[&eval[..], &["--episodes", episodes, "--merge"]].concat());
    assert_clean_failure(
        &merge("3"),
        &["step-0000000200", "no evaluation of these episodes"],
    );
    let second = shard("2", Some("1"));
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(steps(&second), ["step-0000000200"]);
    let merged = merge("3");
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert_eq!(
        steps(&merged),
        ["step-0000000100", "step-0000000200", "step-0000000300"]
    );
    assert!(run.join("eval/learning_curve.svg").is_file());
    // Evaluations of other episodes are not merged as if they were these.
    assert!(!merge("4").status.success());
    std::fs::remove_dir_all(&root).unwrap();
}
