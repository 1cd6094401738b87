//! `gradless train --seeds` and `gradless compare` end to end on flex.

mod common;

use std::path::Path;

use common::*;

/// Trains `seeds` tiny runs under `out` with `train --seeds ... --jobs 2`.
fn train_seeds(config: &Path, out: &Path, seeds: &str) -> std::process::Output {
    gradless(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "flex",
        "--seeds",
        seeds,
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Seeds become runs `seed-N` under `--out`; compare scores each run's final checkpoint
/// (evaluating it once, reusing the evaluation after), prints one JSON object per group
/// and per ordered pair, and writes its figures.
#[test]
fn seeds_train_side_by_side_and_compare_reports_groups_and_pairs() {
    let root = scratch("compare");
    // Long enough (16 checkpoints each) that two runs started together overlap even on a
    // loaded machine.
    let config = write_config(&root, TINY_PPO);
    let output = train_seeds(&config, &root.join("a"), "1-2");
    assert!(output.status.success(), "{}", stderr(&output));
    // `--jobs 2`: the two runs train at once, each starting (its run marker written)
    // before the other ends (its `latest` moved for the last time).
    let modified = |run: &str, file: &str| {
        std::fs::metadata(root.join("a").join(run).join(file))
            .unwrap()
            .modified()
            .unwrap()
    };
    let started = modified("seed-1", ".gradless-run").max(modified("seed-2", ".gradless-run"));
    let ended = modified("seed-1", "latest").min(modified("seed-2", "latest"));
    assert!(started < ended, "the runs did not overlap");
    let wider = TINY_PPO
        .replace("total_timesteps = 1024", "total_timesteps = 128")
        .replace("hidden = [16]", "hidden = [32]");
    let config_b = root.join("b.toml");
    std::fs::write(&config_b, wider).unwrap();
    let output = train_seeds(&config_b, &root.join("b"), "3,5");
    assert!(output.status.success(), "{}", stderr(&output));
    for run in ["a/seed-1", "a/seed-2", "b/seed-3", "b/seed-5"] {
        assert!(root.join(run).join("checkpoints").is_dir(), "{run}");
    }
    let config_text = std::fs::read_to_string(root.join("b/seed-5/config.toml")).unwrap();
    assert!(config_text.contains("seed = 5"), "{config_text}");

    let compare = || {
        gradless(&[
            "--json",
            "compare",
            &format!("a={}", root.join("a").display()),
            &format!("b={}", root.join("b").display()),
            "--device",
            "flex",
            "--episodes",
            "4",
            "--reps",
            "500",
            "--out",
            root.join("comparison").to_str().unwrap(),
        ])
    };
    let output = compare();
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 4, "two groups, two ordered pairs");
    for key in [
        "group",
        "runs",
        "iqm",
        "iqm_ci95",
        "mean",
        "mean_ci95",
        "median",
        "median_ci95",
        "optimality_gap",
        "optimality_gap_ci95",
    ] {
        assert!(lines[0].get(key).is_some(), "{key} missing: {}", lines[0]);
    }
    let runs = lines[0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let checkpoint = Path::new(run["checkpoint"].as_str().unwrap());
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(checkpoint.join("eval/summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            run["score"], summary["mean_return"],
            "the score is eval's mean return"
        );
    }
    // One env: the median is the mean.
    assert_eq!(lines[0]["median"], lines[0]["mean"]);
    for key in [
        "x",
        "y",
        "probability_of_improvement",
        "probability_of_improvement_ci95",
    ] {
        assert!(lines[2].get(key).is_some(), "{key} missing: {}", lines[2]);
    }
    let p_ab = lines[2]["probability_of_improvement"].as_f64().unwrap();
    let p_ba = lines[3]["probability_of_improvement"].as_f64().unwrap();
    assert!((p_ab + p_ba - 1.0).abs() < 1e-12, "{p_ab} + {p_ba}");
    for file in [
        "comparison.json",
        "aggregates.svg",
        "aggregates.png",
        "performance_profile.svg",
    ] {
        assert!(root.join("comparison").join(file).is_file(), "{file}");
    }
    // The second comparison reuses the evaluations and gives the same report.
    let again = compare();
    assert_eq!(json_lines(&again), lines);
    // `--checkpoint best` scores the checkpoint each run's `best` pointer names.
    let best = gradless(&[
        "--json",
        "compare",
        &format!("a={}", root.join("a").display()),
        "--checkpoint",
        "best",
        "--device",
        "flex",
        "--episodes",
        "4",
        "--reps",
        "100",
        "--out",
        root.join("comparison-best").to_str().unwrap(),
    ]);
    assert!(best.status.success(), "{}", stderr(&best));
    for run in json_lines(&best)[0]["runs"].as_array().unwrap() {
        let dir = Path::new(run["run"].as_str().unwrap());
        let pointer = std::fs::read_to_string(dir.join("best")).unwrap();
        assert_eq!(
            Path::new(run["checkpoint"].as_str().unwrap()),
            dir.join(pointer.trim())
        );
    }

    // Group a's runs kept only their last checkpoints: its curve comes from the evaluations
    // logged during training (every 512 steps).
    let curve = &lines[0]["curve"];
    assert_eq!(curve["source"], "training", "{curve}");
    assert_eq!(curve["steps"], serde_json::json!([512, 1024]));
    // `eval` of the folder evaluates every kept checkpoint and draws the curve over seeds
    // compare draws for the group, at every step, from those evaluations.
    let folder = root.join("a");
    let eval = gradless(&[
        "eval",
        folder.to_str().unwrap(),
        "--device",
        "flex",
        "--episodes",
        "4",
        "--reps",
        "500",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("eval/learning_curve_over_seeds.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(written["curve"]["source"], "checkpoints", "{written}");
    assert!(written["curve"]["steps"].as_array().unwrap().len() >= 2);
    for file in ["svg", "png"] {
        assert!(
            folder
                .join(format!("eval/learning_curve_over_seeds.{file}"))
                .is_file()
        );
    }
    let svg = std::fs::read_to_string(folder.join("eval/learning_curve_over_seeds.svg")).unwrap();
    assert!(svg.contains("a on CartPole-v1: IQM over 2 seeds"), "title");
    let after_eval = json_lines(&compare());
    assert_eq!(after_eval[0]["curve"], written["curve"]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_compare_and_seed_requests_are_one_line_errors() {
    let root = scratch("compare-bad");
    assert_clean_failure(&gradless(&["compare", "no-equals-sign"]), &["NAME=PATH"]);
    assert_clean_failure(
        &gradless(&["compare", "a=/nonexistent", "--device", "flex"]),
        &["/nonexistent"],
    );
    assert_clean_failure(
        &gradless(&["compare", "a=/nonexistent", "--reps", "0"]),
        &["--reps"],
    );
    assert_clean_failure(
        &gradless(&["compare", "a=/nonexistent", "--threshold", "high"]),
        &["--threshold", "high"],
    );
    // A lone checkpoint is not a run.
    assert_clean_failure(
        &gradless(&[
            "compare",
            &format!("a={}", shipped("cartpole-v1-ppo").display()),
            "--device",
            "flex",
            "--out",
            root.join("c").to_str().unwrap(),
        ]),
        &["no run directory"],
    );
    let config = write_config(&root, TINY_PPO);
    let config_path = config.to_str().unwrap();
    assert_clean_failure(
        &gradless(&[
            "train",
            "--config",
            config_path,
            "--seeds",
            "1-2",
            "--shard",
            "2/2",
        ]),
        &["--shard", "does not exist"],
    );
    for (seeds, word) in [("3-1", "upwards"), ("1,1", "twice"), ("x", "not a seed")] {
        assert_clean_failure(
            &train_seeds(&config, &root.join("s"), seeds),
            &["--seeds", word],
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// `--shard K/N` trains the seeds at positions K, K+N, ... of the list, each run the run
/// `--seed` alone trains: the same episodes, losses and final policy.
#[test]
fn a_shard_trains_its_seeds_as_they_train_alone() {
    let root = scratch("train-shard");
    let short = TINY_PPO.replace("total_timesteps = 1024", "total_timesteps = 128");
    let config = write_config(&root, &short);
    let config = config.to_str().unwrap();
    let sharded = root.join("sharded");
    let output = gradless(&[
        "train",
        "--config",
        config,
        "--device",
        "flex",
        "--seeds",
        "1-3",
        "--jobs",
        "2",
        "--shard",
        "1/2",
        "--out",
        sharded.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let runs: Vec<String> = std::fs::read_dir(&sharded)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs, ["seed-2"]);
    let alone = root.join("alone");
    let output = gradless(&[
        "train",
        "--config",
        config,
        "--device",
        "flex",
        "--seed",
        "2",
        "--out",
        alone.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Every logged episode and update (returns, losses, gradient norms), less what the clock
    // and the path say, and the final policy's returns with sampled actions.
    let logged = |run: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
                let fields = event.as_object_mut().unwrap();
                fields.retain(|key, _| !["sps", "path"].contains(&key.as_str()));
                fields.retain(|key, _| !key.ends_with("_seconds"));
                event
            })
            .collect()
    };
    let (ours, theirs) = (sharded.join("seed-2"), alone);
    assert_eq!(logged(&ours), logged(&theirs));
    let returns = |run: &Path| {
        let output = on_flex(
            "eval",
            run,
            &[
                "--json",
                "--stochastic",
                "--episodes",
                "5",
                "--out",
                root.join("e").to_str().unwrap(),
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        json_lines(&output).last().unwrap()["mean_return"].clone()
    };
    assert_eq!(returns(&ours), returns(&theirs));
    std::fs::remove_dir_all(&root).unwrap();
}
